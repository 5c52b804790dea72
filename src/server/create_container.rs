//! `CreateContainer`, as a task of its own; a retry after the client left gets the same
//! container (see `lifecycle::InFlight`).

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container;
use crate::store::ContainerPhase;
use crate::validate;

pub async fn handle(
    server: &CriServer,
    request: api::CreateContainerRequest,
) -> Result<api::CreateContainerResponse, Status> {
    let config = request
        .config
        .ok_or_else(|| Status::invalid_argument("CreateContainer: config is required"))?;
    validate::id("pod_sandbox_id", &request.pod_sandbox_id)?;
    validate::container_config(&config)?;
    let key = container::create::request_key(&server.engine, &request.pod_sandbox_id, &config)?;
    let engine = server.engine.clone();
    let sandbox_id = request.pod_sandbox_id;
    // A container made for a client that left is handed over only while not being removed.
    let usable = |id: &str| {
        server.engine.container(id).is_ok_and(|c| {
            let r = c.record();
            matches!(r.phase, ContainerPhase::Created | ContainerPhase::Started)
                && r.failure.is_none()
        })
    };
    let id = server
        .creating_containers
        .once(&key, usable, move || {
            let (engine, sandbox_id, config) = (engine.clone(), sandbox_id.clone(), config.clone());
            async move { container::create::create(&engine, &sandbox_id, config).await }
        })
        .await?;
    Ok(api::CreateContainerResponse { container_id: id })
}
