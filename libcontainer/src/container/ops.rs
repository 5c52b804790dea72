//! The lifecycle operations on an existing container: start, state, kill, delete, pause,
//! resume, update.

use std::fs;
use std::os::fd::AsFd;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::fcntl::{OFlag, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::cgroup;
use super::state::{ContainerId, EXEC_FIFO, SpecState, State, Status};
use crate::error::{Error, IoContext, Result, SysContext};
use crate::hooks;

pub fn state(root: &Path, id: &ContainerId) -> Result<SpecState> {
    let st = State::load(root, id)?;
    let status = st.status(root);
    Ok(st.spec_state(status))
}

fn hook_json(st: &State, status: Status) -> Result<String> {
    serde_json::to_string(&st.spec_state(status)).map_err(|e| Error::Invalid(e.to_string()))
}

/// Unblock the init waiting on the exec fifo, then run poststart hooks.
pub fn start(root: &Path, id: &ContainerId) -> Result<()> {
    let st = State::load(root, id)?;
    match st.status(root) {
        Status::Created => {}
        s => {
            return Err(Error::Invalid(format!(
                "cannot start a container that is {s}"
            )));
        }
    }
    let fifo_path = st.dir(root).join(EXEC_FIFO);
    // Non-blocking open so a dead init cannot hang us; then wait for its byte.
    let fd = open(
        &fifo_path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx("opening exec fifo", &fifo_path)?;
    let mut buf = [0u8; 1];
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", &fifo_path, e)),
        }
        match nix::unistd::read(&fd, &mut buf) {
            Ok(1) => break,
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(Error::sys("reading exec fifo", &fifo_path, e)),
        }
        if !st.alive() {
            return Err(Error::Invalid(
                "container init exited before it could be started".into(),
            ));
        }
    }
    let _ = fs::remove_file(&fifo_path);
    if let Some(h) = st.hooks.as_ref().and_then(|h| h.poststart().clone()) {
        // Per the runtime spec a failing poststart hook is only a warning.
        if let Err(e) = hooks::run(&h, &hook_json(&st, Status::Running)?, "poststart") {
            eprintln!("crius oci: warning: poststart hook: {e}");
        }
    }
    Ok(())
}

/// `SIGKILL`, `KILL`, `9` → signal.
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::Invalid(format!("invalid signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    Signal::from_str(&name).map_err(|_| Error::Invalid(format!("invalid signal {s:?}")))
}

pub fn kill_container(root: &Path, id: &ContainerId, sig: Signal, all: bool) -> Result<()> {
    let st = State::load(root, id)?;
    if !st.alive() {
        return Err(Error::Invalid(format!("container {id} is not running")));
    }
    if all {
        let m = cgroup::manager(&st)?;
        let pids = m
            .pids()
            .map_err(|e| Error::Invalid(format!("listing cgroup pids: {e}")))?;
        for p in pids {
            match kill(p, sig) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(Error::sys("kill", p.to_string(), e)),
            }
        }
        return Ok(());
    }
    kill(Pid::from_raw(st.pid), sig).ctx("kill", st.pid.to_string())
}

fn wait_dead(st: &State, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    // A SIGKILLed process is usually gone within a fraction of a millisecond: look again soon,
    // then less often.
    let mut pause = Duration::from_micros(200);
    while st.alive() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
    true
}

pub fn delete(root: &Path, id: &ContainerId, force: bool) -> Result<()> {
    let st = State::load(root, id)?;
    let m = cgroup::manager(&st)?;
    match st.status(root) {
        Status::Stopped => {}
        // A created container never ran user code: deleting it kills the init (like runc).
        Status::Created => {}
        s if !force => {
            return Err(Error::Invalid(format!(
                "cannot delete container {id} that is {s} (use --force)"
            )));
        }
        _ => {}
    }
    if st.alive() {
        if st.paused {
            let _ = m.thaw();
        }
        let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
        for p in m.pids().unwrap_or_default() {
            let _ = kill(p, Signal::SIGKILL);
        }
        if !wait_dead(&st, Duration::from_secs(10)) {
            return Err(Error::Invalid(format!(
                "container {id} init {} did not die after SIGKILL",
                st.pid
            )));
        }
    }
    // Stragglers in the cgroup (no pid namespace): kill them so the cgroup can go.
    for p in m.pids().unwrap_or_default() {
        let _ = kill(p, Signal::SIGKILL);
    }
    m.destroy().map_err(|e| {
        Error::Invalid(format!("removing cgroup {}: {e}", st.cgroup_path.display()))
    })?;
    let dir = st.dir(root);
    fs::remove_dir_all(&dir).io_ctx(|| format!("removing {}", dir.display()))?;
    if let Some(h) = st.hooks.as_ref().and_then(|h| h.poststop().clone())
        && let Err(e) = hooks::run(&h, &hook_json(&st, Status::Stopped)?, "poststop")
    {
        eprintln!("crius oci: warning: poststop hook: {e}");
    }
    Ok(())
}

pub fn pause(root: &Path, id: &ContainerId) -> Result<()> {
    let mut st = State::load(root, id)?;
    match st.status(root) {
        Status::Running | Status::Created => {}
        s => {
            return Err(Error::Invalid(format!(
                "cannot pause a container that is {s}"
            )));
        }
    }
    cgroup::manager(&st)?
        .freeze()
        .map_err(|e| Error::Invalid(format!("freezing: {e}")))?;
    st.paused = true;
    st.save(root)
}

pub fn resume(root: &Path, id: &ContainerId) -> Result<()> {
    let mut st = State::load(root, id)?;
    if st.status(root) != Status::Paused {
        return Err(Error::Invalid(format!("container {id} is not paused")));
    }
    cgroup::manager(&st)?
        .thaw()
        .map_err(|e| Error::Invalid(format!("thawing: {e}")))?;
    st.paused = false;
    st.save(root)
}

/// `update --resources FILE` (`-` for stdin).
pub fn update(root: &Path, id: &ContainerId, resources: &Path) -> Result<()> {
    let st = State::load(root, id)?;
    let data = if resources == Path::new("-") {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut s)
            .io_ctx(|| "reading stdin".into())?;
        s
    } else {
        fs::read(resources).io_ctx(|| format!("reading {}", resources.display()))?
    };
    let r: LinuxResources = serde_json::from_slice(&data)
        .map_err(|e| Error::Invalid(format!("{}: {e}", resources.display())))?;
    cgroup::manager(&st)?
        .apply(&r)
        .map_err(|e| Error::Invalid(format!("updating cgroup: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("sigusr1").unwrap(), Signal::SIGUSR1);
        assert!(parse_signal("NOPE").is_err());
    }
}
