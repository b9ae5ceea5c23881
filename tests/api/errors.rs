//! Bad input: a clear 4xx OperationOutcome, and nothing written.

use crate::harness::TestApp;
use serde_json::json;

crate::on_both_backends!(
    unknown_resource_type_is_404_not_supported,
    malformed_bodies_are_400_and_write_nothing,
    a_body_that_is_neither_json_nor_xml_is_415,
    unsupported_methods_and_routes_answer_with_an_operation_outcome,
    searching_an_unknown_type_is_404,
    an_invalid_resource_is_400_listing_every_problem_and_writes_nothing,
);
crate::on_both_backends!(with |c| c.max_body_bytes = 1024; a_body_over_the_limit_is_413);

async fn unknown_resource_type_is_404_not_supported(app: TestApp) {
    app.get("Patientt/1").await.assert_outcome(404, "not-supported");
    app.post("Foo", &json!({"resourceType": "Foo"}))
        .await
        .assert_outcome(404, "not-supported");
    app.get("DomainResource/_history")
        .await
        .assert_outcome(404, "not-supported");
}

async fn malformed_bodies_are_400_and_write_nothing(app: TestApp) {
    let send = |body: &'static str| {
        app.client
            .post(app.url("Patient"))
            .header("content-type", "application/fhir+json")
            .body(body)
    };
    app.send(send("{\"resourceType\": \"Patient\","))
        .await
        .assert_outcome(400, "structure");
    app.send(send("[1, 2]")).await.assert_outcome(400, "structure");
    app.send(send("")).await.assert_outcome(400, "required");
    let wrong_type = app.send(send(r#"{"resourceType": "Observation"}"#)).await;
    let outcome = wrong_type.assert_outcome(400, "invalid");
    assert_eq!(outcome["issue"][0]["expression"][0], "resourceType");
    app.send(send(r#"{"resourceType": "Patient", "id": "has space"}"#))
        .await
        .assert_outcome(400, "invalid");
    let control = app
        .send(send(r#"{"resourceType": "Patient", "name": [{"family": "a\u0000b"}]}"#))
        .await;
    let outcome = control.assert_outcome(400, "value");
    assert_eq!(outcome["issue"][0]["expression"][0], "Patient.name[0].family");
    let history = app.get("_history").await.json();
    assert!(
        history.get("entry").is_none(),
        "a rejected write must leave no version: {history}"
    );
}

async fn a_body_that_is_neither_json_nor_xml_is_415(app: TestApp) {
    let text = app
        .send(
            app.client
                .post(app.url("Patient"))
                .header("content-type", "text/plain")
                .body("{\"resourceType\":\"Patient\"}"),
        )
        .await;
    text.assert_outcome(415, "not-supported");
    let form = app
        .send(
            app.client
                .put(app.url("Patient/x"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("a=b"),
        )
        .await;
    form.assert_outcome(415, "not-supported");
    app.get("Patient/x").await.assert_outcome(404, "not-found");
}

async fn a_body_over_the_limit_is_413(app: TestApp) {
    let big = json!({"resourceType": "Patient", "id": "big", "text": {"status": "generated",
        "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>", "x".repeat(2000))}});
    app.put("Patient/big", &big).await.assert_outcome(413, "too-long");
    // Without a Content-Length (chunked transfer), the limit holds too.
    let status_line = chunked_put(&app, "Patient/big", &big.to_string()).await;
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    app.get("Patient/big").await.assert_outcome(404, "not-found");
    assert_eq!(
        app.put("Patient/small", &json!({"resourceType": "Patient", "id": "small"}))
            .await
            .status,
        201
    );
}

/// Sends a PUT with `Transfer-Encoding: chunked` over a raw connection; returns the status line.
/// The whole request goes out in one write, so the server has read all of it before it answers
/// (an early 413 would otherwise race the rest of the upload into a broken pipe).
async fn chunked_put(app: &TestApp, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse(&app.url(path)).unwrap();
    let mut stream = tokio::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap()))
        .await
        .unwrap();
    let mut request = format!(
        "PUT {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nTransfer-Encoding: chunked\r\n\r\n",
        url.path()
    )
    .into_bytes();
    for chunk in body.as_bytes().chunks(500) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&request).await.unwrap();
    let mut response = vec![0u8; 4096];
    let n = stream.read(&mut response).await.unwrap();
    String::from_utf8_lossy(&response[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn unsupported_methods_and_routes_answer_with_an_operation_outcome(app: TestApp) {
    // A path that is not valid percent-encoded UTF-8 is refused by the router itself; it must
    // still answer FHIR.
    app.get("Patient/%FF").await.assert_outcome(400, "invalid");
    app.send(app.client.post(app.url("Patient/1")))
        .await
        .assert_outcome(405, "not-supported");
    app.send(app.client.delete(app.url("metadata")))
        .await
        .assert_outcome(405, "not-supported");
    app.send(
        app.client
            .get(format!("{}/not-fhir", app.base.trim_end_matches("/fhir/R4"))),
    )
    .await
    .assert_outcome(404, "not-supported");
}

async fn searching_an_unknown_type_is_404(app: TestApp) {
    app.get("Nope").await.assert_outcome(404, "not-supported");
    app.get("Nope?name=x").await.assert_outcome(404, "not-supported");
}

async fn an_invalid_resource_is_400_listing_every_problem_and_writes_nothing(app: TestApp) {
    let invalid = json!({"resourceType": "Patient", "id": "v", "active": "yes", "gender": "fish",
        "name": [{"given": ["Ann", ""]}], "birthDate": "1974-13-01", "unknownThing": 1,
        "managingOrganization": {"reference": "not a reference"},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>x</script></div>"}});
    let reply = app.put("Patient/v", &invalid).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    let outcome = reply.json();
    let located: Vec<String> = outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["severity"], "error");
            assert!(i["diagnostics"].as_str().is_some_and(|d| !d.is_empty()));
            i["expression"][0].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    for expected in [
        "Patient.active",
        "Patient.gender",
        "Patient.name[0].given[1]",
        "Patient.birthDate",
        "Patient.unknownThing",
        "Patient.text.div",
    ] {
        assert!(
            located.iter().any(|l| l == expected),
            "no issue at {expected}: {located:?}"
        );
    }
    // A reference that is not `Type/id` is allowed by R4 (only recommended against): no error.
    assert!(!located.iter().any(|l| l == "Patient.managingOrganization.reference"));
    app.get("Patient/v").await.assert_outcome(404, "not-found");
}
