//! `RuntimeConfig`: the cgroup driver, which the kubelet (and critest) must match.

use tonic::Status;

use super::CriServer;
use crate::api;

pub async fn handle(
    _server: &CriServer,
    _request: api::RuntimeConfigRequest,
) -> Result<api::RuntimeConfigResponse, Status> {
    // crius manages cgroups through the file system (cgroupfs); the systemd driver is not built.
    Ok(api::RuntimeConfigResponse {
        linux: Some(api::LinuxRuntimeConfiguration {
            cgroup_driver: api::CgroupDriver::Cgroupfs as i32,
        }),
    })
}
