//! `ListContainers` with the id, sandbox, state and label filters.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container::status;

pub async fn handle(
    server: &CriServer,
    request: api::ListContainersRequest,
) -> Result<api::ListContainersResponse, Status> {
    let filter = request.filter.unwrap_or_default();
    let mut containers = Vec::new();
    for c in server.engine.containers() {
        if !status::visible(&c.record()) {
            continue;
        }
        let (state, _) = status::state(&server.engine, &c);
        if status::matches(&c, state, &filter) {
            containers.push(status::summary(&c, state)?);
        }
    }
    Ok(api::ListContainersResponse { containers })
}
