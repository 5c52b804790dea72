//! `PodSandboxStatus`.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::sandbox::status;

pub async fn handle(
    server: &CriServer,
    request: api::PodSandboxStatusRequest,
) -> Result<api::PodSandboxStatusResponse, Status> {
    let sandbox = server.engine.sandbox(&request.pod_sandbox_id)?;
    let record = sandbox.record();
    if !status::visible(&record) {
        return Err(Status::not_found(format!(
            "pod sandbox {} not found",
            request.pod_sandbox_id
        )));
    }
    Ok(status::status(&server.engine, &record, request.verbose)?)
}
