use std::process::Command;

use super::*;
use crate::test_util::{ChildResult, fork_child, require_root};

fn linux(v: serde_json::Value) -> Linux {
    serde_json::from_value(v).unwrap()
}

fn devs(v: serde_json::Value) -> HashMap<String, LinuxNetDevice> {
    serde_json::from_value(v).unwrap()
}

#[test]
fn validation_needs_a_network_namespace_and_sane_names() {
    validate(&linux(serde_json::json!({}))).unwrap();
    let e = validate(&linux(serde_json::json!({"netDevices": {"eth1": {}}}))).unwrap_err();
    assert!(matches!(e, NetDevError::NoNamespace), "{e}");
    let ns = serde_json::json!([{"type": "network"}]);
    validate(&linux(
        serde_json::json!({"netDevices": {"eth1": {"name": "c%d"}}, "namespaces": ns}),
    ))
    .unwrap();
    for bad in ["a/b", "a b", "", "0123456789abcdef", ".."] {
        let e = validate(&linux(
            serde_json::json!({"netDevices": {"eth1": {"name": bad}}, "namespaces": ns}),
        ))
        .unwrap_err();
        assert!(matches!(e, NetDevError::BadName(_)), "{bad}: {e}");
    }
}

fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// In a forked child: a fresh "host" network namespace holding a veth device (this kernel has
/// no dummy driver) with an address, and a second namespace as the container's. Both die with the child.
fn with_two_namespaces(f: impl FnOnce(&Path) -> Result<String, String>) -> Result<String, String> {
    let err = |e: nix::errno::Errno| e.to_string();
    nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(err)?;
    let host = open_ns(Path::new("/proc/self/ns/net")).map_err(|e| e.to_string())?;
    nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(err)?;
    let container = open_ns(Path::new("/proc/self/ns/net")).map_err(|e| e.to_string())?;
    setns(host.as_fd(), CloneFlags::CLONE_NEWNET).map_err(err)?;
    sh(&[
        "ip", "link", "add", "crut0", "type", "veth", "peer", "name", "crut0p",
    ])?;
    sh(&["ip", "addr", "add", "10.99.1.2/24", "dev", "crut0"])?;
    use std::os::fd::AsRawFd;
    let path = format!("/proc/self/fd/{}", container.as_raw_fd());
    f(Path::new(&path))
}

#[test]
fn a_device_moves_renamed_with_its_address_and_up() {
    if !require_root("a_device_moves_renamed_with_its_address_and_up") {
        return;
    }
    let r = fork_child(|| {
        with_two_namespaces(|target| {
            let d = devs(serde_json::json!({"crut0": {"name": "ceth0"}}));
            check_present(&d).map_err(|e| e.to_string())?;
            move_into(&d, target).map_err(|e| e.to_string())?;
            let mut host = Netlink::open().map_err(|e| e.to_string())?;
            if host.link_by_name("crut0").is_ok() {
                return Err("still on the host".into());
            }
            let mut inside = socket_in(&open_ns(target).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            let l = inside.link_by_name("ceth0").map_err(|e| e.to_string())?;
            let addrs = inside.kept_addresses(l.index).map_err(|e| e.to_string())?;
            Ok(format!("addrs={} up={}", addrs.len(), l.up))
        })
    });
    assert_eq!(r, ChildResult::Ok("addrs=1 up=true".into()));
}

#[test]
fn a_name_taken_in_the_container_fails_unless_templated() {
    if !require_root("a_name_taken_in_the_container_fails_unless_templated") {
        return;
    }
    let r = fork_child(|| {
        with_two_namespaces(|target| {
            let e = move_into(&devs(serde_json::json!({"crut0": {"name": "lo"}})), target)
                .err()
                .ok_or("moving onto lo succeeded")?;
            if !e.to_string().contains("already has a device named \"lo\"") {
                return Err(e.to_string());
            }
            // The failed move left the device where it was.
            let mut host = Netlink::open().map_err(|e| e.to_string())?;
            host.link_by_name("crut0").map_err(|e| e.to_string())?;
            move_into(
                &devs(serde_json::json!({"crut0": {"name": "lo%d"}})),
                target,
            )
            .map_err(|e| e.to_string())?;
            let mut inside = socket_in(&open_ns(target).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            let l = inside.link_by_name("lo0").map_err(|e| e.to_string())?;
            Ok(l.name)
        })
    });
    assert_eq!(r, ChildResult::Ok("lo0".into()));
}

#[test]
fn the_runtimes_own_namespace_and_missing_devices_are_refused() {
    if !require_root("the_runtimes_own_namespace_and_missing_devices_are_refused") {
        return;
    }
    let r = fork_child(|| {
        with_two_namespaces(|_| {
            let d = devs(serde_json::json!({"crut0": {}}));
            let e = move_into(&d, Path::new("/proc/thread-self/ns/net"))
                .err()
                .ok_or("moved into its own namespace")?;
            let missing = check_present(&devs(serde_json::json!({"nosuchdev9": {}})))
                .err()
                .ok_or("missing device accepted")?;
            Ok(format!("{e} | {missing}"))
        })
    });
    let ChildResult::Ok(msg) = r else {
        panic!("{r:?}")
    };
    assert!(msg.contains("runtime's own"), "{msg}");
    assert!(msg.contains("nosuchdev9"), "{msg}");
}
