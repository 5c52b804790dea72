//! crius' own OCI runtime: the kernel-facing side of containers, organised like youki's
//! libcontainer (one module per concern, each behind a small API the runtime core calls).
//!
//! Its own crate (`crius-libcontainer`) so that nothing in it can reach into the daemon: it
//! knows OCI specs and the kernel, not the CRI. The daemon names it `crate::libcontainer`.

pub mod container;
pub mod error;
pub mod features;
pub mod mount_api;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod syscall;
pub mod tty;

pub mod capabilities;
pub mod cgroups;
pub mod hooks;
pub mod lsm;
pub mod mounts;
pub mod netdev;
pub mod oom_score;
pub mod personality;
pub mod rlimits;
pub mod seccomp;
pub mod sysctl;
#[cfg(test)]
mod test_util;
pub mod timens;
pub mod user;
