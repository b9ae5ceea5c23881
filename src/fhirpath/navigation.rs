//! Walking FHIR JSON: member access with choice elements (`value` finds `valueQuantity` and knows
//! its type from the suffix or the model), primitives split over `name` and `_name`, arrays
//! flattened into collections, `resourceType` as a type test on the first step of a path, and the
//! type tests behind `is`, `as` and `ofType`.

use super::ast::TypeSpec;
use super::eval::{Evaluator, error};
use super::model::{builtin_base, choice_key, choice_suffix_type, is_primitive};
use super::value::{Item, Node};
use super::{EvalError, ModelInfo};
use serde_json::{Map, Value};
use std::borrow::Cow;

const SYSTEM_TYPES: &[&str] = &[
    "Boolean", "String", "Integer", "Decimal", "Date", "DateTime", "Time", "Quantity",
];

/// Looks up `_key` without allocating for ordinary element names.
fn underscored<'m>(object: &'m Map<String, Value>, key: &str) -> Option<&'m Value> {
    let mut buffer = [0u8; 96];
    if key.len() < buffer.len() {
        buffer[0] = b'_';
        buffer[1..=key.len()].copy_from_slice(key.as_bytes());
        let name = std::str::from_utf8(&buffer[..=key.len()]).ok()?;
        object.get(name)
    } else {
        object.get(&format!("_{key}"))
    }
}

/// Pushes the element `key` of `object` (value and `_key` parts paired item by item).
fn push_element<'a>(object: &'a Map<String, Value>, key: &str, ty: Option<&'a str>, out: &mut Vec<Item<'a>>) {
    let value = object.get(key);
    let element = underscored(object, key);
    let node = |value: Option<&'a Value>, element: Option<&'a Value>| {
        let value = value.filter(|v| !v.is_null());
        let element = element.filter(|e| e.is_object());
        let type_name = value.and_then(|v| v.get("resourceType")).and_then(Value::as_str).or(ty);
        (value.is_some() || element.is_some()).then_some(Item::Node(Node {
            value,
            element,
            type_name,
        }))
    };
    match (value, element) {
        (Some(Value::Array(values)), element) => {
            let elements = element.and_then(Value::as_array);
            for (i, v) in values.iter().enumerate() {
                out.extend(node(Some(v), elements.and_then(|e| e.get(i))));
            }
        }
        (Some(v), element) => out.extend(node(Some(v), element)),
        (None, Some(Value::Array(elements))) => {
            for e in elements {
                out.extend(node(None, Some(e)));
            }
        }
        (None, element) => out.extend(node(None, element)),
    }
}

impl<'a> Evaluator<'_, '_, 'a> {
    fn model(&self) -> Option<&'a dyn ModelInfo> {
        self.ctx.model
    }

    /// The first identifier of a path: the focus itself when it names the focus's type
    /// (`Patient` in `Patient.name`), otherwise a member.
    pub fn navigate_root(&self, item: &Item<'a>, name: &str, out: &mut Vec<Item<'a>>) -> Result<(), EvalError> {
        if name.starts_with(|c: char| c.is_ascii_uppercase())
            && let Item::Node(node) = item
            && let Some(ty) = node.type_name
            && self.derives_from(ty, name)
        {
            out.push(item.clone());
            return Ok(());
        }
        if self.ctx.strict
            && name.starts_with(|c: char| c.is_ascii_uppercase())
            && self.model().is_some_and(|m| m.is_resource(name))
        {
            return Err(error(format!("the context is not a {name}")));
        }
        self.member(item, name, out)
    }

    /// `item.name`.
    pub fn member(&self, item: &Item<'a>, name: &str, out: &mut Vec<Item<'a>>) -> Result<(), EvalError> {
        match item {
            Item::Node(node) => self.child(node, name, out),
            Item::TypeInfo {
                namespace,
                name: type_name,
            } => {
                match name {
                    "namespace" => out.push(Item::String(Cow::Borrowed(namespace))),
                    "name" => out.push(Item::String(type_name.clone())),
                    _ => {}
                }
                Ok(())
            }
            Item::Quantity(q) => {
                match name {
                    "value" => out.push(Item::Decimal(q.value)),
                    "unit" | "code" => out.push(Item::string(q.unit.clone())),
                    _ => {}
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn child(&self, node: &Node<'a>, name: &str, out: &mut Vec<Item<'a>>) -> Result<(), EvalError> {
        if node.is_primitive() {
            // A primitive's `id` and `extension` live in its `_name` object.
            if let Some(element) = node.element.and_then(Value::as_object) {
                let ty = match name {
                    "extension" => Some("Extension"),
                    "id" => Some("string"),
                    _ => None,
                };
                push_element(element, name, ty, out);
            }
            return Ok(());
        }
        let Some(object) = node.object() else {
            return Ok(());
        };
        if let (Some(model), Some(parent)) = (self.model(), node.type_name) {
            if let Some(info) = model.element(parent, name) {
                if info.choice {
                    // Scan the keys rather than building `name` + type for every allowed type.
                    for key in object.keys() {
                        let bare = key.strip_prefix('_').unwrap_or(key);
                        if key != bare && object.contains_key(bare) {
                            continue;
                        }
                        let Some(suffix) = bare
                            .strip_prefix(name)
                            .filter(|s| s.starts_with(|c: char| c.is_ascii_uppercase()))
                        else {
                            continue;
                        };
                        if let Some(ty) = info.types.iter().find(|t| {
                            t.len() == suffix.len()
                                && t[..1].eq_ignore_ascii_case(&suffix[..1])
                                && t[1..] == suffix[1..]
                        }) {
                            push_element(object, bare, Some(ty.as_str()), out);
                        }
                    }
                } else {
                    push_element(object, name, info.types.first().map(String::as_str), out);
                }
                return Ok(());
            }
            if model.has_type(parent) && self.ctx.strict {
                return Err(error(format!("{parent} has no element {name}")));
            }
        }
        if object.contains_key(name) || underscored(object, name).is_some() {
            // Also reached for a choice key named directly (`finding.itemCodeableConcept`, as some
            // R4 search parameters do): the model or the suffix still gives its type.
            push_element(object, name, self.element_type(node, name), out);
            return Ok(());
        }
        // No model: a choice element is a key made of the name and a data type name.
        for key in object.keys() {
            let bare = key.strip_prefix('_').unwrap_or(key);
            if let Some(suffix) = bare.strip_prefix(name)
                && let Some(ty) = choice_suffix_type(suffix)
                && (key == bare || !object.contains_key(bare))
            {
                push_element(object, bare, Some(ty), out);
            }
        }
        Ok(())
    }

    /// Every child element of `node`, in document order (`children()`).
    pub fn children(&self, node: &Node<'a>, out: &mut Vec<Item<'a>>) {
        let object = if node.is_primitive() {
            node.element.and_then(Value::as_object)
        } else {
            node.object()
        };
        let Some(object) = object else {
            return;
        };
        for key in object.keys() {
            let bare = match key.strip_prefix('_') {
                Some(bare) if object.contains_key(bare) => continue,
                Some(bare) => bare,
                None => key.as_str(),
            };
            if bare == "resourceType" {
                continue;
            }
            let ty = self.element_type(node, bare);
            push_element(object, bare, ty, out);
        }
    }

    /// The type of the child stored under `key` (which may be a choice key like `valueQuantity`).
    fn element_type(&self, parent: &Node<'a>, key: &str) -> Option<&'a str> {
        if parent.is_primitive() {
            return None;
        }
        if let (Some(model), Some(parent)) = (self.model(), parent.type_name) {
            if let Some(info) = model.element(parent, key).filter(|i| !i.choice) {
                return info.types.first().map(String::as_str);
            }
            let split = key.find(|c: char| c.is_ascii_uppercase())?;
            let info = model.element(parent, &key[..split]).filter(|i| i.choice)?;
            return info
                .types
                .iter()
                .find(|t| choice_key(&key[..split], t) == key)
                .map(String::as_str);
        }
        let split = key.find(|c: char| c.is_ascii_uppercase())?;
        choice_suffix_type(&key[split..])
    }

    /// Whether type `ty` is `target` or derives from it.
    pub fn derives_from(&self, ty: &str, target: &str) -> bool {
        let mut current = ty;
        // The depth bound only guards against a cyclic model.
        for _ in 0..16 {
            if current == target {
                return true;
            }
            current = match self
                .model()
                .and_then(|m| m.base_type(current))
                .or_else(|| builtin_base(current))
            {
                Some(base) => base,
                None if current == "Base" => return false,
                None if current.contains('.') => "BackboneElement",
                // Without a model, any other capitalised name is taken to be a resource.
                None if self.model().is_none() && current.starts_with(|c: char| c.is_ascii_uppercase()) => {
                    match current {
                        "Bundle" | "Binary" | "Parameters" => "Resource",
                        _ => "DomainResource",
                    }
                }
                None => return false,
            };
        }
        false
    }

    /// `is`: the item's type is the named type or derives from it. System and FHIR types never
    /// match each other (a FHIR `boolean` is not a `System.Boolean`).
    pub fn is_type(&self, item: &Item<'a>, spec: &TypeSpec) -> bool {
        match item {
            Item::Node(node) => {
                spec.namespace.as_deref() != Some("System")
                    && node.fhir_type().is_some_and(|ty| self.derives_from(ty, &spec.name))
            }
            other => spec.namespace.as_deref() != Some("FHIR") && other.type_name().1.as_ref() == spec.name.as_str(),
        }
    }

    /// `as` and `ofType`: like `is`, but a FHIR primitive matches only its own type, so
    /// `gender.as(string)` is empty for a `code` (the behaviour HL7's suite specifies).
    pub fn is_exactly(&self, item: &Item<'a>, spec: &TypeSpec) -> bool {
        match item {
            Item::Node(node) if spec.namespace.as_deref() != Some("System") => match node.fhir_type() {
                Some(ty) if is_primitive(ty) => ty == spec.name,
                Some(ty) => self.derives_from(ty, &spec.name),
                None => false,
            },
            other => self.is_type(other, spec),
        }
    }

    /// `as` and `ofType` reject type names that exist nowhere.
    pub fn check_type_known(&self, spec: &TypeSpec) -> Result<(), EvalError> {
        let name = spec.name.as_str();
        let known = match spec.namespace.as_deref() {
            Some("System") => SYSTEM_TYPES.contains(&name),
            namespace => {
                (namespace.is_none() && SYSTEM_TYPES.contains(&name))
                    || builtin_base(name).is_some()
                    || self.model().is_some_and(|m| m.has_type(name))
                    || (self.model().is_none() && name.starts_with(|c: char| c.is_ascii_uppercase()))
            }
        };
        if known {
            Ok(())
        } else {
            Err(error(format!("unknown type {name}")))
        }
    }
}
