//! The CRI gRPC services: one module per RPC, each a thin handler over a subsystem.
//!
//! `runtime_service.rs` and `image_service.rs` only route each call to its handler through
//! [`rpc::serve`], which gives every call a request id, a panic fence and a log line.

mod image_convert;
mod image_fs_info;
mod image_list;
mod image_pull;
mod image_remove;
mod image_service;
mod image_status;
mod rpc;
mod runtime_service;
mod status;
mod version;

use std::sync::Arc;

use crate::config::Config;
use crate::image::ImageManager;

/// What the handlers share: the configuration and the subsystems.
pub struct CriServer {
    pub config: Arc<Config>,
    pub images: Arc<ImageManager>,
}

impl CriServer {
    pub fn new(config: Arc<Config>, images: Arc<ImageManager>) -> Self {
        Self { config, images }
    }
}
