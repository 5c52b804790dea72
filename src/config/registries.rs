//! Per-registry settings (`[image.registries."host[:port]"]`) and the
//! syntax checks for registry hosts and mirrors.

use std::net::Ipv6Addr;

use serde::{Deserialize, Serialize};

use super::ImageConfig;

/// Settings for one registry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct RegistryConfig {
    /// `host[:port][/path-prefix]` mirrors tried in order; the registry itself is tried last.
    pub mirrors: Vec<String>,
    /// Plain HTTP or unverified TLS for this registry.
    pub insecure: bool,
}

impl ImageConfig {
    /// Settings for a registry host, default when not configured.
    pub fn registry(&self, host: &str) -> RegistryConfig {
        self.registries.get(host).cloned().unwrap_or_default()
    }
}

/// Whether `s` is `host[:port]` as it appears at the start of an image name:
/// a DNS name or IPv4 address, or a bracketed IPv6 address, with an optional port.
pub(super) fn is_host_port(s: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = s.strip_prefix('[') {
        // "[::1]:5000": the brackets keep the IPv6 colons apart from the port.
        match rest.split_once(']') {
            Some((addr, after)) => match after {
                "" => (addr.parse::<Ipv6Addr>().is_ok(), None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (addr.parse::<Ipv6Addr>().is_ok(), Some(port)),
                    None => (false, None),
                },
            },
            None => (false, None),
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) => (is_dns_name(host), Some(port)),
            None => (is_dns_name(s), None),
        }
    };
    host_ok && port.is_none_or(is_port)
}

/// What is wrong with a mirror (`host[:port]` optionally followed by `/path`), if anything.
pub(super) fn mirror_error(mirror: &str) -> Option<String> {
    let (host, path) = match mirror.split_once('/') {
        Some((host, path)) => (host, Some(path)),
        None => (mirror, None),
    };
    if !is_host_port(host) {
        return Some(format!("{mirror:?} is not a host[:port]"));
    }
    match path {
        Some(path) if !is_repo_path(path) => Some(format!(
            "{mirror:?} has an invalid path prefix {path:?} \
             (lowercase letters, digits, '.', '_', '-' in '/'-separated parts)"
        )),
        _ => None,
    }
}

/// RFC 1123 host name (which covers IPv4 dotted quads), as the docker reference grammar
/// accepts: labels of letters, digits and inner hyphens.
fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_port(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u16>().is_ok_and(|p| p != 0)
}

/// Repository path as in image names: parts of lowercase alphanumerics joined by
/// `.`, `_` or `-`, each part starting and ending with an alphanumeric.
fn is_repo_path(s: &str) -> bool {
    s.split('/').all(|part| {
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let bytes = part.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(&first), Some(&last)) => {
                alnum(first)
                    && alnum(last)
                    && bytes
                        .iter()
                        .all(|&b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_accepts_registry_hosts() {
        for ok in [
            "docker.io",
            "localhost",
            "localhost:5000",
            "registry-1.docker.io",
            "10.0.0.1:443",
            "[::1]",
            "[fe80::1]:5000",
            "Quay.IO",
        ] {
            assert!(is_host_port(ok), "{ok} should be accepted");
        }
    }

    #[test]
    fn host_port_rejects_urls_paths_and_bad_ports() {
        for bad in [
            "",
            "http://x",
            "docker.io/library",
            "host:",
            "host:0",
            "host:65536",
            "host:+80",
            "host:abc",
            "-bad.io",
            "bad-.io",
            "a..b",
            "under_score.io",
            "[::1",
            "[nothost]:80",
            "::1",
            "with space",
        ] {
            assert!(!is_host_port(bad), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn mirrors_may_have_a_path_prefix() {
        assert_eq!(mirror_error("mirror.local:5000"), None);
        assert_eq!(mirror_error("mirror.local:5000/dockerhub"), None);
        assert_eq!(mirror_error("mirror.local/a/b-c/d_e.f"), None);
        assert_eq!(
            mirror_error("http://x").as_deref(),
            Some(r#""http://x" is not a host[:port]"#)
        );
        for bad in [
            "mirror.local/",
            "mirror.local/Up",
            "mirror.local/a//b",
            "m/-a",
        ] {
            let msg = mirror_error(bad).unwrap_or_default();
            assert!(msg.contains("invalid path prefix"), "{bad:?}: {msg}");
        }
    }

    #[test]
    fn unconfigured_registry_gets_defaults() {
        let mut image = ImageConfig::default();
        let configured = RegistryConfig {
            mirrors: vec!["mirror.local".into()],
            insecure: true,
        };
        image
            .registries
            .insert("quay.io".into(), configured.clone());
        assert_eq!(image.registry("quay.io"), configured);
        assert_eq!(image.registry("docker.io"), RegistryConfig::default());
    }
}
