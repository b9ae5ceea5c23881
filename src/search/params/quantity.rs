//! Quantity parameters: the value's precision range with system, code and unit, from Quantity and
//! its specialisations (Age, Duration, Distance, Count, SimpleQuantity, MoneyQuantity) and Money
//! (its currency as an ISO 4217 code).

use crate::fhirpath::Item;
use crate::search::index_row::IndexValue;
use serde_json::Value;

use super::{IndexTable, SortColumn, SortValueKind, text};

/// Quantity rows: the value with its system, code and unit; the value index leads with the
/// value, since a search always gives one and a unit only sometimes.
pub const TABLE: IndexTable = IndexTable {
    name: "search_quantity",
    columns: &[
        ("value", "double precision"),
        ("system", "text"),
        ("code", "text"),
        ("unit", "text"),
    ],
    leading: 0,
};

/// Sorted by the value, whatever its unit.
pub const SORT: SortColumn = SortColumn {
    ascending: "value",
    descending: "value",
    kind: SortValueKind::Real,
};

pub fn extract(item: &Item<'_>, push: &mut impl FnMut(IndexValue)) {
    let Some((object, type_name)) = super::object(item) else {
        return;
    };
    let Some(value) = object
        .get("value")
        .and_then(Value::as_number)
        .and_then(|n| n.to_string().parse::<f64>().ok())
        .filter(|v| v.is_finite())
    else {
        return;
    };
    let value = if type_name == Some("Money") {
        IndexValue::Quantity {
            value,
            system: Some("urn:iso:std:iso:4217".into()),
            code: text(object, "currency"),
            unit: text(object, "currency"),
        }
    } else {
        IndexValue::Quantity {
            value,
            system: text(object, "system"),
            code: text(object, "code"),
            unit: text(object, "unit"),
        }
    };
    push(value);
}

/// A quantity search (search.html#quantity): `[prefix]number`, `number|system|code`, or
/// `number||code-or-unit`; the number part works as a number search does.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantityMatch {
    pub number: super::number::NumberMatch,
    pub system: Option<String>,
    pub code: Option<String>,
}

pub fn parse(value: &str, modifier: Option<&str>) -> Result<QuantityMatch, super::ParseFailure> {
    if modifier.is_some() {
        return Err(super::ParseFailure::UnsupportedModifier);
    }
    let parts = super::split_unescaped(value, '|');
    let given = |s: &str| (!s.is_empty()).then(|| super::unescape(s));
    let (number, system, code) = match parts.as_slice() {
        [number] => (*number, None, None),
        [number, system, code] => (*number, given(system), given(code)),
        _ => {
            return Err(super::ParseFailure::Invalid(
                "expected number, number|system|code or number||code".into(),
            ));
        }
    };
    Ok(QuantityMatch {
        number: super::number::parse_value(number)?,
        system,
        code,
    })
}

impl QuantityMatch {
    pub fn write(&self, sql: &mut crate::sql::Sql, alias: &str) {
        use crate::sql::SqlValue::Text;
        self.number.write_on(sql, &format!("{alias}.value"));
        match (&self.system, &self.code) {
            (Some(system), Some(code)) => {
                sql.push(" AND ")
                    .push(alias)
                    .push(".system = ")
                    .bind(Text(system.clone()))
                    .push(" AND ")
                    .push(alias)
                    .push(".code = ")
                    .bind(Text(code.clone()));
            }
            (Some(system), None) => {
                sql.push(" AND ")
                    .push(alias)
                    .push(".system = ")
                    .bind(Text(system.clone()));
            }
            // Without a system, the code may be a code or the unit as displayed.
            (None, Some(code)) => {
                sql.push(" AND (")
                    .push(alias)
                    .push(".code = ")
                    .bind(Text(code.clone()))
                    .push(" OR ")
                    .push(alias)
                    .push(".unit = ")
                    .bind(Text(code.clone()))
                    .push(")");
            }
            (None, None) => {}
        }
    }
}
