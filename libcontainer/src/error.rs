//! The runtime's one error type. Every kernel failure carries the step that failed and the path it
//! failed on, so a failed `create` explains itself in one line.

use std::path::Path;

use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed during `step` on `path`.
    #[error("{step} {path}: {errno}")]
    Sys {
        step: String,
        path: String,
        errno: Errno,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// The configuration asks for something this runtime refuses or cannot do.
    #[error("{0}")]
    Invalid(String),
    /// A feature that is recognised but not implemented yet.
    #[error("{0} not supported yet")]
    Unsupported(String),
    /// An error reported by the container's init process over the sync channel.
    #[error("{0}")]
    Child(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn sys(step: impl Into<String>, path: impl AsRef<Path>, errno: Errno) -> Error {
        Error::Sys {
            step: step.into(),
            path: path.as_ref().display().to_string(),
            errno,
        }
    }
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// `.ctx("step", path)` on a nix result.
pub trait SysContext<T> {
    fn ctx(self, step: &str, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> SysContext<T> for std::result::Result<T, Errno> {
    fn ctx(self, step: &str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::sys(step, path, e))
    }
}

/// `.io_ctx("reading x")` on an io result.
pub trait IoContext<T> {
    fn io_ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}
