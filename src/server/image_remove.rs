//! `RemoveImage`: by id, tag or digest; absent images succeed.

use tonic::Status;

use super::CriServer;
use crate::api;

pub async fn handle(
    server: &CriServer,
    request: api::RemoveImageRequest,
) -> Result<api::RemoveImageResponse, Status> {
    let name = request
        .image
        .map(|spec| spec.image)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| Status::invalid_argument("RemoveImage: image name is required"))?;
    let images = server.images.clone();
    // Deleting layer trees is blocking file-system work.
    tokio::task::spawn_blocking(move || images.remove(&name))
        .await
        .map_err(|e| Status::internal(format!("RemoveImage: {e}")))??;
    Ok(api::RemoveImageResponse {})
}
