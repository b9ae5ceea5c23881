//! Who is asking: the caller of a request, as every interaction sees it (`interactions::Cx`).
//!
//! Today the HTTP edge knows one kind of outside caller, `Anonymous`: authorization is off, and
//! whoever reaches the port may do everything. Work the server does for itself is done by an
//! explicit `System` caller naming the task, never by a caller left out or defaulted, so that
//! when permission checks arrive they cannot be skipped by a path that forgot to pass one. This
//! module never sees a database, a request or axum.

/// The one on whose behalf an interaction runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Authorization is off: an unauthenticated caller from outside, restricted by nothing.
    Anonymous,
    /// The server itself, doing `SystemTask` (not on behalf of any outside caller).
    System(SystemTask),
}

/// The work the server does for itself, named so that logs and a later audit trail can say
/// why the server read or wrote what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemTask {
    /// Looking up the ValueSets that `:in` / `:not-in` name, to expand them into codes.
    ValueSetLookup,
    /// Loading the stored `SearchParameter` resources into the registry.
    SearchParameterLoad,
    /// A `$reindex` job re-indexing stored resources.
    Reindex,
    /// `fhir-server generate` writing a synthetic data set.
    Generate,
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Anonymous => f.write_str("anonymous"),
            Caller::System(task) => write!(f, "system ({task:?})"),
        }
    }
}
