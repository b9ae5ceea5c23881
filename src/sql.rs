//! SQL as values: text with numbered placeholders plus the typed values bound to them, for one
//! `Dialect`. `search` builds its queries with it and `store` runs them; each backend binds the
//! values its own way (a time is integer microseconds on SQLite and `timestamptz` on PostgreSQL).

use chrono::{DateTime, Utc};
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A value to bind to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
    Real(f64),
    /// A list of texts, bound as one `text[]` (PostgreSQL only: see `Sql::in_list`).
    Texts(Vec<String>),
}

/// SQL text with numbered placeholders and the values they stand for, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    pub dialect: Dialect,
    pub text: String,
    pub binds: Vec<SqlValue>,
    /// Worth a plan kept for the next run. A query with a list bound as one value (`in_list`)
    /// is not: PostgreSQL's plan kept for any list (its "generic" plan, chosen after five runs)
    /// cannot see the list's size, and took 48 ms where a plan for the list at hand took 9.
    pub reusable: bool,
    /// Inside a clause that only leaves resources out (`Not`, a consent's exclusions): long lists
    /// are written for PostgreSQL as `= ANY((SELECT …)::text[])` (see `in_list`).
    pub excluding: bool,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Sql {
        Sql {
            dialect,
            text: String::new(),
            binds: Vec::new(),
            reusable: true,
            excluding: false,
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `value` (`?N` on SQLite, `$N` on PostgreSQL).
    pub fn bind(&mut self, value: SqlValue) -> &mut Self {
        self.binds.push(value);
        let n = self.binds.len();
        match self.dialect {
            Dialect::Sqlite => write!(self.text, "?{n}"),
            Dialect::Postgres => write!(self.text, "${n}"),
        }
        .expect("writing to a String cannot fail");
        self
    }

    /// `expression IN (values)`. A long list is one bound value rather than a placeholder each
    /// (SQLite looks a placeholder's name up by a walk over all of them, so hundreds cost more
    /// than the query): a JSON array read with `json_each` on SQLite, a `text[]` on PostgreSQL,
    /// whose planner estimates `= ANY(array)` where it cannot see into a function's rows.
    pub fn in_list<'v>(&mut self, expression: &str, values: impl IntoIterator<Item = &'v str>) -> &mut Self {
        const LONG: usize = 16;
        let values: Vec<&str> = values.into_iter().collect();
        if values.len() <= LONG {
            self.push(expression).push(" IN (");
            for (n, value) in values.iter().enumerate() {
                if n > 0 {
                    self.push(", ");
                }
                self.bind(SqlValue::Text((*value).to_owned()));
            }
            return self.push(")");
        }
        self.reusable = false;
        match self.dialect {
            Dialect::Sqlite => {
                let array = serde_json::to_string(&values).expect("strings serialise");
                self.push(expression)
                    .push(" IN (SELECT value FROM json_each(")
                    .bind(SqlValue::Text(array))
                    .push("))")
            }
            // What excludes is planned without an estimate per element: PostgreSQL estimates
            // `= ANY(array)` element by element against the column's statistics, which doubled
            // the planning of a search narrowed by the 125 patients of a consent benchmark (0.69
            // against 0.32 ms). The array as the value of a sub-select (an init plan, computed
            // once) hides its elements from the estimate; `IN (SELECT unnest(…))` did too, but
            // was planned as a join re-run for each row a chain tested (12.8 → 22 ms). Lists
            // that select keep the estimate their plans need.
            Dialect::Postgres if self.excluding => self
                .push(expression)
                .push(" = ANY((SELECT ")
                .bind(SqlValue::Texts(values.iter().map(|v| (*v).to_owned()).collect()))
                .push("::text[])::text[])"),
            // A typed array: a text cast to one would be parsed again for every row tested.
            Dialect::Postgres => self
                .push(expression)
                .push(" = ANY(")
                .bind(SqlValue::Texts(values.iter().map(|v| (*v).to_owned()).collect()))
                .push(")"),
        }
    }

    /// Runs `write` with `excluding` on (see the field).
    pub fn while_excluding<R>(&mut self, write: impl FnOnce(&mut Sql) -> R) -> R {
        let before = std::mem::replace(&mut self.excluding, true);
        let result = write(self);
        self.excluding = before;
        result
    }

    /// A column holding resource JSON, as text.
    pub fn content_column(&mut self, column: &str) -> &mut Self {
        match self.dialect {
            Dialect::Sqlite => self.push(column),
            Dialect::Postgres => self.push(column).push("::text"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_list_binds_each_value_and_a_long_one_binds_one() {
        let mut short = Sql::new(Dialect::Sqlite);
        short.in_list("r.id", ["a", "b"]);
        assert_eq!(short.text, "r.id IN (?1, ?2)");
        let ids: Vec<String> = (0..20).map(|n| format!("p{n}")).collect();
        let mut sqlite = Sql::new(Dialect::Sqlite);
        sqlite.in_list("r.id", ids.iter().map(String::as_str));
        assert_eq!(sqlite.text, "r.id IN (SELECT value FROM json_each(?1))");
        assert_eq!(sqlite.binds.len(), 1);
        let mut postgres = Sql::new(Dialect::Postgres);
        postgres.in_list("r.id", ["x\"y"].into_iter().chain(ids.iter().map(String::as_str)));
        assert_eq!(postgres.text, "r.id = ANY($1)");
        assert_eq!(
            postgres.binds[0],
            SqlValue::Texts([vec!["x\"y".to_owned()], ids.clone()].concat())
        );
        assert!(!postgres.reusable && !sqlite.reusable && short.reusable);
        let mut excluding = Sql::new(Dialect::Postgres);
        excluding.push("NOT (");
        excluding.while_excluding(|sql| {
            sql.in_list("r.id", ids.iter().map(String::as_str));
        });
        excluding.push(") AND ").in_list("r.id", ids.iter().map(String::as_str));
        assert_eq!(
            excluding.text, "NOT (r.id = ANY((SELECT $1::text[])::text[])) AND r.id = ANY($2)",
            "only what excludes is written without an estimate per element"
        );
    }
}
