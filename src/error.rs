//! The one place subsystem errors become gRPC statuses, so every handler answers with the right code.

use tonic::Status;

use crate::image::ImageError;
use crate::image::auth::AuthError;

/// Whether `err` (or what caused it) is a full disk or quota. Errors made into text on their way
/// up keep std's `(os error 28)`, so the message is looked at too.
fn out_of_space(err: &(dyn std::error::Error + 'static), message: &str) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
        {
            return true;
        }
        next = e.source();
    }
    message.contains(&format!("(os error {})", libc::ENOSPC))
        || message.contains(&format!("(os error {})", libc::EDQUOT))
}

impl From<ImageError> for Status {
    fn from(err: ImageError) -> Status {
        let message = err.to_string();
        // A full disk is the node's state, not a bug: the kubelet's image GC can act on it.
        if out_of_space(&err, &message) {
            return Status::resource_exhausted(message);
        }
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
        if matches!(err, PodError::Internal(_)) && out_of_space(&err, &message) {
            return Status::resource_exhausted(message);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_resource_exhausted_however_it_was_wrapped() {
        let io = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let pod = crate::engine::PodError::Internal(format!("writing a record: {io}"));
        assert_eq!(Status::from(pod).code(), tonic::Code::ResourceExhausted);
        let other = crate::engine::PodError::Internal("something else (os error 2)".into());
        assert_eq!(Status::from(other).code(), tonic::Code::Unknown);
    }
}
