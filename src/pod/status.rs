//! A sandbox's `PodSandboxStatus` as the CRI shows it, from its record alone: what
//! PodSandboxStatus answers and what every container event carries (`container::events`),
//! so it sits below both `sandbox/` and `container/`.

use crate::api;
use crate::engine::PodError;
use crate::proc_info;
use crate::store::{SandboxPhase, SandboxRecord};

use super::{namespace_options, pod_config};

/// READY while set up and, for a pod with one, its pause process lives; NOTREADY otherwise.
pub fn sandbox_state(record: &SandboxRecord) -> api::PodSandboxState {
    let alive = record.no_pause
        || record
            .pause
            .is_some_and(|p| proc_info::is_alive(p.pid, p.start_time));
    if record.phase == SandboxPhase::Ready && alive {
        api::PodSandboxState::SandboxReady
    } else {
        api::PodSandboxState::SandboxNotready
    }
}

/// The status without the verbose info: a decode of the kept request, a look at the pause
/// process, no file read.
pub fn sandbox_status(record: &SandboxRecord) -> Result<api::PodSandboxStatus, PodError> {
    let config = pod_config(record)?;
    let network = record
        .network
        .as_ref()
        .map(|n| api::PodSandboxNetworkStatus {
            ip: n.ips.first().cloned().unwrap_or_default(),
            additional_ips: n
                .ips
                .iter()
                .skip(1)
                .map(|ip| api::PodIp { ip: ip.clone() })
                .collect(),
        });
    Ok(api::PodSandboxStatus {
        id: record.id.clone(),
        metadata: config.metadata.clone(),
        state: sandbox_state(record) as i32,
        created_at: record.created_at,
        network: Some(network.unwrap_or_default()),
        linux: Some(api::LinuxPodSandboxStatus {
            namespaces: Some(api::Namespace {
                options: Some(namespace_options(&config)),
            }),
        }),
        labels: config.labels,
        annotations: config.annotations,
        runtime_handler: record.runtime_handler.clone(),
    })
}
