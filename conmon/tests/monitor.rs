//! The real `crius-monitor` binary driving Debian's runc on busybox containers. Every test ends by
//! checking that no container, cgroup or process is left behind.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const CLOSE_STDIN: u8 = 3;

const SECONDS_10: Duration = Duration::from_secs(10);

#[test]
fn exit_code_and_cri_log() {
    let mut c = TestContainer::new(
        "exit3",
        &[
            "sh",
            "-c",
            "echo out; echo err >&2; echo; printf 'dos\\r\\n'; printf partial; exit 3",
        ],
        |_| {},
    );
    c.create(&[]);
    c.start();
    let exit = c.wait_exit(SECONDS_10);
    assert_eq!(exit["exit_code"], 3);
    assert_eq!(exit["signal"], Value::Null);
    assert_eq!(exit["oom_killed"], false);
    assert!(
        exit["finished_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    let entries = parse_log(&c.log());
    assert_eq!(stream_text(&entries, "stdout"), "out\n\ndos\r\npartial");
    assert_eq!(stream_text(&entries, "stderr"), "err\n");
    // The unterminated end stays a partial entry, as cri-o writes it.
    let last = entries
        .iter()
        .rfind(|e| e.stream == "stdout")
        .expect("stdout entries");
    assert_eq!((last.tag.as_str(), last.content.as_str()), ("P", "partial"));
    assert!(c.log().contains(" stdout F dos\r\n"));
    assert!(c.log().contains(" stdout F \n"));
    c.assert_clean();
}

#[test]
fn long_lines_are_split() {
    let mut c = TestContainer::new(
        "long",
        &[
            "sh",
            "-c",
            "head -c 2500 /dev/zero | tr '\\0' a; echo; echo short",
        ],
        |_| {},
    );
    c.create(&["--log-max-line", "1000"]);
    c.start();
    c.wait_exit(SECONDS_10);
    let entries = parse_log(&c.log());
    assert!(entries.iter().all(|e| e.content.len() <= 1000));
    let long: Vec<_> = entries
        .iter()
        .take_while(|e| e.content != "short")
        .collect();
    assert!(long.len() >= 3, "{long:?}");
    let (last, parts) = long.split_last().expect("entries");
    assert!(parts.iter().all(|e| e.tag == "P"));
    assert_eq!(last.tag, "F");
    assert_eq!(
        stream_text(&entries, "stdout"),
        format!("{}\nshort\n", "a".repeat(2500))
    );
    c.assert_clean();
}

#[test]
fn sigkill_reports_signal_9() {
    let mut c = TestContainer::new("sigkill", &["sleep", "1000"], |_| {});
    c.create(&[]);
    c.start();
    let out = c.runc(&["kill", &c.id, "KILL"]);
    assert!(out.status.success());
    let exit = c.wait_exit(SECONDS_10);
    assert_eq!(exit["exit_code"], 137);
    assert_eq!(exit["signal"], 9);
    assert_eq!(exit["oom_killed"], false);
    c.assert_clean();
}

#[test]
fn oom_kill_is_flagged() {
    let mut c = TestContainer::new(
        "oom",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
        |config| {
            config["linux"]["resources"]["memory"] = serde_json::json!({ "limit": 8 << 20 });
        },
    );
    c.create(&[]);
    c.start();
    let exit = c.wait_exit(SECONDS_10);
    assert_eq!(
        exit["oom_killed"],
        true,
        "{exit}; monitor: {}",
        c.monitor_stderr()
    );
    assert_eq!(exit["exit_code"], 137);
    assert_eq!(exit["signal"], 9);
    c.assert_clean();
}

#[test]
fn log_reopen_moves_to_a_new_file() {
    let mut c = TestContainer::new(
        "reopen",
        &[
            "sh",
            "-c",
            "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.05; done",
        ],
        |_| {},
    );
    c.create(&[]);
    c.start();
    wait_for(SECONDS_10, || c.log().contains("line3").then_some(())).expect("first lines");
    let rotated = c.path("ctr.log.1");
    fs::rename(c.log_path(), &rotated).expect("rotate");
    assert_eq!(c.control("reopen-log"), "ok\n");
    wait_for(SECONDS_10, || {
        (parse_log(&c.log()).len() >= 3).then_some(())
    })
    .expect("lines in the new file");
    let out = c.runc(&["kill", &c.id, "KILL"]);
    assert!(out.status.success());
    c.wait_exit(SECONDS_10);

    // Together the two files hold every line exactly once, the old one the first ones.
    let number = |e: &Entry| -> u32 {
        e.content
            .trim_start_matches("line")
            .parse()
            .expect("line number")
    };
    let old: Vec<u32> = parse_log(&fs::read_to_string(&rotated).expect("rotated"))
        .iter()
        .map(number)
        .collect();
    let new: Vec<u32> = parse_log(&c.log()).iter().map(number).collect();
    assert!(!old.is_empty() && new.len() >= 3);
    let all: Vec<u32> = old.iter().chain(&new).copied().collect();
    assert_eq!(all, (0..all.len() as u32).collect::<Vec<_>>());
    wait_for(SECONDS_10, || (!c.control_path().exists()).then_some(()))
        .expect("control socket removed");
    c.assert_clean();
}

#[test]
fn attach_clients_share_output_and_stdin() {
    let mut c = TestContainer::new("attach", &["cat"], |_| {});
    c.create(&["--stdin", "--stdin-once"]);
    let mut a = AttachClient::connect(&c.attach_path());
    let mut b = AttachClient::connect(&c.attach_path());
    c.start();
    a.send(STDIN, b"hello\n");
    assert_eq!(a.read_until(STDOUT, "hello\n"), "hello\n");
    assert_eq!(b.read_until(STDOUT, "hello\n"), "hello\n");
    b.send(STDIN, b"from b\n");
    assert_eq!(a.read_until(STDOUT, "from b\n"), "from b\n");
    assert_eq!(b.read_until(STDOUT, "from b\n"), "from b\n");
    // stdin-once: the client that used stdin closing it ends `cat`.
    a.send(CLOSE_STDIN, b"");
    let exit = c.wait_exit(SECONDS_10);
    assert_eq!(exit["exit_code"], 0);
    assert_eq!(a.recv(), None);
    assert_eq!(b.recv(), None);
    assert_eq!(
        stream_text(&parse_log(&c.log()), "stdout"),
        "hello\nfrom b\n"
    );
    c.assert_clean();
}

#[test]
fn stdin_once_closes_when_the_client_leaves() {
    let mut c = TestContainer::new("stdinonce", &["cat"], |_| {});
    c.create(&["--stdin", "--stdin-once"]);
    let mut a = AttachClient::connect(&c.attach_path());
    c.start();
    a.send(STDIN, b"bye\n");
    assert_eq!(a.read_until(STDOUT, "bye\n"), "bye\n");
    drop(a);
    assert_eq!(c.wait_exit(SECONDS_10)["exit_code"], 0);
    c.assert_clean();
}

#[test]
fn terminal_output_and_resize() {
    let mut c = TestContainer::new("tty", &["sh", "-c", "stty size; echo tty-ok"], |config| {
        config["process"]["terminal"] = Value::Bool(true);
    });
    c.create(&["--terminal"]);
    assert_eq!(c.control("resize 40 100"), "ok\n");
    c.start();
    assert_eq!(c.wait_exit(SECONDS_10)["exit_code"], 0);
    // The pty turns \n into \r\n; the log keeps the \r.
    let entries = parse_log(&c.log());
    assert_eq!(stream_text(&entries, "stdout"), "40 100\r\ntty-ok\r\n");
    c.assert_clean();
}

#[test]
fn container_survives_its_launcher_being_killed() {
    let mut c = TestContainer::new(
        "survive",
        &[
            "sh",
            "-c",
            "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.05; done",
        ],
        |_| {},
    );
    // A stand-in daemon: a shell in its own process group that starts the monitor and lingers.
    let mut daemon = Command::new("sh")
        .arg("-c")
        .arg("\"$@\"; exec sleep 1000")
        .arg("daemon")
        .arg(MONITOR)
        .args(c.monitor_args(&[]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(c.path("monitor.err")).expect("stderr file"))
        .process_group(0)
        .spawn()
        .expect("spawn the stand-in daemon");
    let mut line = String::new();
    BufReader::new(daemon.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("sync line");
    let sync: Value = serde_json::from_str(&line).expect("sync JSON");
    c.pid = sync["pid"].as_i64().map(|p| p as i32);
    c.monitor_pid = sync["monitor_pid"].as_i64().map(|p| p as i32);
    let monitor = c.monitor_pid.expect("monitor pid");
    c.start();
    wait_for(SECONDS_10, || c.log().contains("tick2").then_some(())).expect("first ticks");

    // SIGKILL the daemon's whole process group (only processes this test started).
    kill(Pid::from_raw(-(daemon.id() as i32)), Signal::SIGKILL).expect("kill the daemon's group");
    daemon.wait().expect("reap the daemon");

    let before = parse_log(&c.log()).len();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.runc_status().as_deref(), Some("running"));
    assert!(alive(monitor), "monitor died with its daemon");
    assert!(
        parse_log(&c.log()).len() > before,
        "the monitor stopped logging"
    );

    assert!(c.runc(&["kill", &c.id, "KILL"]).status.success());
    assert_eq!(c.wait_exit(SECONDS_10)["exit_code"], 137);
    c.assert_clean();
}

fn running_container(name: &str) -> TestContainer {
    let mut c = TestContainer::new(name, &["sleep", "1000"], |_| {});
    c.create(&[]);
    c.start();
    c
}

#[test]
fn exec_sync_captures_output_and_exit_code() {
    let c = running_container("execsync");
    let (answer, code) = exec_sync(
        &c,
        &[
            "--timeout",
            "10",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 5",
        ],
    );
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["exit_code"], 5);
    assert_eq!(answer["timed_out"], false);
    assert_eq!(
        base64_decode(answer["stdout"].as_str().expect("stdout")),
        b"out\n"
    );
    assert_eq!(
        base64_decode(answer["stderr"].as_str().expect("stderr")),
        b"err\n"
    );

    // A process.json instead of a command line, and an output limit.
    let process = serde_json::json!({
        "terminal": false,
        "user": { "uid": 0, "gid": 0 },
        "args": ["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"],
        "env": ["PATH=/bin"],
        "cwd": "/",
    });
    let path = c.path("process.json");
    fs::write(&path, process.to_string()).expect("process.json");
    let (answer, _) = exec_sync(
        &c,
        &[
            "--output-limit",
            "1000",
            "--process",
            path.to_str().expect("path"),
        ],
    );
    assert_eq!(answer["exit_code"], 0, "{answer}");
    assert_eq!(
        base64_decode(answer["stdout"].as_str().expect("stdout")),
        vec![b'x'; 1000]
    );
    assert_eq!(answer["stdout_truncated"], true);
    c.assert_clean();
}

#[test]
fn exec_sync_timeout_kills() {
    let c = running_container("exectimeout");
    let started = Instant::now();
    let (answer, _) = exec_sync(
        &c,
        &[
            "--timeout",
            "1",
            "--",
            "sh",
            "-c",
            "echo begun; exec sleep 77",
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(answer["timed_out"], true, "{answer}");
    assert_eq!(answer["signal"], 9);
    assert_eq!(answer["exit_code"], 137);
    assert_eq!(
        base64_decode(answer["stdout"].as_str().expect("stdout")),
        b"begun\n"
    );
    let ps = c.runc(&["ps", &c.id]);
    assert!(
        !String::from_utf8_lossy(&ps.stdout).contains("sleep 77"),
        "exec process left running"
    );
    c.assert_clean();
}

#[test]
fn exec_sync_in_a_missing_container_is_an_error() {
    init();
    let c = TestContainer::new("execmissing", &["true"], |_| {});
    let (answer, code) = exec_sync(&c, &["--", "true"]);
    assert_eq!(code, 1);
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("runtime exec failed")),
        "{answer}"
    );
    c.assert_clean();
}

#[test]
fn exec_with_attach() {
    let c = running_container("exec");
    let exit_file = c.path("exec-exit.json");
    let attach = c.path("exec-attach.sock");
    let mut args: Vec<String> = vec!["exec".into(), "--id".into(), c.id.clone()];
    args.extend(runtime_flags());
    args.push("--runtime-root".into());
    args.push(c.runc_root().to_string_lossy().into_owned());
    for (flag, path) in [("--exit-file", &exit_file), ("--attach-socket", &attach)] {
        args.push(flag.into());
        args.push(path.to_string_lossy().into_owned());
    }
    args.extend(["--", "sh", "-c", "echo exec-out; exit 4"].map(String::from));
    let stdout = c.launch(&args);
    // The process starts once the first attach client is there, so none of its output is lost.
    let mut client = AttachClient::connect(&attach);
    let mut sync = String::new();
    BufReader::new(stdout).read_line(&mut sync).expect("sync");
    let sync: Value = serde_json::from_str(&sync).expect("sync JSON");
    let exec_monitor = sync["monitor_pid"].as_i64().expect("monitor pid") as i32;
    assert_eq!(client.read_until(STDOUT, "exec-out\n"), "exec-out\n");
    assert_eq!(client.recv(), None);
    let exit: Value = serde_json::from_str(
        &wait_for(SECONDS_10, || fs::read_to_string(&exit_file).ok()).expect("exec exit file"),
    )
    .expect("exit JSON");
    assert_eq!(exit["exit_code"], 4);
    assert!(reap(exec_monitor, SECONDS_10), "exec monitor still running");
    assert!(!attach.exists());
    c.assert_clean();
}

#[test]
fn create_failure_is_reported() {
    let mut c = TestContainer::new("badbundle", &["true"], |config| {
        config["root"]["path"] = Value::from("no-such-rootfs");
    });
    let stdout = c.launch(&c.monitor_args(&[]));
    let sync = c.read_sync(stdout);
    let error = sync["error"].as_str().unwrap_or_default();
    assert!(error.contains("runtime create failed"), "{sync}");
    assert!(!c.exit_path().exists());
    let stderr = c.monitor_stderr();
    assert!(stderr.contains("runtime create failed"), "{stderr}");
    c.assert_clean();
}

#[test]
fn rss_stays_small() {
    let mut c = TestContainer::new("rss", &["sleep", "1000"], |_| {});
    c.create(&[]);
    c.start();
    let monitor = c.monitor_pid.expect("monitor pid");
    let status = fs::read_to_string(format!("/proc/{monitor}/status")).expect("status");
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    eprintln!("crius-monitor VmRSS: {rss_kb} kB");
    // Debug builds are larger than release ones; this only catches gross regressions.
    assert!(rss_kb < 4096, "monitor RSS {rss_kb} kB");
    c.assert_clean();
}

/// After 2 s without events the monitor unmaps its code pages (docs/monitor.md, "Footprint");
/// output, control commands and the exit after such quiet periods are handled as before.
#[test]
fn quiet_periods_change_nothing() {
    let mut c = TestContainer::new(
        "quiet",
        &[
            "sh",
            "-c",
            "echo one; sleep 3; echo two; sleep 3; echo three; exit 4",
        ],
        |_| {},
    );
    c.create(&[]);
    c.start();
    wait_for(SECONDS_10, || c.log().contains("one").then_some(())).expect("first line");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(c.control("reopen-log"), "ok\n");
    let exit = c.wait_exit(SECONDS_10);
    assert_eq!(exit["exit_code"], 4);
    let entries = parse_log(&c.log());
    assert_eq!(stream_text(&entries, "stdout"), "one\ntwo\nthree\n");
    c.assert_clean();
}
