//! What the server tells clients about its authorization, generated from the configuration (the
//! `Endpoints` in force): `[base]/.well-known/smart-configuration` (SMART App Launch 2.x,
//! conformance.html) and the CapabilityStatement's `rest.security`.

use super::Endpoints;
use serde_json::{Map, Value, json};

/// The SMART oauth-uris extension of `CapabilityStatement.rest.security`.
pub const OAUTH_URIS: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";

/// `[base]/.well-known/smart-configuration`. Every URL absolute.
pub fn smart_configuration(endpoints: &Endpoints) -> Value {
    let mut document = Map::new();
    let mut put = |name: &str, value: Option<&String>| {
        if let Some(value) = value {
            document.insert(name.to_owned(), Value::String(value.clone()));
        }
    };
    put("issuer", endpoints.issuer.as_ref());
    put("jwks_uri", endpoints.jwks.as_ref());
    put("authorization_endpoint", endpoints.authorization.as_ref());
    put("token_endpoint", endpoints.token.as_ref());
    put("introspection_endpoint", endpoints.introspection.as_ref());
    put("revocation_endpoint", endpoints.revocation.as_ref());
    let mut grant_types = Vec::new();
    if endpoints.authorization.is_some() {
        grant_types.push("authorization_code");
    }
    if endpoints.token.is_some() {
        grant_types.push("client_credentials");
    }
    document.insert("grant_types_supported".into(), json!(grant_types));
    document.insert(
        "token_endpoint_auth_methods_supported".into(),
        json!(["private_key_jwt"]),
    );
    document.insert(
        "token_endpoint_auth_signing_alg_values_supported".into(),
        json!(["RS384", "ES384"]),
    );
    document.insert(
        "scopes_supported".into(),
        json!([
            "system/*.cruds",
            "system/*.rs",
            "user/*.cruds",
            "user/*.rs",
            "patient/*.cruds",
            "patient/*.rs",
            "system/*.read",
            "system/*.write",
            "user/*.read",
            "user/*.write",
            "patient/*.read",
            "patient/*.write",
            "launch/patient",
            "fhirUser",
            "openid",
        ]),
    );
    if endpoints.authorization.is_some() {
        document.insert("response_types_supported".into(), json!(["code"]));
    }
    let mut capabilities = vec![
        "permission-v1",
        "permission-v2",
        "permission-patient",
        "permission-user",
        "client-confidential-asymmetric",
    ];
    if endpoints.authorization.is_some() {
        capabilities.extend(["launch-standalone", "context-standalone-patient", "client-public"]);
    }
    document.insert("capabilities".into(), json!(capabilities));
    document.insert("code_challenge_methods_supported".into(), json!(["S256"]));
    Value::Object(document)
}

/// `CapabilityStatement.rest.security`: SMART-on-FHIR with the oauth-uris extension, or — when
/// authorization is off (`None`) — a description saying so.
pub fn capability_security(endpoints: Option<&Endpoints>) -> Value {
    let Some(endpoints) = endpoints else {
        return json!({
            "cors": true,
            "description": "Authorization is off: this server answers every request without credentials. \
                            Run it with --auth-issuer or --auth-clients-file to require SMART-on-FHIR access tokens."
        });
    };
    let uris: Vec<Value> = [
        ("token", &endpoints.token),
        ("authorize", &endpoints.authorization),
        ("introspect", &endpoints.introspection),
        ("revoke", &endpoints.revocation),
    ]
    .into_iter()
    .filter_map(|(name, url)| url.as_ref().map(|url| json!({"url": name, "valueUri": url})))
    .collect();
    json!({
        "cors": true,
        "extension": [{"url": OAUTH_URIS, "extension": uris}],
        "service": [{
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR"
            }],
            "text": "SMART-on-FHIR"
        }],
        "description": "Every request but this CapabilityStatement and .well-known/smart-configuration needs a \
                        SMART-on-FHIR bearer access token (scopes v1 and v2, granular scopes for reads)."
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_names_what_is_configured_and_always_s256() {
        let endpoints = Endpoints {
            issuer: Some("https://h/fhir/R4".into()),
            token: Some("https://h/fhir/R4/auth/token".into()),
            jwks: Some("https://h/fhir/R4/.well-known/jwks.json".into()),
            ..Default::default()
        };
        let document = smart_configuration(&endpoints);
        assert_eq!(document["token_endpoint"], "https://h/fhir/R4/auth/token");
        assert_eq!(document["grant_types_supported"], json!(["client_credentials"]));
        assert_eq!(document["code_challenge_methods_supported"], json!(["S256"]));
        assert!(document.get("authorization_endpoint").is_none());
        let capabilities = document["capabilities"].as_array().unwrap();
        for wanted in ["permission-v1", "permission-v2", "client-confidential-asymmetric"] {
            assert!(capabilities.contains(&json!(wanted)), "{wanted}");
        }
        let security = capability_security(Some(&endpoints));
        assert_eq!(security["extension"][0]["url"], OAUTH_URIS);
        assert_eq!(
            security["extension"][0]["extension"][0]["valueUri"],
            "https://h/fhir/R4/auth/token"
        );
        assert!(
            capability_security(None)["description"]
                .as_str()
                .unwrap()
                .contains("off")
        );
    }
}
