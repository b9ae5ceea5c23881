//! FHIRPath Patch (R4 fhirpatch.html): a `Parameters` resource whose `operation` parameters each
//! name a `type` (`add`, `insert`, `delete`, `replace`, `move`), a FHIRPath `path`, and what the
//! type needs (`name`, `value`, `index`, `source`, `destination`).
//!
//! How an operation finds what to change: the path is evaluated with the R4 model, and each
//! element it selects is located in the resource by identity — FHIRPath results borrow the very
//! JSON values of the input, so the address of a result is found by walking the resource. That
//! gives the element's container, its JSON key and (for lists) its index; the change is then made
//! on the JSON, with the `_name` sibling of primitives kept aligned. Values are placed with the
//! model's help: a choice element takes the value's type as its suffix (`deceased` + `Boolean`),
//! a repeating element is a list, and `part`s build anonymous (backbone) values. Elements a
//! change leaves empty are removed, as FHIR JSON has no empty objects or lists.

use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::fhirpath::{Context, Expression, Item};
use crate::model::structure::{TypeDef, TypeModel, capitalised};
use serde_json::{Map, Value};

/// A parsed FHIRPath Patch. Two are equal when their `Parameters` are (a request that reaches
/// the server over HTTP and as a Bundle entry carries the same patch).
#[derive(Debug, Clone)]
pub struct FhirPathPatch {
    operations: Vec<Operation>,
    source: Map<String, Value>,
}

impl PartialEq for FhirPathPatch {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

#[derive(Debug, Clone)]
struct Operation {
    /// Position in `Parameters.parameter`, for messages.
    index: usize,
    kind: Kind,
    path: String,
    expression: Expression,
}

#[derive(Debug, Clone)]
enum Kind {
    Add { name: String, value: PatchValue },
    Insert { index: usize, value: PatchValue },
    Delete,
    Replace { value: PatchValue },
    Move { source: usize, destination: usize },
}

/// The `value` of an operation: a typed value (`valueDate`, `valueHumanName`, a `resource`), or
/// an anonymous one built from `part`s (a backbone element such as `Patient.contact`).
#[derive(Debug, Clone)]
enum PatchValue {
    Typed {
        /// The type as choice elements spell it: `Date`, `HumanName`, `Patient`.
        suffix: String,
        value: Option<Value>,
        /// The `_valueX` sibling of a primitive (its id and extensions).
        element: Option<Value>,
    },
    Anonymous(Vec<(String, PatchValue)>),
}

impl FhirPathPatch {
    /// Reads a `Parameters` resource as a FHIRPath Patch (`400` when it is not one).
    pub fn parse(parameters: &Map<String, Value>) -> Result<FhirPathPatch> {
        if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err(Error::invalid("a FHIRPath Patch is a Parameters resource").at("resourceType"));
        }
        let list = match parameters.get("parameter") {
            None => {
                return Ok(FhirPathPatch {
                    operations: Vec::new(),
                    source: parameters.clone(),
                });
            }
            Some(Value::Array(list)) => list,
            Some(_) => return Err(Error::structure("Parameters.parameter must be a list").at("Parameters.parameter")),
        };
        let operations = list
            .iter()
            .enumerate()
            .map(|(index, parameter)| parse_operation(index, parameter))
            .collect::<Result<_>>()?;
        Ok(FhirPathPatch {
            operations,
            source: parameters.clone(),
        })
    }

    /// Applies every operation in order to `resource`. On failure `resource` is left part-way;
    /// the caller works on a copy.
    pub fn apply(&self, resource: &mut Value) -> Result<()> {
        for operation in &self.operations {
            operation.apply(resource)?;
            prune_empty(resource);
        }
        Ok(())
    }
}

fn malformed(index: usize, message: impl std::fmt::Display) -> Error {
    Error::invalid(format!("FHIRPath Patch operation {index}: {message}")).at(format!("Parameters.parameter[{index}]"))
}

fn parse_operation(index: usize, parameter: &Value) -> Result<Operation> {
    if parameter.get("name").and_then(Value::as_str) != Some("operation") {
        return Err(malformed(
            index,
            "each parameter of a FHIRPath Patch must be named 'operation'",
        ));
    }
    let parts: &[Value] = parameter
        .get("part")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let part = |name: &str| {
        parts
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
    };
    let text = |name: &str, value_key: &str| -> Result<String> {
        part(name)
            .and_then(|p| p.get(value_key))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| malformed(index, format!("the '{name}' part ({value_key}) is missing")))
    };
    let integer = |name: &str| -> Result<usize> {
        part(name)
            .and_then(|p| p.get("valueInteger"))
            .and_then(Value::as_u64)
            .map(|n| n as usize)
            .ok_or_else(|| {
                malformed(
                    index,
                    format!("the '{name}' part (a non-negative valueInteger) is missing"),
                )
            })
    };
    let value = || -> Result<PatchValue> {
        let found = part("value").ok_or_else(|| malformed(index, "the 'value' part is missing"))?;
        patch_value(found).ok_or_else(|| malformed(index, "the 'value' part has no value[x], resource or part"))
    };
    let type_name = part("type")
        .and_then(|p| p.get("valueCode").or_else(|| p.get("valueString")))
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(index, "the 'type' part (valueCode) is missing"))?;
    let kind = match type_name {
        "add" => Kind::Add {
            name: text("name", "valueString")?,
            value: value()?,
        },
        "insert" => Kind::Insert {
            index: integer("index")?,
            value: value()?,
        },
        "delete" => Kind::Delete,
        "replace" => Kind::Replace { value: value()? },
        "move" => Kind::Move {
            source: integer("source")?,
            destination: integer("destination")?,
        },
        other => {
            return Err(malformed(
                index,
                format!("'{other}' is not an operation type (add, insert, delete, replace, move)"),
            ));
        }
    };
    let path = text("path", "valueString")?;
    let expression = Expression::parse(&path).map_err(|e| malformed(index, format!("path '{path}': {e}")))?;
    Ok(Operation {
        index,
        kind,
        path,
        expression,
    })
}

/// The value a part carries: `value[x]`, `resource`, or nested `part`s.
fn patch_value(part: &Value) -> Option<PatchValue> {
    let object = part.as_object()?;
    if let Some(resource) = object.get("resource") {
        let suffix = resource.get("resourceType").and_then(Value::as_str)?.to_owned();
        return Some(PatchValue::Typed {
            suffix,
            value: Some(resource.clone()),
            element: None,
        });
    }
    for (key, value) in object {
        let Some(suffix) = key
            .strip_prefix("value")
            .filter(|s| s.starts_with(|c: char| c.is_ascii_uppercase()))
        else {
            continue;
        };
        return Some(PatchValue::Typed {
            suffix: suffix.to_owned(),
            value: Some(value.clone()),
            element: object.get(&format!("_{key}")).cloned(),
        });
    }
    // A primitive given by its extensions only.
    for (key, element) in object {
        if let Some(suffix) = key.strip_prefix("_value") {
            return Some(PatchValue::Typed {
                suffix: suffix.to_owned(),
                value: None,
                element: Some(element.clone()),
            });
        }
    }
    let parts = object.get("part")?.as_array()?;
    let mut fields = Vec::with_capacity(parts.len());
    for p in parts {
        let name = p.get("name")?.as_str()?.to_owned();
        fields.push((name, patch_value(p)?));
    }
    Some(PatchValue::Anonymous(fields))
}

/// One step from a JSON value to a child.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Where a selected element lives: the object holding it, its JSON key (without `_`), and its
/// position when the element repeats.
#[derive(Debug, Clone, PartialEq)]
struct Slot {
    container: Vec<Step>,
    key: String,
    index: Option<usize>,
}

/// What an element is, for placing a value in it: its JSON key and whether it repeats.
struct Placed {
    key: String,
    value: Option<Value>,
    element: Option<Value>,
    repeats: bool,
}

impl Operation {
    fn fail(&self, message: impl std::fmt::Display) -> Error {
        Error::new(
            ErrorKind::Unprocessable,
            IssueCode::Processing,
            format!(
                "FHIRPath Patch operation {} ({} at {}): {message}",
                self.index,
                self.kind_name(),
                self.path
            ),
        )
        .at(self.path.clone())
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Add { .. } => "add",
            Kind::Insert { .. } => "insert",
            Kind::Delete => "delete",
            Kind::Replace { .. } => "replace",
            Kind::Move { .. } => "move",
        }
    }

    /// The elements the path selects, as locations in `resource`.
    fn select(&self, resource: &Value) -> Result<Vec<Vec<Step>>> {
        select(&self.expression, resource).map_err(|message| self.fail(message))
    }

    fn apply(&self, resource: &mut Value) -> Result<()> {
        match &self.kind {
            Kind::Add { name, value } => {
                let container = self.single(resource, "adding")?;
                let owner = type_at(resource, &container);
                let placed = place(owner, name, value).map_err(|m| self.fail(m))?;
                let Some(Value::Object(object)) = get_mut(resource, &container) else {
                    return Err(self.fail("the path selects a primitive value, which has no elements to add to"));
                };
                if placed.repeats {
                    let len = list_len(object, &placed.key);
                    insert_item(object, owner, &placed, len);
                } else if object.contains_key(&placed.key) || object.contains_key(&format!("_{}", placed.key)) {
                    return Err(self.fail(format!(
                        "'{}' already has a value and does not repeat; use replace",
                        placed.key
                    )));
                } else {
                    set_member(object, owner, &placed);
                }
                Ok(())
            }
            Kind::Insert { index, value } => {
                let (container, key) = self.list(resource)?;
                let owner = type_at(resource, &container);
                let placed = place(owner, &key, value).map_err(|m| self.fail(m))?;
                let Some(Value::Object(object)) = get_mut(resource, &container) else {
                    return Err(self.fail("the path does not select a list"));
                };
                let len = list_len(object, &key);
                if *index > len {
                    return Err(self.fail(format!("index {index} is past the end of the list ({len} items)")));
                }
                insert_item(object, owner, &placed, *index);
                Ok(())
            }
            Kind::Delete => {
                let selected = self.select(resource)?;
                match selected.as_slice() {
                    [] => Ok(()),
                    [steps] => {
                        let slot = slot_of(steps).ok_or_else(|| self.fail("the whole resource cannot be deleted"))?;
                        let Some(Value::Object(object)) = get_mut(resource, &slot.container) else {
                            return Err(self.fail("the element's container is not an object"));
                        };
                        remove_slot(object, &slot);
                        Ok(())
                    }
                    many => Err(self.fail(format!(
                        "the path selects {} elements; delete takes one at a time",
                        many.len()
                    ))),
                }
            }
            Kind::Replace { value } => {
                let steps = self.single(resource, "replacing")?;
                let slot = slot_of(&steps).ok_or_else(|| self.fail("the whole resource cannot be replaced"))?;
                let owner = type_at(resource, &slot.container);
                let name = owner
                    .and_then(|t| t.resolve(&slot.key))
                    .map_or(slot.key.clone(), |(element, _)| element.name.clone());
                let placed = place(owner, &name, value).map_err(|m| self.fail(m))?;
                let Some(Value::Object(object)) = get_mut(resource, &slot.container) else {
                    return Err(self.fail("the element's container is not an object"));
                };
                match slot.index {
                    Some(i) => {
                        remove_slot(object, &slot);
                        insert_item(object, owner, &placed, i);
                    }
                    None => {
                        object.shift_remove(&slot.key);
                        object.shift_remove(&format!("_{}", slot.key));
                        set_member(object, owner, &placed);
                    }
                }
                Ok(())
            }
            Kind::Move { source, destination } => {
                let (container, key) = self.list(resource)?;
                let Some(Value::Object(object)) = get_mut(resource, &container) else {
                    return Err(self.fail("the path does not select a list"));
                };
                let len = list_len(object, &key);
                if *source >= len || *destination >= len {
                    return Err(self.fail(format!(
                        "source {source} and destination {destination} must both be below the list's length ({len})"
                    )));
                }
                for list_key in [key.clone(), format!("_{key}")] {
                    if let Some(Value::Array(items)) = object.get_mut(&list_key) {
                        let item = items.remove(*source);
                        items.insert(*destination, item);
                    }
                }
                Ok(())
            }
        }
    }

    /// The one element the path must select.
    fn single(&self, resource: &Value, doing: &str) -> Result<Vec<Step>> {
        let mut selected = self.select(resource)?;
        match selected.len() {
            1 => Ok(selected.pop().expect("one element")),
            0 => Err(self.fail(format!("no content found at {} when {doing}", self.path))),
            n => Err(self.fail(format!("the path selects {n} elements; it must select one"))),
        }
    }

    /// The list the path selects (all its items, or none when the list is empty and the path
    /// ends with the list's name): its container and JSON key.
    fn list(&self, resource: &Value) -> Result<(Vec<Step>, String)> {
        let selected = self.select(resource)?;
        if selected.is_empty() {
            // An empty list selects nothing: find its container through the path's prefix.
            let Some((prefix, name)) = split_last_member(&self.path) else {
                return Err(self.fail("the path selects nothing"));
            };
            let prefix = Expression::parse(prefix).map_err(|e| self.fail(e))?;
            let mut containers = select(&prefix, resource).map_err(|m| self.fail(m))?;
            if containers.len() != 1 {
                return Err(self.fail("the path selects nothing"));
            }
            return Ok((containers.pop().expect("one container"), name.to_owned()));
        }
        let slots: Vec<Slot> = selected.iter().filter_map(|s| slot_of(s)).collect();
        let first = slots
            .first()
            .ok_or_else(|| self.fail("the path does not select a list"))?;
        let same_list = slots.len() == selected.len()
            && slots
                .iter()
                .all(|s| s.index.is_some() && s.container == first.container && s.key == first.key);
        if !same_list {
            return Err(self.fail("the path must select the items of one list"));
        }
        Ok((first.container.clone(), first.key.clone()))
    }
}

/// `Patient.contact[0].name` → (`Patient.contact[0]`, `name`), when the path ends with a member.
fn split_last_member(path: &str) -> Option<(&str, &str)> {
    let (prefix, name) = path.trim().rsplit_once('.')?;
    let simple = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (simple && !prefix.is_empty()).then_some((prefix, name))
}

/// Evaluates `expression` and locates each selected element in `resource`.
fn select(expression: &Expression, resource: &Value) -> std::result::Result<Vec<Vec<Step>>, String> {
    let context = Context::new().with_model(crate::model::structure::fhirpath_model());
    let items = expression.evaluate(resource, &context).map_err(|e| e.to_string())?;
    items
        .iter()
        .map(|item| {
            let node = match item {
                Item::Node(node) => node,
                _ => return Err("the path selects a computed value, not an element of the resource".to_owned()),
            };
            let target = node
                .value
                .or(node.element)
                .ok_or("the path selects an element with no content")?;
            let mut steps = Vec::new();
            if find_path(resource, target, &mut steps) {
                Ok(steps)
            } else {
                Err("the path selects something outside the resource".to_owned())
            }
        })
        .collect()
}

/// Fills `steps` with the way from `root` to the value at address `target`.
fn find_path(root: &Value, target: &Value, steps: &mut Vec<Step>) -> bool {
    if std::ptr::eq(root, target) {
        return true;
    }
    match root {
        Value::Object(map) => {
            for (key, child) in map {
                steps.push(Step::Key(key.clone()));
                if find_path(child, target, steps) {
                    return true;
                }
                steps.pop();
            }
            false
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                steps.push(Step::Index(i));
                if find_path(child, target, steps) {
                    return true;
                }
                steps.pop();
            }
            false
        }
        _ => false,
    }
}

/// The slot of the element at `steps` (none for the resource itself). A primitive found through
/// its `_name` sibling has the slot of `name`.
fn slot_of(steps: &[Step]) -> Option<Slot> {
    let (key_at, index) = match steps {
        [.., Step::Key(_), Step::Index(i)] => (steps.len() - 2, Some(*i)),
        [.., Step::Key(_)] => (steps.len() - 1, None),
        _ => return None,
    };
    let Step::Key(key) = &steps[key_at] else {
        return None;
    };
    Some(Slot {
        container: steps[..key_at].to_vec(),
        key: key.strip_prefix('_').unwrap_or(key).to_owned(),
        index,
    })
}

fn get_mut<'a>(root: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    let mut current = root;
    for step in steps {
        current = match (step, current) {
            (Step::Key(key), Value::Object(map)) => map.get_mut(key)?,
            (Step::Index(i), Value::Array(items)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(current)
}

/// The FHIR type of the object at `steps`, following the model from the resource's type.
fn type_at(root: &Value, steps: &[Step]) -> Option<&'static TypeDef> {
    let model = TypeModel::r4();
    let mut current = root;
    let mut type_def = model.get(root.get("resourceType")?.as_str()?)?;
    for step in steps {
        match step {
            Step::Key(key) => {
                current = current.get(key)?;
                let (_, type_name) = type_def.resolve(key)?;
                type_def = model.get(type_name)?;
            }
            Step::Index(i) => current = current.get(*i)?,
        }
        // A contained resource (or any element typed `Resource`) is typed by itself.
        if let Some(own) = current.get("resourceType").and_then(Value::as_str) {
            type_def = model.get(own)?;
        }
    }
    Some(type_def)
}

/// How `value` sits in element `name` of `owner`: its JSON key (a choice element takes the
/// value's type as suffix), its JSON, and whether the element repeats.
fn place(owner: Option<&'static TypeDef>, name: &str, value: &PatchValue) -> std::result::Result<Placed, String> {
    let model = TypeModel::r4();
    let (element, concrete) = match owner {
        None => (None, None),
        Some(owner) => match owner.element(name) {
            Some(element) => (Some(element), None),
            None => match owner.resolve(name) {
                Some((element, type_name)) => (Some(element), Some(type_name)),
                None => return Err(format!("{} has no element '{name}'", owner.name)),
            },
        },
    };
    let key = match (element, concrete, value) {
        (Some(e), None, PatchValue::Typed { suffix, .. }) if e.choice => {
            if !e.types.iter().any(|t| capitalised(t) == *suffix) {
                return Err(format!(
                    "'{name}' cannot hold a {suffix}; its types are {}",
                    e.types.join(", ")
                ));
            }
            format!("{name}{suffix}")
        }
        (Some(e), None, PatchValue::Anonymous(_)) if e.choice => {
            return Err(format!("'{name}' is a choice of types; give its value as value[x]"));
        }
        _ => name.to_owned(),
    };
    let element_type = concrete
        .map(str::to_owned)
        .or_else(|| element.and_then(|e| e.types.first().cloned()))
        .and_then(|t| model.get(&t));
    let (value, extension_part) = match value {
        PatchValue::Typed { value, element, .. } => (value.clone(), element.clone()),
        PatchValue::Anonymous(fields) => (Some(Value::Object(anonymous(element_type, fields)?)), None),
    };
    Ok(Placed {
        key,
        value,
        element: extension_part,
        repeats: element.is_some_and(|e| e.array),
    })
}

/// The object `part`s describe, each placed as an element of `owner`.
fn anonymous(
    owner: Option<&'static TypeDef>,
    fields: &[(String, PatchValue)],
) -> std::result::Result<Map<String, Value>, String> {
    let mut object = Map::new();
    for (name, value) in fields {
        let placed = place(owner, name, value)?;
        if placed.repeats {
            let len = list_len(&object, &placed.key);
            insert_item(&mut object, owner, &placed, len);
        } else {
            set_member(&mut object, owner, &placed);
        }
    }
    Ok(object)
}

/// The length of the list `key` (counting its `_key` sibling, which may be longer).
fn list_len(object: &Map<String, Value>, key: &str) -> usize {
    let len = |k: &str| object.get(k).and_then(Value::as_array).map_or(0, Vec::len);
    len(key).max(len(&format!("_{key}")))
}

/// Sets a non-repeating member, at its place in the type's element order.
fn set_member(object: &mut Map<String, Value>, owner: Option<&TypeDef>, placed: &Placed) {
    if let Some(value) = &placed.value {
        insert_ordered(object, owner, &placed.key, value.clone());
    }
    if let Some(element) = &placed.element {
        insert_ordered(object, owner, &format!("_{}", placed.key), element.clone());
    }
}

/// Inserts an item at `index` of the list `placed.key`, keeping the `_key` list aligned.
fn insert_item(object: &mut Map<String, Value>, owner: Option<&TypeDef>, placed: &Placed, index: usize) {
    let len = list_len(object, &placed.key);
    let shadow = format!("_{}", placed.key);
    let lists = [
        (placed.key.as_str(), placed.value.clone(), placed.value.is_some()),
        (shadow.as_str(), placed.element.clone(), placed.element.is_some()),
    ];
    for (key, item, needed) in lists {
        if !needed && !object.contains_key(key) {
            continue;
        }
        let mut items = match object.get(key) {
            Some(Value::Array(items)) => items.clone(),
            _ => Vec::new(),
        };
        items.resize(len, Value::Null);
        items.insert(index.min(len), item.unwrap_or(Value::Null));
        insert_ordered(object, owner, key, Value::Array(items));
    }
}

/// Removes the element in `slot` (one item of a list, or the member and its `_` sibling).
fn remove_slot(object: &mut Map<String, Value>, slot: &Slot) {
    for key in [slot.key.clone(), format!("_{}", slot.key)] {
        match slot.index {
            None => {
                object.shift_remove(&key);
            }
            Some(i) => {
                if let Some(Value::Array(items)) = object.get_mut(&key)
                    && i < items.len()
                {
                    items.remove(i);
                }
            }
        }
    }
}

/// Inserts (or replaces in place) `key` so that members follow the type's element order, and a
/// `_name` member sits right after `name`. Without a model the member goes last.
fn insert_ordered(object: &mut Map<String, Value>, owner: Option<&TypeDef>, key: &str, value: Value) {
    if let Some(existing) = object.get_mut(key) {
        *existing = value;
        return;
    }
    let Some(owner) = owner else {
        object.insert(key.to_owned(), value);
        return;
    };
    let rank = |k: &str| -> (usize, bool) {
        let shadow = k.starts_with('_');
        let bare = k.trim_start_matches('_');
        let position = owner
            .resolve(bare)
            .and_then(|(e, _)| owner.elements.iter().position(|d| d.name == e.name))
            .unwrap_or(usize::MAX);
        (position, shadow)
    };
    let new_rank = rank(key);
    let entries = std::mem::take(object);
    let mut placed = false;
    for (k, v) in entries {
        if !placed && k != "resourceType" && rank(&k) > new_rank {
            object.insert(key.to_owned(), value.clone());
            placed = true;
        }
        object.insert(k, v);
    }
    if !placed {
        object.insert(key.to_owned(), value);
    }
}

/// Removes what a change left empty: objects without members, lists without items (or with
/// nothing but nulls), and list items that became empty objects. In the `_name` list of a
/// primitive list an empty item becomes `null` instead, so it stays aligned with the values.
fn prune_empty(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::Array(items) if key.starts_with('_') => {
                        for item in items.iter_mut() {
                            prune_empty(item);
                            if matches!(item, Value::Object(m) if m.is_empty()) {
                                *item = Value::Null;
                            }
                        }
                    }
                    _ => prune_empty(child),
                }
            }
            map.retain(|_, v| !is_empty(v));
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                prune_empty(item);
            }
            items.retain(|v| !matches!(v, Value::Object(m) if m.is_empty()));
        }
        _ => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.iter().all(Value::is_null),
        Value::Null => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn operation(kind: &str, parts: Value) -> Value {
        let mut all = vec![json!({"name": "type", "valueCode": kind})];
        all.extend(parts.as_array().unwrap().iter().cloned());
        json!({"name": "operation", "part": all})
    }

    fn patched(resource: Value, operations: Vec<Value>) -> Result<Value> {
        let parameters = json!({"resourceType": "Parameters", "parameter": operations});
        let patch = FhirPathPatch::parse(parameters.as_object().unwrap())?;
        let mut resource = resource;
        patch.apply(&mut resource)?;
        Ok(resource)
    }

    #[test]
    fn add_places_choice_elements_lists_and_element_order() {
        let patient = json!({"resourceType": "Patient", "id": "p", "gender": "male"});
        let out = patched(
            patient,
            vec![
                operation(
                    "add",
                    json!([{"name": "path", "valueString": "Patient"}, {"name": "name", "valueString": "deceased"},
                           {"name": "value", "valueBoolean": true}]),
                ),
                operation(
                    "add",
                    json!([{"name": "path", "valueString": "Patient"}, {"name": "name", "valueString": "identifier"},
                           {"name": "value", "valueIdentifier": {"value": "1"}}]),
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"resourceType":"Patient","id":"p","identifier":[{"value":"1"}],"gender":"male","deceasedBoolean":true}"#
        );
    }

    #[test]
    fn primitive_lists_keep_their_extensions_aligned() {
        let patient =
            json!({"resourceType": "Patient", "name": [{"given": ["a", "c"], "_given": [null, {"id": "x"}]}]});
        let out = patched(
            patient,
            vec![
                operation(
                    "insert",
                    json!([{"name": "path", "valueString": "Patient.name[0].given"}, {"name": "index", "valueInteger": 1},
                           {"name": "value", "valueString": "b"}]),
                ),
                operation("delete", json!([{"name": "path", "valueString": "Patient.name[0].given[0]"}])),
            ],
        )
        .unwrap();
        assert_eq!(out["name"][0]["given"], json!(["b", "c"]));
        assert_eq!(out["name"][0]["_given"], json!([null, {"id": "x"}]));
    }

    #[test]
    fn an_emptied_primitive_extension_becomes_null_and_keeps_alignment() {
        let patient = json!({"resourceType": "Patient", "name": [{"given": ["a", "b"],
            "_given": [{"extension": [{"url": "http://x", "valueString": "1"}]}, {"id": "b"}]}]});
        let out = patched(
            patient,
            vec![operation(
                "delete",
                json!([{"name": "path", "valueString": "Patient.name[0].given[0].extension[0]"}]),
            )],
        )
        .unwrap();
        assert_eq!(out["name"][0]["given"], json!(["a", "b"]));
        assert_eq!(out["name"][0]["_given"], json!([null, {"id": "b"}]));
    }

    #[test]
    fn replace_changes_a_choice_type_and_insert_fills_an_empty_list() {
        let observation = json!({"resourceType": "Observation", "status": "final", "code": {"text": "t"},
                                 "valueQuantity": {"value": 1}});
        let out = patched(
            observation,
            vec![
                operation(
                    "replace",
                    json!([{"name": "path", "valueString": "Observation.value"}, {"name": "value", "valueString": "high"}]),
                ),
                operation(
                    "insert",
                    json!([{"name": "path", "valueString": "Observation.note"}, {"name": "index", "valueInteger": 0},
                           {"name": "value", "valueAnnotation": {"text": "n"}}]),
                ),
            ],
        )
        .unwrap();
        assert_eq!(out["valueString"], json!("high"));
        assert!(out.get("valueQuantity").is_none());
        assert_eq!(out["note"], json!([{"text": "n"}]));
    }

    #[test]
    fn failures_are_unprocessable_and_name_the_path() {
        let patient = json!({"resourceType": "Patient", "gender": "male"});
        let e = patched(
            patient.clone(),
            vec![operation(
                "replace",
                json!([{"name": "path", "valueString": "Patient.birthDate"}, {"name": "value", "valueDate": "2000"}]),
            )],
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unprocessable);
        assert_eq!(e.issues[0].expression.as_deref(), Some("Patient.birthDate"));
        let e = patched(
            patient.clone(),
            vec![operation(
                "add",
                json!([{"name": "path", "valueString": "Patient"}, {"name": "name", "valueString": "gender"},
                       {"name": "value", "valueCode": "female"}]),
            )],
        )
        .unwrap_err();
        assert!(e.issues[0].diagnostics.contains("use replace"), "{e:?}");
        let e = patched(patient, vec![operation("frobnicate", json!([]))]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert_eq!(e.issues[0].expression.as_deref(), Some("Parameters.parameter[0]"));
    }
}
