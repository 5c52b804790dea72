//! The Prometheus endpoint: `GET /metrics` on `[metrics] address:port`, plain HTTP/1.1 (hyper),
//! started by the daemon when `[metrics] enable` is set: the `telemetry` registry, with the pods and
//! containers counted by state from the engine's tables at each scrape.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::engine::Engine;
use crate::telemetry::States;

/// The OpenMetrics text format `prometheus-client` writes.
const CONTENT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `address:port` of the configuration (validated: the address is an IP).
pub fn socket_addr(config: &crate::config::MetricsConfig) -> Result<SocketAddr, String> {
    let ip: std::net::IpAddr = config
        .address
        .parse()
        .map_err(|e| format!("metrics.address {:?}: {e}", config.address))?;
    Ok(SocketAddr::new(ip, config.port))
}

/// Binds the endpoint (so a taken port fails start-up) and serves it on a task of its own.
pub async fn start(addr: SocketAddr, engine: Arc<Engine>) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("metrics endpoint {addr}: {e}"))?;
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(address = %bound, "serving Prometheus metrics on /metrics");
    tokio::spawn(serve(listener, engine));
    Ok(bound)
}

async fn serve(listener: TcpListener, engine: Arc<Engine>) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::warn!("metrics endpoint: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let engine = engine.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let engine = engine.clone();
                async move { Ok::<_, Infallible>(handle(&engine, req).await) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
            if let Err(e) = served {
                tracing::debug!("metrics endpoint: connection: {e}");
            }
        });
    }
}

async fn handle(engine: &Arc<Engine>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: the metrics are at /metrics",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics");
    }
    // Counting the containers' states reads exit files: off the async threads.
    let engine = engine.clone();
    let render = move || crate::telemetry::metrics().render(&states(&engine));
    let text = match tokio::task::spawn_blocking(render).await {
        Ok(text) => text,
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT));
    response
}

/// The pods and containers by state, from the tables now.
fn states(engine: &Engine) -> States {
    use crate::api::{ContainerState, PodSandboxState};
    let mut pods = [("ready", 0), ("notready", 0)];
    for s in engine.sandboxes() {
        let record = s.record();
        if crate::sandbox::status::visible(&record) {
            match crate::sandbox::status::state(&record) {
                PodSandboxState::SandboxReady => pods[0].1 += 1,
                PodSandboxState::SandboxNotready => pods[1].1 += 1,
            }
        }
    }
    let mut containers = [
        ("created", 0),
        ("running", 0),
        ("exited", 0),
        ("unknown", 0),
    ];
    for c in engine.containers() {
        if crate::container::status::visible(&c.record()) {
            let i = match crate::container::status::state(engine, &c).0 {
                ContainerState::ContainerCreated => 0,
                ContainerState::ContainerRunning => 1,
                ContainerState::ContainerExited => 2,
                ContainerState::ContainerUnknown => 3,
            };
            containers[i].1 += 1;
        }
    }
    States {
        pods: pods.to_vec(),
        containers: containers.to_vec(),
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *response.status_mut() = status;
    response
}
