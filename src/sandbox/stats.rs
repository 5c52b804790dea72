//! PodSandboxStats / ListPodSandboxStats: the pod's containers' stats and their sums, and the
//! pod network's counters read from `/proc/<pause pid>/net/dev` (the pod's network namespace).

use crate::api;
use crate::container::{stats as container_stats, status as container_status};
use crate::engine::{Engine, PodError, Sandbox};
use crate::proc_info;
use crate::store::now_nanos;

/// The interface CNI gives every pod.
const POD_INTERFACE: &str = "eth0";

pub async fn stats(engine: &Engine, sandbox: &Sandbox) -> Result<api::PodSandboxStats, PodError> {
    let record = sandbox.record();
    let config = super::context::pod_config(&record)?;
    let mut containers = Vec::new();
    for c in engine.containers_of(&sandbox.id) {
        if container_status::visible(&c.record()) {
            containers.push(container_stats::stats(engine, &c).await?);
        }
    }
    let at = now_nanos();
    let network = match (record.pause, record.pinned.net.is_some()) {
        (Some(p), true) if proc_info::is_alive(p.pid, p.start_time) => {
            std::fs::read_to_string(format!("/proc/{}/net/dev", p.pid))
                .ok()
                .map(|text| network_usage(&text, at))
        }
        _ => None,
    };
    let sum = |f: fn(&api::ContainerStats) -> Option<u64>| -> Option<api::UInt64Value> {
        let values: Option<Vec<u64>> = containers.iter().map(f).collect();
        values.filter(|v| !v.is_empty()).map(|v| api::UInt64Value {
            value: v.iter().sum(),
        })
    };
    let cpu = api::CpuUsage {
        timestamp: at,
        usage_core_nano_seconds: sum(|c| c.cpu.as_ref()?.usage_core_nano_seconds.map(|v| v.value)),
        usage_nano_cores: sum(|c| c.cpu.as_ref()?.usage_nano_cores.map(|v| v.value)),
        psi: None,
    };
    let memory = api::MemoryUsage {
        timestamp: at,
        working_set_bytes: sum(|c| c.memory.as_ref()?.working_set_bytes.map(|v| v.value)),
        available_bytes: None,
        usage_bytes: sum(|c| c.memory.as_ref()?.usage_bytes.map(|v| v.value)),
        rss_bytes: sum(|c| c.memory.as_ref()?.rss_bytes.map(|v| v.value)),
        page_faults: sum(|c| c.memory.as_ref()?.page_faults.map(|v| v.value)),
        major_page_faults: sum(|c| c.memory.as_ref()?.major_page_faults.map(|v| v.value)),
        psi: None,
    };
    Ok(api::PodSandboxStats {
        attributes: Some(api::PodSandboxAttributes {
            id: record.id.clone(),
            metadata: config.metadata,
            labels: config.labels,
            annotations: config.annotations,
        }),
        linux: Some(api::LinuxPodSandboxStats {
            cpu: Some(cpu),
            memory: Some(memory),
            network,
            process: None,
            containers,
            io: None,
        }),
        windows: None,
    })
}

/// `/proc/net/dev` → per-interface counters; `eth0` is the default interface, `lo` is left out.
fn network_usage(text: &str, at: i64) -> api::NetworkUsage {
    let interfaces: Vec<api::NetworkInterfaceUsage> = text
        .lines()
        .skip(2)
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let n: Vec<u64> = counters
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            let value = |i: usize| n.get(i).map(|&value| api::UInt64Value { value });
            Some(api::NetworkInterfaceUsage {
                name: name.trim().to_owned(),
                rx_bytes: value(0),
                rx_errors: value(2),
                tx_bytes: value(8),
                tx_errors: value(10),
            })
        })
        .filter(|i| i.name != "lo")
        .collect();
    api::NetworkUsage {
        timestamp: at,
        default_interface: interfaces.iter().find(|i| i.name == POD_INTERFACE).cloned(),
        interfaces,
    }
}

/// Whether a sandbox passes a `PodSandboxStatsFilter`.
pub fn matches(sandbox: &Sandbox, filter: &api::PodSandboxStatsFilter) -> bool {
    let record = sandbox.record();
    if !filter.id.is_empty() && !record.id.starts_with(&filter.id) {
        return false;
    }
    filter.label_selector.is_empty()
        || super::context::pod_config(&record)
            .map(|c| super::status::labels_match(&c.labels, &filter.label_selector))
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_is_parsed_without_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    5000      40    2    0    0     0          0         0     7000      50    3    0    0     0       0          0
";
        let usage = network_usage(text, 7);
        assert_eq!(usage.interfaces.len(), 1);
        let eth0 = usage.default_interface.unwrap();
        assert_eq!(eth0.name, "eth0");
        assert_eq!(
            (
                eth0.rx_bytes.unwrap().value,
                eth0.rx_errors.unwrap().value,
                eth0.tx_bytes.unwrap().value,
                eth0.tx_errors.unwrap().value
            ),
            (5000, 2, 7000, 3)
        );
    }
}
