//! FHIR XML ⇄ FHIR JSON, driven by the generated type model (`model::structure`): which elements
//! repeat, which are primitives (a `value` attribute, with `id` and extensions in JSON's
//! `_element`), choice types (`valueQuantity`), `id`/`url` attributes, XHTML narrative (kept as
//! its exact text), and resources nested in `contained`, Bundle entries and Parameters.
//! The JSON side is `serde_json::Value` as everywhere else, so XML is only a wire format: a resource
//! read as XML is stored, validated and searched as the JSON it converts to.
//! Knows nothing of HTTP or storage.

mod reader;
mod writer;

pub use reader::from_xml;
pub use writer::to_xml;

/// The FHIR namespace every FHIR XML resource element is in.
pub const FHIR_NS: &str = "http://hl7.org/fhir";
