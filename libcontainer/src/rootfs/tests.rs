//! The rootfs sequence against the recording double: order, flags and targets.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::SFlag;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use super::*;
use crate::syscall::{Call, RecordingSyscall};

const ROOTFS: &str = "/bundle/rootfs";

fn mount(dest: &str, typ: &str, source: &str, opts: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(opts.iter().map(|s| s.to_string()).collect()));
    m
}

/// The mounts `runc spec` generates, plus a read-only bind and a cgroup mount.
fn typical() -> RootfsConfig {
    RootfsConfig {
        rootfs: PathBuf::from(ROOTFS),
        bundle: PathBuf::from("/bundle"),
        mounts: vec![
            mount("/proc", "proc", "proc", &[]),
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
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            ),
            mount(
                "/dev/mqueue",
                "mqueue",
                "mqueue",
                &["nosuid", "noexec", "nodev"],
            ),
            mount(
                "/sys",
                "sysfs",
                "sysfs",
                &["nosuid", "noexec", "nodev", "ro"],
            ),
            mount(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["nosuid", "noexec", "nodev", "relatime", "ro"],
            ),
            mount("/data", "bind", "/host/data", &["rbind", "ro", "nosuid"]),
        ],
        cgroup: CgroupMount::V1(vec![(
            "pids".to_string(),
            PathBuf::from("/sys/fs/cgroup/pids/c1"),
        )]),
        masked_paths: vec![
            "/proc/kcore".into(),
            "/proc/acpi".into(),
            "/proc/missing".into(),
        ],
        readonly_paths: vec!["/proc/sys".into()],
        root_readonly: true,
        ..RootfsConfig::default()
    }
}

fn double() -> RecordingSyscall {
    RecordingSyscall {
        host_paths: vec![
            (PathBuf::from("/host/data"), true),
            (PathBuf::from("/acpi-is-dir"), true),
            (PathBuf::from("/proc/acpi"), true),
        ],
        missing: vec![PathBuf::from("/proc/missing")],
        ..RecordingSyscall::default()
    }
}

/// (source, target, fstype, flags, data) of one recorded mount.
type MountCall = (
    Option<PathBuf>,
    PathBuf,
    Option<String>,
    MsFlags,
    Option<String>,
);

fn mounts_of(calls: &[Call]) -> Vec<MountCall> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => Some((
                source.clone(),
                target.clone(),
                fstype.clone(),
                *flags,
                data.clone(),
            )),
            _ => None,
        })
        .collect()
}

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

#[test]
fn typical_spec_mounts_in_order_with_flags_under_the_rootfs() {
    let sys = double();
    let cfg = typical();
    prepare(&sys, &cfg).unwrap();
    let m = mounts_of(&sys.calls());
    let ro_nsx = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let expected = vec![
        (
            None,
            p("/"),
            None,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None,
        ),
        (
            Some(p(ROOTFS)),
            p(ROOTFS),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        ),
        (
            Some(p("proc")),
            p("/bundle/rootfs/proc"),
            Some("proc".into()),
            MsFlags::empty(),
            None,
        ),
        (
            Some(p("tmpfs")),
            p("/bundle/rootfs/dev"),
            Some("tmpfs".into()),
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            Some("mode=755,size=65536k".into()),
        ),
        (
            Some(p("devpts")),
            p("/bundle/rootfs/dev/pts"),
            Some("devpts".into()),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620,gid=5".into()),
        ),
        (
            Some(p("shm")),
            p("/bundle/rootfs/dev/shm"),
            Some("tmpfs".into()),
            ro_nsx,
            Some("mode=1777,size=65536k".into()),
        ),
        (
            Some(p("mqueue")),
            p("/bundle/rootfs/dev/mqueue"),
            Some("mqueue".into()),
            ro_nsx,
            None,
        ),
        (
            Some(p("sysfs")),
            p("/bundle/rootfs/sys"),
            Some("sysfs".into()),
            ro_nsx | MsFlags::MS_RDONLY,
            None,
        ),
        // cgroup v1: a tmpfs, the container's own cgroup bound read-only, then the tmpfs made ro.
        (
            Some(p("tmpfs")),
            p("/bundle/rootfs/sys/fs/cgroup"),
            Some("tmpfs".into()),
            ro_nsx,
            Some("mode=755".into()),
        ),
        (
            Some(p("/sys/fs/cgroup/pids/c1")),
            p("/bundle/rootfs/sys/fs/cgroup/pids"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC | ro_nsx,
            None,
        ),
        (
            None,
            p("/bundle/rootfs/sys/fs/cgroup/pids"),
            None,
            ro_nsx | MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
            None,
        ),
        (
            None,
            p("/bundle/rootfs/sys/fs/cgroup"),
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | ro_nsx,
            Some("mode=755".into()),
        ),
        // bind: the bind itself, then a remount for ro/nosuid.
        (
            Some(p("/host/data")),
            p("/bundle/rootfs/data"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        ),
        (
            None,
            p("/bundle/rootfs/data"),
            None,
            MsFlags::MS_BIND
                | MsFlags::MS_REC
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_REMOUNT,
            None,
        ),
    ];
    assert_eq!(m, expected);
    for (_, target, ..) in &m[1..] {
        assert!(
            target.starts_with(ROOTFS),
            "{} escapes the rootfs",
            target.display()
        );
    }
}

#[test]
fn default_and_spec_devices_are_created_with_mknod_and_symlinks() {
    let sys = double();
    let mut cfg = typical();
    let mut d = LinuxDevice::default();
    d.set_path(p("/dev/fuse"));
    d.set_typ(LinuxDeviceType::C);
    d.set_major(10);
    d.set_minor(229);
    d.set_file_mode(Some(0o600));
    d.set_uid(Some(1000));
    d.set_gid(Some(1000));
    cfg.devices = vec![d];
    prepare(&sys, &cfg).unwrap();
    let calls = sys.calls();
    let nodes: Vec<_> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Mknod {
                path,
                kind,
                perm,
                dev,
            } => Some((path.clone(), *kind, *perm, *dev)),
            _ => None,
        })
        .collect();
    let names: Vec<_> = nodes.iter().map(|n| n.0.display().to_string()).collect();
    assert_eq!(
        names,
        ["null", "zero", "full", "random", "urandom", "tty", "fuse"]
            .map(|n| format!("/bundle/rootfs/dev/{n}"))
    );
    assert_eq!(nodes[0].1, SFlag::S_IFCHR);
    assert_eq!(nodes[0].2, 0o666);
    assert_eq!(nodes[0].3, nix::sys::stat::makedev(1, 3));
    assert_eq!(nodes[6].2, 0o600);
    assert!(calls.contains(&Call::Chown(
        p("/bundle/rootfs/dev/fuse"),
        Some(1000),
        Some(1000)
    )));
    assert!(calls.contains(&Call::Symlink(p("pts/ptmx"), p("/bundle/rootfs/dev/ptmx"))));
    assert!(calls.contains(&Call::Symlink(
        p("/proc/self/fd"),
        p("/bundle/rootfs/dev/fd")
    )));
    assert!(calls.contains(&Call::Symlink(
        p("/proc/self/fd/2"),
        p("/bundle/rootfs/dev/stderr")
    )));
}

#[test]
fn devices_are_bind_mounted_from_the_host_in_a_user_namespace() {
    let sys = double();
    let cfg = RootfsConfig {
        in_userns: true,
        ..typical()
    };
    prepare(&sys, &cfg).unwrap();
    let calls = sys.calls();
    assert!(!calls.iter().any(|c| matches!(c, Call::Mknod { .. })));
    assert!(calls.contains(&Call::Mount {
        source: Some(p("/dev/null")),
        target: p("/bundle/rootfs/dev/null"),
        fstype: None,
        flags: MsFlags::MS_BIND,
        data: None,
    }));
    assert!(calls.contains(&Call::Create(
        p("/bundle/rootfs/dev/null"),
        crate::syscall::TargetKind::File
    )));
}

#[test]
fn masked_and_readonly_paths_and_readonly_root() {
    let sys = double();
    let cfg = typical();
    finalize(&sys, &cfg).unwrap();
    let m = mounts_of(&sys.calls());
    assert_eq!(
        m,
        vec![
            (
                Some(p("/proc/sys")),
                p("/proc/sys"),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None
            ),
            (
                None,
                p("/proc/sys"),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
                None
            ),
            // A file is masked with /dev/null, a directory with a read-only tmpfs; missing
            // paths are skipped.
            (
                Some(p("/dev/null")),
                p("/proc/kcore"),
                None,
                MsFlags::MS_BIND,
                None
            ),
            (
                Some(p("tmpfs")),
                p("/proc/acpi"),
                Some("tmpfs".into()),
                MsFlags::MS_RDONLY,
                None
            ),
            (
                None,
                p("/"),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None
            ),
        ]
    );
}

#[test]
fn pivot_or_move_root() {
    let sys = double();
    let mut cfg = typical();
    switch_root(&sys, &cfg).unwrap();
    cfg.no_pivot = true;
    switch_root(&sys, &cfg).unwrap();
    assert_eq!(
        sys.calls(),
        vec![Call::PivotRoot(p(ROOTFS)), Call::MoveRoot(p(ROOTFS))]
    );
}

#[test]
fn sysfs_falls_back_to_binding_the_hosts_when_denied() {
    let sys = RecordingSyscall {
        deny_fstype: Some("sysfs".into()),
        ..double()
    };
    let cfg = RootfsConfig {
        mounts: vec![mount("/sys", "sysfs", "sysfs", &["nosuid", "ro"])],
        ..typical()
    };
    prepare(&sys, &cfg).unwrap();
    let m = mounts_of(&sys.calls());
    assert_eq!(m[2].0, Some(p("/sys")));
    assert_eq!(m[2].3, MsFlags::MS_BIND | MsFlags::MS_REC);
    assert_eq!(
        m[3].3,
        MsFlags::MS_NOSUID | MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REMOUNT
    );
}

#[test]
fn propagation_option_and_rootfs_propagation() {
    let sys = double();
    let cfg = RootfsConfig {
        propagation: Some("rprivate".into()),
        mounts: vec![mount("/data", "bind", "/host/data", &["rbind", "rshared"])],
        ..typical()
    };
    prepare(&sys, &cfg).unwrap();
    let m = mounts_of(&sys.calls());
    assert_eq!(m[0].3, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
    assert_eq!(
        m[3],
        (
            None,
            p("/bundle/rootfs/data"),
            None,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None
        )
    );
}

#[test]
fn mount_errors_name_the_step_and_path() {
    let sys = RecordingSyscall::default();
    let cfg = RootfsConfig {
        mounts: vec![mount("/data", "bind", "/nonexistent", &["rbind"])],
        ..typical()
    };
    let err = prepare(&sys, &cfg).unwrap_err().to_string();
    assert!(err.contains("bind mount source /nonexistent"), "{err}");
}

#[test]
fn config_from_spec_resolves_relative_root() {
    let spec = Spec::default();
    let cfg = RootfsConfig::from_spec(&spec, Path::new("/b"), false, CgroupMount::None);
    assert_eq!(cfg.rootfs, p("/b/rootfs"));
    assert!(!cfg.mounts.is_empty());
}

#[test]
fn recursive_attributes_are_set_on_the_reopened_target() {
    use crate::mount_api::{MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
    let sys = double();
    let cfg = RootfsConfig {
        mounts: vec![mount(
            "/data",
            "bind",
            "/host/data",
            &["rbind", "rnosuid", "rnoexec", "rrw"],
        )],
        ..typical()
    };
    prepare(&sys, &cfg).unwrap();
    let attrs: Vec<_> = sys
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::SetAttr {
                target,
                attr,
                recursive,
            } => Some((target, attr.attr_set, attr.attr_clr, recursive)),
            _ => None,
        })
        .collect();
    assert_eq!(
        attrs,
        vec![(
            p("/bundle/rootfs/data"),
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
            MOUNT_ATTR_RDONLY,
            true
        )]
    );
    // The bind itself needs no remount: the recursive options are not mount(2) flags.
    assert_eq!(mounts_of(&sys.calls()).len(), 3);
}

#[test]
fn tmpcopyup_mounts_rw_copies_then_remounts_read_only() {
    let sys = double();
    let cfg = RootfsConfig {
        mounts: vec![mount(
            "/etc",
            "tmpfs",
            "tmpfs",
            &["tmpcopyup", "ro", "nosuid", "mode=755"],
        )],
        ..typical()
    };
    prepare(&sys, &cfg).unwrap();
    let calls = sys.calls();
    let etc = p("/bundle/rootfs/etc");
    let i = calls
        .iter()
        .position(|c| *c == Call::CopyUp(etc.clone(), etc.clone()))
        .expect("copy-up");
    let m = mounts_of(&calls[..i]);
    assert_eq!(
        m.last().unwrap(),
        &(
            Some(p("tmpfs")),
            etc.clone(),
            Some("tmpfs".into()),
            MsFlags::MS_NOSUID,
            Some("mode=755".into())
        )
    );
    assert_eq!(
        mounts_of(&calls[i..]),
        vec![(
            None,
            etc,
            None,
            MsFlags::MS_NOSUID | MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT,
            Some("mode=755".into())
        )]
    );
}

#[test]
fn tmpcopyup_on_something_else_than_tmpfs_is_invalid() {
    let sys = double();
    let cfg = RootfsConfig {
        mounts: vec![mount(
            "/data",
            "bind",
            "/host/data",
            &["rbind", "tmpcopyup"],
        )],
        ..typical()
    };
    let e = prepare(&sys, &cfg).unwrap_err().to_string();
    assert!(e.contains("tmpcopyup is only for tmpfs"), "{e}");
}

#[test]
fn idmapped_bind_is_attached_from_the_parents_fd() {
    let sys = double();
    let fd = std::fs::File::open("/dev/null").unwrap();
    let mut cfg = RootfsConfig {
        mounts: vec![
            mount("/data", "bind", "/host/data", &["rbind", "idmap", "ro"]),
            mount("/other", "bind", "/host/data", &["rbind", "ridmap"]),
        ],
        ..typical()
    };
    cfg.detached = vec![(0, std::sync::Arc::new(std::os::fd::OwnedFd::from(fd)))];
    // The second one was not prepared: a clear error, after the first was attached.
    let e = prepare(&sys, &cfg).unwrap_err().to_string();
    assert!(e.contains("/other was not prepared"), "{e}");
    let calls = sys.calls();
    assert!(calls.contains(&Call::MoveMount(p("/bundle/rootfs/data"))));
    let m = mounts_of(&calls);
    // No bind from the host path; only the read-only remount of the attached mount.
    assert!(!m.iter().any(|c| c.0 == Some(p("/host/data"))), "{m:?}");
    assert_eq!(
        m.last().unwrap().3,
        MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT
    );
}
