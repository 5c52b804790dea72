//! `StreamImages`: `ListImages`' images in bounded-size messages.

use tonic::Status;

use super::CriServer;
use super::rpc::{self, ServerStream};
use crate::api;

pub async fn handle(
    server: &CriServer,
    request: api::StreamImagesRequest,
) -> Result<ServerStream<api::StreamImagesResponse>, Status> {
    let list = api::ListImagesRequest {
        filter: request.filter,
    };
    let images = super::image_list::handle(server, list).await?.images;
    Ok(rpc::stream_of(images, |images| api::StreamImagesResponse {
        images,
    }))
}
