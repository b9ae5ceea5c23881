//! The FHIR search engine's pure half: the registry of search parameters (from the generated
//! `search-params/`, expressions compiled once) and the extraction of index rows from a resource,
//! one module per parameter type under `params/`. It produces values, never touches a database, and
//! never sees a request or a user; `store` writes the rows and runs the SQL built from them.

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
