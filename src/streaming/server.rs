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
use hyper::{Request, Response, StatusCode};
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
const PORTFORWARD_WS: &[&str] = &[
    PORTFORWARD_TUNNEL,
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    PORTFORWARD,
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
    let upgrade = match negotiate(req.headers(), kind == "portforward") {
        Ok(upgrade) => upgrade,
        Err(response) => return *response,
    };
    let query = req.uri().query().unwrap_or("").to_owned();
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
            Ok(upgraded) => session::run(engine, pending, upgrade, upgraded, &query).await,
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
fn negotiate(
    headers: &HeaderMap,
    portforward: bool,
) -> Result<Upgrade, Box<Response<Full<Bytes>>>> {
    let upgrade = list(headers, header::UPGRADE);
    let is = |what: &str| upgrade.iter().any(|u| u.eq_ignore_ascii_case(what));
    let (offered, supported, websocket) = if is("websocket") {
        if headers.get(header::SEC_WEBSOCKET_KEY).is_none() {
            return Err(Box::new(plain(
                StatusCode::BAD_REQUEST,
                "missing Sec-WebSocket-Key",
            )));
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
        return Err(Box::new(plain(
            StatusCode::BAD_REQUEST,
            "expected an upgrade to SPDY/3.1 or websocket",
        )));
    };
    let chosen = offered
        .iter()
        .find(|p| supported.contains(&p.as_str()))
        .cloned()
        // A SPDY client naming no protocol speaks the first version of its kind; a WebSocket
        // one gets binary channels and no protocol header, as from the upstream server.
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

    #[test]
    fn the_clients_first_supported_protocol_wins() {
        let h = headers(&[
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v5.channel.k8s.io"),
            ("x-stream-protocol-version", "v4.channel.k8s.io"),
            ("x-stream-protocol-version", "v3.channel.k8s.io"),
        ]);
        assert_eq!(
            negotiate(&h, false).unwrap(),
            Upgrade::Spdy("v4.channel.k8s.io".into())
        );
        let h = headers(&[
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            (
                "sec-websocket-protocol",
                "v5.channel.k8s.io, v4.channel.k8s.io",
            ),
        ]);
        assert_eq!(
            negotiate(&h, false).unwrap(),
            Upgrade::WebSocket("v5.channel.k8s.io".into())
        );
        let h = headers(&[
            ("upgrade", "websocket"),
            ("sec-websocket-key", "x"),
            ("sec-websocket-protocol", "SPDY/3.1+portforward.k8s.io"),
        ]);
        assert_eq!(
            negotiate(&h, true).unwrap(),
            Upgrade::WebSocket(PORTFORWARD_TUNNEL.into())
        );
        let h = headers(&[("upgrade", "SPDY/3.1")]);
        assert_eq!(
            negotiate(&h, true).unwrap(),
            Upgrade::Spdy(PORTFORWARD.into())
        );
    }

    #[test]
    fn websocket_speaks_the_legacy_and_base64_protocols() {
        for (offered, portforward) in [
            ("channel.k8s.io", false),
            ("base64.channel.k8s.io", false),
            ("v4.base64.channel.k8s.io", false),
            ("v4.base64.channel.k8s.io", true),
            ("portforward.k8s.io", true),
        ] {
            let mut h = headers(&[("upgrade", "websocket"), ("sec-websocket-key", "x")]);
            h.insert("sec-websocket-protocol", HeaderValue::from_static(offered));
            assert_eq!(
                negotiate(&h, portforward).unwrap(),
                Upgrade::WebSocket(offered.into())
            );
        }
        // No protocol at all: binary channels, as upstream.
        let h = headers(&[("upgrade", "websocket"), ("sec-websocket-key", "x")]);
        assert_eq!(
            negotiate(&h, false).unwrap(),
            Upgrade::WebSocket(String::new())
        );
    }

    #[test]
    fn unknown_protocols_are_refused() {
        let h = headers(&[
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v9.channel.k8s.io"),
        ]);
        assert_eq!(
            negotiate(&h, false).unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            negotiate(&headers(&[]), false).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }
}
