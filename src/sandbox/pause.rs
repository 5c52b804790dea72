//! `crius pause`: the pod's infra process, behaving like Kubernetes' pause. It holds the pod's
//! namespaces open, reaps the children it inherits (it may be pid 1 of the pod's pid namespace)
//! and exits 0 on SIGINT or SIGTERM. It also works when it is not pid 1.
//!
//! Signals are blocked and taken synchronously with sigwait: no handler runs, and the whole
//! loop stays async-signal-safe (no allocation), so it can also run in a forked child.

use std::ffi::OsString;
use std::process::ExitCode;

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

const USAGE: &str = "usage: crius pause [-v|--version]\n\
                     Waits for SIGINT or SIGTERM (then exits 0) and reaps its children.\n";

/// `crius pause [args]`: `-v`/`--version` and `-h`/`--help` are answered; other arguments are
/// ignored, as Kubernetes' pause ignores them.
pub fn main(args: Vec<OsString>) -> ExitCode {
    for arg in &args {
        if arg == "-v" || arg == "--version" {
            println!("crius pause {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        if arg == "-h" || arg == "--help" {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
    }
    match run() {
        Ok(signal) => {
            eprintln!("Shutting down, got signal: {}", signal.as_str());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("crius pause: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The pause loop: returns the signal (SIGINT or SIGTERM) that asks it to stop. Reaps every
/// exited child on SIGCHLD. Async-signal-safe.
pub fn run() -> Result<Signal, Errno> {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGCHLD] {
        set.add(signal);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    // A handler (never run: the signals stay blocked) replaces an inherited SIG_IGN, under
    // which the kernel would drop SIGTERM or reap children behind our back.
    let action = SigAction::new(
        SigHandler::Handler(ignore),
        SaFlags::SA_NOCLDSTOP | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in set.iter() {
        // SAFETY: `ignore` does nothing, so it is async-signal-safe.
        unsafe { sigaction(signal, &action) }?;
    }
    // Children that exited before SIGCHLD was blocked left no pending signal.
    reap();
    loop {
        match set.wait() {
            Ok(Signal::SIGCHLD) => reap(),
            Ok(signal) => return Ok(signal),
            Err(Errno::EINTR) => {}
            Err(err) => return Err(err),
        }
    }
}

extern "C" fn ignore(_: libc::c_int) {}

/// Collects every exited child, ours or inherited orphans.
fn reap() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use nix::sys::signal::kill;
    use nix::unistd::{ForkResult, fork};

    use super::*;

    /// Kills and reaps a forked test child if the test did not.
    struct Child(Pid);

    impl Drop for Child {
        fn drop(&mut self) {
            if kill(self.0, Signal::SIGKILL).is_ok() {
                let _ = waitpid(self.0, None);
            }
        }
    }

    /// Forks a child running the pause loop; `before` runs in the child first.
    fn spawn_pause(before: impl FnOnce()) -> Child {
        // SAFETY: the child only makes async-signal-safe calls (run, write, _exit).
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                before();
                let code = match run() {
                    Ok(Signal::SIGTERM) => 0,
                    Ok(Signal::SIGINT) => 3,
                    _ => 1,
                };
                // SAFETY: leaves the forked child without running the test harness' exit code.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => Child(child),
        }
    }

    /// Waits until `pid` has its (never run) handlers for SIGINT, SIGTERM and SIGCHLD, installed
    /// after blocking them. SigBlk would not do: sigwait unblocks the awaited signals meanwhile.
    fn wait_ready(pid: Pid) {
        let want = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGCHLD]
            .iter()
            .fold(0u64, |acc, s| acc | 1 << (*s as i32 - 1));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            let caught = status
                .lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
                .unwrap();
            if caught & want == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        panic!("pause {pid} never got ready:\n{status}");
    }

    fn finish(child: &Child, signal: Signal) -> WaitStatus {
        kill(child.0, signal).unwrap();
        waitpid(child.0, None).unwrap()
    }

    #[test]
    fn exits_zero_on_sigterm() {
        let child = spawn_pause(|| {});
        wait_ready(child.0);
        assert_eq!(
            finish(&child, Signal::SIGTERM),
            WaitStatus::Exited(child.0, 0)
        );
    }

    #[test]
    fn returns_on_sigint() {
        let child = spawn_pause(|| {});
        wait_ready(child.0);
        assert_eq!(
            finish(&child, Signal::SIGINT),
            WaitStatus::Exited(child.0, 3)
        );
    }

    #[test]
    fn reaps_exited_children() {
        let (read, write) = nix::unistd::pipe().unwrap();
        let child = spawn_pause(move || {
            // SAFETY: in the forked child; the grandchild only sleeps and exits.
            let grandchild = match unsafe { fork() } {
                Ok(ForkResult::Child) => unsafe {
                    let pause = libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 300_000_000,
                    };
                    libc::nanosleep(&pause, std::ptr::null_mut());
                    libc::_exit(0)
                },
                Ok(ForkResult::Parent { child }) => child.as_raw(),
                Err(_) => unsafe { libc::_exit(2) },
            };
            let bytes = grandchild.to_ne_bytes();
            let _ = nix::unistd::write(&write, &bytes);
        });
        let mut bytes = [0u8; 4];
        nix::unistd::read(&read, &mut bytes).unwrap();
        let grandchild = i32::from_ne_bytes(bytes);
        wait_ready(child.0);

        // Unreaped, the grandchild would stay in /proc as a zombie.
        let deadline = Instant::now() + Duration::from_secs(10);
        let proc_dir = format!("/proc/{grandchild}");
        while std::path::Path::new(&proc_dir).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !std::path::Path::new(&proc_dir).exists(),
            "grandchild {grandchild} not reaped"
        );
        assert_eq!(
            finish(&child, Signal::SIGTERM),
            WaitStatus::Exited(child.0, 0)
        );
    }
}
