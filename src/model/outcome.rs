//! OperationOutcome resources: built from an `Error`, or as a single informational issue.

use crate::error::{Error, Issue, IssueCode};
use serde_json::{Value, json};

fn issue_json(severity: &str, issue: &Issue) -> Value {
    let mut out = json!({
        "severity": severity,
        "code": issue.code.as_str(),
        "diagnostics": issue.diagnostics,
    });
    if let Some(expression) = &issue.expression {
        out["expression"] = json!([expression]);
    }
    out
}

/// The OperationOutcome a client receives for `error` (never containing its private detail).
pub fn from_error(error: &Error) -> Value {
    let issues: Vec<Value> = error.issues.iter().map(|i| issue_json("error", i)).collect();
    json!({"resourceType": "OperationOutcome", "issue": issues})
}

/// An OperationOutcome with one `information` issue, e.g. for `Prefer: return=OperationOutcome`.
pub fn information(diagnostics: impl Into<String>) -> Value {
    let issue = Issue {
        code: IssueCode::Informational,
        diagnostics: diagnostics.into(),
        expression: None,
    };
    json!({"resourceType": "OperationOutcome", "issue": [issue_json("information", &issue)]})
}

/// Appends `warnings` to an OperationOutcome's issues, as `warning` issues.
pub fn add_warnings(outcome: &mut Value, warnings: &[Issue]) {
    if let Some(issues) = outcome["issue"].as_array_mut() {
        issues.extend(warnings.iter().map(|w| issue_json("warning", w)));
    }
}

/// An OperationOutcome of `warning` issues (diagnostics, expression), e.g. the search parameters a
/// search ignored.
pub fn warnings(notes: &[(String, String)]) -> Value {
    let issues: Vec<Value> = notes
        .iter()
        .map(|(diagnostics, expression)| {
            let issue = Issue {
                code: IssueCode::NotSupported,
                diagnostics: diagnostics.clone(),
                expression: Some(expression.clone()),
            };
            issue_json("warning", &issue)
        })
        .collect();
    json!({"resourceType": "OperationOutcome", "issue": issues})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_code_diagnostics_and_expression_but_not_private_detail() {
        let error = Error::internal("SELECT secret FROM x");
        let outcome = from_error(&error).to_string();
        assert!(!outcome.contains("secret"));
        let invalid = from_error(&Error::invalid("bad id").at("Patient.id"));
        assert_eq!(invalid["issue"][0]["code"], "invalid");
        assert_eq!(invalid["issue"][0]["severity"], "error");
        assert_eq!(invalid["issue"][0]["expression"][0], "Patient.id");
    }
}
