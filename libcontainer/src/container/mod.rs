//! Containers: the on-disk state and the lifecycle operations (create, start, state, kill,
//! delete, exec, pause, resume, update).

pub mod cgroup;
mod cgroup_fork;
pub mod create;
pub mod exec;
pub mod ops;
pub mod state;

pub use state::{ContainerId, Status};
