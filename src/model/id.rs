//! The logical id of a resource: `[A-Za-z0-9\-\.]{1,64}` (R4 datatypes.html#id).

use crate::error::{Error, Result};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Id(String);

impl Id {
    pub fn parse(value: &str) -> Result<Id> {
        if is_valid_id(value) {
            Ok(Id(value.to_owned()))
        } else {
            Err(Error::invalid(format!(
                "'{}' is not a valid resource id: 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'",
                truncate_for_message(value)
            )))
        }
    }

    /// A fresh server-assigned id (a random UUID, 36 characters).
    pub fn generate() -> Id {
        Id(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn is_valid_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn truncate_for_message(value: &str) -> String {
    value.chars().take(80).collect()
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_r4_id_alphabet_up_to_64_characters() {
        assert!(Id::parse("example").is_ok());
        assert!(Id::parse("a.b-C9").is_ok());
        assert!(Id::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn rejects_empty_long_and_foreign_characters() {
        assert!(Id::parse("").is_err());
        assert!(Id::parse(&"x".repeat(65)).is_err());
        assert!(Id::parse("a_b").is_err());
        assert!(Id::parse("a/b").is_err());
        assert!(Id::parse("é").is_err());
    }

    #[test]
    fn generated_ids_are_valid() {
        assert!(is_valid_id(Id::generate().as_str()));
    }
}
