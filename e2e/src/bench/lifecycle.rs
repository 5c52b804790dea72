//! One pod after another, every lifecycle RPC timed on its own: RunPodSandbox,
//! CreateContainer, StartContainer, PodSandboxStatus (of the running pod, see
//! [`STATUS_SAMPLES`]), StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox, plus
//! the sums the issue tracks (Create+Start, the four-RPC teardown).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crius_cri_api::v1::NamespaceMode;
use serde_json::{Value, json};

use super::stats::Samples;
use super::suite::{STOP_TIMEOUT_SECS, Target, wait_ready};
use crate::pods::PodFlow;

/// The samples of every step.
#[derive(Debug, Default)]
pub struct Lifecycle {
    pub run_pod: Samples,
    pub pod_status: Samples,
    pub create: Samples,
    pub start: Samples,
    pub create_start: Samples,
    pub stop: Samples,
    pub remove: Samples,
    pub stop_pod: Samples,
    pub remove_pod: Samples,
    pub teardown: Samples,
}

impl Lifecycle {
    /// Step name → `Samples::json`.
    pub fn json(&self) -> Value {
        json!({
            "RunPodSandbox": self.run_pod.json(),
            "PodSandboxStatus": self.pod_status.json(),
            "CreateContainer": self.create.json(),
            "StartContainer": self.start.json(),
            "Create+Start": self.create_start.json(),
            "StopContainer": self.stop.json(),
            "RemoveContainer": self.remove.json(),
            "StopPodSandbox": self.stop_pod.json(),
            "RemovePodSandbox": self.remove_pod.json(),
            "teardown": self.teardown.json(),
        })
    }
}

/// PodSandboxStatus samples per pod, taken once its container runs, each after
/// [`STATUS_IDLE`] of quiet, as the kubelet asks: on a pod's sync, not in the microseconds
/// after its StartContainer. Taken right after StartContainer, a sample lands in the
/// container's own start-up (its processes exec and fork on the same two cores) — after
/// crius' answer, not after containerd's, which comes ~35 ms later, when that has settled —
/// and measured the previous call's speed more than this one's.
const STATUS_SAMPLES: usize = 5;
const STATUS_IDLE: Duration = Duration::from_millis(20);

/// `runs` full lifecycles, one after another, with pods in pid mode `pid`.
pub async fn run(target: &Target, runs: usize, pid: NamespaceMode) -> Result<Lifecycle> {
    let mut flow = PodFlow::connect(&target.options.socket).await?;
    let container = target.container();
    let mut s = Lifecycle::default();
    let tag = pid.as_str_name().to_ascii_lowercase();
    for i in 0..runs {
        let pod = target.pod(&format!("seq-{tag}-{i}"), pid)?;
        let t = Instant::now();
        let pod_id = flow.run_pod(&pod).await.context("RunPodSandbox")?;
        s.run_pod.push(t);
        let t = Instant::now();
        let id = flow
            .create_container(&pod_id, &container, &pod)
            .await
            .context("CreateContainer")?;
        let created = t.elapsed().as_secs_f64();
        s.create.push_secs(created);
        let t = Instant::now();
        flow.start_container(&id).await.context("StartContainer")?;
        let started = t.elapsed().as_secs_f64();
        s.start.push_secs(started);
        s.create_start.push_secs(created + started);
        // Untimed: the container's own start-up (see wait_ready).
        wait_ready(&pod).await?;
        for _ in 0..STATUS_SAMPLES {
            tokio::time::sleep(STATUS_IDLE).await;
            let t = Instant::now();
            flow.pod_status(&pod_id).await.context("PodSandboxStatus")?;
            s.pod_status.push(t);
        }
        let mut teardown = 0.0;
        let t = Instant::now();
        flow.stop_container(&id, STOP_TIMEOUT_SECS)
            .await
            .context("StopContainer")?;
        teardown += step(&mut s.stop, t);
        let t = Instant::now();
        flow.remove_container(&id)
            .await
            .context("RemoveContainer")?;
        teardown += step(&mut s.remove, t);
        let t = Instant::now();
        flow.stop_pod(&pod_id).await.context("StopPodSandbox")?;
        teardown += step(&mut s.stop_pod, t);
        let t = Instant::now();
        flow.remove_pod(&pod_id).await.context("RemovePodSandbox")?;
        teardown += step(&mut s.remove_pod, t);
        s.teardown.push_secs(teardown);
    }
    Ok(s)
}

/// Records the time since `t` in `samples`; that time in seconds.
fn step(samples: &mut Samples, t: Instant) -> f64 {
    let secs = t.elapsed().as_secs_f64();
    samples.push_secs(secs);
    secs
}
