//! The one place subsystem errors become gRPC statuses, so every handler answers with the right code.

use tonic::Status;

use crate::image::ImageError;

impl From<ImageError> for Status {
    fn from(err: ImageError) -> Status {
        let message = err.to_string();
        match err {
            ImageError::Reference(_) | ImageError::Auth(_) => Status::invalid_argument(message),
            ImageError::NotFound(_) => Status::not_found(message),
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
