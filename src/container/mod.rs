//! Containers of pod sandboxes: created from a CRI request and an image into an OCI bundle
//! over an overlayfs rootfs, launched (when started) and run by an OCI runtime under a
//! crius-monitor, stopped, removed, and shown to the CRI. One module per lifecycle step.

pub mod create;
pub mod events;
pub mod exec;
pub mod exit_watch;
pub mod image_name;
pub mod launch;
pub mod release;
pub mod remove;
pub mod start;
pub mod stats;
pub mod status;
pub mod stop;
