//! The built-in pause (`pause/pause.rs`, the executable crius embeds and runs as each pod's
//! pause): exit status and message on SIGTERM/SIGINT, and reaping of inherited orphans as pid 1
//! of a pid namespace (needs root and util-linux `unshare`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The executable the daemon embeds, as `build.rs` made it.
const PAUSE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/crius-pause"));

/// The pause written to a file of its own, executable (kept for the test's lifetime).
fn pause_file() -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pause");
    std::fs::write(&path, PAUSE).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, path)
}

/// Kills (SIGKILL) and reaps the spawned process if the test did not take it back.
struct Guard(Option<Child>);

impl Guard {
    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    fn take(&mut self) -> Child {
        self.0.take().unwrap()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn status_field(pid: u32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim().to_string())
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// pause waits for its signals in rt_sigtimedwait (128 on x86_64) once they are blocked.
fn is_ready(pid: u32) -> bool {
    status_field(pid, "Name:").as_deref() == Some("pause")
        && std::fs::read_to_string(format!("/proc/{pid}/syscall"))
            .is_ok_and(|s| s.starts_with("128 "))
}

fn kill(pid: u32, signal: i32) {
    // SAFETY: plain kill(2) of a process this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
}

#[test]
fn exits_zero_on_sigterm_and_sigint() {
    let (_dir, pause) = pause_file();
    for (signal, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let child = Command::new(&pause)
            .arg("ignored")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut guard = Guard(Some(child));
        let pid = guard.id();
        wait_until("pause to start", || is_ready(pid));
        kill(pid, signal);
        let out = guard.take().wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("Shutting down, got signal: {name}\n")
        );
    }
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn reaps_orphans_as_pid_one() {
    if !Path::new("/usr/bin/unshare").exists() {
        eprintln!("skipped: no /usr/bin/unshare");
        return;
    }
    // The shell becomes pid 1 of a new pid namespace, starts a child and an orphan (its
    // subshell exits, so the kernel hands the sleep to pid 1), then execs pause.
    let (_dir, pause_path) = pause_file();
    let script = r#"sleep 1 & (sleep 1 &); exec "$0""#;
    let child = Command::new("/usr/bin/unshare")
        .args(["--pid", "--fork", "--kill-child", "sh", "-c", script])
        .arg(&pause_path)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = Guard(Some(child));
    let unshare = guard.id();
    let mut pause = 0;
    wait_until("pause as pid 1", || {
        pause = children(unshare).first().copied().unwrap_or(0);
        pause != 0 && is_ready(pause)
    });
    let nspid = status_field(pause, "NSpid:").unwrap();
    assert_eq!(nspid.split_whitespace().last(), Some("1"), "{nspid}");
    let mut sleepers = Vec::new();
    wait_until("the child and the orphan", || {
        sleepers = children(pause);
        sleepers.len() == 2
    });
    // Unreaped, they would stay in /proc as zombies.
    wait_until("the sleepers to be reaped", || {
        sleepers
            .iter()
            .all(|p| !Path::new(&format!("/proc/{p}")).exists())
    });
    kill(pause, libc::SIGTERM);
    let status = guard.take().wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
