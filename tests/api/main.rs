//! Integration tests over HTTP: every test runs against a real server on both SQLite and PostgreSQL.

mod harness;

mod capabilities;
mod concurrency;
mod corpus;
mod create_read;
mod custom_search;
mod delete;
mod errors;
mod headers;
mod history;
mod search;
mod update;
mod validate;
