//! SMART App Launch 2.x scopes (scopes-and-launch-context.html): what a token lets its holder do.
//!
//! - v2: `patient|user|system` `/` a resource type or `*` `.` permissions among `c r u d s`, in
//!   that order, each at most once, optionally `?` a search query that narrows the scope
//!   (`patient/Observation.rs?category=…|laboratory`).
//! - v1: the same contexts and types with `.read` (`rs`), `.write` (`cud`) or `.*` (`cruds`);
//!   write never implies read.
//!
//! Scopes are a union. A scope that does not parse — letters out of order, an unknown type, a
//! `patient/` scope on a token without a launch patient, a query with a modifier or a chain, or
//! one the server cannot search by — grants nothing, never more; the others still count. Scopes
//! that are not about resources (`openid`, `fhirUser`, `launch/patient`, `offline_access`, …)
//! grant nothing here.

use crate::model::ResourceType;

/// Whose data a scope is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Context {
    /// The launch patient's (the token's `patient` claim).
    Patient,
    /// What the user (`fhirUser`) may see.
    User,
    /// Anything: a backend service acting for itself.
    System,
}

/// One of the SMART v2 permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

impl Permission {
    fn bit(self) -> u8 {
        match self {
            Permission::Create => 1,
            Permission::Read => 2,
            Permission::Update => 4,
            Permission::Delete => 8,
            Permission::Search => 16,
        }
    }

    /// The letter of the permission in a v2 scope.
    pub fn letter(self) -> char {
        match self {
            Permission::Create => 'c',
            Permission::Read => 'r',
            Permission::Update => 'u',
            Permission::Delete => 'd',
            Permission::Search => 's',
        }
    }
}

/// A set of permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions(u8);

impl Permissions {
    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    /// `cruds` in that order, each letter at most once; `None` for anything else.
    fn parse_v2(letters: &str) -> Option<Permissions> {
        const ORDER: [Permission; 5] = [
            Permission::Create,
            Permission::Read,
            Permission::Update,
            Permission::Delete,
            Permission::Search,
        ];
        let mut next = 0;
        let mut bits = 0;
        for letter in letters.chars() {
            let at = ORDER[next..].iter().position(|p| p.letter() == letter)?;
            bits |= ORDER[next + at].bit();
            next += at + 1;
        }
        (bits != 0).then_some(Permissions(bits))
    }

    fn parse_v1(word: &str) -> Option<Permissions> {
        match word {
            "read" => Permissions::parse_v2("rs"),
            "write" => Permissions::parse_v2("cud"),
            "*" => Permissions::parse_v2("cruds"),
            _ => None,
        }
    }

    /// The letters, in `cruds` order.
    pub fn letters(self) -> String {
        [
            Permission::Create,
            Permission::Read,
            Permission::Update,
            Permission::Delete,
            Permission::Search,
        ]
        .into_iter()
        .filter(|p| self.contains(*p))
        .map(Permission::letter)
        .collect()
    }
}

/// One scope that grants something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub context: Context,
    /// `None` for `*`: every type.
    pub resource_type: Option<ResourceType>,
    pub permissions: Permissions,
    /// The search query that narrows the scope (`category=…`), as pairs; empty when none.
    pub filter: Vec<(String, String)>,
}

impl Scope {
    /// Whether the scope names `resource_type`, by name or by `*`.
    pub fn covers(&self, resource_type: ResourceType) -> bool {
        self.resource_type.is_none_or(|t| t == resource_type)
    }

    /// The scope as a v2 scope string (a granted scope is always answered in v2 form).
    pub fn to_v2(&self) -> String {
        let context = match self.context {
            Context::Patient => "patient",
            Context::User => "user",
            Context::System => "system",
        };
        let target = self.resource_type.map_or("*", |t| t.as_str());
        let mut text = format!("{context}/{target}.{}", self.permissions.letters());
        if !self.filter.is_empty() {
            text.push('?');
            text.push_str(
                &form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&self.filter)
                    .finish(),
            );
        }
        text
    }
}

/// Why a scope grants nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub scope: String,
    pub reason: String,
}

/// The scopes of a token that grant something.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet {
    pub scopes: Vec<Scope>,
}

/// The scopes about something else than resources, which grant nothing here but are no error.
const OTHER_SCOPES: [&str; 7] = [
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "offline_access",
    "online_access",
    "launch/patient",
];

impl ScopeSet {
    /// The resource scopes of the space-separated `text`, and why each other one grants nothing.
    /// `has_patient`: the token names a launch patient, without which `patient/` scopes cannot
    /// be honoured. `check_filter` tells whether a scope's search query is one the server can
    /// search `resource_type` by (`None`: yes), so that a query that would not narrow anything
    /// is refused rather than ignored.
    pub fn parse(
        text: &str,
        has_patient: bool,
        check_filter: impl Fn(Option<ResourceType>, &[(String, String)]) -> Option<String>,
    ) -> (ScopeSet, Vec<Refused>) {
        let mut set = ScopeSet::default();
        let mut refused = Vec::new();
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            if OTHER_SCOPES.contains(&word) || word.starts_with("launch/") {
                continue;
            }
            match Self::parse_one(word, has_patient, &check_filter) {
                Ok(scope) => set.scopes.push(scope),
                Err(reason) => refused.push(Refused {
                    scope: word.to_owned(),
                    reason,
                }),
            }
        }
        (set, refused)
    }

    fn parse_one(
        word: &str,
        has_patient: bool,
        check_filter: &impl Fn(Option<ResourceType>, &[(String, String)]) -> Option<String>,
    ) -> Result<Scope, String> {
        let (context, rest) = word
            .split_once('/')
            .ok_or_else(|| "not a SMART resource scope (context/Type.permissions)".to_owned())?;
        let context = match context {
            "patient" => Context::Patient,
            "user" => Context::User,
            "system" => Context::System,
            other => return Err(format!("'{other}' is not a scope context (patient, user or system)")),
        };
        if context == Context::Patient && !has_patient {
            return Err("a patient/ scope needs the token's patient claim".to_owned());
        }
        let (scope, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (target, permissions) = scope
            .split_once('.')
            .ok_or_else(|| "no permissions after the resource type".to_owned())?;
        let resource_type = match target {
            "*" => None,
            name => Some(ResourceType::parse(name).ok_or_else(|| format!("'{name}' is not an R4 resource type"))?),
        };
        let permissions = Permissions::parse_v2(permissions)
            .or_else(|| query.is_empty().then(|| Permissions::parse_v1(permissions)).flatten())
            .ok_or_else(|| {
                format!("'{permissions}' is neither v2 permissions (c, r, u, d, s in that order) nor read, write or *")
            })?;
        let filter: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        if !filter.is_empty() {
            if resource_type.is_none() {
                return Err("a search query narrows a scope on one resource type, not *".to_owned());
            }
            if let Some((name, _)) = filter
                .iter()
                .find(|(name, _)| name.contains([':', '.']) || name.starts_with('_'))
            {
                return Err(format!(
                    "'{name}' in the scope's query: modifiers, chains and result parameters cannot narrow a scope"
                ));
            }
            if let Some(reason) = check_filter(resource_type, &filter) {
                return Err(reason);
            }
        }
        Ok(Scope {
            context,
            resource_type,
            permissions,
            filter,
        })
    }

    /// The scopes that grant `permission` on `resource_type`.
    pub fn granting(&self, resource_type: ResourceType, permission: Permission) -> impl Iterator<Item = &Scope> {
        self.scopes
            .iter()
            .filter(move |s| s.covers(resource_type) && s.permissions.contains(permission))
    }

    /// Whether any scope grants `permission` on `resource_type`.
    pub fn allows(&self, resource_type: ResourceType, permission: Permission) -> bool {
        self.granting(resource_type, permission).next().is_some()
    }

    /// The scopes as v2 strings, space-separated.
    pub fn to_v2(&self) -> String {
        self.scopes.iter().map(Scope::to_v2).collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (ScopeSet, Vec<Refused>) {
        ScopeSet::parse(text, true, |_, _| None)
    }

    fn t(name: &str) -> ResourceType {
        ResourceType::parse(name).unwrap()
    }

    #[test]
    fn v2_letters_in_order_each_once() {
        let (set, refused) = parse("patient/Observation.rs user/Patient.cruds system/*.d");
        assert!(refused.is_empty(), "{refused:?}");
        assert!(set.allows(t("Observation"), Permission::Read));
        assert!(set.allows(t("Observation"), Permission::Search));
        assert!(!set.allows(t("Observation"), Permission::Create));
        assert!(set.allows(t("Encounter"), Permission::Delete), "* covers every type");
        assert!(!set.allows(t("Encounter"), Permission::Read));
        for bad in [
            "patient/Observation.sr",
            "patient/Observation.rr",
            "patient/Observation.",
            "patient/Observation.x",
        ] {
            let (set, refused) = parse(bad);
            assert!(set.scopes.is_empty(), "{bad} grants nothing");
            assert_eq!(refused.len(), 1, "{bad}");
        }
    }

    #[test]
    fn v1_read_write_and_star_map_to_v2_and_write_does_not_read() {
        let (set, _) = parse("patient/Observation.read user/Encounter.write system/Patient.*");
        assert_eq!(
            set.to_v2(),
            "patient/Observation.rs user/Encounter.cud system/Patient.cruds"
        );
        assert!(!set.allows(t("Encounter"), Permission::Read));
    }

    #[test]
    fn what_does_not_parse_grants_nothing_and_the_rest_still_counts() {
        let (set, refused) =
            parse("openid fhirUser launch/patient offline_access patient/Nope.rs clinic/Patient.r user/Patient.r");
        assert_eq!(set.to_v2(), "user/Patient.r");
        let reasons: Vec<&str> = refused.iter().map(|r| r.scope.as_str()).collect();
        assert_eq!(reasons, ["patient/Nope.rs", "clinic/Patient.r"]);
        let (set, refused) = ScopeSet::parse("patient/Observation.rs user/Patient.r", false, |_, _| None);
        assert_eq!(
            set.to_v2(),
            "user/Patient.r",
            "no patient claim: patient/ scopes grant nothing"
        );
        assert_eq!(refused[0].scope, "patient/Observation.rs");
    }

    #[test]
    fn a_query_narrows_one_type_and_refuses_modifiers_chains_and_what_cannot_be_searched() {
        let (set, refused) = parse(
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category%7Claboratory",
        );
        assert!(refused.is_empty());
        assert_eq!(
            set.scopes[0].filter,
            [(
                "category".to_owned(),
                "http://terminology.hl7.org/CodeSystem/observation-category|laboratory".to_owned()
            )]
        );
        for bad in [
            "patient/Observation.rs?code:text=x",
            "patient/Observation.rs?subject.name=x",
            "patient/Observation.rs?_count=1",
            "patient/*.rs?code=x",
            "patient/Observation.read?code=x",
        ] {
            let (set, refused) = parse(bad);
            assert!(set.scopes.is_empty(), "{bad}: {refused:?}");
        }
        let (set, refused) = ScopeSet::parse("patient/Observation.rs?shoe=1", true, |_, _| {
            Some("no such parameter".into())
        });
        assert!(set.scopes.is_empty());
        assert_eq!(refused[0].reason, "no such parameter");
    }
}
