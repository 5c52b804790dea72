//! The one place the generated CRI types come from.
//!
//! Everything else in crius names CRI types through `crate::api`. The types are generated from
//! crius' own `cri-api/proto/runtime/v1/api.proto` (CRI of Kubernetes 1.37) by the
//! `crius-cri-api` crate; `docs/cri-api.md` says which parts crius honours.

pub use crius_cri_api::v1::image_service_server::{ImageService, ImageServiceServer};
pub use crius_cri_api::v1::runtime_service_server::{RuntimeService, RuntimeServiceServer};
pub use crius_cri_api::v1::*;

/// The CRI API version crius answers in `Version`.
pub const API_VERSION: &str = "v1";
