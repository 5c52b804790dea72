//! Validation of CRI requests up front: the text and number fields of RunPodSandbox,
//! CreateContainer, UpdateContainerResources and UpdatePodSandboxResources (names, hostnames,
//! labels, ports, sysctls, paths, resources) are checked here, before the handler creates or
//! changes anything on the host, and a bad one answers INVALID_ARGUMENT naming the field. The
//! bounds are in `docs/cri-api.md`. Security contexts are checked for form here (`security`):
//! ids, capability names, profile references, namespace modes, masked and read-only paths;
//! what depends on the host (a profile file's content, whether AppArmor is on, a user name in
//! the image's `/etc/passwd`) is answered where the spec is generated, `oci/`.
//!
//! Every error message that echoes input quotes it through [`quote`] (at most [`QUOTE_BYTES`]
//! bytes of it), and [`bounded`] caps a whole message, so a 1 MB name never travels back in a
//! gRPC header. A leaf: it knows the CRI types and nothing else of crius.

mod fields;
mod resources;
mod security;

use crate::api;

pub use fields::{hostname, metadata_name};
pub use resources::{container_resources, overhead};

/// How much of an input an error message quotes.
pub const QUOTE_BYTES: usize = 100;

/// The longest error message crius sends (a gRPC `grpc-message` header percent-encodes it, so
/// it may grow to three times this on the wire; clients commonly cap headers at 16 KiB).
pub const MESSAGE_BYTES: usize = 1024;

/// A request field that breaks a rule: answered INVALID_ARGUMENT (`error.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// `Invalid("<field>: <why>")`.
fn invalid(field: &str, why: impl std::fmt::Display) -> Invalid {
    Invalid(format!("{field}: {why}"))
}

/// `text` quoted for an error message: Rust string escapes (a newline reads `\n`), and beyond
/// [`QUOTE_BYTES`] bytes cut at a character boundary with the full length added.
pub fn quote(text: &str) -> String {
    if text.len() <= QUOTE_BYTES {
        return format!("{text:?}");
    }
    let cut = floor_char_boundary(text, QUOTE_BYTES);
    format!("{:?}… ({} bytes)", &text[..cut], text.len())
}

/// `message` cut to at most [`MESSAGE_BYTES`] bytes (at a character boundary), marked as cut.
pub fn bounded(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MESSAGE_BYTES {
        return message.into();
    }
    let cut = floor_char_boundary(message, MESSAGE_BYTES - 32);
    format!("{}… ({} bytes in all)", &message[..cut], message.len()).into()
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut cut = at.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

/// An object id in a request (crius' ids are 64 hex digits; a unique prefix is accepted too):
/// at most 64 bytes and printable, so a lookup's "not found" quotes little.
pub fn id(field: &str, value: &str) -> Result<(), Invalid> {
    if value.len() > ID_BYTES || value.contains(|c: char| c.is_control()) {
        return Err(invalid(
            field,
            format!(
                "{} is not an id of at most {ID_BYTES} printable bytes",
                quote(value)
            ),
        ));
    }
    Ok(())
}

/// The longest id crius makes (and so the longest a request may name).
const ID_BYTES: usize = 64;

/// A runtime handler name: a configured handler's name is short; this bounds what an error
/// naming an unknown one echoes.
pub fn runtime_handler(value: &str) -> Result<(), Invalid> {
    fields::bounded_text("runtime_handler", value, fields::NAME_BYTES)
}

/// A RunPodSandbox request's config.
pub fn pod_sandbox_config(config: &api::PodSandboxConfig) -> Result<(), Invalid> {
    let Some(m) = &config.metadata else {
        return Err(Invalid("pod sandbox metadata is required".into()));
    };
    metadata_name("metadata.name", &m.name, fields::NAME_BYTES)?;
    metadata_name("metadata.namespace", &m.namespace, fields::NAMESPACE_BYTES)?;
    metadata_name("metadata.uid", &m.uid, fields::UID_BYTES)?;
    // A pod in the node's network namespace has the node's hostname: the field is ignored.
    let host_network = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .is_some_and(|n| n.network == api::NamespaceMode::Node as i32);
    if !host_network {
        hostname("hostname", &config.hostname)?;
    }
    fields::log_directory(&config.log_directory)?;
    if let Some(dns) = &config.dns_config {
        fields::dns_config(dns)?;
    }
    for (i, p) in config.port_mappings.iter().enumerate() {
        fields::port_mapping(&format!("port_mappings[{i}]"), p)?;
    }
    fields::labels("labels", &config.labels)?;
    fields::labels("annotations", &config.annotations)?;
    if let Some(linux) = &config.linux {
        fields::cgroup_parent(&linux.cgroup_parent)?;
        fields::sysctls(&linux.sysctls)?;
        let ns = linux
            .security_context
            .as_ref()
            .and_then(|s| s.namespace_options.as_ref());
        fields::pod_sysctl_namespaces(&linux.sysctls, ns)?;
        if let Some(sc) = &linux.security_context {
            security::pod_security_context(sc)?;
        }
        if let Some(r) = &linux.overhead {
            overhead("linux.overhead", r)?;
        }
        if let Some(r) = &linux.resources {
            container_resources("linux.resources", r)?;
        }
    }
    Ok(())
}

/// A CreateContainer request's config.
pub fn container_config(config: &api::ContainerConfig) -> Result<(), Invalid> {
    let Some(m) = &config.metadata else {
        return Err(Invalid("container metadata.name is required".into()));
    };
    metadata_name("metadata.name", &m.name, fields::NAME_BYTES)?;
    if let Some(image) = &config.image {
        fields::bounded_text("image.image", &image.image, fields::PATH_BYTES)?;
    }
    for (i, arg) in config.command.iter().chain(&config.args).enumerate() {
        fields::no_nul(&format!("command/args[{i}]"), arg)?;
    }
    fields::path("working_dir", &config.working_dir, false)?;
    for (i, env) in config.envs.iter().enumerate() {
        fields::env(&format!("envs[{i}]"), env)?;
    }
    for (i, mount) in config.mounts.iter().enumerate() {
        fields::mount(&format!("mounts[{i}]"), mount)?;
    }
    for (i, device) in config.devices.iter().enumerate() {
        fields::device(&format!("devices[{i}]"), device)?;
    }
    fields::labels("labels", &config.labels)?;
    fields::labels("annotations", &config.annotations)?;
    fields::log_path(&config.log_path)?;
    if let Some(linux) = &config.linux {
        if let Some(r) = &linux.resources {
            container_resources("linux.resources", r)?;
        }
        if let Some(sc) = &linux.security_context {
            security::container_security_context(sc)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_input_is_quoted_whole_with_escapes() {
        assert_eq!(quote("web"), "\"web\"");
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
    }

    #[test]
    fn a_long_input_is_quoted_in_part_with_its_length() {
        let long = "x".repeat(1 << 20);
        let q = quote(&long);
        assert!(q.len() < QUOTE_BYTES + 40, "{q}");
        assert!(q.ends_with("… (1048576 bytes)"), "{q}");
        // A cut never splits a character.
        let wide = "é".repeat(200);
        assert!(quote(&wide).contains("(400 bytes)"));
    }

    #[test]
    fn messages_are_capped() {
        assert_eq!(bounded("short"), "short");
        let long = "y".repeat(1 << 20);
        let b = bounded(&long);
        assert!(b.len() <= MESSAGE_BYTES, "{}", b.len());
        assert!(b.ends_with("(1048576 bytes in all)"));
    }

    fn pod() -> api::PodSandboxConfig {
        api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: "web".into(),
                namespace: "default".into(),
                uid: "0b6e4f0a-6f0e-4a8e-9d6d-6f9b2f3c1a11".into(),
                attempt: 0,
            }),
            hostname: "web".into(),
            log_directory: "/var/log/pods/default_web_0b6e".into(),
            port_mappings: vec![api::PortMapping {
                protocol: api::Protocol::Tcp as i32,
                container_port: 80,
                host_port: 8080,
                host_ip: String::new(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_kubelet_pod_passes() {
        assert_eq!(pod_sandbox_config(&pod()), Ok(()));
    }

    #[test]
    fn each_bad_pod_field_is_named() {
        type Edit = Box<dyn Fn(&mut api::PodSandboxConfig)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "metadata.name",
                Box::new(|p| p.metadata.as_mut().unwrap().name = "n".repeat(1 << 20)),
            ),
            (
                "metadata.namespace",
                Box::new(|p| p.metadata.as_mut().unwrap().namespace = "a/b".into()),
            ),
            (
                "metadata.uid",
                Box::new(|p| p.metadata.as_mut().unwrap().uid = "u\n".into()),
            ),
            ("hostname", Box::new(|p| p.hostname = "web\nevil".into())),
            (
                "port_mappings[0]",
                Box::new(|p| p.port_mappings[0].container_port = -1),
            ),
            (
                "log_directory",
                Box::new(|p| p.log_directory = "relative".into()),
            ),
        ];
        for (field, break_it) in cases {
            let mut p = pod();
            break_it(&mut p);
            let err = pod_sandbox_config(&p).unwrap_err().0;
            assert!(err.starts_with(field), "{field}: {err}");
            assert!(err.len() < 300, "{field}: {} bytes", err.len());
        }
    }

    #[test]
    fn pod_sysctls_must_be_namespaced_and_not_shared_with_the_node() {
        let mut p = pod();
        let linux = p.linux.get_or_insert_with(Default::default);
        linux.sysctls = [("net.ipv4.ip_forward".to_string(), "1".to_string())].into();
        assert_eq!(pod_sandbox_config(&p), Ok(()));
        for (key, host_network) in [
            ("kernel.panic", false),
            ("vm.swappiness", false),
            ("net.ipv4.ip_forward", true),
            ("kernel.hostname", true),
        ] {
            let mut p = pod();
            let linux = p.linux.get_or_insert_with(Default::default);
            linux.sysctls = [(key.to_string(), "1".to_string())].into();
            if host_network {
                linux.security_context = Some(api::LinuxSandboxSecurityContext {
                    namespace_options: Some(api::NamespaceOption {
                        network: api::NamespaceMode::Node as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                });
            }
            let err = pod_sandbox_config(&p).unwrap_err().0;
            assert!(
                err.starts_with("linux.sysctls") && err.contains(key),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn the_ignored_hostname_of_a_host_network_pod_is_not_checked() {
        let mut p = pod();
        p.hostname = "node_1".into();
        assert!(pod_sandbox_config(&p).is_err());
        p.linux = Some(api::LinuxPodSandboxConfig {
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(api::NamespaceOption {
                    network: api::NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(pod_sandbox_config(&p), Ok(()));
    }

    #[test]
    fn a_kubelet_container_passes_and_a_long_name_does_not() {
        let mut c = api::ContainerConfig {
            metadata: Some(api::ContainerMetadata {
                name: "app".into(),
                attempt: 0,
            }),
            image: Some(api::ImageSpec {
                image: "registry.local/busybox:1".into(),
                ..Default::default()
            }),
            command: vec!["sh".into(), "-c".into(), "sleep 1".into()],
            log_path: "app/0.log".into(),
            mounts: vec![api::Mount {
                container_path: "/etc/hosts".into(),
                host_path: "/var/lib/kubelet/pods/x/etc-hosts".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(container_config(&c), Ok(()));
        c.metadata.as_mut().unwrap().name = "c".repeat(1 << 20);
        let err = container_config(&c).unwrap_err().0;
        assert!(err.starts_with("metadata.name") && err.len() < 300, "{err}");
        c.metadata.as_mut().unwrap().name = "app".into();
        c.mounts[0].container_path = "etc/hosts".into();
        let err = container_config(&c).unwrap_err().0;
        assert!(err.starts_with("mounts[0].container_path"), "{err}");
    }

    #[test]
    fn mounts_are_checked_for_form() {
        let image_volume = |edit: fn(&mut api::Mount)| {
            let mut m = api::Mount {
                container_path: "/vol".into(),
                image: Some(api::ImageSpec {
                    image: "registry.local/data:1".into(),
                    ..Default::default()
                }),
                readonly: true,
                image_sub_path: "sub/dir".into(),
                ..Default::default()
            };
            edit(&mut m);
            fields::mount("mounts[0]", &m)
        };
        assert_eq!(image_volume(|_| {}), Ok(()));
        for (want, edit) in [
            (
                "mounts[0].image_sub_path",
                (|m| m.image_sub_path = "../x".into()) as fn(&mut api::Mount),
            ),
            ("mounts[0].image_sub_path", |m| {
                m.image_sub_path = "/etc".into()
            }),
            ("mounts[0]: an image volume must be readonly", |m| {
                m.readonly = false
            }),
            ("mounts[0]: host_path and image", |m| {
                m.host_path = "/tmp".into()
            }),
            ("mounts[0].host_path", |m| m.image = None),
            ("mounts[0].container_path", |m| {
                m.container_path = "/a/../b".into()
            }),
            ("mounts[0].propagation", |m| m.propagation = 9),
            ("mounts[0].recursive_read_only", |m| {
                m.image = None;
                m.host_path = "/tmp".into();
                m.recursive_read_only = true;
                m.readonly = false;
            }),
        ] {
            let err = image_volume(edit).unwrap_err().0;
            assert!(err.starts_with(want), "{want}: {err}");
        }
    }
}
