//! One log line for every call crius answers with UNIMPLEMENTED: its own `not_yet!` RPCs and
//! methods it does not know at all (which tonic's generated router answers without running any
//! crius code). An operator whose kubelet falls back silently can then see why.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http;
use tower::{Layer, Service};

/// gRPC's UNIMPLEMENTED, as it appears in a trailers-only response's headers.
const UNIMPLEMENTED: &str = "12";

#[derive(Debug, Clone, Copy, Default)]
pub struct LogUnimplemented;

impl<S> Layer<S> for LogUnimplemented {
    type Service = LogUnimplementedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LogUnimplementedService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct LogUnimplementedService<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for LogUnimplementedService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            if let Some(message) = unimplemented_message(response.headers()) {
                tracing::info!(
                    rpc = path.as_str(),
                    "{path} answered UNIMPLEMENTED: {message}"
                );
            }
            Ok(response)
        })
    }
}

/// The message of an UNIMPLEMENTED answer, if `headers` are one.
fn unimplemented_message(headers: &http::HeaderMap) -> Option<String> {
    if headers.get("grpc-status")? != UNIMPLEMENTED {
        return None;
    }
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(percent_decode)
        .unwrap_or_else(|| "method not known to crius".to_owned());
    Some(message)
}

/// gRPC percent-encodes `grpc-message`; enough decoding for a log line.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unimplemented_answers_are_picked() {
        let mut h = http::HeaderMap::new();
        assert_eq!(unimplemented_message(&h), None);
        h.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(unimplemented_message(&h), None);
        h.insert("grpc-status", http::HeaderValue::from_static("12"));
        assert_eq!(
            unimplemented_message(&h).as_deref(),
            Some("method not known to crius")
        );
        h.insert(
            "grpc-message",
            http::HeaderValue::from_static("Foo%20is%20not%20implemented"),
        );
        assert_eq!(
            unimplemented_message(&h).as_deref(),
            Some("Foo is not implemented")
        );
    }
}
