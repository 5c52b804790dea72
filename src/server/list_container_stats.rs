//! `ListContainerStats` with the id, sandbox and label filters.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container::{stats, status};

pub async fn handle(
    server: &CriServer,
    request: api::ListContainerStatsRequest,
) -> Result<api::ListContainerStatsResponse, Status> {
    let filter = request.filter.unwrap_or_default();
    let mut out = Vec::new();
    for c in server.engine.containers() {
        if status::visible(&c.record()) && stats::matches(&c, &filter) {
            out.push(stats::stats(&server.engine, &c).await?);
        }
    }
    Ok(api::ListContainerStatsResponse { stats: out })
}
