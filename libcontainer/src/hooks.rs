//! Run OCI lifecycle hooks (prestart, createRuntime, createContainer,
//! startContainer, poststart, poststop).
//!
//! Each hook gets the container state JSON on stdin, runs with `args`
//! (`args[0]` is argv0, as with execv) and `env`, and is killed (its whole
//! process group) when `timeout` seconds pass. Hooks run one after another
//! and the first failure stops the phase; callers decide whether a failure is
//! fatal (OCI: poststart/poststop failures are only logged).
//!
//! No threads are spawned: stdin/stdout/stderr are multiplexed with poll(2),
//! so `run` is also safe inside the single-threaded container init
//! (startContainer hooks). The runtime binary ignores SIGPIPE (Rust default),
//! so a hook that exits without reading stdin is not a problem; std resets
//! SIGPIPE to default for the hook itself.
//!
//! `env`: `None` inherits the runtime's environment and `Some(list)` is the
//! exact environment, matching runc (Go's exec.Cmd with nil vs non-nil Env).

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use oci_spec::runtime::Hook;

/// How much of a hook's stdout/stderr is kept for error messages (the tail).
const OUTPUT_LIMIT: usize = 4096;
/// Poll slice: how often the hook's exit and the deadline are checked.
const POLL_SLICE_MS: u16 = 50;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{phase} hook {path}: path must be absolute")]
    RelativePath { phase: String, path: PathBuf },
    #[error("{phase} hook {path}: timeout must be > 0, got {timeout}")]
    InvalidTimeout {
        phase: String,
        path: PathBuf,
        timeout: i64,
    },
    #[error("{phase} hook {path}: {op}: {source}")]
    Io {
        phase: String,
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{phase} hook {path} failed ({status}); stderr: {stderr:?}; stdout: {stdout:?}")]
    Failed {
        phase: String,
        path: PathBuf,
        status: String,
        stdout: String,
        stderr: String,
    },
    #[error("{phase} hook {path} timed out after {timeout}s and was killed; stderr: {stderr:?}")]
    TimedOut {
        phase: String,
        path: PathBuf,
        timeout: i64,
        stderr: String,
    },
}

/// Run `hooks` in order for lifecycle `phase` (used in errors and logs).
pub fn run(hooks: &[Hook], state_json: &str, phase: &str) -> Result<(), HookError> {
    for hook in hooks {
        tracing::debug!(phase, path = %hook.path().display(), "running hook");
        run_one(hook, state_json, phase)?;
    }
    Ok(())
}

/// Keeps the last OUTPUT_LIMIT bytes of a stream.
#[derive(Default)]
struct Tail {
    buf: Vec<u8>,
    truncated: bool,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if self.buf.len() > 2 * OUTPUT_LIMIT {
            let cut = self.buf.len() - OUTPUT_LIMIT;
            self.buf.drain(..cut);
            self.truncated = true;
        }
    }

    fn text(&self) -> String {
        let start = self.buf.len().saturating_sub(OUTPUT_LIMIT);
        let s = String::from_utf8_lossy(&self.buf[start..]);
        if self.truncated || start > 0 {
            format!("…{}", s.trim_end())
        } else {
            s.trim_end().to_string()
        }
    }
}

fn set_nonblocking(fd: impl AsFd) -> std::io::Result<()> {
    let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFL)?;
    fcntl(
        fd.as_fd(),
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}

/// Read whatever is available; returns false at EOF or on error.
fn drain(src: &mut impl Read, tail: &mut Tail) -> bool {
    let mut chunk = [0u8; 4096];
    loop {
        match src.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => tail.push(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

fn run_one(hook: &Hook, state_json: &str, phase: &str) -> Result<(), HookError> {
    let path = hook.path().clone();
    let io_err = |op, source| HookError::Io {
        phase: phase.to_string(),
        path: path.clone(),
        op,
        source,
    };
    if !path.is_absolute() {
        return Err(HookError::RelativePath {
            phase: phase.to_string(),
            path,
        });
    }
    let timeout = match hook.timeout() {
        Some(t) if t <= 0 => {
            return Err(HookError::InvalidTimeout {
                phase: phase.to_string(),
                path,
                timeout: t,
            });
        }
        t => t,
    };

    let mut cmd = Command::new(&path);
    if let Some((argv0, rest)) = hook.args().as_deref().and_then(<[String]>::split_first) {
        cmd.arg0(argv0).args(rest);
    }
    if let Some(env) = hook.env() {
        cmd.env_clear();
        for kv in env {
            match kv.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    cmd.env(k, v);
                }
                _ => tracing::warn!(phase, entry = %kv, "ignoring malformed hook env entry"),
            }
        }
    }
    // Own process group, so a timeout kills whatever the hook started too.
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| io_err("spawn", e))?;
    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs(t.unsigned_abs()));

    let result = supervise(&mut child, state_json.as_bytes(), deadline);
    let (status, out, err) = match result {
        Ok(v) => v,
        Err(Supervise::TimedOut(err_tail)) => {
            return Err(HookError::TimedOut {
                phase: phase.to_string(),
                path,
                timeout: timeout.unwrap_or_default(),
                stderr: err_tail.text(),
            });
        }
        Err(Supervise::Io(op, e)) => {
            kill_group(&mut child);
            return Err(io_err(op, e));
        }
    };
    if status.success() {
        return Ok(());
    }
    Err(HookError::Failed {
        phase: phase.to_string(),
        path,
        status: status.to_string(),
        stdout: out.text(),
        stderr: err.text(),
    })
}

enum Supervise {
    TimedOut(Tail),
    Io(&'static str, std::io::Error),
}

fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // The group id is the hook's pid (process_group(0)).
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.wait();
}

/// Feed stdin, collect output tails and wait for exit or deadline.
fn supervise(
    child: &mut Child,
    input: &[u8],
    deadline: Option<Instant>,
) -> Result<(ExitStatus, Tail, Tail), Supervise> {
    let io = |op| move |e| Supervise::Io(op, e);
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    for fd in [
        stdin.as_ref().map(|f| f.as_fd()),
        stdout.as_ref().map(|f| f.as_fd()),
        stderr.as_ref().map(|f| f.as_fd()),
    ]
    .into_iter()
    .flatten()
    {
        set_nonblocking(fd).map_err(io("set O_NONBLOCK"))?;
    }
    let (mut out, mut err) = (Tail::default(), Tail::default());
    let mut written = 0;
    if input.is_empty() {
        stdin = None;
    }

    loop {
        if let Some(status) = child.try_wait().map_err(io("wait"))? {
            // Collect what is already buffered; don't wait for EOF, a
            // backgrounded grandchild may keep the pipes open.
            if let Some(s) = stdout.as_mut() {
                drain(s, &mut out);
            }
            if let Some(s) = stderr.as_mut() {
                drain(s, &mut err);
            }
            return Ok((status, out, err));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            kill_group(child);
            if let Some(s) = stderr.as_mut() {
                drain(s, &mut err);
            }
            return Err(Supervise::TimedOut(err));
        }

        let (in_ready, out_ready, err_ready) = {
            let mut fds = Vec::with_capacity(3);
            let mut slots = [None; 3];
            if let Some(f) = stdin.as_ref() {
                slots[0] = Some(fds.len());
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLOUT));
            }
            if let Some(f) = stdout.as_ref() {
                slots[1] = Some(fds.len());
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            }
            if let Some(f) = stderr.as_ref() {
                slots[2] = Some(fds.len());
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, POLL_SLICE_MS) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Supervise::Io("poll", e.into())),
            }
            let ready = |slot: Option<usize>| {
                slot.and_then(|i| fds.get(i))
                    .and_then(|p| p.revents())
                    .is_some_and(|r| !r.is_empty())
            };
            (ready(slots[0]), ready(slots[1]), ready(slots[2]))
        };

        if in_ready {
            if let Some(f) = stdin.as_mut() {
                match f.write(&input[written..]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // EPIPE: the hook closed stdin; that is its choice.
                    Err(_) => written = input.len(),
                }
            }
            if written >= input.len() {
                stdin = None; // close → EOF for the hook
            }
        }
        if out_ready && !stdout.as_mut().is_some_and(|s| drain(s, &mut out)) {
            stdout = None;
        }
        if err_ready && !stderr.as_mut().is_some_and(|s| drain(s, &mut err)) {
            stderr = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write script");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
        p
    }

    fn hook(path: &Path, args: &[&str], env: Option<&[&str]>, timeout: Option<i64>) -> Hook {
        let mut v = serde_json::json!({ "path": path });
        if !args.is_empty() {
            v["args"] = serde_json::json!(args);
        }
        if let Some(env) = env {
            v["env"] = serde_json::json!(env);
        }
        if let Some(t) = timeout {
            v["timeout"] = serde_json::json!(t);
        }
        serde_json::from_value(v).expect("hook json")
    }

    /// Retry while a freshly written script is ETXTBSY: another test's forked
    /// child may briefly hold the write fd that created it (a test-only race).
    fn retry_busy(f: impl Fn() -> Result<(), HookError>) -> Result<(), HookError> {
        for _ in 0..100 {
            match f() {
                Err(HookError::Io {
                    op: "spawn",
                    source,
                    ..
                }) if source.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other,
            }
        }
        f()
    }

    fn run_t(hooks: &[Hook], state: &str, phase: &str) -> Result<(), HookError> {
        retry_busy(|| run(hooks, state, phase))
    }

    const STATE: &str =
        r#"{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":42,"bundle":"/b"}"#;

    #[test]
    fn hooks_run_in_order_with_args_env_and_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        let l = log.display();
        // argv0 is visible only in the kernel's argv, so ask /proc.
        let h1_cmd = format!(
            r#"printf 'h1 %s|%s|%s|%s\n' "$(tr '\0' ' ' < /proc/$$/cmdline | cut -d' ' -f1)" "$0" "$1" "$FOO" >> {l}"#
        );
        let h2 = script(
            dir.path(),
            "h2",
            &format!(r#"echo "h2 $(cat) ${{CARGO_MANIFEST_DIR:-unset}}" >> {l}"#),
        );
        let h3 = script(
            dir.path(),
            "h3",
            &format!(r#"echo "h3 ${{CARGO_MANIFEST_DIR:-unset}}" >> {l}"#),
        );
        let hooks = vec![
            hook(
                Path::new("/bin/sh"),
                &["my-argv0", "-c", &h1_cmd, "zero", "one two"],
                Some(&["FOO=bar=baz"]),
                Some(5),
            ),
            // Some(empty) env: nothing inherited.
            hook(&h2, &[], Some(&[]), None),
            // No env: the runtime's environment is inherited (runc behaviour).
            hook(&h3, &[], None, None),
        ];
        // On a retry start the log afresh so earlier hooks are not counted twice.
        retry_busy(|| {
            let _ = fs::remove_file(&log);
            run(&hooks, STATE, "createRuntime")
        })
        .expect("hooks succeed");
        let got = fs::read_to_string(&log).expect("log");
        let inherited = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| "unset".into());
        assert_eq!(
            got,
            format!("h1 my-argv0|zero|one two|bar=baz\nh2 {STATE} unset\nh3 {inherited}\n")
        );
    }

    #[test]
    fn failing_hook_names_phase_path_and_stderr() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        let bad = script(
            dir.path(),
            "bad",
            "echo out-text; echo 'it broke' >&2; exit 3",
        );
        let after = script(
            dir.path(),
            "after",
            &format!("echo ran > {}", log.display()),
        );
        let hooks = vec![hook(&bad, &[], None, None), hook(&after, &[], None, None)];
        let e = run_t(&hooks, STATE, "prestart").expect_err("fails");
        let msg = e.to_string();
        assert!(msg.contains("prestart"), "{msg}");
        assert!(msg.contains(&bad.display().to_string()), "{msg}");
        assert!(msg.contains("it broke"), "{msg}");
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert!(!log.exists(), "later hooks must not run");
    }

    #[test]
    fn timeout_kills_hook_and_its_children() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("late");
        // The background child would write the marker after 3s if it survived.
        let slow = script(
            dir.path(),
            "slow",
            &format!(
                "(sleep 3; touch {}) & echo starting >&2; sleep 30",
                marker.display()
            ),
        );
        let start = Instant::now();
        let e =
            run_t(&[hook(&slow, &[], None, Some(1))], STATE, "poststart").expect_err("times out");
        let elapsed = start.elapsed();
        assert!(matches!(e, HookError::TimedOut { timeout: 1, .. }), "{e}");
        assert!(e.to_string().contains("starting"), "{e}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        std::thread::sleep(Duration::from_millis(3500) - elapsed.min(Duration::from_secs(3)));
        assert!(!marker.exists(), "process group was not killed");
    }

    #[test]
    fn hook_not_reading_stdin_and_large_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let quick = script(dir.path(), "quick", "exit 0");
        let big = "x".repeat(1 << 20);
        run_t(&[hook(&quick, &[], None, Some(10))], &big, "poststop").expect("ok");
    }

    #[test]
    fn bad_hook_definitions() {
        let e = run(
            &[hook(Path::new("rel/path"), &[], None, None)],
            STATE,
            "prestart",
        )
        .expect_err("relative");
        assert!(matches!(e, HookError::RelativePath { .. }), "{e}");
        let e = run(
            &[hook(Path::new("/bin/true"), &[], None, Some(0))],
            STATE,
            "prestart",
        )
        .expect_err("zero timeout");
        assert!(matches!(e, HookError::InvalidTimeout { .. }), "{e}");
        let e = run(
            &[hook(Path::new("/nonexistent/hook"), &[], None, None)],
            STATE,
            "prestart",
        )
        .expect_err("missing");
        assert!(e.to_string().contains("/nonexistent/hook"), "{e}");
        assert!(e.to_string().contains("spawn"), "{e}");
    }

    #[test]
    fn output_tail_is_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let noisy = script(
            dir.path(),
            "noisy",
            "head -c 100000 /dev/zero | tr '\\0' a >&2; echo END >&2; exit 1",
        );
        let e = run_t(&[hook(&noisy, &[], None, Some(10))], STATE, "prestart").expect_err("fails");
        let HookError::Failed { stderr, .. } = e else {
            panic!("unexpected {e}")
        };
        assert!(stderr.len() <= OUTPUT_LIMIT + 8, "{}", stderr.len());
        assert!(stderr.ends_with("END"), "{}", &stderr[stderr.len() - 10..]);
    }
}
