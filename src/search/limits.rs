//! The server's search limits: page sizes, how many matches a default total counts, and how many
//! index rows make a clause broad. Plain values set once from the configuration; `request` reads
//! the page sizes, `plan` and the search interaction the rest.

/// Index rows a clause must have to be called broad. Gathering this many rids as a set
/// takes a few milliseconds; a page of twenty found row by row among resources of which at least
/// this many match (of a million) takes a few thousand lookups.
pub const SET_LIMIT: u32 = 5_000;

/// Most parameters one search may have; more is a `400 too-costly`.
pub const MAX_PARAMETERS: usize = 100;

/// Most links of a chain (`subject:Patient.organization.name` has two), counting `_has` steps;
/// deeper is a `400 too-costly`.
pub const MAX_CHAIN_DEPTH: usize = 4;

/// The limits a search runs under. Page sizes: the default when `_count` is absent, and the
/// largest honoured.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub default_count: u32,
    pub max_count: u32,
    /// Most matches counted for a default (`_total` not given) total; see `ServeConfig`.
    pub default_total_limit: u32,
    /// Index rows a clause may have and still be gathered as a set (see `search::plan`).
    pub set_limit: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            default_count: 20,
            max_count: 1000,
            default_total_limit: 1000,
            set_limit: SET_LIMIT,
        }
    }
}
