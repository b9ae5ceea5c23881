//! HTTP with the server under test: one request and its response kept whole (`Exchange`), for
//! asserts and variables to read; and a bearer token, given or obtained by SMART Backend Services
//! (client_credentials with a `private_key_jwt` assertion) through the `oauth2` crate.

use serde_json::{Value, json};
use std::time::Duration;

/// How long one request may take before the operation is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A request as sent and the response as received.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    pub method: String,
    pub url: String,
    pub request_headers: Vec<(String, String)>,
    pub request_body: Option<String>,
    /// The request body as a resource (JSON form), when it was one.
    pub request_resource: Option<Value>,
    pub status: u16,
    pub response_headers: Vec<(String, String)>,
    pub response_body: String,
    /// The response body as a resource (JSON form, from JSON or XML), when it was one.
    pub response_resource: Option<Value>,
}

impl Exchange {
    pub fn response_header(&self, name: &str) -> Option<&str> {
        find_header(&self.response_headers, name)
    }

    pub fn request_header(&self, name: &str) -> Option<&str> {
        find_header(&self.request_headers, name)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A resource from a body in the given content type (JSON unless it says XML).
pub fn parse_resource(body: &str, content_type: Option<&str>) -> Option<Value> {
    let body = body.trim_start();
    if body.is_empty() {
        return None;
    }
    if content_type.is_some_and(|c| c.contains("xml")) || body.starts_with('<') {
        return crate::xml::from_xml(body).ok();
    }
    serde_json::from_str::<Value>(body).ok().filter(Value::is_object)
}

/// The most of a response body the engine reads: a server under test must not be able to make
/// it hold gigabytes.
const MAX_BODY: usize = 64 * 1024 * 1024;

pub struct Client {
    http: reqwest::Client,
    token: Option<String>,
    /// `scheme://host:port` of the base: the only place the token is sent.
    origin: Option<String>,
}

impl Client {
    pub fn new(token: Option<String>, base: &str) -> Result<Client, String> {
        Ok(Client {
            http: http_client()?,
            token,
            origin: origin(base),
        })
    }

    /// Sends one request; `Err` only when no response came (connection, timeout).
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        mut headers: Vec<(String, String)>,
        body: Option<String>,
    ) -> Result<Exchange, String> {
        let method_value =
            reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| format!("'{method}' is not an HTTP method"))?;
        // Never to another origin: an absolute URL may come from what the server answered (a
        // paging link), and a hostile server could point it anywhere.
        if let Some(token) = &self.token
            && find_header(&headers, "authorization").is_none()
            && origin(url).is_some_and(|o| Some(&o) == self.origin.as_ref())
        {
            headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
        }
        let mut request = self.http.request(method_value, url);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        if let Some(body) = &body {
            request = request.body(body.clone());
        }
        let response = request.send().await.map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let response_headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let response_body = read_body(response).await?;
        let request_resource = body
            .as_deref()
            .and_then(|b| parse_resource(b, find_header(&headers, "content-type")));
        let response_resource = parse_resource(&response_body, find_header(&response_headers, "content-type"));
        Ok(Exchange {
            method: method.to_owned(),
            url: url.to_owned(),
            request_headers: redacted(headers),
            request_body: body,
            request_resource,
            status,
            response_headers,
            response_body,
            response_resource,
        })
    }
}

/// A response body up to `MAX_BODY`, as text.
async fn read_body(mut response: reqwest::Response) -> Result<String, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err("the response body is larger than 64 MiB".to_owned());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// `scheme://host:port` of a URL (the port made explicit).
fn origin(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    Some(format!(
        "{}://{}:{}",
        parsed.scheme(),
        parsed.host_str()?,
        parsed.port_or_known_default()?
    ))
}

/// Headers as kept for asserts and reports: a bearer token is never kept.
fn redacted(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .map(|(name, value)| {
            if name.eq_ignore_ascii_case("authorization") {
                (name, "Bearer (redacted)".to_owned())
            } else {
                (name, value)
            }
        })
        .collect()
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "no response within the time allowed".to_owned()
    } else if error.is_connect() {
        "could not connect to the server".to_owned()
    } else {
        format!("the exchange failed: {error}")
    }
}

/// HTTPS through rustls on ring with the platform's roots (as the server's own JWKS client);
/// redirects are not followed, so asserts see what the server answered.
fn http_client() -> Result<reqwest::Client, String> {
    // The same provider as the server's JWKS client (`auth::jwks_url`, which says why ring).
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))
}

/// How to obtain a token by SMART Backend Services.
pub struct BackendServices {
    pub token_url: String,
    pub client_id: String,
    /// The client's private key in PEM (P-384 EC signs ES384, RSA signs RS384).
    pub key_pem: String,
    /// The `kid` the server registered for the key (default: the key's own, as `fhir-server keys`
    /// names it).
    pub kid: Option<String>,
    pub scope: String,
}

/// A token from `token_url`: client_credentials, authenticated by a signed assertion.
pub async fn backend_services_token(config: &BackendServices) -> Result<String, String> {
    use oauth2::basic::BasicClient;
    use oauth2::{ClientId, Scope, TokenResponse, TokenUrl};
    let mut key = crate::auth::keys::SigningKey::from_pem_with(&config.key_pem, jsonwebtoken::Algorithm::RS384)?;
    if let Some(kid) = &config.kid {
        key.kid = kid.clone();
    }
    let now = chrono::Utc::now().timestamp();
    let assertion = key.sign(
        &json!({"iss": config.client_id, "sub": config.client_id, "aud": config.token_url,
                "exp": now + 240, "iat": now, "jti": uuid::Uuid::new_v4().to_string()}),
        "JWT",
    )?;
    let token_url = TokenUrl::new(config.token_url.clone()).map_err(|e| format!("--token-url: {e}"))?;
    let client = BasicClient::new(ClientId::new(config.client_id.clone())).set_token_uri(token_url);
    let http = http_client()?;
    let send = |request: oauth2::HttpRequest| {
        let http = http.clone();
        async move { oauth2_exchange(&http, request).await }
    };
    let mut exchange = client
        .exchange_client_credentials()
        .add_extra_param("client_assertion_type", crate::auth::issuer::JWT_BEARER)
        .add_extra_param("client_assertion", assertion);
    for scope in config.scope.split_whitespace() {
        exchange = exchange.add_scope(Scope::new(scope.to_owned()));
    }
    let token = exchange
        .request_async(&send)
        .await
        .map_err(|e| format!("the token request failed: {}", token_error(&e)))?;
    Ok(token.access_token().secret().clone())
}

/// The `oauth2` crate's HTTP hook, over reqwest.
async fn oauth2_exchange(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, std::io::Error> {
    let mut builder = http.request(request.method().clone(), request.uri().to_string());
    for (name, value) in request.headers() {
        builder = builder.header(name, value);
    }
    let response = builder
        .body(request.into_body())
        .send()
        .await
        .map_err(|e| std::io::Error::other(describe(&e)))?;
    let mut answer = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| std::io::Error::other(describe(&e)))?;
    answer.body(body.to_vec()).map_err(std::io::Error::other)
}

fn token_error<E: std::error::Error + 'static>(
    error: &oauth2::RequestTokenError<E, oauth2::basic::BasicErrorResponse>,
) -> String {
    match error {
        oauth2::RequestTokenError::ServerResponse(answer) => {
            let description = answer.error_description().map(|d| format!(": {d}")).unwrap_or_default();
            format!("{}{description}", answer.error())
        }
        other => other.to_string(),
    }
}
