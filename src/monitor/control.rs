//! The monitor's control socket: one command per line, each answered by `ok` or
//! `error <reason>`.

use std::path::Path;
use std::time::Duration;

use crius_monitor_proto::control::MAX_LINE;
use crius_monitor_proto::{ControlReply, ControlRequest};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::MonitorError;

/// The monitor answers from its poll loop at once; this only bounds a wedged one.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// `reopen-log`: the log file was renamed away (rotation); write to a new one at the path.
pub async fn reopen_log(control_socket: &Path) -> Result<(), MonitorError> {
    command(control_socket, ControlRequest::ReopenLog).await
}

/// `resize ROWS COLS`: the terminal's window size (an error if the container has no terminal).
pub async fn resize(control_socket: &Path, rows: u16, cols: u16) -> Result<(), MonitorError> {
    command(control_socket, ControlRequest::Resize { rows, cols }).await
}

/// Whether a monitor accepts connections on the socket (it removes the socket when it exits).
pub async fn monitor_alive(control_socket: &Path) -> bool {
    matches!(
        tokio::time::timeout(REPLY_TIMEOUT, UnixStream::connect(control_socket)).await,
        Ok(Ok(_))
    )
}

async fn command(path: &Path, request: ControlRequest) -> Result<(), MonitorError> {
    let reply = tokio::time::timeout(REPLY_TIMEOUT, exchange(path, &request.encode()))
        .await
        .map_err(|_| MonitorError::Timeout {
            what: "control command",
            timeout: REPLY_TIMEOUT,
        })?
        .map_err(|source| MonitorError::Control {
            path: path.to_path_buf(),
            source,
        })?;
    match ControlReply::decode(&reply) {
        ControlReply::Ok => Ok(()),
        ControlReply::Error(reason) => Err(MonitorError::Rejected {
            path: path.to_path_buf(),
            reason,
        }),
    }
}

async fn exchange(path: &Path, line: &str) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(path).await?;
    stream.write_all(line.as_bytes()).await?;
    let mut reply = String::new();
    // Replies are short; the limit keeps a confused peer from feeding us forever.
    let n = BufReader::new(stream.take(MAX_LINE as u64))
        .read_line(&mut reply)
        .await?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the monitor closed the connection without answering",
        ));
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    /// A fake monitor answering each line with the given replies in turn.
    fn fake_monitor(
        path: &Path,
        replies: &'static [&'static str],
    ) -> tokio::task::JoinHandle<Vec<String>> {
        let listener = UnixListener::bind(path).unwrap();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for reply in replies {
                let (stream, _) = listener.accept().await.unwrap();
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                BufReader::new(read).read_line(&mut line).await.unwrap();
                seen.push(line);
                write.write_all(reply.as_bytes()).await.unwrap();
            }
            seen
        })
    }

    #[tokio::test]
    async fn commands_and_replies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl");
        let server = fake_monitor(
            &path,
            &["ok\n", "error the container has no terminal\n", ""],
        );
        reopen_log(&path).await.unwrap();
        match resize(&path, 40, 120).await {
            Err(MonitorError::Rejected { reason, .. }) => {
                assert_eq!(reason, "the container has no terminal")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            reopen_log(&path).await,
            Err(MonitorError::Control { .. })
        ));
        assert_eq!(
            server.await.unwrap(),
            vec!["reopen-log\n", "resize 40 120\n", "reopen-log\n"]
        );
    }

    #[tokio::test]
    async fn no_monitor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl");
        assert!(!monitor_alive(&path).await);
        assert!(matches!(
            reopen_log(&path).await,
            Err(MonitorError::Control { .. })
        ));
        let _listener = UnixListener::bind(&path).unwrap();
        assert!(monitor_alive(&path).await);
    }
}
