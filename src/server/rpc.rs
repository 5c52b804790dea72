//! What every RPC shares: a request id in the tracing span, a panic fence, one info line per
//! mutating call with its duration, and at debug level its phases (`crate::phases`).

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
    let outcome = AssertUnwindSafe(crate::phases::traced(rpc, &span, handler))
        .catch_unwind()
        .instrument(span.clone())
        .await;
    let result = outcome.unwrap_or_else(|panic| {
        let what = panic_message(&panic);
        tracing::error!(parent: &span, "{rpc} panicked: {what}");
        Err(Status::internal(format!("{rpc}: internal error: {what}")))
    });
    // An error never echoes a whole oversized input back in a header (see `validate::bounded`).
    let result = result.map_err(|status| match crate::validate::bounded(status.message()) {
        std::borrow::Cow::Borrowed(_) => status,
        std::borrow::Cow::Owned(message) => Status::new(status.code(), message),
    });
    let elapsed = started.elapsed();
    crate::telemetry::rpc_done(rpc, elapsed, &result);
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

/// Largest encoded size crius aims for in one message of a `Stream*` RPC: well under gRPC's
/// usual 4 MiB receive limit, which is what those RPCs exist to avoid hitting.
pub const STREAM_BATCH_BYTES: usize = 1 << 20;

/// Splits `items` into consecutive batches whose encoded size stays within `max_bytes`. An item
/// larger than that travels alone. No batch is empty, so an empty list gives no batch: the
/// `Stream*` RPCs send at least one item per message.
pub fn batches<T: prost::Message>(items: Vec<T>, max_bytes: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut batch = Vec::new();
    let mut size = 0;
    for item in items {
        // The item's size as a repeated field: tag byte, length prefix and body.
        let len = item.encoded_len();
        let cost = 1 + prost::encoding::encoded_len_varint(len as u64) + len;
        if !batch.is_empty() && size + cost > max_bytes {
            out.push(std::mem::take(&mut batch));
            size = 0;
        }
        batch.push(item);
        size += cost;
    }
    if !batch.is_empty() {
        out.push(batch);
    }
    out
}

/// The answer of a `Stream*` RPC: the items of its unary `List*` twin, in bounded batches, each
/// wrapped by `wrap` into one response message.
pub fn stream_of<T, R>(items: Vec<T>, wrap: fn(Vec<T>) -> R) -> ServerStream<R>
where
    T: prost::Message,
    R: Send + 'static,
{
    let messages: Vec<Result<R, Status>> = batches(items, STREAM_BATCH_BYTES)
        .into_iter()
        .map(|batch| Ok(wrap(batch)))
        .collect();
    Box::pin(futures::stream::iter(messages))
}

/// The answer of an RPC that crius does not support, with the reason.
pub fn unsupported<T>(rpc: &'static str, why: &str) -> Result<T, Status> {
    Err(Status::unimplemented(format!(
        "{rpc} is not supported by crius: {why}"
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
    async fn a_panic_in_a_detached_lifecycle_task_becomes_internal() {
        let result: Result<Response<()>, Status> = serve("Boom", Kind::Mutation, async {
            crate::lifecycle::detached(async {
                panic!("kaboom") as Result<(), crate::engine::PodError>
            })
            .await
            .map_err(Status::from)
        })
        .await;
        let status = result.err().map(|s| (s.code(), s.message().to_string()));
        assert_eq!(
            status,
            Some((
                tonic::Code::Internal,
                "Boom: internal error: kaboom".to_string()
            ))
        );
    }

    fn item(text: &str) -> crate::api::KeyValue {
        crate::api::KeyValue {
            key: text.into(),
            value: Vec::new(),
        }
    }

    #[test]
    fn batches_keep_order_and_stay_within_the_size() {
        // Each item costs 1 (tag) + 1 (length) + 2 + 10 (key field) = 14 bytes.
        let items: Vec<_> = (0..10).map(|i| item(&format!("key-{i:05}"))).collect();
        let got = batches(items.clone(), 30);
        assert!(got.iter().all(|b| b.len() == 2));
        assert_eq!(got.concat(), items);
    }

    #[test]
    fn an_item_bigger_than_a_batch_travels_alone() {
        let big = item(&"x".repeat(100));
        let got = batches(vec![item("a"), big.clone(), item("b")], 20);
        assert_eq!(got, vec![vec![item("a")], vec![big], vec![item("b")]]);
    }

    #[test]
    fn nothing_to_send_gives_no_batch() {
        assert!(batches(Vec::<crate::api::KeyValue>::new(), 10).is_empty());
    }

    #[tokio::test]
    async fn stream_of_sends_every_item_once() {
        use futures::StreamExt;
        let items: Vec<_> = (0..3).map(|i| item(&i.to_string())).collect();
        let sent: Vec<_> = stream_of(items.clone(), |b| b).collect().await;
        let sent: Vec<_> = sent
            .into_iter()
            .flat_map(|r| r.unwrap_or_default())
            .collect();
        assert_eq!(sent, items);
    }

    #[test]
    fn unsupported_names_the_rpc_and_why() {
        let status = unsupported::<()>("CheckpointContainer", "no CRIU").err();
        assert!(
            status.is_some_and(|s| s.code() == tonic::Code::Unimplemented
                && s.message().contains("CheckpointContainer")
                && s.message().contains("no CRIU"))
        );
    }
}
