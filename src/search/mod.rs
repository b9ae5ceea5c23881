//! The FHIR search engine's pure half: the search parameters, the index rows of a resource, and
//! the pipeline from a query string to SQL per dialect. It produces values and SQL, never touches
//! a database, and never sees a request or a user; `store` writes the rows and runs the SQL.
//!
//! ## Layout, bottom-up (a module imports only modules on the lines above its own)
//! - Plain values: `registry` (the search parameters, expressions compiled once), `index_row`
//!   (`IndexRow`, `IndexValue`), `limits` (page sizes and the broad-clause limit), `sql_parts`
//!   (the SQL pieces several query shapes write, and the `Form` of a clause), `value_sets`
//!   (ValueSet expansion for `:in`).
//! - `custom`: the registry in force, with the server's `SearchParameter` resources.
//! - `params`: one module per parameter type — extraction, index table and sort column, value
//!   parsing, SQL predicate; `params/mod.rs` is the one place that dispatches on the type.
//! - `extract`: a resource's index rows, through `params`. `query`: one parameter resolved into
//!   a typed `Clause`.
//! - `request`: the whole query string (clauses and result controls) as a `SearchRequest`;
//!   `compartments`: the compartment definitions and a compartment search's clause.
//! - `plan`: each clause as a set or row by row, from whether it is broad; `subset`: `_summary`
//!   and `_elements`.
//! - `compile/`: the SQL per dialect, in parts — `clause`, `sort`, `page`, `count`, `include`.

pub mod compartments;
pub mod compile;
pub mod custom;
pub mod extract;
pub mod index_row;
pub mod limits;
pub mod params;
pub mod plan;
pub mod query;
pub mod registry;
pub mod request;
mod sql_parts;
pub mod subset;
pub mod value_sets;

pub use extract::{index_rows, index_rows_for_write};
pub use index_row::{IndexRow, IndexValue};
pub use registry::{ParamType, Registry, SearchParam};
