//! crius' own minimal OCI distribution client, used for registries that require a TLS client
//! certificate (`<certs_dir>/<host>/client.cert` + `client.key`); see the module docs of
//! [`super`] for why oci-client cannot serve them.
//!
//! It does only what a pull needs: `GET /v2/<repo>/manifests/<ref>` and
//! `GET /v2/<repo>/blobs/<digest>` (redirects followed; reqwest drops `Authorization` when one
//! leaves the registry's host), presenting the client identity its reqwest client was built with.
//! A `401` is answered once per request: Basic with the endpoint's credentials, or a token from
//! the distribution token server named by a `Bearer` challenge (requested with the endpoint's
//! basic credentials, anonymously otherwise). A registry token (`RegistryAuth::Bearer`) is sent
//! as is from the first request on. Every byte is checked against the digest asked for.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::Bytes;
use futures::Stream;
use oci_client::Reference;
use oci_client::secrets::RegistryAuth;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use sha2::{Digest as _, Sha256};

use super::BlobStream;
use crate::image::auth::{self, Challenge};
use crate::image::digest::Digest;
use crate::image::error::{ImageError, Result};

/// Larger manifests are refused rather than held in memory (containerd's limit is 4 MiB).
const MAX_MANIFEST_BYTES: usize = 8 << 20;
/// How much of an error response is read for its message.
const MAX_ERROR_BODY_BYTES: usize = 64 << 10;

pub struct Mtls {
    http: reqwest::Client,
    /// `https`, or `http` for an insecure registry's last resort.
    scheme: &'static str,
    /// [`crate::image::registry::Endpoint::describe`], for error messages.
    endpoint: String,
    auth: RegistryAuth,
    /// The `Authorization` that answered the last challenge, per repository (token scopes are
    /// per repository).
    authorization: Mutex<HashMap<String, HeaderValue>>,
}

impl Mtls {
    /// `http` carries the TLS set-up (trust roots, client identity, timeouts).
    pub fn new(
        http: reqwest::Client,
        scheme: &'static str,
        endpoint: String,
        auth: RegistryAuth,
    ) -> Mtls {
        Mtls {
            http,
            scheme,
            endpoint,
            auth,
            authorization: Mutex::default(),
        }
    }

    pub async fn manifest(
        &self,
        reference: &Reference,
        accepted: &[&str],
    ) -> Result<(Digest, Vec<u8>)> {
        let url = manifest_url(self.scheme, reference);
        let response = self
            .get(&url, reference.repository(), Some(&accepted.join(", ")))
            .await?;
        let header_digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_limited(response, MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| self.error(&url, e))?;
        let digest = verify_manifest(&body, reference.digest(), header_digest.as_deref())?;
        Ok((digest, body))
    }

    pub async fn blob(&self, reference: &Reference, digest: &Digest) -> Result<Vec<u8>> {
        let url = blob_url(self.scheme, reference, digest);
        let body = self
            .get(&url, reference.repository(), None)
            .await?
            .bytes()
            .await
            .map_err(|e| self.error(&url, format!("reading the body: {}", chain(e))))?;
        let actual = Digest::of(&body);
        if actual != *digest {
            return Err(ImageError::Verification {
                digest: digest.to_string(),
                message: format!("registry sent content with digest {actual}"),
            });
        }
        Ok(body.to_vec())
    }

    pub async fn blob_stream(&self, reference: &Reference, digest: &Digest) -> Result<BlobStream> {
        let url = blob_url(self.scheme, reference, digest);
        let response = self.get(&url, reference.repository(), None).await?;
        Ok(Box::pin(Verifying {
            inner: Box::pin(response.bytes_stream()),
            hasher: Some(Sha256::new()),
            expected: digest.clone(),
        }))
    }

    /// `GET url`, answering one `401` challenge; a non-success answer becomes an error.
    async fn get(
        &self,
        url: &str,
        repository: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response> {
        let known = self.known_authorization(repository);
        let response = self.send(url, accept, known.as_ref()).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return self.success(url, response).await;
        }
        let answer = self.answer(url, repository, response.headers()).await?;
        self.authorization
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(repository.to_string(), answer.clone());
        let response = self.send(url, accept, Some(&answer)).await?;
        self.success(url, response).await
    }

    fn known_authorization(&self, repository: &str) -> Option<HeaderValue> {
        let cached = self
            .authorization
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(repository)
            .cloned();
        cached.or_else(|| match &self.auth {
            RegistryAuth::Bearer(token) => sensitive(&format!("Bearer {token}")),
            RegistryAuth::Anonymous | RegistryAuth::Basic(..) => None,
        })
    }

    async fn send(
        &self,
        url: &str,
        accept: Option<&str>,
        authorization: Option<&HeaderValue>,
    ) -> Result<reqwest::Response> {
        let mut request = self.http.get(url);
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value.clone());
        }
        request.send().await.map_err(|e| self.error(url, chain(e)))
    }

    /// The `Authorization` that answers the challenge of a `401` from `url`.
    async fn answer(
        &self,
        url: &str,
        repository: &str,
        headers: &HeaderMap,
    ) -> Result<HeaderValue> {
        let offered = auth::challenge(
            headers
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        let unauthorized = |why: &str| self.error(url, format!("HTTP 401 Unauthorized: {why}"));
        match plan(offered, &self.auth).map_err(|why| unauthorized(&why))? {
            Plan::Send(value) => Ok(value),
            Plan::FetchToken { realm, service } => {
                // A relative realm is taken relative to the URL that was refused.
                let realm = reqwest::Url::parse(url)
                    .and_then(|base| base.join(&realm))
                    .map_err(|e| unauthorized(&format!("bad token realm {realm:?}: {e}")))?;
                let scope = format!("repository:{repository}:pull");
                let token =
                    auth::fetch_token(&self.http, realm, service.as_deref(), &scope, &self.auth)
                        .await?;
                sensitive(&format!("Bearer {token}"))
                    .ok_or_else(|| unauthorized("the token server sent a malformed token"))
            }
        }
    }

    /// `response` when it is a success, else an error naming the URL, the status and what the
    /// registry said.
    async fn success(&self, url: &str, response: reqwest::Response) -> Result<reqwest::Response> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = read_limited(response, MAX_ERROR_BODY_BYTES)
            .await
            .unwrap_or_default();
        let message = format!("HTTP {status}{}", error_detail(&body));
        // An unknown manifest or tag is NOT_FOUND for the CRI; a missing blob stays a registry
        // error (the registry contradicts its own manifest).
        if status == StatusCode::NOT_FOUND && url.contains("/manifests/") {
            return Err(ImageError::NoSuchManifest(format!(
                "{}: GET {url}: {message}",
                self.endpoint
            )));
        }
        Err(self.error(url, message))
    }

    fn error(&self, url: &str, message: impl std::fmt::Display) -> ImageError {
        ImageError::Registry(format!("{}: GET {url}: {message}", self.endpoint))
    }
}

/// `<scheme>://<registry>/v2/<repository>/manifests/<digest, else tag, else latest>`, as
/// oci-client builds it (Docker Hub is reached as `index.docker.io`).
fn manifest_url(scheme: &str, reference: &Reference) -> String {
    let target = reference
        .digest()
        .or_else(|| reference.tag())
        .unwrap_or("latest");
    format!(
        "{scheme}://{}/v2/{}/manifests/{target}",
        reference.resolve_registry(),
        reference.repository()
    )
}

/// `<scheme>://<registry>/v2/<repository>/blobs/<digest>`.
fn blob_url(scheme: &str, reference: &Reference, digest: &Digest) -> String {
    format!(
        "{scheme}://{}/v2/{}/blobs/{digest}",
        reference.resolve_registry(),
        reference.repository()
    )
}

/// What to do about a `401`.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Send this `Authorization` (Basic).
    Send(HeaderValue),
    /// Get a token from the token server at `realm`.
    FetchToken {
        realm: String,
        service: Option<String>,
    },
}

/// How to answer `challenge` with `auth`, or why it cannot be answered.
fn plan(challenge: Option<Challenge>, auth: &RegistryAuth) -> std::result::Result<Plan, String> {
    match (challenge, auth) {
        // The registry token was sent already and refused; a token server cannot help.
        (_, RegistryAuth::Bearer(_)) => Err("the registry refused the registry token".into()),
        (Some(Challenge::Bearer { realm, service }), _) => Ok(Plan::FetchToken { realm, service }),
        (Some(Challenge::Basic), RegistryAuth::Basic(user, password)) => {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            sensitive(&format!("Basic {encoded}"))
                .map(Plan::Send)
                .ok_or_else(|| "the credentials cannot be sent in an HTTP header".into())
        }
        (Some(Challenge::Basic), _) => {
            Err("the registry wants a username and password and none are configured".into())
        }
        (None, _) => Err("no WWW-Authenticate challenge crius can answer (Bearer or Basic)".into()),
    }
}

/// A header value that is never logged; `None` when `value` is not valid in a header.
fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Checks a manifest body against the digest in its reference and the registry's
/// `Docker-Content-Digest`, when present, and returns its digest.
fn verify_manifest(body: &[u8], reference: Option<&str>, header: Option<&str>) -> Result<Digest> {
    let actual = Digest::of(body);
    for (claimed, source) in [
        (reference, "the reference"),
        (header, "Docker-Content-Digest"),
    ] {
        let Some(claimed) = claimed else { continue };
        let wanted = Digest::parse(claimed)?;
        if wanted != actual {
            return Err(ImageError::Verification {
                digest: wanted.to_string(),
                message: format!(
                    "registry sent a manifest with digest {actual} ({source} says {wanted})"
                ),
            });
        }
    }
    Ok(actual)
}

/// The body, refused once it grows past `limit` bytes.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> std::result::Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the body: {}", chain(e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(format!("the body is larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// ` (CODE: message; …)` from a distribution error body, else its text (shortened), else nothing.
fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let detail = match serde_json::from_slice::<Envelope>(body) {
        Ok(envelope) if !envelope.errors.is_empty() => envelope
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(200)
            .collect(),
    };
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

/// A reqwest error and its causes (the TLS reason is several sources deep), without the URL,
/// which after a redirect may carry a signed query string.
fn chain(err: reqwest::Error) -> String {
    super::with_causes(&err.without_url())
}

/// Passes a blob through, hashing it, and fails at its end when the digest is not the one asked
/// for.
struct Verifying<S> {
    inner: Pin<Box<S>>,
    /// `None` once the end was reached.
    hasher: Option<Sha256>,
    expected: Digest,
}

impl<S> Stream for Verifying<S>
where
    S: Stream<Item = reqwest::Result<Bytes>>,
{
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(hasher) = self.hasher.as_mut() {
                    hasher.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(io::Error::other(chain(err))))),
            Poll::Ready(None) => match self.hasher.take() {
                None => Poll::Ready(None),
                Some(hasher) => {
                    let actual = hex::encode(hasher.finalize());
                    if actual == self.expected.hex() {
                        Poll::Ready(None)
                    } else {
                        Poll::Ready(Some(Err(io::Error::other(format!(
                            "digest mismatch: registry sent sha256:{actual}, expected {}",
                            self.expected
                        )))))
                    }
                }
            },
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Arc;

    fn sha(data: &[u8]) -> Digest {
        Digest::of(data)
    }

    #[test]
    fn urls_follow_the_distribution_api() {
        let digest = sha(b"x");
        let tagged = Reference::with_tag("reg:5000".into(), "team/app".into(), "v1".into());
        assert_eq!(
            manifest_url("https", &tagged),
            "https://reg:5000/v2/team/app/manifests/v1"
        );
        let pinned =
            Reference::with_digest("reg:5000".into(), "team/app".into(), digest.to_string());
        assert_eq!(
            manifest_url("http", &pinned),
            format!("http://reg:5000/v2/team/app/manifests/{digest}")
        );
        let hub = Reference::with_tag("docker.io".into(), "library/busybox".into(), "1".into());
        assert_eq!(
            manifest_url("https", &hub),
            "https://index.docker.io/v2/library/busybox/manifests/1"
        );
        assert_eq!(
            blob_url("https", &tagged, &digest),
            format!("https://reg:5000/v2/team/app/blobs/{digest}")
        );
    }

    #[test]
    fn challenges_are_answered_with_the_right_credentials() {
        let bearer = || {
            Some(Challenge::Bearer {
                realm: "https://auth/token".into(),
                service: Some("reg".into()),
            })
        };
        let basic = RegistryAuth::Basic("u".into(), "p".into());
        let fetch = Plan::FetchToken {
            realm: "https://auth/token".into(),
            service: Some("reg".into()),
        };
        assert_eq!(plan(bearer(), &RegistryAuth::Anonymous), Ok(fetch));
        assert!(matches!(
            plan(bearer(), &basic),
            Ok(Plan::FetchToken { .. })
        ));
        let Ok(Plan::Send(value)) = plan(Some(Challenge::Basic), &basic) else {
            panic!("basic credentials answer a basic challenge");
        };
        assert_eq!(value.to_str().unwrap(), "Basic dTpw");
        assert!(value.is_sensitive());
        let err = plan(Some(Challenge::Basic), &RegistryAuth::Anonymous).unwrap_err();
        assert!(err.contains("username and password"), "{err}");
        assert!(
            plan(None, &basic)
                .unwrap_err()
                .contains("no WWW-Authenticate")
        );
        let err = plan(bearer(), &RegistryAuth::Bearer("t".into())).unwrap_err();
        assert!(err.contains("registry token"), "{err}");
    }

    #[test]
    fn manifests_are_checked_against_reference_and_header() {
        let body = br#"{"schemaVersion":2}"#;
        let right = sha(body);
        let wrong = sha(b"other");
        assert_eq!(verify_manifest(body, None, None).unwrap(), right);
        assert_eq!(
            verify_manifest(body, Some(right.as_str()), Some(right.as_str())).unwrap(),
            right
        );
        for (reference, header, says) in [
            (Some(wrong.as_str()), None, "the reference"),
            (None, Some(wrong.as_str()), "Docker-Content-Digest"),
            (
                Some(right.as_str()),
                Some(wrong.as_str()),
                "Docker-Content-Digest",
            ),
        ] {
            match verify_manifest(body, reference, header) {
                Err(ImageError::Verification { digest, message }) => {
                    assert_eq!(digest, wrong.as_str());
                    assert!(message.contains(says) && message.contains(right.as_str()));
                }
                other => panic!("expected a verification error, got {other:?}"),
            }
        }
        let sha512 = format!("sha512:{}", "0".repeat(128));
        assert!(matches!(
            verify_manifest(body, None, Some(&sha512)),
            Err(ImageError::Unsupported(_))
        ));
    }

    #[test]
    fn registry_error_bodies_are_summarised() {
        let envelope =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            error_detail(envelope),
            " (MANIFEST_UNKNOWN: manifest unknown)"
        );
        assert_eq!(error_detail(b"  upstream down\n"), " (upstream down)");
        assert_eq!(error_detail(b""), "");
        assert_eq!(error_detail(&[b'x'; 1000]).len(), " ()".len() + 200);
    }

    /// One request as a test server saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        path: String,
        authorization: Option<String>,
        accept: Option<String>,
    }

    type Handler = dyn Fn(&Seen) -> String + Send + Sync;

    /// A plain-HTTP server on 127.0.0.1 answering each request (one per connection) with
    /// `handler`; returns its base `host:port` and the log of requests.
    fn serve(handler: Arc<Handler>) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let mut request = Seen {
                    path,
                    authorization: None,
                    accept: None,
                };
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        let v = Some(v.trim().to_owned());
                        match k.to_ascii_lowercase().as_str() {
                            "authorization" => request.authorization = v,
                            "accept" => request.accept = v,
                            _ => {}
                        }
                    }
                }
                let response = handler(&request);
                log.lock().unwrap().push(request);
                let mut stream = stream;
                let _ = stream.write_all(response.as_bytes());
            }
        });
        (host, seen)
    }

    fn response(status: &str, headers: &[String], body: &[u8]) -> String {
        let mut r = format!(
            "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for h in headers {
            r.push_str(h);
            r.push_str("\r\n");
        }
        r.push_str("\r\n");
        r.push_str(std::str::from_utf8(body).unwrap());
        r
    }

    fn transport(auth: RegistryAuth) -> Mtls {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Mtls::new(http, "http", "test endpoint".into(), auth)
    }

    async fn collect(mut stream: BlobStream) -> io::Result<Vec<u8>> {
        use futures::StreamExt;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn bearer_challenge_is_answered_once_and_reused() {
        let manifest = br#"{"schemaVersion":2,"layers":[]}"#.to_vec();
        let blob = b"layer bytes".to_vec();
        let (manifest_digest, blob_digest) = (sha(&manifest), sha(&blob));
        let realm = Arc::new(Mutex::new(String::new()));
        let (host, seen) = {
            let (manifest, blob, realm) = (manifest.clone(), blob.clone(), realm.clone());
            serve(Arc::new(move |req: &Seen| {
                let authorized = req.authorization.as_deref() == Some("Bearer tok-1");
                match req.path.as_str() {
                    p if p.starts_with("/token?") => {
                        // Basic credentials go to the token server, never to the registry.
                        assert_eq!(req.authorization.as_deref(), Some("Basic dTpw"));
                        assert!(p.contains("scope=repository%3Ateam%2Fapp%3Apull"), "{p}");
                        assert!(p.contains("service=reg"), "{p}");
                        response("200 OK", &[], br#"{"token":"tok-1"}"#)
                    }
                    _ if !authorized => response(
                        "401 Unauthorized",
                        &[format!(
                            r#"WWW-Authenticate: Bearer realm="{}",service="reg",scope="x""#,
                            realm.lock().unwrap()
                        )],
                        br#"{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}"#,
                    ),
                    "/v2/team/app/manifests/v1" => response(
                        "200 OK",
                        &[format!("Docker-Content-Digest: {}", sha(&manifest))],
                        &manifest,
                    ),
                    p if p == format!("/v2/team/app/blobs/{}", sha(&blob)) => {
                        response("200 OK", &[], &blob)
                    }
                    _ => response("404 Not Found", &[], b""),
                }
            }))
        };
        *realm.lock().unwrap() = format!("http://{host}/token");
        let t = transport(RegistryAuth::Basic("u".into(), "p".into()));
        let reference = Reference::with_tag(host.clone(), "team/app".into(), "v1".into());

        let (digest, body) = t.manifest(&reference, &["a/b", "c/d"]).await.unwrap();
        assert_eq!((digest, body), (manifest_digest, manifest.clone()));
        assert_eq!(t.blob(&reference, &blob_digest).await.unwrap(), blob);
        let streamed = t.blob_stream(&reference, &blob_digest).await.unwrap();
        assert_eq!(collect(streamed).await.unwrap(), blob);

        let seen = seen.lock().unwrap().clone();
        let paths: Vec<_> = seen
            .iter()
            .map(|s| s.path.split('?').next().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "/v2/team/app/manifests/v1",
                "/token",
                "/v2/team/app/manifests/v1",
                format!("/v2/team/app/blobs/{blob_digest}").as_str(),
                format!("/v2/team/app/blobs/{blob_digest}").as_str(),
            ]
        );
        assert_eq!(seen[0].accept.as_deref(), Some("a/b, c/d"));
        assert_eq!(seen[0].authorization, None);
    }

    #[tokio::test]
    async fn basic_challenge_and_registry_token() {
        let blob = b"config".to_vec();
        let digest = sha(&blob);
        let (host, seen) = {
            let blob = blob.clone();
            serve(Arc::new(move |req: &Seen| {
                match req.authorization.as_deref() {
                    Some("Basic dTpw") | Some("Bearer rt") => response("200 OK", &[], &blob),
                    _ => response(
                        "401 Unauthorized",
                        &[r#"WWW-Authenticate: Basic realm="r""#.into()],
                        b"",
                    ),
                }
            }))
        };
        let reference = Reference::with_tag(host, "a".into(), "v1".into());

        let basic = transport(RegistryAuth::Basic("u".into(), "p".into()));
        assert_eq!(basic.blob(&reference, &digest).await.unwrap(), blob);
        assert_eq!(basic.blob(&reference, &digest).await.unwrap(), blob);
        // One challenge, then the answer is sent up front.
        assert_eq!(seen.lock().unwrap().len(), 3);

        let token = transport(RegistryAuth::Bearer("rt".into()));
        assert_eq!(token.blob(&reference, &digest).await.unwrap(), blob);
        assert_eq!(seen.lock().unwrap().len(), 4);

        let anonymous = transport(RegistryAuth::Anonymous);
        let err = anonymous.blob(&reference, &digest).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ImageError::Registry(_)), "{msg}");
        assert!(
            msg.contains("test endpoint")
                && msg.contains(&format!("/v2/a/blobs/{digest}"))
                && msg.contains("401"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn wrong_content_and_registry_errors() {
        let (host, _seen) = serve(Arc::new(|req: &Seen| {
            if req.path.contains("/blobs/") {
                response("200 OK", &[], b"not what was asked for")
            } else {
                response(
                    "404 Not Found",
                    &[],
                    br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
                )
            }
        }));
        let t = transport(RegistryAuth::Anonymous);
        let reference = Reference::with_tag(host.clone(), "a".into(), "v1".into());
        let digest = sha(b"expected");

        let err = t.blob(&reference, &digest).await.unwrap_err();
        assert!(
            matches!(&err, ImageError::Verification { digest: d, .. } if d == digest.as_str()),
            "{err}"
        );

        let stream = t.blob_stream(&reference, &digest).await.unwrap();
        let err = collect(stream).await.unwrap_err().to_string();
        assert!(
            err.contains("digest mismatch") && err.contains(digest.as_str()),
            "{err}"
        );

        let msg = t.manifest(&reference, &[]).await.unwrap_err().to_string();
        assert_eq!(
            msg,
            format!(
                "test endpoint: GET http://{host}/v2/a/manifests/v1: HTTP 404 Not Found \
                 (MANIFEST_UNKNOWN: manifest unknown)"
            )
        );
    }

    #[tokio::test]
    async fn unreachable_registry_names_the_url() {
        // Port 9 on loopback: nothing listens.
        let t = transport(RegistryAuth::Anonymous);
        let reference = Reference::with_tag("127.0.0.1:9".into(), "a".into(), "v1".into());
        let msg = t.manifest(&reference, &[]).await.unwrap_err().to_string();
        assert!(
            msg.starts_with("test endpoint: GET http://127.0.0.1:9/v2/a/manifests/v1: "),
            "{msg}"
        );
    }
}
