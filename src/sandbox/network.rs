//! The pod's network: CNI ADD of the default network into the pinned network namespace at
//! RunPodSandbox, CNI DEL at stop, removal and after a failed or crashed start. (The loopback
//! interface is brought up in-process when the namespaces are pinned: `ns_setup`.)
//!
//! The DEL is recorded as owed (`attached`) before the ADD runs, so a crash half-way still
//! leads to a DEL at recovery; CNI plugins must take DEL of things they never made.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::namespaces;
use crate::api;
use crate::engine::{Engine, PodError, Sandbox};
use crate::network::cni::{Attachment, CniNetwork};
use crate::pod::pod_config;
use crate::store::{NetworkState, SandboxRecord};

const IFNAME: &str = "eth0";

/// The default network a new pod joins: FAILED_PRECONDITION (the network is not ready) when
/// none is configured. Loaded before the pod is recorded, whose record then owes its DEL.
pub async fn default_network(engine: &Engine) -> Result<CniNetwork, PodError> {
    let dir = engine.config.network.network_dir.clone();
    tokio::task::spawn_blocking(move || CniNetwork::load_default(&dir))
        .await?
        .map_err(|e| PodError::FailedPrecondition(e.to_string()))?
        .ok_or_else(|| {
            PodError::FailedPrecondition(format!(
                "no CNI network configuration in {}: the network is not ready",
                engine.config.network.network_dir.display()
            ))
        })
}

/// What a new pod's record says of `net` before its ADD runs: a DEL is owed from then on, so
/// that a crash half-way still leads to one at recovery.
pub fn owed(net: &CniNetwork) -> NetworkState {
    NetworkState {
        network: net.name.clone(),
        ips: Vec::new(),
        attached: true,
    }
}

/// CNI ADD of the pod to `net` (its record already owes the DEL: [`owed`]); returns the primary
/// IP. The IPs are kept in memory: the record that makes the pod READY stores them, and a crash
/// before it undoes the pod anyway.
pub async fn attach(
    engine: &Arc<Engine>,
    sandbox: &Sandbox,
    net: CniNetwork,
    config: &api::PodSandboxConfig,
) -> Result<Option<IpAddr>, PodError> {
    let record = sandbox.record();
    let netns = record
        .pinned
        .net
        .clone()
        .ok_or_else(|| PodError::Internal("the pod has no network namespace".into()))?;
    let engine2 = engine.clone();
    let config = config.clone();
    let id = record.id.clone();
    // Each plugin run is a part of the request's phases (`cni.<type>`).
    let result = tokio::task::spawn_blocking(crate::phases::carry_blocking(move || {
        let a = attachment(&id, &netns, &config);
        engine2
            .cni
            .add(&net, &a)
            .map_err(|e| PodError::internal(format!("CNI network {:?}", net.name), e))
    }))
    .await??;
    let ips: Vec<IpAddr> = [false, true]
        .into_iter()
        .filter_map(|v6| result.first_ip(v6))
        .collect();
    engine.amend_sandbox(sandbox, |r| {
        if let Some(n) = r.network.as_mut() {
            n.ips = ips.iter().map(ToString::to_string).collect();
        }
    });
    Ok(ips.first().copied())
}

/// CNI DEL if one is owed; idempotent. Runs after a restart too (the ADD result is cached).
pub async fn detach(engine: &Arc<Engine>, sandbox: &Sandbox) -> Result<(), PodError> {
    let record = sandbox.record();
    let Some(state) = record.network.clone().filter(|n| n.attached) else {
        return Ok(());
    };
    let engine2 = engine.clone();
    let rec = record.clone();
    tokio::task::spawn_blocking(crate::phases::carry_blocking(move || {
        del(&engine2, &rec, &state.network)
    }))
    .await??;
    engine
        .save_sandbox(sandbox, |r| {
            if let Some(n) = r.network.as_mut() {
                n.attached = false;
            }
        })
        .await?;
    Ok(())
}

fn del(engine: &Engine, record: &SandboxRecord, network: &str) -> Result<(), PodError> {
    let config = pod_config(record)?;
    // A crash before the pins were recorded: they are named after the pod. A path that holds
    // no namespace (a crash between making the file and mounting on it, or the namespace
    // already unpinned) is passed as none: plugins clean up by container id then, while a
    // plain file would make them fail.
    let netns = record
        .pinned
        .net
        .clone()
        .or_else(|| namespaces::pins_of(&engine.paths.ns_dir(), &record.id).net)
        .filter(|path| namespaces::holds_namespace(path))
        .unwrap_or_default();
    let a = attachment(&record.id, &netns, &config);
    match find_network(&engine.config.network.network_dir, network) {
        Some(net) => engine
            .cni
            .del(&net, &a)
            .map_err(|e| PodError::internal(format!("CNI DEL of network {network:?}"), e))?,
        None => tracing::warn!(
            sandbox = %record.id,
            "CNI network {network:?} is no longer configured; its DEL is skipped"
        ),
    }
    Ok(())
}

/// The configuration named `name`: the default one if it has that name, else any file in `dir`.
fn find_network(dir: &Path, name: &str) -> Option<CniNetwork> {
    if let Ok(Some(net)) = CniNetwork::load_default(dir)
        && net.name == name
    {
        return Some(net);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| CniNetwork::load(p).ok())
        .find(|n| n.name == name)
}

fn attachment<'a>(id: &'a str, netns: &'a Path, config: &api::PodSandboxConfig) -> Attachment<'a> {
    let meta = config.metadata.clone().unwrap_or_default();
    let args = vec![
        ("IgnoreUnknown".to_owned(), "1".to_owned()),
        ("K8S_POD_NAMESPACE".to_owned(), meta.namespace),
        ("K8S_POD_NAME".to_owned(), meta.name),
        ("K8S_POD_INFRA_CONTAINER_ID".to_owned(), id.to_owned()),
        ("K8S_POD_UID".to_owned(), meta.uid),
    ];
    let mut capability_args = Map::new();
    let ports = port_mappings(config);
    if !ports.is_empty() {
        capability_args.insert("portMappings".to_owned(), Value::Array(ports));
    }
    Attachment {
        container_id: id,
        netns,
        ifname: IFNAME,
        args,
        capability_args,
    }
}

/// The CNI `portMappings` capability: host ports only (a mapping without one is not published).
fn port_mappings(config: &api::PodSandboxConfig) -> Vec<Value> {
    config
        .port_mappings
        .iter()
        .filter(|p| p.host_port > 0)
        .map(|p| {
            let protocol = match api::Protocol::try_from(p.protocol) {
                Ok(api::Protocol::Udp) => "udp",
                Ok(api::Protocol::Sctp) => "sctp",
                _ => "tcp",
            };
            let mut m = json!({
                "hostPort": p.host_port,
                "containerPort": p.container_port,
                "protocol": protocol,
            });
            if !p.host_ip.is_empty() {
                m["hostIP"] = json!(p.host_ip);
            }
            m
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_host_ports_are_published() {
        let config = api::PodSandboxConfig {
            port_mappings: vec![
                api::PortMapping {
                    protocol: api::Protocol::Udp as i32,
                    container_port: 53,
                    host_port: 5353,
                    host_ip: "127.0.0.1".into(),
                },
                api::PortMapping {
                    protocol: 0,
                    container_port: 80,
                    host_port: 0,
                    host_ip: String::new(),
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            port_mappings(&config),
            vec![
                json!({"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"})
            ]
        );
    }
}
