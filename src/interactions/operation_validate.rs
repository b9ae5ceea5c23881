//! FHIR $validate operation — https://hl7.org/fhir/R4/resource-operation-validate.html
//!
//! `POST [type]/$validate` and `POST [type]/[id]/$validate`, with the resource itself as the body
//! or a `Parameters` body (`resource`, `mode` = create | update | delete, `profile`). Answers an
//! OperationOutcome: one `information` issue when the resource is valid, else every problem as an
//! `error` issue; either way, `warning` issues for what would not refuse a write (a reference of a
//! form the server cannot resolve). Nothing is written. Only the core profile of the type can be
//! asked for.

use super::{Cx, body};
use crate::error::{Error, ErrorKind, IssueCode, Result};
use crate::model::{ResourceType, outcome};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    General,
    Create,
    Update,
    Delete,
}

/// What the body asked to validate.
struct ValidateRequest {
    resource: Option<Map<String, Value>>,
    mode: Mode,
}

pub async fn validate(
    cx: &Cx,
    resource_type: ResourceType,
    id: Option<&str>,
    request_body: Map<String, Value>,
) -> Result<Value> {
    let request = parse_request(request_body, resource_type)?;
    if request.mode == Mode::Delete {
        let Some(id) = id else {
            return Err(Error::invalid(
                "mode=delete needs the resource's id in the URL ([type]/[id]/$validate)",
            ));
        };
        return Ok(match super::read::read(cx, resource_type, id).await {
            Ok(_) => outcome::information(format!("{resource_type}/{id} can be deleted")),
            Err(e) => outcome::from_error(&e),
        });
    }
    let Some(resource) = request.resource else {
        return Err(Error::new(ErrorKind::Invalid, IssueCode::Required, "no resource to validate").at("resource"));
    };
    let warnings = crate::validate::findings(&Value::Object(resource.clone())).warnings;
    let mut answer = match check(&resource, resource_type, id, request.mode) {
        Err(e) => outcome::from_error(&e),
        Ok(()) => outcome::information(format!("the {resource_type} is valid")),
    };
    outcome::add_warnings(&mut answer, &warnings);
    Ok(answer)
}

fn check(resource: &Map<String, Value>, resource_type: ResourceType, id: Option<&str>, mode: Mode) -> Result<()> {
    body::check_resource(resource, resource_type)?;
    let body_id = resource.get("id").and_then(Value::as_str);
    if mode == Mode::Update {
        match (id, body_id) {
            (Some(url_id), Some(body_id)) if url_id != body_id => {
                return Err(Error::invalid(format!(
                    "the resource's id '{body_id}' does not match '{url_id}' in the URL"
                ))
                .at(format!("{resource_type}.id")));
            }
            (_, None) => {
                return Err(Error::new(
                    ErrorKind::Invalid,
                    IssueCode::Required,
                    "an update needs the resource's id",
                )
                .at(format!("{resource_type}.id")));
            }
            _ => {}
        }
    }
    crate::validate::validate(&Value::Object(resource.clone()))
}

/// The body is the resource itself, or a Parameters resource carrying it (unless the type being
/// validated is Parameters and the body has no `resource` parameter).
fn parse_request(object: Map<String, Value>, resource_type: ResourceType) -> Result<ValidateRequest> {
    let is_parameters = object.get("resourceType").and_then(Value::as_str) == Some("Parameters");
    let parameters: Vec<&Value> = object
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let wraps =
        is_parameters && (resource_type.as_str() != "Parameters" || parameters.iter().any(|p| p["name"] == "resource"));
    if !wraps {
        return Ok(ValidateRequest {
            resource: Some(object),
            mode: Mode::General,
        });
    }
    let mut request = ValidateRequest {
        resource: None,
        mode: Mode::General,
    };
    for parameter in parameters {
        match parameter["name"].as_str().unwrap_or_default() {
            "resource" => match &parameter["resource"] {
                Value::Object(resource) => request.resource = Some(resource.clone()),
                _ => {
                    return Err(
                        Error::invalid("the 'resource' parameter must carry a resource").at("Parameters.parameter")
                    );
                }
            },
            "mode" => {
                let mode = parameter["valueCode"]
                    .as_str()
                    .or_else(|| parameter["valueString"].as_str());
                request.mode = match mode {
                    Some("create") => Mode::Create,
                    Some("update") => Mode::Update,
                    Some("delete") => Mode::Delete,
                    other => {
                        return Err(
                            Error::invalid(format!("mode {other:?} is not one of create, update, delete"))
                                .at("Parameters.parameter.valueCode"),
                        );
                    }
                };
            }
            "profile" => {
                let profile = parameter["valueUri"]
                    .as_str()
                    .or_else(|| parameter["valueCanonical"].as_str());
                let core = format!("http://hl7.org/fhir/StructureDefinition/{resource_type}");
                if profile.map(|p| p.split('|').next().unwrap_or(p)) != Some(core.as_str()) {
                    return Err(Error::new(
                        ErrorKind::Invalid,
                        IssueCode::NotSupported,
                        format!("only the core profile {core} can be validated against, not {profile:?}"),
                    )
                    .at("Parameters.parameter.valueUri"));
                }
            }
            _ => {}
        }
    }
    Ok(request)
}
