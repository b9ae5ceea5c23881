//! # fhir-server: a FHIR R4 (4.0.1) server
//!
//! ## Layout
//! - [`config`]: command line and environment settings.
//! - [`app`]: wiring — opens the store, builds the router, serves; `start` is used by tests too;
//!   `app::authorization` builds the authorization the `--auth-…` settings ask for.
//! - [`http`]: the only module that knows axum: the front door to `/fhir/R4` (`door`: an HTTP
//!   request as a typed request), the bearer token of a request (`authenticate`: the `Caller`,
//!   and `401` answers), the OAuth endpoints of the built-in authorization server (`oauth`),
//!   content negotiation, headers, request ids, the responses to typed outcomes (`respond`), and
//!   the mapping of domain errors to OperationOutcome responses.
//! - [`auth`]: who is asking (`Caller`): anonymous while authorization is off, the holder of a
//!   verified access token (`token`: signatures, claims, the cache of verified tokens; `scope`:
//!   SMART scopes as permissions), or the server itself (`System`) for work it does on its own;
//!   keys (`keys`, `jwks_url`), the built-in Backend Services authorization server (`issuer`),
//!   and what clients are told (`discovery`). No database, no request.
//! - [`interactions`]: the one request path and the interactions on it. A URL is routed
//!   (`route`, shared by HTTP and Bundle entries) into a typed `request::Request`, which
//!   `dispatch::dispatch` runs in a request context (`context::Cx`: services, caller, request
//!   id) and answers with a typed `outcome::Outcome`, serialised at the edge. One file per FHIR
//!   interaction (read, vread, create, update, delete, patch, history, search, capabilities,
//!   transaction, batch) and operation (`$validate`, `$reindex`); `access`: what the caller may
//!   do, checked on this one path (`check` before a request runs, `narrow` in SQL, `disclose`
//!   per resource leaving the server, `writes`; patients' consents after the scopes:
//!   `consent`, `consent_narrow`, `consent_store`); plus what they share:
//!   conditional matching, conditional references and the locks of conditional creates
//!   (`conditional`), the entries of an incoming Bundle as requests (`bundle_request`, the
//!   second front door), the rewriting of references between them (`bundle_references`), the
//!   response Bundle (`bundle_response`), and what search needs from the store
//!   (`value_set_lookup`, `search_parameters`). No HTTP types.
//! - [`audit`]: the audit trail: AuditEvents (IHE BALP) for refusals and, with `--audit all`,
//!   every request, queued without waiting; `interactions::audit_writer` appends them to the
//!   database in compact batches, and `interactions::audit_index` makes them AuditEvent resources
//!   when the server is idle or before a request reads the trail.
//! - [`consent`]: whether a patient's Consent resources let a requester see a resource: a pure
//!   decision over values (`policy`: a Consent read into rules; `facts`: what provisions ask of a
//!   resource; `evaluate`: the provision tree), applied on the request path by
//!   `interactions::access::consent`.
//! - [`bundle`]: Bundles the server writes (history, searchset, transaction- and batch-response);
//!   searchsets and history pages as typed values (`Searchset`, `HistoryPage`) until the edge.
//! - [`store`]: the versioned store — `Store` trait, `sqlite` and `postgres` implementations; the
//!   rules of a write in one pure function (`store::rules`: version numbers, creation, revival,
//!   nothing to delete, `If-Match`, and whose each version is); shared SQL in `store::sql` and
//!   `store::owners` (the back-fill of the per-version owner record); bulk writes of a
//!   transaction's group planned in `store::group` (each backend's `group` module writes the
//!   rows); embedded migrations.
//! - [`model`]: FHIR values valid by construction (`ResourceType`, `Id`, `Instant`, …) and the
//!   OperationOutcome builder.
//! - [`search`]: the search engine's pure half, layered bottom-up: plain values (the parameter
//!   registry, `index_row`, `limits`, the shared SQL pieces `sql_parts`); one module per parameter
//!   type (`search::params`: extraction, index table and sort column, parsing, SQL predicate, with
//!   the one dispatch on the type); index-row extraction (`extract`); and the pipeline query
//!   string → resolved clauses (`query`, `request`) → SQL per dialect (`compile/`: clause, sort,
//!   page, count, include), each clause as a set or tested row by row as `plan` chooses from
//!   whether it is broad; compartments, the registry in force with custom `SearchParameter`s
//!   (`custom`) and ValueSet expansion (`value_sets`). No database, no user; never imports `store`.
//! - [`sql`]: SQL as values (text, numbered placeholders, typed binds) for SQLite or PostgreSQL.
//! - [`fhirpath`]: FHIRPath parser and evaluator over FHIR JSON (a leaf: depends on nothing here).
//! - [`patch`]: JSON Patch (RFC 6902) and FHIRPath Patch, applied to a copy of a resource; pure
//!   (the `patch` interaction reads, applies, validates and writes).
//! - [`definitions`]: the generator that turns the official R4 package into `fhir-schemas/`.
//! - [`conformance`]: the TestScript engine (`fhir-server conformance`): scripts run against any
//!   FHIR R4 server over HTTP, each leaving a TestReport; a client of a server, not part of one.
//! - [`generate`]: a seeded Synthea-like data set (`fhir-server generate`) written through the
//!   store as the server itself (a system caller), for benchmarks.
//! - [`error`]: the domain `Error` (a category plus OperationOutcome issues).
//!
//! ## Dependency rules (never the other way)
//! `http` → `interactions` → {`auth`, `bundle`, `store`, `search`, `validate`, `patch`} → `model` → `error`;
//! `store` → `search` (index rows and their tables) → `sql`; inside `search`, each module imports
//! only the ones below it (see its layout). `fhirpath` and `xml` sit below them (`fhirpath`
//! imports nothing from the crate).
//! Nothing but `http` and `app` imports axum; `http` imports no store type. `store` and `search`
//! never see a caller, a scope or a request; `store::sqlite` and `store::postgres` never import
//! each other. No module imports one that imports it back. `tests/architecture.rs` checks these.

pub mod app;
pub mod audit;
pub mod auth;
pub mod bundle;
pub mod config;
pub mod conformance;
pub mod consent;
pub mod definitions;
pub mod error;
pub mod fhirpath;
pub mod generate;
pub mod http;
pub mod interactions;
pub mod model;
pub mod patch;
pub mod search;
pub mod sql;
pub mod store;
pub mod validate;
pub mod xml;
