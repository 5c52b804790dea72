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

    /// True when the file held no usable entries (or did not exist).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
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
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn basic(u: &str, p: &str) -> Credentials {
        Credentials::Basic {
            username: u.into(),
            password: p.into(),
        }
    }

    fn sample() -> AuthFile {
        let json = serde_json::json!({
            "auths": {
                "https://index.docker.io/v1/": {"auth": b64("hubuser:hubpass")},
                "docker.io/myorg": {"auth": b64("orguser:orgpass")},
                "registry-1.docker.io/myorg/special": {"registrytoken": "hub-rt"},
                "localhost:5000": {"auth": b64("local:lpw")},
                "http://insecure.example:8080": {"username": "u2", "password": "p2"},
                "https://secure.example/v2/": {"auth": b64("<token>:"), "identitytoken": "id-tok"},
                "quay.io": {"auth": b64("quay:all")},
                "quay.io/team": {"auth": b64("quay:team")},
                "quay.io/team/app/": {"registrytoken": "rt"},
                "Upper.Example": {"auth": b64("up:pw\u{0}\u{0}")},
                "helper.example": {},
                "[::1]:5000": {"auth": "bnVsbDpudWxs"}
            },
            "credsStore": "desktop"
        });
        AuthFile::from_json(&json.to_string(), "/etc/test/auth.json").unwrap()
    }

    #[test]
    fn lookup_all_key_forms() {
        let f = sample();
        // URL key for Docker Hub, found under every name of the hub.
        for host in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "DOCKER.IO",
        ] {
            assert_eq!(
                f.lookup(host, "library/busybox"),
                basic("hubuser", "hubpass"),
                "{host}"
            );
        }
        assert_eq!(f.lookup("localhost:5000", "a/b"), basic("local", "lpw"));
        assert_eq!(f.lookup("insecure.example:8080", "x"), basic("u2", "p2"));
        assert_eq!(
            f.lookup("secure.example", "x"),
            Credentials::IdentityToken {
                username: "<token>".into(),
                token: "id-tok".into()
            }
        );
        assert_eq!(f.lookup("upper.example", "x"), basic("up", "pw"));
        assert_eq!(f.lookup("[::1]:5000", "x"), basic("null", "null"));
        // Not listed, a different port, or an empty helper placeholder → anonymous.
        assert_eq!(f.lookup("ghcr.io", "x"), Credentials::Anonymous);
        assert_eq!(f.lookup("localhost:5001", "x"), Credentials::Anonymous);
        assert_eq!(f.lookup("helper.example", "x"), Credentials::Anonymous);
    }

    #[test]
    fn longest_prefix_wins() {
        let f = sample();
        assert_eq!(f.lookup("quay.io", "other/app"), basic("quay", "all"));
        assert_eq!(f.lookup("quay.io", "team/x"), basic("quay", "team"));
        assert_eq!(
            f.lookup("quay.io", "team/app"),
            Credentials::RegistryToken("rt".into())
        );
        assert_eq!(
            f.lookup("quay.io", "team/app/sub"),
            Credentials::RegistryToken("rt".into())
        );
        // Prefixes match whole path components only.
        assert_eq!(f.lookup("quay.io", "teammate/x"), basic("quay", "all"));
        assert_eq!(
            f.lookup("quay.io", "team/application"),
            basic("quay", "team")
        );
        assert_eq!(
            f.lookup("docker.io", "myorg/app"),
            basic("orguser", "orgpass")
        );
        assert_eq!(
            f.lookup("docker.io", "myorg/special"),
            Credentials::RegistryToken("hub-rt".into())
        );
        assert_eq!(f.lookup("quay.io", ""), basic("quay", "all"));
    }

    #[test]
    fn bare_key_beats_url_key_for_same_host() {
        let json = serde_json::json!({"auths": {
            "https://index.docker.io/v1/": {"auth": b64("url:u")},
            "docker.io": {"auth": b64("bare:b")}
        }});
        let f = AuthFile::from_json(&json.to_string(), "t").unwrap();
        assert_eq!(f.lookup("docker.io", "library/x"), basic("bare", "b"));
    }

    #[test]
    fn entry_precedence() {
        let json = serde_json::json!({"auths": {
            "a.io": {"auth": b64("u:p"), "username": "ignored", "password": "ignored", "registrytoken": "rt", "identitytoken": "it"},
            "b.io": {"auth": b64("u:p"), "identitytoken": "it"},
            "c.io": {"auth": b64("u:p"), "username": "other", "password": "other"},
            "d.io": {"username": "user", "password": null},
            "e.io": {"identitytoken": "it"}
        }});
        let f = AuthFile::from_json(&json.to_string(), "t").unwrap();
        assert_eq!(
            f.lookup("a.io", "x"),
            Credentials::RegistryToken("rt".into())
        );
        assert_eq!(
            f.lookup("b.io", "x"),
            Credentials::IdentityToken {
                username: "u".into(),
                token: "it".into()
            }
        );
        assert_eq!(f.lookup("c.io", "x"), basic("u", "p"));
        assert_eq!(f.lookup("d.io", "x"), basic("user", ""));
        assert_eq!(
            f.lookup("e.io", "x"),
            Credentials::IdentityToken {
                username: String::new(),
                token: "it".into()
            }
        );
    }

    #[test]
    fn auth_field_errors_name_file_and_key() {
        let cases = [
            ("!!!not base64", "not valid base64"),
            (b64("nocolon").as_str(), "no ':'"),
            (b64(":pw").as_str(), "empty username"),
        ]
        .map(|(a, m)| (a.to_owned(), m));
        for (auth, want) in cases {
            let json = serde_json::json!({"auths": {"reg.example": {"auth": auth}}});
            let err = AuthFile::from_json(&json.to_string(), "/x/config.json").unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("/x/config.json"), "{msg}");
            assert!(msg.contains("\"reg.example\""), "{msg}");
            assert!(msg.contains(want), "{msg}");
        }
        // Unpadded base64 and surrounding whitespace are accepted.
        let json = r#"{"auths": {"r.io": {"auth": " dTpwdw \n"}}}"#;
        let f = AuthFile::from_json(json, "t").unwrap();
        assert_eq!(f.lookup("r.io", "x"), basic("u", "pw"));
        let bad_utf8 = base64::engine::general_purpose::STANDARD.encode([0xff, b':', b'x']);
        let json = serde_json::json!({"auths": {"r.io": {"auth": bad_utf8}}});
        let msg = AuthFile::from_json(&json.to_string(), "t")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("not UTF-8"), "{msg}");
    }

    #[test]
    fn json_errors_do_not_quote_values() {
        let err = AuthFile::from_json(r#"{"auths": "hunter2"}"#, "/p/auth.json").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/p/auth.json") && !msg.contains("hunter2"),
            "{msg}"
        );
        let msg = AuthFile::from_json("{not json", "/p/auth.json")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("/p/auth.json"), "{msg}");
    }

    #[test]
    fn load_from_disk() {
        let dir = std::env::temp_dir().join(format!("crius-auth-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();

        let missing = AuthFile::load(&dir.join("missing.json")).unwrap();
        assert!(missing.is_empty());
        assert_eq!(
            missing.lookup("docker.io", "library/x"),
            Credentials::Anonymous
        );

        let good = dir.join("good.json");
        std::fs::write(
            &good,
            format!(r#"{{"auths":{{"r.io":{{"auth":"{}"}}}}}}"#, b64("a:b")),
        )
        .unwrap();
        assert_eq!(
            AuthFile::load(&good).unwrap().lookup("r.io", "x"),
            basic("a", "b")
        );

        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{").unwrap();
        let msg = AuthFile::load(&bad).unwrap_err().to_string();
        assert!(msg.contains(&bad.display().to_string()), "{msg}");

        // A directory exists but cannot be read as a file.
        let msg = AuthFile::load(&dir).unwrap_err().to_string();
        assert!(msg.contains(&dir.display().to_string()), "{msg}");

        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn cri<'a>(u: &'a str, p: &'a str, a: &'a str, it: &'a str, rt: &'a str) -> CriAuth<'a> {
        CriAuth {
            username: u,
            password: p,
            auth: a,
            server_address: "reg.example",
            identity_token: it,
            registry_token: rt,
        }
    }

    #[test]
    fn cri_precedence() {
        let a = b64("au:ap");
        assert_eq!(
            from_cri(&cri("u", "p", &a, "it", "rt")).unwrap(),
            basic("u", "p")
        );
        assert_eq!(
            from_cri(&cri("", "p", &a, "it", "rt")).unwrap(),
            basic("au", "ap")
        );
        assert_eq!(
            from_cri(&cri("", "p", "", "it", "rt")).unwrap(),
            Credentials::IdentityToken {
                username: String::new(),
                token: "it".into()
            }
        );
        assert_eq!(
            from_cri(&cri("", "", "", "", "rt")).unwrap(),
            Credentials::RegistryToken("rt".into())
        );
        assert_eq!(
            from_cri(&cri("", "", "", "", "")).unwrap(),
            Credentials::Anonymous
        );
        assert_eq!(from_cri(&cri("u", "", "", "", "")).unwrap(), basic("u", ""));

        let msg = from_cri(&cri("", "", "%%%", "", ""))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("CRI AuthConfig") && msg.contains("reg.example"),
            "{msg}"
        );
        let msg = from_cri(&cri("", "", &b64("secretnocolon"), "", ""))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("no ':'") && !msg.contains("secret"), "{msg}");
    }

    #[test]
    fn debug_redacts_secrets() {
        let secrets = ["s3cret-pass", "s3cret-token", "s3cret-rt"];
        let values = [
            basic("alice", "s3cret-pass"),
            Credentials::IdentityToken {
                username: "bob".into(),
                token: "s3cret-token".into(),
            },
            Credentials::RegistryToken("s3cret-rt".into()),
            Credentials::Anonymous,
        ];
        let json = serde_json::json!({"auths": {
            "a.io": {"auth": b64("alice:s3cret-pass")},
            "b.io": {"identitytoken": "s3cret-token"},
            "c.io": {"registrytoken": "s3cret-rt"}
        }});
        let file = AuthFile::from_json(&json.to_string(), "t").unwrap();
        let cri_auth = cri("alice", "s3cret-pass", "", "s3cret-token", "s3cret-rt");
        let mut outputs: Vec<String> = values.iter().map(|v| format!("{v:?} {v:#?}")).collect();
        outputs.push(format!("{file:?}"));
        outputs.push(format!("{cri_auth:?}"));
        for out in &outputs {
            for s in secrets {
                assert!(!out.contains(s), "{out}");
            }
        }
        assert!(outputs[0].contains("alice"));
    }

    /// One request as seen by the test server.
    struct Seen {
        method: String,
        path: String,
        body: String,
    }

    /// Serves one canned response per connection on 127.0.0.1 and reports each request.
    /// `{base}` in a response is replaced by the server's own URL.
    fn serve(responses: Vec<String>) -> (String, mpsc::Receiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        let base2 = base.clone();
        std::thread::spawn(move || {
            for response in responses {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_owned();
                let path = parts.next().unwrap_or_default().to_owned();
                let mut len = 0;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                tx.send(Seen {
                    method,
                    path,
                    body: String::from_utf8(body).unwrap(),
                })
                .unwrap();
                let mut stream = stream;
                stream
                    .write_all(response.replace("{base}", &base2).as_bytes())
                    .unwrap();
            }
        });
        (base, rx)
    }

    fn response(status: &str, headers: &[&str], body: &str) -> String {
        let mut r = format!(
            "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for h in headers {
            r.push_str(h);
            r.push_str("\r\n");
        }
        r.push_str("\r\n");
        r.push_str(body);
        r
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    fn id_token() -> Credentials {
        Credentials::IdentityToken {
            username: "<token>".into(),
            token: "refresh-me".into(),
        }
    }

    fn unauthorized() -> String {
        response(
            "401 Unauthorized",
            &[
                r#"WWW-Authenticate: Bearer realm="{base}/token",service="test.registry",scope="repository:a/b:pull,push""#,
            ],
            "",
        )
    }

    #[tokio::test]
    async fn identity_token_exchange() {
        let (base, seen) = serve(vec![
            unauthorized(),
            response(
                "200 OK",
                &["Content-Type: application/json"],
                r#"{"access_token":"acc-1","expires_in":300}"#,
            ),
        ]);
        let auth = resolve(&id_token(), &client(), &format!("{base}/"), "team/app")
            .await
            .unwrap();
        assert_eq!(auth, RegistryAuth::Bearer("acc-1".into()));

        let ping = seen.recv().unwrap();
        assert_eq!((ping.method.as_str(), ping.path.as_str()), ("GET", "/v2/"));
        let post = seen.recv().unwrap();
        assert_eq!(
            (post.method.as_str(), post.path.as_str()),
            ("POST", "/token")
        );
        let mut fields: Vec<&str> = post.body.split('&').collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "client_id=crius",
                "grant_type=refresh_token",
                "refresh_token=refresh-me",
                "scope=repository%3Ateam%2Fapp%3Apull",
                "service=test.registry",
            ]
        );
    }

    #[tokio::test]
    async fn identity_token_exchange_token_field_and_relative_realm() {
        let (base, _seen) = serve(vec![
            response(
                "401 Unauthorized",
                &[
                    r#"WWW-Authenticate: Basic realm="x""#,
                    r#"WWW-Authenticate: Bearer realm="/auth/token""#,
                ],
                "",
            ),
            response("200 OK", &[], r#"{"token":"tok-2"}"#),
        ]);
        let auth = resolve(&id_token(), &client(), &base, "x").await.unwrap();
        assert_eq!(auth, RegistryAuth::Bearer("tok-2".into()));
    }

    #[tokio::test]
    async fn identity_token_exchange_failures() {
        let (base, _seen) = serve(vec![
            unauthorized(),
            response("401 Unauthorized", &[], "{}"),
        ]);
        let err = resolve(&id_token(), &client(), &base, "x")
            .await
            .unwrap_err();
        assert!(
            matches!(err, AuthError::TokenStatus { status: 401, .. }),
            "{err}"
        );

        let (base, _seen) = serve(vec![
            unauthorized(),
            response("200 OK", &[], r#"{"access_token":""}"#),
        ]);
        let err = resolve(&id_token(), &client(), &base, "x")
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::TokenMissing { .. }), "{err}");

        let (base, _seen) = serve(vec![response(
            "401 Unauthorized",
            &[r#"WWW-Authenticate: Basic realm="r""#],
            "",
        )]);
        let err = resolve(&id_token(), &client(), &base, "x")
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::Challenge { .. }), "{err}");
        assert!(!err.to_string().contains("refresh-me"));

        // A registry that needs no auth: nothing to exchange.
        let (base, _seen) = serve(vec![response("200 OK", &[], "{}")]);
        let auth = resolve(&id_token(), &client(), &base, "x").await.unwrap();
        assert_eq!(auth, RegistryAuth::Anonymous);
    }

    #[tokio::test]
    async fn direct_mappings_make_no_requests() {
        // Port 9 on loopback: any request would fail, proving none is made.
        let http = client();
        let base = "http://127.0.0.1:9";
        let r = |c: Credentials| {
            let http = http.clone();
            async move { resolve(&c, &http, base, "x").await.unwrap() }
        };
        assert_eq!(r(Credentials::Anonymous).await, RegistryAuth::Anonymous);
        assert_eq!(
            r(basic("u", "p")).await,
            RegistryAuth::Basic("u".into(), "p".into())
        );
        assert_eq!(
            r(Credentials::RegistryToken("t".into())).await,
            RegistryAuth::Bearer("t".into())
        );
    }

    #[test]
    fn challenges_prefer_bearer_then_basic() {
        let bearer = |realm: &str, service: Option<&str>| Challenge::Bearer {
            realm: realm.into(),
            service: service.map(Into::into),
        };
        assert_eq!(
            challenge([
                r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull""#
            ]),
            Some(bearer("https://auth.example/token", Some("reg")))
        );
        // Several challenges in one header or across headers; Bearer wins wherever it is.
        assert_eq!(
            challenge([r#"Basic realm="r", Bearer realm="/token""#]),
            Some(bearer("/token", None))
        );
        assert_eq!(
            challenge([r#"basic realm="r""#, r#"BEARER Realm="/t",Service="s""#]),
            Some(bearer("/t", Some("s")))
        );
        assert_eq!(
            challenge([r#"Basic realm="registry""#]),
            Some(Challenge::Basic)
        );
        // A Bearer challenge without a realm cannot be answered; Basic still can.
        assert_eq!(
            challenge([r#"Bearer service="s""#, "Basic"]),
            Some(Challenge::Basic)
        );
        assert_eq!(challenge([r#"Bearer realm="""#]), None);
        assert_eq!(challenge([r#"Digest realm="r", nonce="n""#]), None);
        assert_eq!(challenge(["not a challenge ,,, ="]), None);
        assert_eq!(challenge([]), None);
    }

    #[tokio::test]
    async fn token_fetch_sends_scope_service_and_basic_credentials() {
        let (base, seen) = serve(vec![response(
            "200 OK",
            &[],
            r#"{"access_token":"a","token":"t"}"#,
        )]);
        let realm = reqwest::Url::parse(&format!("{base}/token?x=1")).unwrap();
        let token = fetch_token(
            &client(),
            realm,
            Some("reg"),
            "repository:a/b:pull",
            &RegistryAuth::Basic("u".into(), "p".into()),
        )
        .await
        .unwrap();
        assert_eq!(token, "t");
        let get = seen.recv().unwrap();
        assert_eq!(get.method, "GET");
        assert_eq!(
            get.path,
            "/token?x=1&scope=repository%3Aa%2Fb%3Apull&service=reg"
        );

        let (base, _seen) = serve(vec![response("403 Forbidden", &[], "")]);
        let realm = reqwest::Url::parse(&format!("{base}/token")).unwrap();
        let err = fetch_token(&client(), realm, None, "s", &RegistryAuth::Anonymous)
            .await
            .unwrap_err();
        assert!(
            matches!(err, AuthError::TokenStatus { status: 403, .. }),
            "{err}"
        );
    }
}
