use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::MetadataExt;

use super::*;

fn dns(servers: &[&str], searches: &[&str], options: &[&str]) -> api::DnsConfig {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    api::DnsConfig {
        servers: strings(servers),
        searches: strings(searches),
        options: strings(options),
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn resolv_conf_from_dns_config() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("resolv.conf");
    let config = dns(
        &["10.96.0.10", "fd00::a"],
        &["ns.svc.cluster.local", "svc.cluster.local", "cluster.local"],
        &["ndots:5", "edns0"],
    );
    write_resolv_conf(&path, Some(&config), Path::new("/nonexistent")).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "nameserver 10.96.0.10\n\
         nameserver fd00::a\n\
         search ns.svc.cluster.local svc.cluster.local cluster.local\n\
         options ndots:5 edns0\n"
    );
    assert_eq!(mode(&path), 0o644);

    // Lists left empty produce no line; writing again replaces the file.
    write_resolv_conf(&path, Some(&dns(&["1.1.1.1"], &[], &[])), Path::new("/x")).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "nameserver 1.1.1.1\n"
    );
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["resolv.conf"], "no temporary file left");
}

#[test]
fn resolv_conf_copies_the_host_file_without_dns_config() {
    let tmp = tempfile::tempdir().unwrap();
    let host = tmp.path().join("host-resolv.conf");
    std::fs::write(&host, "# host\nnameserver 192.0.2.1\n").unwrap();
    let path = tmp.path().join("resolv.conf");
    for config in [None, Some(dns(&[], &[], &[]))] {
        std::fs::remove_file(&path).ok();
        write_resolv_conf(&path, config.as_ref(), &host).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# host\nnameserver 192.0.2.1\n"
        );
    }
    let err = write_resolv_conf(&path, None, &tmp.path().join("missing")).unwrap_err();
    assert!(matches!(err, FilesError::Io { .. }), "{err}");
}

#[test]
fn rejects_line_injection() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("resolv.conf");
    let host = Path::new("/nonexistent");
    for config in [
        dns(&["1.1.1.1\nnameserver 6.6.6.6"], &[], &[]),
        dns(&["1.1.1.1"], &["a\rb"], &[]),
        dns(&[], &[], &["ndots:5\0"]),
    ] {
        let err = write_resolv_conf(&path, Some(&config), host).unwrap_err();
        assert!(matches!(err, FilesError::InvalidArgument(_)), "{err}");
    }
    assert!(!path.exists());
    let err = write_hostname(&tmp.path().join("hostname"), "a\nb").unwrap_err();
    assert!(matches!(err, FilesError::InvalidArgument(_)), "{err}");
    let ip = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    let err = write_hosts(&tmp.path().join("hosts"), "a\n1.2.3.4 b", ip, false, host).unwrap_err();
    assert!(matches!(err, FilesError::InvalidArgument(_)), "{err}");
}

#[test]
fn hostname_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("hostname");
    write_hostname(&path, "web-0").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"web-0\n");
    assert_eq!(mode(&path), 0o644);
}

const LOCALHOST: &str = "127.0.0.1\tlocalhost\n\
                         ::1\tlocalhost ip6-localhost ip6-loopback\n\
                         fe00::0\tip6-localnet\n\
                         ff00::0\tip6-mcastprefix\n\
                         ff02::1\tip6-allnodes\n\
                         ff02::2\tip6-allrouters\n";

#[test]
fn hosts_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("hosts");
    let host = Path::new("/nonexistent");
    write_hosts(&path, "web-0", None, false, host).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), LOCALHOST);
    assert_eq!(mode(&path), 0o644);

    let v4 = IpAddr::V4(Ipv4Addr::new(10, 244, 1, 7));
    write_hosts(&path, "web-0", Some(v4), false, host).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{LOCALHOST}10.244.1.7\tweb-0\n")
    );
    let v6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 7));
    write_hosts(&path, "web-0", Some(v6), false, host).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{LOCALHOST}fd00::7\tweb-0\n")
    );
}

#[test]
fn hosts_file_on_the_host_network_is_the_hosts() {
    let tmp = tempfile::tempdir().unwrap();
    let host = tmp.path().join("host-hosts");
    std::fs::write(&host, "127.0.0.1 localhost\n192.0.2.5 node-1\n").unwrap();
    let path = tmp.path().join("hosts");
    let ip = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 5)));
    write_hosts(&path, "node-1", ip, true, &host).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "127.0.0.1 localhost\n192.0.2.5 node-1\n"
    );
}

/// Unmounts the test's shm even when an assertion failed.
struct ShmGuard(PathBuf);

impl Drop for ShmGuard {
    fn drop(&mut self) {
        let _ = unmount_shm(&self.0);
    }
}

/// (mount options, fs type, super options) of the topmost mount on `point`.
fn mount_of(point: &Path) -> Option<(String, String, String)> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    table.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        (Path::new(fields[4]) == point).then(|| {
            (
                fields[5].to_string(),
                fields[sep + 1].to_string(),
                fields[sep + 3].to_string(),
            )
        })
    })
}

#[test]
fn shm_mount_and_unmount() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let dir = base.join("pod/shm");
    let _guard = ShmGuard(dir.clone());
    mount_shm(&dir, 4 << 20).unwrap();

    let (opts, fstype, super_opts) = mount_of(&dir).unwrap();
    assert_eq!(fstype, "tmpfs");
    for opt in ["nosuid", "nodev", "noexec"] {
        assert!(opts.split(',').any(|o| o == opt), "{opt} missing in {opts}");
    }
    // tmpfs shows no mode= when it is its default 1777, so the mode is checked on the dir.
    assert!(
        super_opts.split(',').any(|o| o == "size=4096k"),
        "{super_opts}"
    );
    assert_eq!(mode(&dir), 0o1777);

    unmount_shm(&dir).unwrap();
    assert_eq!(mount_of(&dir), None);
    assert!(!dir.exists());
    unmount_shm(&dir).unwrap();
}

#[test]
fn shm_default_size() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap().join("shm");
    let _guard = ShmGuard(dir.clone());
    mount_shm(&dir, 0).unwrap();
    let (_, _, super_opts) = mount_of(&dir).unwrap();
    assert!(
        super_opts.split(',').any(|o| o == "size=65536k"),
        "{super_opts}"
    );
    unmount_shm(&dir).unwrap();
}
