//! `RunPodSandbox`, as a task of its own; a retry after the client left gets the same pod (see
//! `lifecycle::InFlight`).

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::sandbox;
use crate::store::SandboxPhase;
use crate::validate;

pub async fn handle(
    server: &CriServer,
    request: api::RunPodSandboxRequest,
) -> Result<api::RunPodSandboxResponse, Status> {
    let config = request
        .config
        .ok_or_else(|| Status::invalid_argument("RunPodSandbox: config is required"))?;
    validate::pod_sandbox_config(&config)?;
    validate::runtime_handler(&request.runtime_handler)?;
    let name = sandbox::run::sandbox_name(&config)?;
    let engine = server.engine.clone();
    let handler = request.runtime_handler;
    // A pod made for a client that left is handed over only while still ready.
    let ready = |id: &str| {
        server.engine.sandbox(id).is_ok_and(|s| {
            let r = s.record();
            r.phase == SandboxPhase::Ready && r.failure.is_none()
        })
    };
    let id = server
        .creating_pods
        .once(&name, ready, move || {
            let (engine, config, handler) = (engine.clone(), config.clone(), handler.clone());
            async move { sandbox::run::run(&engine, config, &handler).await }
        })
        .await?;
    Ok(api::RunPodSandboxResponse { pod_sandbox_id: id })
}
