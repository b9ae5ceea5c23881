//! The request context every interaction takes: the server's services, who is asking, and the
//! request's id. One value, built once per request by `http/` (or per Bundle, whose entries share
//! it), so that a permission check or an audit record has the caller wherever data is read or
//! written. Work the server does for itself gets a context of its own with a `System` caller.

use super::Services;
use super::outcome::Outcome;
use super::request::Request;
use crate::auth::{Caller, SystemTask};
use crate::error::Result;
use crate::store::BoxFuture;
use std::sync::Arc;

/// The dispatcher, as the interactions inside it that run requests of their own (the entries of
/// a transaction or batch) receive it: they cannot name `dispatch::dispatch`, which names them.
pub type Dispatch = for<'a> fn(&'a Cx, Request) -> BoxFuture<'a, Result<Outcome>>;

/// A request's context: what it may use, on whose behalf, and how the log names it.
#[derive(Clone)]
pub struct Cx {
    pub services: Arc<Services>,
    pub caller: Caller,
    /// The `X-Request-Id` of the HTTP request, or a name for work the server does for itself.
    pub request_id: Arc<str>,
    /// What consents decide for this caller, read at its first need (`access::consent::view`).
    pub consent: Arc<tokio::sync::OnceCell<Option<Arc<super::access::consent::View>>>>,
}

impl Cx {
    pub fn new(services: Arc<Services>, caller: Caller, request_id: impl Into<Arc<str>>) -> Cx {
        Cx {
            services,
            caller,
            request_id: request_id.into(),
            consent: Arc::default(),
        }
    }

    /// A context for work the server does for itself, outside any request (loading stored
    /// search parameters at start-up, a `$reindex` job, the data generator).
    pub fn system(services: Arc<Services>, task: SystemTask) -> Cx {
        Cx::new(services, Caller::System(task), format!("system-{task:?}"))
    }

    /// The server's own work for `task` on behalf of this request (looking up the ValueSets a
    /// search names): the same services and request id, the system as the caller.
    pub fn as_system(&self, task: SystemTask) -> Cx {
        Cx {
            services: self.services.clone(),
            caller: Caller::System(task),
            request_id: self.request_id.clone(),
            consent: Arc::default(),
        }
    }
}
