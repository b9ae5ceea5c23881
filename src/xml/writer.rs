//! JSON → XML. Elements are written in definition order (XML is order-sensitive, JSON is not).

use crate::error::{Error, Result};
use crate::model::structure::{TypeDef, TypeKind, TypeModel};
use serde_json::{Map, Value};

/// Writes `resource` (a FHIR JSON resource) as FHIR XML.
pub fn to_xml(resource: &Value) -> Result<String> {
    let Value::Object(object) = resource else {
        return Err(Error::structure("a resource must be a JSON object"));
    };
    let mut out = String::with_capacity(1024);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    write_resource(&mut out, object, true)?;
    Ok(out)
}

fn write_resource(out: &mut String, object: &Map<String, Value>, root: bool) -> Result<()> {
    let model = TypeModel::r4();
    let name = object.get("resourceType").and_then(Value::as_str).unwrap_or_default();
    let Some(type_def) = model.get(name).filter(|t| t.kind == TypeKind::Resource) else {
        return Err(Error::invalid(format!("'{name}' is not a resource type")).at("resourceType"));
    };
    out.push('<');
    out.push_str(name);
    if root {
        out.push_str(" xmlns=\"");
        out.push_str(super::FHIR_NS);
        out.push('"');
    }
    out.push('>');
    write_children(out, object, type_def, name)?;
    out.push_str("</");
    out.push_str(name);
    out.push('>');
    Ok(())
}

/// In XML, `id` of a non-resource element and `url` of an Extension are attributes.
fn is_attribute(type_def: &TypeDef, element: &str) -> bool {
    match element {
        "id" => type_def.kind != TypeKind::Resource,
        "url" => TypeModel::r4().is_a(&type_def.name, "Extension"),
        _ => false,
    }
}

fn write_children(out: &mut String, object: &Map<String, Value>, type_def: &TypeDef, path: &str) -> Result<()> {
    // Every key must name an element of the type, so nothing is silently dropped.
    for key in object.keys() {
        let known = match key.strip_prefix('_') {
            // A resource's own type; ExampleScenario.instance also has an element of that name.
            _ if key == "resourceType" => type_def.kind == TypeKind::Resource || type_def.resolve(key).is_some(),
            Some(base) => type_def.resolve(base).is_some(),
            None => type_def.resolve(key).is_some(),
        };
        if !known {
            return Err(
                Error::structure(format!("unknown element '{key}' in {}", type_def.name)).at(format!("{path}.{key}")),
            );
        }
    }
    for element in &type_def.elements {
        if is_attribute(type_def, &element.name) {
            continue;
        }
        let keys: Vec<(&str, &str)> = if element.choice {
            element
                .types
                .iter()
                .filter_map(|t| {
                    let key = format!("{}{}", element.name, crate::model::structure::capitalised(t));
                    object
                        .get_key_value(&key)
                        .or_else(|| object.get_key_value(&format!("_{key}")))
                        .map(|_| t.as_str())
                })
                .map(|t| (element.name.as_str(), t))
                .collect()
        } else {
            vec![(
                element.name.as_str(),
                element.types.first().map(String::as_str).unwrap_or_default(),
            )]
        };
        if keys.len() > 1 {
            return Err(
                Error::structure(format!("{path}.{}[x] has more than one type present", element.name))
                    .at(format!("{path}.{}", element.name)),
            );
        }
        for (base, element_type) in keys {
            let key = if element.choice {
                format!("{base}{}", crate::model::structure::capitalised(element_type))
            } else {
                base.to_owned()
            };
            let value = object.get(&key);
            let extra = object.get(&format!("_{key}"));
            if value.is_none() && extra.is_none() {
                continue;
            }
            let child_path = format!("{path}.{key}");
            if element.array {
                let values = as_array(value, &child_path)?;
                let extras = as_array(extra, &child_path)?;
                for i in 0..values.len().max(extras.len()) {
                    let item_path = format!("{child_path}[{i}]");
                    write_one(out, &key, element_type, values.get(i), extras.get(i), &item_path)?;
                }
            } else {
                write_one(out, &key, element_type, value, extra, &child_path)?;
            }
        }
    }
    Ok(())
}

fn as_array<'a>(value: Option<&'a Value>, path: &str) -> Result<&'a [Value]> {
    match value {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(Error::structure("this element repeats: its value must be a JSON array").at(path)),
    }
}

fn write_one(
    out: &mut String,
    name: &str,
    element_type: &str,
    value: Option<&Value>,
    extra: Option<&Value>,
    path: &str,
) -> Result<()> {
    let model = TypeModel::r4();
    let value = value.filter(|v| !v.is_null());
    let extra = extra.filter(|v| !v.is_null());
    if element_type == "xhtml" {
        // Narrative: the JSON string is the XHTML element itself, written as is, but for carriage
        // returns: an XML reader turns a literal one into a line feed, so it goes as `&#13;`.
        let Some(Value::String(xhtml)) = value else {
            return Err(Error::structure("the narrative div must be a string of XHTML").at(path));
        };
        if xhtml.contains('\r') {
            out.push_str(&xhtml.replace('\r', "&#13;"));
        } else {
            out.push_str(xhtml);
        }
        return Ok(());
    }
    if model.is_primitive(element_type) {
        out.push('<');
        out.push_str(name);
        let extensions = match extra {
            Some(Value::Object(e)) => {
                if let Some(Value::String(id)) = e.get("id") {
                    push_attribute(out, "id", id);
                }
                e.get("extension").and_then(Value::as_array)
            }
            Some(_) => return Err(Error::structure(format!("_{name} must be an object")).at(path)),
            None => None,
        };
        if let Some(v) = value {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                _ => return Err(Error::structure(format!("{name} must be a primitive value")).at(path)),
            };
            push_attribute(out, "value", &text);
        }
        match extensions {
            Some(list) if !list.is_empty() => {
                out.push('>');
                let extension_type = model.get("Extension").expect("Extension is in the model");
                for (i, extension) in list.iter().enumerate() {
                    write_complex(
                        out,
                        "extension",
                        extension,
                        extension_type,
                        &format!("{path}.extension[{i}]"),
                    )?;
                }
                out.push_str("</");
                out.push_str(name);
                out.push('>');
            }
            _ => out.push_str("/>"),
        }
        return Ok(());
    }
    let Some(value) = value else {
        return Err(Error::structure(format!("_{name} is only allowed beside a primitive")).at(path));
    };
    if model.is_a(element_type, "Resource") {
        let Value::Object(resource) = value else {
            return Err(Error::structure("a nested resource must be an object").at(path));
        };
        out.push('<');
        out.push_str(name);
        out.push('>');
        write_resource(out, resource, false)?;
        out.push_str("</");
        out.push_str(name);
        out.push('>');
        return Ok(());
    }
    let type_def = model
        .get(element_type)
        .ok_or_else(|| Error::internal(format!("type {element_type} missing from the model")))?;
    write_complex(out, name, value, type_def, path)
}

fn write_complex(out: &mut String, name: &str, value: &Value, type_def: &TypeDef, path: &str) -> Result<()> {
    let Value::Object(object) = value else {
        return Err(Error::structure(format!("{name} must be a JSON object")).at(path));
    };
    out.push('<');
    out.push_str(name);
    for attribute in ["id", "url"] {
        if is_attribute(type_def, attribute)
            && let Some(Value::String(text)) = object.get(attribute)
        {
            push_attribute(out, attribute, text);
        }
    }
    out.push('>');
    write_children(out, object, type_def, path)?;
    out.push_str("</");
    out.push_str(name);
    out.push('>');
    Ok(())
}

/// ` name="value"`, escaped so that the exact string survives attribute-value normalisation
/// (tabs and line breaks as character references).
fn push_attribute(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out.push('"');
}
