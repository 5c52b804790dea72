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
