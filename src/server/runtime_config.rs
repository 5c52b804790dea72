//! `RuntimeConfig`: the cgroup driver, which the kubelet (and critest) must match.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::config::runtime::CgroupDriver;

pub async fn handle(
    server: &CriServer,
    _request: api::RuntimeConfigRequest,
) -> Result<api::RuntimeConfigResponse, Status> {
    let cgroup_driver = match server.engine.cgroup_driver {
        CgroupDriver::Cgroupfs => api::CgroupDriver::Cgroupfs,
        CgroupDriver::Systemd => api::CgroupDriver::Systemd,
    };
    Ok(api::RuntimeConfigResponse {
        linux: Some(api::LinuxRuntimeConfiguration {
            cgroup_driver: cgroup_driver as i32,
        }),
    })
}
