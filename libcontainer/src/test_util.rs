//! Test helper: run a closure in a forked child.
//!
//! The security calls under test (capset, setresuid, seccomp, prctl,
//! setrlimit, oom_score_adj) change the calling process/thread irreversibly,
//! so each test does them in a child. The child is single-threaded after
//! fork, like the container init. glibc's malloc is fork-safe; children avoid
//! stdout/stderr and report back through a pipe instead.

use std::io::Read;
use std::os::fd::AsRawFd;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, pipe2};

/// Tests that need real privileges (setresuid, capset, setgroups, ...) call
/// this and skip, with a note on stderr, when not running as root.
pub fn require_root(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipped {test}: needs root");
    }
    root
}

/// What the child reported.
#[derive(Debug, PartialEq, Eq)]
pub enum ChildResult {
    /// The closure returned Ok(message).
    Ok(String),
    /// The closure returned Err(message) or panicked.
    Err(String),
    /// The child exited on its own with this status before reporting.
    Exited(i32),
    /// The child was killed by this signal.
    Signaled(i32),
}

/// Fork; run `f` in the child and `_exit`; collect its report in the parent.
pub fn fork_child<F>(f: F) -> ChildResult
where
    F: FnOnce() -> Result<String, String>,
{
    let (rd, wr) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    // SAFETY: the child only runs `f`, writes to the pipe and calls _exit.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            drop(rd);
            let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let msg = match res {
                Ok(Ok(m)) => format!("O{m}"),
                Ok(Err(m)) => format!("E{m}"),
                Err(_) => "Epanic".to_string(),
            };
            // SAFETY: writing a valid buffer to our pipe, then exiting
            // without running atexit handlers or destructors.
            unsafe {
                libc::write(wr.as_raw_fd(), msg.as_ptr().cast(), msg.len());
                libc::_exit(0)
            }
        }
        ForkResult::Parent { child } => {
            drop(wr);
            let status = waitpid(child, None).expect("waitpid");
            // Other tests may fork concurrently and hold a copy of the write
            // end, so read what is there without waiting for EOF.
            let mut file = std::fs::File::from(rd);
            nix::fcntl::fcntl(
                &file,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            )
            .expect("nonblock");
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                match file.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(_) => break,
                }
            }
            let msg = String::from_utf8_lossy(&buf).into_owned();
            match status {
                WaitStatus::Signaled(_, sig, _) => ChildResult::Signaled(sig as i32),
                WaitStatus::Exited(_, 0) if msg.starts_with('O') => {
                    ChildResult::Ok(msg[1..].to_string())
                }
                WaitStatus::Exited(_, 0) if msg.starts_with('E') => {
                    ChildResult::Err(msg[1..].to_string())
                }
                WaitStatus::Exited(_, code) => ChildResult::Exited(code),
                other => ChildResult::Err(format!("unexpected wait status {other:?}")),
            }
        }
    }
}
