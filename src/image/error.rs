//! The image subsystem's one error type; `crate::error` turns it into a gRPC status.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ImageError {
    #[error(transparent)]
    Reference(#[from] super::reference::ReferenceError),
    #[error("image {0:?} not found")]
    NotFound(String),
    /// The registry has no such manifest, tag or repository; the message names where and what
    /// it said.
    #[error("{0}")]
    NoSuchManifest(String),
    #[error("credentials: {0}")]
    Auth(#[from] super::auth::AuthError),
    /// The registry answered, or could not be reached; the message names which and why.
    #[error("{0}")]
    Registry(String),
    /// A blob's digest or size was not what its descriptor promised.
    #[error("blob {digest}: {message}")]
    Verification { digest: String, message: String },
    #[error("{0}")]
    Unsupported(String),
    /// A host's `certs.d` directory cannot be used as it is (a client certificate without its
    /// key, a key that does not parse); the message names the files.
    #[error("{0}")]
    Certificates(String),
    #[error("layer {digest}: {source}")]
    Unpack {
        digest: String,
        #[source]
        source: super::unpack::UnpackError,
    },
    #[error("pull of {image} did not finish within {limit:?}")]
    Timeout {
        image: String,
        limit: std::time::Duration,
    },
    #[error("image store: {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    /// A short, bounded name of the kind of failure, for the pull metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ImageError::Reference(_) => "reference",
            ImageError::NotFound(_) | ImageError::NoSuchManifest(_) => "not_found",
            ImageError::Auth(_) => "auth",
            ImageError::Registry(_) => "registry",
            ImageError::Verification { .. } => "verification",
            ImageError::Unsupported(_) => "unsupported",
            ImageError::Certificates(_) => "certificates",
            ImageError::Unpack { .. } => "unpack",
            ImageError::Timeout { .. } => "timeout",
            ImageError::Io { .. } => "io",
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ImageError::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, ImageError>;
