//! The Kubernetes CRI `runtime.v1` API as crius speaks it (Kubernetes 1.37 level), generated at
//! build time from crius' own `proto/runtime/v1/api.proto`.
//!
//! Both the daemon (through `src/api.rs`) and the e2e tests use this crate, so they always agree
//! on the wire contract. `docs/cri-api.md` says which RPCs and fields crius honours.

/// Messages, enums, `runtime_service_server`/`image_service_server` traits and the matching
/// clients of package `runtime.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("runtime.v1");
}
