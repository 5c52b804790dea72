//! Id-mapped bind mounts (`mounts[].uidMappings`/`gidMappings`, `idmap`, `ridmap`).
//!
//! mount_setattr(MOUNT_ATTR_IDMAP) needs CAP_SYS_ADMIN in the user namespace owning the source
//! filesystem, i.e. the host's, so the container init cannot do it. The `create` parent makes a
//! detached id-mapped clone of each source once the container's user namespace exists and sends
//! the mount fds to the init, which attaches them with move_mount (see `mounts::bind`).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxIdMapping, Mount};

use super::options::{self, Idmap};
use crate::error::{Error, Result, SysContext};
use crate::mount_api::{self, MOUNT_ATTR_IDMAP, MountAttr};
use crate::process::ns_child::{ChildError, NsChild};

/// uid and gid mappings of one user namespace.
pub type Mappings = (Vec<LinuxIdMapping>, Vec<LinuxIdMapping>);

/// One id-mapped mount the parent has to prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdmapRequest {
    /// Index into the spec's `mounts`.
    pub index: usize,
    /// Absolute host path of the source.
    pub source: PathBuf,
    /// Clone the whole tree below the source (`rbind` or `ridmap`).
    pub clone_recursive: bool,
    /// Id-map every mount of the clone (`ridmap`), not just its top.
    pub map_recursive: bool,
    /// The mount's own mappings; `None` means the container's user namespace.
    pub mappings: Option<Mappings>,
}

fn non_empty(m: &Option<Vec<LinuxIdMapping>>) -> Option<&Vec<LinuxIdMapping>> {
    m.as_ref().filter(|v| !v.is_empty())
}

/// Whether a mount asks for an id-mapping (own mappings or an `[r]idmap` option).
pub fn wants_idmap(m: &Mount) -> bool {
    non_empty(m.uid_mappings()).is_some()
        || non_empty(m.gid_mappings()).is_some()
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "idmap" || o == "ridmap")
}

/// The id-mapped mounts of a spec, checked against the runtime-spec rules: mappings come in
/// uid+gid pairs, only bind mounts can be id-mapped, and a mount without its own mappings borrows
/// the container's user namespace, so it needs one.
pub fn plan(mounts: &[Mount], bundle: &Path, container_userns: bool) -> Result<Vec<IdmapRequest>> {
    let mut out = Vec::new();
    for (index, m) in mounts.iter().enumerate() {
        if !wants_idmap(m) {
            continue;
        }
        let dest = m.destination().display();
        let opts = options::parse(m.options().as_deref().unwrap_or(&[]))?;
        let mappings = match (non_empty(m.uid_mappings()), non_empty(m.gid_mappings())) {
            (Some(u), Some(g)) => Some((u.clone(), g.clone())),
            (None, None) => None,
            _ => {
                return Err(Error::Invalid(format!(
                    "mount {dest}: uidMappings and gidMappings must be given together"
                )));
            }
        };
        if m.typ().as_deref() != Some("bind") && !opts.is_bind() {
            return Err(Error::Invalid(format!(
                "mount {dest}: id-mapped mounts must be bind mounts"
            )));
        }
        if mappings.is_none() && !container_userns {
            return Err(Error::Invalid(format!(
                "mount {dest}: idmap without uidMappings/gidMappings needs a user namespace \
                 (linux.namespaces has no \"user\")"
            )));
        }
        let source = m
            .source()
            .clone()
            .ok_or_else(|| Error::Invalid(format!("bind mount {dest} has no source")))?;
        let source = if source.is_absolute() {
            source
        } else {
            bundle.join(source)
        };
        let map_recursive = opts.idmap == Some(Idmap::Recursive);
        out.push(IdmapRequest {
            index,
            source,
            clone_recursive: map_recursive || opts.flags.contains(MsFlags::MS_REC),
            map_recursive,
            mappings,
        });
    }
    Ok(out)
}

/// `/proc/<pid>/uid_map` text.
pub fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// A user namespace with exactly `maps`: a short-lived child is cloned into a new one, the maps
/// are written from here (we are root outside it), and its namespace file is kept open.
pub fn userns_with(maps: &Mappings) -> Result<OwnedFd> {
    let child_err = |e: ChildError| Error::Invalid(format!("id-mapping user namespace: {e}"));
    let child = NsChild::spawn(CloneFlags::CLONE_NEWUSER, None).map_err(child_err)?;
    child
        .write_maps(&map_text(&maps.0), &map_text(&maps.1))
        .map_err(child_err)?;
    let path = child.ns_path("user");
    let fd = open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .ctx("opening user namespace", &path)?;
    child.finish().map_err(child_err)?;
    Ok(fd)
}

/// Detached id-mapped clones of the requested sources, by mount index. `container` is the
/// container's user namespace (with its mappings when it made a new one, so a mount asking
/// for the same mappings shares it).
pub fn prepare(
    reqs: &[IdmapRequest],
    container: Option<(&OwnedFd, Option<&Mappings>)>,
) -> Result<Vec<(usize, OwnedFd)>> {
    let mut made: Vec<(Mappings, OwnedFd)> = Vec::new();
    let mut out = Vec::new();
    for r in reqs {
        let userns = match (&r.mappings, container) {
            (None, Some((fd, _))) => fd,
            (Some(m), Some((fd, Some(cm)))) if m == cm => fd,
            (Some(m), _) => {
                if let Some(i) = made.iter().position(|(x, _)| x == m) {
                    &made[i].1
                } else {
                    made.push((m.clone(), userns_with(m)?));
                    &made[made.len() - 1].1
                }
            }
            (None, None) => {
                return Err(Error::Invalid(format!(
                    "id-mapped mount from {}: no user namespace to map with",
                    r.source.display()
                )));
            }
        };
        let tree = mount_api::open_tree_clone(&r.source, r.clone_recursive)
            .ctx("cloning id-mapped mount source", &r.source)?;
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            userns_fd: userns.as_raw_fd() as u64,
            ..MountAttr::default()
        };
        match mount_api::setattr_fd(tree.as_fd(), r.map_recursive, &attr) {
            Ok(()) => {}
            Err(nix::errno::Errno::ENOSYS) => {
                return Err(Error::Unsupported(
                    "id-mapped mounts on this kernel (no mount_setattr)".into(),
                ));
            }
            Err(e) => return Err(Error::sys("id-mapping mount of", &r.source, e)),
        }
        out.push((r.index, tree));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(v: serde_json::Value) -> Mount {
        serde_json::from_value(v).unwrap()
    }

    fn map(c: u32, h: u32, n: u32) -> serde_json::Value {
        serde_json::json!([{"containerID": c, "hostID": h, "size": n}])
    }

    #[test]
    fn idmap_options_and_mappings_select_the_mounts_and_their_recursion() {
        let mounts = vec![
            mount(serde_json::json!({"destination": "/proc", "type": "proc", "source": "proc"})),
            mount(
                serde_json::json!({"destination": "/a", "type": "bind", "source": "src",
                                     "options": ["rbind", "idmap"]}),
            ),
            mount(serde_json::json!({"destination": "/b", "source": "/b",
                                     "options": ["bind", "ridmap"]})),
            mount(
                serde_json::json!({"destination": "/c", "type": "bind", "source": "/c",
                                     "options": ["bind"], "uidMappings": map(0, 5, 10),
                                     "gidMappings": map(0, 6, 10)}),
            ),
        ];
        let p = plan(&mounts, Path::new("/bundle"), true).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(
            (
                p[0].index,
                &p[0].source,
                p[0].clone_recursive,
                p[0].map_recursive
            ),
            (1, &PathBuf::from("/bundle/src"), true, false)
        );
        assert!(p[1].clone_recursive && p[1].map_recursive);
        assert_eq!(p[2].index, 3);
        let (u, g) = p[2].mappings.clone().unwrap();
        assert_eq!((u[0].host_id(), g[0].host_id()), (5, 6));
        assert!(!p[2].clone_recursive);
        // Own mappings need no container user namespace; plain idmap does.
        assert_eq!(plan(&mounts[3..], Path::new("/"), false).unwrap().len(), 1);
        let e = plan(&mounts[1..2], Path::new("/"), false).unwrap_err();
        assert!(e.to_string().contains("needs a user namespace"), "{e}");
    }

    #[test]
    fn bad_combinations_are_invalid() {
        for (m, want) in [
            (
                serde_json::json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                                   "options": ["idmap"]}),
                "must be bind mounts",
            ),
            (
                serde_json::json!({"destination": "/c", "type": "bind", "source": "/c",
                                   "options": ["bind", "idmap"], "uidMappings": map(0, 5, 10)}),
                "must be given together",
            ),
        ] {
            let e = plan(&[mount(m)], Path::new("/"), true).unwrap_err();
            assert!(matches!(e, Error::Invalid(_)), "{e}");
            assert!(e.to_string().contains(want), "{e}");
        }
        // Empty mapping lists mean "not given" (runtime-spec 1.2).
        let m = mount(
            serde_json::json!({"destination": "/c", "type": "bind", "source": "/c",
                                         "options": ["bind"], "uidMappings": [], "gidMappings": []}),
        );
        assert!(plan(&[m], Path::new("/"), false).unwrap().is_empty());
    }

    #[test]
    fn map_text_is_one_line_per_range() {
        let m: Vec<LinuxIdMapping> = serde_json::from_value(serde_json::json!([
            {"containerID": 0, "hostID": 1000, "size": 1},
            {"containerID": 1, "hostID": 100000, "size": 65535}
        ]))
        .unwrap();
        assert_eq!(map_text(&m), "0 1000 1\n1 100000 65535\n");
    }

    /// Root only: a real clone through a helper user namespace shows the mapped owner.
    #[test]
    fn prepared_clone_shows_the_mapped_owner() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let maps: Mappings = (
            serde_json::from_value(map(0, 1000, 1)).unwrap(),
            serde_json::from_value(map(0, 2000, 1)).unwrap(),
        );
        let req = IdmapRequest {
            index: 7,
            source: dir.path().to_path_buf(),
            clone_recursive: false,
            map_recursive: false,
            mappings: Some(maps),
        };
        let out = prepare(&[req], None).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, 7);
        let st = nix::sys::stat::fstatat(
            out[0].1.as_fd(),
            "f",
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
        // On-disk 0 is container id 0 of the mapping, i.e. host 1000 / 2000.
        assert_eq!((st.st_uid, st.st_gid), (1000, 2000));
    }
}
