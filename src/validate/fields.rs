//! Names, hostnames, labels, ports, sysctls, paths: the request fields that are text.

use std::collections::HashMap;

use super::{Invalid, invalid, quote};
use crate::api;

/// A pod's or container's name: a Kubernetes object name (DNS subdomain, 253). It becomes part
/// of the reserved name `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>` and of the default
/// log file name, which is why it must also be one path component.
pub const NAME_BYTES: usize = 253;
/// A namespace is a DNS label in Kubernetes (63).
pub const NAMESPACE_BYTES: usize = 63;
/// Kubernetes uids are UUIDs (36) or, for static pods, hashes (32); room for other clients.
pub const UID_BYTES: usize = 128;
/// The kernel's `HOST_NAME_MAX`: sethostname(2) refuses a longer one.
const HOSTNAME_BYTES: usize = 64;
/// One label of a hostname (RFC 1123).
const HOSTNAME_LABEL_BYTES: usize = 63;
/// A label or annotation key: a DNS subdomain prefix (253), `/`, a name (63).
const KEY_BYTES: usize = 253 + 1 + 63;
/// All labels, or all annotations, of one object: Kubernetes' total annotation size.
const LABELS_TOTAL_BYTES: usize = 256 * 1024;
/// `PATH_MAX`.
pub const PATH_BYTES: usize = 4096;
/// A sysctl name, and one value.
const SYSCTL_NAME_BYTES: usize = 256;
const SYSCTL_VALUE_BYTES: usize = 4096;
/// One DNS server, search domain or option.
const DNS_ITEM_BYTES: usize = 253;

/// `value` is `text` within `max` bytes and without NUL.
pub fn bounded_text(field: &str, value: &str, max: usize) -> Result<(), Invalid> {
    if value.len() > max {
        return Err(invalid(
            field,
            format!("{} is longer than {max} bytes", quote(value)),
        ));
    }
    no_nul(field, value)
}

pub fn no_nul(field: &str, value: &str) -> Result<(), Invalid> {
    if value.contains('\0') {
        return Err(invalid(field, format!("{} contains NUL", quote(value))));
    }
    Ok(())
}

/// A metadata name, namespace or uid: required, at most `max` bytes, printable, no `/`, not
/// `.` or `..`.
pub fn metadata_name(field: &str, value: &str, max: usize) -> Result<(), Invalid> {
    if value.is_empty() {
        return Err(invalid(field, "is required"));
    }
    if value.len() > max {
        return Err(invalid(
            field,
            format!("{} is longer than {max} bytes", quote(value)),
        ));
    }
    if value.contains(|c: char| c == '/' || c.is_control()) || value == "." || value == ".." {
        return Err(invalid(
            field,
            format!(
                "{} must be one path component of printable characters",
                quote(value)
            ),
        ));
    }
    Ok(())
}

/// A hostname (RFC 1123): dot-separated labels of letters, digits and `-`, neither starting nor
/// ending with `-`, at most 63 bytes each and 64 in all. Empty means "the pod's name".
pub fn hostname(field: &str, value: &str) -> Result<(), Invalid> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > HOSTNAME_BYTES {
        return Err(invalid(
            field,
            format!("{} is longer than {HOSTNAME_BYTES} bytes", quote(value)),
        ));
    }
    let good_label = |l: &str| {
        !l.is_empty()
            && l.len() <= HOSTNAME_LABEL_BYTES
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !value.split('.').all(good_label) {
        return Err(invalid(
            field,
            format!("{} is not an RFC 1123 hostname", quote(value)),
        ));
    }
    Ok(())
}

/// Labels or annotations: keys non-empty, at most 317 bytes, without whitespace or control
/// characters; keys and values together at most 256 KiB.
pub fn labels(field: &str, map: &HashMap<String, String>) -> Result<(), Invalid> {
    let mut total = 0;
    for (key, value) in map {
        if key.is_empty() || key.len() > KEY_BYTES {
            return Err(invalid(
                field,
                format!("key {} must be 1 to {KEY_BYTES} bytes", quote(key)),
            ));
        }
        if key.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                field,
                format!(
                    "key {} contains whitespace or a control character",
                    quote(key)
                ),
            ));
        }
        no_nul(&format!("{field}[{}]", quote(key)), value)?;
        total += key.len() + value.len();
    }
    if total > LABELS_TOTAL_BYTES {
        return Err(invalid(
            field,
            format!("{total} bytes in all, more than {LABELS_TOTAL_BYTES}"),
        ));
    }
    Ok(())
}

/// A port mapping: container port 1–65535, host port 0–65535 (0: none), TCP, UDP or SCTP, and
/// a host IP that is an address if given.
pub fn port_mapping(field: &str, p: &api::PortMapping) -> Result<(), Invalid> {
    if !(1..=65535).contains(&p.container_port) {
        return Err(invalid(
            field,
            format!("container_port {} is not in 1-65535", p.container_port),
        ));
    }
    if !(0..=65535).contains(&p.host_port) {
        return Err(invalid(
            field,
            format!("host_port {} is not in 0-65535", p.host_port),
        ));
    }
    if api::Protocol::try_from(p.protocol).is_err() {
        return Err(invalid(
            field,
            format!("protocol {} is not TCP, UDP or SCTP", p.protocol),
        ));
    }
    if !p.host_ip.is_empty() && p.host_ip.parse::<std::net::IpAddr>().is_err() {
        return Err(invalid(
            field,
            format!("host_ip {} is not an IP address", quote(&p.host_ip)),
        ));
    }
    Ok(())
}

/// Sysctls: names of letters, digits, `_` and `-` segments joined by `.` (or `/`, the kubelet's
/// form of a dot inside an interface name), no empty segment, no `..`; values one line.
pub fn sysctls(map: &HashMap<String, String>) -> Result<(), Invalid> {
    for (name, value) in map {
        let good_segment = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if name.len() > SYSCTL_NAME_BYTES || !name.split(['.', '/']).all(good_segment) {
            return Err(invalid(
                "linux.sysctls",
                format!("{} is not a sysctl name", quote(name)),
            ));
        }
        if value.len() > SYSCTL_VALUE_BYTES || value.contains(['\n', '\r', '\0']) {
            return Err(invalid(
                "linux.sysctls",
                format!(
                    "the value of {} must be one line of at most {SYSCTL_VALUE_BYTES} bytes",
                    quote(name)
                ),
            ));
        }
    }
    Ok(())
}

/// A path: at most `PATH_MAX`, no NUL, absolute if `absolute` (empty is allowed for optional
/// fields only when not `absolute`).
pub fn path(field: &str, value: &str, absolute: bool) -> Result<(), Invalid> {
    bounded_text(field, value, PATH_BYTES)?;
    if absolute && !value.starts_with('/') {
        return Err(invalid(
            field,
            format!("{} is not an absolute path", quote(value)),
        ));
    }
    Ok(())
}

/// A pod's sysctls must be namespaced (net, ipc, uts), in a namespace the pod does not share
/// with the node: anything else would change the node itself.
pub fn pod_sysctl_namespaces(
    map: &HashMap<String, String>,
    ns: Option<&api::NamespaceOption>,
) -> Result<(), Invalid> {
    let on_node = |mode: Option<i32>| mode == Some(api::NamespaceMode::Node as i32);
    let host_network = on_node(ns.map(|n| n.network));
    let host_ipc = on_node(ns.map(|n| n.ipc));
    for key in map.keys() {
        let name = key.replace('/', ".");
        let (namespace, shared) = if name.starts_with("net.") {
            ("network", host_network)
        } else if crate::libcontainer::sysctl::ipc_scoped(&name) {
            ("ipc", host_ipc)
        } else if name == "kernel.hostname" || name == "kernel.domainname" {
            // The UTS namespace follows the network one.
            ("uts", host_network)
        } else {
            return Err(invalid(
                "linux.sysctls",
                format!(
                    "{} is not namespaced and cannot be set for a pod",
                    quote(key)
                ),
            ));
        };
        if shared {
            return Err(invalid(
                "linux.sysctls",
                format!(
                    "{} is not allowed: the pod uses the node's {namespace} namespace",
                    quote(key)
                ),
            ));
        }
    }
    Ok(())
}

/// A mount: an absolute container path with no `..`; a host path or an image, not both; an
/// image volume read-only, unmapped, and its sub path relative without `..`; a known propagation, and recursive read-only only
/// when read-only and private.
pub fn mount(field: &str, m: &api::Mount) -> Result<(), Invalid> {
    let container_path = format!("{field}.container_path");
    path(&container_path, &m.container_path, true)?;
    if m.container_path.split('/').any(|c| c == "..") {
        return Err(invalid(
            &container_path,
            format!("{} contains \"..\"", quote(&m.container_path)),
        ));
    }
    path(&format!("{field}.host_path"), &m.host_path, false)?;
    if let Some(image) = m.image.as_ref().filter(|i| !i.image.is_empty()) {
        bounded_text(&format!("{field}.image.image"), &image.image, PATH_BYTES)?;
        if !m.host_path.is_empty() {
            return Err(invalid(field, "host_path and image are mutually exclusive"));
        }
        if !m.readonly {
            return Err(invalid(field, "an image volume must be readonly"));
        }
        if !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty() {
            return Err(invalid(field, "an image volume takes no uid/gid mappings"));
        }
        let sub = format!("{field}.image_sub_path");
        path(&sub, &m.image_sub_path, false)?;
        if m.image_sub_path.starts_with('/') || m.image_sub_path.split('/').any(|c| c == "..") {
            return Err(invalid(
                &sub,
                format!(
                    "{} must be a relative path without \"..\"",
                    quote(&m.image_sub_path)
                ),
            ));
        }
    } else if m.host_path.is_empty() {
        return Err(invalid(
            &format!("{field}.host_path"),
            "is required (or an image)",
        ));
    }
    let Ok(propagation) = api::MountPropagation::try_from(m.propagation) else {
        return Err(invalid(
            &format!("{field}.propagation"),
            format!("{} is not a propagation", m.propagation),
        ));
    };
    if m.recursive_read_only
        && (!m.readonly || propagation != api::MountPropagation::PropagationPrivate)
    {
        return Err(invalid(
            &format!("{field}.recursive_read_only"),
            "requires readonly and private propagation",
        ));
    }
    Ok(())
}

pub fn log_directory(value: &str) -> Result<(), Invalid> {
    if value.is_empty() {
        return Ok(());
    }
    path("log_directory", value, true)
}

/// The container's log path, relative to the pod's log directory: no `..` component.
pub fn log_path(value: &str) -> Result<(), Invalid> {
    path("log_path", value, false)?;
    if value.split('/').any(|c| c == "..") {
        return Err(invalid(
            "log_path",
            format!("{} leaves the pod's log directory", quote(value)),
        ));
    }
    Ok(())
}

/// The pod's cgroup parent: a path or a systemd slice, without NUL or a `..` component.
pub fn cgroup_parent(value: &str) -> Result<(), Invalid> {
    path("linux.cgroup_parent", value, false)?;
    if value.split('/').any(|c| c == "..") {
        return Err(invalid(
            "linux.cgroup_parent",
            format!("{} has a .. component", quote(value)),
        ));
    }
    Ok(())
}

/// DNS servers, searches and options become lines of resolv.conf: each one line of one word.
pub fn dns_config(dns: &api::DnsConfig) -> Result<(), Invalid> {
    for (field, items) in [
        ("dns_config.servers", &dns.servers),
        ("dns_config.searches", &dns.searches),
        ("dns_config.options", &dns.options),
    ] {
        for item in items {
            if item.is_empty()
                || item.len() > DNS_ITEM_BYTES
                || item.contains(|c: char| c.is_whitespace() || c.is_control())
            {
                return Err(invalid(
                    field,
                    format!(
                        "{} must be one word of 1 to {DNS_ITEM_BYTES} bytes",
                        quote(item)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// An environment variable: a key without `=` or NUL, a value (bytes) without NUL.
pub fn env(field: &str, kv: &api::KeyValue) -> Result<(), Invalid> {
    if kv.key.is_empty() || kv.key.contains(['=', '\0']) {
        return Err(invalid(
            field,
            format!("key {} must be non-empty, without = or NUL", quote(&kv.key)),
        ));
    }
    if kv.value.contains(&0) {
        return Err(invalid(
            field,
            format!("the value of {} contains NUL", quote(&kv.key)),
        ));
    }
    Ok(())
}

/// A device: absolute paths, permissions a subset of `rwm`.
pub fn device(field: &str, d: &api::Device) -> Result<(), Invalid> {
    path(&format!("{field}.container_path"), &d.container_path, true)?;
    path(&format!("{field}.host_path"), &d.host_path, true)?;
    if !d.permissions.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(invalid(
            field,
            format!(
                "permissions {} are not a subset of rwm",
                quote(&d.permissions)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(r: Result<(), Invalid>) -> String {
        let m = r.unwrap_err().0;
        assert!(m.len() < 300, "{} bytes: {m}", m.len());
        m
    }

    #[test]
    fn names() {
        assert_eq!(metadata_name("n", "nginx-7c9d", NAME_BYTES), Ok(()));
        assert_eq!(metadata_name("n", &"a".repeat(253), NAME_BYTES), Ok(()));
        short(metadata_name("n", &"a".repeat(254), NAME_BYTES));
        short(metadata_name("n", &"a".repeat(1 << 20), NAME_BYTES));
        short(metadata_name("n", "", NAME_BYTES));
        short(metadata_name("n", "a/b", NAME_BYTES));
        short(metadata_name("n", "..", NAME_BYTES));
        short(metadata_name("n", "a\nb", NAME_BYTES));
        short(metadata_name("n", &"a".repeat(64), NAMESPACE_BYTES));
    }

    #[test]
    fn hostnames() {
        for good in ["", "web", "web-0.svc.cluster.local", "A1", &"a".repeat(63)] {
            assert_eq!(hostname("h", good), Ok(()), "{good}");
        }
        for bad in [
            "-web",
            "web-",
            "we_b",
            "a..b",
            "web\n",
            "web.",
            &"a".repeat(64),
            &"a.".repeat(40),
        ] {
            short(hostname("h", bad));
        }
        let m = short(hostname("h", &"h".repeat(1 << 20)));
        assert!(m.contains("1048576 bytes"), "{m}");
    }

    #[test]
    fn label_maps() {
        let kubelet = HashMap::from([
            ("io.kubernetes.pod.name".to_string(), "n".repeat(253)),
            (
                "io.kubernetes.container.name".to_string(),
                "app".to_string(),
            ),
        ]);
        assert_eq!(labels("labels", &kubelet), Ok(()));
        short(labels(
            "labels",
            &HashMap::from([(String::new(), "v".into())]),
        ));
        short(labels(
            "labels",
            &HashMap::from([("a b".into(), "v".into())]),
        ));
        short(labels(
            "labels",
            &HashMap::from([("k".repeat(318), "v".into())]),
        ));
        short(labels(
            "annotations",
            &HashMap::from([("k".into(), "v".repeat(256 * 1024))]),
        ));
        short(labels(
            "labels",
            &HashMap::from([("k".into(), "v\0".into())]),
        ));
    }

    fn port(container_port: i32, host_port: i32, protocol: i32, host_ip: &str) -> api::PortMapping {
        api::PortMapping {
            protocol,
            container_port,
            host_port,
            host_ip: host_ip.into(),
        }
    }

    #[test]
    fn ports() {
        assert_eq!(port_mapping("p", &port(80, 0, 0, "")), Ok(()));
        assert_eq!(port_mapping("p", &port(65535, 65535, 2, "::1")), Ok(()));
        short(port_mapping("p", &port(0, 0, 0, "")));
        short(port_mapping("p", &port(-1, 0, 0, "")));
        short(port_mapping("p", &port(65536, 0, 0, "")));
        short(port_mapping("p", &port(80, -1, 0, "")));
        short(port_mapping("p", &port(80, 70000, 0, "")));
        short(port_mapping("p", &port(80, 0, 7, "")));
        short(port_mapping("p", &port(80, 0, 0, &"x".repeat(1 << 20))));
    }

    #[test]
    fn sysctl_names_and_values() {
        let ok = |n: &str, v: &str| sysctls(&HashMap::from([(n.to_string(), v.to_string())]));
        assert_eq!(ok("net.ipv4.ip_forward", "1"), Ok(()));
        assert_eq!(ok("kernel.shm_rmid_forced", "1"), Ok(()));
        assert_eq!(ok("net.ipv4.conf.eno2/100.rp_filter", "0"), Ok(()));
        assert_eq!(ok("net.ipv4.ip_local_port_range", "1024 65000"), Ok(()));
        short(ok("net..ipv4", "1"));
        short(ok("../../etc/passwd", "1"));
        short(ok("/net/ipv4", "1"));
        short(ok("net.ipv4.ip_forward", "1\n2"));
        short(ok(&"n".repeat(1 << 20), "1"));
        short(ok("", "1"));
    }

    #[test]
    fn paths() {
        assert_eq!(path("p", "/data", true), Ok(()));
        assert_eq!(path("p", "", false), Ok(()));
        short(path("p", "data", true));
        short(path("p", "/da\0ta", true));
        short(path("p", &format!("/{}", "d".repeat(5000)), true));
        assert_eq!(log_directory(""), Ok(()));
        short(log_directory("var/log"));
        assert_eq!(log_path("app/0.log"), Ok(()));
        short(log_path("../../etc/shadow"));
        assert_eq!(cgroup_parent("kubepods-burstable-pod1.slice"), Ok(()));
        short(cgroup_parent("/kubepods/../../x"));
    }

    #[test]
    fn dns_envs_devices() {
        let dns = api::DnsConfig {
            servers: vec!["127.0.0.1".into()],
            searches: vec!["svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        };
        assert_eq!(dns_config(&dns), Ok(()));
        short(dns_config(&api::DnsConfig {
            searches: vec!["a\nnameserver 6.6.6.6".into()],
            ..Default::default()
        }));
        let kv = |k: &str, v: &str| api::KeyValue {
            key: k.into(),
            value: v.into(),
        };
        assert_eq!(env("e", &kv("PATH", "/bin:a=b")), Ok(()));
        short(env("e", &kv("A=B", "")));
        short(env("e", &kv("", "x")));
        let dev = |p: &str, perms: &str| api::Device {
            container_path: p.into(),
            host_path: "/dev/null".into(),
            permissions: perms.into(),
        };
        assert_eq!(device("d", &dev("/dev/x", "rwm")), Ok(()));
        short(device("d", &dev("dev/x", "rw")));
        short(device("d", &dev("/dev/x", "rwx")));
    }
}
