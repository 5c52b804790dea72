//! crius configuration: schema, defaults, loading and validation.
//!
//! The configuration is read from a main file plus drop-ins (see [`ConfigSources`]),
//! merged key by key, overridden by command-line flags ([`Overrides`]) and validated.
//! Every error names the file (or flag), the dotted key and what is wrong, because
//! a config mistake must stop start-up with a message an operator can act on.
//!
//! Layout: one struct per TOML section; a new section (e.g. `[runtime]`) is a new
//! struct with `#[serde(default, deny_unknown_fields, expecting = "a table")]`, a field on [`Config`],
//! its checks in `validate.rs` and its key comments in `render.rs`.

mod load;
mod metrics;
mod registries;
mod render;
mod runtime;
mod streaming;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use metrics::MetricsConfig;
pub use registries::RegistryConfig;
pub use runtime::{RuntimeConfig, systemd_booted};
pub use streaming::StreamingConfig;

/// Default main configuration file.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/crius/crius.toml";
/// Default drop-in directory; its `*.toml` files are applied after the main file.
pub const DEFAULT_DROP_IN_DIR: &str = "/etc/crius/crius.d";

/// The effective crius configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct Config {
    /// Persistent state (images, ...).
    pub root: PathBuf,
    /// Volatile state, expected on a tmpfs.
    pub runroot: PathBuf,
    pub log_level: LogLevel,
    pub api: ApiConfig,
    pub image: ImageConfig,
    pub network: NetworkConfig,
    pub runtime: RuntimeConfig,
    pub streaming: StreamingConfig,
    pub metrics: MetricsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            root: PathBuf::from("/var/lib/crius"),
            runroot: PathBuf::from("/run/crius"),
            log_level: LogLevel::Info,
            api: ApiConfig::default(),
            image: ImageConfig::default(),
            network: NetworkConfig::default(),
            runtime: RuntimeConfig::default(),
            streaming: StreamingConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

/// `[api]`: the CRI gRPC server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct ApiConfig {
    /// Unix socket path (absolute).
    pub listen: PathBuf,
    /// Largest gRPC message accepted, in bytes.
    pub grpc_max_recv_msg_size: usize,
    /// Largest gRPC message sent, in bytes.
    pub grpc_max_send_msg_size: usize,
}

/// 16 MiB, as cri-o and containerd use: large `ListContainers` answers need more than gRPC's 4 MiB.
const DEFAULT_GRPC_MSG_SIZE: usize = 16 * 1024 * 1024;

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: PathBuf::from("/run/crius/crius.sock"),
            grpc_max_recv_msg_size: DEFAULT_GRPC_MSG_SIZE,
            grpc_max_send_msg_size: DEFAULT_GRPC_MSG_SIZE,
        }
    }
}

/// `[network]`: pod networking through CNI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct NetworkConfig {
    /// Directory of CNI network configurations (`.conflist`, `.conf`, `.json`).
    pub network_dir: PathBuf,
    /// Directories searched for CNI plugin binaries, in order.
    pub plugin_dirs: Vec<PathBuf>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            network_dir: PathBuf::from("/etc/cni/net.d"),
            // Debian's containernetworking-plugins, then the upstream location.
            plugin_dirs: vec![PathBuf::from("/usr/lib/cni"), PathBuf::from("/opt/cni/bin")],
        }
    }
}

/// `[image]`: image pulls and registries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct ImageConfig {
    /// Registries tried in order for short names (`busybox`); each a `host[:port]`.
    pub unqualified_search_registries: Vec<String>,
    /// Parallel layer downloads per pull, `1..=64`.
    pub max_concurrent_downloads: u32,
    /// Whole-pull time limit; zero means no limit (see [`ImageConfig::pull_time_limit`]).
    #[serde(with = "humantime_duration")]
    pub pull_timeout: Duration,
    /// Registry credentials in docker `config.json` format; a missing file means none.
    pub auth_file: PathBuf,
    /// `<certs_dir>/<host[:port]>/{ca.crt,client.cert,client.key}`.
    pub certs_dir: PathBuf,
    /// Per-registry settings keyed by `host[:port]` as written in image names.
    pub registries: BTreeMap<String, RegistryConfig>,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            unqualified_search_registries: vec!["docker.io".to_owned()],
            max_concurrent_downloads: 3,
            pull_timeout: Duration::from_secs(600),
            auth_file: PathBuf::from("/etc/crius/auth.json"),
            certs_dir: PathBuf::from("/etc/crius/certs.d"),
            registries: BTreeMap::new(),
        }
    }
}

impl ImageConfig {
    /// `pull_timeout` as an optional limit: `None` when it is zero ("0s" = no timeout).
    pub fn pull_time_limit(&self) -> Option<Duration> {
        (!self.pull_timeout.is_zero()).then_some(self.pull_timeout)
    }
}

/// Log verbosity, lowest volume first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];

    /// The name used in the config file and on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of [`LogLevel::from_str`]; its message lists the accepted values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid log level {0:?}: expected one of error, warn, info, debug, trace")]
pub struct ParseLogLevelError(pub String);

impl FromStr for LogLevel {
    type Err = ParseLogLevelError;

    /// Case-insensitive, so `--log-level DEBUG` works as people type it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LogLevel::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseLogLevelError(s.to_owned()))
    }
}

impl From<LogLevel> for tracing::Level {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Trace => tracing::Level::TRACE,
        }
    }
}

/// Paths of the files to read: the main file, then the sorted `*.toml` drop-ins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSources {
    pub main: PathBuf,
    pub drop_in_dir: PathBuf,
}

impl Default for ConfigSources {
    fn default() -> Self {
        ConfigSources {
            main: PathBuf::from(DEFAULT_CONFIG_FILE),
            drop_in_dir: PathBuf::from(DEFAULT_DROP_IN_DIR),
        }
    }
}

/// What command-line flags can override (`None` = flag not given).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Overrides {
    pub listen: Option<PathBuf>,
    pub root: Option<PathBuf>,
    pub runroot: Option<PathBuf>,
    pub log_level: Option<LogLevel>,
}

/// Where the value of a key came from; errors name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default (no file or flag set the key).
    Default,
    /// The last file that set the key.
    File(PathBuf),
    /// A command-line flag, e.g. `--listen`.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in default"),
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// A configuration error; `Display` is the full message shown to the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or the drop-in directory exists but cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file is not valid TOML.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A key is unknown, has the wrong type or an invalid value; `origin` set it.
    #[error("{origin}: {key}: {message}")]
    Key {
        origin: Origin,
        key: String,
        message: String,
    },
}

/// (De)serialises a `Duration` as a humantime string ("10m", "1h 30s", "0s").
mod humantime_duration {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_str(DurationVisitor)
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(r#"a duration string such as "90s", "10m" or "1h 30m""#)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            humantime::parse_duration(v).map_err(|e| {
                E::custom(format_args!(
                    r#"invalid duration {v:?}: {e} (expected e.g. "90s", "10m", "1h 30m")"#
                ))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_level_parses_flag_values() {
        for level in LogLevel::ALL {
            assert_eq!(level.as_str().parse::<LogLevel>(), Ok(level));
            assert_eq!(level.to_string(), level.as_str());
        }
        assert_eq!("DEBUG".parse::<LogLevel>(), Ok(LogLevel::Debug));
        let err = "verbose".parse::<LogLevel>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid log level "verbose": expected one of error, warn, info, debug, trace"#
        );
    }

    #[test]
    fn log_level_serialises_lowercase() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct W {
            level: LogLevel,
        }
        let text = toml::to_string(&W {
            level: LogLevel::Warn,
        })
        .unwrap();
        assert_eq!(text.trim(), r#"level = "warn""#);
        assert_eq!(toml::from_str::<W>(&text).unwrap().level, LogLevel::Warn);
        assert_eq!(tracing::Level::from(LogLevel::Trace), tracing::Level::TRACE);
    }

    #[test]
    fn defaults_match_the_documented_schema() {
        let c = Config::default();
        assert_eq!(c.root, PathBuf::from("/var/lib/crius"));
        assert_eq!(c.runroot, PathBuf::from("/run/crius"));
        assert_eq!(c.log_level, LogLevel::Info);
        assert_eq!(c.api.listen, PathBuf::from("/run/crius/crius.sock"));
        assert_eq!(c.api.grpc_max_recv_msg_size, 16_777_216);
        assert_eq!(c.api.grpc_max_send_msg_size, 16_777_216);
        assert_eq!(c.image.unqualified_search_registries, ["docker.io"]);
        assert_eq!(c.image.max_concurrent_downloads, 3);
        assert_eq!(c.image.pull_timeout, Duration::from_secs(600));
        assert_eq!(c.image.auth_file, PathBuf::from("/etc/crius/auth.json"));
        assert_eq!(c.image.certs_dir, PathBuf::from("/etc/crius/certs.d"));
        assert!(c.image.registries.is_empty());
        assert_eq!(
            ConfigSources::default().main,
            PathBuf::from(DEFAULT_CONFIG_FILE)
        );
        assert_eq!(
            ConfigSources::default().drop_in_dir,
            PathBuf::from(DEFAULT_DROP_IN_DIR)
        );
    }
}
