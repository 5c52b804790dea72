//! `StreamContainers`: `ListContainers`' containers in bounded-size messages.

use tonic::Status;

use super::CriServer;
use super::rpc::{self, ServerStream};
use crate::api;

pub async fn handle(
    server: &CriServer,
    request: api::StreamContainersRequest,
) -> Result<ServerStream<api::StreamContainersResponse>, Status> {
    let list = api::ListContainersRequest {
        filter: request.filter,
    };
    let containers = super::list_containers::handle(server, list)
        .await?
        .containers;
    Ok(rpc::stream_of(containers, |containers| {
        api::StreamContainersResponse { containers }
    }))
}
