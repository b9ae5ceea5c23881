//! Authorization on the request path: what the caller of a request may do, decided here for every
//! interaction, whether it came over HTTP or in a Bundle entry (SMART App Launch 2.x scopes,
//! `auth::scope`).
//!
//! - `reach`: which resources of a type a caller may reach with a permission — all, none, or
//!   those some rule admits (the launch patient's compartment, a granular scope's search).
//! - `check`: the check of a request before it runs, from its types and interaction alone: a
//!   type the token does not cover is a `403` whatever the data.
//! - `narrow`: searches, histories, chains, `_has` and includes narrowed in SQL to what the caller
//!   may reach, so that no answer (rows, totals, paging) depends on data it may not see.
//! - `disclose`: each resource about to leave the server re-checked (a read of one the caller may
//!   not see is a `404` byte-for-byte that of a missing one), and a Group's members outside the
//!   caller's patient left out.
//! - `writes`: creates, updates and deletes, whose resource must be within reach before and after.
//! - `consent`, `consent_narrow`, `consent_store`: patients' Consents, after the scopes: what a
//!   request's caller may see of each patient's data, judged per resource and narrowed in SQL,
//!   from the consents in force (README "Consent policy").
//!
//! The rule for each kind of scope (documented in the README's "Authorization" section):
//! `system/` scopes reach what they name; `patient/` scopes the launch patient's compartment (R4
//! CompartmentDefinition/patient; the Patient itself and those linking to it), and types outside
//! every compartment (Practitioner, Organization, Medication, …) for reading when the scope names
//! the type rather than `*` (unless the server runs with `--auth-patient-directory none`);
//! `user/` scopes what the `fhirUser` may see: a Patient user sees its own compartment as a
//! `patient/` scope would, any other user (Practitioner, …) what the scopes name. A granular
//! scope (`?category=…`) grants reads and searches only; writes need a scope without a query.
//! `SearchParameter` writes and `$reindex` need a `system/` scope.

pub mod consent;
pub mod consent_narrow;
pub mod consent_store;
pub mod disclose;
pub mod narrow;
pub mod owners;
pub mod writes;

use super::Cx;
use super::request::{HistoryTarget, Request, SearchScope};
pub use crate::auth::PatientDirectory;
use crate::auth::scope::{Context, Permission};
use crate::auth::{Caller, Grant};
use crate::error::{Error, Result};
use crate::model::ResourceType;
use crate::search::compartments;

/// What of one resource type a caller may reach with one permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every resource of the type.
    All,
    /// Those that at least one of these rules admits (never empty).
    Some(Vec<Rule>),
    /// None: the permission is not granted on the type.
    None,
}

/// One way a scope admits resources: all its conditions hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Only resources in this Patient's compartment.
    pub patient: Option<String>,
    /// Only resources this search query matches (a granular scope's); empty: no such condition.
    pub filter: Vec<(String, String)>,
}

impl Reach {
    pub fn is_none(&self) -> bool {
        matches!(self, Reach::None)
    }
}

/// What of `resource_type` the caller of `cx` may reach with `permission`.
pub fn reach(cx: &Cx, resource_type: ResourceType, permission: Permission) -> Reach {
    match &cx.caller {
        Caller::Anonymous | Caller::System(_) => Reach::All,
        Caller::Token(grant) => {
            let directory = cx
                .services
                .authorization
                .as_ref()
                .map_or(PatientDirectory::Named, |a| a.patient_directory);
            grant_reach(grant, resource_type, permission, directory, &cx.services.base_url)
        }
    }
}

/// Whether the caller is restricted at all (a token), so that checks can be skipped otherwise.
pub fn is_restricted(cx: &Cx) -> bool {
    matches!(cx.caller, Caller::Token(_))
}

/// Whether the caller may use `permission` on every resource of every type (no caller, or a
/// `system/*` scope granting it without a query), so that nothing is hidden from it.
pub fn sees_everything(cx: &Cx, permission: Permission) -> bool {
    match &cx.caller {
        Caller::Anonymous | Caller::System(_) => true,
        Caller::Token(grant) => grant.scopes.scopes.iter().any(|s| {
            s.context == Context::System
                && s.resource_type.is_none()
                && s.filter.is_empty()
                && s.permissions.contains(permission)
        }),
    }
}

/// Types outside every patient's compartment that hold no one patient's data: people and places
/// of care, medications and substances, terminology, conformance and knowledge resources.
/// `patient/` scopes naming one of them read it whole (`--auth-patient-directory named`); any
/// other type outside the compartment (Task, Device, Binary, Bundle, Contract, …) may well be
/// about a patient without the R4 CompartmentDefinition saying so, and is not reached at all.
pub const DIRECTORY_TYPES: &[&str] = &[
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "OrganizationAffiliation",
    "Location",
    "HealthcareService",
    "Endpoint",
    "InsurancePlan",
    "Medication",
    "MedicationKnowledge",
    "Substance",
    "DeviceDefinition",
    "ValueSet",
    "CodeSystem",
    "ConceptMap",
    "NamingSystem",
    "TerminologyCapabilities",
    "StructureDefinition",
    "StructureMap",
    "CapabilityStatement",
    "OperationDefinition",
    "SearchParameter",
    "CompartmentDefinition",
    "ImplementationGuide",
    "GraphDefinition",
    "MessageDefinition",
    "EventDefinition",
    "Questionnaire",
    "PlanDefinition",
    "ActivityDefinition",
    "Library",
    "Measure",
    "ObservationDefinition",
    "SpecimenDefinition",
    "ChargeItemDefinition",
];

/// Who a `fhirUser` claim names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum User {
    /// A Patient: the user sees its own compartment.
    Patient(String),
    /// A Practitioner or PractitionerRole: what the scopes name.
    Clinician,
    /// A RelatedPerson or Person: someone acting for a patient, the token's launch patient.
    Proxy,
}

/// `reach` for the holder of `grant`, on a server whose base is `own_base`.
pub fn grant_reach(
    grant: &Grant,
    resource_type: ResourceType,
    permission: Permission,
    directory: PatientDirectory,
    own_base: &str,
) -> Reach {
    let writes = !matches!(permission, Permission::Read | Permission::Search);
    let in_compartment =
        resource_type.as_str() == "Patient" || compartments::params("Patient", resource_type.as_str()).is_some();
    let directory_type = DIRECTORY_TYPES.contains(&resource_type.as_str());
    let mut rules: Vec<Rule> = Vec::new();
    let audit_trail = resource_type.as_str() == "AuditEvent";
    for scope in grant.scopes.granting(resource_type, permission) {
        if writes && !scope.filter.is_empty() {
            continue;
        }
        // The audit trail is read only under a scope that names it: `*` does not.
        if audit_trail && scope.resource_type.is_none() {
            continue;
        }
        if writes && resource_type.as_str() == "SearchParameter" && scope.context != Context::System {
            continue;
        }
        // A `user/` scope of a token without a user it understands grants nothing.
        let (patient, patient_bound) = match scope.context {
            Context::System => (None, false),
            Context::Patient => (grant.patient.clone(), true),
            Context::User => match grant.fhir_user.as_deref().and_then(|u| user_of(u, own_base)) {
                Some(User::Patient(id)) => (Some(id), true),
                Some(User::Clinician) => (None, false),
                Some(User::Proxy) if grant.patient.is_some() => (grant.patient.clone(), true),
                Some(User::Proxy) | None => continue,
            },
        };
        let rule = match patient {
            Some(patient) if in_compartment => Rule {
                patient: Some(patient),
                filter: scope.filter.clone(),
            },
            _ if patient_bound => {
                let named = scope.resource_type.is_some();
                if in_compartment || !directory_type || writes || !named || directory == PatientDirectory::None {
                    continue;
                }
                Rule {
                    patient: None,
                    filter: scope.filter.clone(),
                }
            }
            _ => Rule {
                patient: None,
                filter: scope.filter.clone(),
            },
        };
        if rule.patient.is_none() && rule.filter.is_empty() {
            return Reach::All;
        }
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    if rules.is_empty() {
        Reach::None
    } else {
        Reach::Some(rules)
    }
}

/// Who the `fhirUser` `reference` names: `Type/id` of a Patient, Practitioner, PractitionerRole,
/// RelatedPerson or Person, relative or absolute on this server (`own_base`); anything else
/// (another server's user, a version, a malformed id) names no one.
fn user_of(reference: &str, own_base: &str) -> Option<User> {
    let relative = if reference.contains("://") {
        reference.strip_prefix(own_base)?.strip_prefix('/')?
    } else {
        reference
    };
    let (kind, id) = relative.split_once('/')?;
    if !crate::model::id::is_valid_id(id) {
        return None;
    }
    match kind {
        "Patient" => Some(User::Patient(id.to_owned())),
        "Practitioner" | "PractitionerRole" => Some(User::Clinician),
        "RelatedPerson" | "Person" => Some(User::Proxy),
        _ => None,
    }
}

/// The `403` of a permission the token does not grant on a type. It names only what was asked,
/// so it is the same whatever the server holds.
pub fn forbidden(resource_type: ResourceType, permission: Permission) -> Error {
    Error::forbidden(format!(
        "the access token does not grant '{}' on {resource_type}",
        permission.letter()
    ))
}

/// `reach`, or the `403` when it is none.
pub fn require(cx: &Cx, resource_type: ResourceType, permission: Permission) -> Result<Reach> {
    match reach(cx, resource_type, permission) {
        Reach::None => Err(forbidden(resource_type, permission)),
        reach => Ok(reach),
    }
}

/// The check of `request` from its types and interaction alone, before it runs: a `403` when the
/// token does not cover it. What a request may see of the data is decided as it runs (`narrow`,
/// `disclose`, `writes`); a Bundle's entries are checked one by one.
pub fn check(cx: &Cx, request: &Request) -> Result<()> {
    if !is_restricted(cx) {
        return Ok(());
    }
    use Permission::{Create, Delete, Read, Search, Update};
    let need = |t: ResourceType, p: Permission| require(cx, t, p).map(drop);
    match request {
        Request::Capabilities | Request::Bundle(_) | Request::Validate { id: None, .. } => Ok(()),
        // `[type]/[id]/$validate` (`mode=delete`) reads the stored resource.
        Request::Validate {
            resource_type,
            id: Some(_),
            ..
        } => need(*resource_type, Read),
        Request::Read { resource_type, .. } | Request::Vread { resource_type, .. } => need(*resource_type, Read),
        Request::Create {
            resource_type,
            if_none_exist,
            ..
        } => {
            need(*resource_type, Create)?;
            if if_none_exist.is_some() {
                need(*resource_type, Search)?;
            }
            Ok(())
        }
        Request::Update { resource_type, .. } => need(*resource_type, Update),
        // A patch answers with what it patched, and its `test` operations compare stored values:
        // it reads as much as it writes.
        Request::Patch { resource_type, .. } => {
            need(*resource_type, Update)?;
            need(*resource_type, Read)
        }
        Request::UpdateConditional { condition, .. } => {
            need(condition.resource_type, Update)?;
            need(condition.resource_type, Search)
        }
        Request::PatchConditional { condition, .. } => {
            need(condition.resource_type, Update)?;
            need(condition.resource_type, Read)?;
            need(condition.resource_type, Search)
        }
        Request::Delete { resource_type, .. } => need(*resource_type, Delete),
        Request::DeleteConditional { condition } => {
            need(condition.resource_type, Delete)?;
            need(condition.resource_type, Search)
        }
        Request::Search { scope, query, .. } => narrow::check_search(cx, scope, query).map(drop),
        Request::History { target, .. } => match target {
            HistoryTarget::Instance(t, _) => need(*t, Read),
            HistoryTarget::Type(t) => need(*t, Search),
            HistoryTarget::System => narrow::check_search(cx, &SearchScope::System, &[]).map(drop),
        },
        Request::Reindex(types) => require_system(cx, types, "$reindex"),
        // Which patients' consents it may ask about is checked as it runs.
        Request::ConsentEvaluate(_) => need(ResourceType::parse("Consent").expect("a type"), Read),
        Request::ReindexStatus => require_system(cx, &[], "$reindex"),
    }
}

/// A `system/` scope granting `u` on each of `types` (on every type when none is named).
fn require_system(cx: &Cx, types: &[ResourceType], operation: &str) -> Result<()> {
    let Caller::Token(grant) = &cx.caller else {
        return Ok(());
    };
    let covers = |t: Option<ResourceType>| {
        grant.scopes.scopes.iter().any(|s| {
            s.context == Context::System
                && s.filter.is_empty()
                && s.permissions.contains(Permission::Update)
                && (s.resource_type.is_none() || s.resource_type == t)
        })
    };
    let granted = if types.is_empty() {
        covers(None)
            && grant
                .scopes
                .scopes
                .iter()
                .any(|s| s.context == Context::System && s.resource_type.is_none())
    } else {
        types.iter().all(|t| covers(Some(*t)))
    };
    if granted {
        Ok(())
    } else {
        Err(Error::forbidden(format!(
            "{operation} needs a system/ scope granting 'u' on every type it touches"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::scope::ScopeSet;

    const BASE: &str = "https://h/fhir/R4";

    fn grant(scopes: &str, patient: Option<&str>, fhir_user: Option<&str>) -> Grant {
        Grant {
            purposes: Vec::new(),
            scopes: ScopeSet::parse(scopes, patient.is_some(), |_, _| None).0,
            patient: patient.map(str::to_owned),
            fhir_user: fhir_user.map(str::to_owned),
            client_id: None,
            token_id: None,
            expires_at: 0,
            issuer: "i".into(),
        }
    }

    fn t(name: &str) -> ResourceType {
        ResourceType::parse(name).unwrap()
    }

    fn only_patient(id: &str) -> Reach {
        Reach::Some(vec![Rule {
            patient: Some(id.into()),
            filter: vec![],
        }])
    }

    #[test]
    fn patient_scopes_reach_the_compartment_and_named_directory_types_for_reading() {
        let g = grant(
            "patient/*.rs patient/Practitioner.rs patient/Organization.cruds",
            Some("p1"),
            None,
        );
        let named = PatientDirectory::Named;
        assert_eq!(
            grant_reach(&g, t("Observation"), Permission::Read, named, BASE),
            only_patient("p1")
        );
        assert_eq!(
            grant_reach(&g, t("Patient"), Permission::Search, named, BASE),
            only_patient("p1")
        );
        assert_eq!(
            grant_reach(&g, t("Practitioner"), Permission::Read, named, BASE),
            Reach::All
        );
        assert_eq!(
            grant_reach(&g, t("Medication"), Permission::Read, named, BASE),
            Reach::None,
            "* reaches the compartment only"
        );
        assert_eq!(
            grant_reach(&g, t("Organization"), Permission::Create, named, BASE),
            Reach::None,
            "no writes outside the compartment"
        );
        assert_eq!(
            grant_reach(&g, t("Practitioner"), Permission::Read, PatientDirectory::None, BASE),
            Reach::None
        );
        assert_eq!(
            grant_reach(&g, t("Observation"), Permission::Create, named, BASE),
            Reach::None
        );
    }

    #[test]
    fn user_scopes_follow_the_fhir_user_and_system_scopes_the_scopes_alone() {
        let as_patient = grant("user/Observation.rs", None, Some("https://h/fhir/R4/Patient/p7"));
        assert_eq!(
            grant_reach(
                &as_patient,
                t("Observation"),
                Permission::Read,
                PatientDirectory::Named,
                BASE
            ),
            only_patient("p7")
        );
        let as_practitioner = grant("user/Observation.rs", None, Some("Practitioner/d1"));
        assert_eq!(
            grant_reach(
                &as_practitioner,
                t("Observation"),
                Permission::Read,
                PatientDirectory::Named,
                BASE
            ),
            Reach::All
        );
        let system = grant("system/Observation.rs?category=laboratory system/*.c", None, None);
        assert_eq!(
            grant_reach(
                &system,
                t("Observation"),
                Permission::Read,
                PatientDirectory::Named,
                BASE
            ),
            Reach::Some(vec![Rule {
                patient: None,
                filter: vec![("category".into(), "laboratory".into())]
            }])
        );
        assert_eq!(
            grant_reach(
                &system,
                t("SearchParameter"),
                Permission::Create,
                PatientDirectory::Named,
                BASE
            ),
            Reach::All
        );
        let user = grant("user/*.cruds", None, Some("Practitioner/d1"));
        assert_eq!(
            grant_reach(
                &user,
                t("SearchParameter"),
                Permission::Create,
                PatientDirectory::Named,
                BASE
            ),
            Reach::None,
            "SearchParameter writes need system/"
        );
    }

    #[test]
    fn granular_scopes_grant_no_writes_and_scopes_add_up() {
        let g = grant(
            "patient/Observation.cruds?category=laboratory patient/Observation.rs?category=vital-signs",
            Some("p1"),
            None,
        );
        assert_eq!(
            grant_reach(&g, t("Observation"), Permission::Update, PatientDirectory::Named, BASE),
            Reach::None
        );
        let Reach::Some(rules) = grant_reach(&g, t("Observation"), Permission::Search, PatientDirectory::Named, BASE)
        else {
            panic!("narrowed")
        };
        assert_eq!(rules.len(), 2);
        assert!(rules.iter().all(|r| r.patient.as_deref() == Some("p1")));
    }

    #[test]
    fn fhir_user_names_a_user_of_this_server_only() {
        assert_eq!(user_of("Patient/abc", BASE), Some(User::Patient("abc".into())));
        assert_eq!(
            user_of("https://h/fhir/R4/Patient/abc", BASE),
            Some(User::Patient("abc".into()))
        );
        assert_eq!(
            user_of("https://other/fhir/R4/Patient/abc", BASE),
            None,
            "another server's"
        );
        assert_eq!(user_of("https://h/fhir/R4x/Patient/abc", BASE), None);
        assert_eq!(user_of("Practitioner/abc", BASE), Some(User::Clinician));
        assert_eq!(user_of("PractitionerRole/abc", BASE), Some(User::Clinician));
        assert_eq!(user_of("RelatedPerson/abc", BASE), Some(User::Proxy));
        assert_eq!(user_of("Person/abc", BASE), Some(User::Proxy));
        for malformed in [
            "Patient/a b",
            "Patient/a_b",
            "patient/1",
            "Patient/1/_history/2",
            "abc",
            "Device/1",
            "",
        ] {
            assert_eq!(user_of(malformed, BASE), None, "{malformed}");
        }
    }

    #[test]
    fn user_scopes_grant_nothing_without_a_user_they_understand() {
        for fhir_user in [
            None,
            Some("Patient/1/_history/2"),
            Some("Patient/a_b"),
            Some("https://other/Patient/p1"),
        ] {
            let g = grant("user/*.rs", None, fhir_user);
            assert_eq!(
                grant_reach(&g, t("Observation"), Permission::Read, PatientDirectory::Named, BASE),
                Reach::None,
                "{fhir_user:?}"
            );
        }
        let proxy = grant("user/*.rs", None, Some("RelatedPerson/r1"));
        assert_eq!(
            grant_reach(
                &proxy,
                t("Observation"),
                Permission::Read,
                PatientDirectory::Named,
                BASE
            ),
            Reach::None,
            "a RelatedPerson without a launch patient"
        );
        let proxy = grant("user/*.rs", Some("p1"), Some("RelatedPerson/r1"));
        assert_eq!(
            grant_reach(
                &proxy,
                t("Observation"),
                Permission::Read,
                PatientDirectory::Named,
                BASE
            ),
            only_patient("p1"),
            "a RelatedPerson acts for the launch patient"
        );
    }

    #[test]
    fn directory_types_are_listed_and_outside_the_compartment() {
        for name in DIRECTORY_TYPES {
            let t = ResourceType::parse(name).unwrap_or_else(|| panic!("{name} is an R4 type"));
            assert!(compartments::params("Patient", t.as_str()).is_none(), "{name}");
        }
        let g = grant(
            "patient/Task.rs patient/Binary.rs patient/Device.rs patient/Location.rs",
            Some("p1"),
            None,
        );
        for kind in ["Task", "Binary", "Device"] {
            assert_eq!(
                grant_reach(&g, t(kind), Permission::Read, PatientDirectory::Named, BASE),
                Reach::None,
                "{kind} may be a patient's: not a directory"
            );
        }
        assert_eq!(
            grant_reach(&g, t("Location"), Permission::Read, PatientDirectory::Named, BASE),
            Reach::All
        );
    }
}
