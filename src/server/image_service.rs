//! Routes each ImageService RPC to its handler module.

use tonic::{Request, Response, Status};

use super::CriServer;
use super::rpc::{self, Kind};
use crate::api;

#[tonic::async_trait]
impl api::ImageService for CriServer {
    async fn list_images(
        &self,
        request: Request<api::ListImagesRequest>,
    ) -> Result<Response<api::ListImagesResponse>, Status> {
        let handler = super::image_list::handle(self, request.into_inner());
        rpc::serve("ListImages", Kind::Query, handler).await
    }

    type StreamImagesStream = rpc::ServerStream<api::StreamImagesResponse>;

    async fn stream_images(
        &self,
        request: Request<api::StreamImagesRequest>,
    ) -> Result<Response<Self::StreamImagesStream>, Status> {
        let handler = super::stream_images::handle(self, request.into_inner());
        rpc::serve("StreamImages", Kind::Query, handler).await
    }

    async fn image_status(
        &self,
        request: Request<api::ImageStatusRequest>,
    ) -> Result<Response<api::ImageStatusResponse>, Status> {
        let handler = super::image_status::handle(self, request.into_inner());
        rpc::serve("ImageStatus", Kind::Query, handler).await
    }

    async fn pull_image(
        &self,
        request: Request<api::PullImageRequest>,
    ) -> Result<Response<api::PullImageResponse>, Status> {
        let handler = super::image_pull::handle(self, request.into_inner());
        rpc::serve("PullImage", Kind::Mutation, handler).await
    }

    async fn remove_image(
        &self,
        request: Request<api::RemoveImageRequest>,
    ) -> Result<Response<api::RemoveImageResponse>, Status> {
        let handler = super::image_remove::handle(self, request.into_inner());
        rpc::serve("RemoveImage", Kind::Mutation, handler).await
    }

    async fn image_fs_info(
        &self,
        request: Request<api::ImageFsInfoRequest>,
    ) -> Result<Response<api::ImageFsInfoResponse>, Status> {
        let handler = super::image_fs_info::handle(self, request.into_inner());
        rpc::serve("ImageFsInfo", Kind::Query, handler).await
    }
}
