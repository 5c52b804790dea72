//! spec.mounts: the default filesystems, the pod's files, and the CRI mounts.

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::Mount;

use super::{ContainerContext, PauseContext, PodContext, SpecError, SpecOptions, invalid};
use crate::api;
use crate::api::MountPropagation;
use crate::userns::IdMaps;
use crate::validate::quote;

fn mount(dest: &str, typ: &str, source: impl Into<PathBuf>, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest))
        .set_typ(Some(typ.to_string()))
        .set_source(Some(source.into()))
        .set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

fn bind(dest: &str, source: &Path, options: &[&str]) -> Mount {
    let mut opts = vec!["rbind"];
    opts.extend_from_slice(options);
    mount(dest, "bind", source, &opts)
}

/// The filesystems every container gets, in mount order. sysfs and cgroupfs are read-only
/// unless privileged.
fn default_mounts(pod: &PodContext, privileged: bool, readonly_rootfs: bool) -> Vec<Mount> {
    let ro = if privileged { "rw" } else { "ro" };
    let files = if readonly_rootfs { "ro" } else { "rw" };
    let mut v = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", ro]),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", ro],
        ),
        bind("/dev/shm", pod.shm, &["nosuid", "noexec", "nodev"]),
    ];
    if let Some(r) = pod.resolv_conf {
        v.push(bind(
            "/etc/resolv.conf",
            r,
            &["nosuid", "noexec", "nodev", files],
        ));
    }
    v.push(bind(
        "/etc/hostname",
        pod.hostname_file,
        &["nosuid", "noexec", "nodev", files],
    ));
    v.push(bind(
        "/etc/hosts",
        pod.hosts_file,
        &["nosuid", "noexec", "nodev", files],
    ));
    v
}

/// Absolute, without "." / ".." / duplicate or trailing slashes.
fn clean_destination(p: &str) -> Result<PathBuf, SpecError> {
    if !p.starts_with('/') {
        return Err(invalid(format!(
            "mount container path {} is not absolute",
            quote(p)
        )));
    }
    let mut out = PathBuf::from("/");
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                return Err(invalid(format!(
                    "mount container path {} contains \"..\"",
                    quote(p)
                )));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Propagation of the mount holding `path` in /proc/self/mountinfo: (shared, slave).
fn host_propagation(path: &Path) -> Option<(bool, bool)> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(usize, bool, bool)> = None;
    for line in table.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(mp) = fields.get(4) else { continue };
        let mp = mp
            .replace("\\040", " ")
            .replace("\\011", "\t")
            .replace("\\134", "\\");
        if !path.starts_with(&mp) {
            continue;
        }
        let optional = fields.iter().skip(6).take_while(|f| **f != "-");
        let (mut shared, mut slave) = (false, false);
        for f in optional {
            shared |= f.starts_with("shared:");
            slave |= f.starts_with("master:");
        }
        // Later lines over-mount earlier ones at the same point: >= keeps the last.
        if best.is_none_or(|(len, _, _)| mp.len() >= len) {
            best = Some((mp.len(), shared, slave));
        }
    }
    best.map(|(_, sh, sl)| (sh, sl))
}

/// The rootfs propagation a set of CRI mounts needs (runc makes the root mount private
/// otherwise, and propagation from/to the host would stop there).
fn rootfs_propagation(mounts: &[api::Mount]) -> Option<String> {
    let has = |p: MountPropagation| mounts.iter().any(|m| m.propagation == p as i32);
    if has(MountPropagation::PropagationBidirectional) {
        Some("rshared".into())
    } else if has(MountPropagation::PropagationHostToContainer) {
        Some("rslave".into())
    } else {
        None
    }
}

/// Where the image volume of CRI mount `index` is mounted on the host.
pub fn image_volume_path(volumes: &Path, index: usize) -> PathBuf {
    volumes.join(index.to_string())
}

/// An image volume (CRI `Mount.image`), bound from `image_source`, the read-only overlay of its
/// layers, which the caller mounted (id-mapped already in a pod with a user namespace); or a
/// host path.
fn cri_mount(
    m: &api::Mount,
    image_source: &Path,
    userns: Option<&IdMaps>,
) -> Result<Mount, SpecError> {
    let dest = clean_destination(&m.container_path)?;
    let image = m.image.as_ref().is_some_and(|i| !i.image.is_empty());
    let source = if image {
        if !m.host_path.is_empty() {
            return Err(invalid(format!(
                "mount {}: host_path and image are mutually exclusive",
                quote(&m.container_path)
            )));
        }
        // The CRI: image volumes are read-only by definition; critest wants false refused.
        if !m.readonly {
            return Err(invalid(format!(
                "mount {}: an image volume must be readonly",
                quote(&m.container_path)
            )));
        }
        if !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty() {
            return Err(invalid(format!(
                "mount {}: an image volume takes no uid/gid mappings",
                quote(&m.container_path)
            )));
        }
        image_sub_source(image_source, m)?
    } else {
        host_source(m)?
    };
    let propagation = MountPropagation::try_from(m.propagation).map_err(|_| {
        invalid(format!(
            "mount {}: unknown propagation {}",
            dest.display(),
            m.propagation
        ))
    })?;
    if m.recursive_read_only {
        if !m.readonly {
            return Err(invalid(format!(
                "mount {}: recursive_read_only requires readonly",
                dest.display()
            )));
        }
        if propagation != MountPropagation::PropagationPrivate {
            return Err(invalid(format!(
                "mount {}: recursive_read_only requires private propagation",
                dest.display()
            )));
        }
    }
    let prop = match propagation {
        MountPropagation::PropagationPrivate => "rprivate",
        MountPropagation::PropagationHostToContainer => {
            if host_propagation(&source).is_some_and(|(sh, sl)| !sh && !sl) {
                return Err(SpecError::FailedPrecondition(format!(
                    "mount {}: host path {} is on a private mount, it cannot propagate to the container",
                    dest.display(),
                    source.display()
                )));
            }
            "rslave"
        }
        MountPropagation::PropagationBidirectional => {
            if host_propagation(&source).is_some_and(|(sh, _)| !sh) {
                return Err(SpecError::FailedPrecondition(format!(
                    "mount {}: host path {} is not on a shared mount, bidirectional propagation impossible",
                    dest.display(),
                    source.display()
                )));
            }
            "rshared"
        }
    };
    // Not noexec: the early KEP-4639 draft asked for it, but cri-o, containerd and critest
    // (which runs a binary from the volume) allow executing image volume files.
    let mut opts = vec![prop, if m.readonly { "ro" } else { "rw" }];
    if m.recursive_read_only {
        opts.push("rro");
    }
    let maps = if image {
        None
    } else {
        id_mappings(m, &dest, userns)?
    };
    if maps.is_some() {
        opts.push("idmap");
    }
    let mut out = bind("/", &source, &opts);
    out.set_destination(dest);
    if let Some((uids, gids)) = maps.as_ref().map(IdMaps::to_oci) {
        out.set_uid_mappings(Some(uids))
            .set_gid_mappings(Some(gids));
    }
    Ok(out)
}

/// What an image volume binds: the mounted image, or only its `image_sub_path`. The sub path
/// must be relative and free of `..`, exist in the image, and stay inside it once symlinks are
/// followed (an absolute symlink would otherwise lead to the host's files).
pub(super) fn image_sub_source(image_root: &Path, m: &api::Mount) -> Result<PathBuf, SpecError> {
    let sub = m.image_sub_path.as_str();
    if sub.is_empty() {
        return Ok(image_root.to_path_buf());
    }
    let rel = Path::new(sub);
    if rel.is_absolute() || rel.components().any(|c| c == Component::ParentDir) {
        return Err(invalid(format!(
            "mount {}: image_sub_path {sub:?} must be a relative path without \"..\"",
            m.container_path
        )));
    }
    let failed = |e: std::io::Error, what: &str| match e.kind() {
        std::io::ErrorKind::NotFound => SpecError::NotFound(format!(
            "mount {}: image_sub_path {sub:?} does not exist in the image",
            m.container_path
        )),
        _ => SpecError::FailedPrecondition(format!("mount {}: {what}: {e}", m.container_path)),
    };
    let root = std::fs::canonicalize(image_root).map_err(|e| failed(e, "image volume"))?;
    let source = std::fs::canonicalize(root.join(rel)).map_err(|e| failed(e, "image_sub_path"))?;
    if !source.starts_with(&root) {
        return Err(invalid(format!(
            "mount {}: image_sub_path {sub:?} leads outside the image",
            m.container_path
        )));
    }
    Ok(source)
}

/// A host path mount's source: the real target of `host_path`.
fn host_source(m: &api::Mount) -> Result<PathBuf, SpecError> {
    if m.host_path.is_empty() {
        return Err(invalid(format!(
            "mount {}: host_path is empty",
            m.container_path
        )));
    }
    // A symlinked host path is followed: the real target is mounted.
    std::fs::canonicalize(&m.host_path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            SpecError::NotFound(format!("mount host path {}: {e}", m.host_path))
        }
        _ => SpecError::FailedPrecondition(format!("mount host path {}: {e}", m.host_path)),
    })
}

/// An id-mapped volume: with the mount's own mappings when the request gives them, else, in a
/// pod with a user namespace, with the pod's (so files the host's root owns belong to the
/// pod's root, as containerd and cri-o map volumes).
fn id_mappings(
    m: &api::Mount,
    dest: &Path,
    userns: Option<&IdMaps>,
) -> Result<Option<IdMaps>, SpecError> {
    let own = IdMaps::for_mount(&m.uid_mappings, &m.gid_mappings)
        .map_err(|e| invalid(format!("mount {}: {e}", dest.display())))?;
    Ok(own.or_else(|| userns.cloned()))
}

/// Default mounts, then the CRI mounts sorted by destination depth (parents before children);
/// a CRI mount replaces a default one at the same destination. Also the rootfs propagation the
/// CRI mounts need.
pub fn container_mounts(
    pod: &PodContext,
    c: &ContainerContext,
    sc: &api::LinuxContainerSecurityContext,
    _opts: &SpecOptions,
) -> Result<(Vec<Mount>, Option<String>), SpecError> {
    let mut cri: Vec<Mount> = c
        .config
        .mounts
        .iter()
        .enumerate()
        .map(|(i, m)| {
            cri_mount(
                m,
                &image_volume_path(c.image_volumes, i),
                pod.userns.map(|u| u.maps),
            )
        })
        .collect::<Result<_, _>>()?;
    cri.sort_by_key(|m| m.destination().components().count());
    let mut all: Vec<Mount> = default_mounts(pod, sc.privileged, sc.readonly_rootfs)
        .into_iter()
        .filter(|d| !cri.iter().any(|m| m.destination() == d.destination()))
        .collect();
    all.extend(cri);
    Ok((all, rootfs_propagation(&c.config.mounts)))
}

/// The pause process' tiny root: /proc, /dev, the host's /usr (+ /lib, /lib64 for the dynamic
/// loader) read-only, and the crius binary at /pause.
pub fn pause_mounts(p: &PauseContext) -> Vec<Mount> {
    let mut v = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
    ];
    if p.image_args.is_some() {
        return v;
    }
    // Static: nothing of the host's /usr or /lib is needed.
    v.push(bind("/pause", p.pause, &["ro", "nosuid", "nodev"]));
    v
}
