//! The CRI gRPC services: one module per RPC, each a thin handler over a subsystem.
//!
//! `runtime_service.rs` and `image_service.rs` only route each call to its handler through
//! [`rpc::serve`], which gives every call a request id, a panic fence and a log line.
//!
//! A mutating pod or container RPC runs its work as a task of its own ([`crate::lifecycle`]): the
//! handler only waits for it, so a client that leaves at its deadline cuts nothing half-way, and
//! RunPodSandbox and CreateContainer go through an in-flight table that hands a retry the object
//! its first request made.

mod authority;
mod checkpoint_container;
mod checkpoint_pod;
mod container_stats;
mod container_status;
mod create_container;
mod exec_sync;
mod get_container_events;
mod image_convert;
mod image_fs_info;
mod image_list;
mod image_pull;
mod image_remove;
mod image_service;
mod image_status;
mod list_container_stats;
mod list_containers;
mod list_metric_descriptors;
mod list_pod_sandbox;
mod list_pod_sandbox_metrics;
mod list_pod_sandbox_stats;
mod log_unimplemented;
mod oversized;
mod pod_sandbox_stats;
mod pod_sandbox_status;
mod remove_container;
mod remove_pod_sandbox;
mod reopen_container_log;
mod restore_pod;
mod rpc;
mod run_pod_sandbox;
mod runtime_config;
mod runtime_service;
mod start_container;
mod status;
mod stop_container;
mod stop_pod_sandbox;
mod stream_container_stats;
mod stream_containers;
mod stream_images;
mod stream_pod_sandbox_metrics;
mod stream_pod_sandbox_stats;
mod stream_pod_sandboxes;
mod streaming_request;
mod update_container_resources;
mod update_pod_sandbox_resources;
mod update_runtime_config;
mod version;

pub use authority::AuthorityFix;
pub use log_unimplemented::LogUnimplemented;
pub use oversized::OversizedRequests;

use std::sync::Arc;

use crate::config::Config;
use crate::engine::Engine;
use crate::image::ImageManager;
use crate::lifecycle::InFlight;
use crate::streaming::Streaming;

/// Why the checkpoint/restore RPCs answer UNIMPLEMENTED.
const NO_CHECKPOINTS: &str =
    "crius has no checkpoint/restore support (it does not drive CRIU through the OCI runtime)";

/// What the handlers share: the configuration and the subsystems.
pub struct CriServer {
    pub config: Arc<Config>,
    pub images: Arc<ImageManager>,
    pub engine: Arc<Engine>,
    pub streaming: Arc<Streaming>,
    /// RunPodSandbox calls by pod name (`k8s_<name>_<namespace>_<uid>_<attempt>`).
    pub creating_pods: InFlight,
    /// CreateContainer calls by `<pod sandbox id>/<container name>`.
    pub creating_containers: InFlight,
}

impl CriServer {
    pub fn new(engine: Arc<Engine>, streaming: Arc<Streaming>) -> Self {
        Self {
            config: engine.config.clone(),
            images: engine.images.clone(),
            engine,
            streaming,
            creating_pods: InFlight::default(),
            creating_containers: InFlight::default(),
        }
    }

    /// Id of the configured pause image, if set and present.
    pub fn pinned_image_id(&self) -> Option<String> {
        let name = &self.config.runtime.pause_image;
        if name.is_empty() {
            return None;
        }
        self.images.find(name).ok().flatten().map(|i| i.id)
    }
}
