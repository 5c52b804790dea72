//! The HTTP side: accept (optionally TLS), route `/<kind>/<token>`, take the token, choose the
//! upgrade protocol from the client's headers, answer 101 and hand the connection to
//! `session.rs`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{Streaming, StreamingError, session};
use crate::config::StreamingConfig;

/// Protocols in our order of preference is irrelevant: the client's order decides.
const CHANNEL_SPDY: &[&str] = &[
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
/// Every WebSocket protocol the upstream streaming server speaks for exec and attach; the
/// `base64.` ones frame channels as text (`websocket::Framing`).
const CHANNEL_WS: &[&str] = &[
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];
pub const PORTFORWARD: &str = "portforward.k8s.io";
pub const PORTFORWARD_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
/// The upstream server's two (with none named, binary), and the SPDY tunnel of client-go's
/// `--transport websocket`. `portforward.k8s.io` is SPDY's only: over WebSocket upstream
/// refuses it, and so does crius.
const PORTFORWARD_WS: &[&str] = &[
    PORTFORWARD_TUNNEL,
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
];

/// How the client asked to upgrade, with the protocol chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade {
    Spdy(String),
    WebSocket(String),
}

pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, streaming: Arc<Streaming>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("streaming server: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (tls, streaming) = (tls.clone(), streaming.clone());
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => connection(stream, streaming).await,
                    Err(e) => tracing::debug!(%peer, "streaming server: TLS handshake: {e}"),
                },
                None => connection(tcp, streaming).await,
            }
        });
    }
}

async fn connection<IO>(io: IO, streaming: Arc<Streaming>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let streaming = streaming.clone();
        async move { Ok::<_, Infallible>(handle(&streaming, req)) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
    if let Err(e) = served {
        tracing::debug!("streaming server: connection: {e}");
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *response.status_mut() = status;
    response
}

fn handle(streaming: &Arc<Streaming>, mut req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (Some(kind), Some(token)) = (parts.next(), parts.next()) else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    if !matches!(kind, "exec" | "attach" | "portforward") {
        return plain(StatusCode::NOT_FOUND, "not found");
    }
    let Some(pending) = streaming.tokens.take(token).filter(|p| p.kind() == kind) else {
        return plain(
            StatusCode::NOT_FOUND,
            "unknown, used or expired streaming token",
        );
    };
    let upgrade = match negotiate(req.method(), req.headers(), kind == "portforward") {
        Ok(upgrade) => upgrade,
        Err(response) => return *response,
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let mut response = plain(StatusCode::SWITCHING_PROTOCOLS, "");
    *response.body_mut() = Full::new(Bytes::new());
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    match &upgrade {
        Upgrade::Spdy(protocol) => {
            headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
            if let Ok(v) = HeaderValue::from_str(protocol) {
                headers.insert("X-Stream-Protocol-Version", v);
            }
        }
        Upgrade::WebSocket(protocol) => {
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            let key = req
                .headers()
                .get(header::SEC_WEBSOCKET_KEY)
                .map(|k| k.as_bytes())
                .unwrap_or_default();
            let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key);
            if let Ok(v) = HeaderValue::from_str(&accept) {
                headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
            }
            // With none named upstream answers an empty `Sec-WebSocket-Protocol:`; crius names
            // none, as RFC 6455 has it: strict clients refuse a protocol they did not offer.
            if !protocol.is_empty()
                && let Ok(v) = HeaderValue::from_str(protocol)
            {
                headers.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
            }
        }
    }
    let engine = streaming.engine.clone();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => session::run(engine, pending, upgrade, upgraded).await,
            Err(e) => tracing::debug!("streaming server: upgrade: {e}"),
        }
    });
    response
}

/// Values of a header that may be repeated and comma-separated.
fn list(headers: &HeaderMap, name: impl header::AsHeaderName + Clone) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The upgrade the client asked for, with the first protocol of its list that we speak.
/// Refusals answer as the upstream server does: no `Connection: Upgrade` 400; WebSocket other
/// than by GET 405, without a key 400, of a version other than 13 400 (naming 13); no protocol
/// in common 403.
fn negotiate(
    method: &Method,
    headers: &HeaderMap,
    portforward: bool,
) -> Result<Upgrade, Box<Response<Full<Bytes>>>> {
    let bad = |text: &str| Err(Box::new(plain(StatusCode::BAD_REQUEST, text)));
    let upgrade = list(headers, header::UPGRADE);
    let is = |what: &str| upgrade.iter().any(|u| u.eq_ignore_ascii_case(what));
    let connection = list(headers, header::CONNECTION);
    if !connection.iter().any(|c| c.eq_ignore_ascii_case("upgrade")) {
        return bad("missing upgrade headers in request");
    }
    let (offered, supported, websocket) = if is("websocket") {
        if method != Method::GET {
            return Err(Box::new(plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "a WebSocket upgrade is a GET",
            )));
        }
        if headers.get(header::SEC_WEBSOCKET_KEY).is_none() {
            return bad("missing Sec-WebSocket-Key");
        }
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|v| v.as_bytes() != b"13")
        {
            let mut response = plain(StatusCode::BAD_REQUEST, "unsupported WebSocket version");
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            return Err(Box::new(response));
        }
        let supported = if portforward {
            PORTFORWARD_WS
        } else {
            CHANNEL_WS
        };
        (
            list(headers, header::SEC_WEBSOCKET_PROTOCOL),
            supported,
            true,
        )
    } else if is("SPDY/3.1") {
        let supported: &[&str] = if portforward {
            &[PORTFORWARD]
        } else {
            CHANNEL_SPDY
        };
        (list(headers, "X-Stream-Protocol-Version"), supported, false)
    } else {
        return bad("expected an upgrade to SPDY/3.1 or websocket");
    };
    let chosen = offered
        .iter()
        .find(|p| supported.contains(&p.as_str()))
        .cloned()
        // A SPDY client naming no protocol speaks the first version of its kind; a WebSocket
        // one gets binary channels of the first version, as from the upstream server.
        .or_else(|| match (websocket, offered.is_empty()) {
            (false, true) => Some(supported[supported.len() - 1].to_owned()),
            (true, true) => Some(String::new()),
            _ => None,
        });
    match chosen {
        Some(p) if websocket => Ok(Upgrade::WebSocket(p)),
        Some(p) => Ok(Upgrade::Spdy(p)),
        None => {
            let mut response = plain(
                StatusCode::FORBIDDEN,
                &format!(
                    "no supported protocol in {offered:?}; supported: {}",
                    supported.join(", ")
                ),
            );
            for p in supported {
                response.headers_mut().append(
                    "X-Accepted-Stream-Protocol-Versions",
                    HeaderValue::from_static(p),
                );
            }
            Err(Box::new(response))
        }
    }
}

/// The TLS acceptor of the configured certificate, if any.
pub fn tls_acceptor(config: &StreamingConfig) -> Result<Option<TlsAcceptor>, StreamingError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    if !config.tls() {
        return Ok(None);
    }
    let err = |what: &str, e: &dyn std::fmt::Display| StreamingError::Tls(format!("{what}: {e}"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.tls_cert)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| err(&config.tls_cert.display().to_string(), &e))?;
    let key = PrivateKeyDer::from_pem_file(&config.tls_key)
        .map_err(|e| err(&config.tls_key.display().to_string(), &e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err("protocol versions", &e))?;
    let builder = if config.tls_client_ca.as_os_str().is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&config.tls_client_ca)
            .map_err(|e| err(&config.tls_client_ca.display().to_string(), &e))?
        {
            let cert = cert.map_err(|e| err(&config.tls_client_ca.display().to_string(), &e))?;
            roots
                .add(cert)
                .map_err(|e| err(&config.tls_client_ca.display().to_string(), &e))?;
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| err("client CA", &e))?;
        builder.with_client_cert_verifier(verifier)
    };
    let server = builder
        .with_single_cert(certs, key)
        .map_err(|e| err("certificate", &e))?;
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    /// A WebSocket handshake offering `protocol` (none if empty).
    fn websocket(protocol: &'static str) -> HeaderMap {
        let mut h = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ]);
        if !protocol.is_empty() {
            h.insert("sec-websocket-protocol", HeaderValue::from_static(protocol));
        }
        h
    }

    fn ws(protocol: &'static str, portforward: bool) -> Result<Upgrade, StatusCode> {
        negotiate(&Method::GET, &websocket(protocol), portforward).map_err(|r| r.status())
    }

    #[test]
    fn the_clients_first_supported_protocol_wins() {
        let h = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v5.channel.k8s.io"),
            ("x-stream-protocol-version", "v4.channel.k8s.io"),
            ("x-stream-protocol-version", "v3.channel.k8s.io"),
        ]);
        assert_eq!(
            negotiate(&Method::POST, &h, false).unwrap(),
            Upgrade::Spdy("v4.channel.k8s.io".into())
        );
        assert_eq!(
            ws("v5.channel.k8s.io, v4.channel.k8s.io", false),
            Ok(Upgrade::WebSocket("v5.channel.k8s.io".into()))
        );
        assert_eq!(
            ws(
                "v9.channel.k8s.io, base64.channel.k8s.io, channel.k8s.io",
                false
            ),
            Ok(Upgrade::WebSocket("base64.channel.k8s.io".into()))
        );
        assert_eq!(
            ws("SPDY/3.1+portforward.k8s.io", true),
            Ok(Upgrade::WebSocket(PORTFORWARD_TUNNEL.into()))
        );
        let h = headers(&[("connection", "Upgrade"), ("upgrade", "SPDY/3.1")]);
        assert_eq!(
            negotiate(&Method::GET, &h, true).unwrap(),
            Upgrade::Spdy(PORTFORWARD.into())
        );
    }

    #[test]
    fn websocket_speaks_every_protocol_of_the_upstream_server() {
        for offered in [
            "v5.channel.k8s.io",
            "v4.channel.k8s.io",
            "v4.base64.channel.k8s.io",
            "channel.k8s.io",
            "base64.channel.k8s.io",
        ] {
            assert_eq!(ws(offered, false), Ok(Upgrade::WebSocket(offered.into())));
        }
        for offered in ["v4.channel.k8s.io", "v4.base64.channel.k8s.io"] {
            assert_eq!(ws(offered, true), Ok(Upgrade::WebSocket(offered.into())));
        }
        // No protocol at all: binary channels, as upstream.
        assert_eq!(ws("", false), Ok(Upgrade::WebSocket(String::new())));
        assert_eq!(ws("", true), Ok(Upgrade::WebSocket(String::new())));
    }

    #[test]
    fn refusals_answer_as_the_upstream_server() {
        let h = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v9.channel.k8s.io"),
        ]);
        let refused = negotiate(&Method::POST, &h, false).unwrap_err();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(
            refused
                .headers()
                .contains_key("x-accepted-stream-protocol-versions")
        );
        // WebSocket: protocols of another kind, or of no kind, are 403.
        for (offered, portforward) in [
            ("v1.channel.k8s.io", false),
            ("v5.channel.k8s.io", true),
            ("channel.k8s.io", true),
            ("base64.channel.k8s.io", true),
            ("portforward.k8s.io", true),
            ("portforward.k8s.io", false),
            ("SPDY/3.1+portforward.k8s.io", false),
        ] {
            assert_eq!(
                ws(offered, portforward),
                Err(StatusCode::FORBIDDEN),
                "{offered} (port forward: {portforward})"
            );
        }
        let mut h = websocket("v4.channel.k8s.io");
        assert_eq!(
            negotiate(&Method::POST, &h, false).unwrap_err().status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        h.insert("sec-websocket-version", HeaderValue::from_static("8"));
        let refused = negotiate(&Method::GET, &h, false).unwrap_err();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert_eq!(refused.headers()["sec-websocket-version"], "13");
        h.remove("sec-websocket-version");
        assert_eq!(
            negotiate(&Method::GET, &h, false).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        let mut h = websocket("v4.channel.k8s.io");
        h.remove("sec-websocket-key");
        assert_eq!(
            negotiate(&Method::GET, &h, false).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        let mut h = websocket("v4.channel.k8s.io");
        h.remove("connection");
        assert_eq!(
            negotiate(&Method::GET, &h, false).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            negotiate(&Method::GET, &headers(&[]), false)
                .unwrap_err()
                .status(),
            StatusCode::BAD_REQUEST
        );
    }
}
