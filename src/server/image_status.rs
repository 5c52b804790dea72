//! `ImageStatus`: the image, or none when absent (not an error, as the CRI asks); with verbose,
//! its config in `info`.

use std::collections::HashMap;

use tonic::Status;

use super::CriServer;
use super::image_convert::to_cri;
use crate::api;

pub async fn handle(
    server: &CriServer,
    request: api::ImageStatusRequest,
) -> Result<api::ImageStatusResponse, Status> {
    let name = request
        .image
        .map(|spec| spec.image)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| Status::invalid_argument("ImageStatus: image name is required"))?;
    let Some(image) = server.images.find(&name)? else {
        return Ok(api::ImageStatusResponse::default());
    };
    let mut info = HashMap::new();
    if request.verbose {
        let config = server.images.config_json(&image)?;
        let config: serde_json::Value = serde_json::from_slice(&config).map_err(|e| {
            Status::internal(format!("ImageStatus: stored config of {}: {e}", image.id))
        })?;
        let details = serde_json::json!({
            "id": image.id,
            "manifestDigest": image.manifest_digest,
            "layers": image.layers,
            "imageSpec": config,
        });
        info.insert("info".to_string(), details.to_string());
    }
    Ok(api::ImageStatusResponse {
        image: Some(to_cri(&image, server.pinned_image_id().as_deref())),
        info,
    })
}
