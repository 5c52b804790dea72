//! Registry credentials: docker/podman/containerd auth files (`config.json`, `auth.json`), the
//! CRI `AuthConfig`, and turning either into oci-client's `RegistryAuth`, including the OAuth2
//! refresh-token exchange that docker's `identitytoken` needs and oci-client does not do.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

/// Docker Hub's canonical name, as `ImageRef` normalises it.
const DOCKER_HUB: &str = "docker.io";
/// Other names auth files use for Docker Hub (docker login writes `https://index.docker.io/v1/`).
const DOCKER_HUB_ALIASES: [&str; 2] = ["index.docker.io", "registry-1.docker.io"];
/// Sent as `client_id` in token requests; docker's token spec requires one for refresh tokens.
const CLIENT_ID: &str = "crius";

/// Standard alphabet; padding optional because some tools write `auth` unpadded.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How to authenticate to a registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// docker `identitytoken`: an OAuth2 refresh token
    IdentityToken {
        username: String,
        token: String,
    },
    /// docker `registrytoken`: a bearer token sent as is
    RegistryToken(String),
}

impl fmt::Debug for Credentials {
    // Hand-written so secrets never reach logs; usernames are not secret and help debugging.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const REDACTED: &str = "<redacted>";
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &REDACTED)
                .finish(),
            Credentials::IdentityToken { username, .. } => f
                .debug_struct("IdentityToken")
                .field("username", username)
                .field("token", &REDACTED)
                .finish(),
            Credentials::RegistryToken(_) => {
                f.debug_tuple("RegistryToken").field(&REDACTED).finish()
            }
        }
    }
}

/// Errors never quote credential material, only where it came from.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read auth file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid auth file {origin}: {reason}")]
    Json { origin: String, reason: String },
    #[error("{origin}: entry {key:?}: \"auth\" is not valid base64 ({reason})")]
    Base64 {
        origin: String,
        key: String,
        reason: String,
    },
    #[error("{origin}: entry {key:?}: decoded \"auth\" {reason}")]
    MalformedAuth {
        origin: String,
        key: String,
        reason: &'static str,
    },
    #[error("request to {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("cannot exchange identity token with {url}: {reason}")]
    Challenge { url: String, reason: String },
    #[error("token server {url} answered HTTP {status}{detail}")]
    TokenStatus {
        url: String,
        status: u16,
        /// The server's own explanation (`: invalid_grant`), or empty.
        detail: String,
    },
    #[error("token server {url} answered without \"access_token\" or \"token\"")]
    TokenMissing { url: String },
}

/// Credentials read from one auth file, keyed by normalised `host[/path]`.
#[derive(Debug, Clone, Default)]
pub struct AuthFile {
    origin: String,
    entries: HashMap<String, Credentials>,
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    auths: HashMap<String, RawEntry>,
    // Helpers run external programs; not supported, but worth a note when a lookup misses.
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: Option<HashMap<String, String>>,
}

// `Option` so that explicit JSON nulls are accepted like missing fields.
#[derive(Deserialize)]
struct RawEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

impl AuthFile {
    /// A missing file is an empty AuthFile (not an error); unreadable/invalid → error naming the path.
    pub fn load(path: &Path) -> Result<AuthFile, AuthError> {
        match std::fs::read_to_string(path) {
            Ok(json) => AuthFile::from_json(&json, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile {
                origin: path.display().to_string(),
                entries: HashMap::new(),
            }),
            Err(source) => Err(AuthError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses auth-file JSON; `origin` (usually the path) is used in error messages.
    pub fn from_json(json: &str, origin: &str) -> Result<AuthFile, AuthError> {
        let raw: RawFile = serde_json::from_str(json).map_err(|e| AuthError::Json {
            origin: origin.to_owned(),
            reason: json_error_reason(&e),
        })?;
        if raw.creds_store.is_some() || raw.cred_helpers.as_ref().is_some_and(|h| !h.is_empty()) {
            tracing::debug!(
                origin,
                "auth file names credential helpers; they are not used"
            );
        }

        // Several raw keys may normalise to one (e.g. "docker.io" and
        // "https://index.docker.io/v1/"); a bare key wins over a URL, as in containers/image,
        // and ties go to the smaller raw key so the result does not depend on map order.
        let mut chosen: HashMap<String, (bool, String, Credentials)> = HashMap::new();
        for (raw_key, entry) in raw.auths {
            let Some(creds) = entry_credentials(&entry, origin, &raw_key)? else {
                // `{}` entries are what docker writes when a credential helper holds the secret.
                continue;
            };
            let (is_url, key) = normalize_key(&raw_key);
            let better = match chosen.get(&key) {
                None => true,
                Some((other_is_url, other_raw, _)) => {
                    (is_url, raw_key.as_str()) < (*other_is_url, other_raw.as_str())
                }
            };
            if better {
                chosen.insert(key, (is_url, raw_key, creds));
            }
        }
        Ok(AuthFile {
            origin: origin.to_owned(),
            entries: chosen
                .into_iter()
                .map(|(key, (_, _, creds))| (key, creds))
                .collect(),
        })
    }

    /// Credentials for `registry/repository`: the entry with the longest matching key, matching
    /// whole path components (`host/ns` covers `host/ns/app`, not `host/nsx`); Anonymous if none.
    pub fn lookup(&self, registry: &str, repository: &str) -> Credentials {
        let mut candidate = normalize_host(registry);
        for component in repository.split('/').filter(|c| !c.is_empty()) {
            candidate.push('/');
            candidate.push_str(component);
        }
        loop {
            if let Some(creds) = self.entries.get(&candidate) {
                tracing::debug!(origin = %self.origin, key = %candidate, "using credentials from auth file");
                return creds.clone();
            }
            match candidate.rfind('/') {
                Some(i) => candidate.truncate(i),
                None => return Credentials::Anonymous,
            }
        }
    }
}

/// serde_json's data errors can quote values from the file, which may be secrets; keep only
/// the position for those.
fn json_error_reason(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Data => format!(
            "unexpected JSON structure at line {} column {}",
            e.line(),
            e.column()
        ),
        _ => e.to_string(),
    }
}

/// Docker's meaning of an entry: `registrytoken` wins, then `identitytoken` (with the username
/// from `auth`/`username`), then `auth`, then `username`+`password`. `None` for an empty entry.
fn entry_credentials(
    entry: &RawEntry,
    origin: &str,
    key: &str,
) -> Result<Option<Credentials>, AuthError> {
    let non_empty = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    // Decoded even when a token wins, so a corrupt entry is reported rather than hidden.
    let basic = match non_empty(&entry.auth) {
        Some(auth) => Some(decode_auth(&auth, origin, key)?),
        None => non_empty(&entry.username).map(|u| (u, entry.password.clone().unwrap_or_default())),
    };
    if let Some(token) = non_empty(&entry.registrytoken) {
        return Ok(Some(Credentials::RegistryToken(token)));
    }
    if let Some(token) = non_empty(&entry.identitytoken) {
        let username = basic.map(|(u, _)| u).unwrap_or_default();
        return Ok(Some(Credentials::IdentityToken { username, token }));
    }
    Ok(basic.map(|(username, password)| Credentials::Basic { username, password }))
}

/// Decodes docker's `auth` field: base64 of `username:password`.
fn decode_auth(auth: &str, origin: &str, key: &str) -> Result<(String, String), AuthError> {
    let bytes = BASE64.decode(auth.trim()).map_err(|e| AuthError::Base64 {
        origin: origin.to_owned(),
        key: key.to_owned(),
        reason: base64_reason(&e),
    })?;
    let malformed = |reason| AuthError::MalformedAuth {
        origin: origin.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let text = String::from_utf8(bytes).map_err(|_| malformed("is not UTF-8"))?;
    let Some((username, password)) = text.split_once(':') else {
        return Err(malformed("has no ':' between username and password"));
    };
    if username.is_empty() {
        return Err(malformed("has an empty username"));
    }
    // Docker trims NULs that some credential writers leave at the end of the password.
    Ok((username.to_owned(), password.trim_matches('\0').to_owned()))
}

/// `DecodeError`'s own message quotes the offending character; report only its position.
fn base64_reason(e: &base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(offset, _) => {
            format!("invalid character at offset {offset}")
        }
        base64::DecodeError::InvalidLength(len) => format!("invalid length {len}"),
        base64::DecodeError::InvalidLastSymbol(offset, _) => {
            format!("invalid last character at offset {offset}")
        }
        base64::DecodeError::InvalidPadding => "invalid padding".to_owned(),
    }
}

/// Returns `(was_url, host[/path])`. URL keys keep only their host (their path is an API
/// version like `/v1/`, not a namespace); bare keys keep their path as a repository prefix.
fn normalize_key(raw: &str) -> (bool, String) {
    let key = raw.trim();
    let lower = key.to_ascii_lowercase();
    let stripped = ["https://", "http://"]
        .iter()
        .find_map(|scheme| lower.starts_with(scheme).then(|| &key[scheme.len()..]));
    let (is_url, rest) = match stripped {
        Some(rest) => (true, rest.split('/').next().unwrap_or_default()),
        None => (false, key),
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut out = normalize_host(host);
    for component in path.split('/').filter(|c| !c.is_empty()) {
        out.push('/');
        out.push_str(component);
    }
    (is_url, out)
}

/// Host names are case-insensitive, and Docker Hub goes by several names.
fn normalize_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    if DOCKER_HUB_ALIASES.contains(&host.as_str()) {
        DOCKER_HUB.to_owned()
    } else {
        host
    }
}

/// The CRI AuthConfig fields (plain strings; the lead maps the generated proto type into this) → Credentials.
pub struct CriAuth<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub auth: &'a str,
    pub server_address: &'a str,
    pub identity_token: &'a str,
    pub registry_token: &'a str,
}

impl fmt::Debug for CriAuth<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CriAuth")
            .field("username", &self.username)
            .field("server_address", &self.server_address)
            .finish_non_exhaustive()
    }
}

/// Precedence as cri-o/containerd: username+password; else `auth` (base64 user:pass); else
/// identity_token; else registry_token; else Anonymous. server_address is ignored for the choice.
pub fn from_cri(a: &CriAuth) -> Result<Credentials, AuthError> {
    if !a.username.is_empty() {
        return Ok(Credentials::Basic {
            username: a.username.to_owned(),
            password: a.password.to_owned(),
        });
    }
    if !a.auth.is_empty() {
        let key = if a.server_address.is_empty() {
            "auth"
        } else {
            a.server_address
        };
        let (username, password) = decode_auth(a.auth, "CRI AuthConfig", key)?;
        return Ok(Credentials::Basic { username, password });
    }
    if !a.identity_token.is_empty() {
        return Ok(Credentials::IdentityToken {
            username: String::new(),
            token: a.identity_token.to_owned(),
        });
    }
    if !a.registry_token.is_empty() {
        return Ok(Credentials::RegistryToken(a.registry_token.to_owned()));
    }
    Ok(Credentials::Anonymous)
}

/// Turns credentials into what oci-client sends. An identity token is exchanged for a bearer
/// token first: ping `<base>/v2/`, follow the `Bearer realm=..,service=..` challenge and POST a
/// refresh-token grant to the realm (docker distribution's OAuth2 token spec).
/// `registry_base_url` is e.g. "https://host:port".
pub async fn resolve(
    creds: &Credentials,
    http: &reqwest::Client,
    registry_base_url: &str,
    repository: &str,
) -> Result<RegistryAuth, AuthError> {
    match creds {
        Credentials::Anonymous => Ok(RegistryAuth::Anonymous),
        Credentials::Basic { username, password } => {
            Ok(RegistryAuth::Basic(username.clone(), password.clone()))
        }
        Credentials::RegistryToken(token) => Ok(RegistryAuth::Bearer(token.clone())),
        Credentials::IdentityToken { token, .. } => {
            exchange_identity_token(http, registry_base_url, repository, token).await
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

async fn exchange_identity_token(
    http: &reqwest::Client,
    registry_base_url: &str,
    repository: &str,
    refresh_token: &str,
) -> Result<RegistryAuth, AuthError> {
    let ping_url = format!("{}/v2/", registry_base_url.trim_end_matches('/'));
    let http_err = |url: &str| {
        let url = url.to_owned();
        move |source| AuthError::Http { url, source }
    };
    let ping = http
        .get(&ping_url)
        .send()
        .await
        .map_err(http_err(&ping_url))?;
    if ping.status().is_success() {
        // The registry wants no auth at all, so there is nothing to exchange the token for.
        tracing::debug!(url = %ping_url, "registry allows anonymous access; identity token unused");
        return Ok(RegistryAuth::Anonymous);
    }
    let challenge_err = |reason: String| AuthError::Challenge {
        url: ping_url.clone(),
        reason,
    };
    let (realm, service) = ping
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(bearer_challenge)
        .ok_or_else(|| {
            challenge_err(format!(
                "HTTP {} without a \"WWW-Authenticate: Bearer realm=...\" challenge",
                ping.status().as_u16()
            ))
        })?;
    // A relative realm (rare) is taken relative to the registry URL.
    let realm = reqwest::Url::parse(&ping_url)
        .and_then(|base| base.join(&realm))
        .map_err(|e| challenge_err(format!("bad realm {realm:?}: {e}")))?;

    let scope = format!("repository:{repository}:pull");
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("scope", scope.as_str()),
        ("client_id", CLIENT_ID),
    ];
    if let Some(service) = service.as_deref() {
        form.push(("service", service));
    }
    let realm_str = realm.to_string();
    let resp = http
        .post(realm)
        .form(&form)
        .send()
        .await
        .map_err(http_err(&realm_str))?;
    if !resp.status().is_success() {
        return Err(token_status(realm_str, resp).await);
    }
    let body: TokenResponse = resp.json().await.map_err(http_err(&realm_str))?;
    let non_empty = |t: Option<String>| t.filter(|t| !t.is_empty());
    non_empty(body.access_token)
        .or_else(|| non_empty(body.token))
        .map(RegistryAuth::Bearer)
        .ok_or(AuthError::TokenMissing { url: realm_str })
}

/// `(realm, service)` from one WWW-Authenticate header value, if it holds a Bearer challenge.
fn bearer_challenge(header: &str) -> Option<(String, Option<String>)> {
    match challenge([header]) {
        Some(Challenge::Bearer { realm, service }) => Some((realm, service)),
        _ => None,
    }
}

/// A `WWW-Authenticate` challenge crius knows how to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Distribution token auth: fetch a token from `realm` (for `service`), send it as Bearer.
    Bearer {
        realm: String,
        service: Option<String>,
    },
    /// HTTP Basic: send the username and password with every request.
    Basic,
}

/// The challenge to answer among the `WWW-Authenticate` values of a 401: the first Bearer
/// challenge that names a realm (as docker and oci-client prefer token auth), else Basic when
/// offered; `None` when there is nothing crius can answer.
pub fn challenge<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
    let mut basic = false;
    for header in headers {
        for c in http_auth::ChallengeParser::new(header).filter_map(Result::ok) {
            if c.scheme.eq_ignore_ascii_case("bearer") {
                let param = |name: &str| {
                    c.params
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.to_unescaped())
                };
                if let Some(realm) = param("realm").filter(|r| !r.is_empty()) {
                    let service = param("service").filter(|s| !s.is_empty());
                    return Some(Challenge::Bearer { realm, service });
                }
            } else if c.scheme.eq_ignore_ascii_case("basic") {
                basic = true;
            }
        }
    }
    basic.then_some(Challenge::Basic)
}

/// Gets a token for `scope` from a distribution token server: `GET <realm>?scope=..&service=..`,
/// with the basic credentials of `auth` when it has some (anonymous otherwise; a registry token
/// is never sent to a token server, it is used as the token itself).
pub async fn fetch_token(
    http: &reqwest::Client,
    realm: reqwest::Url,
    service: Option<&str>,
    scope: &str,
    auth: &RegistryAuth,
) -> Result<String, AuthError> {
    let url = realm.to_string();
    let mut query = vec![("scope", scope)];
    if let Some(service) = service {
        query.push(("service", service));
    }
    let mut request = http.get(realm).query(&query);
    if let RegistryAuth::Basic(username, password) = auth {
        request = request.basic_auth(username, Some(password));
    }
    let http_err = |source| AuthError::Http {
        url: url.clone(),
        source,
    };
    let resp = request.send().await.map_err(http_err)?;
    if !resp.status().is_success() {
        return Err(token_status(url.clone(), resp).await);
    }
    let body: TokenResponse = resp.json().await.map_err(http_err)?;
    let non_empty = |t: Option<String>| t.filter(|t| !t.is_empty());
    non_empty(body.token)
        .or_else(|| non_empty(body.access_token))
        .ok_or(AuthError::TokenMissing { url })
}

/// A refusal from a token server, with its explanation: the OAuth2 `error` and
/// `error_description` fields, or docker's `details`/`message`, never the raw body (which may echo
/// what was sent).
async fn token_status(url: String, resp: reqwest::Response) -> AuthError {
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let text = |key: &str| body.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let parts: Vec<String> = ["error", "error_description", "details", "message"]
        .iter()
        .filter_map(|key| text(key))
        .map(|t| t.chars().take(200).collect())
        .collect();
    let detail = if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(": "))
    };
    AuthError::TokenStatus {
        url,
        status,
        detail,
    }
}

#[cfg(test)]
mod tests;
