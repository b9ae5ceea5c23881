//! Reading what the client asked for: response format (`Accept`, `_format`, `_pretty`), request
//! body format (`Content-Type`), `Prefer`, and `If-Match`.

use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::model::VersionId;
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE, IF_MATCH};

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";
pub const PLAIN_JSON: &str = "application/json; charset=utf-8";
pub const FHIR_XML: &str = "application/fhir+xml; charset=utf-8";

/// How to write a response body. Handlers always produce JSON; when `xml` is set, the HTTP layer
/// converts the finished response (see `http::convert_to_xml`), so every interaction speaks XML
/// without knowing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub content_type: &'static str,
    pub pretty: bool,
    pub xml: bool,
}

impl Default for Format {
    fn default() -> Self {
        Format {
            content_type: FHIR_JSON,
            pretty: false,
            xml: false,
        }
    }
}

/// The query pairs, percent-decoded.
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

#[derive(Clone, Copy)]
enum Wanted {
    FhirJson,
    PlainJson,
    Xml,
    Other,
}

fn classify(mime: &str) -> Wanted {
    match mime.trim().to_ascii_lowercase().as_str() {
        "application/fhir+json" | "application/json+fhir" | "json" | "*/*" | "application/*" => Wanted::FhirJson,
        "application/json" | "text/json" => Wanted::PlainJson,
        "application/fhir+xml" | "application/xml+fhir" | "application/xml" | "text/xml" | "xml" => Wanted::Xml,
        _ => Wanted::Other,
    }
}

fn format_for(wanted: Wanted, pretty: bool) -> Option<Format> {
    match wanted {
        Wanted::FhirJson => Some(Format {
            content_type: FHIR_JSON,
            pretty,
            xml: false,
        }),
        Wanted::PlainJson => Some(Format {
            content_type: PLAIN_JSON,
            pretty,
            xml: false,
        }),
        Wanted::Xml => Some(Format {
            content_type: FHIR_XML,
            pretty,
            xml: true,
        }),
        Wanted::Other => None,
    }
}

/// Chooses the response format: `_format` wins over `Accept`; no preference means FHIR JSON.
pub fn response_format(headers: &HeaderMap, query: &[(String, String)]) -> Result<Format> {
    let pretty = query.iter().any(|(k, v)| k == "_pretty" && v == "true");
    if let Some((_, asked)) = query.iter().find(|(k, _)| k == "_format") {
        let mime = asked.split(';').next().unwrap_or_default();
        return format_for(classify(mime), pretty).ok_or_else(|| {
            Error::new(
                ErrorKind::NotAcceptable,
                IssueCode::NotSupported,
                format!(
                    "_format '{asked}' is not supported; use json, xml, application/fhir+json or application/fhir+xml"
                ),
            )
            .at("_format")
        });
    }
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Format {
            pretty,
            ..Format::default()
        });
    };
    // The first media range we can serve, in the client's order (quality values are not weighed:
    // clients list what they prefer first, and FHIR JSON and XML are all a FHIR server serves).
    accept
        .split(',')
        .filter(|range| !refused(range))
        .find_map(|range| format_for(classify(range.split(';').next().unwrap_or_default()), pretty))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotAcceptable,
                IssueCode::NotSupported,
                format!(
                    "cannot answer in '{accept}'; this server answers in application/fhir+json or application/fhir+xml"
                ),
            )
        })
}

/// A media range with `q=0` means "not this one" (RFC 9110 §12.4.2).
fn refused(range: &str) -> bool {
    range.split(';').skip(1).any(|parameter| {
        parameter
            .trim()
            .strip_prefix("q=")
            .and_then(|q| q.trim().parse::<f32>().ok())
            .is_some_and(|q| q == 0.0)
    })
}

/// What a request body is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Xml,
}

/// A body must be FHIR JSON or FHIR XML. A missing Content-Type is taken as JSON; anything else is a 415.
pub fn body_format(headers: &HeaderMap) -> Result<BodyFormat> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(BodyFormat::Json);
    };
    let text = value.to_str().unwrap_or_default();
    let mime = text.split(';').next().unwrap_or_default();
    match classify(mime) {
        Wanted::FhirJson | Wanted::PlainJson if !mime.contains('*') => Ok(BodyFormat::Json),
        Wanted::Xml => Ok(BodyFormat::Xml),
        _ => Err(Error::new(
            ErrorKind::UnsupportedMediaType,
            IssueCode::NotSupported,
            format!("Content-Type '{text}' is neither FHIR JSON nor FHIR XML; send application/fhir+json"),
        )),
    }
}

/// `Prefer: return=…` (http.html#ins-return).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Return {
    Minimal,
    #[default]
    Representation,
    OperationOutcome,
}

pub fn prefer_return(headers: &HeaderMap) -> Return {
    for value in headers.get_all("prefer") {
        for token in value.to_str().unwrap_or_default().split([',', ';']) {
            match token.trim().strip_prefix("return=").map(|v| v.trim_matches('"')) {
                Some("minimal") => return Return::Minimal,
                Some("representation") => return Return::Representation,
                Some("OperationOutcome") => return Return::OperationOutcome,
                _ => {}
            }
        }
    }
    Return::Representation
}

/// `Prefer: handling=strict` (search.html#errors): refuse unknown or unsupported search
/// parameters instead of ignoring them.
pub fn prefer_strict_handling(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|value| {
        value
            .to_str()
            .unwrap_or_default()
            .split([',', ';'])
            .any(|token| token.trim() == "handling=strict")
    })
}

use crate::model::parse_etag;

/// `If-Match: W/"n"`; a malformed tag is a 400 rather than being silently ignored.
pub fn if_match(headers: &HeaderMap) -> Result<Option<VersionId>> {
    let Some(value) = headers.get(IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    parse_etag(text).map(Some).ok_or_else(|| {
        Error::invalid(format!("If-Match '{text}' is not a version ETag such as W/\"3\"")).at("If-Match")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn format_parameter_overrides_accept() {
        let h = headers(&[("accept", "application/fhir+xml")]);
        let q = vec![("_format".to_string(), "json".to_string())];
        assert_eq!(response_format(&h, &q).unwrap().content_type, FHIR_JSON);
        assert!(response_format(&h, &[]).unwrap().xml);
        let q = vec![("_format".to_string(), "turtle".to_string())];
        assert_eq!(response_format(&h, &q).unwrap_err().kind, ErrorKind::NotAcceptable);
    }

    #[test]
    fn accept_picks_the_first_servable_range() {
        let h = headers(&[("accept", "text/html, application/fhir+json;q=0.9, */*;q=0.8")]);
        assert_eq!(response_format(&h, &[]).unwrap().content_type, FHIR_JSON);
        let h = headers(&[("accept", "text/html, application/xml;q=0.9, */*;q=0.8")]);
        assert!(response_format(&h, &[]).unwrap().xml, "the first servable range wins");
        let h = headers(&[("accept", "application/json")]);
        assert_eq!(response_format(&h, &[]).unwrap().content_type, PLAIN_JSON);
        let h = headers(&[("accept", "text/plain")]);
        assert!(response_format(&h, &[]).is_err());
        let h = headers(&[("accept", "application/fhir+xml;q=0, application/fhir+json")]);
        assert_eq!(
            response_format(&h, &[]).unwrap().content_type,
            FHIR_JSON,
            "q=0 refuses XML"
        );
    }

    #[test]
    fn body_must_be_json_or_xml() {
        let fhir_json = headers(&[("content-type", "application/fhir+json; fhirVersion=4.0")]);
        assert_eq!(body_format(&fhir_json).unwrap(), BodyFormat::Json);
        assert_eq!(
            body_format(&headers(&[("content-type", "application/json")])).unwrap(),
            BodyFormat::Json
        );
        assert_eq!(
            body_format(&headers(&[("content-type", "application/fhir+xml")])).unwrap(),
            BodyFormat::Xml
        );
        assert_eq!(body_format(&headers(&[])).unwrap(), BodyFormat::Json);
        let e = body_format(&headers(&[("content-type", "text/plain")])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsupportedMediaType);
    }

    #[test]
    fn if_match_takes_weak_and_strong_tags_and_refuses_malformed_ones() {
        assert_eq!(if_match(&headers(&[("if-match", "W/\"3\"")])).unwrap(), Some(3));
        assert_eq!(if_match(&headers(&[("if-match", "\"4\"")])).unwrap(), Some(4));
        assert!(if_match(&headers(&[("if-match", "3")])).is_err());
    }

    #[test]
    fn prefer_return_values() {
        assert_eq!(
            prefer_return(&headers(&[("prefer", "return=minimal")])),
            Return::Minimal
        );
        assert_eq!(
            prefer_return(&headers(&[("prefer", "handling=strict, return=OperationOutcome")])),
            Return::OperationOutcome
        );
        assert_eq!(prefer_return(&headers(&[])), Return::Representation);
    }
}
