//! The daemon: lock the root, open the subsystems, serve the CRI on a unix socket until SIGTERM or
//! SIGINT, then stop accepting, let running calls finish, and remove the socket.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use nix::fcntl::{Flock, FlockArg};
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnixListenerStream;

use crate::api::{ImageServiceServer, RuntimeServiceServer};
use crate::config::Config;
use crate::engine::Engine;
use crate::image::ImageManager;
use crate::server::{AuthorityFix, CriServer};
use crate::streaming::Streaming;

/// How long running calls may go on after SIGTERM/SIGINT.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

pub fn run(config: Config) -> ExitCode {
    crate::logging::init(config.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("crius: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(config));
    // Blocking work still running (an unpack) must not hold the exit up; its tmp dir is wiped at start.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("crius: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    for dir in [&config.root, &config.runroot] {
        fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let _lock = lock_root(&config.root)?;
    let images = ImageManager::open(&config.root, config.image.clone())
        .map_err(|e| format!("open image store: {e}"))?;
    let config = Arc::new(config);
    let engine = Arc::new(
        Engine::open(config.clone(), Arc::new(images))
            .map_err(|e| format!("open pod state: {e}"))?,
    );
    crate::recovery::recover(&engine).await;
    let streaming = Streaming::start(engine.clone())
        .await
        .map_err(|e| e.to_string())?;
    if config.metrics.enable {
        let addr = crate::metrics::http::socket_addr(&config.metrics)?;
        crate::metrics::http::start(addr, engine.clone()).await?;
    }
    let listener = bind(&config.api.listen)?;
    let incoming = UnixListenerStream::new(listener);
    let events = engine.clone();
    let deferred = engine.clone();
    let server = Arc::new(CriServer::new(engine, streaming));

    let runtime_service = RuntimeServiceServer::from_arc(server.clone())
        .max_decoding_message_size(config.api.grpc_max_recv_msg_size)
        .max_encoding_message_size(config.api.grpc_max_send_msg_size);
    let image_service = ImageServiceServer::from_arc(server)
        .max_decoding_message_size(config.api.grpc_max_recv_msg_size)
        .max_encoding_message_size(config.api.grpc_max_send_msg_size);

    tracing::info!(socket = %config.api.listen.display(), root = %config.root.display(), "crius {} serving the CRI", env!("CARGO_PKG_VERSION"));
    let stopping = Arc::new(tokio::sync::Notify::new());
    let serving = tonic::transport::Server::builder()
        .layer(crate::server::LogUnimplemented)
        .layer(crate::server::OversizedRequests)
        .add_service(runtime_service)
        .add_service(image_service)
        // Each connection's client side goes through the `:authority` repair for gRPC C-core
        // clients (server/authority.rs).
        .serve_with_incoming_shutdown(incoming.map(|c| c.map(AuthorityFix::new)), {
            let stopping = stopping.clone();
            async move {
                shutdown_signal().await;
                // Event streams never end on their own; graceful stop waits for every call.
                events.events.close();
                stopping.notify_one();
            }
        });
    // Calls still running get a grace period; the store is crash-safe, so cutting a pull short
    // after it loses nothing but the pull.
    let grace = async {
        stopping.notified().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        tracing::warn!("calls still running after {SHUTDOWN_GRACE:?}: stopping anyway");
    };
    let result = tokio::select! {
        served = serving => served.map_err(|e| format!("serving {}: {e}", config.api.listen.display())),
        () = grace => Ok(()),
    };
    // Removals answered but not yet finished; a crash would leave them to the next start-up.
    deferred.deferred.finish(None).await;
    let _ = fs::remove_file(&config.api.listen);
    tracing::info!("crius stopped");
    result
}

/// One daemon per root: a second one would corrupt the store. The lock dies with the process,
/// so a `kill -9` never leaves a stale lock behind.
fn lock_root(root: &Path) -> Result<Flock<File>, String> {
    let path = root.join("crius.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        format!(
            "another crius is already running with root {} (lock {} is held: {errno})",
            root.display(),
            path.display()
        )
    })
}

/// Binds the socket: a stale socket file from a dead daemon is replaced; the socket is 0660
/// (root only) before anyone can connect to it.
fn bind(path: &Path) -> Result<UnixListener, String> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
    }
    match fs::remove_file(path) {
        Ok(()) => tracing::info!(socket = %path.display(), "removed stale socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("remove stale socket {}: {e}", path.display())),
    }
    // Created under a tight umask so no moment exists where others could connect.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o117));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|e| format!("listen on {}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    Ok(listener)
}

async fn shutdown_signal() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop crius with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
