//! `ListImages`, optionally filtered by one image name or id.

use tonic::Status;

use super::CriServer;
use super::image_convert::to_cri;
use crate::api;

pub async fn handle(
    server: &CriServer,
    request: api::ListImagesRequest,
) -> Result<api::ListImagesResponse, Status> {
    let wanted = request
        .filter
        .and_then(|f| f.image)
        .map(|spec| spec.image)
        .filter(|name| !name.is_empty());
    let images = match wanted {
        Some(name) => server.images.find(&name)?.into_iter().collect(),
        None => server.images.list(),
    };
    let pinned = server.pinned_image_id();
    Ok(api::ListImagesResponse {
        images: images
            .iter()
            .map(|i| to_cri(i, pinned.as_deref()))
            .collect(),
    })
}
