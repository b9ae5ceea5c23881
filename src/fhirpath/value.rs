//! The items FHIRPath collections hold: System values computed by the engine, and [`Node`]s that
//! borrow FHIR elements straight from the input JSON (no copy) together with their FHIR type.
//! A node turns into a System value only when an operator or function needs one.

use super::dates::{DateTime, DisplayDate, Time};
use super::decimal::Decimal;
use super::model::is_quantity_type;
use super::quantity::Quantity;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// A FHIR element inside the input: a JSON value, and for primitives the `_name` sibling that
/// carries their `id` and `extension` (either may be absent, not both).
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    pub value: Option<&'a Value>,
    pub element: Option<&'a Value>,
    /// The FHIR type, when the model, a choice suffix or `resourceType` told us.
    pub type_name: Option<&'a str>,
}

/// One item of a FHIRPath collection.
#[derive(Clone, Debug)]
pub enum Item<'a> {
    Boolean(bool),
    Integer(i64),
    Decimal(Decimal),
    String(Cow<'a, str>),
    Date(DateTime),
    DateTime(DateTime),
    Time(Time),
    Quantity(Box<Quantity>),
    Node(Node<'a>),
    /// The result of `type()`: a namespace (`System` or `FHIR`) and a name.
    TypeInfo {
        namespace: &'static str,
        name: Cow<'a, str>,
    },
}

impl<'a> Node<'a> {
    /// A node for `value`; an object with `resourceType` is typed by it.
    pub fn new(value: &'a Value, type_name: Option<&'a str>) -> Node<'a> {
        let type_name = type_name.or_else(|| value.get("resourceType").and_then(Value::as_str));
        Node {
            value: Some(value),
            element: None,
            type_name,
        }
    }

    /// The JSON object of a complex element.
    pub fn object(&self) -> Option<&'a serde_json::Map<String, Value>> {
        self.value.and_then(Value::as_object)
    }

    /// True for primitives, including a primitive with only its `_name` part.
    pub fn is_primitive(&self) -> bool {
        match self.value {
            Some(v) => !v.is_object(),
            None => true,
        }
    }

    /// The FHIR type, inferred from the JSON kind when nothing better is known.
    pub fn fhir_type(&self) -> Option<&'a str> {
        if self.type_name.is_some() {
            return self.type_name;
        }
        match self.value? {
            Value::Bool(_) => Some("boolean"),
            Value::Number(n) if n.to_string().contains(['.', 'e', 'E']) => Some("decimal"),
            Value::Number(_) => Some("integer"),
            Value::String(_) => Some("string"),
            _ => None,
        }
    }

    /// The System value of a primitive (or of a Quantity element), if it has one.
    pub fn system_value(&self) -> Option<Item<'a>> {
        let ty = self.type_name;
        match self.value? {
            Value::Bool(b) => Some(Item::Boolean(*b)),
            Value::Number(n) => {
                let text = n.to_string();
                let as_integer = !matches!(ty, Some("decimal")) && !text.contains(['.', 'e', 'E']);
                match text.parse::<i64>() {
                    Ok(i) if as_integer => Some(Item::Integer(i)),
                    _ => Decimal::parse(&text).map(Item::Decimal),
                }
            }
            Value::String(s) => Some(match ty {
                Some("date") => DateTime::parse_date(s).map(Item::Date)?,
                Some("dateTime") | Some("instant") => DateTime::parse_datetime(s).map(Item::DateTime)?,
                Some("time") => Time::parse(s).map(Item::Time)?,
                _ => Item::String(Cow::Borrowed(s.as_str())),
            }),
            Value::Object(map) if ty.is_some_and(is_quantity_type) => {
                let value = map.get("value")?;
                let value = Decimal::parse(&value.as_number()?.to_string())?;
                let unit = map
                    .get("code")
                    .or_else(|| map.get("unit"))
                    .and_then(Value::as_str)
                    .unwrap_or("1");
                Some(Item::Quantity(Box::new(Quantity::new(value, unit))))
            }
            _ => None,
        }
    }
}

impl<'a> Item<'a> {
    /// An owned System String.
    pub fn string(text: impl Into<String>) -> Item<'a> {
        Item::String(Cow::Owned(text.into()))
    }

    /// A System value for this item: nodes become their primitive value; others are themselves.
    pub fn to_system(&self) -> Option<Item<'a>> {
        match self {
            Item::Node(node) => node.system_value(),
            other => Some(other.clone()),
        }
    }

    /// The FHIRPath type of this item as (namespace, name), e.g. `("System", "Integer")`.
    pub fn type_name(&self) -> (&'static str, Cow<'a, str>) {
        let system = |name: &'static str| ("System", Cow::Borrowed(name));
        match self {
            Item::Boolean(_) => system("Boolean"),
            Item::Integer(_) => system("Integer"),
            Item::Decimal(_) => system("Decimal"),
            Item::String(_) => system("String"),
            Item::Date(_) => system("Date"),
            Item::DateTime(_) => system("DateTime"),
            Item::Time(_) => system("Time"),
            Item::Quantity(_) => system("Quantity"),
            Item::TypeInfo { .. } => system("TypeInfo"),
            Item::Node(node) => ("FHIR", Cow::Borrowed(node.fhir_type().unwrap_or("Element"))),
        }
    }

    /// The JSON element behind this item, if it is one.
    pub fn as_node(&self) -> Option<&Node<'a>> {
        match self {
            Item::Node(node) => Some(node),
            _ => None,
        }
    }
}

/// The text `toString()` gives and test outputs are compared with.
impl fmt::Display for Item<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Boolean(b) => write!(f, "{b}"),
            Item::Integer(i) => write!(f, "{i}"),
            Item::Decimal(d) => write!(f, "{d}"),
            Item::String(s) => write!(f, "{s}"),
            Item::Date(d) => write!(f, "{}", DisplayDate(d)),
            Item::DateTime(d) => write!(f, "{d}"),
            Item::Time(t) => write!(f, "{t}"),
            Item::Quantity(q) => write!(f, "{q}"),
            Item::TypeInfo { namespace, name } => write!(f, "{namespace}.{name}"),
            Item::Node(node) => match node.system_value() {
                Some(value) => write!(f, "{value}"),
                None => match node.value {
                    Some(v) => write!(f, "{v}"),
                    None => Ok(()),
                },
            },
        }
    }
}
