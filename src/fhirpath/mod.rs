//! FHIRPath (N1, <http://hl7.org/fhirpath/N1/>, as profiled by FHIR R4) over FHIR JSON held in
//! `serde_json::Value`. An [`Expression`] is parsed once and evaluated many times; results borrow
//! from the input wherever they can. This module owns the grammar, the evaluation rules and the
//! function library; it depends on nothing else in the crate, and it learns about FHIR types only
//! through the [`ModelInfo`] trait a caller may supply (without one, types come from choice-element
//! suffixes, `resourceType` and JSON value kinds). It never sees a request, a user or a store:
//! `resolve()` reaches outside the input only through a caller-supplied resolver.

mod ast;
mod dates;
mod decimal;
mod eval;
mod functions;
mod lexer;
mod model;
mod model_json;
mod navigation;
mod operators;
mod parser;
mod quantity;
mod units;
mod value;

pub use dates::{DateTime, Precision, Time};
pub use decimal::Decimal;
pub use model::{ElementInfo, ModelInfo};
pub use model_json::JsonModel;
pub use quantity::Quantity;
pub use value::{Item, Node};

use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// An expression that does not parse, or names a function that does not exist.
#[derive(Clone, Debug, PartialEq)]
pub struct ParseError {
    pub message: String,
}

/// A failure while evaluating: a type error, a collection where a single item was required, …
#[derive(Clone, Debug, PartialEq)]
pub struct EvalError {
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FHIRPath syntax: {}", self.message)
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FHIRPath evaluation: {}", self.message)
    }
}

impl std::error::Error for ParseError {}
impl std::error::Error for EvalError {}

/// Finds the resource a reference points at, outside the resource being evaluated.
pub type Resolver<'a> = dyn Fn(&str) -> Option<&'a Value> + 'a;

/// Receives the collections passed to `trace(name)`.
pub type Tracer<'a> = dyn Fn(&str, &[Item<'_>]) + 'a;

/// Everything an evaluation may use besides the input resource. Cheap to build; reusable.
#[derive(Default)]
pub struct Context<'a> {
    model: Option<&'a dyn ModelInfo>,
    variables: HashMap<String, Vec<Item<'a>>>,
    resolver: Option<&'a Resolver<'a>>,
    tracer: Option<&'a Tracer<'a>>,
    root_resource: Option<&'a Value>,
    now: Option<chrono::DateTime<chrono::FixedOffset>>,
    strict: bool,
    reference_stubs: bool,
}

impl<'a> Context<'a> {
    pub fn new() -> Context<'a> {
        Context::default()
    }

    /// FHIR type information: element types, inheritance, choice elements.
    pub fn with_model(mut self, model: &'a dyn ModelInfo) -> Self {
        self.model = Some(model);
        self
    }

    /// A `%name` variable.
    pub fn with_variable(mut self, name: impl Into<String>, items: Vec<Item<'a>>) -> Self {
        self.variables.insert(name.into(), items);
        self
    }

    /// How `resolve()` finds references that are not inside the evaluated resource.
    pub fn with_resolver(mut self, resolver: &'a Resolver<'a>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    pub fn with_tracer(mut self, tracer: &'a Tracer<'a>) -> Self {
        self.tracer = Some(tracer);
        self
    }

    /// `%rootResource` when the evaluated resource is contained in another one.
    pub fn with_root_resource(mut self, root: &'a Value) -> Self {
        self.root_resource = Some(root);
        self
    }

    /// Fixes `now()`, `today()` and `timeOfDay()` (otherwise the system clock, read once per evaluation).
    pub fn with_now(mut self, now: chrono::DateTime<chrono::FixedOffset>) -> Self {
        self.now = Some(now);
        self
    }

    /// When `resolve()` cannot find a `Type/id` reference, answer with an empty placeholder of
    /// that type instead of nothing: enough for `subject.where(resolve() is Patient)` in search
    /// parameters, which only ask about the target's type.
    pub fn with_reference_stubs(mut self, stubs: bool) -> Self {
        self.reference_stubs = stubs;
        self
    }

    /// Strict mode: with a model, naming an element the type does not have is an error
    /// rather than an empty result (so `Observation.valueQuantity` is rejected).
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }
}

/// A parsed FHIRPath expression.
#[derive(Clone, Debug)]
pub struct Expression {
    root: ast::Expr,
}

impl Expression {
    pub fn parse(source: &str) -> Result<Expression, ParseError> {
        Ok(Expression {
            root: parser::parse(source)?,
        })
    }

    /// Evaluates against `resource` (which is `%resource`, `%context` and `$this`).
    pub fn evaluate<'a, 'c: 'a>(
        &'a self,
        resource: &'a Value,
        context: &Context<'c>,
    ) -> Result<Vec<Item<'a>>, EvalError> {
        eval::Evaluator::new(context, resource).run(&self.root)
    }

    /// Evaluates with `focus` as `$this` (an element inside `resource`, e.g. one
    /// `Observation.component` for a composite search parameter's component expressions), while
    /// `%resource` stays `resource`.
    pub fn evaluate_on<'a, 'c: 'a>(
        &'a self,
        focus: Item<'a>,
        resource: &'a Value,
        context: &Context<'c>,
    ) -> Result<Vec<Item<'a>>, EvalError> {
        eval::Evaluator::new(context, resource).run_on(&self.root, focus)
    }

    /// Evaluates and reduces the result to a boolean the way FHIR invariants do: empty is `None`,
    /// a single boolean is itself, a single other item is `true`; more items are an error.
    pub fn evaluate_boolean<'a, 'c: 'a>(
        &'a self,
        resource: &'a Value,
        context: &Context<'c>,
    ) -> Result<Option<bool>, EvalError> {
        operators::singleton_boolean(&self.evaluate(resource, context)?)
    }
}

#[cfg(test)]
mod tests;
