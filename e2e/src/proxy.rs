//! A loopback HTTP/1.1 proxy in front of a plain-HTTP [`TestRegistry`] that logs every request
//! and can break blob downloads on purpose: corrupt one byte (keeping `Content-Length`), stall
//! after N bytes (a pull that hangs until its client dies), cut after N bytes, or throttle.
//!
//! It is a reverse proxy: the daemon is configured to pull `127.0.0.1:<proxy port>/<repo>`
//! (marked insecure) and the proxy forwards each request to the registry on a fresh connection
//! with `Connection: close`, answering the client with `Connection: close` as well (one request
//! per connection keeps the parsing trivial). It runs on its own tokio runtime thread, so it
//! keeps serving while a test blocks, and stops when dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::registry::TestRegistry;

/// What happens to matching blob responses (`GET /v2/<name>/blobs/<digest>` answered 200/206).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlobFault {
    /// Forward unchanged.
    #[default]
    None,
    /// Flip every bit of the byte in the middle of the body; the length is unchanged.
    Corrupt,
    /// Send the first `after` body bytes, then send nothing more until the client closes the
    /// connection or [`Proxy::release_stalled`] is called (then the connection is closed).
    Stall { after: u64 },
    /// Send the first `after` body bytes, then close the connection.
    Cut { after: u64 },
}

/// How the proxy treats blob downloads.
#[derive(Debug, Clone, Default)]
pub struct Behavior {
    pub fault: BlobFault,
    /// Apply `fault` only to these digests (`sha256:...`); `None` = every blob.
    pub only: Option<Vec<String>>,
    /// Throttle blob bodies to this many bytes per second (faulty or not).
    pub blob_bytes_per_sec: Option<u64>,
}

/// One proxied request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// Request target (path and query) as sent.
    pub path: String,
    /// Upstream status (0 when the upstream did not answer).
    pub status: u16,
    /// Body bytes forwarded to the client.
    pub body_bytes: u64,
    /// The fault applied to this response.
    pub fault: BlobFault,
    /// Whether the body was forwarded completely.
    pub complete: bool,
}

impl LoggedRequest {
    /// The blob digest for `.../blobs/<digest>` requests.
    pub fn blob_digest(&self) -> Option<&str> {
        blob_digest_of(&self.path)
    }
}

struct Shared {
    upstream: SocketAddr,
    behavior: Mutex<Behavior>,
    log: Mutex<Vec<LoggedRequest>>,
    stalled: AtomicUsize,
    stalled_changed: watch::Sender<usize>,
    release: watch::Sender<u64>,
}

impl Shared {
    fn behavior(&self) -> Behavior {
        self.behavior
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn push_log(&self, entry: LoggedRequest) -> usize {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.push(entry);
        log.len() - 1
    }

    fn update_log(&self, index: usize, f: impl FnOnce(&mut LoggedRequest)) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = log.get_mut(index) {
            f(entry);
        }
    }
}

/// A running proxy.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .finish()
    }
}

impl Proxy {
    /// Starts a proxy forwarding to the plain-HTTP server at `upstream`.
    pub fn start(upstream: SocketAddr) -> Result<Proxy> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("crius-e2e-proxy")
            .enable_all()
            .build()
            .context("building the proxy runtime")?;
        let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .context("binding the proxy port")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            behavior: Mutex::new(Behavior::default()),
            log: Mutex::new(Vec::new()),
            stalled: AtomicUsize::new(0),
            stalled_changed: watch::Sender::new(0),
            release: watch::Sender::new(0),
        });
        let accept_shared = shared.clone();
        runtime.spawn(async move {
            let Ok(listener) = TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((client, _)) = listener.accept().await {
                let shared = accept_shared.clone();
                tokio::spawn(async move {
                    let _ = handle(client, shared).await;
                });
            }
        });
        Ok(Proxy {
            addr,
            shared,
            runtime: Some(runtime),
        })
    }

    /// A proxy in front of `registry`, which must be plain HTTP.
    pub fn for_registry(registry: &TestRegistry) -> Result<Proxy> {
        if registry.is_tls() {
            bail!(
                "the proxy forwards plain HTTP only; {} speaks TLS",
                registry.host()
            );
        }
        Proxy::start(registry.addr())
    }

    /// `127.0.0.1:<port>`: use it as the registry part of image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the behaviour for subsequent requests.
    pub fn set_behavior(&self, behavior: Behavior) {
        *self
            .shared
            .behavior
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = behavior;
    }

    /// Applies `fault` to every blob from now on.
    pub fn set_fault(&self, fault: BlobFault) {
        self.set_behavior(Behavior {
            fault,
            ..self.shared.behavior()
        });
    }

    /// Applies `fault` to these blob digests only.
    pub fn set_fault_for(&self, digests: &[String], fault: BlobFault) {
        self.set_behavior(Behavior {
            fault,
            only: Some(digests.to_vec()),
            ..self.shared.behavior()
        });
    }

    /// Throttles blob bodies (`None`: full speed).
    pub fn throttle(&self, bytes_per_sec: Option<u64>) {
        self.set_behavior(Behavior {
            blob_bytes_per_sec: bytes_per_sec,
            ..self.shared.behavior()
        });
    }

    /// Back to forwarding unchanged at full speed.
    pub fn clear(&self) {
        self.set_behavior(Behavior::default());
    }

    /// Every request so far, in the order their responses started.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many `GET`s of blob `digest` went through.
    pub fn blob_gets(&self, digest: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.blob_digest() == Some(digest))
            .count()
    }

    /// How many responses have stalled so far.
    pub fn stalled(&self) -> usize {
        self.shared.stalled.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` responses have stalled.
    pub async fn wait_stalled(&self, n: usize, timeout: Duration) -> Result<()> {
        let mut rx = self.shared.stalled_changed.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|count| *count >= n))
            .await
            .with_context(|| format!("no {n} stalled blob download(s) within {timeout:?}"))?
            .context("proxy stopped")?;
        Ok(())
    }

    /// Closes every currently stalled connection.
    pub fn release_stalled(&self) {
        self.shared
            .release
            .send_modify(|generation| *generation += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `sha256:...` for a `/v2/<name>/blobs/<digest>` path (query ignored).
fn blob_digest_of(path: &str) -> Option<&str> {
    let path = path.split('?').next()?;
    let (prefix, digest) = path.rsplit_once("/blobs/")?;
    (prefix.starts_with("/v2/") && digest.starts_with("sha256:") && !digest.contains('/'))
        .then_some(digest)
}

const MAX_HEAD: usize = 64 * 1024;

/// Reads up to and including the blank line ending an HTTP head; returns the head and any
/// bytes read past it.
async fn read_head<R: AsyncRead + Unpin>(stream: &mut R) -> Result<(String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        if buf.len() > MAX_HEAD {
            bail!("HTTP head larger than {MAX_HEAD} bytes");
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed before the end of the HTTP head");
        }
        buf.extend_from_slice(&chunk[..n]);
        if !buf[0].is_ascii_alphabetic() {
            // E.g. a TLS ClientHello (0x16) from a client trying HTTPS first.
            return Err(NotHttp.into());
        }
    }
}

struct Head {
    start_line: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(text: &str) -> Result<Head> {
        let mut lines = text.split("\r\n");
        let start_line = lines.next().context("empty HTTP head")?.to_string();
        let headers = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Ok(Head {
            start_line,
            headers,
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }

    fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    /// The head with hop-by-hop connection headers replaced by `Connection: close`.
    fn render_closing(&self) -> String {
        let mut out = format!("{}\r\n", self.start_line);
        for (k, v) in &self.headers {
            if ["connection", "keep-alive", "proxy-connection"]
                .iter()
                .any(|h| k.eq_ignore_ascii_case(h))
            {
                continue;
            }
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("Connection: close\r\n\r\n");
        out
    }
}

/// The peer does not speak HTTP/1.x.
#[derive(Debug)]
struct NotHttp;

impl std::fmt::Display for NotHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not an HTTP/1.x request")
    }
}

impl std::error::Error for NotHttp {}

async fn handle(mut client: TcpStream, shared: Arc<Shared>) -> Result<()> {
    let (request_text, request_rest) = match read_head(&mut client).await {
        Ok(head) => head,
        Err(err) => {
            // Answer like a plain HTTP server would (Go's answers 400 to a TLS handshake), so
            // that a client probing HTTPS first fails fast instead of timing out.
            let _ = client
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            let _ = client.shutdown().await;
            return Err(err);
        }
    };
    let request = Head::parse(&request_text)?;
    let mut parts = request.start_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();

    let mut upstream = match TcpStream::connect(shared.upstream).await {
        Ok(s) => s,
        Err(err) => {
            shared.push_log(LoggedRequest {
                method,
                path,
                status: 0,
                body_bytes: 0,
                fault: BlobFault::None,
                complete: false,
            });
            let _ = client
                .write_all(
                    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            return Err(err.into());
        }
    };
    upstream
        .write_all(request.render_closing().as_bytes())
        .await?;
    if request.is_chunked() {
        // Rare for pulls: tunnel the rest untouched.
        upstream.write_all(&request_rest).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    let body_len = request.content_length().unwrap_or(0);
    let first = request_rest
        .len()
        .min(usize::try_from(body_len).unwrap_or(usize::MAX));
    upstream.write_all(&request_rest[..first]).await?;
    let remaining = body_len - first as u64;
    if remaining > 0 {
        tokio::io::copy(&mut (&mut client).take(remaining), &mut upstream).await?;
    }

    let (response_text, response_rest) = read_head(&mut upstream).await?;
    let response = Head::parse(&response_text)?;
    let status: u16 = response
        .start_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let no_body =
        method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304;
    let body_len = if no_body {
        Some(0)
    } else if response.is_chunked() {
        None
    } else {
        response.content_length()
    };

    let behavior = shared.behavior();
    let blob = (method == "GET" && (status == 200 || status == 206))
        .then(|| blob_digest_of(&path))
        .flatten();
    let fault = match blob {
        Some(digest)
            if behavior
                .only
                .as_ref()
                .is_none_or(|only| only.iter().any(|d| d == digest)) =>
        {
            behavior.fault
        }
        _ => BlobFault::None,
    };
    let throttle = blob.and(behavior.blob_bytes_per_sec);
    let log_index = shared.push_log(LoggedRequest {
        method,
        path,
        status,
        body_bytes: 0,
        fault,
        complete: false,
    });

    client
        .write_all(response.render_closing().as_bytes())
        .await?;
    let outcome = forward_body(
        &mut upstream,
        &mut client,
        response_rest,
        body_len,
        fault,
        throttle,
        &shared,
        log_index,
    )
    .await;
    let _ = client.shutdown().await;
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn forward_body(
    upstream: &mut TcpStream,
    client: &mut TcpStream,
    first: Vec<u8>,
    body_len: Option<u64>,
    fault: BlobFault,
    throttle: Option<u64>,
    shared: &Shared,
    log_index: usize,
) -> Result<()> {
    let corrupt_at = match (fault, body_len) {
        (BlobFault::Corrupt, Some(len)) if len > 0 => Some(len / 2),
        (BlobFault::Corrupt, _) => Some(0),
        _ => None,
    };
    let limit = match fault {
        BlobFault::Stall { after } | BlobFault::Cut { after } => Some(after),
        _ => None,
    };
    let mut sent: u64 = 0;
    let mut pending = first;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if body_len.is_some_and(|len| sent >= len) {
            break;
        }
        let mut chunk = if pending.is_empty() {
            let n = upstream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            buf[..n].to_vec()
        } else {
            std::mem::take(&mut pending)
        };
        if let Some(len) = body_len {
            chunk.truncate(usize::try_from(len - sent).unwrap_or(usize::MAX));
        }
        if let Some(at) = corrupt_at
            && at >= sent
            && at < sent + chunk.len() as u64
        {
            chunk[(at - sent) as usize] ^= 0xff;
        }
        if let Some(limit) = limit
            && sent + chunk.len() as u64 >= limit
            && body_len.is_none_or(|len| limit < len)
        {
            let keep = (limit - sent) as usize;
            client.write_all(&chunk[..keep]).await?;
            client.flush().await?;
            sent += keep as u64;
            shared.update_log(log_index, |e| e.body_bytes = sent);
            if let BlobFault::Stall { .. } = fault {
                stall(client, shared).await;
            }
            return Ok(());
        }
        client.write_all(&chunk).await?;
        sent += chunk.len() as u64;
        shared.update_log(log_index, |e| e.body_bytes = sent);
        if let Some(rate) = throttle
            && rate > 0
        {
            tokio::time::sleep(Duration::from_secs_f64(chunk.len() as f64 / rate as f64)).await;
        }
    }
    client.flush().await?;
    shared.update_log(log_index, |e| {
        e.complete = body_len.is_none_or(|len| sent >= len)
    });
    Ok(())
}

/// Holds a stalled response until the client goes away or the test releases it.
async fn stall(client: &mut TcpStream, shared: &Shared) {
    let mut release = shared.release.subscribe();
    let count = shared.stalled.fetch_add(1, Ordering::SeqCst) + 1;
    shared.stalled_changed.send_replace(count);
    let mut buf = [0u8; 1024];
    tokio::select! {
        _ = release.changed() => {}
        _ = async {
            loop {
                match client.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::blob_digest_of;

    #[test]
    fn blob_paths_yield_their_digest() {
        assert_eq!(
            blob_digest_of("/v2/e2e/single/blobs/sha256:abcd?ns=x"),
            Some("sha256:abcd")
        );
        assert_eq!(blob_digest_of("/v2/e2e/single/manifests/latest"), None);
        assert_eq!(blob_digest_of("/v2/e2e/blobs/uploads/"), None);
    }
}
