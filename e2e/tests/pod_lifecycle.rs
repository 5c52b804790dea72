//! The lifecycle protocol against the real daemon: RunPodSandbox and CreateContainer cut at the
//! client's deadline (a slow CNI plugin, a slow runtime) finish anyway and hand their retry the
//! same id, and so does a cut StartContainer; a pod whose CNI ADD and DEL both fail, and a
//! container whose launch fails, stay listed and removable, across a restart, until their
//! teardown works — and then nothing is left on the host; a kill -9 while a runtime `create`
//! runs leaks nothing either, nor one right after a RemoveContainer whose files were still to
//! be deleted.

use std::path::Path;
use std::time::{Duration, Instant};

use crius_e2e::cri::api::{
    ContainerConfig, ContainerState, CreateContainerRequest, PodSandboxConfig, PodSandboxState,
    PodSandboxStatusRequest, RunPodSandboxRequest, StartContainerRequest,
};
use crius_e2e::daemon::crius_bin;
use crius_e2e::pods::faults::{FaultyCni, SlowRuntime};
use crius_e2e::pods::{PodEnv, PodFlow, pod_config, sleep_container};
use tonic::Code;

const SECOND: Duration = Duration::from_secs(1);
/// The client's deadline for a call that is to be cut.
const CUT: Duration = Duration::from_secs(1);
/// How long the injected sleeps last: well past [`CUT`].
const SLOW_SECS: f64 = 3.0;
/// The deadline of the retries (and of everything else).
const PATIENT: Duration = Duration::from_secs(60);
const SLOW: &str = "slow";

/// A pod environment whose network goes through [`FaultyCni`] and which has the runtime handler
/// [`SLOW`] ([`SlowRuntime`]). Dropped, it clears the faults first, so that the environment's
/// cleanup can remove every pod, and keeps the scripts until the daemon is gone.
struct Lab {
    env: PodEnv,
    cni: FaultyCni,
    runtime: SlowRuntime,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.cni.clear();
        self.runtime.clear();
    }
}

async fn start() -> Lab {
    let cni = FaultyCni::new().unwrap();
    let runtime = SlowRuntime::new(&crius_bin()).unwrap();
    let (dirs, path) = (cni.plugin_dirs(), runtime.path().display().to_string());
    let env = PodEnv::start_with(|b| {
        b.config_value("network.plugin_dirs", dirs)
            .config_value("runtime.runtimes.slow.path", path)
    })
    .await
    .unwrap();
    cni.take_over(&env.network).unwrap();
    Lab { env, cni, runtime }
}

/// RunPodSandbox with a deadline.
async fn run_pod(
    flow: &mut PodFlow,
    config: &PodSandboxConfig,
    handler: &str,
    deadline: Duration,
) -> Result<String, tonic::Status> {
    let mut request = tonic::Request::new(RunPodSandboxRequest {
        config: Some(config.clone()),
        runtime_handler: handler.to_string(),
    });
    request.set_timeout(deadline);
    let call = flow.client.run_pod_sandbox(request);
    match tokio::time::timeout(deadline + SECOND, call).await {
        Ok(answer) => answer.map(|r| r.into_inner().pod_sandbox_id),
        Err(_) => Err(tonic::Status::deadline_exceeded("the client gave up")),
    }
}

/// CreateContainer with a deadline.
async fn create_container(
    flow: &mut PodFlow,
    pod_id: &str,
    config: &ContainerConfig,
    pod: &PodSandboxConfig,
    deadline: Duration,
) -> Result<String, tonic::Status> {
    let mut request = tonic::Request::new(CreateContainerRequest {
        pod_sandbox_id: pod_id.to_string(),
        config: Some(config.clone()),
        sandbox_config: Some(pod.clone()),
    });
    request.set_timeout(deadline);
    let call = flow.client.create_container(request);
    match tokio::time::timeout(deadline + SECOND, call).await {
        Ok(answer) => answer.map(|r| r.into_inner().container_id),
        Err(_) => Err(tonic::Status::deadline_exceeded("the client gave up")),
    }
}

/// StartContainer with a deadline.
async fn start_container(
    flow: &mut PodFlow,
    id: &str,
    deadline: Duration,
) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(StartContainerRequest {
        container_id: id.to_string(),
    });
    request.set_timeout(deadline);
    let call = flow.client.start_container(request);
    match tokio::time::timeout(deadline + SECOND, call).await {
        Ok(answer) => answer.map(|_| ()),
        Err(_) => Err(tonic::Status::deadline_exceeded("the client gave up")),
    }
}

/// Polls until the container runs (a cut StartContainer finishing on its own).
async fn wait_container_running(flow: &mut PodFlow, id: &str) {
    let deadline = Instant::now() + PATIENT;
    loop {
        let state = flow.container_status(id).await.unwrap().state;
        if state == ContainerState::ContainerRunning as i32 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "container {id} never ran: {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts that a call was cut at its deadline (and not answered otherwise).
fn assert_cut<T: std::fmt::Debug>(result: Result<T, tonic::Status>, what: &str) {
    match result {
        Err(s) if matches!(s.code(), Code::DeadlineExceeded | Code::Cancelled) => {}
        other => panic!("{what}: expected the deadline to cut it, got {other:?}"),
    }
}

/// The ids of the listed pods whose metadata name is `name`, with their states.
async fn listed_pods(flow: &mut PodFlow, name: &str) -> Vec<(String, i32)> {
    flow.list_pods()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.metadata.as_ref().is_some_and(|m| m.name == name))
        .map(|p| (p.id, p.state))
        .collect()
}

/// The ids of the listed containers.
async fn listed_containers(flow: &mut PodFlow) -> Vec<String> {
    flow.list_containers()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// Polls until `pred` holds of the pod list (the first, cut request finishing on its own).
async fn wait_pod_listed(flow: &mut PodFlow, name: &str) -> String {
    let deadline = Instant::now() + PATIENT;
    loop {
        if let Some((id, _)) = listed_pods(flow, name).await.into_iter().next() {
            return id;
        }
        assert!(Instant::now() < deadline, "pod {name} never got listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Nothing of any pod left: host leaks (mounts, pins, cgroups, veths, IPs, iptables) and the
/// daemon's records and pod directories.
fn assert_nothing_left(env: &PodEnv) {
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
    for dir in ["state/sandboxes", "state/containers"] {
        let left: Vec<_> = std::fs::read_dir(env.crius.root().join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "records left in {dir}: {left:?}");
    }
    for dir in ["sandboxes", "containers"] {
        let path = env.crius.runroot().join(dir);
        let left: Vec<_> = std::fs::read_dir(&path)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left in {}: {left:?}", path.display());
    }
}

#[tokio::test]
async fn creations_cut_at_the_deadline_are_handed_to_their_retry() {
    let lab = start().await;
    let (env, faults) = (&lab.env, &lab);
    let mut flow = env.flow().await.unwrap();

    // 1. Cut during the CNI ADD; the retry comes while the first still runs and waits for it.
    faults.cni.sleep("ADD", Some(SLOW_SECS)).unwrap();
    let during_add = pod_config("during-add", &env.log_dir("during-add"));
    let started = Instant::now();
    assert_cut(
        run_pod(&mut flow, &during_add, "", CUT).await,
        "RunPodSandbox in ADD",
    );
    // Hidden while it is being made.
    assert!(listed_pods(&mut flow, "during-add").await.is_empty());
    let first = run_pod(&mut flow, &during_add, "", PATIENT).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs_f64(SLOW_SECS),
        "the retry did not wait for the first request"
    );
    assert_eq!(
        listed_pods(&mut flow, "during-add").await,
        [(first.clone(), PodSandboxState::SandboxReady as i32)]
    );
    // Handed over once: a plain duplicate now meets the name reservation.
    let duplicate = run_pod(&mut flow, &during_add, "", PATIENT).await;
    assert_eq!(
        duplicate.as_ref().map_err(|s| s.code()),
        Err(Code::AlreadyExists),
        "{duplicate:?}"
    );

    // 2. Cut during the ADD; the retry comes after the first finished unclaimed.
    let after_add = pod_config("after-add", &env.log_dir("after-add"));
    assert_cut(
        run_pod(&mut flow, &after_add, "", CUT).await,
        "RunPodSandbox in ADD",
    );
    let listed = wait_pod_listed(&mut flow, "after-add").await;
    let second = run_pod(&mut flow, &after_add, "", PATIENT).await.unwrap();
    assert_eq!(second, listed);

    // 3. As 2, but the pod is removed before the retry: the retry makes a new one.
    let removed = pod_config("removed", &env.log_dir("removed"));
    assert_cut(
        run_pod(&mut flow, &removed, "", CUT).await,
        "RunPodSandbox in ADD",
    );
    let gone = wait_pod_listed(&mut flow, "removed").await;
    flow.stop_pod(&gone).await.unwrap();
    flow.remove_pod(&gone).await.unwrap();
    faults.cni.sleep("ADD", None).unwrap();
    let remade = run_pod(&mut flow, &removed, "", PATIENT).await.unwrap();
    assert_ne!(remade, gone);
    flow.stop_pod(&remade).await.unwrap();
    flow.remove_pod(&remade).await.unwrap();

    // 4. Cut while the runtime creates the pause container.
    faults.runtime.sleep("create", Some(SLOW_SECS)).unwrap();
    let during_pause = pod_config("during-pause", &env.log_dir("during-pause"));
    assert_cut(
        run_pod(&mut flow, &during_pause, SLOW, CUT).await,
        "RunPodSandbox in the pause create",
    );
    let third = run_pod(&mut flow, &during_pause, SLOW, PATIENT)
        .await
        .unwrap();
    assert_eq!(
        listed_pods(&mut flow, "during-pause").await,
        [(third.clone(), PodSandboxState::SandboxReady as i32)]
    );

    // 5. CreateContainer makes no process, so a slow runtime `create` does not hold it up;
    //    StartContainer, whose launch runs that create, is cut, and finishes on its own.
    let c = sleep_container("app", &env.image, 3600);
    let app = create_container(&mut flow, &third, &c, &during_pause, CUT)
        .await
        .unwrap();
    assert_eq!(
        flow.container_status(&app).await.unwrap().state,
        ContainerState::ContainerCreated as i32
    );
    let duplicate = create_container(&mut flow, &third, &c, &during_pause, PATIENT).await;
    assert_eq!(
        duplicate.as_ref().map_err(|s| s.code()),
        Err(Code::AlreadyExists),
        "{duplicate:?}"
    );
    assert_cut(
        start_container(&mut flow, &app, CUT).await,
        "StartContainer in the runtime's create",
    );
    wait_container_running(&mut flow, &app).await;
    let again = start_container(&mut flow, &app, PATIENT).await;
    assert_eq!(
        again.as_ref().map_err(|s| s.code()),
        Err(Code::FailedPrecondition),
        "{again:?}"
    );
    faults.runtime.sleep("create", None).unwrap();

    // 6. Another container starts at once (the slow create is gone).
    let c2 = sleep_container("late", &env.image, 3600);
    let late = create_container(&mut flow, &third, &c2, &during_pause, PATIENT)
        .await
        .unwrap();
    start_container(&mut flow, &late, PATIENT).await.unwrap();

    // What the retries got works.
    assert_eq!(
        flow.container_status(&app).await.unwrap().state,
        ContainerState::ContainerRunning as i32
    );
    assert_eq!(
        flow.list_containers().await.unwrap().len(),
        2,
        "only the two containers"
    );
    assert_eq!(
        flow.list_pods().await.unwrap().len(),
        3,
        "only the three pods"
    );

    for pod in [&first, &second, &third] {
        flow.stop_pod(pod).await.unwrap();
        flow.remove_pod(pod).await.unwrap();
    }
    assert_nothing_left(env);
}

/// The verbose PodSandboxStatus' `info.failure`.
async fn pod_failure(flow: &mut PodFlow, id: &str) -> Option<String> {
    let info = flow
        .client
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: id.to_string(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner()
        .info;
    let info: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    info["failure"].as_str().map(str::to_string)
}

#[tokio::test]
async fn a_pod_whose_cni_add_and_del_fail_stays_listed_until_removed() {
    let mut lab = start().await;
    let mut flow = lab.env.flow().await.unwrap();
    lab.cni.fail("ADD", true).unwrap();
    lab.cni.fail("DEL", true).unwrap();
    let pod = pod_config("unlucky", &lab.env.log_dir("unlucky"));
    let failed = run_pod(&mut flow, &pod, "", PATIENT).await;
    assert!(
        failed
            .as_ref()
            .is_err_and(|s| s.message().contains("ADD fails by the test flag")),
        "{failed:?}"
    );

    // Listed, not ready, with the reason; the bridge's IP is still owed its DEL.
    let listed = listed_pods(&mut flow, "unlucky").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let (failed_id, state) = listed[0].clone();
    assert_eq!(state, PodSandboxState::SandboxNotready as i32);
    let why = pod_failure(&mut flow, &failed_id).await.unwrap_or_default();
    assert!(why.contains("DEL fails by the test flag"), "{why}");
    assert_eq!(lab.env.network.allocated_ips().len(), 1);

    // Its name is free: the kubelet's retry of the same request makes a new pod.
    lab.cni.fail("ADD", false).unwrap();
    let retried = run_pod(&mut flow, &pod, "", PATIENT).await.unwrap();
    assert_ne!(retried, failed_id);

    // A restart retries the teardown, which fails again: still listed.
    lab.env.crius.restart().await.unwrap();
    let mut flow = lab.env.flow().await.unwrap();
    let mut listed = listed_pods(&mut flow, "unlucky").await;
    listed.sort_by_key(|(id, _)| id != &failed_id);
    assert_eq!(
        listed,
        [
            (failed_id.clone(), PodSandboxState::SandboxNotready as i32),
            (retried.clone(), PodSandboxState::SandboxReady as i32)
        ]
    );

    // Removal fails clearly while DEL fails, and works once it does.
    let refused = flow.remove_pod(&failed_id).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|s| s.message().contains("DEL fails by the test flag")),
        "{refused:?}"
    );
    assert_eq!(listed_pods(&mut flow, "unlucky").await.len(), 2);
    lab.cni.fail("DEL", false).unwrap();
    flow.stop_pod(&failed_id).await.unwrap();
    flow.remove_pod(&failed_id).await.unwrap();
    assert_eq!(
        listed_pods(&mut flow, "unlucky").await,
        [(retried.clone(), PodSandboxState::SandboxReady as i32)]
    );
    flow.stop_pod(&retried).await.unwrap();
    flow.remove_pod(&retried).await.unwrap();
    assert_nothing_left(&lab.env);
}

/// A runtime whose `create` fails: CreateContainer (which makes no process) works, and
/// StartContainer fails with the runtime's words; the container is then listed EXITED
/// (`StartError`, as containerd says), a retried start is refused, and its removal fails while
/// the runtime's `delete` does and works once it does — and leaves nothing.
#[tokio::test]
async fn a_container_whose_launch_fails_is_listed_exited_and_removable() {
    let lab = start().await;
    let (env, faults) = (&lab.env, &lab);
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("pod", &env.log_dir("pod"));
    let pod_id = run_pod(&mut flow, &pod, SLOW, PATIENT).await.unwrap();
    faults.runtime.fail("create", true).unwrap();
    faults.runtime.fail("delete", true).unwrap();
    let c = sleep_container("broken", &env.image, 3600);
    let id = create_container(&mut flow, &pod_id, &c, &pod, PATIENT)
        .await
        .unwrap();
    let failed = start_container(&mut flow, &id, PATIENT).await;
    assert!(
        failed
            .as_ref()
            .is_err_and(|s| s.message().contains("create fails by the test flag")),
        "{failed:?}"
    );

    let listed = flow.list_containers().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].state, ContainerState::ContainerExited as i32);
    let status = flow.container_status(&id).await.unwrap();
    assert_eq!(status.state, ContainerState::ContainerExited as i32);
    assert_eq!(
        (status.reason.as_str(), status.exit_code),
        ("StartError", 128)
    );
    assert!(
        status.message.contains("create fails by the test flag"),
        "{}",
        status.message
    );
    let again = start_container(&mut flow, &id, PATIENT).await;
    assert_eq!(
        again.as_ref().map_err(|s| s.code()),
        Err(Code::FailedPrecondition),
        "{again:?}"
    );

    let refused = flow.remove_container(&id).await;
    assert!(refused.is_err(), "{refused:?}");
    faults.runtime.fail("create", false).unwrap();
    faults.runtime.fail("delete", false).unwrap();
    flow.remove_container(&id).await.unwrap();
    assert!(flow.list_containers().await.unwrap().is_empty());
    // The name is free again.
    let again = flow.create_and_start(&pod_id, &c, &pod).await.unwrap();
    assert_ne!(again, id);
    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    assert!(!Path::new(&env.crius.runroot().join("containers").join(&id)).exists());
    assert_nothing_left(env);
}

/// The daemon killed while a monitor is still inside the runtime's `create` (the record names
/// no process yet): recovery lets that launch settle before it deletes, so the create that
/// finishes after the restart leaves no init process waiting on its exec fifo in a cgroup
/// nobody owns — for a container (whose StartContainer launched it: recovered created, and
/// it starts) and for a pod's pause.
#[tokio::test]
async fn a_kill9_during_a_runtime_create_leaves_nothing_once_recovered() {
    let mut lab = start().await;
    let mut flow = lab.env.flow().await.unwrap();
    let pod = pod_config("crash-in-create", &lab.env.log_dir("crash-in-create"));
    let pod_id = run_pod(&mut flow, &pod, SLOW, PATIENT).await.unwrap();

    // A container: its create stalled half-way (init made, state not written) when the daemon
    // dies, so a forced delete then finds nothing to delete.
    let sleeper = sleep_container("crash-in-create", &lab.env.image, 3600);
    let id = create_container(&mut flow, &pod_id, &sleeper, &pod, PATIENT)
        .await
        .unwrap();
    lab.runtime.stall_create(Some(SLOW_SECS)).unwrap();
    assert_cut(
        start_container(&mut flow, &id, CUT).await,
        "StartContainer in create",
    );
    lab.env.crius.kill9().await.unwrap();
    lab.runtime.stall_create(None).unwrap();
    lab.env.crius.restart().await.unwrap();
    let mut flow = lab.env.flow().await.unwrap();
    let listed: Vec<_> = flow
        .list_containers()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.pod_sandbox_id == pod_id)
        .map(|c| (c.id, c.state))
        .collect();
    assert_eq!(
        listed,
        [(id.clone(), ContainerState::ContainerCreated as i32)]
    );
    start_container(&mut flow, &id, PATIENT).await.unwrap();
    wait_container_running(&mut flow, &id).await;
    flow.stop_container(&id, 0).await.unwrap();
    flow.remove_container(&id).await.unwrap();
    lab.runtime.stall_create(Some(SLOW_SECS)).unwrap();

    // A pod: its pause's create stalled the same way.
    let doomed = pod_config("crash-in-pause", &lab.env.log_dir("crash-in-pause"));
    let cut = Instant::now();
    assert_cut(
        run_pod(&mut flow, &doomed, SLOW, CUT).await,
        "RunPodSandbox in the pause's create",
    );
    lab.env.crius.kill9().await.unwrap();
    lab.env.crius.restart().await.unwrap();
    let mut flow = lab.env.flow().await.unwrap();
    assert!(listed_pods(&mut flow, "crash-in-pause").await.is_empty());

    // Past the stall: a create that recovery missed has finished by now.
    let settled = cut + Duration::from_secs_f64(SLOW_SECS) + 2 * SECOND;
    tokio::time::sleep_until(settled.into()).await;
    lab.runtime.stall_create(None).unwrap();
    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    assert_nothing_left(&lab.env);
}

/// The kubelet's garbage collector and a user may remove the same things at once: every
/// RemoveContainer and RemovePodSandbox succeeds, and nothing of them is written again once
/// they are gone (a late call must not bring a record back).
#[tokio::test]
async fn concurrent_removals_of_one_pod_all_succeed_and_leave_nothing() {
    let lab = start().await;
    let env = &lab.env;
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("removed-at-once", &env.log_dir("removed-at-once"));
    let pod_id = run_pod(&mut flow, &pod, "", PATIENT).await.unwrap();
    let mut containers = Vec::new();
    for name in ["a", "b"] {
        let c = sleep_container(name, &env.image, 3600);
        containers.push(flow.create_and_start(&pod_id, &c, &pod).await.unwrap());
    }
    let mut calls = tokio::task::JoinSet::new();
    for round in 0..3 {
        for id in &containers {
            let (mut flow, id) = (env.flow().await.unwrap(), id.clone());
            calls.spawn(async move { flow.remove_container(&id).await.map_err(|s| (round, s)) });
        }
        let (mut flow, id) = (env.flow().await.unwrap(), pod_id.clone());
        calls.spawn(async move {
            flow.stop_pod(&id).await.map_err(|s| (round, s))?;
            flow.remove_pod(&id).await.map_err(|s| (round, s))
        });
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap().unwrap();
    }
    assert!(flow.list_pods().await.unwrap().is_empty());
    assert!(flow.list_containers().await.unwrap().is_empty());
    assert_nothing_left(env);
}

/// What RemoveContainer leaves to delete after its answer (`Files::AfterReply`): the
/// container's run directory, its directory and its record.
fn files_of(env: &PodEnv, id: &str) -> Vec<std::path::PathBuf> {
    [
        env.crius.runroot().join("containers").join(id),
        env.crius.root().join("containers").join(id),
        env.crius
            .root()
            .join("state/containers")
            .join(format!("{id}.json")),
    ]
    .into_iter()
    .filter(|p| p.exists())
    .collect()
}

/// RemoveContainer answers before the container's directories and record are deleted: they
/// go soon after while the pod lives; a daemon stopped right after the answer deletes them
/// before it exits; one killed (-9) right after leaves them to start-up, which finishes the
/// removal — in every case the container is never listed again.
#[tokio::test]
async fn a_removed_containers_files_go_after_the_answer_even_across_a_stop_or_a_kill9() {
    let mut env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("late-files", &env.log_dir("late-files"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let mut ids = Vec::new();
    for name in ["live", "stopped", "killed"] {
        let c = sleep_container(name, &env.image, 3600);
        ids.push(flow.create_and_start(&pod_id, &c, &pod).await.unwrap());
    }

    // While the pod lives.
    assert!(!files_of(&env, &ids[0]).is_empty());
    flow.remove_container(&ids[0]).await.unwrap();
    assert!(!listed_containers(&mut flow).await.contains(&ids[0]));
    let deadline = Instant::now() + PATIENT;
    while !files_of(&env, &ids[0]).is_empty() {
        assert!(Instant::now() < deadline, "{:?}", files_of(&env, &ids[0]));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A clean stop right after the answer.
    flow.remove_container(&ids[1]).await.unwrap();
    assert!(env.crius.stop().await.unwrap().success());
    assert_eq!(files_of(&env, &ids[1]), Vec::<std::path::PathBuf>::new());
    env.crius.restart().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    assert_eq!(listed_containers(&mut flow).await, [ids[2].clone()]);

    // A kill -9 right after the answer (before or after the deletion: either way).
    flow.remove_container(&ids[2]).await.unwrap();
    env.crius.kill9().await.unwrap();
    env.crius.restart().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    assert_eq!(listed_containers(&mut flow).await, Vec::<String>::new());
    assert_eq!(files_of(&env, &ids[2]), Vec::<std::path::PathBuf>::new());

    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    assert_nothing_left(&env);
}
