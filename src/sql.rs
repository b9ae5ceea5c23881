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
}

/// SQL text with numbered placeholders and the values they stand for, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    pub dialect: Dialect,
    pub text: String,
    pub binds: Vec<SqlValue>,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Sql {
        Sql {
            dialect,
            text: String::new(),
            binds: Vec::new(),
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

    /// A column holding resource JSON, as text.
    pub fn content_column(&mut self, column: &str) -> &mut Self {
        match self.dialect {
            Dialect::Sqlite => self.push(column),
            Dialect::Postgres => self.push(column).push("::text"),
        }
    }
}
