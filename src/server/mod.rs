//! The CRI gRPC services: one module per RPC, each a thin handler over a subsystem.
//!
//! `runtime_service.rs` and `image_service.rs` only route each call to its handler through
//! [`rpc::serve`], which gives every call a request id, a panic fence and a log line.

mod container_status;
mod create_container;
mod exec_sync;
mod image_convert;
mod image_fs_info;
mod image_list;
mod image_pull;
mod image_remove;
mod image_service;
mod image_status;
mod list_containers;
mod list_pod_sandbox;
mod pod_sandbox_status;
mod remove_container;
mod remove_pod_sandbox;
mod reopen_container_log;
mod rpc;
mod run_pod_sandbox;
mod runtime_service;
mod start_container;
mod status;
mod stop_container;
mod stop_pod_sandbox;
mod streaming_request;
mod update_container_resources;
mod version;

use std::sync::Arc;

use crate::config::Config;
use crate::engine::Engine;
use crate::image::ImageManager;
use crate::streaming::Streaming;

/// What the handlers share: the configuration and the subsystems.
pub struct CriServer {
    pub config: Arc<Config>,
    pub images: Arc<ImageManager>,
    pub engine: Arc<Engine>,
    pub streaming: Arc<Streaming>,
}

impl CriServer {
    pub fn new(engine: Arc<Engine>, streaming: Arc<Streaming>) -> Self {
        Self {
            config: engine.config.clone(),
            images: engine.images.clone(),
            engine,
            streaming,
        }
    }
}
