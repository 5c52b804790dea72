//! `Exec`, `Attach` and `PortForward`: check the request, then hand out a URL of the streaming
//! server where the session itself runs (src/streaming/).

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container::exec::require_running;
use crate::engine::PodError;
use crate::streaming::Pending;

/// The stdio combination rules of the kubelet: some stream, and no stderr with a terminal (a
/// pty has one output).
fn check_streams(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Result<(), PodError> {
    if tty && stderr {
        return Err(PodError::InvalidArgument(
            "tty and stderr cannot both be true".into(),
        ));
    }
    if !stdin && !stdout && !stderr {
        return Err(PodError::InvalidArgument(
            "one of stdin, stdout or stderr must be true".into(),
        ));
    }
    Ok(())
}

pub async fn exec(
    server: &CriServer,
    request: api::ExecRequest,
) -> Result<api::ExecResponse, Status> {
    if request.cmd.is_empty() {
        return Err(PodError::InvalidArgument("exec command is empty".into()).into());
    }
    check_streams(request.stdin, request.stdout, request.stderr, request.tty)?;
    let container = server.engine.container(&request.container_id)?;
    require_running(&server.engine, &container)?;
    let request = api::ExecRequest {
        container_id: container.id.clone(),
        ..request
    };
    let url = server.streaming.url(Pending::Exec(request))?;
    Ok(api::ExecResponse { url })
}

pub async fn attach(
    server: &CriServer,
    request: api::AttachRequest,
) -> Result<api::AttachResponse, Status> {
    check_streams(request.stdin, request.stdout, request.stderr, request.tty)?;
    let container = server.engine.container(&request.container_id)?;
    require_running(&server.engine, &container)?;
    let request = api::AttachRequest {
        container_id: container.id.clone(),
        ..request
    };
    let url = server.streaming.url(Pending::Attach(request))?;
    Ok(api::AttachResponse { url })
}

pub async fn port_forward(
    server: &CriServer,
    request: api::PortForwardRequest,
) -> Result<api::PortForwardResponse, Status> {
    let sandbox = server.engine.sandbox(&request.pod_sandbox_id)?;
    if let Some(port) = request.port.iter().find(|p| !(1..=65535).contains(*p)) {
        return Err(PodError::InvalidArgument(format!("invalid port {port}")).into());
    }
    let request = api::PortForwardRequest {
        pod_sandbox_id: sandbox.id.clone(),
        ..request
    };
    let url = server.streaming.url(Pending::PortForward(request))?;
    Ok(api::PortForwardResponse { url })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_combinations() {
        assert!(check_streams(false, true, false, false).is_ok());
        assert!(check_streams(true, true, false, true).is_ok());
        assert!(matches!(
            check_streams(false, true, true, true),
            Err(PodError::InvalidArgument(_))
        ));
        assert!(matches!(
            check_streams(false, false, false, false),
            Err(PodError::InvalidArgument(_))
        ));
    }
}
