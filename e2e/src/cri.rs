//! CRI clients over a unix socket, and short-hands for the image RPCs the tests call a lot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use crius_cri_api::v1::image_service_client::ImageServiceClient;
use crius_cri_api::v1::runtime_service_client::RuntimeServiceClient;
use crius_cri_api::v1::{
    AuthConfig, FilesystemUsage, Image, ImageFilter, ImageFsInfoRequest, ImageSpec,
    ImageStatusRequest, ListImagesRequest, PullImageRequest, RemoveImageRequest,
};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::Status;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::service_fn;

pub use crius_cri_api::v1 as api;

/// A gRPC channel to the unix socket at `path` (connects eagerly: fails when nobody listens).
pub async fn connect(path: &Path) -> Result<Channel> {
    let path: PathBuf = path.to_path_buf();
    let display = path.display().to_string();
    Endpoint::try_from("http://[::]")?
        .connect_with_connector(service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .with_context(|| format!("connecting to {display}"))
}

pub async fn runtime_client(path: &Path) -> Result<RuntimeServiceClient<Channel>> {
    Ok(RuntimeServiceClient::new(connect(path).await?))
}

pub async fn image_client(path: &Path) -> Result<ImageServiceClient<Channel>> {
    Ok(ImageServiceClient::new(connect(path).await?))
}

/// An `ImageSpec` naming `image`.
pub fn spec(image: &str) -> ImageSpec {
    ImageSpec {
        image: image.to_string(),
        ..ImageSpec::default()
    }
}

/// `AuthConfig` with username and password.
pub fn auth_password(user: &str, password: &str) -> AuthConfig {
    AuthConfig {
        username: user.to_string(),
        password: password.to_string(),
        ..AuthConfig::default()
    }
}

/// `AuthConfig` with only the `auth` field: base64 of `user:password`.
pub fn auth_field(user: &str, password: &str) -> AuthConfig {
    use base64::Engine as _;
    AuthConfig {
        auth: base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")),
        ..AuthConfig::default()
    }
}

/// `AuthConfig` with only `identity_token`: an OAuth2 refresh token to trade for an access token.
pub fn auth_identity_token(token: &str) -> AuthConfig {
    AuthConfig {
        identity_token: token.to_string(),
        ..AuthConfig::default()
    }
}

/// `AuthConfig` with only `registry_token`: a bearer token to send to the registry as is.
pub fn auth_registry_token(token: &str) -> AuthConfig {
    AuthConfig {
        registry_token: token.to_string(),
        ..AuthConfig::default()
    }
}

/// The image RPCs, with plain arguments and results.
#[derive(Clone)]
pub struct Images {
    pub client: ImageServiceClient<Channel>,
}

impl Images {
    pub async fn connect(socket: &Path) -> Result<Images> {
        Ok(Images {
            client: image_client(socket).await?,
        })
    }

    /// `PullImage`; the `image_ref` it answers.
    pub async fn pull(&mut self, image: &str) -> Result<String, Status> {
        self.pull_with(image, None).await
    }

    pub async fn pull_with(
        &mut self,
        image: &str,
        auth: Option<AuthConfig>,
    ) -> Result<String, Status> {
        let response = self
            .client
            .pull_image(PullImageRequest {
                image: Some(spec(image)),
                auth,
                sandbox_config: None,
            })
            .await?;
        Ok(response.into_inner().image_ref)
    }

    /// `ImageStatus` (not verbose): the image, `None` when absent.
    pub async fn status(&mut self, image: &str) -> Result<Option<Image>, Status> {
        Ok(self.status_verbose(image, false).await?.0)
    }

    /// `ImageStatus` with `verbose`: the image and the info map.
    pub async fn status_verbose(
        &mut self,
        image: &str,
        verbose: bool,
    ) -> Result<(Option<Image>, HashMap<String, String>), Status> {
        let response = self
            .client
            .image_status(ImageStatusRequest {
                image: Some(spec(image)),
                verbose,
            })
            .await?
            .into_inner();
        Ok((response.image, response.info))
    }

    /// `ListImages`, unfiltered or filtered by `filter`.
    pub async fn list(&mut self, filter: Option<&str>) -> Result<Vec<Image>, Status> {
        let response = self
            .client
            .list_images(ListImagesRequest {
                filter: filter.map(|f| ImageFilter {
                    image: Some(spec(f)),
                }),
            })
            .await?;
        Ok(response.into_inner().images)
    }

    pub async fn remove(&mut self, image: &str) -> Result<(), Status> {
        self.client
            .remove_image(RemoveImageRequest {
                image: Some(spec(image)),
            })
            .await?;
        Ok(())
    }

    /// `ImageFsInfo`'s image filesystems.
    pub async fn fs_info(&mut self) -> Result<Vec<FilesystemUsage>, Status> {
        Ok(self
            .client
            .image_fs_info(ImageFsInfoRequest {})
            .await?
            .into_inner()
            .image_filesystems)
    }

    /// Sum of `used_bytes` over the image filesystems.
    pub async fn used_bytes(&mut self) -> Result<u64, Status> {
        Ok(self
            .fs_info()
            .await?
            .iter()
            .filter_map(|fs| fs.used_bytes.as_ref().map(|u| u.value))
            .sum())
    }
}
