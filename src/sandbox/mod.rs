//! Pod sandboxes: pinned namespaces, the pod's files, the network, the pause process, and
//! their lifecycle (`run`, `teardown`) and CRI view (`status`). See docs/sandbox.md.

pub mod files;
pub mod namespaces;
mod network;
mod ns_setup;
mod pause_process;
pub mod pause_watch;
pub mod resources;
pub mod run;
pub mod stats;
pub mod status;
pub mod teardown;
