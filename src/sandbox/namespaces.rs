//! Pinned pod namespaces, as cri-o's `pinns` makes them but in-process: new network, IPC and UTS
//! namespaces are kept alive by bind-mounting them onto files under `<dir>/<kind>/<id>`, so the
//! pod's containers (and CNI) can join them by path while no process lives in them.
//!
//! `unshare` changes the namespaces of the calling thread only, so the work happens on a dedicated
//! short-lived thread; the caller's thread (and the daemon's thread pool) never changes namespace.
//! A pod with its own user namespace needs a process instead (a multi-threaded process may not
//! unshare one): a short-lived child ([`NsChild`]) makes the user namespace and, owned by it, the
//! network, IPC and UTS namespaces, so the pod's root holds every capability over them.

use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

use crate::libcontainer::process::ns_child::SysctlWrite;
use crate::libcontainer::sysctl::Planned;
use crate::userns::{ChildError, IdMaps, NsChild};

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error("invalid namespace pin id {0:?}")]
    InvalidId(String),
    #[error("creating {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the mount table: {0}")]
    MountTable(#[source] std::io::Error),
    #[error("making {path} a private mount: {source}")]
    Propagation {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("unshare({flags:?}): {source}")]
    Unshare {
        flags: CloneFlags,
        #[source]
        source: Errno,
    },
    #[error("setting the pod hostname {hostname:?}: {source}")]
    Hostname {
        hostname: String,
        #[source]
        source: Errno,
    },
    #[error("bind-mounting the {kind} namespace onto {path}: {source}")]
    Bind {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("unmounting {path}: {source}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("removing {path}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("namespace pinning thread: {0}")]
    Thread(String),
    #[error("the pod's user namespace: {0}")]
    Child(#[from] crate::userns::ChildError),
    #[error("setting sysctl {key:?} in the pod's namespaces failed")]
    Sysctl { key: String },
}

/// Which namespaces a pod gets of its own.
#[derive(Debug, Clone, Default)]
pub struct NsSet {
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
    /// A user namespace with these mappings, owning the others.
    pub user: Option<IdMaps>,
    /// With `user`: sysctls written from inside the new user namespace, so that values holding
    /// ids (`net.ipv4.ping_group_range`) are read in the pod's terms.
    pub user_sysctls: Vec<Planned>,
}

/// The files holding a pod's pinned namespaces; recorded with the sandbox, so defined in
/// `store` (which imports nothing of `sandbox`).
pub use crate::store::Pinned;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Net,
    Ipc,
    Uts,
    User,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Net => "net",
            Kind::Ipc => "ipc",
            Kind::Uts => "uts",
            Kind::User => "user",
        }
    }

    fn flag(self) -> CloneFlags {
        match self {
            Kind::Net => CloneFlags::CLONE_NEWNET,
            Kind::Ipc => CloneFlags::CLONE_NEWIPC,
            Kind::Uts => CloneFlags::CLONE_NEWUTS,
            Kind::User => CloneFlags::CLONE_NEWUSER,
        }
    }
}

/// Creates new namespaces of the kinds in `which` and bind-mounts each onto `<dir>/<kind>/<id>`
/// (dir e.g. `<runroot>/ns`), setting `hostname` in the new UTS namespace (ignored without uts).
/// On failure nothing is left behind.
pub fn pin(dir: &Path, id: &str, which: NsSet, hostname: Option<&str>) -> Result<Pinned, NsError> {
    if id.is_empty() || id == "." || id == ".." || id.contains(['/', '\0']) {
        return Err(NsError::InvalidId(id.to_string()));
    }
    let kinds: Vec<Kind> = [
        (which.net, Kind::Net),
        (which.ipc, Kind::Ipc),
        (which.uts, Kind::Uts),
        (which.user.is_some(), Kind::User),
    ]
    .into_iter()
    .filter_map(|(on, kind)| on.then_some(kind))
    .collect();
    if kinds.is_empty() {
        return Ok(Pinned::default());
    }
    create_dir(dir)?;
    make_private(dir)?;
    let mut targets = Vec::with_capacity(kinds.len());
    for kind in kinds {
        let kind_dir = dir.join(kind.name());
        create_dir(&kind_dir)?;
        targets.push((kind, kind_dir.join(id)));
    }
    let hostname = hostname.filter(|_| which.uts).map(str::to_string);
    if let Some(maps) = &which.user {
        pin_in_child(&targets, hostname.as_deref(), maps, &which.user_sysctls)?;
    } else {
        let thread_targets = targets.clone();
        let handle = std::thread::Builder::new()
            .name("crius-pinns".into())
            .spawn(move || pin_on_this_thread(&thread_targets, hostname.as_deref()))
            .map_err(|e| NsError::Thread(e.to_string()))?;
        handle
            .join()
            .map_err(|_| NsError::Thread("panicked".into()))??;
    }

    let mut pinned = Pinned::default();
    for (kind, path) in targets {
        match kind {
            Kind::Net => pinned.net = Some(path),
            Kind::Ipc => pinned.ipc = Some(path),
            Kind::Uts => pinned.uts = Some(path),
            Kind::User => pinned.user = Some(path),
        }
    }
    Ok(pinned)
}

/// Where [`pin`] puts the namespaces of pod `id`, every kind: what a teardown unpins when the
/// record does not name them (a crash before it did).
pub fn pins_of(dir: &Path, id: &str) -> Pinned {
    let at = |kind: Kind| Some(dir.join(kind.name()).join(id));
    Pinned {
        net: at(Kind::Net),
        ipc: at(Kind::Ipc),
        uts: at(Kind::Uts),
        user: at(Kind::User),
    }
}

/// Whether `path` is a pinned namespace (a file of the nsfs file system), not a plain file or
/// nothing.
pub fn holds_namespace(path: &Path) -> bool {
    use nix::sys::statfs::{NSFS_MAGIC, statfs};
    statfs(path).is_ok_and(|fs| fs.filesystem_type() == NSFS_MAGIC)
}

/// Unmounts (lazily) and removes each pinned file. Idempotent: an absent file is fine and a file
/// that is no longer a mount point is just removed.
pub fn unpin(p: &Pinned) -> Result<(), NsError> {
    for path in [&p.net, &p.ipc, &p.uts, &p.user].into_iter().flatten() {
        unmount_all(path)?;
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(NsError::Remove {
                    path: path.clone(),
                    source: e,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs on the throwaway thread: the thread enters the new namespaces and dies; the bind mounts
/// keep the namespaces alive.
fn pin_on_this_thread(targets: &[(Kind, PathBuf)], hostname: Option<&str>) -> Result<(), NsError> {
    let flags = targets
        .iter()
        .fold(CloneFlags::empty(), |acc, (kind, _)| acc | kind.flag());
    unshare(flags).map_err(|source| NsError::Unshare { flags, source })?;
    if let Some(name) = hostname {
        nix::unistd::sethostname(name).map_err(|source| NsError::Hostname {
            hostname: name.to_string(),
            source,
        })?;
    }
    bind_all(targets, |kind| {
        Path::new("/proc/thread-self/ns").join(kind.name())
    })
}

/// The same in a child process that makes a user namespace first: the child sets the hostname,
/// the parent writes its id maps and pins its namespaces, then lets it go.
fn pin_in_child(
    targets: &[(Kind, PathBuf)],
    hostname: Option<&str>,
    maps: &IdMaps,
    sysctls: &[Planned],
) -> Result<(), NsError> {
    let flags = targets
        .iter()
        .fold(CloneFlags::empty(), |acc, (kind, _)| acc | kind.flag());
    let hostname = hostname
        .map(|h| {
            std::ffi::CString::new(h).map_err(|_| NsError::Hostname {
                hostname: h.to_string(),
                source: Errno::EINVAL,
            })
        })
        .transpose()?;
    let writes = sysctls
        .iter()
        .map(|p| {
            let c = |text: String| std::ffi::CString::new(text);
            match (c(format!("/proc/sys/{}", p.rel)), c(p.value.clone())) {
                (Ok(path), Ok(value)) => Ok(SysctlWrite { path, value }),
                _ => Err(NsError::Sysctl { key: p.key.clone() }),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let child = NsChild::spawn_with_sysctls(flags, hostname.as_deref(), &writes)?;
    child.write_maps(&maps.uid_map_text(), &maps.gid_map_text())?;
    bind_all(targets, |kind| child.ns_path(kind.name()))?;
    if let Err(e) = child.finish() {
        let paths: Vec<&Path> = targets.iter().map(|(_, p)| p.as_path()).collect();
        remove_pins(paths);
        return Err(match e {
            ChildError::Sysctl(i) => NsError::Sysctl {
                key: sysctls.get(i).map(|p| p.key.clone()).unwrap_or_default(),
            },
            other => other.into(),
        });
    }
    Ok(())
}

/// Pins each target from `source(kind)`; on failure removes those already made.
fn bind_all(targets: &[(Kind, PathBuf)], source: impl Fn(Kind) -> PathBuf) -> Result<(), NsError> {
    let mut created: Vec<&Path> = Vec::new();
    for (kind, target) in targets {
        if let Err(err) = bind_namespace(*kind, &source(*kind), target, &mut created) {
            remove_pins(created);
            return Err(err);
        }
    }
    Ok(())
}

fn remove_pins(paths: Vec<&Path>) {
    for path in paths {
        let _ = unmount_all(path);
        let _ = std::fs::remove_file(path);
    }
}

/// Creates `target` (never reusing an existing file: that may be another pod's pin) and mounts
/// the namespace file `source` of `kind` onto it. `target` joins `created` once it exists.
fn bind_namespace<'a>(
    kind: Kind,
    source: &Path,
    target: &'a Path,
    created: &mut Vec<&'a Path>,
) -> Result<(), NsError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(target)
        .map_err(|source| NsError::Create {
            path: target.to_path_buf(),
            source,
        })?;
    created.push(target);
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|source| NsError::Bind {
        kind: kind.name(),
        path: target.to_path_buf(),
        source,
    })
}

/// Detaches every mount stacked on `path`; "not a mount point" and "absent" end the loop.
fn unmount_all(path: &Path) -> Result<(), NsError> {
    loop {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(Errno::EINVAL | Errno::ENOENT) => return Ok(()),
            Err(source) => {
                return Err(NsError::Unmount {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
}

fn create_dir(path: &Path) -> Result<(), NsError> {
    std::fs::create_dir_all(path).map_err(|source| NsError::Create {
        path: path.to_path_buf(),
        source,
    })
}

/// Serializes the check-then-mount of [`make_private`] between concurrent pins.
static PROPAGATION: Mutex<()> = Mutex::new(());

/// Mount propagation: a bind mount made under a *shared* mount (systemd makes `/` and so `/run`
/// shared) is copied into every peer and slave mount namespace (other services, a containerized
/// kubelet, ...). Each copy holds the namespace alive, and a copy whose namespace later turns
/// private no longer sees our unmount, so the pod's netns (veths, addresses) would leak. So when
/// the mount holding `dir` is shared, `dir` becomes a private (recursive) bind mount of itself,
/// once: later pins see `dir` as its own non-shared mount and skip this. On a private or slave
/// mount nothing is done, since our mounts do not propagate from there. Mount namespaces cloned
/// from ours afterwards (containers) still get copies, but runtimes detach the old root after
/// pivot_root, and unlinking a file unmounts it in other namespaces (Linux >= 3.18).
///
/// If pins already exist under a shared `dir` that is not its own mount (left from an earlier
/// run), the self-bind is skipped: it would hide those pins' mounts under it, and their files
/// could then never be removed (EBUSY).
fn make_private(dir: &Path) -> Result<(), NsError> {
    let _guard = PROPAGATION.lock().unwrap_or_else(|e| e.into_inner());
    let dir = dir.canonicalize().map_err(|source| NsError::Create {
        path: dir.to_path_buf(),
        source,
    })?;
    let table = std::fs::read_to_string("/proc/self/mountinfo").map_err(NsError::MountTable)?;
    let mounts = parse_mountinfo(&table);
    let Some(holder) = mounts
        .iter()
        .filter(|m| dir.starts_with(&m.point))
        .max_by_key(|m| m.point.as_os_str().len())
    else {
        return Ok(());
    };
    if !holder.shared {
        return Ok(());
    }
    let propagation_err = |source| NsError::Propagation {
        path: dir.clone(),
        source,
    };
    if holder.point != dir {
        let has_pins = mounts
            .iter()
            .any(|m| m.point.starts_with(&dir) && m.point != dir);
        if has_pins {
            return Ok(());
        }
        mount(
            Some(&dir),
            &dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(propagation_err)?;
    }
    let private = mount(
        None::<&str>,
        &dir,
        None::<&str>,
        MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        None::<&str>,
    );
    if let Err(source) = private {
        if holder.point != dir {
            let _ = umount2(&dir, MntFlags::MNT_DETACH);
        }
        return Err(propagation_err(source));
    }
    Ok(())
}

#[derive(Debug, PartialEq)]
struct MountEntry {
    point: PathBuf,
    shared: bool,
}

/// Mount points with their propagation, in table order (a later entry covers an earlier one on
/// the same point, and `max_by_key` keeps the last of equals).
fn parse_mountinfo(table: &str) -> Vec<MountEntry> {
    table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let point = fields.get(4)?;
            let optional = fields.get(6..)?;
            let shared = optional
                .iter()
                .take_while(|f| **f != "-")
                .any(|f| f.starts_with("shared:"));
            Some(MountEntry {
                point: PathBuf::from(unescape(point)),
                shared,
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests;
