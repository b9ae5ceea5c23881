//! The development commands: `fhir-server keys generate` writes a key pair, `fhir-server token`
//! signs a token with it, and a server trusting that JWK Set accepts the token (and only it).

use crate::harness::TestApp;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

crate::on_both_backends!(with super::with_cli_keys;
    a_generated_key_pair_signs_tokens_the_server_accepts,
);

/// A fresh key pair from `keys generate`, trusted as issuer `https://cli.example.test`.
fn with_cli_keys(config: &mut fhir_server::config::ServeConfig) {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-keys-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_fhir-server"))
        .args(["keys", "generate", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    config.auth_issuer = Some("https://cli.example.test".into());
    config.auth_jwks_file = Some(dir.join("jwks.json"));
}

fn cli_token(app: &TestApp, scope: &str, extra: &[&str]) -> String {
    let dir = app.config.auth_jwks_file.as_ref().unwrap().parent().unwrap().to_owned();
    let jwks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("jwks.json")).unwrap()).unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_fhir-server"))
        .arg("token")
        .arg("--key")
        .arg(dir.join("private-key.pem"))
        .args([
            "--kid",
            &kid,
            "--issuer",
            "https://cli.example.test",
            "--audience",
            &app.base,
            "--scope",
            scope,
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn a_generated_key_pair_signs_tokens_the_server_accepts(app: TestApp) {
    let dir = app.config.auth_jwks_file.as_ref().unwrap().parent().unwrap().to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("private-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the private key is its owner's only");
    }
    let admin = super::As {
        app: &app,
        token: cli_token(&app, "system/*.cruds", &[]),
    };
    let reply = admin
        .put(
            "Patient/p1",
            &serde_json::json!({"resourceType": "Patient", "id": "p1"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let patient = super::As {
        app: &app,
        token: cli_token(&app, "patient/Patient.rs", &["--patient", "p1", "--expires-in", "60"]),
    };
    assert_eq!(patient.get("Patient/p1").await.status, 200);
    patient.get("Patient/p2").await.assert_outcome(404, "not-found");
    let claims: serde_json::Value = jsonwebtoken::dangerous::insecure_decode_claims(&patient.token).unwrap();
    assert_eq!(claims["patient"], "p1");
    assert!(claims["exp"].as_i64().unwrap() <= super::now() + 61);
    // A token for another audience is refused.
    let elsewhere = Command::new(env!("CARGO_BIN_EXE_fhir-server"))
        .args(["token", "--key"])
        .arg(dir.join("private-key.pem"))
        .args([
            "--kid",
            "x",
            "--issuer",
            "https://cli.example.test",
            "--audience",
            "https://elsewhere",
            "--scope",
            "system/*.rs",
        ])
        .output()
        .unwrap();
    let token = String::from_utf8(elsewhere.stdout).unwrap();
    let refused = super::As {
        app: &app,
        token: token.trim().to_owned(),
    };
    assert_eq!(refused.get("Patient").await.status, 401);
}
