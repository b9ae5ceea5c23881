//! Number parameters: the range a number stands for by its written precision (`1.5` is
//! `[1.45, 1.55)`, `100` is `[99.5, 100.5)`).

use super::{IndexTable, SortColumn, SortValueKind, primitive_text};
use crate::fhirpath::Item;
use crate::search::index_row::IndexValue;

/// Number rows: the value as written, compared with the range a searched value stands for.
pub const TABLE: IndexTable = IndexTable {
    name: "search_number",
    columns: &[("value", "double precision")],
    leading: 0,
};

/// Sorted by the value.
pub const SORT: SortColumn = SortColumn {
    ascending: "value",
    descending: "value",
    kind: SortValueKind::Real,
};

/// `[low, high)` of a decimal written as `text`.
pub fn precision_range(text: &str) -> Option<(f64, f64)> {
    let value: f64 = text.parse().ok()?;
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let decimals = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i32);
    let half = 0.5 * 10f64.powi(exponent - decimals);
    Some((value - half, value + half))
}

pub fn extract(item: &Item<'_>, push: &mut impl FnMut(IndexValue)) {
    if let Some(value) = primitive_text(item).and_then(|t| t.parse::<f64>().ok())
        && value.is_finite()
    {
        push(IndexValue::Number { value });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn precision_gives_the_range() {
        let (low, high) = super::precision_range("1.5").unwrap();
        assert!((low - 1.45).abs() < 1e-9 && (high - 1.55).abs() < 1e-9);
        assert_eq!(super::precision_range("100"), Some((99.5, 100.5)));
        // Three significant digits: precise to the unit.
        assert_eq!(super::precision_range("1.00e2"), Some((99.5, 100.5)));
        let (low, high) = super::precision_range("1.000e2").unwrap();
        assert!((low - 99.95).abs() < 1e-9 && (high - 100.05).abs() < 1e-9);
    }
}

/// A number search (search.html#number). Without a prefix (or with `eq`, `ne`, `ap`) the value's
/// precision gives the range matched (`100` is `[99.5, 100.5)`); `sa` and `eb` ask for values
/// beyond that whole range; `gt`, `lt`, `ge` and `le` compare with the value as if it were exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumberMatch {
    pub prefix: super::Prefix,
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

pub fn parse_value(text: &str) -> Result<NumberMatch, super::ParseFailure> {
    let (prefix, number) = super::Prefix::split(text);
    let valid = !number.is_empty()
        && number
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    let value: Option<f64> = valid.then(|| number.parse().ok()).flatten();
    let (Some(value), Some((low, high))) = (value.filter(|v| v.is_finite()), precision_range(number)) else {
        return Err(super::ParseFailure::Invalid(
            "expected an optional prefix (eq, ne, gt, lt, ge, le, sa, eb, ap) and a decimal number".into(),
        ));
    };
    Ok(NumberMatch {
        prefix,
        value,
        low,
        high,
    })
}

pub fn parse(value: &str, modifier: Option<&str>) -> Result<NumberMatch, super::ParseFailure> {
    if modifier.is_some() {
        return Err(super::ParseFailure::UnsupportedModifier);
    }
    parse_value(value)
}

impl NumberMatch {
    pub fn write(&self, sql: &mut crate::sql::Sql, alias: &str) {
        self.write_on(sql, &format!("{alias}.value"));
    }

    pub fn write_on(&self, sql: &mut crate::sql::Sql, column: &str) {
        use super::Prefix;
        use crate::sql::SqlValue::Real;
        let in_range = |sql: &mut crate::sql::Sql, low: f64, high: f64| {
            sql.push("(")
                .push(column)
                .push(" >= ")
                .bind(Real(low))
                .push(" AND ")
                .push(column)
                .push(" < ")
                .bind(Real(high))
                .push(")");
        };
        match self.prefix {
            Prefix::Eq => in_range(sql, self.low, self.high),
            Prefix::Ne => {
                sql.push("NOT ");
                in_range(sql, self.low, self.high);
            }
            Prefix::Gt => {
                sql.push(column).push(" > ").bind(Real(self.value));
            }
            Prefix::Lt => {
                sql.push(column).push(" < ").bind(Real(self.value));
            }
            // Starts after / ends before the whole range the search value stands for.
            Prefix::Sa => {
                sql.push(column).push(" >= ").bind(Real(self.high));
            }
            Prefix::Eb => {
                sql.push(column).push(" < ").bind(Real(self.low));
            }
            Prefix::Ge => {
                sql.push(column).push(" >= ").bind(Real(self.value));
            }
            Prefix::Le => {
                sql.push(column).push(" <= ").bind(Real(self.value));
            }
            Prefix::Ap => {
                let margin = self.value.abs() / 10.0;
                sql.push("(")
                    .push(column)
                    .push(" >= ")
                    .bind(Real(self.value - margin))
                    .push(" AND ")
                    .push(column)
                    .push(" <= ")
                    .bind(Real(self.value + margin))
                    .push(")");
            }
        }
    }
}
