//! crius: a Kubernetes container runtime serving the CRI over a unix socket.
//!
//! See `docs/architecture.md` for how a request flows through these modules.

pub mod api;
pub mod cli;
pub mod config;
pub mod container;
pub mod daemon;
pub mod engine;
pub mod error;
pub mod image;
pub mod layers;
pub mod lifecycle;
/// crius' OCI runtime library, its own crate (`libcontainer/`), named here as a module.
pub use crius_libcontainer as libcontainer;
pub mod logging;
pub mod metrics;
pub mod monitor;
pub mod network;
pub mod oci;
pub mod oci_cli;
pub mod oci_runtime;
pub mod pod;
pub mod proc_info;
pub mod recovery;
pub mod reference;
pub mod runtimes;
pub mod sandbox;
pub mod server;
pub mod store;
pub mod streaming;
pub mod telemetry;
pub mod userns;
