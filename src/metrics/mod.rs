//! Metrics: the CRI's pod and container metrics (`cri.rs`, read from cgroups by `cgroup.rs`)
//! and crius' own Prometheus endpoint (`prom.rs`, served by `http.rs`); docs/metrics.md.

pub mod cgroup;
pub mod cri;
