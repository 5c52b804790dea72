//! `Config::to_toml`: the effective configuration as a commented TOML file.
//!
//! Values come from serde (so no key can be forgotten); order and comments come
//! from [`DOCS`]. `Config::default().to_toml()` is exactly `config/crius.toml`,
//! which a test enforces, so the shipped file is documentation that cannot drift.

use toml::{Table, Value};

use super::Config;
use super::validate::quote_key;

const HEADER: &str = "\
# crius configuration. `crius config` prints the effective configuration in this form.
# Read from the main file (default /etc/crius/crius.toml), then the drop-in directory's
# *.toml files (default /etc/crius/crius.d) in file-name order: later files override
# earlier ones key by key, and command-line flags override files. See docs/config.md.

";

enum Kind {
    /// A key with a value.
    Key,
    /// A struct table (`[api]`).
    Section,
    /// A table whose keys are user-chosen (registries); its entries are documented
    /// under `<path>.*`; the example is shown commented out when it is empty.
    Map { example: &'static str },
}

struct Doc {
    /// Dotted path; `*` stands for any key of a map table.
    path: &'static str,
    comment: &'static str,
    kind: Kind,
}

const fn key(path: &'static str, comment: &'static str) -> Doc {
    Doc {
        path,
        comment,
        kind: Kind::Key,
    }
}

const fn section(path: &'static str, comment: &'static str) -> Doc {
    Doc {
        path,
        comment,
        kind: Kind::Section,
    }
}

/// Every key in output order with its one-line comment; a new key needs an entry here
/// (a test fails otherwise) and in docs/config.md.
const DOCS: &[Doc] = &[
    key("root", "Persistent state (images, ...); absolute path."),
    key(
        "runroot",
        "Volatile state, normally on a tmpfs; absolute path.",
    ),
    key(
        "log_level",
        "Log verbosity: error, warn, info, debug or trace.",
    ),
    section("api", "The CRI gRPC server the kubelet talks to."),
    key(
        "api.listen",
        "Unix socket to listen on (kubelet --container-runtime-endpoint); absolute path.",
    ),
    key(
        "api.grpc_max_recv_msg_size",
        "Largest gRPC message accepted, in bytes.",
    ),
    key(
        "api.grpc_max_send_msg_size",
        "Largest gRPC message sent, in bytes.",
    ),
    section("image", "Image pulls."),
    key(
        "image.unqualified_search_registries",
        "Registries (host[:port]) tried in order for short names like \"busybox\"; not empty.",
    ),
    key(
        "image.max_concurrent_downloads",
        "Parallel layer downloads per pull, 1 to 64.",
    ),
    key(
        "image.pull_timeout",
        "Time limit of a whole pull, e.g. \"90s\", \"10m\", \"1h 30m\"; \"0s\" = no timeout.",
    ),
    key(
        "image.auth_file",
        "Registry credentials in docker config.json format; a missing file means none.",
    ),
    key(
        "image.certs_dir",
        "Per registry: <certs_dir>/<host[:port]>/*.crt (extra CAs), client.cert + client.key.",
    ),
    Doc {
        path: "image.registries",
        comment: "Per-registry settings, keyed by the registry (host[:port]) as written in image names.",
        kind: Kind::Map {
            example: "\
# [image.registries.\"docker.io\"]
# mirrors = [\"mirror.local:5000/dockerhub\"]
# insecure = false
",
        },
    },
    key(
        "image.registries.*.mirrors",
        "Mirrors (host[:port], optionally with a /path prefix) tried in order, the registry last.",
    ),
    key(
        "image.registries.*.insecure",
        "Plain HTTP or unverified TLS for this registry.",
    ),
    section("network", "Pod networking through CNI plugins."),
    key(
        "network.network_dir",
        "Directory of CNI network configurations; the first file by name is the default network.",
    ),
    key(
        "network.plugin_dirs",
        "Directories searched in order for CNI plugin binaries.",
    ),
    section(
        "runtime",
        "Pods and containers: OCI runtime handlers, monitor, cgroups.",
    ),
    key(
        "runtime.default_runtime",
        "Handler for requests naming none; a key of [runtime.runtimes].",
    ),
    key(
        "runtime.monitor_path",
        "crius-monitor binary; \"\" = next to the crius binary, else $PATH.",
    ),
    key(
        "runtime.cgroup_manager",
        "cgroup driver: \"cgroupfs\", \"systemd\", or \"\" = systemd when PID 1 is systemd and cgroup_parent is not a path.",
    ),
    key(
        "runtime.cgroup_parent",
        "cgroup parent of pods whose request gives none: a cgroupfs path or a systemd slice; \"\" = /crius or crius.slice.",
    ),
    key(
        "runtime.monitor_cgroup",
        "cgroup container monitors move to, out of the daemon's, so a daemon restart spares them; \"\" = stay.",
    ),
    key(
        "runtime.pause_image",
        "Image run as each pod's pause process, pulled if missing; \"\" = crius' built-in pause.",
    ),
    key(
        "runtime.shm_size",
        "Size of each pod's /dev/shm tmpfs, in bytes.",
    ),
    key(
        "runtime.log_max_line",
        "Most content bytes in one container log entry; longer lines are split.",
    ),
    key(
        "runtime.container_events_buffer",
        "Events GetContainerEvents keeps for a subscriber that is behind; one further behind loses its stream.",
    ),
    Doc {
        path: "runtime.runtimes",
        comment: "OCI runtime handlers by name (the CRI runtime_handler); \"crius\" is crius' own.",
        kind: Kind::Map {
            example: "\
# [runtime.runtimes.runc]
# path = \"/usr/sbin/runc\"
# root = \"\"
",
        },
    },
    key(
        "runtime.runtimes.*.path",
        "Runtime with runc's command line (runc, crun); \"\" = crius' own (crius oci).",
    ),
    key(
        "runtime.runtimes.*.root",
        "The runtime's state directory (--root); \"\" = <runroot>/runtimes/<name>.",
    ),
    section(
        "streaming",
        "The HTTP server of Exec, Attach and PortForward sessions (crictl exec -it, kubectl exec).",
    ),
    key(
        "streaming.address",
        "IP address to listen on, also the host of the URLs handed out.",
    ),
    key(
        "streaming.port",
        "TCP port; 0 = an ephemeral port chosen at start.",
    ),
    key(
        "streaming.tls_cert",
        "PEM certificate chain for HTTPS (with tls_key); \"\" = plain HTTP.",
    ),
    key("streaming.tls_key", "PEM private key of tls_cert."),
    key(
        "streaming.tls_client_ca",
        "PEM CA bundle; when set, clients must present a certificate it signed.",
    ),
    key(
        "streaming.token_ttl",
        "How long a streaming URL stays usable (each is single-use), e.g. \"1m\".",
    ),
    section(
        "metrics",
        "crius' own Prometheus metrics (RPCs, pulls, pods, the daemon), on GET /metrics.",
    ),
    key("metrics.enable", "Serve the endpoint; off by default."),
    key("metrics.address", "IP address to listen on."),
    key("metrics.port", "TCP port."),
];

impl Config {
    /// The effective configuration as TOML, every key included, with comments.
    pub fn to_toml(&self) -> String {
        match Table::try_from(self) {
            Ok(table) => {
                let mut out = String::from(HEADER);
                render_table(&mut out, &mut Vec::new(), "", &table, false);
                out
            }
            // Only an unvalidated config can get here (e.g. a non-UTF-8 path):
            // say so in the output rather than panic.
            Err(e) => format!("# error: cannot print the configuration as TOML: {e}\n"),
        }
    }
}

/// Renders the contents of `table`, found at `path`, below its header. `doc_path` is
/// `path` with map keys replaced by `*`; `map` says the keys are user-chosen.
fn render_table(
    out: &mut String,
    path: &mut Vec<String>,
    doc_path: &str,
    table: &Table,
    map: bool,
) {
    let entries = if map {
        table.iter().map(|(k, v)| (k.as_str(), v, None)).collect()
    } else {
        ordered(doc_path, table)
    };
    // TOML needs a table's own keys before its sub-table headers.
    for &(name, value, doc) in entries.iter().filter(|e| !e.1.is_table()) {
        comment(out, doc);
        out.push_str(&format!("{} = {value}\n", quote_key(name)));
    }
    let sub_tables = entries
        .iter()
        .filter_map(|&(name, value, doc)| match value {
            Value::Table(sub) => Some((name, sub, doc)),
            _ => None,
        });
    for (i, (name, sub, doc)) in sub_tables.enumerate() {
        let sub_doc_path = join(doc_path, if map { "*" } else { name });
        path.push(name.to_owned());
        // Map entries follow the map's comment directly, then are separated by blank lines.
        if !map || i > 0 {
            out.push('\n');
        }
        comment(out, doc);
        match doc.map(|d| &d.kind) {
            Some(Kind::Map { example }) => {
                if sub.is_empty() {
                    out.push_str(example);
                }
                // A map's own header is only needed for non-table values (none in the schema).
                if sub.values().any(|v| !v.is_table()) {
                    header(out, path);
                }
                render_table(out, path, &sub_doc_path, sub, true);
            }
            _ => {
                header(out, path);
                render_table(out, path, &sub_doc_path, sub, false);
            }
        }
        path.pop();
    }
}

/// `table`'s entries: documented keys in [`DOCS`] order, then any undocumented ones.
fn ordered<'a>(
    doc_path: &str,
    table: &'a Table,
) -> Vec<(&'a str, &'a Value, Option<&'static Doc>)> {
    let mut entries: Vec<_> = DOCS
        .iter()
        .filter(|doc| parent(doc.path) == doc_path)
        .filter_map(|doc| {
            let (name, value) = table.get_key_value(leaf(doc.path))?;
            Some((name.as_str(), value, Some(doc)))
        })
        .collect();
    for (name, value) in table {
        if !entries.iter().any(|e| e.0 == name) {
            entries.push((name.as_str(), value, None));
        }
    }
    entries
}

fn comment(out: &mut String, doc: Option<&Doc>) {
    if let Some(doc) = doc {
        out.push_str(&format!("# {}\n", doc.comment));
    }
}

fn header(out: &mut String, path: &[String]) {
    let keys: Vec<String> = path.iter().map(|k| quote_key(k)).collect();
    out.push_str(&format!("[{}]\n", keys.join(".")));
}

fn join(doc_path: &str, name: &str) -> String {
    if doc_path.is_empty() {
        name.to_owned()
    } else {
        format!("{doc_path}.{name}")
    }
}

fn parent(doc_path: &str) -> &str {
    doc_path.rsplit_once('.').map_or("", |(parent, _)| parent)
}

fn leaf(doc_path: &str) -> &str {
    doc_path.rsplit_once('.').map_or(doc_path, |(_, leaf)| leaf)
}

#[cfg(test)]
mod tests {
    use super::super::{ConfigSources, LogLevel, Overrides, RegistryConfig};
    use super::*;
    use std::collections::BTreeSet;
    use std::time::Duration;

    /// The shipped default configuration file.
    const DEFAULT_FILE: &str = include_str!("../../config/crius.toml");
    /// The configuration reference.
    const DOCS_MD: &str = include_str!("../../docs/config.md");

    /// Every field differs from its default, registries included.
    fn non_default() -> Config {
        let mut c = Config {
            root: "/srv/crius".into(),
            runroot: "/run/crius2".into(),
            log_level: LogLevel::Trace,
            ..Config::default()
        };
        c.api.listen = "/run/other.sock".into();
        c.api.grpc_max_recv_msg_size = 1;
        c.api.grpc_max_send_msg_size = 2;
        c.image.unqualified_search_registries = vec!["quay.io".into(), "[::1]:5000".into()];
        c.image.max_concurrent_downloads = 64;
        c.image.pull_timeout = Duration::from_millis(90_500);
        c.image.auth_file = "/root/.docker/config.json".into();
        c.image.certs_dir = "/etc/docker/certs.d".into();
        c.image.registries.insert(
            "localhost:5000".into(),
            RegistryConfig {
                mirrors: vec!["mirror.local:5000/dockerhub".into(), "m2".into()],
                insecure: true,
            },
        );
        c.image
            .registries
            .insert("docker.io".into(), RegistryConfig::default());
        c.metrics = crate::config::MetricsConfig {
            enable: true,
            address: "::1".into(),
            port: 9537,
        };
        c
    }

    fn parse(text: &str) -> Config {
        toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn embedded_default_file_equals_defaults() {
        assert_eq!(parse(DEFAULT_FILE), Config::default());
        assert_eq!(parse(&Config::default().to_toml()), Config::default());
        // Byte-for-byte, so the shipped file always documents every key.
        // To refresh it: `crius config > config/crius.toml` (with no config files present).
        assert_eq!(
            Config::default().to_toml(),
            DEFAULT_FILE,
            "config/crius.toml is out of sync with Config::default().to_toml()"
        );
    }

    #[test]
    fn to_toml_round_trips_non_default_values() {
        let c = non_default();
        assert!(c.check().is_ok());
        let text = c.to_toml();
        assert_eq!(parse(&text), c);
        assert!(
            text.contains("[image.registries.\"localhost:5000\"]"),
            "{text}"
        );
        assert!(text.contains("pull_timeout = \"1m 30s 500ms\""), "{text}");
        assert!(
            !text.contains("# [image.registries"),
            "example only when empty: {text}"
        );
    }

    #[test]
    fn to_toml_output_is_accepted_by_load() {
        let dir = tempfile::tempdir().unwrap();
        let sources = ConfigSources {
            main: dir.path().join("crius.toml"),
            drop_in_dir: dir.path().join("crius.d"),
        };
        std::fs::write(&sources.main, non_default().to_toml()).unwrap();
        let loaded = Config::load(&sources, &Overrides::default()).unwrap();
        assert_eq!(loaded, non_default());
    }

    #[test]
    fn unusual_registry_keys_are_quoted() {
        let mut c = Config::default();
        c.image
            .registries
            .insert("we\"ird\\key".into(), RegistryConfig::default());
        c.image
            .registries
            .insert("plain-key".into(), RegistryConfig::default());
        let text = c.to_toml();
        assert!(text.contains("[image.registries.plain-key]"), "{text}");
        assert_eq!(parse(&text), c);
    }

    /// Paths of all keys and tables in `table`, map entries written as `*`.
    fn schema_paths(table: &Table, prefix: &str, out: &mut BTreeSet<String>) {
        for (name, value) in table {
            let path = join(prefix, name);
            out.insert(path.clone());
            if let Value::Table(sub) = value {
                let is_map = DOCS
                    .iter()
                    .any(|d| d.path == path && matches!(d.kind, Kind::Map { .. }));
                if is_map {
                    for entry in sub.values() {
                        if let Value::Table(entry) = entry {
                            schema_paths(entry, &join(&path, "*"), out);
                        }
                    }
                } else {
                    schema_paths(sub, &path, out);
                }
            }
        }
    }

    #[test]
    fn every_key_is_documented() {
        let mut actual = BTreeSet::new();
        schema_paths(&Table::try_from(non_default()).unwrap(), "", &mut actual);
        let documented: BTreeSet<String> = DOCS.iter().map(|d| d.path.to_owned()).collect();
        assert_eq!(actual, documented, "update DOCS in render.rs");
    }

    #[test]
    fn docs_markdown_mentions_every_key() {
        for doc in DOCS {
            // Each map's docs name its keys by a placeholder.
            let placeholder = if doc.path.starts_with("runtime.") {
                "<name>"
            } else {
                "\"<registry>\""
            };
            let key = doc.path.replace(".*.", &format!(".{placeholder}."));
            let wanted = match doc.kind {
                Kind::Key => format!("`{key}`"),
                Kind::Section => format!("`[{key}]`"),
                Kind::Map { .. } => format!("`[{key}.{placeholder}]`"),
            };
            assert!(DOCS_MD.contains(&wanted), "docs/config.md lacks {wanted}");
        }
    }

    #[test]
    fn unserialisable_config_says_so() {
        use std::os::unix::ffi::OsStrExt;
        let c = Config {
            root: std::ffi::OsStr::from_bytes(b"/\xff").into(),
            ..Config::default()
        };
        assert!(c.to_toml().starts_with("# error: "));
    }
}
