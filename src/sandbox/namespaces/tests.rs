use std::os::unix::fs::MetadataExt;

use super::*;

/// Undoes a test's pins and extra mounts, even when an assertion failed.
#[derive(Default)]
struct Cleanup {
    pinned: Vec<Pinned>,
    mounts: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.pinned {
            let _ = unpin(p);
        }
        for m in &self.mounts {
            let _ = umount2(m, MntFlags::MNT_DETACH);
        }
    }
}

const ALL: NsSet = NsSet {
    net: true,
    ipc: true,
    uts: true,
    user: None,
    user_sysctls: Vec::new(),
};

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// Mount points at or below `dir`, from this process' mount table.
fn mounts_under(dir: &Path) -> Vec<MountEntry> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    parse_mountinfo(&table)
        .into_iter()
        .filter(|m| m.point.starts_with(dir))
        .collect()
}

fn hostname_in(uts: &Path) -> String {
    let file = std::fs::File::open(uts).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(&file, CloneFlags::CLONE_NEWUTS).unwrap();
        nix::unistd::gethostname().unwrap().into_string().unwrap()
    })
    .join()
    .unwrap()
}

#[test]
fn pins_all_three_and_unpins_idempotently() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ns");
    let mut cleanup = Cleanup::default();
    let pinned = pin(&dir, "pod1", ALL, Some("pod-host")).unwrap();
    cleanup.pinned.push(pinned.clone());

    assert_eq!(
        pinned,
        Pinned {
            net: Some(dir.join("net/pod1")),
            ipc: Some(dir.join("ipc/pod1")),
            uts: Some(dir.join("uts/pod1")),
            user: None,
        }
    );
    for (kind, file) in [
        ("net", &pinned.net),
        ("ipc", &pinned.ipc),
        ("uts", &pinned.uts),
    ] {
        let file = file.as_ref().unwrap();
        let ours = Path::new("/proc/thread-self/ns").join(kind);
        assert_ne!(inode(file), inode(&ours), "{kind} namespace is not new");
        // The file is an nsfs mount, not the empty regular file under it.
        assert_eq!(std::fs::metadata(file).unwrap().len(), 0);
        assert!(
            mounts_under(&dir).iter().any(|m| &m.point == file),
            "{} is not a mount point",
            file.display()
        );
    }
    assert_eq!(hostname_in(pinned.uts.as_ref().unwrap()), "pod-host");
    assert_ne!(nix::unistd::gethostname().unwrap(), "pod-host");

    unpin(&pinned).unwrap();
    for file in [&pinned.net, &pinned.ipc, &pinned.uts] {
        assert!(!file.as_ref().unwrap().exists());
    }
    assert!(mounts_under(&dir).iter().all(|m| m.point == dir));
    unpin(&pinned).unwrap();
}

#[test]
fn pins_only_net() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ns");
    let mut cleanup = Cleanup::default();
    let which = NsSet {
        net: true,
        ..NsSet::default()
    };
    let pinned = pin(&dir, "pod2", which, Some("ignored")).unwrap();
    cleanup.pinned.push(pinned.clone());
    assert_eq!(pinned.net, Some(dir.join("net/pod2")));
    assert_eq!((pinned.ipc.as_ref(), pinned.uts.as_ref()), (None, None));
    assert!(!dir.join("ipc").exists() && !dir.join("uts").exists());
    let net = pinned.net.as_ref().unwrap();
    assert_ne!(inode(net), inode(Path::new("/proc/thread-self/ns/net")));
    assert!(holds_namespace(net));
    // Nothing there, or (below) the plain file a crash between making it and mounting on it
    // leaves.
    assert!(!holds_namespace(&pins_of(&dir, "pod2").ipc.unwrap()));
    unpin(&pinned).unwrap();
    assert!(!net.exists());
    std::fs::write(net, b"").unwrap();
    assert!(!holds_namespace(net));
    std::fs::remove_file(net).unwrap();
}

#[test]
fn nothing_requested_pins_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ns");
    assert_eq!(
        pin(&dir, "pod", NsSet::default(), None).unwrap(),
        Pinned::default()
    );
    assert!(!dir.exists());
}

#[test]
fn uncreatable_dir_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("file"), "").unwrap();
    let dir = tmp.path().join("file/ns");
    let err = pin(&dir, "pod3", ALL, None).unwrap_err();
    assert!(matches!(err, NsError::Create { .. }), "{err}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(left.len(), 1);
    assert!(mounts_under(tmp.path()).is_empty());
}

#[test]
fn failure_after_mounting_undoes_and_keeps_foreign_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ns");
    let mut cleanup = Cleanup::default();
    // Another pod's uts pin with the same id: net and ipc get mounted, then uts fails.
    std::fs::create_dir_all(dir.join("uts")).unwrap();
    std::fs::write(dir.join("uts/pod4"), "keep").unwrap();
    cleanup.pinned.push(Pinned {
        net: Some(dir.join("net/pod4")),
        ipc: Some(dir.join("ipc/pod4")),
        uts: None,
        user: None,
    });

    let err = pin(&dir, "pod4", ALL, Some("h")).unwrap_err();
    assert!(matches!(err, NsError::Create { .. }), "{err}");
    assert!(!dir.join("net/pod4").exists());
    assert!(!dir.join("ipc/pod4").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("uts/pod4")).unwrap(),
        "keep"
    );
    assert!(mounts_under(&dir).iter().all(|m| m.point == dir));
}

#[test]
fn bad_hostname_fails_before_mounting() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ns");
    let long = "h".repeat(100);
    let err = pin(&dir, "pod5", ALL, Some(&long)).unwrap_err();
    assert!(matches!(err, NsError::Hostname { .. }), "{err}");
    for kind in ["net", "ipc", "uts"] {
        assert!(!dir.join(kind).join("pod5").exists());
    }
}

#[test]
fn rejects_path_like_ids() {
    let tmp = tempfile::tempdir().unwrap();
    for id in ["", ".", "..", "a/b", "a\0b"] {
        let err = pin(tmp.path(), id, ALL, None).unwrap_err();
        assert!(matches!(err, NsError::InvalidId(_)), "{id:?}: {err}");
    }
}

#[test]
fn shared_dir_becomes_private_once() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let dir = base.join("ns");
    let mut cleanup = Cleanup::default();
    // A shared mount like systemd's /run; dropped last (mounts are detached in push order).
    mount(
        Some(&base),
        &base,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    cleanup.mounts.push(dir.clone());
    cleanup.mounts.push(base.clone());
    mount(
        None::<&str>,
        &base,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .unwrap();

    let pinned = pin(&dir, "pod6", ALL, None).unwrap();
    cleanup.pinned.push(pinned.clone());
    let own: Vec<_> = mounts_under(&dir)
        .into_iter()
        .filter(|m| m.point == dir)
        .collect();
    assert_eq!(
        own,
        vec![MountEntry {
            point: dir.clone(),
            shared: false
        }]
    );
    for file in [&pinned.net, &pinned.ipc, &pinned.uts] {
        let entry = mounts_under(&dir)
            .into_iter()
            .find(|m| Some(&m.point) == file.as_ref())
            .unwrap();
        assert!(!entry.shared);
    }
    // A second pin finds `dir` already private and does not stack another bind.
    let second = pin(&dir, "pod7", ALL, None).unwrap();
    cleanup.pinned.push(second.clone());
    assert_eq!(
        mounts_under(&dir).iter().filter(|m| m.point == dir).count(),
        1
    );
    unpin(&pinned).unwrap();
    unpin(&second).unwrap();
    assert!(mounts_under(&dir).iter().all(|m| m.point == dir));
}

#[test]
fn parses_propagation() {
    let table = "22 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n\
                 30 22 0:5 / /run rw shared:5 master:2 - tmpfs t rw\n\
                 31 30 0:6 / /run/crius\\040x rw master:3 - tmpfs t rw\n\
                 32 30 0:7 / /run/p rw - tmpfs shared:9 rw\n";
    let entries = parse_mountinfo(table);
    let shared: Vec<_> = entries
        .iter()
        .map(|m| (m.point.to_str().unwrap(), m.shared))
        .collect();
    assert_eq!(
        shared,
        [
            ("/", true),
            ("/run", true),
            ("/run/crius x", false),
            ("/run/p", false)
        ]
    );
}

/// A pod with its own user namespace: all four pinned, the others owned by the pinned user
/// namespace (NS_GET_USERNS), its maps as asked, the hostname set; unpin removes everything.
#[test]
fn pins_a_user_namespace_owning_the_others() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ns");
    let mut cleanup = Cleanup::default();
    let maps = crate::userns::IdMaps {
        uids: vec![crate::api::IdMapping {
            host_id: 500000,
            container_id: 0,
            length: 65536,
        }],
        gids: vec![crate::api::IdMapping {
            host_id: 600000,
            container_id: 0,
            length: 65536,
        }],
    };
    let which = NsSet {
        user: Some(maps),
        ..ALL
    };
    let pinned = pin(&dir, "upod", which, Some("userns-pod")).unwrap();
    cleanup.pinned.push(pinned.clone());
    let user = pinned.user.clone().unwrap();
    assert_eq!(user, dir.join("user/upod"));
    assert_ne!(inode(&user), inode(Path::new("/proc/self/ns/user")));
    const NS_GET_USERNS: libc::c_ulong = 0xb701;
    for ns in [&pinned.net, &pinned.ipc, &pinned.uts] {
        let f = std::fs::File::open(ns.as_ref().unwrap()).unwrap();
        // SAFETY: ioctl on an nsfs fd; returns a new fd of the owning user namespace.
        let owner = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_USERNS) };
        assert!(owner >= 0, "{}", std::io::Error::last_os_error());
        // SAFETY: a fresh fd from the kernel.
        let owner = unsafe { OwnedFd::from_raw_fd(owner) };
        let st = nix::sys::stat::fstat(&owner).unwrap();
        assert_eq!(st.st_ino, inode(&user));
    }
    let uts = pinned.uts.clone().unwrap();
    let name = std::thread::spawn(move || {
        let f = std::fs::File::open(uts).unwrap();
        nix::sched::setns(&f, CloneFlags::CLONE_NEWUTS).unwrap();
        nix::unistd::gethostname().unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(name, "userns-pod");
    unpin(&pinned).unwrap();
    assert!(!user.exists() && !pinned.net.as_ref().unwrap().exists());
}
