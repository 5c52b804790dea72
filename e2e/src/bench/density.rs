//! Many at once: N pods of one container each started concurrently (how many started, the
//! wall time, the daemon's RSS), and C clients each running L full lifecycles one after
//! another (the wall time).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crius_cri_api::v1::NamespaceMode;
use serde_json::{Value, json};

use super::suite::{STOP_TIMEOUT_SECS, Target, wait_ready};
use crate::pods::PodFlow;
use crate::pods::procs::{self, RssSampler};

const RSS_EVERY: Duration = Duration::from_millis(10);

/// Stops and removes a container and its pod.
async fn teardown(flow: &mut PodFlow, pod_id: &str, id: &str) -> Result<()> {
    flow.stop_container(id, STOP_TIMEOUT_SECS)
        .await
        .context("StopContainer")?;
    flow.remove_container(id).await.context("RemoveContainer")?;
    flow.stop_pod(pod_id).await.context("StopPodSandbox")?;
    flow.remove_pod(pod_id).await.context("RemovePodSandbox")?;
    Ok(())
}

/// `n` pods with one container each, all started at once, then all torn down at once.
/// A pod that fails to start is counted and its first error reported, not fatal: the table
/// shows how many started.
pub async fn pods_at_once(target: &Target, n: usize) -> Result<Value> {
    let flow = PodFlow::connect(&target.options.socket).await?;
    let container = target.container();
    let rss_before = target.daemon_pid.and_then(procs::rss_kib);
    let sampler = target
        .daemon_pid
        .map(|pid| RssSampler::start(pid, RSS_EVERY));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let pod = target.pod(&format!("density-{i}"), NamespaceMode::Container)?;
        let (mut flow, container) = (flow.clone(), container.clone());
        tasks.spawn(async move {
            let pod_id = flow.run_pod(&pod).await.context("RunPodSandbox")?;
            let id = flow
                .create_and_start(&pod_id, &container, &pod)
                .await
                .context("CreateContainer + StartContainer")?;
            anyhow::Ok((pod_id, id, pod))
        });
    }
    let mut running = Vec::new();
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.context("pod task panicked")? {
            Ok(ids) => running.push(ids),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let start_wall = started.elapsed().as_secs_f64();
    let rss_started = target.daemon_pid.and_then(procs::rss_kib);
    let rss_peak = sampler.map(RssSampler::finish);
    // Untimed: every container's shell has its SIGTERM trap (see wait_ready).
    for (_, _, pod) in &running {
        wait_ready(pod).await?;
    }

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (pod_id, id, _) in running.clone() {
        let mut flow = flow.clone();
        tasks.spawn(async move { teardown(&mut flow, &pod_id, &id).await });
    }
    let mut teardown_errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined.context("teardown task panicked")? {
            teardown_errors.push(format!("{e:#}"));
        }
    }
    Ok(json!({
        "pods": n,
        "started": running.len(),
        "first_error": errors.first(),
        "start_wall_s": start_wall,
        "teardown_wall_s": started.elapsed().as_secs_f64(),
        "teardown_errors": teardown_errors.len(),
        "daemon_rss_kib": {
            "before": rss_before,
            "peak": rss_peak,
            "all_started": rss_started,
        },
    }))
}

/// `clients` connections, each running `lifecycles` full lifecycles (RunPodSandbox,
/// CreateContainer, StartContainer, StopContainer, RemoveContainer, StopPodSandbox,
/// RemovePodSandbox; the stop once the container has logged that it is ready) one after
/// another; all clients at once.
pub async fn clients(target: &Target, clients: usize, lifecycles: usize) -> Result<Value> {
    let container = target.container();
    let mut pods = Vec::new();
    for c in 0..clients {
        let mut mine = Vec::new();
        for i in 0..lifecycles {
            mine.push(target.pod(&format!("client-{c}-{i}"), NamespaceMode::Container)?);
        }
        pods.push(mine);
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mine in pods {
        // Each client its own connection, as separate kubelets' or tools' would be.
        let mut flow = PodFlow::connect(&target.options.socket).await?;
        let container = container.clone();
        tasks.spawn(async move {
            for pod in mine {
                let pod_id = flow.run_pod(&pod).await.context("RunPodSandbox")?;
                let id = flow
                    .create_and_start(&pod_id, &container, &pod)
                    .await
                    .context("CreateContainer + StartContainer")?;
                wait_ready(&pod).await?;
                teardown(&mut flow, &pod_id, &id).await?;
            }
            anyhow::Ok(())
        });
    }
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined.context("client task panicked")? {
            errors.push(format!("{e:#}"));
        }
    }
    Ok(json!({
        "clients": clients,
        "lifecycles": lifecycles,
        "wall_s": started.elapsed().as_secs_f64(),
        "failed_clients": errors.len(),
        "first_error": errors.first(),
    }))
}
