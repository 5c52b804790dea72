//! The daemon <-> crius-monitor protocol (monitor-proto/): launch argv, sync line, exit file,
//! control request and reply, exec-sync reply. The first byte picks the message, the rest is the
//! input (argv: NUL-separated arguments). Decoders never panic, and whatever decodes is stable:
//! encoding a decoded message and decoding that again gives the same message.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use crius_monitor_proto::{
    ControlReply, ControlRequest, ExecSyncReply, ExitStatus, Parsed, SyncMessage, launch,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 6 {
        0 => {
            let args: Vec<OsString> = rest
                .split(|b| *b == 0)
                .map(|a| OsString::from_vec(a.to_vec()))
                .collect();
            if let Ok(Parsed::Run(opts)) = launch::parse(args) {
                let again = launch::parse(opts.to_args());
                assert_eq!(
                    again,
                    Ok(Parsed::Run(opts.clone())),
                    "argv {:?}",
                    opts.to_args()
                );
            }
        }
        1 => {
            // One line, as the daemon reads it from the sync descriptor.
            let line = text.lines().next().unwrap_or("");
            if let Ok(m) = SyncMessage::decode(line) {
                let encoded = m.encode();
                assert!(encoded.ends_with('\n') && encoded.matches('\n').count() == 1);
                assert_eq!(SyncMessage::decode(&encoded), Ok(m), "{encoded:?}");
            }
        }
        2 => {
            if let Ok(status) = ExitStatus::decode(rest) {
                let encoded = status.encode();
                assert_eq!(
                    ExitStatus::decode(encoded.as_bytes()),
                    Ok(status),
                    "{encoded:?}"
                );
            }
        }
        3 => {
            let line = text.lines().next().unwrap_or("");
            if let Ok(req) = ControlRequest::decode(line) {
                let encoded = req.encode();
                assert_eq!(ControlRequest::decode(&encoded), Ok(req), "{encoded:?}");
            }
        }
        4 => {
            let line = text.lines().next().unwrap_or("");
            let reply = ControlReply::decode(line);
            let encoded = reply.encode();
            assert_eq!(encoded.matches('\n').count(), 1, "{encoded:?}");
            assert_eq!(
                ControlReply::decode(&encoded),
                reply,
                "{line:?} -> {encoded:?}"
            );
        }
        _ => {
            if let Ok(reply) = ExecSyncReply::decode(rest) {
                let encoded = reply.encode();
                assert_eq!(
                    ExecSyncReply::decode(encoded.as_bytes()),
                    Ok(reply),
                    "{encoded:?}"
                );
            }
        }
    }
});
