//! A condition (R4 http.html#ccreate, #cond-update, #cdelete, #trules): the search that names
//! the resources a conditional interaction or a conditional reference acts on, as the type and
//! the query pairs of `Patient?identifier=sys|123`. A value only; `conditional` finds what it
//! matches.

use crate::model::ResourceType;

/// A search that names the resources a conditional interaction acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub resource_type: ResourceType,
    pub query: Vec<(String, String)>,
}

impl Condition {
    /// The query part of a conditional URL (`If-None-Exist: identifier=…`, `PUT Patient?…`) for
    /// `resource_type`.
    pub fn new(resource_type: ResourceType, query: &str) -> Condition {
        Condition {
            resource_type,
            query: form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
                .into_owned()
                .collect(),
        }
    }

    /// `Type?query`, as in a conditional reference or a Bundle entry's `request.url`; `None` when
    /// `text` is not of that form.
    pub fn parse_url(text: &str) -> Option<Condition> {
        let (type_name, query) = text.split_once('?')?;
        let resource_type = ResourceType::parse(type_name)?;
        Some(Condition::new(resource_type, query))
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Decoded, as a person would write it in a message.
        let query: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        write!(f, "{}?{}", self.resource_type, query.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_conditional_urls_and_shows_them_back() {
        let c = Condition::parse_url("Patient?identifier=http://x|1&active=true").unwrap();
        assert_eq!(c.resource_type.as_str(), "Patient");
        assert_eq!(
            c.query,
            vec![
                ("identifier".to_owned(), "http://x|1".to_owned()),
                ("active".to_owned(), "true".to_owned())
            ]
        );
        assert_eq!(c.to_string(), "Patient?identifier=http://x|1&active=true");
        assert!(Condition::parse_url("Patient/1").is_none());
        assert!(Condition::parse_url("NoSuchType?a=b").is_none());
        let header = Condition::new(c.resource_type, "identifier=a%7Cb");
        assert_eq!(header.query, vec![("identifier".to_owned(), "a|b".to_owned())]);
    }
}
