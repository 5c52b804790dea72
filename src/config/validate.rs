//! Value checks that serde's types cannot express (absolute paths, ranges, hosts),
//! reported with the dotted key of the offending value.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::Config;
use super::registries::{is_host_port, mirror_error};

/// Longest unix socket path: `sockaddr_un.sun_path` is 108 bytes including the NUL.
const MAX_SOCKET_PATH: usize = 107;
/// gRPC frames carry a 32-bit length, so larger limits are meaningless.
const MAX_GRPC_MSG_SIZE: usize = u32::MAX as usize;
const MAX_CONCURRENT_DOWNLOADS: u32 = 64;

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

/// A dotted key path, displayed as TOML writes it: `image.registries."localhost:5000".mirrors[1]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct KeyPath(pub(super) Vec<Seg>);

impl KeyPath {
    #[cfg(test)]
    pub(super) fn new(keys: &[&str]) -> Self {
        KeyPath(keys.iter().map(|k| Seg::Key((*k).to_owned())).collect())
    }

    fn key(&self, key: &str) -> Self {
        let mut path = self.clone();
        path.0.push(Seg::Key(key.to_owned()));
        path
    }

    fn index(&self, index: usize) -> Self {
        let mut path = self.clone();
        path.0.push(Seg::Index(index));
        path
    }

    /// The table keys only; arrays are replaced whole, so the array's key is what a file set.
    pub(super) fn keys(&self) -> Vec<String> {
        self.0
            .iter()
            .map_while(|seg| match seg {
                Seg::Key(k) => Some(k.clone()),
                Seg::Index(_) => None,
            })
            .collect()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(&quote_key(k))?;
                }
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A key as TOML needs it: bare when possible, else a basic string.
pub(super) fn quote_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        return key.to_owned();
    }
    let mut out = String::with_capacity(key.len() + 2);
    out.push('"');
    for c in key.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A failed check: which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    pub(super) key: KeyPath,
    pub(super) message: String,
}

fn problem(key: KeyPath, message: String) -> Result<(), Problem> {
    Err(Problem { key, message })
}

impl Config {
    /// The first problem found, with its key path.
    pub(super) fn check(&self) -> Result<(), Problem> {
        let top = KeyPath::default();
        absolute(top.key("root"), &self.root)?;
        absolute(top.key("runroot"), &self.runroot)?;

        let api = top.key("api");
        absolute(api.key("listen"), &self.api.listen)?;
        let len = self.api.listen.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            problem(
                api.key("listen"),
                format!(
                    "{:?} is too long for a unix socket path ({len} bytes, at most {MAX_SOCKET_PATH})",
                    self.api.listen
                ),
            )?;
        }
        in_range(
            api.key("grpc_max_recv_msg_size"),
            self.api.grpc_max_recv_msg_size,
            1,
            MAX_GRPC_MSG_SIZE,
        )?;
        in_range(
            api.key("grpc_max_send_msg_size"),
            self.api.grpc_max_send_msg_size,
            1,
            MAX_GRPC_MSG_SIZE,
        )?;

        let image = top.key("image");
        let search = image.key("unqualified_search_registries");
        if self.image.unqualified_search_registries.is_empty() {
            problem(
                search.clone(),
                "must not be empty: short image names could not be resolved".to_owned(),
            )?;
        }
        for (i, host) in self.image.unqualified_search_registries.iter().enumerate() {
            if !is_host_port(host) {
                problem(search.index(i), format!("{host:?} is not a host[:port]"))?;
            }
        }
        in_range(
            image.key("max_concurrent_downloads"),
            self.image.max_concurrent_downloads,
            1,
            MAX_CONCURRENT_DOWNLOADS,
        )?;
        absolute(image.key("auth_file"), &self.image.auth_file)?;
        absolute(image.key("certs_dir"), &self.image.certs_dir)?;

        let network = top.key("network");
        absolute(network.key("network_dir"), &self.network.network_dir)?;
        for (i, dir) in self.network.plugin_dirs.iter().enumerate() {
            absolute(network.key("plugin_dirs").index(i), dir)?;
        }

        self.check_runtime(&top.key("runtime"))?;
        self.check_streaming(&top.key("streaming"))?;
        if self.metrics.address.parse::<std::net::IpAddr>().is_err() {
            problem(
                top.key("metrics").key("address"),
                format!("{:?} is not an IP address", self.metrics.address),
            )?;
        }

        let registries = image.key("registries");
        for (host, registry) in &self.image.registries {
            let reg = registries.key(host);
            if !is_host_port(host) {
                problem(reg.clone(), format!("{host:?} is not a host[:port]"))?;
            }
            for (i, mirror) in registry.mirrors.iter().enumerate() {
                if let Some(message) = mirror_error(mirror) {
                    problem(reg.key("mirrors").index(i), message)?;
                }
            }
        }
        Ok(())
    }
}

/// Smallest pod /dev/shm accepted.
const MIN_SHM_SIZE: u64 = 1024 * 1024;
/// CRI log lines may be split into entries this small, no smaller.
const MIN_LOG_LINE: usize = 256;

impl Config {
    fn check_runtime(&self, key: &KeyPath) -> Result<(), Problem> {
        let rt = &self.runtime;
        if rt.handler(&rt.default_runtime).is_none() {
            problem(
                key.key("default_runtime"),
                format!(
                    "{:?} is not a handler in [runtime.runtimes] ({})",
                    rt.default_runtime,
                    rt.handler_names().join(", ")
                ),
            )?;
        }
        if !rt.monitor_path.as_os_str().is_empty() {
            absolute(key.key("monitor_path"), &rt.monitor_path)?;
        }
        if !["", "cgroupfs", "systemd"].contains(&rt.cgroup_manager.as_str()) {
            problem(
                key.key("cgroup_manager"),
                format!(
                    "{:?} is not a cgroup driver: \"cgroupfs\", \"systemd\" or \"\" (detect)",
                    rt.cgroup_manager
                ),
            )?;
        }
        let parent = &rt.cgroup_parent;
        if parent.ends_with(".slice") {
            if rt.cgroup_manager == "cgroupfs" {
                problem(
                    key.key("cgroup_parent"),
                    format!("{parent:?} is a systemd slice, but cgroup_manager is \"cgroupfs\""),
                )?;
            }
            if let Err(e) = crate::libcontainer::cgroups::systemd::expand_slice(parent) {
                problem(key.key("cgroup_parent"), e.to_string())?;
            }
        } else if !parent.is_empty() {
            if !parent.starts_with('/') || parent.split('/').any(|c| c == "..") {
                problem(
                    key.key("cgroup_parent"),
                    format!("{parent:?} is neither an absolute cgroup path nor a systemd slice"),
                )?;
            }
            if rt.cgroup_manager == "systemd" {
                problem(
                    key.key("cgroup_parent"),
                    format!(
                        "{parent:?} is a cgroupfs path, but cgroup_manager is \"systemd\": give a slice such as \"crius.slice\""
                    ),
                )?;
            }
        }
        if !rt.pause_image.is_empty()
            && crate::reference::ImageRef::parse(&rt.pause_image, "docker.io").is_err()
        {
            problem(
                key.key("pause_image"),
                format!("{:?} is not an image reference", rt.pause_image),
            )?;
        }
        if !rt.monitor_cgroup.is_empty()
            && (!rt.monitor_cgroup.starts_with('/')
                || rt.monitor_cgroup == "/"
                || rt.monitor_cgroup.split('/').any(|c| c == ".."))
        {
            problem(
                key.key("monitor_cgroup"),
                format!("{:?} is not an absolute cgroup path", rt.monitor_cgroup),
            )?;
        }
        in_range(key.key("shm_size"), rt.shm_size, MIN_SHM_SIZE, u64::MAX)?;
        in_range(
            key.key("log_max_line"),
            rt.log_max_line,
            MIN_LOG_LINE,
            1 << 30,
        )?;
        in_range(
            key.key("container_events_buffer"),
            rt.container_events_buffer,
            1,
            1 << 20,
        )?;
        let runtimes = key.key("runtimes");
        for (name, handler) in &rt.runtimes {
            let entry = runtimes.key(name);
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                problem(
                    entry.clone(),
                    format!("{name:?} is not a handler name (letters, digits, - _ .)"),
                )?;
            }
            for (field, path) in [("path", &handler.path), ("root", &handler.root)] {
                if !path.as_os_str().is_empty() {
                    absolute(entry.key(field), path)?;
                }
            }
        }
        Ok(())
    }
}

impl Config {
    fn check_streaming(&self, key: &KeyPath) -> Result<(), Problem> {
        let st = &self.streaming;
        if st.address.parse::<std::net::IpAddr>().is_err() {
            problem(
                key.key("address"),
                format!("{:?} is not an IP address", st.address),
            )?;
        }
        for (field, path) in [
            ("tls_cert", &st.tls_cert),
            ("tls_key", &st.tls_key),
            ("tls_client_ca", &st.tls_client_ca),
        ] {
            if !path.as_os_str().is_empty() {
                absolute(key.key(field), path)?;
            }
        }
        if st.tls_cert.as_os_str().is_empty() != st.tls_key.as_os_str().is_empty() {
            problem(
                key.key("tls_key"),
                "tls_cert and tls_key must be set together".to_owned(),
            )?;
        }
        if !st.tls_client_ca.as_os_str().is_empty() && !st.tls() {
            problem(
                key.key("tls_client_ca"),
                "needs tls_cert and tls_key".to_owned(),
            )?;
        }
        if st.token_ttl < Duration::from_secs(1) || st.token_ttl > Duration::from_secs(3600) {
            problem(
                key.key("token_ttl"),
                format!(
                    "{} is out of range (1s to 1h)",
                    humantime::format_duration(st.token_ttl)
                ),
            )?;
        }
        Ok(())
    }
}

/// Relative paths would depend on the daemon's working directory; non-UTF-8 ones
/// could not be printed back as TOML by `crius config`.
fn absolute(key: KeyPath, path: &Path) -> Result<(), Problem> {
    if path.to_str().is_none() {
        return problem(key, format!("{path:?} is not valid UTF-8"));
    }
    if !path.is_absolute() {
        return problem(key, format!("{path:?} is not an absolute path"));
    }
    Ok(())
}

fn in_range<T: PartialOrd + fmt::Display>(
    key: KeyPath,
    value: T,
    min: T,
    max: T,
) -> Result<(), Problem> {
    if value < min || value > max {
        return problem(key, format!("must be between {min} and {max}, got {value}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::RegistryConfig;
    use super::*;
    use std::path::PathBuf;

    fn invalid(config: &Config) -> String {
        match config.check() {
            Err(p) => format!("{}: {}", p.key, p.message),
            Ok(()) => panic!("config should be invalid: {config:?}"),
        }
    }

    #[test]
    fn runtime_section_is_checked() {
        let mut c = Config::default();
        c.runtime.default_runtime = "kata".into();
        assert_eq!(
            invalid(&c),
            r#"runtime.default_runtime: "kata" is not a handler in [runtime.runtimes] (crius)"#
        );
        let mut c = Config::default();
        c.runtime.cgroup_parent = "kubepods".into();
        assert!(invalid(&c).starts_with("runtime.cgroup_parent: "));
        let mut c = Config::default();
        c.runtime.cgroup_manager = "kubelet".into();
        assert!(invalid(&c).starts_with("runtime.cgroup_manager: "));
        // Parent and driver must agree.
        let mut c = Config::default();
        c.runtime.cgroup_manager = "systemd".into();
        c.runtime.cgroup_parent = "/crius".into();
        assert!(invalid(&c).contains("give a slice"));
        c.runtime.cgroup_parent = "kubepods.slice".into();
        c.check().unwrap();
        c.runtime.cgroup_manager = "cgroupfs".into();
        assert!(invalid(&c).contains("is a systemd slice"));
        let mut c = Config::default();
        c.runtime.runtimes.insert(
            "runc".into(),
            super::super::runtime::RuntimeHandlerConfig {
                path: PathBuf::from("runc"),
                root: PathBuf::new(),
            },
        );
        assert_eq!(
            invalid(&c),
            r#"runtime.runtimes.runc.path: "runc" is not an absolute path"#
        );
    }

    #[test]
    fn streaming_section_is_checked() {
        let mut c = Config::default();
        c.streaming.address = "localhost".into();
        assert_eq!(
            invalid(&c),
            r#"streaming.address: "localhost" is not an IP address"#
        );
        let mut c = Config::default();
        c.streaming.tls_cert = "/etc/crius/stream.crt".into();
        assert_eq!(
            invalid(&c),
            "streaming.tls_key: tls_cert and tls_key must be set together"
        );
        let mut c = Config::default();
        c.streaming.tls_client_ca = "/etc/crius/ca.crt".into();
        assert_eq!(
            invalid(&c),
            "streaming.tls_client_ca: needs tls_cert and tls_key"
        );
        let mut c = Config::default();
        c.streaming.token_ttl = std::time::Duration::ZERO;
        assert_eq!(
            invalid(&c),
            "streaming.token_ttl: 0s is out of range (1s to 1h)"
        );
    }

    #[test]
    fn metrics_address_is_checked() {
        let mut c = Config::default();
        c.metrics.address = "localhost".into();
        assert_eq!(
            invalid(&c),
            r#"metrics.address: "localhost" is not an IP address"#
        );
    }

    #[test]
    fn defaults_are_valid() {
        assert!(Config::default().check().is_ok());
    }

    #[test]
    fn key_paths_quote_non_bare_keys() {
        let path = KeyPath::new(&["image", "registries", "localhost:5000", "mirrors"]).index(1);
        assert_eq!(
            path.to_string(),
            r#"image.registries."localhost:5000".mirrors[1]"#
        );
        assert_eq!(quote_key("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote_key(""), r#""""#);
        assert_eq!(
            path.keys(),
            ["image", "registries", "localhost:5000", "mirrors"]
        );
    }

    #[test]
    fn relative_paths_are_rejected() {
        let c = Config {
            runroot: PathBuf::from("run/crius"),
            ..Config::default()
        };
        assert_eq!(
            invalid(&c),
            r#"runroot: "run/crius" is not an absolute path"#
        );

        let mut c = Config::default();
        c.api.listen = PathBuf::from("crius.sock");
        assert_eq!(
            invalid(&c),
            r#"api.listen: "crius.sock" is not an absolute path"#
        );

        let mut c = Config::default();
        c.image.auth_file = PathBuf::new();
        assert_eq!(
            invalid(&c),
            r#"image.auth_file: "" is not an absolute path"#
        );
    }

    #[test]
    fn non_utf8_paths_are_rejected() {
        use std::os::unix::ffi::OsStrExt;
        let c = Config {
            root: PathBuf::from(std::ffi::OsStr::from_bytes(b"/var/\xff")),
            ..Config::default()
        };
        assert!(invalid(&c).contains("is not valid UTF-8"));
    }

    #[test]
    fn overlong_socket_path_is_rejected() {
        let mut c = Config::default();
        c.api.listen = PathBuf::from(format!("/{}", "s".repeat(107)));
        assert!(invalid(&c).starts_with("api.listen: "));
        c.api.listen = PathBuf::from(format!("/{}", "s".repeat(106)));
        assert!(c.check().is_ok());
    }

    #[test]
    fn ranges_are_enforced() {
        let mut c = Config::default();
        c.image.max_concurrent_downloads = 0;
        assert_eq!(
            invalid(&c),
            "image.max_concurrent_downloads: must be between 1 and 64, got 0"
        );
        c.image.max_concurrent_downloads = 65;
        assert!(invalid(&c).ends_with("got 65"));
        c.image.max_concurrent_downloads = 64;
        assert!(c.check().is_ok());

        let mut c = Config::default();
        c.api.grpc_max_send_msg_size = 0;
        assert!(invalid(&c).starts_with("api.grpc_max_send_msg_size: must be between 1 and"));
    }

    #[test]
    fn search_registries_must_be_hosts() {
        let mut c = Config::default();
        c.image.unqualified_search_registries.clear();
        assert!(invalid(&c).starts_with("image.unqualified_search_registries: must not be empty"));

        c.image.unqualified_search_registries = vec!["quay.io".into(), "docker.io/library".into()];
        assert_eq!(
            invalid(&c),
            r#"image.unqualified_search_registries[1]: "docker.io/library" is not a host[:port]"#
        );
    }

    #[test]
    fn registry_keys_and_mirrors_are_checked() {
        let mut c = Config::default();
        c.image
            .registries
            .insert("https://quay.io".into(), RegistryConfig::default());
        assert_eq!(
            invalid(&c),
            r#"image.registries."https://quay.io": "https://quay.io" is not a host[:port]"#
        );

        let mut c = Config::default();
        c.image.registries.insert(
            "localhost:5000".into(),
            RegistryConfig {
                mirrors: vec!["mirror.local".into(), "http://x".into()],
                insecure: true,
            },
        );
        assert_eq!(
            invalid(&c),
            r#"image.registries."localhost:5000".mirrors[1]: "http://x" is not a host[:port]"#
        );
    }

    #[test]
    fn zero_pull_timeout_means_no_limit() {
        let mut c = Config::default();
        assert_eq!(
            c.image.pull_time_limit(),
            Some(std::time::Duration::from_secs(600))
        );
        c.image.pull_timeout = std::time::Duration::ZERO;
        assert!(c.check().is_ok());
        assert_eq!(c.image.pull_time_limit(), None);
    }
}
