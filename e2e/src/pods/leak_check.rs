//! What a daemon left on the host: mounts, pinned network namespaces, cgroups, veths, IP
//! allocations and iptables rules. Every function returns what it found; an empty answer means
//! clean. [`Leaks::collect`] gathers them all for one daemon.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::daemon::Crius;
use crate::pods::network::TestNetwork;
use crate::util::walk;

/// One line of `/proc/self/mountinfo`: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
}

/// Parses mountinfo text (`/proc/<pid>/mountinfo` format), octal escapes undone.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fs_type = right.next()?.to_string();
            let source = unescape_octal(right.next().unwrap_or(""));
            Some(MountEntry {
                mount_point: PathBuf::from(unescape_octal(mount_point)),
                fs_type,
                source,
            })
        })
        .collect()
}

/// `\040` → space etc., as the kernel escapes mountinfo fields.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mounts() -> Vec<MountEntry> {
    parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// Mounts at or below any of `dirs`.
pub fn mounts_under(dirs: &[&Path]) -> Vec<MountEntry> {
    mounts()
        .into_iter()
        .filter(|m| dirs.iter().any(|d| m.mount_point.starts_with(d)))
        .collect()
}

/// Whether `m` is the daemon's private bind mount of its pin directory `<runroot>/ns` onto
/// itself. crius makes it, once, when that directory sits on a *shared* mount (systemd makes `/`
/// shared), so that its namespace pins do not propagate into other mount namespaces (see
/// `src/sandbox/namespaces.rs`, `make_private`); like `ip netns`' `/run/netns` it stays for the
/// daemon's lifetime and is not a pod's leftover. The pins under it (nsfs) still count.
pub fn is_ns_dir_self_bind(m: &MountEntry, ns_dir: &Path) -> bool {
    m.mount_point == ns_dir && m.fs_type != "nsfs"
}

/// Network namespaces pinned (nsfs bind mounts) at or below `dir`.
pub fn pinned_namespaces_under(dir: &Path) -> Vec<PathBuf> {
    mounts()
        .into_iter()
        .filter(|m| m.fs_type == "nsfs" && m.mount_point.starts_with(dir))
        .map(|m| m.mount_point)
        .collect()
}

/// The cgroup directories below `parent` (a cgroupfs path such as `/crius-e2e-1234`, relative
/// to the cgroup root) in every hierarchy: on a pure v2 host only `/sys/fs/cgroup/<parent>`;
/// on a v1/hybrid host `/sys/fs/cgroup/<controller>/<parent>` of every hierarchy (the v2 one at
/// `unified/` included). `parent` itself is not listed.
pub fn cgroups_under(parent: &str) -> Vec<PathBuf> {
    cgroups_under_root(Path::new(crate::cgroups::CGROUP_ROOT), parent)
}

fn cgroups_under_root(root: &Path, parent: &str) -> Vec<PathBuf> {
    let parent = parent.trim_start_matches('/');
    let mut bases = vec![root.join(parent)];
    // On v2 the root's subdirectories are cgroups (system.slice …), not hierarchies.
    if !crate::cgroups::is_unified(root)
        && let Ok(entries) = std::fs::read_dir(root)
    {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                bases.push(entry.path().join(parent));
            }
        }
    }
    let mut found: Vec<PathBuf> = bases
        .iter()
        .filter(|b| b.is_dir())
        .flat_map(|b| walk(b))
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    found.dedup();
    found
}

/// `ip -o link show master <bridge>`: the interfaces (veths) on the bridge.
pub fn bridge_ports(bridge: &str) -> Vec<String> {
    let Ok(out) = Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
    else {
        return Vec::new();
    };
    parse_ip_link_names(&String::from_utf8_lossy(&out.stdout))
}

/// Interface names from `ip -o link` output (`3: veth1234@if2: <...`).
pub fn parse_ip_link_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// Files named like IP addresses anywhere below host-local's `data_dir`.
pub fn allocated_ips(data_dir: &Path) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = walk(data_dir)
        .iter()
        .filter(|p| p.is_file())
        .filter_map(|p| p.file_name()?.to_str()?.parse().ok())
        .collect();
    ips.sort();
    ips
}

/// Everything found for one daemon (and its network).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Leaks {
    pub mounts: Vec<MountEntry>,
    pub pinned_namespaces: Vec<PathBuf>,
    pub cgroups: Vec<PathBuf>,
    /// systemd units (scopes, sub-slices) still in the test's slice (systemd driver).
    pub units: Vec<String>,
    pub bridge_ports: Vec<String>,
    pub allocated_ips: Vec<IpAddr>,
    pub iptables_rules: Vec<String>,
}

impl Leaks {
    /// Looks at `crius`'s root and runroot, `network` (if any) and the cgroups below
    /// `cgroup_parent` (if any: a cgroupfs path, or a slice name, whose cgroup directory and
    /// systemd units are looked at).
    pub fn collect(
        crius: &Crius,
        network: Option<&TestNetwork>,
        cgroup_parent: Option<&str>,
    ) -> Leaks {
        let ns_dir = crius.runroot().join("ns");
        let mut leaks = Leaks {
            mounts: mounts_under(&[crius.root(), crius.runroot()])
                .into_iter()
                .filter(|m| !is_ns_dir_self_bind(m, &ns_dir))
                .collect(),
            pinned_namespaces: pinned_namespaces_under(crius.runroot()),
            cgroups: cgroup_parent
                .map(|p| cgroups_under(&crate::cgroups::parent_path(p)))
                .unwrap_or_default(),
            units: cgroup_parent
                .filter(|p| p.ends_with(".slice"))
                .map(crate::cgroups::units_in_slice)
                .unwrap_or_default(),
            ..Leaks::default()
        };
        if let Some(net) = network {
            leaks.bridge_ports = net.bridge_ports();
            leaks.allocated_ips = net.allocated_ips();
            leaks.iptables_rules = net.leaked_iptables_rules();
        }
        leaks
    }

    pub fn is_empty(&self) -> bool {
        *self == Leaks::default()
    }
}

impl fmt::Display for Leaks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return write!(f, "no leaks");
        }
        for m in &self.mounts {
            writeln!(
                f,
                "mount {} ({}, {})",
                m.mount_point.display(),
                m.fs_type,
                m.source
            )?;
        }
        for p in &self.pinned_namespaces {
            writeln!(f, "pinned netns {}", p.display())?;
        }
        for c in &self.cgroups {
            writeln!(f, "cgroup {}", c.display())?;
        }
        for u in &self.units {
            writeln!(f, "systemd unit {u}")?;
        }
        for v in &self.bridge_ports {
            writeln!(f, "bridge port {v}")?;
        }
        for ip in &self.allocated_ips {
            writeln!(f, "allocated IP {ip}")?;
        }
        for r in &self.iptables_rules {
            writeln!(f, "iptables {r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse_with_escapes() {
        let text = "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n\
                    40 30 0:4 net:[4026532] /run/x/netns/pod-1 rw shared:5 - nsfs nsfs rw\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mount_point, PathBuf::from("/mnt/with space"));
        assert_eq!(m[0].fs_type, "ext3");
        assert_eq!(m[0].source, "/dev/root");
        assert_eq!(m[1].fs_type, "nsfs");
        assert_eq!(m[1].mount_point, PathBuf::from("/run/x/netns/pod-1"));
    }

    #[test]
    fn own_mounts_are_found_and_nothing_under_a_fresh_dir() {
        assert!(!mounts_under(&[Path::new("/")]).is_empty());
        let dir = tempfile::tempdir().unwrap();
        assert!(mounts_under(&[dir.path()]).is_empty());
        assert!(pinned_namespaces_under(dir.path()).is_empty());
    }

    #[test]
    fn ip_link_names() {
        let text = "7: veth1a2b3c@if2: <BROADCAST,MULTICAST,UP> mtu 1500 master crius-e2e3\n\
                    8: vethffff: <BROADCAST> mtu 1500 master crius-e2e3\n";
        assert_eq!(parse_ip_link_names(text), ["veth1a2b3c", "vethffff"]);
    }

    #[test]
    fn ip_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("net1");
        std::fs::create_dir_all(&net).unwrap();
        for name in ["10.199.3.2", "last_reserved_ip.0", "lock", "10.199.3.5"] {
            std::fs::write(net.join(name), "id\neth0").unwrap();
        }
        let ips = allocated_ips(dir.path());
        assert_eq!(
            ips,
            [
                "10.199.3.2".parse::<IpAddr>().unwrap(),
                "10.199.3.5".parse().unwrap()
            ]
        );
    }

    #[test]
    fn cgroups_in_v1_and_v2_layouts() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("memory/crius-e2e-1/pod-a/ctr")).unwrap();
        std::fs::create_dir_all(root.path().join("crius-e2e-1/pod-b")).unwrap();
        std::fs::create_dir_all(root.path().join("pids/crius-e2e-1")).unwrap();
        std::fs::create_dir_all(root.path().join("pids/other/pod-c")).unwrap();
        let found = cgroups_under_root(root.path(), "/crius-e2e-1");
        let rel: Vec<_> = found
            .iter()
            .map(|p| p.strip_prefix(root.path()).unwrap())
            .collect();
        assert_eq!(
            rel,
            [
                Path::new("crius-e2e-1/pod-b"),
                Path::new("memory/crius-e2e-1/pod-a"),
                Path::new("memory/crius-e2e-1/pod-a/ctr"),
            ]
        );
    }

    #[test]
    fn only_the_pin_dirs_own_bind_is_exempt() {
        let ns = Path::new("/tmp/crius-e2e-x/run/ns");
        let entry = |point: &str, fs_type: &str| MountEntry {
            mount_point: PathBuf::from(point),
            fs_type: fs_type.into(),
            source: "/dev/vda".into(),
        };
        assert!(is_ns_dir_self_bind(
            &entry("/tmp/crius-e2e-x/run/ns", "ext4"),
            ns
        ));
        assert!(!is_ns_dir_self_bind(
            &entry("/tmp/crius-e2e-x/run/ns/net/pod", "nsfs"),
            ns
        ));
        assert!(!is_ns_dir_self_bind(
            &entry("/tmp/crius-e2e-x/run/shm", "tmpfs"),
            ns
        ));
    }

    #[test]
    fn a_unified_root_is_one_hierarchy() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "memory\n").unwrap();
        std::fs::create_dir_all(root.path().join("crius-e2e-1/crius-a")).unwrap();
        // A cgroup of the same name elsewhere in the tree is not a v1 hierarchy's copy.
        std::fs::create_dir_all(root.path().join("system.slice/crius-e2e-1/x")).unwrap();
        let found = cgroups_under_root(root.path(), "/crius-e2e-1");
        assert_eq!(found, [root.path().join("crius-e2e-1/crius-a")]);
    }

    #[test]
    fn empty_leaks_display() {
        assert_eq!(Leaks::default().to_string(), "no leaks");
        let l = Leaks {
            bridge_ports: vec!["veth1".into()],
            ..Leaks::default()
        };
        assert!(!l.is_empty());
        assert_eq!(l.to_string(), "bridge port veth1\n");
    }
}
