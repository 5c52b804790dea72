//! Connecting to `localhost:<port>` inside a pod's network namespace. A socket stays in the
//! namespace it was made in, so a short-lived thread of its own enters the namespace, connects
//! and hands the socket back; no runtime thread ever changes namespace.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::TcpStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to port `port` on the loopback of `netns` (the daemon's own namespace if `None`).
pub async fn connect(netns: Option<PathBuf>, port: u16) -> std::io::Result<TcpStream> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("crius-netns-dial".into())
        .spawn(move || {
            let _ = tx.send(dial(netns.as_deref(), port));
        })?;
    let stream = rx
        .await
        .map_err(|_| std::io::Error::other("the dialing thread died"))??;
    stream.set_nonblocking(true)?;
    TcpStream::from_std(stream)
}

fn dial(netns: Option<&Path>, port: u16) -> std::io::Result<std::net::TcpStream> {
    if let Some(path) = netns {
        let ns = std::fs::File::open(path)?;
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)?;
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connects_in_the_current_namespace_without_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stream = connect(None, port).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap().port(), port);
        drop(listener);
        assert!(connect(None, port).await.is_err());
        assert!(
            connect(Some("/nonexistent/netns".into()), port)
                .await
                .is_err()
        );
    }
}
