//! Errors of the pod and container lifecycle, already sorted by the gRPC code they deserve.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A feature that is not built yet.
    #[error("{0}")]
    Unimplemented(String),
    /// Something on the node failed (a mount, a plugin, the runtime).
    #[error("{0}")]
    Internal(String),
}

impl PodError {
    /// An internal error with context: `"<what>: <err>"`.
    pub fn internal(what: impl std::fmt::Display, err: impl std::fmt::Display) -> PodError {
        PodError::Internal(format!("{what}: {err}"))
    }

    /// The same error with context put in front.
    pub fn context(self, what: impl std::fmt::Display) -> PodError {
        let add = |m: String| format!("{what}: {m}");
        match self {
            PodError::InvalidArgument(m) => PodError::InvalidArgument(add(m)),
            PodError::NotFound(m) => PodError::NotFound(add(m)),
            PodError::AlreadyExists(m) => PodError::AlreadyExists(add(m)),
            PodError::FailedPrecondition(m) => PodError::FailedPrecondition(add(m)),
            PodError::DeadlineExceeded(m) => PodError::DeadlineExceeded(add(m)),
            PodError::Unimplemented(m) => PodError::Unimplemented(add(m)),
            PodError::Internal(m) => PodError::Internal(add(m)),
        }
    }
}

impl From<StoreError> for PodError {
    fn from(err: StoreError) -> PodError {
        PodError::Internal(err.to_string())
    }
}

impl From<crate::oci::SpecError> for PodError {
    fn from(err: crate::oci::SpecError) -> PodError {
        use crate::oci::SpecError;
        let message = err.to_string();
        match err {
            SpecError::InvalidArgument(_) => PodError::InvalidArgument(message),
            SpecError::NotFound(_) => PodError::NotFound(message),
            SpecError::FailedPrecondition(_) => PodError::FailedPrecondition(message),
            SpecError::Unsupported(_) => PodError::Unimplemented(message),
        }
    }
}

impl From<crate::runtimes::RuntimesError> for PodError {
    fn from(err: crate::runtimes::RuntimesError) -> PodError {
        use crate::runtimes::RuntimesError;
        let message = err.to_string();
        match err {
            RuntimesError::UnknownHandler { .. } => PodError::InvalidArgument(message),
            RuntimesError::Unusable(_) => PodError::FailedPrecondition(message),
        }
    }
}

impl From<tokio::task::JoinError> for PodError {
    fn from(err: tokio::task::JoinError) -> PodError {
        PodError::Internal(format!("background task failed: {err}"))
    }
}
