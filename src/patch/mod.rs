//! Patches (R4 http.html#patch): JSON Patch (RFC 6902) and FHIRPath Patch (fhirpatch.html),
//! parsed once and applied to a copy of a resource. Pure: no store, no HTTP. The patch
//! interaction (`interactions::patch`) reads the current version, applies, validates and writes.

mod bounds;
mod fhirpath_patch;
mod json_patch;

pub use fhirpath_patch::FhirPathPatch;
pub use json_patch::JsonPatch;

use crate::error::{Error, ErrorKind, IssueCode, Result};
use serde_json::{Map, Value};

/// The media type of JSON Patch documents.
pub const JSON_PATCH_MEDIA_TYPE: &str = "application/json-patch+json";

/// A patch in either form.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch {
    Json(JsonPatch),
    FhirPath(FhirPathPatch),
}

impl Patch {
    /// A JSON Patch document given as bytes (a request body, or a Binary's data).
    pub fn json_patch(bytes: &[u8]) -> Result<Patch> {
        let document: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::structure(format!("the JSON Patch document is not valid JSON: {e}")))?;
        Ok(Patch::Json(JsonPatch::parse(&document)?))
    }

    /// A FHIRPath Patch: a `Parameters` resource.
    pub fn fhirpath_patch(parameters: &Map<String, Value>) -> Result<Patch> {
        Ok(Patch::FhirPath(FhirPathPatch::parse(parameters)?))
    }

    /// The patch of a Bundle entry: a `Parameters` resource (FHIRPath Patch) or a `Binary`
    /// holding a JSON Patch (http.html#patch, "in a transaction").
    pub fn from_entry_resource(resource: &Map<String, Value>) -> Result<Patch> {
        match resource.get("resourceType").and_then(Value::as_str) {
            Some("Parameters") => Patch::fhirpath_patch(resource),
            Some("Binary") => {
                let content_type = resource.get("contentType").and_then(Value::as_str).unwrap_or_default();
                if content_type.split(';').next().map(str::trim) != Some(JSON_PATCH_MEDIA_TYPE) {
                    return Err(Error::invalid(format!(
                        "a Binary patch must have contentType {JSON_PATCH_MEDIA_TYPE}, not '{content_type}'"
                    ))
                    .at("Binary.contentType"));
                }
                let data = resource.get("data").and_then(Value::as_str).unwrap_or_default();
                let bytes =
                    base64_decode(data).ok_or_else(|| Error::invalid("Binary.data is not base64").at("Binary.data"))?;
                Patch::json_patch(&bytes)
            }
            _ => Err(Error::invalid(
                "a PATCH entry's resource must be a Parameters (FHIRPath Patch) or a Binary (JSON Patch)",
            )
            .at("resourceType")),
        }
    }

    /// `resource` with the patch applied. A patch may not change `resourceType` or `id`
    /// (`422`), nor leave something that is not a resource.
    pub fn apply(&self, resource: &Map<String, Value>) -> Result<Map<String, Value>> {
        let mut patched = Value::Object(resource.clone());
        match self {
            Patch::Json(patch) => patch.apply(&mut patched)?,
            Patch::FhirPath(patch) => patch.apply(&mut patched)?,
        }
        if let Some(why) = bounds::check(&patched) {
            return Err(unprocessable(why));
        }
        let Value::Object(patched) = patched else {
            return Err(unprocessable(
                "the patch replaced the resource with something that is not a JSON object",
            ));
        };
        for member in ["resourceType", "id"] {
            if patched.get(member) != resource.get(member) {
                return Err(unprocessable(format!("a patch may not change the resource's {member}")).at(member));
            }
        }
        Ok(patched)
    }
}

fn unprocessable(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unprocessable, IssueCode::Processing, message)
}

/// Standard base64 (with or without padding; whitespace ignored), as FHIR's base64Binary.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes().filter(|b| !b.is_ascii_whitespace()) {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_base64() {
        assert_eq!(base64_decode("W3sib3AiOiJ0ZXN0In1d").unwrap(), br#"[{"op":"test"}]"#);
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI").unwrap(), b"ab");
        assert!(base64_decode("a*b").is_none());
    }

    #[test]
    fn a_patch_may_not_change_the_id_or_type() {
        let patient = json!({"resourceType": "Patient", "id": "a"});
        let patient = patient.as_object().unwrap();
        for pointer in ["/id", "/resourceType"] {
            let patch = Patch::json_patch(format!(r#"[{{"op":"replace","path":"{pointer}","value":"B"}}]"#).as_bytes())
                .unwrap();
            let e = patch.apply(patient).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Unprocessable, "{pointer}");
        }
        let patch = Patch::json_patch(br#"[{"op":"remove","path":"/id"}]"#).unwrap();
        assert!(patch.apply(patient).is_err());
    }

    #[test]
    fn entry_resources_are_parameters_or_a_json_patch_binary() {
        let binary = json!({"resourceType": "Binary", "contentType": "application/json-patch+json",
                            "data": "W3sib3AiOiJhZGQiLCJwYXRoIjoiL2FjdGl2ZSIsInZhbHVlIjp0cnVlfV0="});
        let patch = Patch::from_entry_resource(binary.as_object().unwrap()).unwrap();
        let patched = patch
            .apply(json!({"resourceType": "Patient"}).as_object().unwrap())
            .unwrap();
        assert_eq!(patched["active"], json!(true));
        let text = json!({"resourceType": "Binary", "contentType": "text/plain", "data": "YQ=="});
        assert!(Patch::from_entry_resource(text.as_object().unwrap()).is_err());
        let patient = json!({"resourceType": "Patient"});
        assert!(Patch::from_entry_resource(patient.as_object().unwrap()).is_err());
    }
}
