//! `PullImage`: credentials from the request, then the image subsystem pulls.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::image::auth::{self, CriAuth};

pub async fn handle(
    server: &CriServer,
    request: api::PullImageRequest,
) -> Result<api::PullImageResponse, Status> {
    let image = request
        .image
        .map(|spec| spec.image)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| Status::invalid_argument("PullImage: image name is required"))?;
    let creds = match &request.auth {
        Some(a) => Some(
            auth::from_cri(&CriAuth {
                username: &a.username,
                password: &a.password,
                auth: &a.auth,
                server_address: &a.server_address,
                identity_token: &a.identity_token,
                registry_token: &a.registry_token,
            })
            .map_err(|e| Status::invalid_argument(format!("PullImage: credentials: {e}")))?,
        ),
        None => None,
    };
    let image_ref = server.images.pull(&image, creds.as_ref()).await?;
    Ok(api::PullImageResponse { image_ref })
}
