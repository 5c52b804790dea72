//! What every RPC shares: a request id in the tracing span, a panic fence, and one info line per
//! mutating call with its duration.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::{FutureExt, Stream};
use tonic::{Response, Status};
use tracing::Instrument;

/// The response stream of a server-streaming RPC.
pub type ServerStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

static NEXT_REQUEST_ID: AtomicU64 = AtomicU64::new(1);

/// Whether an RPC changes state; those are logged at info, the rest at debug.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Query,
    Mutation,
}

/// Runs one RPC handler. A panic inside it becomes an INTERNAL error for this request only.
pub async fn serve<T, F>(rpc: &'static str, kind: Kind, handler: F) -> Result<Response<T>, Status>
where
    F: Future<Output = Result<T, Status>>,
{
    let id = NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("rpc", rpc, id);
    let started = Instant::now();
    let outcome = AssertUnwindSafe(handler)
        .catch_unwind()
        .instrument(span.clone())
        .await;
    let result = outcome.unwrap_or_else(|panic| {
        let what = panic_message(&panic);
        tracing::error!(parent: &span, "{rpc} panicked: {what}");
        Err(Status::internal(format!("{rpc}: internal error: {what}")))
    });
    let elapsed = started.elapsed();
    match (&result, kind) {
        (Ok(_), Kind::Mutation) => tracing::info!(parent: &span, ?elapsed, "{rpc} done"),
        (Ok(_), Kind::Query) => tracing::debug!(parent: &span, ?elapsed, "{rpc} done"),
        (Err(status), _) => tracing::info!(
            parent: &span,
            ?elapsed,
            code = ?status.code(),
            "{rpc} failed: {}",
            status.message()
        ),
    }
    result.map(Response::new)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// The answer of an RPC that a later piece of crius will implement.
pub fn unimplemented<T>(rpc: &'static str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!(
        "{rpc} is not implemented by crius yet"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_becomes_internal() {
        let result: Result<Response<()>, Status> =
            serve("Boom", Kind::Query, async { panic!("kaboom") }).await;
        let status = result.err().map(|s| (s.code(), s.message().to_string()));
        assert_eq!(
            status,
            Some((
                tonic::Code::Internal,
                "Boom: internal error: kaboom".to_string()
            ))
        );
    }

    #[tokio::test]
    async fn unimplemented_names_the_rpc() {
        let status = unimplemented::<()>("RunPodSandbox").err();
        assert!(status.is_some_and(
            |s| s.code() == tonic::Code::Unimplemented && s.message().contains("RunPodSandbox")
        ));
    }
}
