//! A docker-style token server (the `realm` of a registry in [`RegistryMode::Token`]) on a free
//! loopback port, speaking both halves of distribution's token spec:
//!
//! * `GET /token?service=..&scope=repository:<repo>:pull[,push]` with optional HTTP Basic
//!   credentials ([`Grant::Basic`] / [`Grant::Anonymous`]) → `{"token", "access_token",
//!   "expires_in"}` (plus `refresh_token` when `offline_token=true` was asked with valid
//!   credentials). Wrong credentials are refused with `401`; anonymous callers get a token that
//!   grants nothing, which the registry then answers with `401 insufficient_scope`.
//! * `POST /token` with an `application/x-www-form-urlencoded` body, the OAuth2 form:
//!   `grant_type=refresh_token&refresh_token=<r>` ([`Grant::RefreshToken`]) or
//!   `grant_type=password&username=<u>&password=<p>` ([`Grant::Password`]), each with `service`
//!   and `scope` → `{"access_token", "refresh_token", "expires_in", "scope"}`. A wrong refresh
//!   token or password is refused with `400 {"error": "invalid_grant"}` (RFC 6749 §5.2).
//!
//! Tokens are ES256 JWTs signed with a P-256 key generated per server; their header carries
//! `x5c` = [the signing certificate], which is also the registry's `rootcertbundle`
//! ([`TokenServer::root_cert`]). Claims: `iss`, `sub`, `aud` (= the service), `exp`, `nbf`,
//! `iat`, `jti` and `access`. Every request is logged ([`TokenServer::requests`],
//! [`TokenServer::count`]) so tests can tell which flow a client used.
//!
//! Like [`crate::proxy::Proxy`] it runs on its own tokio runtime thread, answers one request per
//! connection (`Connection: close`) and stops when dropped.
//!
//! [`RegistryMode::Token`]: crate::registry::RegistryMode::Token

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::tls;

/// The `service` a token registry names in its challenge and expects as the tokens' `aud`.
pub const SERVICE: &str = "crius-e2e-registry";
/// The `iss` of every token and the registry's `issuer`.
pub const ISSUER: &str = "crius-e2e-token-server";
/// `expires_in` of every token, in seconds.
pub const EXPIRES_IN: u64 = 300;

/// Who may have tokens: one user with a password, and one OAuth2 refresh token (a docker
/// `identitytoken`) standing for that user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAuth {
    pub user: String,
    pub password: String,
    pub refresh_token: String,
}

impl TokenAuth {
    pub fn new(user: &str, password: &str, refresh_token: &str) -> TokenAuth {
        TokenAuth {
            user: user.to_string(),
            password: password.to_string(),
            refresh_token: refresh_token.to_string(),
        }
    }
}

/// How a token request authenticated itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// `GET` with `Authorization: Basic`.
    Basic,
    /// `GET` without credentials.
    Anonymous,
    /// `POST grant_type=refresh_token`.
    RefreshToken,
    /// `POST grant_type=password`.
    Password,
    /// Anything else (another method, path or `grant_type`).
    Other,
}

/// One request as the token server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub method: String,
    pub path: String,
    pub grant: Grant,
    /// The user the credentials named (Basic, password grant).
    pub user: Option<String>,
    pub service: Option<String>,
    /// `client_id`, when sent.
    pub client_id: Option<String>,
    /// Every requested scope (`repository:<repo>:<actions>`).
    pub scopes: Vec<String>,
    /// What the server answered.
    pub status: u16,
}

impl TokenRequest {
    /// Whether a token was handed out.
    pub fn granted(&self) -> bool {
        self.status == 200
    }
}

/// One entry of a token's `access` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Access {
    /// `repository:<name>:<a>,<b>` → Access; `None` for a malformed scope.
    pub fn parse_scope(scope: &str) -> Option<Access> {
        // `<type>:<name>:<actions>`; split from both ends so the name is everything between.
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        Some(Access {
            kind: kind.to_string(),
            name: name.to_string(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    /// Access to pull `repository`.
    pub fn pull(repository: &str) -> Access {
        Access {
            kind: "repository".into(),
            name: repository.to_string(),
            actions: vec!["pull".into()],
        }
    }

    fn to_json(&self) -> Value {
        json!({"type": self.kind, "name": self.name, "actions": self.actions})
    }
}

struct Signer {
    key: EcdsaKeyPair,
    /// `x5c` header entry: standard base64 of the certificate's DER.
    x5c: String,
    rng: SystemRandom,
}

struct Shared {
    auth: TokenAuth,
    signer: Signer,
    log: Mutex<Vec<TokenRequest>>,
}

impl Shared {
    /// A signed JWT for `subject` with `access`, valid for `lifetime` from now.
    fn mint(&self, subject: &str, access: &[Access], lifetime: Duration) -> Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [self.signer.x5c]});
        let claims = json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + lifetime.as_secs(),
            "nbf": now.saturating_sub(1),
            "iat": now,
            "jti": hex::encode(rand::random::<[u8; 12]>()),
            "access": access.iter().map(Access::to_json).collect::<Vec<_>>(),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?)
        );
        let signature = self
            .signer
            .key
            .sign(&self.signer.rng, signing_input.as_bytes())
            .map_err(|_| anyhow::anyhow!("ES256 signing failed"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    fn record(&self, request: TokenRequest) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request);
    }
}

/// A running token server.
pub struct TokenServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    root_cert: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
    // Last field: removed after the runtime is gone.
    dir: TempDir,
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer")
            .field("addr", &self.addr)
            .field("user", &self.shared.auth.user)
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl TokenServer {
    /// Generates a signing key and certificate and starts serving on a free loopback port.
    pub fn start(auth: TokenAuth) -> Result<TokenServer> {
        let dir = tempfile::Builder::new()
            .prefix("crius-e2e-token-")
            .tempdir()
            .context("creating the token server's temporary directory")?;
        let files =
            tls::generate_signing_cert(dir.path()).context("generating the token signing key")?;
        let key_pem = std::fs::read_to_string(&files.key)
            .with_context(|| format!("reading {}", files.key.display()))?;
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &tls::pem_to_der(&key_pem)?,
        )
        .map_err(|e| anyhow::anyhow!("loading {}: {e}", files.key.display()))?;
        let cert_pem = std::fs::read_to_string(&files.cert)
            .with_context(|| format!("reading {}", files.cert.display()))?;
        let x5c = STANDARD.encode(tls::pem_to_der(&cert_pem)?);

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("crius-e2e-token")
            .enable_all()
            .build()
            .context("building the token server runtime")?;
        let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .context("binding the token server port")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            auth,
            signer: Signer {
                key,
                x5c,
                rng: SystemRandom::new(),
            },
            log: Mutex::new(Vec::new()),
        });
        let accept_shared = shared.clone();
        runtime.spawn(async move {
            let Ok(listener) = TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((stream, _)) = listener.accept().await {
                let shared = accept_shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, shared).await;
                });
            }
        });
        Ok(TokenServer {
            addr,
            shared,
            root_cert: files.cert,
            runtime: Some(runtime),
            dir,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>/token`: the registry's `realm`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    pub fn service(&self) -> &'static str {
        SERVICE
    }

    pub fn issuer(&self) -> &'static str {
        ISSUER
    }

    pub fn auth(&self) -> &TokenAuth {
        &self.shared.auth
    }

    /// The PEM certificate of the signing key: the registry's `rootcertbundle`.
    pub fn root_cert(&self) -> &Path {
        &self.root_cert
    }

    /// A token for `subject` granting `access`, valid for [`EXPIRES_IN`] seconds; minted
    /// directly, without a request (and so not logged).
    pub fn mint(&self, subject: &str, access: &[Access]) -> Result<String> {
        self.shared
            .mint(subject, access, Duration::from_secs(EXPIRES_IN))
    }

    /// As [`TokenServer::mint`], with its own lifetime.
    pub fn mint_for(&self, subject: &str, access: &[Access], lifetime: Duration) -> Result<String> {
        self.shared.mint(subject, access, lifetime)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many requests used `grant` (granted or refused).
    pub fn count(&self, grant: Grant) -> usize {
        self.requests().iter().filter(|r| r.grant == grant).count()
    }

    /// How many requests used `grant` and got a token.
    pub fn granted(&self, grant: Grant) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.grant == grant && r.granted())
            .count()
    }

    /// Forgets the logged requests.
    pub fn clear_requests(&self) {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- token server {} requests ---\n{:#?}",
                self.addr,
                self.requests()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// The parts of an HTTP/1.1 request the token server looks at.
struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    authorization: Option<String>,
    body: Vec<u8>,
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 64 * 1024;

async fn read_request(stream: &mut TcpStream) -> Result<Request> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            bail!("request head too long");
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed mid-request");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut body = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut content_length = 0usize;
    let mut authorization = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().context("bad Content-Length")?;
        } else if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.to_string());
        }
    }
    if content_length > MAX_BODY {
        bail!("request body too long");
    }
    while body.len() < content_length {
        let mut chunk = vec![0u8; content_length - body.len()];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed mid-body");
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(content_length);
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Ok(Request {
        method,
        path: path.to_string(),
        query: parse_form(query.as_bytes()),
        authorization,
        body,
    })
}

/// `application/x-www-form-urlencoded` pairs (also the query string syntax).
fn parse_form(input: &[u8]) -> Vec<(String, String)> {
    let mut url = reqwest::Url::parse("http://127.0.0.1/").expect("static URL");
    url.set_query(Some(&String::from_utf8_lossy(input)));
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `scope` may be repeated (GET, docker's client) or hold several space-separated scopes
/// (OAuth2 POST).
fn scopes(pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' '))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `Basic base64(user:password)` → `(user, password)`.
fn basic_credentials(authorization: &str) -> Option<(String, String)> {
    let (scheme, encoded) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The access granted for `requested` scopes: pull and push on repositories, nothing else.
fn grant(requested: &[String]) -> Vec<Access> {
    requested
        .iter()
        .filter_map(|s| Access::parse_scope(s))
        .filter(|a| a.kind == "repository")
        .map(|mut a| {
            a.actions
                .retain(|action| action == "pull" || action == "push");
            a
        })
        .collect()
}

struct Response {
    status: u16,
    body: Value,
}

impl Response {
    fn error(status: u16, error: &str, description: &str) -> Response {
        Response {
            status,
            body: json!({"error": error, "error_description": description}),
        }
    }
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>) -> Result<()> {
    let request = read_request(&mut stream).await?;
    let (logged, response) = answer(&request, &shared);
    shared.record(TokenRequest {
        status: response.status,
        ..logged
    });
    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    let body = serde_json::to_vec(&response.body)?;
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\nCache-Control: no-store\r\n",
        response.status,
        body.len()
    );
    if response.status == 401 {
        head.push_str("WWW-Authenticate: Basic realm=\"crius-e2e-token\"\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await?;
    Ok(())
}

fn answer(request: &Request, shared: &Shared) -> (TokenRequest, Response) {
    let mut logged = TokenRequest {
        method: request.method.clone(),
        path: request.path.clone(),
        grant: Grant::Other,
        user: None,
        service: None,
        client_id: None,
        scopes: Vec::new(),
        status: 0,
    };
    if request.path != "/token" {
        return (logged, Response::error(404, "not_found", "unknown path"));
    }
    let auth = &shared.auth;
    let issue = |subject: &str, access: &[Access], refresh: bool| -> Response {
        match shared.mint(subject, access, Duration::from_secs(EXPIRES_IN)) {
            Ok(token) => {
                let mut body = json!({
                    "token": token,
                    "access_token": token,
                    "expires_in": EXPIRES_IN,
                });
                if refresh {
                    body["refresh_token"] = Value::from(auth.refresh_token.clone());
                }
                Response { status: 200, body }
            }
            Err(e) => Response::error(500, "server_error", &e.to_string()),
        }
    };
    match request.method.as_str() {
        "GET" => {
            let query = &request.query;
            logged.service = first(query, "service").map(str::to_string);
            logged.client_id = first(query, "client_id").map(str::to_string);
            logged.scopes = scopes(query);
            let Some(authorization) = &request.authorization else {
                logged.grant = Grant::Anonymous;
                return (logged, issue("", &[], false));
            };
            logged.grant = Grant::Basic;
            let Some((user, password)) = basic_credentials(authorization) else {
                return (
                    logged,
                    Response::error(401, "unauthorized", "unsupported Authorization header"),
                );
            };
            logged.user = Some(user.clone());
            if user != auth.user || password != auth.password {
                return (
                    logged,
                    Response::error(401, "unauthorized", "wrong username or password"),
                );
            }
            let offline = first(query, "offline_token") == Some("true");
            let access = grant(&logged.scopes);
            (logged, issue(&user, &access, offline))
        }
        "POST" => {
            let form = parse_form(&request.body);
            logged.service = first(&form, "service").map(str::to_string);
            logged.client_id = first(&form, "client_id").map(str::to_string);
            logged.scopes = scopes(&form);
            let access = grant(&logged.scopes);
            match first(&form, "grant_type") {
                Some("refresh_token") => {
                    logged.grant = Grant::RefreshToken;
                    if first(&form, "refresh_token") != Some(auth.refresh_token.as_str()) {
                        return (
                            logged,
                            Response::error(400, "invalid_grant", "unknown refresh token"),
                        );
                    }
                    (logged, issue(&auth.user, &access, true))
                }
                Some("password") => {
                    logged.grant = Grant::Password;
                    let user = first(&form, "username").unwrap_or_default().to_string();
                    logged.user = Some(user.clone());
                    if user != auth.user || first(&form, "password") != Some(&auth.password) {
                        return (
                            logged,
                            Response::error(400, "invalid_grant", "wrong username or password"),
                        );
                    }
                    (logged, issue(&user, &access, true))
                }
                _ => (
                    logged,
                    Response::error(400, "unsupported_grant_type", "unsupported grant_type"),
                ),
            }
        }
        _ => (
            logged,
            Response::error(405, "invalid_request", "GET or POST only"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_grant_only_pull_and_push() {
        let requested = vec![
            "repository:e2e/private:pull,push,delete".to_string(),
            "registry:catalog:*".to_string(),
            "bogus".to_string(),
        ];
        assert_eq!(
            grant(&requested),
            [Access {
                kind: "repository".into(),
                name: "e2e/private".into(),
                actions: vec!["pull".into(), "push".into()],
            }]
        );
        let pairs = parse_form(b"scope=repository%3Aa%3Apull+repository%3Ab%3Apush&scope=x");
        assert_eq!(
            scopes(&pairs),
            ["repository:a:pull", "repository:b:push", "x"]
        );
        assert_eq!(
            basic_credentials(&format!("Basic {}", STANDARD.encode("u:p:q"))),
            Some(("u".into(), "p:q".into()))
        );
        assert_eq!(basic_credentials("Bearer x"), None);
    }
}
