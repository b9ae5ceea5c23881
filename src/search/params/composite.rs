//! Composite parameters (search.html#composite): components that must all match within one
//! element, e.g. `code-value-quantity=http://loinc.org|8480-6$gt100` on an Observation or on one of
//! its `component`s. Each component's values are indexed as rows of the component's own type,
//! under `registry::component_param_id` and with a group number naming the element they came
//! from; a search joins the components' rows on (rid, group). So `8480-6$gt100` does not match an
//! Observation whose systolic component is 90 and whose diastolic one is 120.

use super::{ParseFailure, ValueMatch, extract_value};
use crate::fhirpath::{Context, Item};
use crate::search::index_row::IndexRow;
use crate::search::registry::{Component, SearchParam, component_param_id};
use crate::search::sql_parts::push_by_rid;
use crate::sql::{Sql, SqlValue};
use serde_json::Value;
use std::sync::Arc;

/// What the components' expressions are evaluated with.
pub struct Extraction<'e> {
    pub resource_type: &'e str,
    pub own_base: &'e str,
    pub resource: &'e Value,
    pub context: &'e Context<'static>,
    pub name: &'e Arc<str>,
}

impl Extraction<'_> {
    /// The rows of every component for every item of the composite's expression. `groups` counts
    /// the items of all composites of the resource, so each item gets a number of its own.
    pub fn extract(
        &self,
        param: &SearchParam,
        items: &[Item<'_>],
        groups: &mut u32,
        rows: &mut Vec<IndexRow>,
    ) -> Result<(), String> {
        for item in items {
            *groups += 1;
            for (k, component) in param.components.iter().enumerate() {
                let values = component
                    .expression
                    .evaluate_on(item.clone(), self.resource, self.context)
                    .map_err(|e| format!("component {k}: {e}"))?;
                let param_id = component_param_id(self.resource_type, &param.code, k);
                for value in &values {
                    extract_value(component.kind, value, self.own_base, &mut |value| {
                        rows.push(IndexRow {
                            param: self.name.clone(),
                            param_id,
                            group: Some(*groups),
                            value,
                        })
                    });
                }
            }
        }
        Ok(())
    }
}

/// One composite value: a match for each component, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct CompositeMatch {
    pub parts: Vec<ValueMatch>,
}

/// `value` is the components' values joined by `$` (a `$` inside one escaped as `\$`); each is
/// parsed by the rules of its component's type. Composites take no modifiers.
pub fn parse(
    value: &str,
    modifier: Option<&str>,
    components: &[Component],
    base_url: &str,
) -> Result<CompositeMatch, ParseFailure> {
    if modifier.is_some() {
        return Err(ParseFailure::UnsupportedModifier);
    }
    let parts = super::split_unescaped(value, '$');
    if parts.len() != components.len() {
        return Err(ParseFailure::Invalid(format!(
            "a value of this composite parameter has {} parts separated by '$', not {}",
            components.len(),
            parts.len()
        )));
    }
    let parts = parts
        .into_iter()
        .zip(components)
        .map(|(part, component)| ValueMatch::parse(component.kind, part, None, &[], base_url))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CompositeMatch { parts })
}

/// Where each component's rows are: its index table and its parameter ids (one per searched type).
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentRows {
    pub table: &'static str,
    pub param_ids: Vec<i64>,
}

/// `SELECT c0.rid FROM …`: the resources with an element whose components meet one of
/// `alternatives`, or (no alternatives) that have every component at all. With `correlate`, only
/// the row of that resource alias (`c0.rid = alias.rid`), for an `EXISTS`. No components: no rows.
pub fn write_rids(
    sql: &mut Sql,
    components: &[ComponentRows],
    alternatives: &[CompositeMatch],
    correlate: Option<&str>,
) {
    let Some(first) = components.first() else {
        sql.push("SELECT NULL WHERE 1 = 0");
        return;
    };
    sql.push("SELECT c0.rid FROM ").push(first.table).push(" c0 ");
    push_by_rid(sql, first.table, correlate);
    sql.push("WHERE ");
    if let Some(alias) = correlate {
        sql.push("c0.rid = ").push(alias).push(".rid AND ");
    }
    write_param_ids(sql, "c0.param", &first.param_ids);
    sql.push(" AND (");
    let any_values = [None];
    let alternatives: Vec<Option<&CompositeMatch>> = if alternatives.is_empty() {
        any_values.to_vec()
    } else {
        alternatives.iter().map(Some).collect()
    };
    for (n, alternative) in alternatives.iter().enumerate() {
        if n > 0 {
            sql.push(" OR ");
        }
        sql.push("(");
        match alternative {
            Some(alternative) => alternative.parts[0].write(sql, "c0"),
            None => {
                sql.push("1 = 1");
            }
        }
        for (k, rows) in components.iter().enumerate().skip(1) {
            let c = format!("c{k}");
            sql.push(" AND EXISTS (SELECT 1 FROM ")
                .push(rows.table)
                .push(" ")
                .push(&c)
                .push(" WHERE ")
                .push(&c)
                .push(".rid = c0.rid AND ")
                .push(&c)
                .push(".grp = c0.grp AND ");
            write_param_ids(sql, &format!("{c}.param"), &rows.param_ids);
            if let Some(alternative) = alternative {
                sql.push(" AND (");
                alternative.parts[k].write(sql, &c);
                sql.push(")");
            }
            sql.push(")");
        }
        sql.push(")");
    }
    sql.push(")");
}

fn write_param_ids(sql: &mut Sql, column: &str, ids: &[i64]) {
    sql.push(column).push(" IN (");
    for (n, id) in ids.iter().enumerate() {
        if n > 0 {
            sql.push(", ");
        }
        sql.bind(SqlValue::Int(*id));
    }
    sql.push(")");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::IndexValue;
    use crate::search::registry::Registry;
    use serde_json::json;

    #[test]
    fn components_of_one_element_share_a_group() {
        let observation = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "component": [
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                 "valueQuantity": {"value": 107, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                 "valueQuantity": {"value": 60, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]});
        let rows: Vec<IndexRow> = crate::search::index_rows(&observation)
            .unwrap()
            .into_iter()
            .filter(|r| &*r.param == "component-code-value-quantity")
            .collect();
        assert_eq!(rows.len(), 4, "{rows:?}");
        let group_of = |code: &str| {
            rows.iter()
                .find(|r| matches!(&r.value, IndexValue::Token { code: Some(c), .. } if c == code))
                .and_then(|r| r.group)
                .unwrap()
        };
        let systolic = group_of("8480-6");
        assert_ne!(systolic, group_of("8462-4"));
        let value_rows: Vec<_> = rows.iter().filter(|r| r.group == Some(systolic)).collect();
        assert!(
            value_rows
                .iter()
                .any(|r| matches!(r.value, IndexValue::Quantity { value, .. } if value == 107.0))
        );
        assert_eq!(
            value_rows[1].param_id,
            component_param_id("Observation", "component-code-value-quantity", 1)
        );
    }

    #[test]
    fn values_split_at_unescaped_dollars_by_component_type() {
        let param = Registry::r4().get("Observation", "code-value-quantity").unwrap();
        let parsed = parse("http://loinc.org|8480-6$gt100", None, &param.components, "http://x").unwrap();
        assert!(matches!(parsed.parts[0], ValueMatch::Token(_)));
        assert!(matches!(parsed.parts[1], ValueMatch::Quantity(_)));
        assert!(matches!(
            parse("8480-6", None, &param.components, "http://x"),
            Err(ParseFailure::Invalid(_))
        ));
        assert!(matches!(
            parse("8480-6$abc", None, &param.components, "http://x"),
            Err(ParseFailure::Invalid(_))
        ));
        let param = Registry::r4().get("Observation", "code-value-string").unwrap();
        let parsed = parse(r"8480-6$a\$b", None, &param.components, "http://x").unwrap();
        assert_eq!(
            parsed.parts[1],
            ValueMatch::String(super::super::string::StringMatch::StartsWith("a$b".into()))
        );
    }
}
