//! The metrics that need the engine: the CRI's pod and container metrics (`cri.rs`, read from
//! cgroups by `cgroup.rs`) and the Prometheus endpoint (`http.rs`), which serves the leaf
//! `telemetry` registry with the pods and containers counted by state; docs/metrics.md.

pub mod cgroup;
pub mod cri;
pub mod http;
