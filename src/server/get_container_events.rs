//! `GetContainerEvents`: every container and sandbox transition from now on, each with the
//! pod's statuses, as a stream that lasts until the client leaves or the daemon stops.
//!
//! A subscriber that falls more than `[runtime] container_events_buffer` events behind gets
//! RESOURCE_EXHAUSTED and its stream ends: the kubelet then relists and subscribes again (as
//! after a daemon restart, which ends every stream), so a lost event never goes unnoticed.

use tonic::Status;

use super::CriServer;
use super::rpc::ServerStream;
use crate::api;
use crate::events::{Lagged, Subscription};

pub async fn handle(
    server: &CriServer,
    _request: api::GetEventsRequest,
) -> Result<ServerStream<api::ContainerEventResponse>, Status> {
    let subscription = server.engine.events.subscribe();
    Ok(Box::pin(futures::stream::unfold(
        Some(subscription),
        next_event,
    )))
}

/// One item of the stream; `None` as the state once the stream has ended with an error.
async fn next_event(
    state: Option<Subscription>,
) -> Option<(
    Result<api::ContainerEventResponse, Status>,
    Option<Subscription>,
)> {
    let mut subscription = state?;
    match subscription.next().await {
        Ok(Some(event)) => Some((Ok(event.as_ref().clone()), Some(subscription))),
        Ok(None) => None,
        Err(Lagged(lost)) => {
            tracing::warn!(
                "a GetContainerEvents subscriber fell {lost} events behind; ending its stream"
            );
            Some((
                Err(Status::resource_exhausted(format!(
                    "GetContainerEvents: this subscriber fell {lost} events behind \
                     (runtime.container_events_buffer); relist and subscribe again"
                ))),
                None,
            ))
        }
    }
}
