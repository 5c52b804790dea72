//! The control socket's line protocol: one command per line, each answered by one line,
//! `ok` or `error <reason>`.
//!
//! ```text
//! reopen-log      → ok
//! resize 40 120   → ok          (rows cols; "error the container has no terminal" without one)
//! ```

use crate::DecodeError;

/// Longest command line a monitor accepts, and longest reply a daemon reads.
pub const MAX_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRequest {
    /// The log file was renamed away (rotation): open the path again.
    ReopenLog,
    /// The terminal's window size.
    Resize { rows: u16, cols: u16 },
}

impl ControlRequest {
    /// The line, newline included.
    pub fn encode(&self) -> String {
        match self {
            ControlRequest::ReopenLog => "reopen-log\n".into(),
            ControlRequest::Resize { rows, cols } => format!("resize {rows} {cols}\n"),
        }
    }

    /// Parses one line (words separated by white space, the newline optional).
    pub fn decode(line: &str) -> Result<ControlRequest, DecodeError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["reopen-log"] => Ok(ControlRequest::ReopenLog),
            ["resize", rows, cols] => {
                let number = |s: &str| {
                    s.parse::<u16>()
                        .map_err(|_| DecodeError::new("control command", format!("bad size {s:?}")))
                };
                Ok(ControlRequest::Resize {
                    rows: number(rows)?,
                    cols: number(cols)?,
                })
            }
            _ => Err(DecodeError::new(
                "control command",
                format!("unknown command {:?}", line.trim()),
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlReply {
    Ok,
    /// `error <reason>`; the reason is one line.
    Error(String),
}

impl ControlReply {
    /// The line, newline included; line breaks in a reason become spaces.
    pub fn encode(&self) -> String {
        match self {
            ControlReply::Ok => "ok\n".into(),
            ControlReply::Error(reason) => format!("error {}\n", reason.replace('\n', " ")),
        }
    }

    /// Parses a reply line. Anything but `ok` is an error; its reason is the text after
    /// `error `, or the whole line when a confused peer said something else.
    pub fn decode(line: &str) -> ControlReply {
        match line.trim_end() {
            "ok" => ControlReply::Ok,
            // `error \n` with its space trimmed off: an error with an empty reason.
            "error" => ControlReply::Error(String::new()),
            other => ControlReply::Error(other.strip_prefix("error ").unwrap_or(other).to_string()),
        }
    }
}

impl From<Result<(), String>> for ControlReply {
    fn from(result: Result<(), String>) -> Self {
        match result {
            Ok(()) => ControlReply::Ok,
            Err(reason) => ControlReply::Error(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_on_the_wire() {
        assert_eq!(ControlRequest::ReopenLog.encode(), "reopen-log\n");
        assert_eq!(
            ControlRequest::Resize {
                rows: 40,
                cols: 120
            }
            .encode(),
            "resize 40 120\n"
        );
        for request in [
            ControlRequest::ReopenLog,
            ControlRequest::Resize { rows: 0, cols: 0 },
            ControlRequest::Resize {
                rows: u16::MAX,
                cols: 1,
            },
        ] {
            assert_eq!(ControlRequest::decode(&request.encode()), Ok(request));
        }
        assert_eq!(
            ControlRequest::decode("  resize\t1 2  "),
            Ok(ControlRequest::Resize { rows: 1, cols: 2 })
        );
    }

    #[test]
    fn bad_commands() {
        for bad in ["resize 40", "resize -1 5", "resize 70000 1", "reboot", ""] {
            assert!(ControlRequest::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replies_on_the_wire() {
        assert_eq!(ControlReply::Ok.encode(), "ok\n");
        let no_tty = ControlReply::Error("the container has no terminal".into());
        assert_eq!(no_tty.encode(), "error the container has no terminal\n");
        assert_eq!(ControlReply::decode("ok\n"), ControlReply::Ok);
        assert_eq!(ControlReply::decode(&no_tty.encode()), no_tty);
        assert_eq!(
            ControlReply::Error("two\nlines".into()).encode(),
            "error two lines\n"
        );
        assert_eq!(
            ControlReply::decode("what?\n"),
            ControlReply::Error("what?".into())
        );
        assert_eq!(ControlReply::from(Ok(())), ControlReply::Ok);
    }

    /// Found by the monitor_proto fuzz target: an empty line decoded to an empty reason, which
    /// encoded as `error \n` and read back as the reason "error".
    #[test]
    fn an_empty_reason_survives_the_wire() {
        let empty = ControlReply::Error(String::new());
        assert_eq!(empty.encode(), "error \n");
        assert_eq!(ControlReply::decode(&empty.encode()), empty);
        assert_eq!(ControlReply::decode(""), empty);
        assert_eq!(ControlReply::decode("error"), empty);
    }
}
