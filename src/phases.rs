//! Where a lifecycle RPC's time goes: its phases and their durations, logged at debug level as
//! one event per RPC (target `crius::phases`), e.g.
//!
//! ```text
//! DEBUG rpc{rpc="RunPodSandbox" id=7}: RunPodSandbox phases phases="state=1.1ms ns=1.6ms
//!     ns.setup=0.6ms files=0.2ms net+pause=29.9ms[cni.bridge=9.4ms cni.portmap=3.0ms
//!     cni.cache=0.9ms pause.spec=0.7ms ... runtime.start=4.9ms] hosts=0.1ms ... total=34.6ms"
//! ```
//!
//! `server::rpc::serve` runs every handler under [`traced`]. The lifecycle code marks its steps
//! with [`lap`] (the time since the previous lap, so the laps of a request add up to its total)
//! and times parts of a step with [`timer`] (each CNI plugin run); parts are shown in brackets
//! after the lap that covers them. The recorder follows the work into the tasks
//! and blocking threads it is handed to through [`carry`] and [`carry_blocking`]; work that
//! runs concurrently with the laps of its request (a pod's containers stopped at once) runs
//! [`muted`], under the one lap that covers it, or as a [`branch`] whose laps become parts of it.
//!
//! With debug logging of this target off, no recorder exists: a lap or a timer is a task-local
//! lookup that finds nothing, and nothing is formatted or allocated.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{Level, Span};

tokio::task_local! {
    /// The recorder of the request this task works for; `None` inside [`muted`] work.
    static CURRENT: Option<Phases>;
}

thread_local! {
    /// The recorder of the request a blocking closure ([`carry_blocking`]) works for.
    static BLOCKING: RefCell<Option<Phases>> = const { RefCell::new(None) };
}

/// One request's phases, in the order they ended. Cheap to clone: clones share the record.
#[derive(Clone)]
pub struct Phases(Arc<Mutex<Record>>);

struct Record {
    started: Instant,
    /// The end of the previous lap.
    last: Instant,
    phases: Vec<Phase>,
}

/// A lap, or a part of the lap that ends after it.
struct Phase {
    name: Cow<'static, str>,
    took: Duration,
    part: bool,
}

impl Phases {
    fn new() -> Phases {
        let now = Instant::now();
        Phases(Arc::new(Mutex::new(Record {
            started: now,
            last: now,
            phases: Vec::new(),
        })))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Record) -> T) -> T {
        // A record is only ever appended to: a poisoned lock still holds a usable one.
        let mut record = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut record)
    }

    /// Ends a lap named `name`: the time since the previous one (or the start).
    fn lap(&self, name: &'static str) {
        let now = Instant::now();
        self.with(|r| {
            let took = now.saturating_duration_since(r.last);
            r.last = now;
            r.phases.push(Phase {
                name: Cow::Borrowed(name),
                took,
                part: false,
            });
        });
    }

    /// Records a part timed on its own; the laps are not affected.
    fn part(&self, name: Cow<'static, str>, took: Duration) {
        self.with(|r| {
            r.phases.push(Phase {
                name,
                took,
                part: true,
            })
        });
    }

    /// `lap=1.2ms lap=3.0ms[part=1.1ms part=0.8ms] …`, then the total since the start; `None`
    /// if nothing was recorded.
    fn render(&self) -> Option<String> {
        self.with(|r| {
            if r.phases.is_empty() {
                return None;
            }
            let mut out = String::new();
            let mut parts = String::new();
            for p in &r.phases {
                if p.part {
                    let sep = if parts.is_empty() { "" } else { " " };
                    let _ = write!(parts, "{sep}{}={}", p.name, millis(p.took));
                    continue;
                }
                let _ = write!(out, "{}={}", p.name, millis(p.took));
                if !parts.is_empty() {
                    let _ = write!(out, "[{parts}]");
                    parts.clear();
                }
                out.push(' ');
            }
            // Parts no lap closed (the request ended, or failed, inside that step).
            if !parts.is_empty() {
                let _ = write!(out, "[{parts}] ");
            }
            let _ = write!(out, "total={}", millis(r.started.elapsed()));
            Some(out)
        })
    }
}

/// `1.2ms`: a tenth of a millisecond is the resolution that matters here.
fn millis(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

/// The recorder of the request the current task or blocking thread works for.
fn current() -> Option<Phases> {
    CURRENT
        .try_with(Clone::clone)
        .unwrap_or_else(|_| BLOCKING.with(|b| b.borrow().clone()))
}

/// Runs `handler` (the RPC `rpc`) recording its phases, and logs them under `span` when it is
/// done (failed too: the phases then tell where it stopped) — if debug logging is on for this
/// target; otherwise it only runs `handler`.
pub async fn traced<F: Future>(rpc: &str, span: &Span, handler: F) -> F::Output {
    if !tracing::enabled!(Level::DEBUG) {
        return handler.await;
    }
    let phases = Phases::new();
    let output = CURRENT.scope(Some(phases.clone()), handler).await;
    if let Some(rendered) = phases.render() {
        tracing::debug!(parent: span, phases = ?rendered, "{rpc} phases");
    }
    output
}

/// Ends a lap of the current request (see the module docs).
pub fn lap(name: &'static str) {
    if let Some(p) = current() {
        p.lap(name);
    }
}

/// Times a part of the current request named `<prefix>.<name>`, from now until the returned
/// guard is dropped. The name is only built when phases are being recorded.
pub fn timer(prefix: &'static str, name: &str) -> Timer {
    Timer(current().map(|p| (p, format!("{prefix}.{name}"), Instant::now())))
}

/// See [`timer`].
#[must_use = "the part is timed until the guard is dropped"]
pub struct Timer(Option<(Phases, String, Instant)>);

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some((phases, name, started)) = self.0.take() {
            phases.part(Cow::Owned(name), started.elapsed());
        }
    }
}

/// `work`, recording into the current request's phases wherever it runs (a spawned task).
pub fn carry<F: Future>(work: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(current(), work)
}

/// `work` for a blocking thread (`spawn_blocking`), recording into the current request's
/// phases there.
pub fn carry_blocking<T>(work: impl FnOnce() -> T) -> impl FnOnce() -> T {
    let phases = current();
    move || {
        /// Puts the thread's previous recorder back, also when `work` panics.
        struct Restore(Option<Phases>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                BLOCKING.with(|b| *b.borrow_mut() = previous);
            }
        }
        let _restore = Restore(BLOCKING.with(|b| b.replace(phases)));
        work()
    }
}

/// `work` running alongside other steps of its request (the pause started while CNI runs): its
/// own laps are timed from its start and become parts of the lap that covers it.
pub async fn branch<F: Future>(work: F) -> F::Output {
    let Some(parent) = current() else {
        return work.await;
    };
    let own = Phases::new();
    let output = CURRENT.scope(Some(own.clone()), work).await;
    let phases = own.with(|r| std::mem::take(&mut r.phases));
    for p in phases {
        parent.part(p.name, p.took);
    }
    output
}

/// `work` without recording: its laps would interleave with concurrent work of the same request.
pub fn muted<F: Future>(work: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(None, work)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &Phases) -> Vec<String> {
        p.with(|r| r.phases.iter().map(|p| p.name.to_string()).collect())
    }

    #[test]
    fn laps_add_up_to_the_time_between_them() {
        let p = Phases::new();
        std::thread::sleep(Duration::from_millis(20));
        p.lap("first");
        std::thread::sleep(Duration::from_millis(10));
        p.part("sub.a".into(), Duration::from_millis(3));
        p.part("sub.b".into(), Duration::from_micros(1250));
        p.lap("second");
        let took = |i: usize| p.with(|r| r.phases[i].took);
        let (first, second) = (took(0), took(3));
        assert!(first >= Duration::from_millis(20), "{first:?}");
        assert!(second >= Duration::from_millis(10), "{second:?}");
        // The second lap starts where the first ended, not at the start; parts do not move it.
        assert!(second < first, "{second:?}");
        assert_eq!(took(1), Duration::from_millis(3));
        let text = p.render().unwrap();
        let (laps, total) = text.rsplit_once(" total=").unwrap();
        let laps: Vec<&str> = laps.split(' ').collect();
        assert_eq!(laps.len(), 3, "{text}");
        assert!(
            laps[0].starts_with("first=") && laps[0].ends_with("ms"),
            "{text}"
        );
        assert!(laps[1].starts_with("second="), "{text}");
        assert_eq!(laps[2], "sub.b=1.2ms]", "{text}");
        assert!(
            text.contains("ms[sub.a=3.0ms sub.b=1.2ms] total="),
            "{text}"
        );
        assert!(total.ends_with("ms"), "{text}");
    }

    #[test]
    fn nothing_recorded_renders_nothing() {
        assert_eq!(Phases::new().render(), None);
    }

    #[test]
    fn parts_no_lap_closed_are_shown_before_the_total() {
        let p = Phases::new();
        p.lap("a");
        p.part("cni.bridge".into(), Duration::from_millis(2));
        let text = p.render().unwrap();
        assert!(text.starts_with("a="), "{text}");
        assert!(text.contains("ms [cni.bridge=2.0ms] total="), "{text}");
    }

    #[test]
    fn durations_are_in_milliseconds_with_one_decimal() {
        assert_eq!(millis(Duration::from_micros(1234)), "1.2ms");
        assert_eq!(millis(Duration::from_secs(2)), "2000.0ms");
        assert_eq!(millis(Duration::ZERO), "0.0ms");
    }

    #[test]
    fn without_a_recorder_laps_and_timers_do_nothing() {
        lap("nowhere");
        let t = timer("cni", "bridge");
        assert!(t.0.is_none());
        drop(t);
        assert!(current().is_none());
    }

    #[tokio::test]
    async fn the_recorder_follows_work_into_tasks_and_blocking_threads() {
        let p = Phases::new();
        CURRENT
            .scope(Some(p.clone()), async {
                lap("inline");
                tokio::spawn(carry(async { lap("task") })).await.unwrap();
                tokio::task::spawn_blocking(carry_blocking(|| {
                    let _t = timer("cni", "loopback");
                    lap("blocking");
                }))
                .await
                .unwrap();
                muted(async { lap("muted") }).await;
                // A task not carried records nothing.
                tokio::spawn(async { lap("lost") }).await.unwrap();
                lap("after");
            })
            .await;
        assert_eq!(
            names(&p),
            ["inline", "task", "blocking", "cni.loopback", "after"]
        );
        // The blocking thread is left without a recorder.
        let left = tokio::task::spawn_blocking(|| BLOCKING.with(|b| b.borrow().is_none()))
            .await
            .unwrap();
        assert!(left);
    }

    #[tokio::test]
    async fn a_branch_s_laps_become_parts_of_the_lap_that_covers_it() {
        let p = Phases::new();
        CURRENT
            .scope(Some(p.clone()), async {
                lap("before");
                let side = branch(async {
                    lap("pause.spec");
                    lap("runtime.create");
                });
                let main = async { timer("cni", "bridge") };
                let (_, t) = tokio::join!(side, main);
                drop(t);
                lap("net+pause");
            })
            .await;
        let text = p.render().unwrap();
        assert!(text.starts_with("before="), "{text}");
        for part in ["pause.spec=", "runtime.create=", "cni.bridge="] {
            let at = text.find(part).unwrap_or_else(|| panic!("{text}"));
            // Inside the brackets of the lap that ends after them.
            assert!(
                at > text.find('[').unwrap() && at < text.find(']').unwrap(),
                "{text}"
            );
        }
        assert!(text.contains("]"), "{text}");
        assert!(text.contains("net+pause="), "{text}");
        p.with(|r| {
            let laps: Vec<_> = r
                .phases
                .iter()
                .filter(|p| !p.part)
                .map(|p| p.name.to_string())
                .collect();
            assert_eq!(laps, ["before", "net+pause"]);
        });
    }
}
