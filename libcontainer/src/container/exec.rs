//! `exec`: run another process in a running container: join its namespaces and cgroup, apply
//! the process's user/capabilities/rlimits/seccomp, and exec.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, LinuxPersonality, Process};

use super::create::load_spec;
use super::state::{ContainerId, State, Status, write_atomic};
use super::{cgroup, cgroup_fork};
use crate::error::{Error, Result, SysContext};
use crate::process::channel::{self, Msg};
use crate::process::fork::{clone_fork, exit_with};
use crate::process::init;
use crate::tty;
use crate::{lsm, namespaces, oom_score};

#[derive(Debug, Clone)]
pub struct ExecOpts {
    pub root: PathBuf,
    pub id: ContainerId,
    pub process: Process,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub tty: bool,
    /// Extra fds (3..3+n) passed through to the process.
    pub preserve_fds: i32,
}

const ALL: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Mount,
];

/// The container's namespaces that differ from ours, in join order.
fn namespaces_of(pid: i32) -> Vec<(LinuxNamespaceType, PathBuf)> {
    let ino = |p: &Path| fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    ALL.iter()
        .filter_map(|t| {
            let name = namespaces::proc_name(*t);
            let theirs = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
            let mine = PathBuf::from(format!("/proc/self/ns/{name}"));
            let a = ino(&theirs)?;
            (Some(a) != ino(&mine)).then_some((*t, theirs))
        })
        .collect()
}

/// Returns the exit code the CLI should exit with.
pub fn exec(o: &ExecOpts) -> Result<i32> {
    let st = State::load(&o.root, &o.id)?;
    match st.status(&o.root) {
        Status::Running | Status::Created => {}
        s => {
            return Err(Error::Invalid(format!(
                "cannot exec in a container that is {s}"
            )));
        }
    }
    let mut process = o.process.clone();
    if o.tty {
        process.set_terminal(Some(true));
    }
    let terminal = process.terminal().unwrap_or(false);
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::Invalid("process.args must not be empty".into()));
    }
    let console = match (&o.console_socket, terminal) {
        (Some(p), true) => Some(tty::connect(p)?),
        (None, true) => {
            return Err(Error::Invalid(
                "terminal requested: --console-socket is required".into(),
            ));
        }
        _ => None,
    };
    lsm::Host::default()
        .check(&process, None)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    // The container's seccomp profile and personality apply to exec'd processes too.
    let linux = load_spec(&st.bundle).ok().and_then(|s| s.linux().clone());
    let seccomp = init::prepare_seccomp(linux.as_ref().and_then(|l| l.seccomp().as_ref()))?;
    let persona = linux.as_ref().and_then(|l| l.personality().clone());
    let join = namespaces_of(st.pid);
    let manager = cgroup::manager(&st)?;

    let (parent_ch, child_ch) = channel::pair()?;
    // Without --detach, signals sent to us are forwarded to the process. Block them (and
    // SIGCHLD, to notice the exit) before forking so none is lost; children restore the mask.
    let forwarded = forwarded_signals();
    let old_mask = if o.detach {
        None
    } else {
        let mut old = SigSet::empty();
        let mut block = forwarded;
        block.add(Signal::SIGCHLD);
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&block), Some(&mut old))
            .ctx("sigprocmask", "exec")?;
        Some(old)
    };
    // Born in the cgroup (v2) or joining it itself (v1): `cgroup_fork`.
    let (forked, pending) = cgroup_fork::fork(Some(manager.as_ref())).ctx("fork", "exec")?;
    let stage1 = match forked {
        None => {
            drop(parent_ch);
            if let Some(old) = &old_mask {
                let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(old), None);
            }
            let r = (|| -> Result<()> {
                child_ch.expect(&Msg::Continue)?;
                pending
                    .child_joins()
                    .map_err(|e| Error::Invalid(format!("joining cgroup: {e}")))?;
                oom_score::preset(process.oom_score_adj())
                    .map_err(|e| Error::Invalid(format!("setting oom_score_adj: {e}")))?;
                namespaces::join(&join)?;
                match clone_fork(libc::CLONE_PARENT).ctx("fork", "exec process")? {
                    Some(pid) => child_ch.send(&Msg::Pid(pid.as_raw())),
                    None => {
                        let r = run_in_container(
                            &process,
                            seccomp,
                            persona.as_ref(),
                            console,
                            o.preserve_fds,
                        )
                        .map_err(|e| e.to_string());
                        exit_with(r, |e| {
                            let _ = child_ch.send(&Msg::Error(e.to_string()));
                        })
                    }
                }
            })()
            .map_err(|e| e.to_string());
            exit_with(r, |e| {
                let _ = child_ch.send(&Msg::Error(e.to_string()));
            })
        }
        Some(p) => p,
    };
    drop(child_ch);
    drop(console);
    let added = pending.parent_adds(Some(manager.as_ref()), stage1);
    let reap = |p: Pid| {
        let _ = waitpid(p, None);
    };
    if let Err(e) = added {
        let _ = nix::sys::signal::kill(stage1, nix::sys::signal::Signal::SIGKILL);
        reap(stage1);
        return Err(Error::Invalid(format!("joining cgroup: {e}")));
    }
    parent_ch.send(&Msg::Continue)?;
    let pid = match parent_ch.recv()? {
        Some(Msg::Pid(p)) => Pid::from_raw(p),
        Some(Msg::Error(e)) => {
            reap(stage1);
            return Err(Error::Child(e));
        }
        other => {
            reap(stage1);
            return Err(Error::Invalid(format!("exec: unexpected {other:?}")));
        }
    };
    reap(stage1);
    // The exec'd process closes its end on execve (CLOEXEC): EOF means success.
    match parent_ch.recv()? {
        None => {}
        Some(Msg::Error(e)) => {
            reap(pid);
            return Err(Error::Child(e));
        }
        Some(m) => return Err(Error::Invalid(format!("exec: unexpected {m:?}"))),
    }
    if let Some(f) = &o.pid_file {
        write_atomic(f, pid.to_string().as_bytes())?;
    }
    if o.detach {
        return Ok(0);
    }
    let mut waitset = forwarded;
    waitset.add(Signal::SIGCHLD);
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(c),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("waitpid", pid.to_string(), e)),
        }
        match waitset.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(sig) => {
                let _ = nix::sys::signal::kill(pid, sig);
            }
        }
    }
}

/// Signals a non-detached `exec` passes on to the process (like runc's signal proxy).
fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    set
}

fn run_in_container(
    process: &Process,
    seccomp: init::PreparedSeccomp,
    persona: Option<&LinuxPersonality>,
    console: Option<std::os::fd::OwnedFd>,
    preserve_fds: i32,
) -> Result<()> {
    if let Some(socket) = console {
        nix::unistd::setsid().ctx("setsid", "exec")?;
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        let (master, name) = tty::setup_pty(size)?;
        tty::send_fd(&socket, &master, &name)?;
    }
    let prepared = init::prepare(process, seccomp)?;
    init::finalize_and_exec(process, prepared, persona, preserve_fds)
}
