//! Attach: a client of the container's own attach socket, next to the log and any other
//! attach clients. Detaching leaves the container running; with `stdin_once` the monitor
//! closes its stdin when the first client that used it goes.

use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UnixStream;

use super::exec::status_message;
use super::pump::{self, End};
use super::stdio::Stdio;
use crate::api;
use crate::container::status::state;
use crate::engine::{Engine, PodError};

pub async fn run(engine: &Arc<Engine>, request: &api::AttachRequest, mut stdio: Stdio) {
    let result = match attach(engine, request, &mut stdio).await {
        Ok(End::ClientGone) => return,
        Ok(End::MonitorClosed) => Ok(0),
        Err(e) => Err(e.to_string()),
    };
    for out in [&stdio.stdout, &stdio.stderr].into_iter().flatten() {
        out.close().await;
    }
    if let Some(error) = &stdio.error {
        if let Some(message) = status_message(stdio.version, &[], result) {
            error.write(Bytes::from(message)).await;
        }
        error.close().await;
    }
}

async fn attach(
    engine: &Arc<Engine>,
    request: &api::AttachRequest,
    stdio: &mut Stdio,
) -> Result<End, PodError> {
    let container = engine.container(&request.container_id)?;
    if state(engine, &container).0 != api::ContainerState::ContainerRunning {
        return Err(PodError::FailedPrecondition(format!(
            "container {} is not running",
            container.id
        )));
    }
    let socket = engine.paths.attach_socket(&container.id);
    let connection = UnixStream::connect(&socket)
        .await
        .map_err(|e| PodError::internal(format!("connecting to {}", socket.display()), e))?;
    Ok(pump::run(connection, stdio).await)
}
