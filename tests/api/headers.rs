//! Conditional reads and content negotiation (http.html#cread, #mime-type, _format, _pretty).

use crate::harness::TestApp;
use serde_json::json;

crate::on_both_backends!(
    if_none_match_on_the_current_version_is_304,
    if_modified_since_is_304_when_unchanged,
    xml_is_406_until_it_exists_and_json_formats_are_served,
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

async fn xml_is_406_until_it_exists_and_json_formats_are_served(app: TestApp) {
    app.put("Patient/f", &json!({"resourceType": "Patient", "id": "f"}))
        .await;
    let xml = app
        .send(
            app.client
                .get(app.url("Patient/f"))
                .header("accept", "application/fhir+xml"),
        )
        .await;
    xml.assert_outcome(406, "not-supported");
    app.get("Patient/f?_format=xml")
        .await
        .assert_outcome(406, "not-supported");
    app.get("metadata?_format=application/fhir%2Bxml")
        .await
        .assert_outcome(406, "not-supported");
    let json_format = app.get("Patient/f?_format=json").await;
    assert_eq!(json_format.status, 200);
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
    assert_eq!(plain.status, 200);
    assert!(plain.header("content-type").unwrap().starts_with("application/json"));
    let browser = app
        .send(
            app.client
                .get(app.url("Patient/f"))
                .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
        )
        .await;
    assert_eq!(browser.status, 200);
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
