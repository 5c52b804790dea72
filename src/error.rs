//! The one place subsystem errors become gRPC statuses, so every handler answers with the right code.

use tonic::Status;

use crate::image::ImageError;
use crate::image::auth::AuthError;

impl From<ImageError> for Status {
    fn from(err: ImageError) -> Status {
        let message = err.to_string();
        match err {
            ImageError::Reference(_) => Status::invalid_argument(message),
            // The daemon's own auth file is broken: an operator must fix it.
            ImageError::Auth(
                AuthError::Read { .. }
                | AuthError::Json { .. }
                | AuthError::Base64 { .. }
                | AuthError::MalformedAuth { .. },
            ) => Status::failed_precondition(message),
            ImageError::Auth(AuthError::Http { .. }) => Status::unavailable(message),
            ImageError::Auth(_) => Status::unauthenticated(message),
            ImageError::NotFound(_) | ImageError::NoSuchManifest(_) => Status::not_found(message),
            ImageError::Timeout { .. } => Status::deadline_exceeded(message),
            ImageError::Unsupported(_) | ImageError::Certificates(_) => {
                Status::failed_precondition(message)
            }
            ImageError::Registry(_)
            | ImageError::Verification { .. }
            | ImageError::Unpack { .. } => Status::unknown(message),
            ImageError::Io { .. } => Status::internal(message),
        }
    }
}

impl From<crate::validate::Invalid> for Status {
    fn from(err: crate::validate::Invalid) -> Status {
        Status::invalid_argument(err.0)
    }
}

impl From<crate::engine::PodError> for Status {
    fn from(err: crate::engine::PodError) -> Status {
        use crate::engine::PodError;
        let message = err.to_string();
        match err {
            PodError::InvalidArgument(_) => Status::invalid_argument(message),
            PodError::NotFound(_) => Status::not_found(message),
            PodError::AlreadyExists(_) => Status::already_exists(message),
            PodError::FailedPrecondition(_) => Status::failed_precondition(message),
            PodError::DeadlineExceeded(_) => Status::deadline_exceeded(message),
            PodError::Unimplemented(_) => Status::unimplemented(message),
            PodError::Internal(_) => Status::unknown(message),
        }
    }
}
