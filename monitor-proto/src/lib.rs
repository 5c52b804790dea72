//! The protocol between the crius daemon and `crius-monitor` (docs/monitor.md), defined once
//! and used by both sides: each message has one type, one encoder and one decoder.
//!
//! | what | direction | form | module |
//! | --- | --- | --- | --- |
//! | launch options | daemon → monitor | command line | [`launch`] |
//! | sync message | monitor → daemon | one JSON line on the sync descriptor | [`sync`] |
//! | exit file | monitor → daemon | one JSON line in a file, written atomically | [`exit`] |
//! | control commands and replies | both | text lines on the control socket | [`control`] |
//! | exec-sync reply | monitor → daemon | one JSON line on stdout | [`exec_sync`] |
//!
//! A daemon restarted after an upgrade reads exit files and talks to monitors that the previous
//! build started, so every on-disk and on-wire form here stays byte-compatible with what earlier
//! monitors wrote; the tests pin those bytes. (The attach socket's frames are the monitor's and
//! the streaming server's business and stay in their modules.)
//!
//! No async runtime: the monitor is a single-threaded poll loop, and the daemon does its own I/O
//! and hands lines and argument vectors to these functions.

pub mod base64;
pub mod control;
pub mod exec_sync;
pub mod exit;
pub mod launch;
pub mod sync;
pub mod time;

pub use control::{ControlReply, ControlRequest};
pub use exec_sync::{ExecSyncOutput, ExecSyncReply};
pub use exit::ExitStatus;
pub use launch::{ExecProcess, LaunchOptions, Mode, Parsed, Runtime};
pub use sync::SyncMessage;

/// A message that does not decode: which message, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub what: &'static str,
    pub reason: String,
}

impl DecodeError {
    fn new(what: &'static str, reason: impl std::fmt::Display) -> Self {
        DecodeError {
            what,
            reason: reason.to_string(),
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad {}: {}", self.what, self.reason)
    }
}

impl std::error::Error for DecodeError {}
