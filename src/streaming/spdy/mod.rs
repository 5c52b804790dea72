//! SPDY/3.1, as the Kubernetes streaming protocols use it: the client opens streams
//! (SYN_STREAM) named by a `streamType` header, the server answers each (SYN_REPLY) and both
//! sides send DATA and half-close with FIN.
//!
//! No crate on crates.io serves SPDY, so this is a small codec of our own: `frame.rs` (frame
//! layout), `zlib.rs` (header blocks and their compression), `session.rs` (one connection).

mod frame;
mod session;
mod zlib;

pub use session::{Session, Stream, StreamWriter};

#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("SPDY protocol error: {0}")]
    Protocol(String),
    #[error("SPDY header compression: {0}")]
    Zlib(String),
}
