//! The tree-walking evaluator: the environment (`$this`, `$index`, `$total`), terms, external
//! constants, indexers, unary operators and type operators. Navigation, binary operators and the
//! function library live in their own files and extend [`Evaluator`].

use super::ast::{Expr, Literal, TypeOp, UnaryOp};
use super::value::{Item, Node};
use super::{Context, EvalError};
use serde_json::Value;
use std::borrow::Cow;

pub type Collection<'a> = Vec<Item<'a>>;
pub type EvalResult<'a> = Result<Collection<'a>, EvalError>;

pub fn error(message: impl Into<String>) -> EvalError {
    EvalError {
        message: message.into(),
    }
}

/// The iteration variables visible to an expression.
#[derive(Clone, Copy)]
pub struct Env<'e, 'a> {
    pub this: &'e [Item<'a>],
    pub index: Option<usize>,
    pub total: Option<&'e [Item<'a>]>,
}

/// `'a` is the lifetime of the results (the expression and the input); the context only needs to
/// be borrowed for the call, and whatever it lends (`'c`) outlives the results.
pub struct Evaluator<'r, 'c: 'a, 'a> {
    pub ctx: &'r Context<'c>,
    pub resource: &'a Value,
    /// `now()` is read once, on first use, so that every call within one evaluation agrees and
    /// expressions that never ask for the time do not pay for reading the clock and time zone.
    now: std::cell::OnceCell<chrono::DateTime<chrono::FixedOffset>>,
}

impl<'r, 'c: 'a, 'a> Evaluator<'r, 'c, 'a> {
    pub fn new(ctx: &'r Context<'c>, resource: &'a Value) -> Self {
        Evaluator {
            ctx,
            resource,
            now: std::cell::OnceCell::new(),
        }
    }

    /// The evaluation's `now()`: the context's fixed time if it has one, else the clock.
    pub fn now(&self) -> chrono::DateTime<chrono::FixedOffset> {
        *self
            .now
            .get_or_init(|| self.ctx.now.unwrap_or_else(|| chrono::Local::now().fixed_offset()))
    }

    pub fn run(&self, expr: &'a Expr) -> EvalResult<'a> {
        let root = [Item::Node(Node::new(self.resource, None))];
        self.eval(
            expr,
            &Env {
                this: &root,
                index: None,
                total: None,
            },
        )
    }

    /// Evaluates with `focus` as `$this` instead of the resource.
    pub fn run_on(&self, expr: &'a Expr, focus: Item<'a>) -> EvalResult<'a> {
        let this = [focus];
        self.eval(
            expr,
            &Env {
                this: &this,
                index: None,
                total: None,
            },
        )
    }

    pub fn eval(&self, expr: &'a Expr, env: &Env<'_, 'a>) -> EvalResult<'a> {
        match expr {
            Expr::Empty => Ok(Vec::new()),
            Expr::Literal(literal) => Ok(vec![literal_item(literal)]),
            Expr::Identifier(name) => {
                let mut out = Vec::new();
                for item in env.this {
                    self.navigate_root(item, name, &mut out)?;
                }
                Ok(out)
            }
            Expr::This => Ok(env.this.to_vec()),
            Expr::Index => Ok(env.index.map(|i| Item::Integer(i as i64)).into_iter().collect()),
            Expr::Total => Ok(env.total.map(<[Item]>::to_vec).unwrap_or_default()),
            Expr::External(name) => self.external(name),
            Expr::Member(target, name) => {
                let focus = self.eval(target, env)?;
                let mut out = Vec::with_capacity(focus.len());
                for item in &focus {
                    self.member(item, name, &mut out)?;
                }
                Ok(out)
            }
            Expr::Call { target, func, args } => {
                let focus = match target {
                    Some(target) => self.eval(target, env)?,
                    None => env.this.to_vec(),
                };
                self.call(*func, focus, args, env)
            }
            Expr::Type {
                target,
                op,
                function,
                spec,
            } => {
                let focus = match target {
                    Some(target) => self.eval(target, env)?,
                    None => env.this.to_vec(),
                };
                self.type_operation(focus, *op, *function, spec)
            }
            Expr::Indexer(target, index) => {
                let focus = self.eval(target, env)?;
                let index = self.eval(index, env)?;
                let index = match self.singleton(&index)? {
                    None => return Ok(Vec::new()),
                    Some(Item::Integer(i)) => i,
                    Some(_) => return Err(error("an indexer needs an integer")),
                };
                Ok(usize::try_from(index)
                    .ok()
                    .and_then(|i| focus.into_iter().nth(i))
                    .into_iter()
                    .collect())
            }
            Expr::Unary(op, operand) => {
                let operand = self.eval(operand, env)?;
                let Some(item) = self.singleton(&operand)? else {
                    return Ok(Vec::new());
                };
                let negate = *op == UnaryOp::Minus;
                let result = match item {
                    Item::Integer(i) if negate => Item::Integer(i.checked_neg().ok_or_else(|| error("overflow"))?),
                    Item::Decimal(d) if negate => Item::Decimal(-d),
                    Item::Quantity(mut q) if negate => {
                        q.value = -q.value;
                        Item::Quantity(q)
                    }
                    item @ (Item::Integer(_) | Item::Decimal(_) | Item::Quantity(_)) => item,
                    _ => return Err(error("unary + and - apply only to numbers and quantities")),
                };
                Ok(vec![result])
            }
            Expr::Binary(op, left, right) => self.binary(*op, left, right, env),
        }
    }

    /// The single System value of a collection: `None` when empty, an error when there are more.
    pub fn singleton(&self, items: &[Item<'a>]) -> Result<Option<Item<'a>>, EvalError> {
        match items {
            [] => Ok(None),
            [item] => Ok(Some(item.to_system().unwrap_or_else(|| item.clone()))),
            _ => Err(error(format!("expected a single item, found {}", items.len()))),
        }
    }

    /// `%resource`, `%context`, `%rootResource`, the well-known URLs, and caller variables.
    fn external(&self, name: &str) -> EvalResult<'a> {
        let url = |u: String| Ok(vec![Item::string(u)]);
        match name {
            "resource" | "context" => Ok(vec![Item::Node(Node::new(self.resource, None))]),
            "rootResource" => Ok(vec![Item::Node(Node::new(
                self.ctx.root_resource.unwrap_or(self.resource),
                None,
            ))]),
            _ if self.ctx.variables.contains_key(name) => Ok(self.ctx.variables[name].clone()),
            "ucum" => url("http://unitsofmeasure.org".into()),
            "sct" => url("http://snomed.info/sct".into()),
            "loinc" => url("http://loinc.org".into()),
            _ => {
                if let Some(vs) = name.strip_prefix("vs-") {
                    url(format!("http://hl7.org/fhir/ValueSet/{vs}"))
                } else if let Some(ext) = name.strip_prefix("ext-") {
                    url(format!("http://hl7.org/fhir/StructureDefinition/{ext}"))
                } else {
                    Err(error(format!("unknown variable %{name}")))
                }
            }
        }
    }

    fn type_operation(
        &self,
        focus: Collection<'a>,
        op: TypeOp,
        function: bool,
        spec: &super::ast::TypeSpec,
    ) -> EvalResult<'a> {
        if op != TypeOp::Is {
            self.check_type_known(spec)?;
        }
        if op == TypeOp::OfType || (op == TypeOp::As && !function) {
            return Ok(focus.into_iter().filter(|item| self.is_exactly(item, spec)).collect());
        }
        let item = match focus.as_slice() {
            [] => return Ok(Vec::new()),
            [item] => item,
            _ => return Err(error(format!("{op:?} needs a single item, found {}", focus.len()))),
        };
        Ok(match op {
            TypeOp::Is => vec![Item::Boolean(self.is_type(item, spec))],
            _ if self.is_exactly(item, spec) => vec![item.clone()],
            _ => Vec::new(),
        })
    }
}

pub fn literal_item(literal: &Literal) -> Item<'_> {
    match literal {
        Literal::Boolean(b) => Item::Boolean(*b),
        Literal::String(s) => Item::String(Cow::Borrowed(s)),
        Literal::Integer(i) => Item::Integer(*i),
        Literal::Decimal(d) => Item::Decimal(*d),
        Literal::Date(d) => Item::Date(*d),
        Literal::DateTime(d) => Item::DateTime(*d),
        Literal::Time(t) => Item::Time(*t),
        Literal::Quantity(q) => Item::Quantity(Box::new(q.clone())),
    }
}
