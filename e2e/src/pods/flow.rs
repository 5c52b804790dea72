//! [`PodFlow`]: the pod and container RPCs with plain arguments, polling helpers, and
//! [`cleanup_all`] / [`CleanupGuard`] for test teardown.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crius_cri_api::v1::runtime_service_client::RuntimeServiceClient;
use crius_cri_api::v1::{
    Container, ContainerConfig, ContainerState, ContainerStatus, ContainerStatusRequest,
    CreateContainerRequest, ExecSyncRequest, ExecSyncResponse, ListContainersRequest,
    ListPodSandboxRequest, PodSandbox, PodSandboxConfig, PodSandboxStatus, PodSandboxStatusRequest,
    RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest,
    StopContainerRequest, StopPodSandboxRequest,
};
use tonic::Status;
use tonic::transport::Channel;

use crate::cri;

/// How often [`PodFlow::wait_container_exited`] polls `ContainerStatus`.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The grace period [`cleanup_all`] gives each container's `StopContainer`.
pub const CLEANUP_STOP_TIMEOUT_SECS: i64 = 5;

/// The runtime RPCs the pod tests use.
#[derive(Clone)]
pub struct PodFlow {
    pub client: RuntimeServiceClient<Channel>,
}

impl PodFlow {
    pub fn new(client: RuntimeServiceClient<Channel>) -> PodFlow {
        PodFlow { client }
    }

    pub async fn connect(socket: &Path) -> Result<PodFlow> {
        Ok(PodFlow::new(cri::runtime_client(socket).await?))
    }

    /// `RunPodSandbox` with the default handler; the pod id.
    pub async fn run_pod(&mut self, config: &PodSandboxConfig) -> Result<String, Status> {
        let response = self
            .client
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await?;
        Ok(response.into_inner().pod_sandbox_id)
    }

    /// `CreateContainer`; the container id.
    pub async fn create_container(
        &mut self,
        pod_id: &str,
        config: &ContainerConfig,
        pod_config: &PodSandboxConfig,
    ) -> Result<String, Status> {
        let response = self
            .client
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod_id.to_string(),
                config: Some(config.clone()),
                sandbox_config: Some(pod_config.clone()),
            })
            .await?;
        Ok(response.into_inner().container_id)
    }

    pub async fn start_container(&mut self, id: &str) -> Result<(), Status> {
        self.client
            .start_container(StartContainerRequest {
                container_id: id.to_string(),
            })
            .await?;
        Ok(())
    }

    /// `CreateContainer` then `StartContainer`; the container id.
    pub async fn create_and_start(
        &mut self,
        pod_id: &str,
        config: &ContainerConfig,
        pod_config: &PodSandboxConfig,
    ) -> Result<String, Status> {
        let id = self.create_container(pod_id, config, pod_config).await?;
        self.start_container(&id).await?;
        Ok(id)
    }

    pub async fn container_status(&mut self, id: &str) -> Result<ContainerStatus, Status> {
        self.client
            .container_status(ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            })
            .await?
            .into_inner()
            .status
            .ok_or_else(|| Status::internal("ContainerStatus answered no status"))
    }

    /// UpdateContainerResources with only a memory limit.
    pub async fn set_memory_limit(&mut self, id: &str, bytes: i64) -> Result<(), Status> {
        self.client
            .update_container_resources(cri::api::UpdateContainerResourcesRequest {
                container_id: id.to_string(),
                linux: Some(cri::api::LinuxContainerResources {
                    memory_limit_in_bytes: bytes,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// The verbose ContainerStatus' `info` document (crius': `pid`, `monitorPid`, …).
    pub async fn container_info(&mut self, id: &str) -> Result<serde_json::Value, Status> {
        let info = self
            .client
            .container_status(ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: true,
            })
            .await?
            .into_inner()
            .info;
        let text = info
            .get("info")
            .ok_or_else(|| Status::internal("verbose ContainerStatus has no info"))?;
        serde_json::from_str(text).map_err(|e| Status::internal(e.to_string()))
    }

    /// The verbose PodSandboxStatus' `info` document (crius': `pid` of the pause, …).
    pub async fn pod_info(&mut self, id: &str) -> Result<serde_json::Value, Status> {
        let info = self
            .client
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.to_string(),
                verbose: true,
            })
            .await?
            .into_inner()
            .info;
        let text = info
            .get("info")
            .ok_or_else(|| Status::internal("verbose PodSandboxStatus has no info"))?;
        serde_json::from_str(text).map_err(|e| Status::internal(e.to_string()))
    }

    pub async fn pod_status(&mut self, id: &str) -> Result<PodSandboxStatus, Status> {
        self.client
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.to_string(),
                verbose: false,
            })
            .await?
            .into_inner()
            .status
            .ok_or_else(|| Status::internal("PodSandboxStatus answered no status"))
    }

    /// Polls `ContainerStatus` until the container is `CONTAINER_EXITED`; its last status.
    pub async fn wait_container_exited(
        &mut self,
        id: &str,
        timeout: Duration,
    ) -> Result<ContainerStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self
                .container_status(id)
                .await
                .with_context(|| format!("ContainerStatus {id}"))?;
            if status.state == ContainerState::ContainerExited as i32 {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "container {id} did not exit within {timeout:?} (state {:?})",
                    ContainerState::try_from(status.state)
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// `ExecSync` of `cmd` in container `id`; `timeout` is rounded up to whole seconds
    /// (zero: none).
    pub async fn exec_sync(
        &mut self,
        id: &str,
        cmd: &[&str],
        timeout: Duration,
    ) -> Result<ExecSyncResponse, Status> {
        let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
        Ok(self
            .client
            .exec_sync(ExecSyncRequest {
                container_id: id.to_string(),
                cmd: cmd.iter().map(|c| c.to_string()).collect(),
                timeout: i64::try_from(secs).unwrap_or(i64::MAX),
            })
            .await?
            .into_inner())
    }

    pub async fn stop_container(&mut self, id: &str, timeout_secs: i64) -> Result<(), Status> {
        self.client
            .stop_container(StopContainerRequest {
                container_id: id.to_string(),
                timeout: timeout_secs,
            })
            .await?;
        Ok(())
    }

    pub async fn remove_container(&mut self, id: &str) -> Result<(), Status> {
        self.client
            .remove_container(RemoveContainerRequest {
                container_id: id.to_string(),
            })
            .await?;
        Ok(())
    }

    pub async fn stop_pod(&mut self, id: &str) -> Result<(), Status> {
        self.client
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            })
            .await?;
        Ok(())
    }

    pub async fn remove_pod(&mut self, id: &str) -> Result<(), Status> {
        self.client
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            })
            .await?;
        Ok(())
    }

    pub async fn list_containers(&mut self) -> Result<Vec<Container>, Status> {
        Ok(self
            .client
            .list_containers(ListContainersRequest { filter: None })
            .await?
            .into_inner()
            .containers)
    }

    pub async fn list_pods(&mut self) -> Result<Vec<PodSandbox>, Status> {
        Ok(self
            .client
            .list_pod_sandbox(ListPodSandboxRequest { filter: None })
            .await?
            .into_inner()
            .items)
    }

    /// Stops and removes every container and pod; see [`cleanup_all`].
    pub async fn cleanup_all(&mut self) -> Result<()> {
        cleanup_all(&mut self.client).await
    }
}

/// Stops and removes every container, then stops and removes every pod the runtime lists.
/// Goes on past failures and reports them all at the end. For a daemon owned by the test only:
/// it removes pods it did not create.
pub async fn cleanup_all(client: &mut RuntimeServiceClient<Channel>) -> Result<()> {
    let mut flow = PodFlow::new(client.clone());
    let mut errors = Vec::new();
    match flow.list_containers().await {
        Ok(containers) => {
            for c in containers {
                if let Err(e) = flow.stop_container(&c.id, CLEANUP_STOP_TIMEOUT_SECS).await {
                    errors.push(format!("StopContainer {}: {e}", c.id));
                }
                if let Err(e) = flow.remove_container(&c.id).await {
                    errors.push(format!("RemoveContainer {}: {e}", c.id));
                }
            }
        }
        Err(e) => errors.push(format!("ListContainers: {e}")),
    }
    match flow.list_pods().await {
        Ok(pods) => {
            for p in pods {
                if let Err(e) = flow.stop_pod(&p.id).await {
                    errors.push(format!("StopPodSandbox {}: {e}", p.id));
                }
                if let Err(e) = flow.remove_pod(&p.id).await {
                    errors.push(format!("RemovePodSandbox {}: {e}", p.id));
                }
            }
        }
        Err(e) => errors.push(format!("ListPodSandbox: {e}")),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        bail!("cleanup failed:\n{}", errors.join("\n"))
    }
}

/// Stops and removes only the given pods (and, by `RemovePodSandbox`, their containers);
/// for runtimes shared with others. Goes on past failures and reports them all.
pub async fn cleanup_pods(
    client: &mut RuntimeServiceClient<Channel>,
    pod_ids: &[String],
) -> Result<()> {
    let mut flow = PodFlow::new(client.clone());
    let mut errors = Vec::new();
    let containers = flow.list_containers().await.unwrap_or_default();
    for id in pod_ids {
        for c in containers.iter().filter(|c| &c.pod_sandbox_id == id) {
            let _ = flow.stop_container(&c.id, CLEANUP_STOP_TIMEOUT_SECS).await;
            if let Err(e) = flow.remove_container(&c.id).await
                && e.code() != tonic::Code::NotFound
            {
                errors.push(format!("RemoveContainer {}: {e}", c.id));
            }
        }
        if let Err(e) = flow.stop_pod(id).await
            && e.code() != tonic::Code::NotFound
        {
            errors.push(format!("StopPodSandbox {id}: {e}"));
        }
        if let Err(e) = flow.remove_pod(id).await
            && e.code() != tonic::Code::NotFound
        {
            errors.push(format!("RemovePodSandbox {id}: {e}"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        bail!("cleanup failed:\n{}", errors.join("\n"))
    }
}

/// Runs [`cleanup_all`] against `socket` when dropped, pass or fail, on a thread of its own
/// (so it works inside any tokio runtime). Declare it after the [`crate::Crius`] it cleans so
/// it is dropped first, while the daemon still runs.
pub struct CleanupGuard {
    socket: PathBuf,
    armed: bool,
}

impl CleanupGuard {
    pub fn new(socket: &Path) -> CleanupGuard {
        CleanupGuard {
            socket: socket.to_path_buf(),
            armed: true,
        }
    }

    /// Cleans up now, reporting failure (the drop then does nothing).
    pub async fn finish(mut self) -> Result<()> {
        self.armed = false;
        let mut client = cri::runtime_client(&self.socket).await?;
        cleanup_all(&mut client).await
    }
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        if !self.armed || !self.socket.exists() {
            return;
        }
        let socket = self.socket.clone();
        let cleaner = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut client = cri::runtime_client(&socket).await?;
                cleanup_all(&mut client).await
            })
        });
        match cleaner.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("CleanupGuard: {e:#}"),
            Err(_) => eprintln!("CleanupGuard: the cleanup thread panicked"),
        }
    }
}
