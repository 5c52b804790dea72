//! A container's monitor whose launch nobody saw finish: the daemon died (or gave up waiting)
//! while the monitor's runtime `create` was still running, so the record names no process.
//! A forced delete right then finds no runtime state and succeeds, and the create, finishing
//! later, would leave an init process waiting on its exec fifo forever in a cgroup nobody
//! owns. Teardown therefore first lets such a launch settle: it waits until the runtime knows
//! the container (a forced delete then kills it) or the monitor has gone.

use std::time::{Duration, Instant};

use crate::oci_runtime::OciRuntime;
use crate::proc_info;

/// How often a settling launch is looked at.
const POLL: Duration = Duration::from_millis(50);

/// The pid of a container-mode crius-monitor of `id` (`crius-monitor container --id ID …`),
/// if one runs.
pub fn monitor_of(id: &str) -> Option<i32> {
    let dir = std::fs::read_dir("/proc").ok()?;
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| proc_info::is_named(pid, "crius-monitor"))
        .find(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| launches(&cmdline, id))
        })
}

/// Whether a monitor's NUL-separated command line is the container monitor of `id`.
fn launches(cmdline: &[u8], id: &str) -> bool {
    let mut args = cmdline.split(|&b| b == 0).skip(1);
    args.next() == Some(b"container".as_slice())
        && args.next() == Some(b"--id".as_slice())
        && args.next() == Some(id.as_bytes())
}

/// Waits, at most `timeout`, until no monitor of `id` is still inside the runtime's create:
/// the runtime knows `id`, or no monitor of `id` runs. Says whether it settled.
pub async fn settle_launch(runtime: &OciRuntime, id: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut waited = false;
    loop {
        if monitor_of(id).is_none() {
            break;
        }
        if matches!(runtime.state(id).await, Ok(Some(_))) {
            break;
        }
        if Instant::now() >= deadline {
            tracing::warn!(%id, "a monitor of {id} is still creating it after {timeout:?}");
            return false;
        }
        if !waited {
            tracing::info!(%id, "waiting for an unfinished launch (its runtime create) to settle");
            waited = true;
        }
        tokio::time::sleep(POLL).await;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_container_monitor_of_that_id_matches() {
        let id = "0123abcd";
        let line = |args: &[&str]| args.join("\0").into_bytes();
        assert!(launches(
            &line(&[
                "/usr/bin/crius-monitor",
                "container",
                "--id",
                id,
                "--bundle",
                "/b"
            ]),
            id
        ));
        assert!(!launches(
            &line(&["/usr/bin/crius-monitor", "exec", "--id", id]),
            id
        ));
        assert!(!launches(
            &line(&["/usr/bin/crius-monitor", "container", "--id", "0123abcde"]),
            id
        ));
        assert!(!launches(b"", id));
    }

    #[test]
    fn no_monitor_runs_for_an_unknown_id() {
        assert_eq!(monitor_of("no-such-container-id"), None);
    }
}
