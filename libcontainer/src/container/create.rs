//! `create`: validate the bundle, make the state dir, exec fifo and cgroup, then fork the
//! intermediate process (namespaces) which forks the container init (rootfs, …), and wait until
//! the init reports it is blocked on the fifo.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::fcntl::{OFlag, open};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{Gid, Pid, Uid};
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType, Spec};

use super::state::{
    ContainerId, EXEC_FIFO, State, Status, container_dir, proc_stat, rfc3339, write_atomic,
};
use super::{cgroup, cgroup_fork};
use crate::cgroups::{Driver, Manager};
use crate::error::{Error, IoContext, Result, SysContext};
use crate::namespaces::{self, NamespacePlan};
use crate::process::channel::{self, Channel, Msg};
use crate::process::fork::{clone_fork, exit_with};
use crate::process::init::{self, InitArgs};
use crate::rootfs::RootfsConfig;
use crate::rootfs::idmap::{self, IdmapRequest};
use crate::tty;
use crate::{hooks, lsm, netdev, oom_score, personality, sysctl, timens};

#[derive(Debug, Clone)]
pub struct CreateOpts {
    pub root: PathBuf,
    pub id: ContainerId,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    /// cgroupfs, or systemd (`--systemd-cgroup`): the container's cgroup is a systemd scope.
    pub cgroup_driver: Driver,
}

pub fn load_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let data = fs::read(&path).io_ctx(|| format!("reading {}", path.display()))?;
    let spec: Spec = serde_json::from_slice(&data)
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    validate(&spec)?;
    Ok(spec)
}

/// Checks runc makes before doing anything.
pub fn validate(spec: &Spec) -> Result<()> {
    if !spec.version().starts_with("1.") {
        return Err(Error::Invalid(format!(
            "unsupported ociVersion {:?}",
            spec.version()
        )));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Invalid("config.json: process is required".into()))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::Invalid(
            "config.json: process.args must not be empty".into(),
        ));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::Invalid(format!(
            "config.json: process.cwd {:?} must be absolute",
            process.cwd()
        )));
    }
    if spec.root().is_none() {
        return Err(Error::Invalid("config.json: root is required".into()));
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::Invalid("config.json: linux is required".into()))?;
    let ns = linux.namespaces().clone().unwrap_or_default();
    let has_user = ns.iter().any(|n| n.typ() == LinuxNamespaceType::User);
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if has_user
        && ns
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none())
        && !has_maps
    {
        return Err(Error::Invalid(
            "config.json: a new user namespace needs linux.uidMappings and gidMappings".into(),
        ));
    }
    if !has_user && has_maps {
        return Err(Error::Invalid(
            "config.json: uidMappings given without a user namespace".into(),
        ));
    }
    if linux.intel_rdt().is_some() {
        return Err(Error::Unsupported("linux.intelRdt".into()));
    }
    if let Some(p) = linux.personality() {
        personality::persona(p).map_err(|e| Error::Invalid(e.to_string()))?;
    }
    netdev::validate(linux).map_err(|e| Error::Invalid(e.to_string()))?;
    timens::validate(linux).map_err(|e| Error::Invalid(e.to_string()))?;
    if linux.memory_policy().is_some() {
        return Err(Error::Unsupported("linux.memoryPolicy".into()));
    }
    if process.exec_cpu_affinity().is_some() {
        return Err(Error::Unsupported("process.execCPUAffinity".into()));
    }
    // Id-mapped mounts: bind only, uid+gid mappings together, a user namespace when the mount
    // borrows the container's mappings.
    idmap::plan(
        spec.mounts().as_deref().unwrap_or(&[]),
        Path::new("/"),
        has_user,
    )?;
    if process.scheduler().is_some() || process.io_priority().is_some() {
        return Err(Error::Unsupported(
            "process.scheduler / process.ioPriority".into(),
        ));
    }
    Ok(())
}

/// Host id that container id 0 maps to.
fn host_root(maps: &Option<Vec<LinuxIdMapping>>) -> Option<u32> {
    maps.iter()
        .flatten()
        .find(|m| m.container_id() == 0)
        .map(|m| m.host_id())
}

fn map_text(maps: &Option<Vec<LinuxIdMapping>>) -> String {
    idmap::map_text(maps.as_deref().unwrap_or(&[]))
}

fn write_id_maps(pid: Pid, linux: &Linux) -> Result<()> {
    let uid = format!("/proc/{pid}/uid_map");
    fs::write(&uid, map_text(linux.uid_mappings())).io_ctx(|| format!("writing {uid}"))?;
    let gid = format!("/proc/{pid}/gid_map");
    fs::write(&gid, map_text(linux.gid_mappings())).io_ctx(|| format!("writing {gid}"))
}

/// Undo a partial create: processes, cgroup, state dir. Disarmed on success.
struct Cleanup {
    dir: Option<PathBuf>,
    manager: Option<Box<dyn Manager>>,
    children: Vec<Pid>,
    init: Option<Pid>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(p) = self.init {
            let _ = kill(p, Signal::SIGKILL);
        }
        for p in self.init.iter().chain(self.children.iter()) {
            let _ = waitpid(*p, None);
        }
        if let Some(m) = &self.manager {
            let _ = m.destroy();
        }
        if let Some(d) = &self.dir {
            let _ = fs::remove_dir_all(d);
        }
    }
}

pub fn create(o: &CreateOpts) -> Result<()> {
    let bundle = fs::canonicalize(&o.bundle).io_ctx(|| format!("bundle {}", o.bundle.display()))?;
    let spec = load_spec(&bundle)?;
    let linux = spec.linux().clone().unwrap_or_default();
    // Host-dependent checks, before anything is created.
    if let Some(p) = spec.process() {
        lsm::Host::default()
            .check(p, Some(&linux))
            .map_err(|e| Error::Invalid(e.to_string()))?;
    }
    let net_devices = linux.net_devices().clone().unwrap_or_default();
    netdev::check_present(&net_devices).map_err(|e| Error::Invalid(e.to_string()))?;
    let plan = NamespacePlan::from_spec(&linux.namespaces().clone().unwrap_or_default())?;
    let cg = cgroup::cgroups_path(
        linux.cgroups_path().as_deref(),
        o.id.as_str(),
        o.cgroup_driver,
    )?;
    let cg_path = cg.fs_path.clone();
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && o.console_socket.is_none() {
        return Err(Error::Invalid(
            "process.terminal is set: --console-socket is required".into(),
        ));
    }

    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&o.root)
        .io_ctx(|| format!("creating state root {}", o.root.display()))?;
    let dir = container_dir(&o.root, &o.id);
    match fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Invalid(format!("container {} already exists", o.id)));
        }
        Err(e) => return Err(Error::io(format!("creating {}", dir.display()), e)),
    }
    let mut guard = Cleanup {
        dir: Some(dir.clone()),
        manager: None,
        children: Vec::new(),
        init: None,
    };

    let fifo_path = dir.join(EXEC_FIFO);
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o622))
        .ctx("creating exec fifo", &fifo_path)?;
    fs::set_permissions(&fifo_path, fs::Permissions::from_mode(0o622))
        .io_ctx(|| format!("chmod {}", fifo_path.display()))?;
    if plan.new_user {
        let uid = host_root(linux.uid_mappings()).map(Uid::from_raw);
        let gid = host_root(linux.gid_mappings()).map(Gid::from_raw);
        nix::unistd::chown(&fifo_path, uid, gid).ctx("chown exec fifo", &fifo_path)?;
    }
    let fifo = open(&fifo_path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .ctx("opening exec fifo", &fifo_path)?;

    // The systemd driver starts the container's scope at the first add_task (a scope needs a
    // process); until then create/apply only prepare, so the order here suits both drivers.
    let manager = cg.manager()?;
    manager
        .create()
        .map_err(|e| Error::Invalid(format!("creating cgroup {}: {e}", cg_path.display())))?;
    guard.manager = Some(manager);
    let resources = cgroup::effective_resources(
        linux.resources().as_ref(),
        &linux.devices().clone().unwrap_or_default(),
    )?;
    if let Some(m) = &guard.manager {
        m.apply(&resources)
            .map_err(|e| Error::Invalid(format!("applying cgroup resources: {e}")))?;
    }

    let mut rootfs = RootfsConfig::from_spec(
        &spec,
        &bundle,
        plan.has(LinuxNamespaceType::User),
        cgroup::mount_source(&cg_path),
    );
    rootfs.rootfs = fs::canonicalize(&rootfs.rootfs)
        .io_ctx(|| format!("rootfs {}", rootfs.rootfs.display()))?;
    rootfs.no_pivot = o.no_pivot;
    let idmap_reqs = idmap::plan(&rootfs.mounts, &bundle, plan.has(LinuxNamespaceType::User))?;
    let console: Option<OwnedFd> = match (&o.console_socket, terminal) {
        (Some(p), true) => Some(tty::connect(p)?),
        _ => None,
    };

    let sysctl_ns = sysctl::Namespaces::from_linux(&linux)
        .map_err(|e| Error::Invalid(format!("sysctl: {e}")))?;
    for key in linux.sysctl().iter().flatten().map(|(k, _)| k) {
        sysctl::validate(key, sysctl_ns).map_err(|e| Error::Invalid(format!("sysctl: {e}")))?;
    }
    let (parent_ch, child_ch) = channel::pair()?;
    let args = InitArgs {
        spec: spec.clone(),
        rootfs: rootfs.clone(),
        plan: plan.clone(),
        fifo,
        console,
        preserve_fds: o.preserve_fds,
        sysctl_ns,
    };
    // Born in the cgroup (v2) or moving itself there (v1): `cgroup_fork`. Its children, the
    // init among them, are born there.
    let (forked, pending) =
        cgroup_fork::fork(guard.manager.as_deref()).ctx("fork", "intermediate process")?;
    let stage1 = match forked {
        None => {
            drop(parent_ch);
            std::mem::forget(guard);
            let join = (&pending, cg_path.as_path());
            let r = stage1_main(&plan, args, &child_ch, join).map_err(|e| e.to_string());
            exit_with(r, |e| {
                let _ = child_ch.send(&Msg::Error(e.to_string()));
            })
        }
        Some(p) => p,
    };
    drop(child_ch);
    drop(args);
    guard.children.push(stage1);
    pending
        .parent_adds(guard.manager.as_deref(), stage1)
        .map_err(|e| Error::Invalid(format!("adding to cgroup {}: {e}", cg_path.display())))?;
    parent_ch.send(&Msg::Continue)?;

    let created = rfc3339(SystemTime::now());
    let mut state = State {
        id: o.id.clone(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.clone(),
        rootfs: rootfs.rootfs.clone(),
        created,
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup_path: cg_path.clone(),
        systemd_cgroup: (cg.driver == Driver::Systemd).then(|| cg.path.clone()),
        paused: false,
        hooks: spec.hooks().clone(),
    };
    loop {
        match parent_ch.recv()? {
            Some(Msg::MapUserNs) => {
                write_id_maps(stage1, &linux)?;
                parent_ch.send(&Msg::MapDone)?;
            }
            Some(Msg::Pid(p)) => {
                let pid = Pid::from_raw(p);
                guard.init = Some(pid);
                state.pid = p;
                state.pid_start = proc_stat(p).map(|s| s.1).unwrap_or(0);
                let _ = waitpid(stage1, None);
                guard.children.clear();
                netdev::move_into(&net_devices, Path::new(&format!("/proc/{p}/ns/net")))
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                send_idmapped_mounts(&parent_ch, &idmap_reqs, pid, &plan, &linux)?;
                parent_ch.send(&Msg::Continue)?;
            }
            Some(Msg::RunHooks) => {
                let json = serde_json::to_string(&state.spec_state(Status::Creating))
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                if let Some(h) = spec.hooks() {
                    for (phase, list) in [
                        ("prestart", h.prestart()),
                        ("createRuntime", h.create_runtime()),
                    ] {
                        if let Some(list) = list {
                            hooks::run(list, &json, phase)
                                .map_err(|e| Error::Invalid(format!("{phase} hook: {e}")))?;
                        }
                    }
                }
                parent_ch.send(&Msg::HooksDone(json))?;
            }
            Some(Msg::Ready) => break,
            Some(Msg::Error(e)) => return Err(Error::Child(e)),
            Some(m) => return Err(Error::Invalid(format!("sync: unexpected {m:?}"))),
            None => {
                return Err(Error::Child(
                    "container init exited before it was ready".into(),
                ));
            }
        }
    }
    stall_for_tests();
    state.save(&o.root)?;
    if let Some(p) = &o.pid_file {
        write_atomic(p, state.pid.to_string().as_bytes())?;
    }
    guard.dir = None;
    guard.manager = None;
    guard.init = None;
    Ok(())
}

/// Fault injection for the e2e suite (`e2e/src/pods/faults.rs`, docs/oci-runtime.md): with
/// `CRIUS_OCI_STALL_CREATE=<seconds>`, create stops here for that long — its init made, past
/// `pivot_root`, waiting on the exec fifo in its cgroup, and no state written yet — the window
/// in which a daemon that dies and recovers finds nothing to delete.
fn stall_for_tests() {
    if let Some(secs) = std::env::var_os("CRIUS_OCI_STALL_CREATE")
        .and_then(|s| s.to_str()?.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
    {
        std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    }
}

/// Make the id-mapped mounts in the host's user namespace, now that the container's exists
/// (`/proc/<init>/ns/user`, whether created or joined by path), and hand them to the init.
fn send_idmapped_mounts(
    ch: &Channel,
    reqs: &[IdmapRequest],
    init: Pid,
    plan: &NamespacePlan,
    linux: &Linux,
) -> Result<()> {
    if reqs.is_empty() {
        return Ok(());
    }
    let userns = if plan.has(LinuxNamespaceType::User) {
        let path = format!("/proc/{init}/ns/user");
        Some(
            open(
                path.as_str(),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ctx("opening the container's user namespace", &path)?,
        )
    } else {
        None
    };
    let own_maps = match (linux.uid_mappings(), linux.gid_mappings()) {
        (Some(u), Some(g)) if plan.new_user => Some((u.clone(), g.clone())),
        _ => None,
    };
    let container = userns.as_ref().map(|fd| (fd, own_maps.as_ref()));
    for (index, fd) in idmap::prepare(reqs, container)? {
        ch.send_fd(&Msg::MountFd(index), fd.as_fd())?;
    }
    Ok(())
}

/// The intermediate process: join and create namespaces, then fork the init into them (a new
/// pid namespace only applies to children) and report its pid.
/// `join`: the cgroup's part left to this process, and the cgroup's path.
fn stage1_main(
    plan: &NamespacePlan,
    args: InitArgs,
    ch: &Channel,
    join: (&cgroup_fork::Pending, &Path),
) -> Result<()> {
    ch.expect(&Msg::Continue)?;
    let (pending, path) = join;
    pending
        .child_joins()
        .map_err(|e| Error::Invalid(format!("adding to cgroup {}: {e}", path.display())))?;
    let oom = args.spec.process().as_ref().and_then(|p| p.oom_score_adj());
    oom_score::preset(oom).map_err(|e| Error::Invalid(format!("setting oom_score_adj: {e}")))?;
    namespaces::join(&plan.join)?;
    if plan
        .join
        .iter()
        .any(|(t, _)| *t == LinuxNamespaceType::User)
    {
        // Our host ids mean nothing in a joined user namespace (files we create would fail
        // with EOVERFLOW): become its root, as runc does.
        let (u, g) = (Uid::from_raw(0), Gid::from_raw(0));
        nix::unistd::setresgid(g, g, g).ctx("setresgid", "joined user namespace")?;
        nix::unistd::setresuid(u, u, u).ctx("setresuid", "joined user namespace")?;
    }
    if plan.new_user {
        namespaces::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)?;
        // The parent writes our uid/gid maps; only then are we root in the new namespace.
        ch.send(&Msg::MapUserNs)?;
        ch.expect(&Msg::MapDone)?;
        let (u, g) = (Uid::from_raw(0), Gid::from_raw(0));
        nix::unistd::setresgid(g, g, g).ctx("setresgid", "user namespace")?;
        nix::unistd::setresuid(u, u, u).ctx("setresuid", "user namespace")?;
    }
    namespaces::unshare(plan.unshare)?;
    // A new time namespace takes its offsets before the init, its first member, exists.
    if plan
        .unshare
        .contains(namespaces::clone_flag(LinuxNamespaceType::Time))
        && let Some(offsets) = args
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.time_offsets().as_ref())
    {
        timens::write_offsets(offsets).map_err(|e| Error::Invalid(e.to_string()))?;
    }
    match clone_fork(libc::CLONE_PARENT).ctx("fork", "container init")? {
        None => {
            let r = init::container_init(args, ch).map_err(|e| e.to_string());
            exit_with(r, |e| {
                if ch.send(&Msg::Error(e.to_string())).is_err() {
                    eprintln!("crius oci: container init: {e}");
                }
            })
        }
        Some(pid) => {
            ch.send(&Msg::Pid(pid.as_raw()))?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personality_net_devices_and_time_offsets_are_checked() {
        validate(&spec(serde_json::json!({"linux": {
            "namespaces": [{"type": "mount"}, {"type": "network"}, {"type": "time"}],
            "personality": {"domain": "LINUX32"},
            "netDevices": {"eth1": {"name": "c0"}},
            "timeOffsets": {"boottime": {"secs": 5}}}})))
        .unwrap();
        for (extra, want) in [
            (
                serde_json::json!({"personality": {"domain": "LINUX", "flags": ["X"]}}),
                "flag \"X\"",
            ),
            (
                serde_json::json!({"netDevices": {"eth1": {}}}),
                "network namespace",
            ),
            (
                serde_json::json!({"timeOffsets": {"boottime": {"secs": 5}}}),
                "time namespace",
            ),
        ] {
            let mut linux = serde_json::json!({"namespaces": [{"type": "mount"}]});
            linux
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let e = validate(&spec(serde_json::json!({"linux": linux}))).unwrap_err();
            assert!(
                matches!(e, Error::Invalid(_)) && e.to_string().contains(want),
                "{e}"
            );
        }
    }

    fn spec(extra: serde_json::Value) -> Spec {
        let mut v = serde_json::json!({
            "ociVersion": "1.2.0",
            "process": {"user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "/"},
            "root": {"path": "rootfs"},
            "linux": {"namespaces": [{"type": "mount"}]}
        });
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                o.insert(k.clone(), x.clone());
            }
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn validation_accepts_a_minimal_spec_and_names_what_is_missing() {
        validate(&spec(serde_json::json!({}))).unwrap();
        let e = validate(&spec(
            serde_json::json!({"process": {"user": {"uid": 0, "gid": 0}, "args": [], "cwd": "/"}}),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("process.args"), "{e}");
        let e = validate(&spec(serde_json::json!({"process": {"user": {"uid": 0, "gid": 0}, "args": ["x"], "cwd": "rel"}})))
            .unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
    }

    #[test]
    fn user_namespace_needs_mappings() {
        let e = validate(&spec(
            serde_json::json!({"linux": {"namespaces": [{"type": "user"}]}}),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("uidMappings"), "{e}");
        let e = validate(&spec(serde_json::json!({"linux": {
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}})))
        .unwrap_err();
        assert!(e.to_string().contains("without a user namespace"), "{e}");
    }

    #[test]
    fn unimplemented_features_are_refused_not_ignored() {
        for extra in [
            serde_json::json!({"linux": {"intelRdt": {}}}),
            serde_json::json!({"process": {"user": {"uid": 0, "gid": 0}, "args": ["x"], "cwd": "/", "scheduler": {"policy": "SCHED_OTHER"}}}),
        ] {
            let e = validate(&spec(extra.clone())).unwrap_err();
            assert!(e.to_string().contains("not supported yet"), "{extra}: {e}");
        }
    }

    #[test]
    fn idmapped_mounts_without_any_user_namespace_are_invalid() {
        let m = |extra: serde_json::Value| {
            let mut v = serde_json::json!({"destination": "/d", "type": "bind", "source": "/s",
                                           "options": ["rbind", "idmap"]});
            if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                for (k, x) in e {
                    o.insert(k.clone(), x.clone());
                }
            }
            spec(serde_json::json!({"mounts": [v]}))
        };
        let e = validate(&m(serde_json::json!({}))).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e}");
        assert!(e.to_string().contains("needs a user namespace"), "{e}");
        let map = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        validate(&m(
            serde_json::json!({"uidMappings": map, "gidMappings": map}),
        ))
        .unwrap();
    }
}
