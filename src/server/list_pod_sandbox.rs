//! `ListPodSandbox` with the id (prefix), state and label filters.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::sandbox::status;

pub async fn handle(
    server: &CriServer,
    request: api::ListPodSandboxRequest,
) -> Result<api::ListPodSandboxResponse, Status> {
    let filter = request.filter.unwrap_or_default();
    let mut items = Vec::new();
    for sandbox in server.engine.sandboxes() {
        let record = sandbox.record();
        if !status::visible(&record) {
            continue;
        }
        let state = status::state(&record);
        if status::matches(&record, state, &filter) {
            items.push(status::summary(&record, state)?);
        }
    }
    Ok(api::ListPodSandboxResponse { items })
}
