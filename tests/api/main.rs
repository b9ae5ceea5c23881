//! Integration tests over HTTP: every test runs against a real server on both SQLite and PostgreSQL.

mod harness;
#[path = "../common/shared.rs"]
mod shared;

mod audit;
mod audit_pending;
mod auth;
mod batch;
mod capabilities;
mod concurrency;
mod conditional;
mod conformance;
mod consent_agreement;
mod consent_enforced;
mod consent_evaluate;
mod corpus;
mod crash;
mod create_read;
mod custom_search;
mod delete;
mod durability;
mod errors;
mod headers;
mod history;
mod history_order;
mod history_owners;
mod ingest;
mod patch;
mod search;
mod store_groups;
mod transaction;
mod update;
mod validate;
