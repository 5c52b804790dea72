//! Integration tests (root) for the runtime-spec features beyond the basics: personality,
//! time namespace offsets, network devices, and LSM labels on a host without LSMs.

mod oci_common;

use std::process::Command;
use std::time::{Duration, Instant};

use oci_common::*;
use serde_json::json;

fn assert_gone(rt: &Runtime, id: &str, b: &Bundle) {
    assert!(!rt.root.path().join(id).exists(), "state dir left behind");
    assert!(
        cgroup_dirs(&b.cgroup).is_empty(),
        "cgroup left behind: {:?}",
        cgroup_dirs(&b.cgroup)
    );
}

/// Busybox applets the base bundle lacks.
fn add_applets(b: &Bundle, applets: &[&str]) {
    for a in applets {
        std::os::unix::fs::symlink("busybox", b.rootfs().join("bin").join(a)).unwrap();
    }
}

fn must_create(rt: &Runtime, id: &str, b: &Bundle) {
    let out = rt.create(id, b, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A create that must fail, leaving nothing behind; returns its stderr.
fn refused(rt: &Runtime, id: &str, b: &Bundle) -> String {
    let out = rt.create(id, b, &[]);
    assert!(!out.status.success(), "create of {id} succeeded");
    assert_gone(rt, id, b);
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn wait_obs(b: &Bundle) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = b.observations();
        if o.contains("end") {
            return o;
        }
        assert!(Instant::now() < deadline, "no observations: {o:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn personality_linux32_applies_to_init_and_exec() {
    if std::env::consts::ARCH != "x86_64" {
        return;
    }
    let rt = Runtime::crius();
    let mut b = Bundle::new(&["sh", "-c", "uname -m > /obs/obs.txt; sleep 30"]);
    add_applets(&b, &["uname"]);
    b.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    let id = format!("pers-{}", unique());
    must_create(&rt, &id, &b);
    rt.ok(&["start", &id]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while b.observations().is_empty() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(b.observations().trim(), "i686");
    assert_eq!(rt.ok(&["exec", &id, "uname", "-m"]).trim(), "i686");
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &id, &b);

    // runtime-spec 1.2 defines no flags.
    b.config["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]});
    let err = refused(&rt, &format!("pers-{}", unique()), &b);
    assert!(err.contains("flag \"ADDR_NO_RANDOMIZE\""), "{err}");
    b.config["linux"]["personality"] = json!({"domain": "LINUX64"});
    let err = refused(&rt, &format!("pers-{}", unique()), &b);
    assert!(err.contains("LINUX64"), "{err}");
}

#[test]
fn time_namespace_offsets_show_in_the_container_and_join_by_path() {
    let rt = Runtime::crius();
    let script = "cat /proc/uptime > /obs/obs.txt; cat /proc/self/timens_offsets >> /obs/obs.txt; \
                  echo end >> /obs/obs.txt; sleep 30";
    let mut a = Bundle::new(&["sh", "-c", script]);
    a.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    a.config["linux"]["timeOffsets"] = json!({
        "boottime": {"secs": 1000000},
        "monotonic": {"secs": 500000, "nanosecs": 250}
    });
    let id_a = format!("time-{}", unique());
    must_create(&rt, &id_a, &a);
    rt.ok(&["start", &id_a]);
    let obs = wait_obs(&a);
    let uptime: f64 = obs
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{obs}"));
    assert!(uptime > 1_000_000.0, "{obs}");
    let mono: Vec<&str> = obs
        .lines()
        .find(|l| l.starts_with("monotonic"))
        .unwrap_or_else(|| panic!("{obs}"))
        .split_whitespace()
        .collect();
    assert_eq!(mono, ["monotonic", "500000", "250"], "{obs}");
    // The host's uptime is not shifted.
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(uptime - host > 999_000.0, "{uptime} vs {host}");

    // A second container joins A's time namespace by path and sees the same clocks.
    let pid = rt.state(&id_a)["pid"].as_i64().unwrap();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/uptime > /obs/obs.txt; echo end >> /obs/obs.txt",
    ]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time", "path": format!("/proc/{pid}/ns/time")}));
    let id_b = format!("time-{}", unique());
    must_create(&rt, &id_b, &b);
    rt.ok(&["start", &id_b]);
    rt.wait_status(&id_b, "stopped");
    let up_b: f64 = wait_obs(&b)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(up_b > 1_000_000.0, "{up_b}");
    rt.ok(&["delete", &id_b]);
    assert_gone(&rt, &id_b, &b);
    rt.ok(&["delete", "--force", &id_a]);
    assert_gone(&rt, &id_a, &a);

    // Offsets without a new time namespace are refused.
    let mut c = Bundle::new(&["true"]);
    c.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1}});
    let err = refused(&rt, &format!("time-{}", unique()), &c);
    assert!(err.contains("needs a new time namespace"), "{err}");
}

/// A network namespace for the test, deleted (with whatever devices are left in it) on drop.
struct TestNetns(String);

impl TestNetns {
    fn new() -> TestNetns {
        let name = format!("crius-netdev-{}", unique());
        ip(&["netns", "add", &name]);
        TestNetns(name)
    }
    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.0)
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `crius oci` run inside the test namespace, so the devices it moves come from there and
/// never from the host's own namespace.
fn runtime_in(ns: &TestNetns) -> Runtime {
    let mut rt = Runtime::with("nsenter");
    rt.prefix = vec![
        format!("--net={}", ns.path()),
        crius_e2e::daemon::crius_bin().display().to_string(),
        "oci".into(),
    ];
    rt
}

#[test]
fn net_devices_move_renamed_with_their_address_and_up() {
    // Declared first so it is dropped last, after the runtime has deleted its containers.
    let ns = TestNetns::new();
    // This kernel has no dummy driver; one end of a veth pair serves the same purpose.
    ip(&[
        "-n", &ns.0, "link", "add", "crtest0", "type", "veth", "peer", "name", "crtest0p",
    ]);
    ip(&["-n", &ns.0, "addr", "add", "10.77.0.2/24", "dev", "crtest0"]);
    let rt = runtime_in(&ns);
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "{ ls /sys/class/net; ip addr show ceth0; echo end; } > /obs/obs.txt 2>&1",
    ]);
    add_applets(&b, &["ip"]);
    b.config["linux"]["netDevices"] = json!({"crtest0": {"name": "ceth0"}});
    let id = format!("netdev-{}", unique());
    must_create(&rt, &id, &b);
    // Moved at create: gone from the runtime's namespace before start.
    let links = ip(&["-n", &ns.0, "-o", "link", "show"]);
    assert!(!links.contains("crtest0:"), "{links}");
    rt.ok(&["start", &id]);
    rt.wait_status(&id, "stopped");
    let obs = wait_obs(&b);
    let devices: Vec<&str> = obs.lines().take_while(|l| !l.contains(':')).collect();
    assert!(
        devices.contains(&"ceth0") && devices.contains(&"lo"),
        "{obs}"
    );
    assert!(obs.contains("inet 10.77.0.2/24"), "{obs}");
    assert!(obs.contains(",UP"), "{obs}");
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &id, &b);
    // Per the spec the runtime does not move it back (a veth is destroyed with the namespace).
    let links = ip(&["-n", &ns.0, "-o", "link", "show"]);
    assert!(!links.contains("crtest0:"), "{links}");
}

#[test]
fn net_devices_refuse_taken_names_and_missing_devices() {
    let ns = TestNetns::new();
    ip(&[
        "-n", &ns.0, "link", "add", "crtest1", "type", "veth", "peer", "name", "crtest1p",
    ]);
    let rt = runtime_in(&ns);
    let mut b = Bundle::new(&["true"]);
    b.config["linux"]["netDevices"] = json!({"crtest1": {"name": "lo"}});
    let err = refused(&rt, &format!("netdev-{}", unique()), &b);
    assert!(err.contains("already has a device named \"lo\""), "{err}");
    // Still where it was.
    ip(&["-n", &ns.0, "link", "show", "crtest1"]);
    b.config["linux"]["netDevices"] = json!({"nosuchdev7": {}});
    let err = refused(&rt, &format!("netdev-{}", unique()), &b);
    assert!(err.contains("nosuchdev7"), "{err}");
    // No network namespace of its own.
    b.config["linux"]["netDevices"] = json!({"crtest1": {}});
    b.config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}]);
    let err = refused(&rt, &format!("netdev-{}", unique()), &b);
    assert!(err.contains("network namespace"), "{err}");
}

fn host_has(path: &str, want: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|s| s.starts_with(want))
}

#[test]
fn lsm_labels_fail_clearly_on_a_host_without_them() {
    let rt = Runtime::crius();
    let f: serde_json::Value = serde_json::from_str(&rt.ok(&["features"])).unwrap();
    let apparmor = host_has("/sys/module/apparmor/parameters/enabled", "Y");
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    assert_eq!(f["linux"]["apparmor"]["enabled"], apparmor);
    assert_eq!(f["linux"]["selinux"]["enabled"], selinux);
    assert!(
        f["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!("time"))
    );

    let mut b = Bundle::new(&["true"]);
    if !apparmor {
        b.config["process"]["apparmorProfile"] = json!("crius-test-profile");
        let err = refused(&rt, &format!("lsm-{}", unique()), &b);
        assert!(
            err.contains("\"crius-test-profile\"")
                && err.contains("AppArmor is not enabled on this host"),
            "{err}"
        );
        b.config["process"]["apparmorProfile"] = json!(null);
    }
    if !selinux {
        b.config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
        let err = refused(&rt, &format!("lsm-{}", unique()), &b);
        assert!(
            err.contains("system_u:system_r:container_t:s0")
                && err.contains("SELinux is not enabled on this host"),
            "{err}"
        );
    }

    // exec checks its own process the same way.
    let b = Bundle::new(&["sleep", "30"]);
    let id = format!("lsm-{}", unique());
    must_create(&rt, &id, &b);
    rt.ok(&["start", &id]);
    if !apparmor {
        let process = json!({
            "user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "/",
            "apparmorProfile": "crius-exec-profile"
        });
        let pfile = b.path().join("process.json");
        std::fs::write(&pfile, process.to_string()).unwrap();
        let out = rt.cmd(&["exec", "--process", pfile.to_str().unwrap(), &id]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("\"crius-exec-profile\""), "{err}");
    }
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &id, &b);
}

#[test]
fn time_offsets_apply_inside_a_new_user_namespace() {
    let rt = Runtime::crius();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/uptime > /obs/obs.txt; echo end >> /obs/obs.txt",
    ]);
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["uidMappings"] = map.clone();
    b.config["linux"]["gidMappings"] = map;
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.push(json!({"type": "user"}));
    ns.push(json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 2000000}});
    let st = Command::new("chown")
        .args(["-R", "-h", "100000:100000"])
        .arg(b.rootfs())
        .arg(b.obs())
        .status()
        .unwrap();
    assert!(st.success());
    let id = format!("time-{}", unique());
    must_create(&rt, &id, &b);
    rt.ok(&["start", &id]);
    rt.wait_status(&id, "stopped");
    let up: f64 = wait_obs(&b)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(up > 2_000_000.0, "{up}");
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &id, &b);
}
