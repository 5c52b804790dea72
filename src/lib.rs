//! crius: a Kubernetes container runtime serving the CRI over a unix socket.
//!
//! See `docs/architecture.md` for how a request flows through these modules.

mod api;
pub mod cli;
mod config;
mod container;
mod daemon;
mod engine;
mod error;
mod events;
mod heap;
mod image;
mod layers;
mod lifecycle;
/// crius' OCI runtime library, its own crate (`libcontainer/`), named here as a module.
pub use crius_libcontainer as libcontainer;
mod logging;
mod metrics;
pub mod monitor;
mod network;
mod oci;
mod oci_cli;
pub mod oci_runtime;
mod phases;
mod pod;
pub mod proc_info;
mod recovery;
mod reference;
mod runtimes;
mod sandbox;
mod server;
mod store;
mod streaming;
mod telemetry;
mod userns;
mod validate;

/// Counted, for the heap metrics (`heap.rs`).
#[global_allocator]
static ALLOCATOR: heap::Counted = heap::Counted;

/// The parse entry points the `cargo fuzz` targets in `fuzz/` drive (docs/testing.md, "Fuzzing").
///
/// Compiled only under `--cfg fuzzing`, which `cargo fuzz build` passes; a normal build has no
/// such module and every module above stays private. These are re-exports of the real code, not
/// copies: each target feeds hostile bytes to exactly what the daemon runs.
#[cfg(fuzzing)]
pub mod fuzzing {
    /// Layer tars (with whiteouts, links, devices) unpacked into an empty directory.
    pub use crate::image::unpack::{Compression, UnpackError, UnpackStats, unpack_layer};
    /// Image manifests, indexes and configs as a registry serves them.
    pub use crate::image::{
        Digest, FuzzConfigSummary as ConfigSummary, FuzzFetched as Fetched, ImageError,
        check_config_descriptor, parse_config, parse_manifest, select_platform,
    };
    /// CNI plugin results.
    pub use crate::network::cni::CniResult;
    pub use crate::network::cni::result::IpNet;
    /// Image references (`[registry/]repository[:tag][@digest]`).
    pub use crate::reference::ImageRef;
    /// One SPDY/3.1 connection, server side (the exec/attach/port-forward streams).
    pub use crate::streaming::SpdySession;
}
