//! `ExecSync`: runs a command in a running container, killing it at the timeout
//! (DeadlineExceeded, as the kubelet's probes expect).

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container;

pub async fn handle(
    server: &CriServer,
    request: api::ExecSyncRequest,
) -> Result<api::ExecSyncResponse, Status> {
    let c = server.engine.container(&request.container_id)?;
    Ok(container::exec::exec_sync(&server.engine, &c, request.cmd, request.timeout).await?)
}
