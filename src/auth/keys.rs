//! Signing keys: the built-in authorization server's own (ES384, P-384), generated on first start
//! and kept as a PKCS#8 PEM file readable by its owner only, and published as a JWK Set; and any
//! PEM key for the development `token` command. The cryptography is the `p384` and
//! `jsonwebtoken` crates'; this module only loads, stores and describes keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p384::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;

/// A private key that signs tokens, with its public JWK (and `kid`, its RFC 7638 thumbprint).
pub struct SigningKey {
    pub kid: String,
    /// The public key as a JWK, with `kid`, `alg` and `use`.
    pub jwk: Value,
    pub algorithm: Algorithm,
    encoding: EncodingKey,
}

impl SigningKey {
    /// A new P-384 key, and its PKCS#8 PEM to keep.
    pub fn generate() -> Result<(SigningKey, String), String> {
        use p384::elliptic_curve::Generate;
        let secret = p384::SecretKey::try_generate().map_err(|e| format!("no randomness for a new key: {e}"))?;
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| format!("cannot encode the new key: {e}"))?
            .to_string();
        Ok((SigningKey::from_pem(&pem)?, pem))
    }

    /// A key from PEM: a P-384 EC key (PKCS#8 or SEC1) signs ES384; an RSA key (PKCS#8 or
    /// PKCS#1) signs `rsa_algorithm` (RS256 unless asked otherwise).
    pub fn from_pem_with(pem: &str, rsa_algorithm: Algorithm) -> Result<SigningKey, String> {
        if pem.contains("RSA PRIVATE KEY")
            || (!pem.contains("EC PRIVATE KEY") && p384::SecretKey::from_pkcs8_pem(pem).is_err())
        {
            let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())
                .map_err(|_| "the key is neither a P-384 EC key nor an RSA key in PEM".to_owned())?;
            let kid = hex(&Sha256::digest(pem.trim().as_bytes())[..8]);
            return Ok(SigningKey {
                jwk: json!({"kid": kid, "alg": format!("{rsa_algorithm:?}"), "use": "sig"}),
                kid,
                algorithm: rsa_algorithm,
                encoding,
            });
        }
        SigningKey::from_pem(pem)
    }

    /// A P-384 key from PEM (PKCS#8 `PRIVATE KEY`, or SEC1 `EC PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<SigningKey, String> {
        let secret = p384::SecretKey::from_pkcs8_pem(pem)
            .or_else(|_| p384::SecretKey::from_sec1_pem(pem))
            .map_err(|_| "not a P-384 private key in PEM (PKCS#8 or SEC1)".to_owned())?;
        let pkcs8 = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| format!("cannot encode the key: {e}"))?;
        let encoding =
            EncodingKey::from_ec_pem(pkcs8.as_bytes()).map_err(|e| format!("not a usable ES384 key: {e}"))?;
        let (mut jwk, kid) = public_jwk(&secret.public_key());
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!("ES384");
        jwk["use"] = json!("sig");
        Ok(SigningKey {
            kid,
            jwk,
            algorithm: Algorithm::ES384,
            encoding,
        })
    }

    /// The key in the PEM file at `path`, or a new one written there (readable by its owner only)
    /// when there is none yet.
    pub fn load_or_generate(path: &Path) -> Result<SigningKey, String> {
        match std::fs::read_to_string(path) {
            Ok(pem) => SigningKey::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (key, pem) = SigningKey::generate()?;
                write_private(path, &pem)?;
                tracing::info!(path = %path.display(), kid = %key.kid, "generated the token signing key");
                Ok(key)
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// `claims` as a signed JWT (`typ` `at+jwt` for access tokens, RFC 9068).
    pub fn sign(&self, claims: &Value, typ: &str) -> Result<String, String> {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| format!("cannot sign: {e}"))
    }

    /// The public key as a JWK Set.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }
}

/// Writes a new P-384 key pair into `dir`: `private-key.pem` (readable by its owner only) and
/// `jwks.json`. Returns the key's `kid`.
pub fn write_key_pair(dir: &Path) -> Result<String, String> {
    let (key, pem) = SigningKey::generate()?;
    let private = dir.join("private-key.pem");
    let public = dir.join("jwks.json");
    if public.exists() {
        return Err(format!("{} exists already", public.display()));
    }
    write_private(&private, &pem)?;
    let jwks = serde_json::to_string_pretty(&key.jwks()).expect("a JSON value serialises");
    std::fs::write(&public, jwks + "\n").map_err(|e| format!("{}: {e}", public.display()))?;
    Ok(key.kid)
}

/// An access token for development (`fhir-server token`).
pub struct DevToken {
    pub key: std::path::PathBuf,
    pub kid: String,
    pub issuer: String,
    pub audience: String,
    pub scope: String,
    pub patient: Option<String>,
    pub fhir_user: Option<String>,
    pub client_id: Option<String>,
    pub expires_in: u64,
    /// RS256 or RS384, for an RSA key.
    pub rsa_algorithm: String,
}

impl DevToken {
    /// The signed token.
    pub fn sign(&self) -> Result<String, String> {
        let pem = std::fs::read_to_string(&self.key).map_err(|e| format!("{}: {e}", self.key.display()))?;
        let rsa_algorithm = match self.rsa_algorithm.as_str() {
            "RS256" => Algorithm::RS256,
            "RS384" => Algorithm::RS384,
            other => return Err(format!("--alg {other}: RS256 or RS384")),
        };
        let mut key = SigningKey::from_pem_with(&pem, rsa_algorithm)?;
        key.kid = self.kid.clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let client = self.client_id.clone().unwrap_or_else(|| "fhir-server-cli".to_owned());
        let mut claims = json!({
            "iss": self.issuer, "aud": self.audience, "sub": client, "client_id": client,
            "scope": self.scope, "iat": now, "exp": now + self.expires_in,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(patient) = &self.patient {
            claims["patient"] = json!(patient);
        }
        if let Some(user) = &self.fhir_user {
            claims["fhirUser"] = json!(user);
        }
        key.sign(&claims, "at+jwt")
    }
}

/// The JWK of a P-384 public key and its RFC 7638 thumbprint.
fn public_jwk(public: &p384::PublicKey) -> (Value, String) {
    let point = public.to_sec1_bytes();
    // Uncompressed: 0x04, then x and y of 48 bytes each.
    let (x, y) = (
        URL_SAFE_NO_PAD.encode(&point[1..49]),
        URL_SAFE_NO_PAD.encode(&point[49..97]),
    );
    let canonical = format!(r#"{{"crv":"P-384","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    (json!({"kty": "EC", "crv": "P-384", "x": x, "y": y}), thumbprint)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a private key readable by its owner only; an existing file is left alone.
pub fn write_private(path: &Path, pem: &str) -> Result<(), String> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_what_its_jwk_verifies() {
        let (key, pem) = SigningKey::generate().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let again = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(again.kid, key.kid, "the kid is the key's thumbprint");
        let token = key
            .sign(&json!({"sub": "x", "exp": 4_000_000_000u64}), "at+jwt")
            .unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk.clone()).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES384);
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        let decoded = jsonwebtoken::decode::<Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(decoded.claims["sub"], "x");
        assert_eq!(decoded.header.kid.as_deref(), Some(key.kid.as_str()));
        let (other, _) = SigningKey::generate().unwrap();
        let forged = other
            .sign(&json!({"sub": "x", "exp": 4_000_000_000u64}), "at+jwt")
            .unwrap();
        assert!(jsonwebtoken::decode::<Value>(&forged, &decoding, &validation).is_err());
    }

    #[test]
    fn the_thumbprint_follows_rfc_7638() {
        // The fixture identity provider's key, whose thumbprint was computed independently (from
        // its JWK, members sorted, no whitespace, SHA-256, base64url).
        let key = SigningKey::from_pem(include_str!("../../tests/fixtures/auth/idp-ec384.pem")).unwrap();
        assert_eq!(key.kid, "bFoSGs1q3tifZRMon159BqdHGNZjXU8iLd_DovLMFpU");
        let published: Value = serde_json::from_str(include_str!("../../tests/fixtures/auth/idp-jwks.json")).unwrap();
        assert_eq!(key.jwk["x"], published["keys"][1]["x"]);
        assert_eq!(key.jwk["y"], published["keys"][1]["y"]);
        let truncated =
            "-----BEGIN PRIVATE KEY-----\nMIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDBxIzN8WXodR8OU2J/a\n";
        assert!(SigningKey::from_pem(truncated).is_err());
    }
}
