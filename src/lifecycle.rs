//! The lifecycle protocol of the mutating RPCs: each call's work runs as a task of its own, so a
//! client that leaves at its deadline (tonic then drops the handler) cannot cut it half-way; and
//! a retry of a creation the client left gets the object the first request made.
//!
//! - [`detached`] runs one piece of work in a `tokio::spawn`ed task and awaits it. The task
//!   finishes (or undoes) its work whatever happens to the caller; a panic in it is resumed in
//!   the caller, whose RPC panic fence makes it INTERNAL for that call only.
//! - [`InFlight`] is the table of creations (RunPodSandbox, CreateContainer) by the name of what
//!   they make, as cri-o's ResourceStore: a request whose name is being made waits for that work
//!   and gets its id; a creation that finished after its client left keeps its id here,
//!   *unclaimed*, until a retry takes it (or [`UNCLAIMED_TTL`] passes — the object itself stays
//!   and is listed). A creation whose result its own client received leaves nothing here, so a
//!   plain duplicate still meets the name reservation (AlreadyExists); one that failed leaves
//!   nothing either, and its retry does the work anew.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinError;
use tracing::Instrument;

use crate::engine::PodError;

/// How long a creation's id waits for a retry after its client left.
pub const UNCLAIMED_TTL: Duration = Duration::from_secs(300);

/// Runs `work` as a task of its own and waits for it. Dropping this future (the client left)
/// does not stop the work.
pub async fn detached<T, F>(work: F) -> Result<T, PodError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, PodError>> + Send + 'static,
{
    joined(tokio::spawn(crate::phases::carry(work).in_current_span()).await)
}

/// A task's answer. A panic in it goes on in the caller, as if the work had run inline: the
/// RPC's panic fence (`server::rpc::serve`) makes it INTERNAL for that call, and the daemon
/// goes on.
fn joined<T>(outcome: Result<Result<T, PodError>, JoinError>) -> Result<T, PodError> {
    match outcome {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(PodError::Internal(format!("the task was cancelled: {e}"))),
    }
}

/// Creations by the name of what they make; see the module docs.
#[derive(Clone)]
pub struct InFlight {
    table: Arc<Mutex<Table>>,
}

struct Table {
    entries: HashMap<String, Entry>,
    ttl: Duration,
}

enum Entry {
    /// A task is making it; the receiver wakes when that task is done (its sender dropped).
    Running(watch::Receiver<()>),
    /// Made, but the client that asked left before it got the id.
    Unclaimed { id: String, since: Instant },
}

/// What a request for a name is to do.
enum Begin {
    Run(Token),
    Wait(watch::Receiver<()>),
    Claimed(String),
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight::with_ttl(UNCLAIMED_TTL)
    }
}

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    // Every update leaves the table whole, so a poisoned lock is still usable.
    table
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl InFlight {
    pub fn with_ttl(ttl: Duration) -> InFlight {
        InFlight {
            table: Arc::new(Mutex::new(Table {
                entries: HashMap::new(),
                ttl,
            })),
        }
    }

    /// The id of the object named `key`: made now by `make`'s future in a task of its own, or
    /// the one an earlier request for the same name is making or made after its client left —
    /// if `usable` still says yes to it (the object may have been stopped or removed since, by
    /// someone who found it listed); otherwise it is made anew.
    pub async fn once<F, Fut>(
        &self,
        key: &str,
        usable: impl Fn(&str) -> bool,
        make: F,
    ) -> Result<String, PodError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<String, PodError>> + Send + 'static,
    {
        loop {
            match self.begin(key) {
                Begin::Claimed(id) if usable(&id) => {
                    tracing::info!(%id, "{key}: handing a retry what an earlier request made");
                    return Ok(id);
                }
                Begin::Claimed(id) => {
                    tracing::info!(%id, "{key}: what an earlier request made is gone; making it anew");
                }
                Begin::Wait(mut done) => {
                    tracing::info!("{key}: the same request is in progress; waiting for it");
                    // Never sent to: returns once the task is done.
                    let _ = done.changed().await;
                }
                Begin::Run(token) => {
                    let work = make();
                    let task = tokio::spawn(crate::phases::carry(
                        async move {
                            let result = work.await;
                            token.finish(&result);
                            result
                        }
                        .in_current_span(),
                    ));
                    let result = joined(task.await);
                    if let Ok(id) = &result {
                        self.claim(key, id);
                    }
                    return result;
                }
            }
        }
    }

    fn begin(&self, key: &str) -> Begin {
        let mut table = lock(&self.table);
        let ttl = table.ttl;
        table.entries.retain(|_, e| match e {
            Entry::Unclaimed { since, .. } => since.elapsed() < ttl,
            Entry::Running(_) => true,
        });
        match table.entries.remove(key) {
            Some(Entry::Running(done)) => {
                let wait = done.clone();
                table.entries.insert(key.to_owned(), Entry::Running(done));
                Begin::Wait(wait)
            }
            Some(Entry::Unclaimed { id, .. }) => Begin::Claimed(id),
            None => {
                let (sender, done) = watch::channel(());
                table.entries.insert(key.to_owned(), Entry::Running(done));
                Begin::Run(Token {
                    table: self.table.clone(),
                    key: key.to_owned(),
                    _done: sender,
                    finished: false,
                })
            }
        }
    }

    /// The client that asked got `id`: nothing is left for a retry.
    fn claim(&self, key: &str, id: &str) {
        let mut table = lock(&self.table);
        if matches!(table.entries.get(key), Some(Entry::Unclaimed { id: held, .. }) if held == id) {
            table.entries.remove(key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.table).entries.len()
    }
}

/// The running creation of one name. Finished, it leaves its id for a retry (or nothing, if it
/// failed); dropped unfinished (its task panicked), it leaves nothing. Either way its waiters
/// wake, as its sender goes with it.
struct Token {
    table: Arc<Mutex<Table>>,
    key: String,
    _done: watch::Sender<()>,
    finished: bool,
}

impl Token {
    fn finish(mut self, result: &Result<String, PodError>) {
        let mut table = lock(&self.table);
        match result {
            Ok(id) => {
                table.entries.insert(
                    self.key.clone(),
                    Entry::Unclaimed {
                        id: id.clone(),
                        since: Instant::now(),
                    },
                );
            }
            Err(_) => {
                table.entries.remove(&self.key);
            }
        }
        self.finished = true;
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        if !self.finished {
            lock(&self.table).entries.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A creation that takes `delay` and counts its runs; ids are `id-<run>`.
    fn maker(
        runs: &Arc<AtomicUsize>,
        delay: Duration,
        fail: bool,
    ) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<String, PodError>> + Send>> {
        let runs = runs.clone();
        move || {
            let runs = runs.clone();
            Box::pin(async move {
                let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(delay).await;
                if fail {
                    Err(PodError::Internal(format!("run {n} failed")))
                } else {
                    Ok(format!("id-{n}"))
                }
            })
        }
    }

    const SHORT: Duration = Duration::from_millis(50);
    const LONG: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn a_retry_after_the_client_left_gets_the_finished_id() {
        let table = InFlight::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let cut = tokio::time::timeout(
            SHORT,
            table.once("pod", |_| true, maker(&runs, LONG, false)),
        )
        .await;
        assert!(cut.is_err(), "the first request was to be cut");
        // The work goes on without its client.
        tokio::time::sleep(LONG * 2).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let retry = table.once("pod", |_| true, maker(&runs, LONG, false)).await;
        assert_eq!(retry.ok().as_deref(), Some("id-1"));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Claimed: a further duplicate does the work (and meets the name reservation there).
        let again = table
            .once("pod", |_| true, maker(&runs, SHORT, false))
            .await;
        assert_eq!(again.ok().as_deref(), Some("id-2"));
        assert_eq!(table.len(), 0);
    }

    #[tokio::test]
    async fn a_retry_while_the_first_runs_waits_for_its_id() {
        let table = InFlight::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let cut = tokio::time::timeout(
            SHORT,
            table.once("pod", |_| true, maker(&runs, LONG, false)),
        )
        .await;
        assert!(cut.is_err());
        let started = Instant::now();
        let retry = table.once("pod", |_| true, maker(&runs, LONG, false)).await;
        assert_eq!(retry.ok().as_deref(), Some("id-1"));
        assert!(
            started.elapsed() >= LONG - SHORT * 2,
            "the retry did not wait"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(table.len(), 0);
    }

    #[tokio::test]
    async fn an_unclaimed_object_removed_since_is_made_anew() {
        let table = InFlight::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let cut = tokio::time::timeout(
            SHORT,
            table.once("pod", |_| true, maker(&runs, LONG, false)),
        );
        assert!(cut.await.is_err());
        tokio::time::sleep(LONG * 2).await;
        let gone = |id: &str| id != "id-1";
        let retry = table.once("pod", gone, maker(&runs, SHORT, false)).await;
        assert_eq!(retry.ok().as_deref(), Some("id-2"));
        assert_eq!(table.len(), 0);
    }

    #[tokio::test]
    async fn a_request_whose_client_stayed_leaves_nothing_behind() {
        let table = InFlight::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let first = table.once("c", |_| true, maker(&runs, SHORT, false)).await;
        assert_eq!(first.ok().as_deref(), Some("id-1"));
        assert_eq!(table.len(), 0);
    }

    #[tokio::test]
    async fn a_retry_of_a_failed_creation_does_the_work_anew() {
        let table = InFlight::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let cut =
            tokio::time::timeout(SHORT, table.once("pod", |_| true, maker(&runs, LONG, true)))
                .await;
        assert!(cut.is_err());
        // Waits for the failing first run, then runs its own.
        let retry = table
            .once("pod", |_| true, maker(&runs, SHORT, false))
            .await;
        assert_eq!(retry.ok().as_deref(), Some("id-2"));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // The failing request's own client sees its error.
        let failed = table.once("x", |_| true, maker(&runs, SHORT, true)).await;
        assert!(matches!(failed, Err(PodError::Internal(m)) if m == "run 3 failed"));
        assert_eq!(table.len(), 0);
    }

    #[tokio::test]
    async fn different_names_do_not_wait_for_each_other() {
        let table = InFlight::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let slow = table.once("a", |_| true, maker(&runs, LONG, false));
        let fast = async {
            let started = Instant::now();
            let id = table.once("b", |_| true, maker(&runs, SHORT, false)).await;
            (id, started.elapsed())
        };
        let (a, (b, took)) = tokio::join!(slow, fast);
        assert!(a.is_ok() && b.is_ok());
        assert!(took < LONG, "b waited for a");
    }

    /// What `work` panicked with, if it did.
    async fn panic_of<T>(work: impl Future<Output = T>) -> Option<String> {
        use futures::FutureExt;
        let panic = std::panic::AssertUnwindSafe(work)
            .catch_unwind()
            .await
            .err()?;
        panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
    }

    #[tokio::test]
    async fn a_panicking_creation_panics_its_caller_and_leaves_nothing() {
        let table = InFlight::default();
        let panicked = panic_of(table.once(
            "p",
            |_| true,
            || async { panic!("kaboom") as Result<String, PodError> },
        ))
        .await;
        assert_eq!(panicked.as_deref(), Some("kaboom"));
        assert_eq!(table.len(), 0);
        let runs = Arc::new(AtomicUsize::new(0));
        let retry = table.once("p", |_| true, maker(&runs, SHORT, false)).await;
        assert_eq!(retry.ok().as_deref(), Some("id-1"));
    }

    #[tokio::test]
    async fn unclaimed_ids_are_dropped_after_the_ttl() {
        let table = InFlight::with_ttl(SHORT);
        let runs = Arc::new(AtomicUsize::new(0));
        let cut = tokio::time::timeout(
            SHORT / 5,
            table.once("a", |_| true, maker(&runs, SHORT, false)),
        );
        assert!(cut.await.is_err());
        tokio::time::sleep(SHORT * 3).await;
        assert_eq!(table.len(), 1);
        // Any later request prunes it; this one for another name.
        let other = table
            .once("b", |_| true, maker(&runs, Duration::ZERO, false))
            .await;
        assert!(other.is_ok());
        assert_eq!(table.len(), 0);
    }

    #[tokio::test]
    async fn detached_work_finishes_after_its_caller_left() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let cut = tokio::time::timeout(
            SHORT,
            detached(async move {
                tokio::time::sleep(LONG).await;
                counted.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }),
        )
        .await;
        assert!(cut.is_err());
        tokio::time::sleep(LONG * 2).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let panicked = panic_of(detached(async { panic!("boom") as Result<(), PodError> })).await;
        assert_eq!(panicked.as_deref(), Some("boom"));
    }
}
