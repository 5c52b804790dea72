//! Metrics: the CRI's pod and container metrics (`cri.rs`, read from cgroups by `cgroup.rs`)
//! and crius' own Prometheus metrics (`prom.rs`, recorded through one-line hooks at their sites,
//! served by `http.rs` when `[metrics] enable` is set); docs/metrics.md.

pub mod cgroup;
pub mod cri;
pub mod http;
pub mod prom;

pub use prom::{cni_plugin_timer, monitor_launch_timer, oom_killed, pull_done, rpc_done};
