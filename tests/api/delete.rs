//! delete as a tombstone version, 410 on read, revival by update (http.html#delete).

use crate::harness::TestApp;
use serde_json::json;

crate::on_both_backends!(
    read_of_a_deleted_resource_is_410_with_the_etag_of_the_delete,
    delete_is_idempotent,
    update_after_delete_revives_with_the_next_version,
);

async fn read_of_a_deleted_resource_is_410_with_the_etag_of_the_delete(app: TestApp) {
    app.put("Patient/d", &json!({"resourceType": "Patient", "id": "d"}))
        .await;
    let deleted = app.delete("Patient/d").await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(deleted.header("etag"), Some("W/\"2\""));
    let read = app.get("Patient/d").await;
    read.assert_outcome(410, "deleted");
    assert_eq!(read.header("etag"), Some("W/\"2\""));
    app.get("Patient/d/_history/2").await.assert_outcome(410, "deleted");
    assert_eq!(
        app.get("Patient/d/_history/1").await.status,
        200,
        "earlier versions stay readable"
    );
}

async fn delete_is_idempotent(app: TestApp) {
    assert_eq!(app.delete("Patient/never").await.status, 204);
    app.get("Patient/never").await.assert_outcome(404, "not-found");
    app.put("Patient/twice", &json!({"resourceType": "Patient", "id": "twice"}))
        .await;
    assert_eq!(app.delete("Patient/twice").await.status, 204);
    let again = app.delete("Patient/twice").await;
    assert_eq!(again.status, 204);
    assert_eq!(again.header("etag"), None, "a second delete writes no version");
    let history = app.get("Patient/twice/_history").await.json();
    assert_eq!(history["total"], 2);
    let with_outcome = app
        .send(
            app.client
                .delete(app.url("Patient/twice"))
                .header("prefer", "return=OperationOutcome"),
        )
        .await;
    assert_eq!(with_outcome.status, 200);
    assert_eq!(with_outcome.json()["resourceType"], "OperationOutcome");
}

async fn update_after_delete_revives_with_the_next_version(app: TestApp) {
    app.put("Patient/r", &json!({"resourceType": "Patient", "id": "r"}))
        .await;
    app.delete("Patient/r").await;
    let revived = app
        .put(
            "Patient/r",
            &json!({"resourceType": "Patient", "id": "r", "active": true}),
        )
        .await;
    assert_eq!(revived.status, 201, "{}", revived.text);
    assert_eq!(revived.header("etag"), Some("W/\"3\""));
    let read = app.get("Patient/r").await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["meta"]["versionId"], "3");
}
