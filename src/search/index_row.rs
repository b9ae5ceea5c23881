//! What an index row is: one typed value of one search parameter of one resource. Plain data,
//! below everything else in `search`: the parameter-type modules (`params`) build these values,
//! `extract` gathers a resource's rows, and `store` writes them, so none of those needs the others
//! to name a row.

use std::sync::Arc;

/// One indexed value of one search parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// `normalized`: lower case without accents, for the default starts-with match; `exact` as written.
    String {
        normalized: String,
        exact: String,
    },
    /// `text` is a display or `CodeableConcept.text`, normalised as strings are, for `:text`.
    Token {
        system: Option<String>,
        code: Option<String>,
        text: Option<String>,
    },
    /// The half-open range `[low, high)` in microseconds since the epoch, from the value's precision.
    Date {
        low: i64,
        high: i64,
    },
    /// A number as written; searches compare it with the range their value stands for.
    Number {
        value: f64,
    },
    Quantity {
        value: f64,
        system: Option<String>,
        code: Option<String>,
        unit: Option<String>,
    },
    /// `Type/id` references split; `url` is the reference as written (absolute URLs, canonicals).
    Reference {
        target_type: Option<String>,
        target_id: Option<String>,
        url: String,
    },
    Uri {
        uri: String,
    },
}

/// One row of an index table: a value of a parameter, under the key of its table.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexRow {
    pub param: Arc<str>,
    /// The key of (resource type, parameter code) in the index tables; see `registry::param_id`.
    pub param_id: i64,
    /// For a component of a composite parameter, which of the composite's items (within this
    /// resource) the value came from; `None` for plain parameters.
    pub group: Option<u32>,
    pub value: IndexValue,
}
