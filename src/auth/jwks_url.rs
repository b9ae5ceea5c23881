//! JWK Sets fetched from a URL: an external issuer's (`--auth-jwks-url`) and those of built-in
//! server clients registered with a `jwks_url`. Fetched at start, again when a token (or client
//! assertion) names a key not yet known — at most once per `MIN_INTERVAL`, so unknown `kid`s
//! cannot make the server hammer the identity provider — and every `REFRESH_INTERVAL`, so keys an
//! issuer withdrew stop being trusted. HTTPS by rustls (ring) with the system's roots.

use jsonwebtoken::jwk::JwkSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The least time between two fetches of one URL prompted by unknown keys.
pub const MIN_INTERVAL: Duration = Duration::from_secs(30);
/// How often every URL is fetched anyway.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(600);
/// The largest JWK Set accepted.
const MAX_BYTES: usize = 256 * 1024;

/// Where a JWK Set comes from, and when it was last fetched.
pub struct KeySource {
    pub url: String,
    last: Mutex<Option<Instant>>,
}

impl KeySource {
    pub fn new(url: impl Into<String>) -> KeySource {
        KeySource {
            url: url.into(),
            last: Mutex::new(None),
        }
    }

    /// Whether a fetch prompted by an unknown key may happen now; if so, it counts as made.
    pub fn may_fetch(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < MIN_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// The JWK Set at the URL.
    pub async fn fetch(&self, client: &reqwest::Client) -> Result<JwkSet, String> {
        let fail = |why: String| format!("fetching the JWK Set {}: {why}", self.url);
        let mut response = client
            .get(&self.url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(e.to_string()))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BYTES {
                return Err(fail(format!("larger than {MAX_BYTES} bytes")));
            }
        }
        serde_json::from_slice(&body).map_err(|e| fail(format!("not a JWK Set: {e}")))
    }
}

/// The HTTP client that fetches JWK Sets: HTTPS through rustls on ring with the platform's
/// roots, short timeouts, few redirects.
pub fn http_client() -> Result<reqwest::Client, String> {
    // One crypto provider for the process; installing it twice is harmless. ring rather than
    // aws-lc-rs (whose post-quantum key exchange rustls now prefers) keeps the build free of a
    // C toolchain dependency beyond `cc`; fetching public keys needs confidentiality less than
    // integrity, which classic TLS 1.3 gives.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        // A redirect is followed only to where a configured URL could point (HTTPS, or HTTP on
        // loopback): keys must never come over plain HTTP from elsewhere.
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 3 {
                attempt.error("more than 3 redirects")
            } else if may_fetch_from(attempt.url()) {
                attempt.follow()
            } else {
                attempt.error("a redirect away from HTTPS")
            }
        }))
        .build()
        .map_err(|e| format!("cannot build the HTTP client for JWK Sets: {e}"))
}

/// Whether keys may be fetched from `url`: HTTPS, or HTTP to this machine.
pub fn may_fetch_from(url: &reqwest::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => {
            let host = url.host_str().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_over_https_or_from_this_machine() {
        for ok in [
            "https://idp.example/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]/k",
        ] {
            assert!(may_fetch_from(&ok.parse().unwrap()), "{ok}");
        }
        for refused in [
            "http://idp.example/jwks",
            "http://10.0.0.1/jwks",
            "ftp://idp.example/jwks",
        ] {
            assert!(!may_fetch_from(&refused.parse().unwrap()), "{refused}");
        }
    }

    #[test]
    fn unknown_keys_prompt_a_fetch_at_most_once_per_interval() {
        let source = KeySource::new("https://idp.example/jwks");
        assert!(source.may_fetch());
        assert!(!source.may_fetch(), "within the interval");
        *source.last.lock().unwrap() = Some(Instant::now() - MIN_INTERVAL - Duration::from_secs(1));
        assert!(source.may_fetch());
    }
}
