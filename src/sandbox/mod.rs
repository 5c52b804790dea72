//! Pod sandboxes. For now the building blocks: pinned namespaces, the per-pod files and the
//! built-in pause process.

pub mod files;
pub mod namespaces;
pub mod pause;
