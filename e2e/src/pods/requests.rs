//! Request builders for the pod and container RPCs, with the test defaults.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crius_cri_api::v1::{
    ContainerConfig, ContainerMetadata, DnsConfig, ImageSpec, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, NamespaceOption, PodSandboxConfig, PodSandboxMetadata,
};

/// The Kubernetes namespace of every test pod.
pub const NAMESPACE: &str = "crius-e2e";
/// The pods' only nameserver: loopback inside the pod, never the host's resolver.
pub const NAMESERVER: &str = "127.0.0.1";
pub const DNS_SEARCH: &str = "crius.test";
pub const DNS_OPTION: &str = "ndots:2";

static UID_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A pod uid unique across processes and runs: `<pid>-<nanos>-<counter>`.
pub fn unique_uid() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = UID_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{nanos:x}-{n}", std::process::id())
}

/// A pod named `name` in [`NAMESPACE`] with a fresh uid, attempt 0, hostname `name`, logs under
/// `log_directory`, test DNS, the daemon's default cgroup parent and a default security context.
pub fn pod_config(name: &str, log_directory: &Path) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.to_string(),
            uid: unique_uid(),
            namespace: NAMESPACE.to_string(),
            attempt: 0,
        }),
        hostname: name.to_string(),
        log_directory: log_directory.display().to_string(),
        dns_config: Some(DnsConfig {
            servers: vec![NAMESERVER.to_string()],
            searches: vec![DNS_SEARCH.to_string()],
            options: vec![DNS_OPTION.to_string()],
        }),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: String::new(),
            security_context: Some(LinuxSandboxSecurityContext::default()),
            ..LinuxPodSandboxConfig::default()
        }),
        ..PodSandboxConfig::default()
    }
}

/// `pod` with these namespace options (pid, network, ipc, user namespace modes).
pub fn with_namespaces(mut pod: PodSandboxConfig, options: NamespaceOption) -> PodSandboxConfig {
    pod.linux
        .get_or_insert_with(LinuxPodSandboxConfig::default)
        .security_context
        .get_or_insert_with(LinuxSandboxSecurityContext::default)
        .namespace_options = Some(options);
    pod
}

/// A container `name` running `command` (argv as given, the image's entrypoint replaced) from
/// `image`, logging to `<name>.log` in the pod's log directory.
pub fn container_config(name: &str, image: &str, command: Vec<String>) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.to_string(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.to_string(),
            ..ImageSpec::default()
        }),
        command,
        log_path: format!("{name}.log"),
        ..ContainerConfig::default()
    }
}

/// `["/bin/sh", "-c", script]`.
pub fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

/// A container that runs `script` under `/bin/sh -c`.
pub fn shell_container(name: &str, image: &str, script: &str) -> ContainerConfig {
    container_config(name, image, sh(script))
}

/// A container that sleeps `seconds` (exits 0 unless stopped).
pub fn sleep_container(name: &str, image: &str, seconds: u64) -> ContainerConfig {
    container_config(name, image, vec!["sleep".into(), seconds.to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_config_defaults() {
        let p = pod_config("web", Path::new("/tmp/logs"));
        let m = p.metadata.as_ref().unwrap();
        assert_eq!(
            (m.name.as_str(), m.namespace.as_str(), m.attempt),
            ("web", NAMESPACE, 0)
        );
        assert_eq!(p.hostname, "web");
        assert_eq!(p.log_directory, "/tmp/logs");
        let dns = p.dns_config.as_ref().unwrap();
        assert_eq!(dns.servers, ["127.0.0.1"]);
        assert_eq!(dns.searches, ["crius.test"]);
        assert_eq!(dns.options, ["ndots:2"]);
        assert_eq!(p.linux.as_ref().unwrap().cgroup_parent, "");
        let other = pod_config("web", Path::new("/tmp/logs"));
        assert_ne!(m.uid, other.metadata.unwrap().uid);
    }

    #[test]
    fn container_configs() {
        let c = shell_container("c1", "localhost:5000/busybox:v1", "echo hi");
        assert_eq!(c.command, ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.log_path, "c1.log");
        assert_eq!(c.image.unwrap().image, "localhost:5000/busybox:v1");
        assert_eq!(sleep_container("s", "i", 5).command, ["sleep", "5"]);
    }
}
