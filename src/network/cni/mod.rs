//! Running CNI plugins for pod sandboxes: ADD and DEL of a network configuration list,
//! as libcni does it (chained plugins, `prevResult`, `runtimeConfig` from capabilities), with
//! the ADD result cached on disk so DEL works after a daemon restart.
//!
//! Types: the `cni-plugin` crate's types were considered and not used. That crate is built for
//! writing plugins (plugin side), drags in extra dependencies (`ipnetwork`, `macaddr`, `semver`,
//! async helpers) and models configurations strictly, while the runtime side must pass plugin
//! configurations and results through unchanged (unknown fields included). So configurations
//! stay raw `serde_json::Value`s and results are parsed into the few small serde types in
//! [`result`], keeping the raw JSON alongside for `prevResult`.
//!
//! Everything here is synchronous (`std::process`); the daemon calls it from `spawn_blocking`.

pub mod cache;
pub mod config;
pub mod exec;
pub mod result;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use config::CniNetwork;
pub use exec::PluginError;
pub use result::CniResult;

/// Errors of loading network configurations and running plugins.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("reading CNI network configuration {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid CNI network configuration {path}: {msg}")]
    InvalidConfig { path: PathBuf, msg: String },
    #[error("CNI plugin {plugin:?} not found in plugin directories [{dirs}]")]
    PluginNotFound { plugin: String, dirs: String },
    #[error("running CNI plugin {plugin} ({command}): {source}")]
    Exec {
        plugin: String,
        command: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("CNI plugin {plugin} failed ({command}): {error}")]
    Plugin {
        plugin: String,
        command: &'static str,
        error: PluginError,
    },
    #[error("CNI plugin {plugin} ({command}) returned an invalid result: {msg}")]
    InvalidResult {
        plugin: String,
        command: &'static str,
        msg: String,
    },
    #[error("CNI result cache {path}: {msg}")]
    Cache { path: PathBuf, msg: String },
}

/// One pod's attachment to a network.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    pub container_id: &'a str,
    /// Path of the network namespace (`/var/run/netns/...`); may be gone by DEL time.
    pub netns: &'a Path,
    /// Interface name inside the namespace, normally `eth0`.
    pub ifname: &'a str,
    /// `CNI_ARGS`: `K8S_POD_NAMESPACE`, `K8S_POD_NAME`, `K8S_POD_INFRA_CONTAINER_ID`,
    /// `K8S_POD_UID`, `IgnoreUnknown=1`, ...
    pub args: Vec<(String, String)>,
    /// Capability arguments, e.g. `{"portMappings": [{"hostPort": 8080, "containerPort": 80,
    /// "protocol": "tcp"}]}`; each plugin gets, as `runtimeConfig`, those its `capabilities`
    /// map enables.
    pub capability_args: Map<String, Value>,
}

/// The CNI plugin runner.
#[derive(Debug, Clone)]
pub struct Cni {
    plugin_dirs: Vec<PathBuf>,
    cache_dir: PathBuf,
}

impl Cni {
    pub fn new(plugin_dirs: Vec<PathBuf>, cache_dir: PathBuf) -> Cni {
        Cni {
            plugin_dirs,
            cache_dir,
        }
    }

    /// ADD the attachment to every plugin of `net` in order, each getting the previous one's
    /// result as `prevResult`. On a failure of plugin k, DEL runs for plugins k..=0 (reverse)
    /// so nothing stays allocated, and the error of plugin k is returned. The final result is
    /// cached for DEL.
    pub fn add(&self, net: &CniNetwork, a: &Attachment) -> Result<CniResult, CniError> {
        let mut prev: Option<Value> = None;
        for (k, plugin) in net.plugins.iter().enumerate() {
            match self.run(net, plugin, exec::Command::Add, a, prev.as_ref()) {
                Ok(Some(result)) => prev = Some(result),
                Ok(None) => {
                    let err = CniError::InvalidResult {
                        plugin: config::plugin_type(plugin).to_string(),
                        command: exec::Command::Add.as_str(),
                        msg: "empty output".to_string(),
                    };
                    self.rollback(net, a, k, prev.as_ref());
                    return Err(err);
                }
                Err(err) => {
                    self.rollback(net, a, k, prev.as_ref());
                    return Err(err);
                }
            }
        }
        let raw = prev.unwrap_or_else(|| Value::Object(Map::new()));
        let last = net.plugins.len().saturating_sub(1);
        let result = match CniResult::parse(raw.clone()) {
            Ok(r) => r,
            Err(msg) => {
                self.rollback(net, a, last, Some(&raw));
                return Err(CniError::InvalidResult {
                    plugin: net
                        .plugins
                        .last()
                        .map(config::plugin_type)
                        .unwrap_or_default()
                        .to_string(),
                    command: exec::Command::Add.as_str(),
                    msg,
                });
            }
        };
        let cache_phase = crate::phases::timer("cni", "cache");
        let cached = cache::write(
            &self.cache_dir,
            &net.name,
            a.container_id,
            a.ifname,
            &raw,
            &a.capability_args,
        );
        drop(cache_phase);
        if let Err(err) = cached {
            self.rollback(net, a, last, Some(&raw));
            return Err(err);
        }
        Ok(result)
    }

    /// DEL plugins `k..=0` after a failed ADD; errors are only logged.
    fn rollback(&self, net: &CniNetwork, a: &Attachment, k: usize, prev: Option<&Value>) {
        for plugin in net.plugins[..=k.min(net.plugins.len().saturating_sub(1))]
            .iter()
            .rev()
        {
            if let Err(err) = self.run(net, plugin, exec::Command::Del, a, prev) {
                tracing::warn!(
                    network = %net.name,
                    container_id = a.container_id,
                    "rolling back a failed CNI ADD: {err}"
                );
            }
        }
    }

    /// DEL every plugin in reverse order with the cached result as `prevResult`. Works when the
    /// namespace is gone (`CNI_NETNS` is then empty) and when nothing is cached; every plugin
    /// is tried, the first error is returned and the cache entry is kept for a retry;
    /// the capability arguments of the cached ADD are used when there are any;
    /// on success the cache entry is removed. Idempotent.
    pub fn del(&self, net: &CniNetwork, a: &Attachment) -> Result<(), CniError> {
        let cached = cache::read(&self.cache_dir, &net.name, a.container_id, a.ifname)?;
        // DEL repeats the ADD's capability arguments (portmap needs its port mappings to
        // remove its rules), so the cached ones win over the caller's after a restart.
        let cached_caps;
        let a = match &cached {
            Some(c) if !c.capability_args.is_empty() => {
                cached_caps = Attachment {
                    capability_args: c.capability_args.clone(),
                    ..a.clone()
                };
                &cached_caps
            }
            _ => a,
        };
        let prev = cached.as_ref().map(|c| &c.result);
        let mut first_err = None;
        for plugin in net.plugins.iter().rev() {
            if let Err(err) = self.run(net, plugin, exec::Command::Del, a, prev) {
                tracing::warn!(network = %net.name, container_id = a.container_id, "{err}");
                first_err.get_or_insert(err);
            }
        }
        match first_err {
            Some(err) => Err(err),
            None => cache::remove(&self.cache_dir, &net.name, a.container_id, a.ifname),
        }
    }

    fn run(
        &self,
        net: &CniNetwork,
        plugin: &Value,
        command: exec::Command,
        a: &Attachment,
        prev: Option<&Value>,
    ) -> Result<Option<Value>, CniError> {
        let conf = config::plugin_stdin(net, plugin, prev, &a.capability_args);
        let netns = if command == exec::Command::Del && !a.netns.exists() {
            Path::new("")
        } else {
            a.netns
        };
        exec::run_plugin(
            &self.plugin_dirs,
            config::plugin_type(plugin),
            command,
            &exec::Env {
                container_id: a.container_id,
                netns,
                ifname: a.ifname,
                args: &a.args,
            },
            &conf,
        )
    }
}
