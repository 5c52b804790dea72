//! What runs inside the container: the init's setup (rootfs, hostname, sysctls, paths,
//! terminal), the wait on the exec fifo, and the final privilege drop before execve, shared
//! with `exec`.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use oci_spec::runtime::{
    Capability, LinuxCapabilities, LinuxNamespaceType, LinuxPersonality, LinuxSeccomp, Process,
    Spec,
};

use super::channel::{Channel, Msg};
use crate::error::{Error, Result, SysContext};
use crate::namespaces::NamespacePlan;
use crate::rootfs::{self, RootfsConfig};
use crate::syscall::LinuxSyscall;
use crate::{
    capabilities, hooks, lsm, oom_score, personality, rlimits, seccomp, sysctl, tty, user,
};

pub struct InitArgs {
    pub spec: Spec,
    pub rootfs: RootfsConfig,
    pub plan: NamespacePlan,
    /// O_PATH fd of `<state>/exec.fifo`, opened by the runtime before forking.
    pub fifo: OwnedFd,
    pub console: Option<OwnedFd>,
    /// Extra fds (3..3+n) passed through to the container process.
    pub preserve_fds: i32,
    /// Which sysctl namespaces the container owns (decided in the runtime's namespaces).
    pub sysctl_ns: sysctl::Namespaces,
}

fn sec<E: std::fmt::Display>(step: &str) -> impl FnOnce(E) -> Error + '_ {
    move |e| Error::Invalid(format!("{step}: {e}"))
}

/// A compiled seccomp filter, compiled before the fifo wait so a bad profile fails `create`.
pub struct PreparedSeccomp(Option<(seccompiler::BpfProgram, u32)>);

pub fn prepare_seccomp(s: Option<&LinuxSeccomp>) -> Result<PreparedSeccomp> {
    match s {
        None => Ok(PreparedSeccomp(None)),
        Some(s) => Ok(PreparedSeccomp(Some((
            seccomp::compile(s).map_err(sec("compiling seccomp profile"))?,
            seccomp::filter_flags(s).map_err(sec("seccomp flags"))?,
        )))),
    }
}

/// What the final steps need that can be read or computed ahead: the init prepares it before
/// it waits on the exec fifo, so that after `start` only the syscalls that change the process
/// remain. Nothing here changes the process.
pub struct Prepared {
    seccomp: PreparedSeccomp,
    caps: Option<capabilities::Plan>,
    setgroups_denied: bool,
}

pub fn prepare(process: &Process, seccomp: PreparedSeccomp) -> Result<Prepared> {
    let caps = process
        .capabilities()
        .as_ref()
        .map(|c| capabilities::prepare(&runc_ambient(c)))
        .transpose()
        .map_err(sec("setting capabilities"))?;
    Ok(Prepared {
        seccomp,
        caps,
        setgroups_denied: user::setgroups_denied(),
    })
}

/// The container init, up to the point where it blocks on the exec fifo. Returns only on
/// error before `Ready`; afterwards errors are written to stderr and the process exits.
pub fn container_init(mut a: InitArgs, ch: &Channel) -> Result<()> {
    // Before `Continue` the parent may send the id-mapped mounts it made for us.
    loop {
        match ch.recv_fd()? {
            (Some(Msg::MountFd(i)), Some(fd)) => a.rootfs.detached.push((i, Arc::new(fd))),
            (Some(Msg::Continue), None) => break,
            (Some(Msg::Error(e)), _) => return Err(Error::Child(e)),
            (None, _) => {
                return Err(Error::Child(
                    "sync channel: parent exited while waiting for Continue".into(),
                ));
            }
            (m, _) => return Err(Error::Invalid(format!("sync: unexpected {m:?}"))),
        }
    }
    nix::unistd::setsid().ctx("setsid", "init")?;
    let old_umask = nix::sys::stat::umask(Mode::empty());
    let sys = LinuxSyscall;
    if !a.plan.has(LinuxNamespaceType::Mount) {
        return Err(Error::Invalid(
            "a mount namespace is required (linux.namespaces has no \"mount\")".into(),
        ));
    }
    rootfs::prepare(&sys, &a.rootfs)?;
    // The id-mapped mounts are attached now; their fds must not reach the container.
    a.rootfs.detached.clear();

    // prestart/createRuntime hooks run in the runtime's namespaces, from the parent.
    ch.send(&Msg::RunHooks)?;
    let state_json = match ch.recv()? {
        Some(Msg::HooksDone(s)) => s,
        Some(Msg::Error(e)) => return Err(Error::Child(e)),
        other => return Err(Error::Invalid(format!("sync: unexpected {other:?}"))),
    };
    if let Some(h) = a
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().clone())
    {
        hooks::run(&h, &state_json, "createContainer").map_err(sec("createContainer hook"))?;
    }

    rootfs::switch_root(&sys, &a.rootfs)?;
    if a.plan.has(LinuxNamespaceType::Uts) {
        use crate::syscall::Syscall;
        if let Some(h) = a.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            sys.sethostname(h).ctx("sethostname", h)?;
        }
        if let Some(d) = a.spec.domainname().as_deref().filter(|d| !d.is_empty()) {
            sys.setdomainname(d).ctx("setdomainname", d)?;
        }
    }
    let linux = a.spec.linux().clone().unwrap_or_default();
    if let Some(s) = linux.sysctl().as_ref().filter(|s| !s.is_empty()) {
        sysctl::apply(s, a.sysctl_ns).map_err(sec("applying sysctls"))?;
    }
    rootfs::finalize(&sys, &a.rootfs)?;

    let process = a
        .spec
        .process()
        .clone()
        .ok_or_else(|| Error::Invalid("config.json has no process".into()))?;
    if process.terminal().unwrap_or(false) {
        let socket = a.console.as_ref().ok_or_else(|| {
            Error::Invalid("process.terminal is set but no --console-socket was given".into())
        })?;
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        let (master, name) = tty::setup_pty(size)?;
        tty::send_fd(socket, &master, &name)?;
    }
    drop(a.console);
    let seccomp = prepare_seccomp(linux.seccomp().as_ref())?;
    let prepared = prepare(&process, seccomp)?;
    nix::sys::stat::umask(old_umask);

    ch.send(&Msg::Ready)?;

    // Block until `start` opens the fifo for reading.
    let fifo_path = PathBuf::from(format!("/proc/self/fd/{}", a.fifo.as_raw_fd()));
    let w = open(
        &fifo_path,
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx("opening exec fifo", &fifo_path)?;
    nix::unistd::write(&w, b"0").ctx("writing exec fifo", &fifo_path)?;
    drop(w);
    drop(a.fifo);

    if let Some(h) = a
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().clone())
    {
        hooks::run(&h, &state_json, "startContainer").map_err(sec("startContainer hook"))?;
    }
    finalize_and_exec(
        &process,
        prepared,
        linux.personality().as_ref(),
        a.preserve_fds,
    )
}

/// Drop into the container process: LSM labels, personality, rlimits, oom_score_adj,
/// no_new_privs, user, capabilities, cwd, seccomp, then execve. Never returns on success.
pub fn finalize_and_exec(
    process: &Process,
    prepared: Prepared,
    persona: Option<&LinuxPersonality>,
    preserve_fds: i32,
) -> Result<()> {
    // Nothing of the runtime's may leak into the container: every fd above stdio and the
    // preserved ones is closed on exec.
    let first = 3 + preserve_fds.max(0) as u32;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on our own descriptors.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc < 0 {
        return Err(Error::sys("close_range", "fds", nix::errno::Errno::last()));
    }
    // Both take effect at execve. The /proc/self/attr files must be written while still root
    // (a uid change makes them unwritable), and personality(2) before a seccomp filter that
    // may not allow it.
    lsm::Host::default()
        .apply(process)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    if let Some(p) = persona {
        personality::apply(p).map_err(|e| Error::Invalid(e.to_string()))?;
    }
    if let Some(l) = process.rlimits() {
        // Limits above our own hard limit are clamped (no CAP_SYS_RESOURCE); the warnings have
        // nowhere to go once the runtime has returned, so they are dropped here.
        let _warnings = rlimits::apply(l).map_err(sec("setting rlimits"))?;
    }
    if let Some(score) = process
        .oom_score_adj()
        .filter(|s| oom_score::read(None).ok() != Some(*s))
    {
        // Normally preset by the runtime before forking us (see `oom_score::preset`). Lowering
        // the score needs CAP_SYS_RESOURCE; the module clamps instead of failing.
        let _warning = oom_score::apply(None, score).map_err(sec("setting oom_score_adj"))?;
    }
    let nnp = process.no_new_privileges().unwrap_or(false);
    if nnp {
        nix::sys::prctl::set_no_new_privs().ctx("prctl(PR_SET_NO_NEW_PRIVS)", "init")?;
    }
    // Seccomp ordering follows runc. Installing a filter requires either no_new_privs or
    // CAP_SYS_ADMIN. With no_new_privs set we install it as the very last step before execve,
    // so the profile only has to allow execve itself. Without no_new_privs we must install it
    // now, while we are still root with CAP_SYS_ADMIN, before the user switch and the
    // capability drop take that away; the profile then must allow the setuid/capset calls below.
    let mut seccomp = prepared.seccomp;
    if !nnp && let Some((p, flags)) = seccomp.0.take() {
        seccomp::install_with_flags(&p, flags).map_err(sec("installing seccomp filter"))?;
    }
    // Like runc, give the process a HOME from the container's /etc/passwd (or "/") if unset.
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = user::lookup_user_by_uid(Path::new("/"), process.user().uid())
            .ok()
            .flatten()
            .map(|e| e.home)
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "/".to_string());
        env.push(format!("HOME={home}"));
    }
    // Keep the permitted set across the uid change so the capabilities below can be set.
    capabilities::set_keep_caps(true).map_err(sec("PR_SET_KEEPCAPS"))?;
    user::apply_with(process.user(), prepared.setgroups_denied).map_err(sec("setting user"))?;
    if let Some(plan) = &prepared.caps {
        plan.apply().map_err(sec("setting capabilities"))?;
    }
    // chdir after the user switch so the cwd is checked with the container user's permissions.
    let cwd = process.cwd();
    if !cwd.as_os_str().is_empty() {
        nix::unistd::chdir(cwd).ctx("chdir to cwd", cwd)?;
    }
    let args = process
        .args()
        .clone()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::Invalid("process.args is empty".into()))?;
    let program = find_program(&args[0], &env)?;
    if let Some((p, flags)) = seccomp.0.take() {
        seccomp::install_with_flags(&p, flags).map_err(sec("installing seccomp filter"))?;
    }
    exec(&program, &args, &env)
}

/// runc (via gocapability) silently leaves out ambient capabilities that are not both permitted
/// and inheritable, and `runc spec` relies on that (ambient without inheritable). Do the same
/// so such specs behave identically instead of failing.
fn runc_ambient(c: &LinuxCapabilities) -> LinuxCapabilities {
    let mut c = c.clone();
    if let Some(amb) = c.ambient().clone() {
        let keep = |cap: &Capability| {
            c.permitted().as_ref().is_some_and(|p| p.contains(cap))
                && c.inheritable().as_ref().is_some_and(|i| i.contains(cap))
        };
        let amb = amb.into_iter().filter(|x| keep(x)).collect();
        c.set_ambient(Some(amb));
    }
    c
}

fn cstrings(v: &[String]) -> Result<Vec<CString>> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| Error::Invalid(format!("NUL in {s:?}"))))
        .collect()
}

fn exec(program: &Path, args: &[String], env: &[String]) -> Result<()> {
    let p = CString::new(program.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::Invalid("NUL in program path".into()))?;
    let a = cstrings(args)?;
    let e = cstrings(env)?;
    match nix::unistd::execve(&p, &a, &e) {
        Ok(never) => match never {},
        Err(err) => Err(Error::sys("exec", program, err)),
    }
}

/// `args[0]` as given if it has a slash, else the first executable match in the process's PATH.
pub fn find_program(arg0: &str, env: &[String]) -> Result<PathBuf> {
    if arg0.contains('/') {
        return Ok(PathBuf::from(arg0));
    }
    let vars: HashMap<&str, &str> = env.iter().filter_map(|kv| kv.split_once('=')).collect();
    let path = vars
        .get("PATH")
        .copied()
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let cand = Path::new(dir).join(arg0);
        if nix::unistd::access(&cand, nix::unistd::AccessFlags::X_OK).is_ok() && cand.is_file() {
            return Ok(cand);
        }
    }
    Err(Error::Invalid(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}
