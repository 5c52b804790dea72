//! `RuntimeConfig`: the cgroup driver, which the kubelet (and critest) must match.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::libcontainer::cgroups::Driver;

pub async fn handle(
    server: &CriServer,
    _request: api::RuntimeConfigRequest,
) -> Result<api::RuntimeConfigResponse, Status> {
    let cgroup_driver = match server.engine.runtimes.cgroup_driver {
        Driver::Cgroupfs => api::CgroupDriver::Cgroupfs,
        Driver::Systemd => api::CgroupDriver::Systemd,
    };
    Ok(api::RuntimeConfigResponse {
        linux: Some(api::LinuxRuntimeConfiguration {
            cgroup_driver: cgroup_driver as i32,
        }),
    })
}
