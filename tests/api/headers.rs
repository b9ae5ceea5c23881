//! Conditional reads and content negotiation (http.html#cread, #mime-type, _format, _pretty).

use crate::harness::TestApp;
use serde_json::json;

crate::on_both_backends!(
    if_none_match_on_the_current_version_is_304,
    if_modified_since_is_304_when_unchanged,
    xml_and_json_are_served_as_negotiated,
    resources_can_be_written_in_xml,
    pretty_printing_on_request,
);

async fn if_none_match_on_the_current_version_is_304(app: TestApp) {
    app.put("Patient/c", &json!({"resourceType": "Patient", "id": "c"}))
        .await;
    let hit = app
        .send(app.client.get(app.url("Patient/c")).header("if-none-match", "W/\"1\""))
        .await;
    assert_eq!(hit.status, 304);
    assert!(hit.text.is_empty());
    assert_eq!(hit.header("etag"), Some("W/\"1\""));
    app.put(
        "Patient/c",
        &json!({"resourceType": "Patient", "id": "c", "active": true}),
    )
    .await;
    let miss = app
        .send(app.client.get(app.url("Patient/c")).header("if-none-match", "W/\"1\""))
        .await;
    assert_eq!(miss.status, 200);
    assert_eq!(miss.json()["active"], true);
}

async fn if_modified_since_is_304_when_unchanged(app: TestApp) {
    let created = app
        .put("Patient/ims", &json!({"resourceType": "Patient", "id": "ims"}))
        .await;
    let last_modified = created.header("last-modified").unwrap().to_owned();
    let unchanged = app
        .send(
            app.client
                .get(app.url("Patient/ims"))
                .header("if-modified-since", last_modified.as_str()),
        )
        .await;
    assert_eq!(unchanged.status, 304);
    let long_ago = app
        .send(
            app.client
                .get(app.url("Patient/ims"))
                .header("if-modified-since", "Sat, 01 Jan 2000 00:00:00 GMT"),
        )
        .await;
    assert_eq!(long_ago.status, 200);
}

async fn xml_and_json_are_served_as_negotiated(app: TestApp) {
    app.put(
        "Patient/f",
        &json!({"resourceType": "Patient", "id": "f", "active": true}),
    )
    .await;
    let xml = app
        .send(
            app.client
                .get(app.url("Patient/f"))
                .header("accept", "application/fhir+xml"),
        )
        .await;
    assert_eq!(xml.status, 200);
    assert!(xml.header("content-type").unwrap().starts_with("application/fhir+xml"));
    assert!(
        xml.text
            .contains("<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"f\"/>"),
        "{}",
        xml.text
    );
    assert!(xml.text.contains("<active value=\"true\"/>"));
    assert_eq!(xml.header("etag"), Some("W/\"1\""));
    let by_parameter = app.get("Patient/f?_format=xml").await;
    assert!(by_parameter.text.contains("<Patient xmlns"));
    let metadata = app.get("metadata?_format=application/fhir%2Bxml").await;
    assert!(
        metadata.text.contains("<CapabilityStatement xmlns"),
        "{}",
        &metadata.text[..200.min(metadata.text.len())]
    );
    let history = app.get("Patient/f/_history?_format=xml").await;
    assert!(
        history.text.contains("<Bundle xmlns") && history.text.contains("<resource><Patient>"),
        "{}",
        history.text
    );
    // Errors come in the negotiated format too.
    let missing = app
        .send(
            app.client
                .get(app.url("Patient/nope"))
                .header("accept", "application/fhir+xml"),
        )
        .await;
    assert_eq!(missing.status, 404);
    assert!(missing.text.contains("<OperationOutcome xmlns") && missing.text.contains("<code value=\"not-found\"/>"));
    app.get("Patient/f?_format=turtle")
        .await
        .assert_outcome(406, "not-supported");
    let json_format = app.get("Patient/f?_format=json").await;
    assert!(
        json_format
            .header("content-type")
            .unwrap()
            .starts_with("application/fhir+json")
    );
    let plain = app
        .send(
            app.client
                .get(app.url("Patient/f"))
                .header("accept", "application/json"),
        )
        .await;
    assert!(plain.header("content-type").unwrap().starts_with("application/json"));
    let unservable = app
        .send(app.client.get(app.url("Patient/f")).header("accept", "text/plain"))
        .await;
    unservable.assert_outcome(406, "not-supported");
}

async fn pretty_printing_on_request(app: TestApp) {
    app.put(
        "Patient/p",
        &json!({"resourceType": "Patient", "id": "p", "active": true}),
    )
    .await;
    let compact = app.get("Patient/p").await;
    assert!(!compact.text.contains('\n'));
    let pretty = app.get("Patient/p?_pretty=true").await;
    assert!(
        pretty.text.contains("\n  \"resourceType\": \"Patient\""),
        "{}",
        pretty.text
    );
    assert_eq!(pretty.json(), compact.json());
}

async fn resources_can_be_written_in_xml(app: TestApp) {
    let xml = r#"<Patient xmlns="http://hl7.org/fhir"><id value="x1"/><active value="true"/>
        <name><family value="Chalmers"/><given value="Peter"/><given value="James"/></name>
        <birthDate value="1974-12-25"/></Patient>"#;
    let put = app
        .send(
            app.client
                .put(app.url("Patient/x1"))
                .header("content-type", "application/fhir+xml")
                .body(xml),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.text);
    let read = app.get("Patient/x1").await.json();
    assert_eq!(read["name"][0]["given"], json!(["Peter", "James"]));
    assert_eq!(read["active"], true);
    let bad = app
        .send(
            app.client
                .post(app.url("Patient"))
                .header("content-type", "application/fhir+xml")
                .body(r#"<Patient xmlns="http://hl7.org/fhir"><activ value="true"/></Patient>"#),
        )
        .await;
    let outcome = bad.assert_outcome(400, "structure");
    assert_eq!(outcome["issue"][0]["expression"][0], "Patient.activ");
    let malformed = app
        .send(
            app.client
                .post(app.url("Patient"))
                .header("content-type", "application/fhir+xml")
                .body("<Patient"),
        )
        .await;
    malformed.assert_outcome(400, "structure");
}
