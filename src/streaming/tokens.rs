//! Single-use tokens for the URLs handed out by `Exec`, `Attach` and `PortForward`: 128 random
//! bits, each taken at most once and only before it expires (kubelet's request cache does the
//! same).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::api;

/// The request a token stands for.
#[derive(Debug, Clone)]
pub enum Pending {
    Exec(api::ExecRequest),
    Attach(api::AttachRequest),
    PortForward(api::PortForwardRequest),
}

impl Pending {
    /// The first path segment of its URL.
    pub fn kind(&self) -> &'static str {
        match self {
            Pending::Exec(_) => "exec",
            Pending::Attach(_) => "attach",
            Pending::PortForward(_) => "portforward",
        }
    }
}

/// Most requests waiting for their client; as the kubelet, refuse more rather than grow.
const MAX_PENDING: usize = 1000;

pub struct Tokens {
    ttl: Duration,
    pending: Mutex<HashMap<String, (Instant, Pending)>>,
}

#[derive(Debug, thiserror::Error)]
#[error("too many streaming requests waiting for their client ({MAX_PENDING})")]
pub struct TooMany;

impl Tokens {
    pub fn new(ttl: Duration) -> Self {
        Tokens {
            ttl,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// A fresh token for `request`.
    pub fn insert(&self, request: Pending) -> Result<String, TooMany> {
        use rand::RngCore;
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let now = Instant::now();
        let mut pending = self.lock();
        pending.retain(|_, (expires, _)| *expires > now);
        if pending.len() >= MAX_PENDING {
            return Err(TooMany);
        }
        pending.insert(token.clone(), (now + self.ttl, request));
        Ok(token)
    }

    /// The request of `token` if it is known, unused and not expired; it is used up either way.
    pub fn take(&self, token: &str) -> Option<Pending> {
        let (expires, request) = self.lock().remove(token)?;
        (Instant::now() < expires).then_some(request)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Pending)>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attach() -> Pending {
        Pending::Attach(api::AttachRequest::default())
    }

    #[test]
    fn tokens_are_single_use() {
        let tokens = Tokens::new(Duration::from_secs(60));
        let a = tokens.insert(attach()).unwrap();
        let b = tokens.insert(attach()).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(tokens.take(&a).is_some());
        assert!(tokens.take(&a).is_none());
        assert!(tokens.take("nope").is_none());
        assert!(tokens.take(&b).is_some());
    }

    #[test]
    fn tokens_expire() {
        let tokens = Tokens::new(Duration::from_millis(20));
        let a = tokens.insert(attach()).unwrap();
        std::thread::sleep(Duration::from_millis(40));
        assert!(tokens.take(&a).is_none());
    }

    #[test]
    fn pending_requests_are_bounded() {
        let tokens = Tokens::new(Duration::from_secs(60));
        for _ in 0..MAX_PENDING {
            tokens.insert(attach()).unwrap();
        }
        assert!(tokens.insert(attach()).is_err());
    }
}
