//! Attack cases 16 and 18–23, with authorization on: a holder of a valid token cannot use the
//! request itself against the server — mismatched ids, injected SQL, costly searches, oversized
//! or deeply nested bodies are refused with a clear 4xx (or handled literally) and change nothing.

use super::admin;
use crate::harness::TestApp;
use serde_json::json;

crate::on_both_backends!(with |c| { crate::auth::with_idp(c); c.max_body_bytes = 200_000; c.bundle_max_entries = 50; };
    a_put_whose_body_id_differs_from_the_url_is_400,
    ids_and_versions_in_a_created_body_are_the_servers_to_assign,
    injected_sql_in_values_and_sort_keys_is_data_or_refused,
    costly_searches_are_clamped_or_refused_as_too_costly,
    oversized_and_deeply_nested_bodies_are_refused_and_change_nothing,
    patches_that_nest_or_grow_without_bound_are_refused,
);

async fn a_put_whose_body_id_differs_from_the_url_is_400(app: TestApp) {
    let admin = admin(&app);
    let reply = admin
        .put("Patient/a", &json!({"resourceType": "Patient", "id": "b"}))
        .await;
    reply.assert_outcome(400, "invalid");
    let reply = admin
        .put("Patient/a", &json!({"resourceType": "Observation", "id": "a"}))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(admin.get("Patient/a").await.status, 404);
    assert_eq!(admin.get("Patient/b").await.status, 404);
}

async fn ids_and_versions_in_a_created_body_are_the_servers_to_assign(app: TestApp) {
    let admin = admin(&app);
    let reply = admin
        .post("Patient", &json!({"resourceType": "Patient", "id": "chosen", "meta": {"versionId": "42", "lastUpdated": "1999-01-01T00:00:00Z"}}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let created = reply.json();
    assert_ne!(created["id"], "chosen");
    assert_eq!(created["meta"]["versionId"], "1");
    assert_ne!(created["meta"]["lastUpdated"], "1999-01-01T00:00:00Z");
    assert_eq!(admin.get("Patient/chosen").await.status, 404);
}

async fn injected_sql_in_values_and_sort_keys_is_data_or_refused(app: TestApp) {
    let admin = admin(&app);
    admin
        .put(
            "Patient/a",
            &json!({"resourceType": "Patient", "id": "a", "name": [{"family": "O'Brien"}]}),
        )
        .await;
    admin
        .put(
            "Patient/b",
            &json!({"resourceType": "Patient", "id": "b", "name": [{"family": "Smith"}]}),
        )
        .await;
    for query in [
        "Patient?name=' OR 1=1--",
        "Patient?name=x'); DROP TABLE resource;--",
        "Patient?_id=a' OR '1'='1",
    ] {
        let reply = admin.get(query).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.text);
        assert_eq!(
            super::ids(&reply.json()),
            Vec::<String>::new(),
            "{query} is matched literally"
        );
    }
    assert_eq!(
        super::ids(&admin.get("Patient?name=O'Brien").await.json()),
        ["Patient/a"]
    );
    for sort in ["x;DROP TABLE resource", "birthdate,-", "name;--"] {
        // Lenient: ignored with a warning entry; strict: a 400. Never SQL.
        let reply = admin.get(&format!("Patient?_sort={sort}")).await;
        assert_eq!(reply.status, 200, "{sort}: {}", reply.text);
        let bundle = reply.json();
        let outcome = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"]["resourceType"] == "OperationOutcome");
        assert!(outcome.is_some(), "{sort}: a warning says the key was ignored");
        let request = app
            .client
            .get(app.url(&format!("Patient?_sort={sort}")))
            .bearer_auth(&admin.token)
            .header("prefer", "handling=strict");
        app.send(request).await.assert_outcome(400, "invalid");
    }
    assert_eq!(
        super::ids(&admin.get("Patient?_sort=_id").await.json()),
        ["Patient/a", "Patient/b"]
    );
}

async fn costly_searches_are_clamped_or_refused_as_too_costly(app: TestApp) {
    let admin = admin(&app);
    let reply = admin.get("Patient?_count=100000").await;
    assert_eq!(reply.status, 200);
    let own = reply.json()["link"][0]["url"].as_str().unwrap().to_owned();
    assert!(own.contains("_count=100000") || own.contains("_count=1000"), "{own}");
    for query in ["Observation?_include:iterate=*", "Observation?_revinclude:iterate=*"] {
        admin.get(query).await.assert_outcome(400, "too-costly");
    }
    let deep = "Observation?subject:Patient.organization.partof.partof.partof.name=x";
    admin.get(deep).await.assert_outcome(400, "too-costly");
    let many: Vec<String> = (0..101).map(|n| format!("name=n{n}")).collect();
    admin
        .get(&format!("Patient?{}", many.join("&")))
        .await
        .assert_outcome(400, "too-costly");
    // Within the limits, the same shapes are answered.
    assert_eq!(
        admin
            .get("Observation?subject:Patient.organization.name=x")
            .await
            .status,
        200
    );
    assert_eq!(
        admin.get(&format!("Patient?{}", many[..100].join("&"))).await.status,
        200
    );
    assert_eq!(
        admin
            .get("Observation?_include:iterate=Observation:subject")
            .await
            .status,
        200
    );
}

async fn oversized_and_deeply_nested_bodies_are_refused_and_change_nothing(app: TestApp) {
    let admin = admin(&app);
    let big = json!({"resourceType": "Patient", "name": [{"family": "x".repeat(300_000)}]});
    assert_eq!(admin.post("Patient", &big).await.status, 413);
    let entries: Vec<_> = (0..51)
        .map(|_| json!({"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}))
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    assert_eq!(admin.post("", &bundle).await.status, 413);
    let mut nested = json!("leaf");
    for _ in 0..200 {
        nested = json!({"valueString": "x", "extension": [{"url": "http://x", "extension": [nested]}]});
    }
    let deep = json!({"resourceType": "Patient", "extension": [{"url": "http://x", "extension": [nested]}]});
    let reply = admin.post("Patient", &deep).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.json()["resourceType"], "OperationOutcome");
    // The same nesting in XML, deep enough to exhaust a stack if it were read recursively.
    let xml = format!(
        r#"<Patient xmlns="http://hl7.org/fhir">{}{}</Patient>"#,
        r#"<extension url="a">"#.repeat(5_000),
        "</extension>".repeat(5_000)
    );
    for path in ["Patient", "Patient/$validate"] {
        let reply = app
            .send(
                app.client
                    .post(app.url(path))
                    .bearer_auth(&admin.token)
                    .header("content-type", "application/fhir+xml")
                    .body(xml.clone()),
            )
            .await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.text);
        assert!(reply.text.contains("deeper than 128"), "{}", reply.text);
    }
    assert_eq!(app.get("metadata").await.status, 200, "the server is still up");
    assert_eq!(admin.get("Patient?_summary=count").await.json()["total"], 0);
}

async fn patches_that_nest_or_grow_without_bound_are_refused(app: TestApp) {
    let admin = admin(&app);
    let patient = json!({"resourceType": "Patient", "id": "p", "extension": [{"url": "http://x", "valueString": "y".repeat(20_000)}]});
    assert_eq!(admin.put("Patient/p", &patient).await.status, 201);
    let patch = |content_type: &'static str, body: String| {
        app.send(
            app.client
                .patch(app.url("Patient/p"))
                .bearer_auth(&admin.token)
                .header("content-type", content_type)
                .body(body),
        )
    };
    // A FHIRPath Patch whose path nests far past any real expression.
    let path = format!("{}Patient.name{}", "(".repeat(30_000), ")".repeat(30_000));
    let fhirpath_patch = json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "delete"}, {"name": "path", "valueString": path}]}]});
    let reply = patch("application/fhir+json", fhirpath_patch.to_string()).await;
    assert!(matches!(reply.status, 400 | 422), "{}", reply.text);
    assert!(reply.text.contains("deeper than"), "{}", reply.text);
    // JSON Patch copies that double the resource each time.
    let doubling: Vec<_> = (0..40)
        .map(|_| json!({"op": "copy", "from": "/extension", "path": "/extension/-"}))
        .collect();
    let reply = patch("application/json-patch+json", json!(doubling).to_string()).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert!(reply.text.contains("larger than"), "{}", reply.text);
    assert_eq!(app.get("metadata").await.status, 200, "the server is still up");
    assert_eq!(admin.get("Patient/p").await.json()["meta"]["versionId"], "1");
}
