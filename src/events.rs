//! The container events hub behind `GetContainerEvents`: lifecycle steps publish each
//! transition of a container or sandbox (CREATED, STARTED, STOPPED, DELETED) with the pod's
//! statuses, and every subscriber gets every event, in order.
//!
//! One `tokio::sync::broadcast` ring of `[runtime] container_events_buffer` events is shared by
//! all subscribers, so memory is bounded whatever they do: publishing never waits (a full ring
//! overwrites its oldest event), and a subscriber that falls a whole ring behind is told so —
//! its [`Subscription::next`] answers [`Lagged`] once, and the RPC ends its stream with an error,
//! so the kubelet relists (as it does when cri-o's event channel overflows) rather than missing
//! a transition without knowing. With no subscriber, [`Events::wanted`] is false and the lifecycle
//! steps build no statuses at all.
//!
//! Events live only in memory: a daemon restart ends every stream, and a kubelet that
//! reconnects relists, which is how it learns what changed while the daemon was down.
//!
//! A leaf: it knows the CRI message and nothing of crius' tables; `container/events.rs` builds
//! the messages.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use crate::api;

/// The hub; cheap to share (`Engine::events`).
pub struct Events {
    sender: broadcast::Sender<Arc<api::ContainerEventResponse>>,
    /// Set when the daemon stops: every stream ends, so tonic's graceful stop need not wait.
    closed: watch::Sender<bool>,
}

/// One subscriber's place in the ring.
pub struct Subscription {
    receiver: broadcast::Receiver<Arc<api::ContainerEventResponse>>,
    closed: watch::Receiver<bool>,
}

/// The subscriber fell more than a ring behind: this many events were lost to it.
#[derive(Debug, PartialEq, Eq)]
pub struct Lagged(pub u64);

impl Events {
    /// A hub keeping the last `capacity` events for subscribers that are behind.
    pub fn new(capacity: usize) -> Events {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Events {
            sender,
            closed: watch::Sender::new(false),
        }
    }

    /// Whether anyone listens: lifecycle steps build an event only then.
    pub fn wanted(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    /// Hands `event` to every current subscriber; never waits.
    pub fn publish(&self, event: api::ContainerEventResponse) {
        // An error only says nobody listens any more.
        let _ = self.sender.send(Arc::new(event));
    }

    /// A subscriber that sees every event published from now on.
    pub fn subscribe(&self) -> Subscription {
        Subscription {
            receiver: self.sender.subscribe(),
            closed: self.closed.subscribe(),
        }
    }

    /// Ends every subscriber's stream (the daemon is stopping).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }
}

impl Subscription {
    /// The next event; `Ok(None)` when the hub is gone (the daemon stops), `Err` once if this
    /// subscriber fell behind (then the events after the lost ones follow).
    pub async fn next(&mut self) -> Result<Option<Arc<api::ContainerEventResponse>>, Lagged> {
        let received = tokio::select! {
            received = self.receiver.recv() => received,
            _ = self.closed.wait_for(|closed| *closed) => return Ok(None),
        };
        match received {
            Ok(event) => Ok(Some(event)),
            Err(broadcast::error::RecvError::Closed) => Ok(None),
            Err(broadcast::error::RecvError::Lagged(lost)) => Err(Lagged(lost)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, kind: api::ContainerEventType) -> api::ContainerEventResponse {
        api::ContainerEventResponse {
            container_id: id.to_owned(),
            container_event_type: kind as i32,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn every_subscriber_sees_every_event_in_order() {
        let hub = Events::new(16);
        let mut a = hub.subscribe();
        let mut b = hub.subscribe();
        let kinds = [
            api::ContainerEventType::ContainerCreatedEvent,
            api::ContainerEventType::ContainerStartedEvent,
            api::ContainerEventType::ContainerStoppedEvent,
            api::ContainerEventType::ContainerDeletedEvent,
        ];
        for kind in kinds {
            hub.publish(event("c1", kind));
        }
        for sub in [&mut a, &mut b] {
            for kind in kinds {
                let got = sub.next().await.unwrap().unwrap();
                assert_eq!(got.container_id, "c1");
                assert_eq!(got.container_event_type, kind as i32);
            }
        }
    }

    #[tokio::test]
    async fn a_subscriber_sees_only_what_comes_after_it_subscribed() {
        let hub = Events::new(4);
        hub.publish(event(
            "early",
            api::ContainerEventType::ContainerCreatedEvent,
        ));
        let mut sub = hub.subscribe();
        hub.publish(event(
            "late",
            api::ContainerEventType::ContainerCreatedEvent,
        ));
        assert_eq!(sub.next().await.unwrap().unwrap().container_id, "late");
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_and_does_not_hold_the_publisher() {
        let hub = Events::new(4);
        let mut slow = hub.subscribe();
        let mut fast = hub.subscribe();
        // The publisher never waits, however far behind `slow` is.
        for i in 0..10 {
            hub.publish(event(
                &i.to_string(),
                api::ContainerEventType::ContainerCreatedEvent,
            ));
            assert_eq!(
                fast.next().await.unwrap().unwrap().container_id,
                i.to_string()
            );
        }
        assert_eq!(slow.next().await, Err(Lagged(6)));
        // What is still in the ring follows: the newest four.
        assert_eq!(slow.next().await.unwrap().unwrap().container_id, "6");
    }

    #[tokio::test]
    async fn nobody_listening_is_known_and_publishing_then_keeps_nothing() {
        let hub = Events::new(4);
        assert!(!hub.wanted());
        hub.publish(event("x", api::ContainerEventType::ContainerCreatedEvent));
        assert_eq!(hub.sender.len(), 0);
        let sub = hub.subscribe();
        assert!(hub.wanted());
        drop(sub);
        assert!(!hub.wanted());
    }

    #[tokio::test]
    async fn streams_end_when_the_hub_closes_or_goes() {
        let hub = Events::new(4);
        let mut a = hub.subscribe();
        let waiting = tokio::spawn(async move { a.next().await });
        hub.close();
        assert_eq!(waiting.await.unwrap(), Ok(None));
        let mut b = hub.subscribe();
        assert_eq!(b.next().await, Ok(None));
        let hub = Events::new(4);
        let mut c = hub.subscribe();
        drop(hub);
        assert_eq!(c.next().await, Ok(None));
    }
}
