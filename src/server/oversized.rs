//! A request larger than `[api] grpc_max_recv_msg_size` (16 MiB by default, as containerd's) is
//! answered RESOURCE_EXHAUSTED, as grpc-go answers it to the kubelet and crictl. tonic's decoder
//! refuses such a message before any handler runs, but with OUT_OF_RANGE; this layer rewrites
//! that one answer's code in the trailers-only response's headers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http;
use tower::{Layer, Service};

/// gRPC's OUT_OF_RANGE and RESOURCE_EXHAUSTED, as they appear in a `grpc-status` header.
const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

/// What tonic's decoder says of a message over the limit (percent-encoded in the header).
const TOO_LARGE: &str = "decoded%20message%20length%20too%20large";

#[derive(Debug, Clone, Copy, Default)]
pub struct OversizedRequests;

impl<S> Layer<S> for OversizedRequests {
    type Service = OversizedRequestsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OversizedRequestsService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct OversizedRequestsService<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for OversizedRequestsService<S>
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
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            resource_exhausted_if_too_large(response.headers_mut());
            Ok(response)
        })
    }
}

/// Turns tonic's OUT_OF_RANGE "decoded message length too large" into RESOURCE_EXHAUSTED.
fn resource_exhausted_if_too_large(headers: &mut http::HeaderMap) {
    let too_large = headers
        .get("grpc-status")
        .is_some_and(|s| s == OUT_OF_RANGE)
        && headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| m.contains(TOO_LARGE) || m.contains("message length too large"));
    if too_large {
        headers.insert(
            "grpc-status",
            http::HeaderValue::from_static(RESOURCE_EXHAUSTED),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(status: &'static str, message: &'static str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", http::HeaderValue::from_static(status));
        h.insert("grpc-message", http::HeaderValue::from_static(message));
        h
    }

    #[test]
    fn an_oversized_request_is_resource_exhausted() {
        let mut h = headers(
            "11",
            "Error,%20decoded%20message%20length%20too%20large:%20found%2020000010%20bytes,%20the%20limit%20is:%2016777216%20bytes",
        );
        resource_exhausted_if_too_large(&mut h);
        assert_eq!(h["grpc-status"], "8");
    }

    #[test]
    fn other_answers_are_left_alone() {
        let mut h = headers("11", "something%20else");
        resource_exhausted_if_too_large(&mut h);
        assert_eq!(h["grpc-status"], "11");
        let mut h = headers("3", "decoded%20message%20length%20too%20large");
        resource_exhausted_if_too_large(&mut h);
        assert_eq!(h["grpc-status"], "3");
    }
}
