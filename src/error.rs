//! The domain error: a category plus the OperationOutcome issues that explain it.
//!
//! Interactions and the store return `Error`; `http/` turns it into a response. Its status code
//! is chosen here (`ErrorKind::http_status`) because the entries of a batch-response carry one too.
//! `Internal` errors carry a private message for the log and a generic one for the client, so SQL
//! text or a driver message never reaches a caller.

use std::fmt;

/// What went wrong, coarse enough to choose an HTTP status (see `http::response`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: the request or resource is malformed.
    Invalid,
    /// 401: no credentials, or credentials that do not prove who the caller is (a missing,
    /// malformed, expired or revoked token).
    Unauthorized,
    /// 403: the caller is known but may not do this (a scope that does not cover the type or
    /// interaction). Never used where the answer would tell whether a resource exists: a read the
    /// caller may not see is a `NotFound`.
    Forbidden,
    /// 404: no such resource, version, route or type.
    NotFound,
    /// 410: the resource was deleted.
    Gone,
    /// 409: the write conflicts with the current state.
    Conflict,
    /// 412: an `If-Match` (or similar) precondition did not hold.
    PreconditionFailed,
    /// 405: the interaction exists but not with this method.
    MethodNotAllowed,
    /// 406: we cannot answer in the format asked for.
    NotAcceptable,
    /// 413: the body is larger than the configured limit.
    PayloadTooLarge,
    /// 415: the body is not in a format we accept.
    UnsupportedMediaType,
    /// 400 with issue code `too-costly`: a request the server refuses to carry out because of what
    /// it would cost (too many parameters, includes that fan out too far, chains too deep).
    TooCostly,
    /// 422: the request is well-formed but cannot be carried out on this resource (a patch
    /// whose `test` fails or whose path finds nothing).
    Unprocessable,
    /// 501: a FHIR capability this server does not (yet) provide.
    NotImplemented,
    /// 503: the database cannot be reached.
    Unavailable,
    /// 500: a bug or an unexpected failure below us; details are logged, not returned.
    Internal,
}

impl ErrorKind {
    /// The HTTP status code of this kind of error.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Invalid | ErrorKind::TooCostly => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Gone => 410,
            ErrorKind::Conflict => 409,
            ErrorKind::PreconditionFailed => 412,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::NotAcceptable => 406,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::Unprocessable => 422,
            ErrorKind::NotImplemented => 501,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

/// OperationOutcome.issue.code values used by this server (http://hl7.org/fhir/R4/valueset-issue-type.html).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueCode {
    Invalid,
    Structure,
    Required,
    Value,
    Processing,
    NotSupported,
    NotFound,
    Deleted,
    Conflict,
    TooLong,
    TooCostly,
    /// Security: the caller could not be authenticated (`login`), its credentials expired
    /// (`expired`), or it may not do what it asked (`forbidden`).
    Login,
    Expired,
    Forbidden,
    Exception,
    Transient,
    Informational,
}

impl IssueCode {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueCode::Invalid => "invalid",
            IssueCode::Structure => "structure",
            IssueCode::Required => "required",
            IssueCode::Value => "value",
            IssueCode::Processing => "processing",
            IssueCode::NotSupported => "not-supported",
            IssueCode::NotFound => "not-found",
            IssueCode::Deleted => "deleted",
            IssueCode::Conflict => "conflict",
            IssueCode::TooLong => "too-long",
            IssueCode::TooCostly => "too-costly",
            IssueCode::Login => "login",
            IssueCode::Expired => "expired",
            IssueCode::Forbidden => "forbidden",
            IssueCode::Exception => "exception",
            IssueCode::Transient => "transient",
            IssueCode::Informational => "informational",
        }
    }
}

/// One OperationOutcome issue (always severity `error` when inside an `Error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub code: IssueCode,
    pub diagnostics: String,
    /// FHIRPath-style location of the problem, e.g. `Patient.id`.
    pub expression: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub issues: Vec<Issue>,
    /// For `Gone`: the version that deleted the resource, served as its ETag.
    pub version_id: Option<i64>,
    /// For `Internal`/`Unavailable`: what the log gets; never sent to the client.
    pub private_detail: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Error {
            kind,
            issues: vec![Issue {
                code,
                diagnostics: diagnostics.into(),
                expression: None,
            }],
            version_id: None,
            private_detail: None,
        }
    }

    /// Sets the `expression` of the first issue.
    pub fn at(mut self, expression: impl Into<String>) -> Self {
        if let Some(issue) = self.issues.first_mut() {
            issue.expression = Some(expression.into());
        }
        self
    }

    /// The error as the failure of entry `index` of a Bundle: each issue's diagnostics start by
    /// naming the entry (and its `fullUrl`), and its expression is moved under
    /// `Bundle.entry[index]` (`Patient.name[0]` becomes `Bundle.entry[3].resource.name[0]`).
    pub fn in_entry(mut self, index: usize, full_url: Option<&str>) -> Self {
        let entry = format!("Bundle.entry[{index}]");
        let named = match full_url {
            Some(url) => format!("{entry} ({url})"),
            None => entry.clone(),
        };
        for issue in &mut self.issues {
            issue.diagnostics = format!("{named}: {}", issue.diagnostics);
            issue.expression = Some(match issue.expression.take() {
                Some(path) if path.starts_with("Bundle.") => path,
                Some(path) => match path.split_once('.') {
                    Some((_, rest)) => format!("{entry}.resource.{rest}"),
                    None => format!("{entry}.resource"),
                },
                None => entry.clone(),
            });
        }
        self
    }

    pub fn invalid(diagnostics: impl Into<String>) -> Self {
        Error::new(ErrorKind::Invalid, IssueCode::Invalid, diagnostics)
    }

    pub fn structure(diagnostics: impl Into<String>) -> Self {
        Error::new(ErrorKind::Invalid, IssueCode::Structure, diagnostics)
    }

    pub fn not_found(diagnostics: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, IssueCode::NotFound, diagnostics)
    }

    pub fn gone(diagnostics: impl Into<String>, deleting_version: i64) -> Self {
        let mut e = Error::new(ErrorKind::Gone, IssueCode::Deleted, diagnostics);
        e.version_id = Some(deleting_version);
        e
    }

    pub fn precondition_failed(diagnostics: impl Into<String>) -> Self {
        Error::new(ErrorKind::PreconditionFailed, IssueCode::Conflict, diagnostics)
    }

    pub fn conflict(diagnostics: impl Into<String>) -> Self {
        Error::new(ErrorKind::Conflict, IssueCode::Conflict, diagnostics)
    }

    /// 401: the caller is not authenticated; `code` is `login` or `expired`.
    pub fn unauthorized(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unauthorized, code, diagnostics)
    }

    /// 403: the caller may not do this.
    pub fn forbidden(diagnostics: impl Into<String>) -> Self {
        Error::new(ErrorKind::Forbidden, IssueCode::Forbidden, diagnostics)
    }

    /// 400 `too-costly`: the request would cost more than the server carries out.
    pub fn too_costly(diagnostics: impl Into<String>) -> Self {
        Error::new(ErrorKind::TooCostly, IssueCode::TooCostly, diagnostics)
    }

    pub fn not_implemented(diagnostics: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotImplemented, IssueCode::NotSupported, diagnostics)
    }

    /// An unexpected failure: `detail` goes to the log only.
    pub fn internal(detail: impl Into<String>) -> Self {
        let mut e = Error::new(
            ErrorKind::Internal,
            IssueCode::Exception,
            "internal server error; the server log has the details under this response's X-Request-Id",
        );
        e.private_detail = Some(detail.into());
        e
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut e = Error::new(
            ErrorKind::Unavailable,
            IssueCode::Transient,
            "the database is not reachable; try again later",
        );
        e.private_detail = Some(detail.into());
        e
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.kind)?;
        for issue in &self.issues {
            write!(f, ": {}", issue.diagnostics)?;
        }
        if let Some(detail) = &self.private_detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Error::unavailable(e.to_string())
            }
            other => Error::internal(format!("database: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_categories_have_their_statuses_and_codes() {
        let unauthorized = Error::unauthorized(IssueCode::Expired, "the token expired");
        assert_eq!(unauthorized.kind.http_status(), 401);
        assert_eq!(unauthorized.issues[0].code.as_str(), "expired");
        let forbidden = Error::forbidden("no scope covers Observation");
        assert_eq!(
            (forbidden.kind.http_status(), forbidden.issues[0].code.as_str()),
            (403, "forbidden")
        );
        let costly = Error::too_costly("_include:iterate fans out too far");
        assert_eq!(
            (costly.kind.http_status(), costly.issues[0].code.as_str()),
            (400, "too-costly")
        );
        assert_eq!(IssueCode::Login.as_str(), "login");
    }
}
