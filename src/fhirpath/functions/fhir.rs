//! FHIR's additions to FHIRPath (`extension`, `hasValue`, `getValue`, `resolve`, `memberOf`,
//! `conformsTo`, `htmlChecks`), `type()`, and the clock functions `now`, `today`, `timeOfDay`.

use super::{boolean, only};
use crate::fhirpath::ast::{Expr, Func};
use crate::fhirpath::dates::{DateTime, Precision, Time};
use crate::fhirpath::eval::{Collection, Env, EvalResult, Evaluator, error};
use crate::fhirpath::value::{Item, Node};
use chrono::{Datelike, Timelike};
use serde_json::Value;
use std::borrow::Cow;

const CORE_PROFILE: &str = "http://hl7.org/fhir/StructureDefinition/";

/// The `Type/id` at the end of a reference (ignoring any `_history/n`).
fn type_and_id(reference: &str) -> Option<(&str, &str)> {
    let path = reference.split("/_history/").next()?;
    let mut parts = path.rsplit('/');
    let id = parts.next()?;
    let ty = parts.next()?;
    Some((ty, id))
}

impl<'a> Evaluator<'_, '_, 'a> {
    pub(super) fn fhir(
        &self,
        func: Func,
        focus: Collection<'a>,
        args: &'a [Expr],
        env: &Env<'_, 'a>,
    ) -> EvalResult<'a> {
        match func {
            Func::Extension | Func::HasExtension => {
                let Some(url) = self.string_arg(args, 0, env)? else {
                    return Ok(Vec::new());
                };
                let mut extensions = Vec::new();
                for item in &focus {
                    self.member(item, "extension", &mut extensions)?;
                }
                let matching: Collection<'a> = extensions
                    .into_iter()
                    .filter(|e| {
                        e.as_node()
                            .and_then(|n| n.value)
                            .and_then(|v| v.get("url"))
                            .and_then(Value::as_str)
                            == Some(url.as_str())
                    })
                    .collect();
                // hasExtension() is not FHIRPath, but an R4 core search parameter uses it.
                if func == Func::HasExtension {
                    boolean(!matching.is_empty())
                } else {
                    Ok(matching)
                }
            }
            Func::HasValue => boolean(match focus.as_slice() {
                [Item::Node(node)] => node.is_primitive() && node.value.is_some(),
                [Item::Node(_), ..] | [] => false,
                [_] => true,
                _ => false,
            }),
            Func::GetValue => Ok(match focus.as_slice() {
                [Item::Node(node)] if node.is_primitive() => node.system_value().into_iter().collect(),
                _ => Vec::new(),
            }),
            Func::Resolve => {
                let mut out = Vec::new();
                for item in &focus {
                    let reference = match item {
                        Item::Node(node) if !node.is_primitive() => node
                            .value
                            .and_then(|v| v.get("reference"))
                            .and_then(Value::as_str)
                            .map(Cow::Borrowed),
                        other => match other.to_system() {
                            Some(Item::String(s)) => Some(s),
                            _ => None,
                        },
                    };
                    let Some(reference) = reference else { continue };
                    if let Some(found) = self.resolve_reference(&reference) {
                        out.push(Item::Node(Node::new(found, None)));
                    } else if self.ctx.reference_stubs
                        && let Cow::Borrowed(text) = reference
                        && let Some((ty, _)) = type_and_id(text)
                    {
                        out.push(Item::Node(Node {
                            value: None,
                            element: None,
                            type_name: Some(ty),
                        }));
                    }
                }
                Ok(out)
            }
            // Terminology is not available here: membership is unknown.
            Func::MemberOf => Ok(Vec::new()),
            Func::ConformsTo => {
                let Some(url) = self.string_arg(args, 0, env)? else {
                    return Ok(Vec::new());
                };
                let Some(item) = only(&focus)? else {
                    return Ok(Vec::new());
                };
                match url.strip_prefix(CORE_PROFILE) {
                    // A core definition: conformance is (at least) being of that type.
                    Some(ty) => boolean(
                        item.as_node()
                            .and_then(|n| n.type_name)
                            .is_some_and(|own| self.derives_from(own, ty)),
                    ),
                    None if url.contains("/StructureDefinition/") => Ok(Vec::new()),
                    None => Err(error(format!("{url} is not a StructureDefinition URL"))),
                }
            }
            Func::HtmlChecks => boolean(true),
            Func::Type => Ok(focus
                .iter()
                .map(|item| {
                    let (namespace, name) = item.type_name();
                    Item::TypeInfo { namespace, name }
                })
                .collect()),
            Func::Now => {
                let now = self.now();
                let date = DateTime {
                    year: now.year(),
                    month: now.month(),
                    day: now.day(),
                    hour: now.hour(),
                    minute: now.minute(),
                    second: now.second(),
                    millisecond: now.nanosecond() / 1_000_000 % 1000,
                    precision: Precision::Millisecond,
                    offset: Some(now.offset().local_minus_utc() / 60),
                };
                Ok(vec![Item::DateTime(date)])
            }
            Func::Today => Ok(DateTime::parse_date(&self.now().format("%Y-%m-%d").to_string())
                .map(Item::Date)
                .into_iter()
                .collect()),
            Func::TimeOfDay => Ok(vec![Item::Time(Time::from_chrono(self.now().time()))]),
            _ => unreachable!("not a FHIR function"),
        }
    }

    /// Finds a referenced resource: `#id` among contained resources, then entries of a Bundle
    /// being evaluated (by `fullUrl` or `Type/id`), then the caller's resolver.
    fn resolve_reference(&self, reference: &str) -> Option<&'a Value> {
        let roots = [Some(self.resource), self.ctx.root_resource];
        if let Some(id) = reference.strip_prefix('#') {
            return roots.into_iter().flatten().find_map(|root| {
                root.get("contained")?
                    .as_array()?
                    .iter()
                    .find(|c| c.get("id").and_then(Value::as_str) == Some(id))
            });
        }
        for root in roots.into_iter().flatten() {
            let Some(entries) = root.get("entry").and_then(Value::as_array) else {
                continue;
            };
            let wanted = type_and_id(reference);
            let found = entries.iter().find_map(|entry| {
                let resource = entry.get("resource")?;
                let full_url = entry.get("fullUrl").and_then(Value::as_str);
                let own = (
                    resource.get("resourceType").and_then(Value::as_str)?,
                    resource.get("id").and_then(Value::as_str)?,
                );
                (full_url == Some(reference) || wanted == Some(own)).then_some(resource)
            });
            if found.is_some() {
                return found;
            }
        }
        self.ctx.resolver.and_then(|resolve| resolve(reference))
    }
}
