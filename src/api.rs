//! The one place the generated CRI types come from.
//!
//! Everything else in crius names CRI types through `crate::api`, so replacing the `k8s-cri` crate by
//! a newer generated API (see `docs/cri-api.md` for the fields it lacks) touches only this file.

pub use k8s_cri::v1::image_service_client::ImageServiceClient;
pub use k8s_cri::v1::image_service_server::{ImageService, ImageServiceServer};
pub use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
pub use k8s_cri::v1::runtime_service_server::{RuntimeService, RuntimeServiceServer};
pub use k8s_cri::v1::*;

/// The CRI API version crius answers in `Version`.
pub const API_VERSION: &str = "v1";
