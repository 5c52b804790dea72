//! PodSandboxStats / ListPodSandboxStats: the pod's containers' stats, the pod's CPU, memory and
//! process count as the sum of its containers and its pause process' cgroup (if it has one),
//! and the pod network's counters read from its network namespace (`pod::NetDev`).

use crate::api;
use crate::container::stats::{self as container_stats, CgroupUsage};
use crate::container::status as container_status;
use crate::engine::{Engine, PodError, Sandbox};
use crate::pod::NetDev;
use crate::store::now_nanos;

/// The interface CNI gives every pod.
const POD_INTERFACE: &str = "eth0";

pub async fn stats(engine: &Engine, sandbox: &Sandbox) -> Result<api::PodSandboxStats, PodError> {
    let record = sandbox.record();
    let config = crate::pod::pod_config(&record)?;
    let mut containers = Vec::new();
    let mut processes = Vec::new();
    for c in engine.containers_of(&sandbox.id) {
        if container_status::visible(&c.record()) {
            let (stats, count) = container_stats::stats_and_processes(engine, &c).await?;
            containers.push(stats);
            processes.push(count);
        }
    }
    // The pause process' own cgroup counts too: the pod is more than its containers.
    let pause_dir = crate::oci::cgroup_dir(&record.cgroup_parent, &record.id)?;
    let no_pause = record.no_pause;
    let net_dev = NetDev::of(engine, &record);
    let (pause_cg, net_dev) = tokio::task::spawn_blocking(move || {
        let pause_cg = match no_pause {
            true => None,
            false => container_stats::read_cgroup(&pause_dir),
        };
        (pause_cg, net_dev.and_then(|n| n.read()))
    })
    .await?;
    let at = now_nanos();
    let pause = CgroupUsage::of(engine, &record.id, pause_cg.as_ref(), at);
    processes.push(pause.processes);
    let network = net_dev.map(|text| network_usage(&text, at));
    // Pause and containers together, over the parts that have the value: an exited
    // container's cgroup may be gone (systemd removes an empty scope at once), and then it adds
    // nothing. Unknown only when no part knows it.
    let sum = |of_pause: Option<u64>,
               f: fn(&api::ContainerStats) -> Option<u64>|
     -> Option<api::UInt64Value> {
        let known: Vec<u64> = containers.iter().filter_map(f).chain(of_pause).collect();
        (!known.is_empty()).then(|| api::UInt64Value {
            value: known.iter().sum(),
        })
    };
    let pause_cpu = pause.cpu.as_ref();
    let pause_mem = pause.memory.as_ref();
    let v = |x: Option<&api::UInt64Value>| x.map(|v| v.value);
    let cpu = api::CpuUsage {
        timestamp: at,
        usage_core_nano_seconds: sum(
            pause_cpu.map_or(v(None), |c| v(c.usage_core_nano_seconds.as_ref())),
            |c| c.cpu.as_ref()?.usage_core_nano_seconds.map(|v| v.value),
        ),
        usage_nano_cores: sum(
            pause_cpu.map_or(v(None), |c| v(c.usage_nano_cores.as_ref())),
            |c| c.cpu.as_ref()?.usage_nano_cores.map(|v| v.value),
        ),
        psi: None,
    };
    let memory = api::MemoryUsage {
        timestamp: at,
        working_set_bytes: sum(
            pause_mem.map_or(v(None), |m| v(m.working_set_bytes.as_ref())),
            |c| c.memory.as_ref()?.working_set_bytes.map(|v| v.value),
        ),
        available_bytes: None,
        usage_bytes: sum(
            pause_mem.map_or(v(None), |m| v(m.usage_bytes.as_ref())),
            |c| c.memory.as_ref()?.usage_bytes.map(|v| v.value),
        ),
        rss_bytes: sum(
            pause_mem.map_or(v(None), |m| v(m.rss_bytes.as_ref())),
            |c| c.memory.as_ref()?.rss_bytes.map(|v| v.value),
        ),
        page_faults: sum(
            pause_mem.map_or(v(None), |m| v(m.page_faults.as_ref())),
            |c| c.memory.as_ref()?.page_faults.map(|v| v.value),
        ),
        major_page_faults: sum(
            pause_mem.map_or(v(None), |m| v(m.major_page_faults.as_ref())),
            |c| c.memory.as_ref()?.major_page_faults.map(|v| v.value),
        ),
        psi: None,
    };
    // Processes of every part that still has a cgroup (an exited container's is gone).
    let counted: Vec<u64> = processes.into_iter().flatten().collect();
    let process = (!counted.is_empty()).then(|| api::ProcessUsage {
        timestamp: at,
        process_count: Some(api::UInt64Value {
            value: counted.iter().sum(),
        }),
    });
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
            process,
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
        || crate::pod::pod_config(&record)
            .map(|c| crate::pod::labels_match(&c.labels, &filter.label_selector))
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
