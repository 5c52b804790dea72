//! Harness for the monitor's integration tests: busybox bundles, the real `crius-monitor` binary,
//! Debian's `runc` with a private `--root`, and cleanup that runs even when a test fails.
//!
//! The test process makes itself a child subreaper, so detached monitors are re-parented to it
//! and can be reaped (and their exit checked) by pid instead of becoming someone else's zombies.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Output, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde_json::Value;

pub const MONITOR: &str = env!("CARGO_BIN_EXE_crius-monitor");
const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "printf", "sleep", "head", "dd", "tail", "stty", "tr", "seq", "true",
];

static INIT: Once = Once::new();

/// Root, runc and busybox are required; the subreaper is set once per test process.
pub fn init() {
    INIT.call_once(|| {
        use std::os::unix::fs::MetadataExt;
        let uid = fs::metadata("/proc/self").map(|m| m.uid());
        assert_eq!(
            uid.ok(),
            Some(0),
            "the monitor tests run as root (they create containers)"
        );
        assert!(
            Command::new("runc")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success()),
            "runc is missing: apt-get install runc"
        );
        assert!(
            Path::new("/bin/busybox").exists(),
            "busybox is missing: apt-get install busybox-static"
        );
        nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    });
}

/// A unique container id for this test run.
pub fn unique_id(name: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// One test container: its directory (bundle, runc root, log, sockets, exit file), and what is
/// known of its processes. Dropping it removes everything.
pub struct TestContainer {
    pub id: String,
    pub dir: tempfile::TempDir,
    pub monitor_pid: Option<i32>,
    pub pid: Option<i32>,
    cleaned: bool,
}

impl TestContainer {
    /// A busybox bundle running `args`; `tweak` may change the generated config.json further.
    pub fn new(name: &str, args: &[&str], tweak: impl FnOnce(&mut Value)) -> Self {
        init();
        let id = unique_id(name);
        let dir = tempfile::Builder::new()
            .prefix("crius-mon-")
            .tempdir()
            .expect("tempdir");
        let container = TestContainer {
            id,
            dir,
            monitor_pid: None,
            pid: None,
            cleaned: false,
        };
        let bundle = container.bundle();
        fs::create_dir_all(bundle.join("rootfs/bin")).expect("rootfs");
        fs::copy("/bin/busybox", bundle.join("rootfs/bin/busybox")).expect("copy busybox");
        for applet in APPLETS {
            symlink("busybox", bundle.join("rootfs/bin").join(applet)).expect("applet symlink");
        }
        let spec = Command::new("runc")
            .args(["spec", "--bundle"])
            .arg(&bundle)
            .output()
            .expect("runc spec");
        assert!(
            spec.status.success(),
            "runc spec: {}",
            String::from_utf8_lossy(&spec.stderr)
        );
        let path = bundle.join("config.json");
        let mut config: Value =
            serde_json::from_slice(&fs::read(&path).expect("config.json")).expect("json");
        config["process"]["terminal"] = Value::Bool(false);
        config["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        config["root"]["readonly"] = Value::Bool(false);
        config["linux"]["cgroupsPath"] = Value::from(format!("/crius-test-{}", container.id));
        tweak(&mut config);
        fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).expect("write config");
        container
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn bundle(&self) -> PathBuf {
        self.path("bundle")
    }
    pub fn runc_root(&self) -> PathBuf {
        self.path("runc")
    }
    pub fn log_path(&self) -> PathBuf {
        self.path("ctr.log")
    }
    pub fn exit_path(&self) -> PathBuf {
        self.path("exit.json")
    }
    pub fn attach_path(&self) -> PathBuf {
        self.path("attach.sock")
    }
    pub fn control_path(&self) -> PathBuf {
        self.path("control.sock")
    }

    /// The usual `container` command line, plus `extra`.
    pub fn monitor_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec!["container".into(), "--id".into(), self.id.clone()];
        args.extend(runtime_flags());
        for (flag, value) in [
            ("--bundle", self.bundle()),
            ("--runtime-root", self.runc_root()),
            ("--exit-file", self.exit_path()),
            ("--log-path", self.log_path()),
            ("--attach-socket", self.attach_path()),
            ("--control-socket", self.control_path()),
        ] {
            args.push(flag.into());
            args.push(value.to_string_lossy().into_owned());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Runs the launcher with `args`; returns its stdout (the sync pipe) once it exited 0.
    pub fn launch(&self, args: &[String]) -> ChildStdout {
        let stderr = fs::File::create(self.path("monitor.err")).expect("monitor.err");
        let mut child = Command::new(MONITOR)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn crius-monitor");
        let status = child.wait().expect("wait for the launcher");
        assert!(
            status.success(),
            "launcher failed: {status}: {}",
            self.monitor_stderr()
        );
        child.stdout.take().expect("stdout")
    }

    /// Reads the sync message and remembers the pids it names.
    pub fn read_sync(&mut self, stdout: ChildStdout) -> Value {
        let mut text = String::new();
        BufReader::new(stdout)
            .read_line(&mut text)
            .expect("read sync pipe");
        let sync: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "sync message {text:?}: {e}; stderr: {}",
                self.monitor_stderr()
            )
        });
        self.pid = sync["pid"].as_i64().map(|p| p as i32);
        self.monitor_pid = sync["monitor_pid"].as_i64().map(|p| p as i32);
        sync
    }

    /// Starts a monitor for the container and waits until the container is created.
    pub fn create(&mut self, extra: &[&str]) -> Value {
        let stdout = self.launch(&self.monitor_args(extra));
        let sync = self.read_sync(stdout);
        assert!(sync["pid"].as_i64().is_some(), "create failed: {sync}");
        sync
    }

    pub fn runc(&self, args: &[&str]) -> Output {
        let cmd = runtime_command();
        Command::new(&cmd[0])
            .args(&cmd[1..])
            .arg("--root")
            .arg(self.runc_root())
            .args(args)
            .output()
            .expect("run runc")
    }

    pub fn start(&self) {
        let out = self.runc(&["start", &self.id]);
        assert!(
            out.status.success(),
            "runc start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn runc_status(&self) -> Option<String> {
        let out = self.runc(&["state", &self.id]);
        let state: Value = serde_json::from_slice(&out.stdout).ok()?;
        state["status"].as_str().map(str::to_string)
    }

    pub fn monitor_stderr(&self) -> String {
        fs::read_to_string(self.path("monitor.err")).unwrap_or_default()
    }

    pub fn wait_exit(&self, timeout: Duration) -> Value {
        let text =
            wait_for(timeout, || fs::read_to_string(self.exit_path()).ok()).unwrap_or_else(|| {
                panic!(
                    "no exit file after {timeout:?}; monitor stderr: {}",
                    self.monitor_stderr()
                )
            });
        serde_json::from_str(&text).expect("exit file JSON")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Sends one control command and returns the reply line.
    pub fn control(&self, command: &str) -> String {
        let mut conn = UnixStream::connect(self.control_path()).expect("connect control socket");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        conn.write_all(format!("{command}\n").as_bytes())
            .expect("send command");
        let mut reply = String::new();
        BufReader::new(conn)
            .read_line(&mut reply)
            .expect("read reply");
        reply
    }

    /// Kills and deletes the container, reaps the monitor, removes the cgroups, and reports what
    /// was still there that should not have been.
    pub fn cleanup(&mut self) -> Vec<String> {
        self.cleaned = true;
        let mut leaks = Vec::new();
        if self.runc_status().is_some_and(|s| s != "stopped") {
            let _ = self.runc(&["kill", &self.id, "KILL"]);
        }
        let _ = self.runc(&["delete", "--force", &self.id]);
        if let Some(pid) = self.monitor_pid
            && !reap(pid, Duration::from_secs(10))
        {
            leaks.push(format!("monitor {pid} still running"));
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            reap(pid, Duration::from_secs(5));
        }
        if let Some(pid) = self.pid
            && let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status"))
            && !status.contains("State:\tZ")
            && fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains(&self.id))
        {
            leaks.push(format!("container process {pid} still running"));
        }
        if self.runc_root().join(&self.id).exists() {
            leaks.push("runc still knows the container".into());
        }
        for dir in cgroup_dirs(&self.id) {
            if dir.exists() {
                leaks.push(format!("cgroup {} left", dir.display()));
                let _ = fs::remove_dir(&dir);
            }
        }
        leaks
    }

    /// Cleans up and fails the test if anything leaked.
    pub fn assert_clean(mut self) {
        let leaks = self.cleanup();
        assert!(leaks.is_empty(), "leaked: {leaks:?}");
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        if !self.cleaned {
            let leaks = self.cleanup();
            if !leaks.is_empty() {
                eprintln!("cleanup after failure: {leaks:?}");
            }
        }
    }
}

/// The OCI runtime the monitor drives in these tests: Debian's runc, or the command line in
/// `$CRIUS_MONITOR_RUNTIME` (e.g. `target/debug/crius oci`), as hack/test.sh runs them a second time.
pub fn runtime_command() -> Vec<String> {
    match std::env::var("CRIUS_MONITOR_RUNTIME") {
        Ok(cmd) if !cmd.trim().is_empty() => cmd.split_whitespace().map(str::to_string).collect(),
        _ => vec!["runc".to_string()],
    }
}

/// `--runtime P [--runtime-arg A]...` for the monitor's command line.
pub fn runtime_flags() -> Vec<String> {
    let cmd = runtime_command();
    let mut flags = vec!["--runtime".to_string(), cmd[0].clone()];
    for arg in &cmd[1..] {
        flags.push("--runtime-arg".to_string());
        flags.push(arg.clone());
    }
    flags
}

/// `/crius-test-<id>` in every cgroup hierarchy mounted under /sys/fs/cgroup. Each test has its
/// own top-level cgroup: a shared parent could be removed by one test while another's runtime
/// is creating its child in it.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut dirs = vec![Path::new("/sys/fs/cgroup").join(format!("crius-test-{id}"))];
    if let Ok(entries) = fs::read_dir("/sys/fs/cgroup") {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(entry.path().join(format!("crius-test-{id}")));
            }
        }
    }
    dirs
}

/// Waits for our (adopted) child `pid` to exit and reaps it; false if it is still running.
pub fn reap(pid: i32, timeout: Duration) -> bool {
    wait_for(timeout, || {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => None,
            Ok(_) | Err(_) => Some(()),
        }
    })
    .is_some()
}

pub fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
        && !fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| s.contains("State:\tZ"))
}

pub fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One parsed CRI log entry.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub stream: String,
    pub tag: String,
    pub content: String,
}

/// Parses a CRI log, checking every entry's shape (nanosecond UTC timestamp, stream, tag).
pub fn parse_log(log: &str) -> Vec<Entry> {
    log.split_inclusive('\n')
        .map(|line| {
            let line = line
                .strip_suffix('\n')
                .unwrap_or_else(|| panic!("unterminated entry {line:?}"));
            let mut parts = line.splitn(4, ' ');
            let ts = parts.next().unwrap_or_default();
            let stream = parts.next().unwrap_or_default().to_string();
            let tag = parts.next().unwrap_or_default().to_string();
            let content = parts
                .next()
                .unwrap_or_else(|| panic!("short entry {line:?}"))
                .to_string();
            assert!(
                ts.len() == 30
                    && ts.as_bytes()[10] == b'T'
                    && ts.ends_with('Z')
                    && ts.as_bytes()[19] == b'.',
                "timestamp {ts:?}"
            );
            assert!(
                stream == "stdout" || stream == "stderr",
                "stream {stream:?}"
            );
            assert!(tag == "P" || tag == "F", "tag {tag:?}");
            Entry {
                stream,
                tag,
                content,
            }
        })
        .collect()
}

/// The text a stream carried, reassembled the way the kubelet does (P joins, F ends a line).
pub fn stream_text(entries: &[Entry], stream: &str) -> String {
    let mut text = String::new();
    for e in entries.iter().filter(|e| e.stream == stream) {
        text.push_str(&e.content);
        if e.tag == "F" {
            text.push('\n');
        }
    }
    text
}

/// An attach connection speaking the frame protocol.
pub struct AttachClient(pub UnixStream);

impl AttachClient {
    pub fn connect(path: &Path) -> Self {
        let stream = UnixStream::connect(path).expect("connect attach socket");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        AttachClient(stream)
    }

    pub fn send(&mut self, kind: u8, payload: &[u8]) {
        let mut frame = vec![kind];
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(payload);
        self.0.write_all(&frame).expect("send frame");
    }

    /// The next frame, or None at end of file.
    pub fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut header = [0u8; 5];
        match self.0.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) => panic!("reading a frame: {e}"),
        }
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut payload = vec![0u8; len];
        self.0.read_exact(&mut payload).expect("frame payload");
        Some((header[0], payload))
    }

    /// Output of one kind until `want` was seen (or end of file).
    pub fn read_until(&mut self, kind: u8, want: &str) -> String {
        let mut text = String::new();
        while !text.contains(want) {
            match self.recv() {
                Some((k, data)) if k == kind => text.push_str(&String::from_utf8_lossy(&data)),
                Some(_) => {}
                None => break,
            }
        }
        text
    }
}

/// Standard base64 decoding, for exec-sync's output.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 byte {c}"),
        }
    };
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(4) {
        let data: Vec<u8> = chunk.iter().copied().filter(|&c| c != b'=').collect();
        let mut n = 0u32;
        for (i, &c) in data.iter().enumerate() {
            n |= value(c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..data.len()]);
    }
    out
}

/// Runs `crius-monitor exec-sync` against `container` and returns its JSON answer and exit code.
pub fn exec_sync(container: &TestContainer, extra: &[&str]) -> (Value, i32) {
    let out = Command::new(MONITOR)
        .args(["exec-sync", "--id", &container.id])
        .args(runtime_flags())
        .arg("--runtime-root")
        .arg(container.runc_root())
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run exec-sync");
    let text = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "exec-sync answer {text:?}: {e}; stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (value, out.status.code().unwrap_or(-1))
}
