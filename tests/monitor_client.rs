//! Integration tests (root) of the daemon's client for crius-monitor and the OCI runtime: the real
//! `crius-monitor` and `crius oci` (or Debian's runc) on busybox bundles.
//!
//! Needs the binaries built first: `cargo build -p crius --bin crius -p crius-monitor` (the
//! monitor is looked up in `$CRIUS_MONITOR_BIN`, else beside the crius binary). Tests skip with a
//! message when the monitor, busybox or root is missing.
//!
//! The test process is a child subreaper, so the detached monitors are re-parented to it and
//! reaped here rather than left to whatever pid 1 is.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crius::monitor::{self, Launch, Launched, MonitorError};
use crius::oci_runtime::OciRuntime;
use crius::proc_info;
use serde_json::{Value, json};

const RUNC: &str = "/usr/sbin/runc";

fn monitor_bin() -> PathBuf {
    match std::env::var_os("CRIUS_MONITOR_BIN") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_BIN_EXE_crius")).with_file_name("crius-monitor"),
    }
}

/// Why these tests cannot run here, if they cannot.
fn missing() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
        return Some("not root".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("no /bin/busybox (apt-get install busybox-static)".into());
    }
    let monitor = monitor_bin();
    if !monitor.exists() {
        return Some(format!(
            "no monitor at {} (cargo build -p crius-monitor, or set CRIUS_MONITOR_BIN)",
            monitor.display()
        ));
    }
    static SUBREAPER: Once = Once::new();
    SUBREAPER.call_once(|| {
        nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    });
    None
}

macro_rules! require {
    () => {
        if let Some(why) = missing() {
            eprintln!("skipping: {why}");
            return;
        }
    };
}

fn unique(name: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// One container: bundle, runtime root, log, sockets and exit file in a temp dir. Dropping it
/// force-deletes the container, reaps its monitor and removes its cgroup, so a failing test
/// leaves nothing behind.
struct Fixture {
    id: String,
    cgroup: String,
    /// `[runtime] monitor_cgroup` for the launch; empty: the monitor stays put.
    monitor_cgroup: String,
    dir: tempfile::TempDir,
    runtime: OciRuntime,
    monitor: PathBuf,
    launched: Option<Launched>,
}

impl Fixture {
    fn new(runtime_kind: &str, args: &[&str]) -> Fixture {
        let id = unique("mc");
        let dir = tempfile::Builder::new()
            .prefix("crius-monclient-")
            .tempdir()
            .expect("tempdir");
        let runtime = match runtime_kind {
            "runc" => OciRuntime {
                name: "runc".into(),
                path: RUNC.into(),
                args: vec![],
                root: dir.path().join("root"),
            },
            _ => OciRuntime {
                name: "crius".into(),
                path: env!("CARGO_BIN_EXE_crius").into(),
                args: vec!["oci".into()],
                root: dir.path().join("root"),
            },
        };
        let fixture = Fixture {
            cgroup: format!("/crius-test-{id}"),
            monitor_cgroup: String::new(),
            id,
            dir,
            runtime,
            monitor: monitor_bin(),
            launched: None,
        };
        fixture.write_bundle(args);
        fixture
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_bundle(&self, args: &[&str]) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let bin = self.path("bundle/rootfs/bin");
        std::fs::create_dir_all(&bin).expect("rootfs");
        std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox");
        for applet in ["sh", "echo", "sleep", "cat", "true"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet");
        }
        for d in ["proc", "sys", "dev", "tmp"] {
            std::fs::create_dir_all(self.path("bundle/rootfs").join(d)).expect("rootfs dir");
        }
        let config = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": args,
                "env": ["PATH=/bin"],
                "cwd": "/",
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": true},
            "hostname": "monclient",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
            ],
            "linux": {
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "cgroupsPath": self.cgroup,
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
            }
        });
        std::fs::write(
            self.path("bundle/config.json"),
            serde_json::to_vec_pretty(&config).expect("json"),
        )
        .expect("config.json");
    }

    async fn launch(&mut self) -> Result<Launched, MonitorError> {
        let (bundle, exit, log) = (self.path("bundle"), self.path("exit"), self.path("ctr.log"));
        let (attach, control, err) = (
            self.path("attach.sock"),
            self.path("control.sock"),
            self.path("monitor.err"),
        );
        let result = monitor::launch_container(&Launch {
            monitor: &self.monitor,
            runtime: &self.runtime,
            id: &self.id,
            bundle: &bundle,
            exit_file: &exit,
            log_path: Some(&log),
            log_max_line: None,
            attach_socket: Some(&attach),
            control_socket: Some(&control),
            monitor_cgroup: &self.monitor_cgroup,
            terminal: false,
            stdin: false,
            stdin_once: false,
            stderr_log: Some(&err),
        })
        .await;
        if let Ok(launched) = &result {
            self.launched = Some(*launched);
        }
        result
    }

    /// Launches and starts the container.
    async fn run(&mut self) -> Launched {
        let launched = self
            .launch()
            .await
            .unwrap_or_else(|e| panic!("launch: {e}; monitor stderr: {}", self.monitor_stderr()));
        self.runtime.start(&self.id).await.expect("start");
        launched
    }

    fn monitor_stderr(&self) -> String {
        std::fs::read_to_string(self.path("monitor.err")).unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("ctr.log")).unwrap_or_default()
    }

    async fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "{needle:?} never reached the log: {:?}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn status(&self) -> Option<String> {
        let state = self.runtime.state(&self.id).await.expect("state");
        state.map(|s| s["status"].as_str().unwrap_or_default().to_string())
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let mut delete = std::process::Command::new(&self.runtime.path);
        delete
            .args(&self.runtime.args)
            .arg("--root")
            .arg(&self.runtime.root)
            .args(["delete", "--force", &self.id])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let _ = delete.status();
        if let Some(launched) = self.launched {
            reap_monitor(launched.monitor_pid);
        }
        remove_cgroup(&self.cgroup);
        if !self.monitor_cgroup.is_empty() {
            remove_cgroup(&self.monitor_cgroup);
        }
    }
}

/// Waits for our (adopted) monitor to exit, which it does once its container is gone; kills it
/// if it does not.
fn reap_monitor(pid: i32) {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let pid = nix::unistd::Pid::from_raw(pid);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Ok(WaitStatus::StillAlive) => {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(pid, None);
                return;
            }
            _ => return,
        }
    }
}

/// Kills what is left in the cgroup (under every v1 hierarchy, or the v2 root) and removes it.
fn remove_cgroup(cgroup: &str) {
    let relative = cgroup.trim_start_matches('/');
    let mut dirs = vec![Path::new("/sys/fs/cgroup").join(relative)];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        dirs.extend(entries.flatten().map(|e| e.path().join(relative)));
    }
    for dir in dirs.into_iter().filter(|d| d.is_dir()) {
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        for _ in 0..200 {
            if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn cgroup_exists(cgroup: &str) -> bool {
    let relative = cgroup.trim_start_matches('/');
    std::fs::read_dir("/sys/fs/cgroup")
        .map(|entries| entries.flatten().any(|e| e.path().join(relative).is_dir()))
        .unwrap_or(false)
}

async fn lifecycle(runtime: &str) {
    let mut f = Fixture::new(
        runtime,
        &["sh", "-c", "echo hello; echo oops >&2; exec sleep 1000"],
    );
    let launched = f
        .launch()
        .await
        .unwrap_or_else(|e| panic!("launch: {e}; monitor stderr: {}", f.monitor_stderr()));
    assert!(launched.pid > 0 && launched.monitor_pid > 0);
    let start_time = proc_info::start_time(launched.pid).expect("container start time");
    assert!(proc_info::is_alive(launched.pid, start_time));
    assert_eq!(f.status().await.as_deref(), Some("created"));
    assert!(monitor::monitor_alive(&f.path("control.sock")).await);

    f.runtime.start(&f.id).await.expect("start");
    f.wait_log(" stdout F hello\n").await;
    f.wait_log(" stderr F oops\n").await;
    for line in f.log().lines() {
        let mut words = line.splitn(4, ' ');
        let (ts, stream, tag) = (words.next(), words.next(), words.next());
        assert!(
            ts.is_some_and(|t| t.ends_with('Z') && t.len() == 30),
            "{line}"
        );
        assert!(matches!(stream, Some("stdout" | "stderr")), "{line}");
        assert!(matches!(tag, Some("F" | "P")), "{line}");
    }
    assert_eq!(f.status().await.as_deref(), Some("running"));

    // Rotation: the renamed file keeps the old lines; the monitor opens a new one.
    std::fs::rename(f.path("ctr.log"), f.path("ctr.log.1")).expect("rotate");
    monitor::reopen_log(&f.path("control.sock"))
        .await
        .expect("reopen-log");
    assert!(f.path("ctr.log").exists());
    match monitor::resize(&f.path("control.sock"), 24, 80).await {
        Err(MonitorError::Rejected { reason, .. }) => assert!(reason.contains("terminal")),
        other => panic!("resize without a terminal: {other:?}"),
    }

    assert_eq!(
        monitor::read_exit_file(&f.path("exit")).expect("read"),
        None
    );
    f.runtime
        .kill(&f.id, libc::SIGKILL, false)
        .await
        .expect("kill");
    let exit = monitor::wait_exit_file(&f.path("exit"), Duration::from_secs(20))
        .await
        .expect("exit file")
        .expect("no exit file within 20 s");
    assert_eq!((exit.exit_code, exit.signal), (137, Some(9)));
    assert!(!exit.oom_killed);
    assert!(exit.finished_at_unix_nano > 0);
    assert!(!proc_info::is_alive(launched.pid, start_time));

    let again = f.runtime.kill(&f.id, libc::SIGKILL, false).await;
    assert!(
        again.as_ref().is_err_and(|e| e.is_not_running()),
        "kill of an exited container: {again:?}"
    );
    f.runtime.delete(&f.id, false).await.expect("delete");
    assert_eq!(f.status().await, None);
    f.runtime.delete(&f.id, false).await.expect("second delete");
    assert!(!cgroup_exists(&f.cgroup), "the runtime left the cgroup");
    // The monitor removes its sockets on the way out, just after the exit file.
    let deadline = Instant::now() + Duration::from_secs(10);
    while monitor::monitor_alive(&f.path("control.sock")).await {
        assert!(
            Instant::now() < deadline,
            "the monitor kept its control socket"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn container_lifecycle_with_crius_oci() {
    require!();
    lifecycle("crius").await;
}

#[tokio::test]
async fn container_lifecycle_with_runc() {
    require!();
    if !Path::new(RUNC).exists() {
        eprintln!("skipping: no {RUNC}");
        return;
    }
    lifecycle("runc").await;
}

#[tokio::test]
async fn exec_sync_output_limit_and_timeout() {
    require!();
    let mut f = Fixture::new("crius", &["sleep", "1000"]);
    f.run().await;
    let cmd = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let result = monitor::exec_sync(
        &f.monitor,
        &f.runtime,
        &f.id,
        &cmd(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
        Some(Duration::from_secs(10)),
        1 << 20,
    )
    .await
    .expect("exec-sync");
    assert_eq!(result.exit_code, 3);
    assert_eq!(result.stdout, b"out\n");
    assert_eq!(result.stderr, b"err\n");
    assert!(!result.timed_out);

    let limited = monitor::exec_sync(
        &f.monitor,
        &f.runtime,
        &f.id,
        &cmd(&["echo", "0123456789"]),
        None,
        4,
    )
    .await
    .expect("exec-sync with a limit");
    assert_eq!(
        (limited.exit_code, limited.stdout.as_slice()),
        (0, &b"0123"[..])
    );

    let started = Instant::now();
    let slow = monitor::exec_sync(
        &f.monitor,
        &f.runtime,
        &f.id,
        &cmd(&["sleep", "30"]),
        Some(Duration::from_millis(1500)),
        1024,
    )
    .await
    .expect("exec-sync with a timeout");
    assert!(slow.timed_out);
    assert_eq!(slow.exit_code, 137);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );

    let missing = monitor::exec_sync(
        &f.monitor,
        &f.runtime,
        "no-such-container",
        &cmd(&["true"]),
        Some(Duration::from_secs(5)),
        1024,
    )
    .await;
    assert!(
        matches!(&missing, Err(MonitorError::Monitor { message: m, .. }) if m.contains("does not exist")),
        "{missing:?}"
    );
}

/// The lines of `/proc/<pid>/cgroup` that place it in `cgroup`: one per v1 hierarchy joined
/// (controllers or `name=systemd`), or v2's `0::`.
fn hierarchies_in(pid: &str, cgroup: &str) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with(&format!(":{cgroup}")))
        .map(|l| l.split(':').nth(1).unwrap_or_default().to_string())
        .collect()
}

/// The container's init, what it forks, and an exec are in the container's cgroup in every
/// hierarchy (the runtime's fork moved itself there, or was born there, rather than being moved:
/// libcontainer's `cgroup_fork`); the monitor moves itself into its own cgroup once it has
/// answered.
#[tokio::test]
async fn container_exec_and_monitor_land_in_their_cgroups() {
    require!();
    let mut f = Fixture::new("crius", &["sh", "-c", "sleep 1000 & exec sleep 1000"]);
    f.monitor_cgroup = format!("{}-monitor", f.cgroup);
    let launched = f.run().await;
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let wanted: Vec<String> = if v2 {
        vec![String::new()]
    } else {
        // Every v1 hierarchy mounted here (hybrid's `unified` is not one a container joins).
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let mut subs: Vec<String> = mounts
            .lines()
            .filter(|l| l.contains(" - cgroup "))
            .filter_map(|l| l.rsplit(',').next().map(str::to_string))
            .collect();
        subs.sort();
        subs.dedup();
        subs
    };
    let init = launched.pid.to_string();
    let joined = hierarchies_in(&init, &f.cgroup);
    assert_eq!(
        joined.len(),
        wanted.len(),
        "init joined {joined:?}, expected one per {wanted:?}"
    );
    let cmd = ["sh", "-c", "cat /proc/self/cgroup"]
        .map(String::from)
        .to_vec();
    let exec = monitor::exec_sync(
        &f.monitor,
        &f.runtime,
        &f.id,
        &cmd,
        Some(Duration::from_secs(10)),
        1 << 20,
    )
    .await
    .expect("exec-sync");
    assert_eq!(exec.exit_code, 0);
    let seen = String::from_utf8_lossy(&exec.stdout).to_string();
    let in_cgroup = seen
        .lines()
        .filter(|l| l.ends_with(&format!(":{}", f.cgroup)))
        .count();
    assert_eq!(in_cgroup, wanted.len(), "the exec is elsewhere:\n{seen}");
    // The monitor: in the tracking hierarchies (v2's `0::`, or v1's `name=systemd` and
    // hybrid's `unified`), once it has moved.
    let monitor = launched.monitor_pid.to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while hierarchies_in(&monitor, &f.monitor_cgroup).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the monitor never moved: {}; its stderr: {}",
            std::fs::read_to_string(format!("/proc/{monitor}/cgroup")).unwrap_or_default(),
            f.monitor_stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        hierarchies_in(&monitor, &f.cgroup).is_empty(),
        "the monitor is in the container's cgroup"
    );
}

#[tokio::test]
async fn update_sets_the_pids_limit() {
    require!();
    let mut f = Fixture::new("crius", &["sleep", "1000"]);
    f.run().await;
    let resources: oci_spec::runtime::LinuxResources =
        serde_json::from_value(json!({"pids": {"limit": 42}})).expect("resources");
    f.runtime.update(&f.id, &resources).await.expect("update");
    let relative = f.cgroup.trim_start_matches('/');
    let max = ["pids", ""]
        .iter()
        .map(|h| {
            Path::new("/sys/fs/cgroup")
                .join(h)
                .join(relative)
                .join("pids.max")
        })
        .find_map(|p| std::fs::read_to_string(p).ok())
        .expect("pids.max");
    assert_eq!(max.trim(), "42");
    f.runtime
        .kill(&f.id, libc::SIGKILL, true)
        .await
        .expect("kill --all");
    monitor::wait_exit_file(&f.path("exit"), Duration::from_secs(20))
        .await
        .expect("exit file")
        .expect("no exit file within 20 s");
}

#[tokio::test]
async fn failures_are_reported() {
    require!();
    // A bundle the runtime refuses: the monitor's error carries the runtime's text.
    let mut f = Fixture::new("crius", &["true"]);
    std::fs::write(f.path("bundle/config.json"), "{not json").expect("config");
    match f.launch().await {
        Err(MonitorError::Monitor {
            message,
            monitor_pid,
        }) => {
            // The monitor detached before running create; it is ours to reap (see the top).
            if let Some(pid) = monitor_pid {
                reap_monitor(pid);
            }
            assert!(message.contains("runtime create failed"), "{message}")
        }
        other => panic!("launch of a broken bundle: {other:?}"),
    }
    assert_eq!(f.status().await, None);

    // Unknown ids: state None, delete idempotent, kill a not-found error.
    for runtime in [&f.runtime, &Fixture::new("runc", &["true"]).runtime] {
        if !runtime.path.exists() {
            continue;
        }
        assert_eq!(runtime.state("nope").await.expect("state"), None);
        runtime.delete("nope", false).await.expect("delete");
        runtime.delete("nope", true).await.expect("delete --force");
        let kill = runtime.kill("nope", 9, false).await;
        assert!(kill.as_ref().is_err_and(|e| e.is_not_found()), "{kill:?}");
        let start = runtime.start("nope").await;
        let text = start.expect_err("start of nothing").to_string();
        assert!(
            text.contains(" start failed") && text.contains("does not exist"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn value_of_state_is_the_runtime_document() {
    require!();
    let mut f = Fixture::new("crius", &["sleep", "1000"]);
    let launched = f.run().await;
    let state: Value = f.runtime.state(&f.id).await.expect("state").expect("known");
    assert_eq!(state["id"], f.id.as_str());
    assert_eq!(state["pid"].as_i64(), Some(i64::from(launched.pid)));
    let start_time = proc_info::start_time(launched.pid).expect("start time");
    // SIGKILL through the pid+starttime identity, as the daemon does after a restart.
    assert!(
        !proc_info::signal_if_same(launched.pid, start_time + 1, libc::SIGKILL).expect("signal")
    );
    assert!(proc_info::signal_if_same(launched.pid, start_time, libc::SIGKILL).expect("signal"));
    let exit = monitor::wait_exit_file(&f.path("exit"), Duration::from_secs(20))
        .await
        .expect("exit file")
        .expect("no exit file within 20 s");
    assert_eq!(exit.signal, Some(9));
}
