//! Writing search-index rows. A resource's rows go to the database as one JSON array per index
//! table, bound as a single text parameter and unpacked there (`json_each` on SQLite,
//! `json_array_elements` on PostgreSQL). So a write's SQL text is the same whatever the resource
//! holds — prepared once — and all its rows travel in one round trip with the version they index.

use crate::search::{IndexRow, IndexValue};
use crate::sql::Dialect;
use serde_json::{Value, json};

/// The tables' descriptors live with their parameter types (`search::params`); the rest of the
/// store names them here.
pub(crate) use crate::search::params::{INDEX_TABLES, IndexTable, table_of};

/// One column value of an index row, borrowed from it.
pub(crate) enum Cell<'a> {
    Text(Option<&'a str>),
    Int(i64),
    Real(f64),
}

/// Folds `f` over the column values of `value`, in the order of its table's `columns`.
pub(crate) fn fold_cells<'a, B>(value: &'a IndexValue, init: B, mut f: impl FnMut(B, Cell<'a>) -> B) -> B {
    use Cell::{Int, Real, Text};
    match value {
        IndexValue::String { normalized, exact } => {
            let b = f(init, Text(Some(normalized)));
            f(b, Text(Some(exact)))
        }
        IndexValue::Token { system, code, text } => {
            let b = f(init, Text(system.as_deref()));
            let b = f(b, Text(code.as_deref()));
            f(b, Text(text.as_deref()))
        }
        IndexValue::Date { low, high } => {
            let b = f(init, Int(*low));
            f(b, Int(*high))
        }
        IndexValue::Number { value } => f(init, Real(*value)),
        IndexValue::Quantity {
            value,
            system,
            code,
            unit,
        } => {
            let b = f(init, Real(*value));
            let b = f(b, Text(system.as_deref()));
            let b = f(b, Text(code.as_deref()));
            f(b, Text(unit.as_deref()))
        }
        IndexValue::Reference {
            target_type,
            target_id,
            url,
        } => {
            let b = f(init, Text(target_type.as_deref()));
            let b = f(b, Text(target_id.as_deref()));
            f(b, Text(Some(url)))
        }
        IndexValue::Uri { uri } => f(init, Text(Some(uri))),
    }
}

/// A resource's index rows as one JSON array text per table (`[[param, value…, grp], …]`).
pub(crate) struct IndexPayload {
    pub tables: [String; 7],
}

impl IndexPayload {
    pub fn from_rows(rows: &[IndexRow]) -> IndexPayload {
        let mut tables: [Vec<Value>; 7] = std::array::from_fn(|_| Vec::new());
        for row in rows {
            let p = row.param_id;
            let mut value = match &row.value {
                IndexValue::String { normalized, exact } => json!([p, normalized, exact]),
                IndexValue::Token { system, code, text } => json!([p, system, code, text]),
                IndexValue::Date { low, high } => json!([p, low, high]),
                IndexValue::Number { value } => json!([p, value]),
                IndexValue::Quantity {
                    value,
                    system,
                    code,
                    unit,
                } => json!([p, value, system, code, unit]),
                IndexValue::Reference {
                    target_type,
                    target_id,
                    url,
                } => json!([p, target_type, target_id, url]),
                IndexValue::Uri { uri } => json!([p, uri]),
            };
            if let Value::Array(items) = &mut value {
                items.push(json!(row.group));
            }
            tables[table_of(&row.value)].push(value);
        }
        IndexPayload {
            tables: tables.map(|rows| Value::Array(rows).to_string()),
        }
    }
}

/// `INSERT INTO table … SELECT src.rid, values FROM <src>, <payload rows>` for one table. `src` is a
/// FROM item named `src` with the indexed resource's `rid` (a subquery or a CTE); `payload` is the
/// placeholder of the table's JSON.
pub(crate) fn insert_rows_sql(dialect: Dialect, table: &IndexTable, src: &str, payload: &str) -> String {
    let columns: Vec<&str> = table.columns.iter().map(|c| c.0).collect();
    let mut values = Vec::new();
    match dialect {
        Dialect::Sqlite => {
            values.push("e.value ->> 0".to_owned());
            for i in 0..=table.columns.len() {
                values.push(format!("e.value ->> {}", i + 1));
            }
            format!(
                "INSERT INTO {} (rid, param, {}, grp) SELECT src.rid, {} FROM {src}, json_each({payload}) e",
                table.name,
                columns.join(", "),
                values.join(", ")
            )
        }
        Dialect::Postgres => {
            values.push("(e ->> 0)::bigint".to_owned());
            for (i, (_, pg_type)) in table.columns.iter().enumerate() {
                values.push(format!("(e ->> {})::{pg_type}", i + 1));
            }
            values.push(format!("(e ->> {})::integer", table.columns.len() + 1));
            format!(
                "INSERT INTO {} (rid, param, {}, grp) SELECT src.rid, {} FROM {src}, \
                 json_array_elements({payload}::json) e",
                table.name,
                columns.join(", "),
                values.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn rows_go_to_their_tables_as_json_arrays() {
        let rows = vec![
            IndexRow {
                param: Arc::from("name"),
                param_id: 7,
                group: None,
                value: IndexValue::String {
                    normalized: "peter".into(),
                    exact: "Péter".into(),
                },
            },
            IndexRow {
                param: Arc::from("birthdate"),
                param_id: 9,
                group: Some(2),
                value: IndexValue::Date { low: i64::MIN, high: 5 },
            },
        ];
        let payload = IndexPayload::from_rows(&rows);
        assert_eq!(payload.tables[0], r#"[[7,"peter","Péter",null]]"#);
        assert_eq!(payload.tables[2], format!("[[9,{},5,2]]", i64::MIN));
        assert_eq!(payload.tables[1], "[]");
    }

    #[test]
    fn insert_statements_unpack_the_payload() {
        assert_eq!(
            insert_rows_sql(Dialect::Sqlite, &INDEX_TABLES[2], "resource src", "?9"),
            "INSERT INTO search_date (rid, param, low, high, grp) SELECT src.rid, e.value ->> 0, e.value ->> 1, \
             e.value ->> 2, e.value ->> 3 FROM resource src, json_each(?9) e"
        );
        assert_eq!(
            insert_rows_sql(Dialect::Postgres, &INDEX_TABLES[3], "current src", "$8"),
            "INSERT INTO search_number (rid, param, value, grp) SELECT src.rid, (e ->> 0)::bigint, \
             (e ->> 1)::double precision, (e ->> 2)::integer FROM current src, json_array_elements($8::json) e"
        );
    }
}
