//! `GetContainerEvents` against the real daemon: a pod's whole life (run, create, start, a
//! container exiting by itself, stop, remove) arrives as events in order, each with the pod's
//! and its containers' statuses as they were then, at every subscriber; a hundred idle
//! subscribers cost the daemon no CPU; a subscriber that never reads holds up no lifecycle
//! call — its stream ends with RESOURCE_EXHAUSTED once it is a ring behind; and a restart ends
//! every stream at once, after which a new subscriber sees the exits of surviving containers;
//! a pause process that dies by itself, before or after a restart, is reported once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crius_e2e::cri::api::runtime_service_client::RuntimeServiceClient;
use crius_e2e::cri::api::{
    ContainerEventResponse, ContainerEventType, ContainerState, ContainerStatus, GetEventsRequest,
    PodSandboxState,
};
use crius_e2e::pods::{PodEnv, PodFlow, pod_config, shell_container, sleep_container};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::Code;
use tonic::Streaming;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::service_fn;

/// How long one event may take to arrive.
const EVENT_WAIT: Duration = Duration::from_secs(20);

async fn subscribe(flow: &mut PodFlow) -> Streaming<ContainerEventResponse> {
    flow.client
        .get_container_events(GetEventsRequest {})
        .await
        .unwrap()
        .into_inner()
}

async fn next_event(stream: &mut Streaming<ContainerEventResponse>) -> ContainerEventResponse {
    tokio::time::timeout(EVENT_WAIT, stream.message())
        .await
        .expect("no event in time")
        .expect("the stream failed")
        .expect("the stream ended")
}

fn kind(event: &ContainerEventResponse) -> ContainerEventType {
    ContainerEventType::try_from(event.container_event_type).unwrap()
}

fn pod_state(event: &ContainerEventResponse) -> PodSandboxState {
    let status = event.pod_sandbox_status.as_ref().unwrap();
    PodSandboxState::try_from(status.state).unwrap()
}

fn status_of<'a>(event: &'a ContainerEventResponse, id: &str) -> Option<&'a ContainerStatus> {
    event.containers_statuses.iter().find(|s| s.id == id)
}

fn state_of(event: &ContainerEventResponse, id: &str) -> Option<ContainerState> {
    status_of(event, id).map(|s| ContainerState::try_from(s.state).unwrap())
}

/// utime + stime of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A client whose HTTP/2 stream window is tiny, so that a subscriber that does not read stops
/// the daemon's sending after a few events instead of after megabytes.
async fn small_window_client(socket: &Path) -> RuntimeServiceClient<Channel> {
    let path: PathBuf = socket.to_path_buf();
    let channel = Endpoint::try_from("http://[::]")
        .unwrap()
        .initial_stream_window_size(Some(4096))
        .connect_with_connector(service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .unwrap();
    RuntimeServiceClient::new(channel)
}

#[tokio::test]
async fn a_pods_whole_life_arrives_in_order_at_every_subscriber() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let mut first = subscribe(&mut env.flow().await.unwrap()).await;
    let mut second = subscribe(&mut env.flow().await.unwrap()).await;

    let pod = pod_config("events", &env.log_dir("events"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let once = shell_container("once", &env.image, "sleep 2; exit 3");
    let id = flow.create_container(&pod_id, &once, &pod).await.unwrap();
    flow.start_container(&id).await.unwrap();

    // The container exits by itself: its STOPPED comes without anyone asking.
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(next_event(&mut first).await);
    }
    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_container(&id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    for _ in 0..3 {
        seen.push(next_event(&mut first).await);
    }
    use ContainerEventType::*;
    let order: Vec<(&str, ContainerEventType)> = seen
        .iter()
        .map(|e| (e.container_id.as_str(), kind(e)))
        .collect();
    assert_eq!(
        order,
        [
            (pod_id.as_str(), ContainerCreatedEvent),
            (pod_id.as_str(), ContainerStartedEvent),
            (id.as_str(), ContainerCreatedEvent),
            (id.as_str(), ContainerStartedEvent),
            (id.as_str(), ContainerStoppedEvent),
            (pod_id.as_str(), ContainerStoppedEvent),
            (id.as_str(), ContainerDeletedEvent),
            (pod_id.as_str(), ContainerDeletedEvent),
        ]
    );

    // Every event carries the pod's status (with the metadata the kubelet keys its cache by)
    // and its containers' statuses as they were then.
    for event in &seen {
        let status = event.pod_sandbox_status.as_ref().unwrap();
        assert_eq!(status.id, pod_id);
        let metadata = status.metadata.as_ref().unwrap();
        assert_eq!(metadata.uid, pod.metadata.as_ref().unwrap().uid);
        assert!(event.created_at > 0);
    }
    for pair in seen.windows(2) {
        assert!(pair[0].created_at <= pair[1].created_at);
    }
    assert_eq!(pod_state(&seen[0]), PodSandboxState::SandboxReady);
    assert!(seen[0].containers_statuses.is_empty());
    assert_eq!(
        state_of(&seen[2], &id),
        Some(ContainerState::ContainerCreated)
    );
    assert_eq!(
        state_of(&seen[3], &id),
        Some(ContainerState::ContainerRunning)
    );
    assert!(status_of(&seen[3], &id).unwrap().started_at > 0);
    let exited = status_of(&seen[4], &id).unwrap();
    assert_eq!(exited.state, ContainerState::ContainerExited as i32);
    assert_eq!(exited.exit_code, 3);
    assert_eq!(exited.reason, "Error");
    assert!(exited.finished_at >= exited.started_at);
    assert_eq!(pod_state(&seen[5]), PodSandboxState::SandboxNotready);
    assert_eq!(
        state_of(&seen[5], &id),
        Some(ContainerState::ContainerExited)
    );
    assert!(status_of(&seen[6], &id).is_none());
    assert!(seen[7].containers_statuses.is_empty());

    // The second subscriber saw exactly the same.
    for expected in &seen {
        assert_eq!(&next_event(&mut second).await, expected);
    }
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

#[tokio::test]
async fn a_hundred_idle_subscribers_cost_no_cpu_and_all_get_the_next_event() {
    let env = PodEnv::start().await.unwrap();
    let pid = env.crius.pid().unwrap();
    let idle = Duration::from_secs(3);

    let before = cpu_ticks(pid);
    tokio::time::sleep(idle).await;
    let alone = cpu_ticks(pid) - before;

    let mut streams = Vec::new();
    for _ in 0..100 {
        streams.push(subscribe(&mut env.flow().await.unwrap()).await);
    }
    let before = cpu_ticks(pid);
    tokio::time::sleep(idle).await;
    let with_subscribers = cpu_ticks(pid) - before;
    println!(
        "daemon CPU over {idle:?}: {alone} ticks alone, {with_subscribers} with 100 idle subscribers"
    );
    assert!(
        with_subscribers < 50,
        "100 idle subscribers: {with_subscribers} ticks in {idle:?}"
    );

    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("fanout", &env.log_dir("fanout"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    for stream in &mut streams {
        let event = next_event(stream).await;
        assert_eq!(event.container_id, pod_id);
        assert_eq!(kind(&event), ContainerEventType::ContainerCreatedEvent);
    }
    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

#[tokio::test]
async fn a_subscriber_that_never_reads_blocks_nothing_and_loses_its_stream() {
    let env = PodEnv::start_with(|b| b.config_value("runtime.container_events_buffer", 8))
        .await
        .unwrap();
    let mut flow = env.flow().await.unwrap();
    let mut stalled = small_window_client(env.crius.socket())
        .await
        .get_container_events(GetEventsRequest {})
        .await
        .unwrap()
        .into_inner();

    // Big events: every one carries the statuses of six running containers.
    let pod = pod_config("stalled", &env.log_dir("stalled"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    for i in 0..6 {
        let c = sleep_container(&format!("long{i}"), &env.image, 3600);
        flow.create_and_start(&pod_id, &c, &pod).await.unwrap();
    }
    // 52 lifecycle calls while the subscriber reads nothing: each must finish.
    let started = std::time::Instant::now();
    for i in 0..13 {
        let c = sleep_container(&format!("short{i}"), &env.image, 3600);
        let call = async {
            let id = flow.create_container(&pod_id, &c, &pod).await?;
            flow.start_container(&id).await?;
            flow.stop_container(&id, 0).await?;
            flow.remove_container(&id).await
        };
        tokio::time::timeout(Duration::from_secs(60), call)
            .await
            .expect("a lifecycle call hung behind the stalled subscriber")
            .unwrap();
    }
    println!(
        "52 lifecycle calls with a stalled subscriber: {:?}",
        started.elapsed()
    );

    // What it reads now: what was on the way, then the end, with an error.
    let mut received = 0;
    let status = loop {
        match tokio::time::timeout(EVENT_WAIT, stalled.message()).await {
            Ok(Ok(Some(_))) => received += 1,
            Ok(Ok(None)) => panic!("the stream ended without an error after {received} events"),
            Ok(Err(status)) => break status,
            Err(_) => panic!("the stream neither ended nor sent after {received} events"),
        }
    };
    println!("the stalled subscriber read {received} events, then {status:?}");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    print_event_costs(&env.crius.log());
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

/// What building and publishing each event cost the lifecycle call, from the daemon's debug
/// lines (`container event ... cost_us=N`): a benchmark's report, no assertion.
fn print_event_costs(log: &str) {
    let mut costs: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("container event"))
        .filter_map(|l| {
            let at = l.find("cost_us=")? + "cost_us=".len();
            l[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect();
    costs.sort_unstable();
    if let Some(max) = costs.last() {
        println!(
            "{} events built and published: p50 {} µs, p99 {} µs, max {max} µs",
            costs.len(),
            costs[costs.len() / 2],
            costs[(costs.len() * 99 / 100).min(costs.len() - 1)],
        );
    }
}

#[tokio::test]
async fn a_restart_ends_the_stream_and_a_new_one_sees_exits_of_surviving_containers() {
    let mut env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("restart", &env.log_dir("restart"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    // Exits a while after the restart, by itself.
    let late = shell_container("late", &env.image, "sleep 6; exit 7");
    let id = flow.create_and_start(&pod_id, &late, &pod).await.unwrap();

    let mut before = subscribe(&mut env.flow().await.unwrap()).await;
    let stopping = std::time::Instant::now();
    env.crius.restart().await.unwrap();
    // The old stream ended with the daemon, cleanly (the kubelet reconnects and relists), and
    // the stop did not wait for it.
    let end = tokio::time::timeout(EVENT_WAIT, before.message())
        .await
        .expect("the stream outlived the daemon");
    assert!(matches!(&end, Ok(None)), "{end:?}");
    // The daemon's graceful stop gives running calls 10 s: an event stream must not be one.
    let took = stopping.elapsed();
    println!("restart with a subscriber: {took:?}, the stream ended with {end:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");

    // A new subscriber sees the surviving container's exit: its monitor is watched again.
    let mut flow = env.flow().await.unwrap();
    let mut after = subscribe(&mut env.flow().await.unwrap()).await;
    let stopped = next_event(&mut after).await;
    assert_eq!(stopped.container_id, id);
    assert_eq!(kind(&stopped), ContainerEventType::ContainerStoppedEvent);
    let status = status_of(&stopped, &id).unwrap();
    assert_eq!(status.state, ContainerState::ContainerExited as i32);
    assert_eq!(status.exit_code, 7);

    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

/// Kills the pod's pause process (ours: the daemon under test started it) with SIGKILL.
async fn kill_pause(flow: &mut PodFlow, pod_id: &str) {
    let info = flow.pod_info(pod_id).await.unwrap();
    let pid = info["pid"].as_i64().unwrap();
    assert!(pid > 1, "{info}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

#[tokio::test]
async fn a_pause_that_dies_by_itself_is_reported_once_before_and_after_a_restart() {
    let mut env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("pause-dies", &env.log_dir("pause-dies"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let second = pod_config("pause-dies-later", &env.log_dir("pause-dies-later"));
    let second_id = flow.run_pod(&second).await.unwrap();

    // Killed while the daemon runs: STOPPED at once, the pod NOTREADY in it.
    let mut events = subscribe(&mut env.flow().await.unwrap()).await;
    kill_pause(&mut flow, &pod_id).await;
    let stopped = next_event(&mut events).await;
    assert_eq!(stopped.container_id, pod_id);
    assert_eq!(kind(&stopped), ContainerEventType::ContainerStoppedEvent);
    assert_eq!(pod_state(&stopped), PodSandboxState::SandboxNotready);
    // The kubelet's StopPodSandbox after it sends no second STOPPED: the next is the DELETED.
    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    let deleted = next_event(&mut events).await;
    assert_eq!(deleted.container_id, pod_id);
    assert_eq!(kind(&deleted), ContainerEventType::ContainerDeletedEvent);

    // Killed after a restart: the recovered pod's pause is watched again.
    env.crius.restart().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let mut events = subscribe(&mut env.flow().await.unwrap()).await;
    kill_pause(&mut flow, &second_id).await;
    let stopped = next_event(&mut events).await;
    assert_eq!(stopped.container_id, second_id);
    assert_eq!(kind(&stopped), ContainerEventType::ContainerStoppedEvent);
    assert_eq!(pod_state(&stopped), PodSandboxState::SandboxNotready);
    assert_eq!(
        flow.pod_status(&second_id).await.unwrap().state,
        PodSandboxState::SandboxNotready as i32
    );
    flow.stop_pod(&second_id).await.unwrap();
    flow.remove_pod(&second_id).await.unwrap();
    let deleted = next_event(&mut events).await;
    assert_eq!(kind(&deleted), ContainerEventType::ContainerDeletedEvent);
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}
