//! Bad and repeated requests: the right gRPC codes, names reserved and released, every
//! lifecycle call safe to repeat, filters.

use std::collections::HashMap;

use crius_e2e::cri::api::{
    ContainerFilter, ContainerState, ContainerStateValue, ListContainersRequest,
    ListPodSandboxRequest, NamespaceMode, NamespaceOption, PodSandboxFilter, RunPodSandboxRequest,
    UserNamespace,
};
use crius_e2e::images::{self, ConfigSpec};
use crius_e2e::pods::{PodEnv, pod_config, shell_container, sleep_container, with_namespaces};
use tonic::Code;

#[tokio::test]
async fn bad_requests_get_the_right_codes() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();

    let mut no_uid = pod_config("bad", &env.log_dir("bad"));
    no_uid.metadata.as_mut().unwrap().uid.clear();
    assert_eq!(
        flow.run_pod(&no_uid).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let mut no_meta = pod_config("bad", &env.log_dir("bad"));
    no_meta.metadata = None;
    assert_eq!(
        flow.run_pod(&no_meta).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let err = flow
        .client
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod_config("bad", &env.log_dir("bad"))),
            runtime_handler: "no-such-handler".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("no-such-handler"), "{err:?}");

    let userns = with_namespaces(
        pod_config("userns", &env.log_dir("userns")),
        NamespaceOption {
            userns_options: Some(UserNamespace {
                mode: NamespaceMode::Pod as i32,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    assert_eq!(
        flow.run_pod(&userns).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    // A parent of the other cgroup driver's kind: the kubelet's cgroupDriver does not match.
    let driver = flow
        .client
        .runtime_config(crius_e2e::cri::api::RuntimeConfigRequest::default())
        .await
        .unwrap()
        .into_inner()
        .linux
        .unwrap()
        .cgroup_driver;
    let other_kind = if driver == crius_e2e::cri::api::CgroupDriver::Systemd as i32 {
        "/kubepods/burstable/pod1"
    } else {
        "kubepods-burstable-pod1.slice"
    };
    let mut mismatched = pod_config("cgroup", &env.log_dir("cgroup"));
    mismatched.linux.get_or_insert_default().cgroup_parent = other_kind.into();
    let err = flow.run_pod(&mismatched).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("cgroupDriver"), "{err:?}");

    let pod = pod_config("good", &env.log_dir("good"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    // The same metadata again.
    assert_eq!(
        flow.run_pod(&pod).await.unwrap_err().code(),
        Code::AlreadyExists
    );

    let c = sleep_container("c", &env.image, 3600);
    let unknown = "0".repeat(64);
    assert_eq!(
        flow.create_container(&unknown, &c, &pod)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let missing_image = sleep_container("c", &format!("{}/e2e/absent:v1", env.registry.host()), 1);
    assert_eq!(
        flow.create_container(&pod_id, &missing_image, &pod)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let mut no_name = c.clone();
    no_name.metadata = None;
    assert_eq!(
        flow.create_container(&pod_id, &no_name, &pod)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    // An image with neither entrypoint nor cmd, and a request without a command: nothing to run.
    let mut bare = ConfigSpec::new("bare");
    bare.cmd.clear();
    let bare = images::push_single_with(&env.registry, "e2e/bare", "v1", bare)
        .await
        .unwrap();
    env.crius
        .images()
        .await
        .unwrap()
        .pull(&bare.reference)
        .await
        .unwrap();
    let mut no_command = shell_container("empty", &bare.reference, "");
    no_command.command.clear();
    let err = flow
        .create_container(&pod_id, &no_command, &pod)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    let id = flow.create_container(&pod_id, &c, &pod).await.unwrap();
    assert_eq!(
        flow.create_container(&pod_id, &c, &pod)
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    flow.start_container(&id).await.unwrap();
    assert_eq!(
        flow.start_container(&id).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        flow.container_status(&unknown).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        flow.pod_status(&unknown).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        flow.start_container(&unknown).await.unwrap_err().code(),
        Code::NotFound
    );

    // A removed container frees its name; the kubelet's restart comes with attempt + 1.
    flow.remove_container(&id).await.unwrap();
    let again = flow.create_container(&pod_id, &c, &pod).await.unwrap();
    let mut next = c.clone();
    next.metadata.as_mut().unwrap().attempt = 1;
    let restarted = flow.create_and_start(&pod_id, &next, &pod).await.unwrap();
    assert_ne!(again, restarted);

    // ExecSync in a container that is not running.
    assert_eq!(
        flow.exec_sync(&again, &["true"], std::time::Duration::from_secs(5))
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );

    // A stopped pod takes no new containers.
    flow.stop_pod(&pod_id).await.unwrap();
    let mut late = c.clone();
    late.metadata.as_mut().unwrap().name = "late".into();
    assert_eq!(
        flow.create_container(&pod_id, &late, &pod)
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    flow.remove_pod(&pod_id).await.unwrap();
    // The pod's name is free again.
    let pod_again = flow.run_pod(&pod).await.unwrap();
    flow.remove_pod(&pod_again).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

#[tokio::test]
async fn lists_filter_by_id_state_sandbox_and_labels() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let mut a = pod_config("a", &env.log_dir("a"));
    a.labels.insert("app".into(), "a".into());
    let mut b = pod_config("b", &env.log_dir("b"));
    b.labels.insert("app".into(), "b".into());
    let a_id = flow.run_pod(&a).await.unwrap();
    let b_id = flow.run_pod(&b).await.unwrap();
    let mut ca = sleep_container("ca", &env.image, 3600);
    ca.labels.insert("tier".into(), "front".into());
    let ca = flow.create_and_start(&a_id, &ca, &a).await.unwrap();
    let cb = flow
        .create_container(&b_id, &sleep_container("cb", &env.image, 3600), &b)
        .await
        .unwrap();

    let pods = |filter: PodSandboxFilter| ListPodSandboxRequest {
        filter: Some(filter),
    };
    let by_label = flow
        .client
        .list_pod_sandbox(pods(PodSandboxFilter {
            label_selector: HashMap::from([("app".into(), "b".into())]),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(
        by_label.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        [b_id.as_str()]
    );
    let by_prefix = flow
        .client
        .list_pod_sandbox(pods(PodSandboxFilter {
            id: a_id[..12].to_string(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(by_prefix.len(), 1);
    assert_eq!(by_prefix[0].id, a_id);

    let containers = |filter: ContainerFilter| ListContainersRequest {
        filter: Some(filter),
    };
    let running = flow
        .client
        .list_containers(containers(ContainerFilter {
            state: Some(ContainerStateValue {
                state: ContainerState::ContainerRunning as i32,
            }),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(
        running.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [ca.as_str()]
    );
    let of_b = flow
        .client
        .list_containers(containers(ContainerFilter {
            pod_sandbox_id: b_id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(
        of_b.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [cb.as_str()]
    );
    let front = flow
        .client
        .list_containers(containers(ContainerFilter {
            label_selector: HashMap::from([("tier".into(), "front".into())]),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(front.len(), 1);
    assert_eq!(front[0].id, ca);
    assert_eq!(front[0].pod_sandbox_id, a_id);

    flow.remove_pod(&a_id).await.unwrap();
    flow.remove_pod(&b_id).await.unwrap();
    assert!(flow.list_containers().await.unwrap().is_empty());
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

/// A spec the runtime refuses (here: a file mounted over a directory of the image) fails the
/// start, where the runtime's `create` runs, as under containerd: the container is then EXITED
/// with `StartError` (exit code 128) and the runtime's words, and removable; the kubelet makes
/// its next attempt a new container.
#[tokio::test]
async fn a_start_that_fails_in_the_runtime_leaves_the_container_exited_with_start_error() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("faillog", &env.log_dir("faillog"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let host_file = tempfile::NamedTempFile::new().unwrap();
    let mut c = sleep_container("broken", &env.image, 3600);
    c.log_path = "broken/0.log".into();
    c.mounts.push(crius_e2e::cri::api::Mount {
        container_path: "/etc".into(),
        host_path: host_file.path().display().to_string(),
        ..Default::default()
    });
    let id = flow.create_container(&pod_id, &c, &pod).await.unwrap();
    let err = flow.start_container(&id).await.unwrap_err();
    assert!(err.message().contains("Not a directory"), "{err:?}");
    let status = flow.container_status(&id).await.unwrap();
    assert_eq!(status.state, ContainerState::ContainerExited as i32);
    assert_eq!(
        (status.exit_code, status.reason.as_str()),
        (128, "StartError")
    );
    assert!(
        status.message.contains("Not a directory"),
        "{}",
        status.message
    );
    // Stopping it changes nothing; removing it works.
    flow.stop_container(&id, 0).await.unwrap();
    assert_eq!(
        flow.container_status(&id).await.unwrap().reason,
        "StartError"
    );
    flow.remove_container(&id).await.unwrap();
    assert!(flow.list_containers().await.unwrap().is_empty());

    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

/// A created container holds no process until it starts (its launch is part of the start): a
/// resource update before the start lands in the cgroup the start makes, and a stop before it
/// leaves it exited (137, as if its waiting process had been killed) and not startable.
#[tokio::test]
async fn a_created_container_takes_updates_before_its_start_and_a_stop_exits_it() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("unstarted", &env.log_dir("unstarted"));
    let pod_id = flow.run_pod(&pod).await.unwrap();

    let id = flow
        .create_container(&pod_id, &sleep_container("updated", &env.image, 3600), &pod)
        .await
        .unwrap();
    let limit = 80i64 << 20;
    flow.set_memory_limit(&id, limit).await.unwrap();
    flow.start_container(&id).await.unwrap();
    assert_eq!(env.container_memory_limit(&id), limit.to_string());

    let stopped = flow
        .create_container(&pod_id, &sleep_container("stopped", &env.image, 3600), &pod)
        .await
        .unwrap();
    flow.stop_container(&stopped, 0).await.unwrap();
    let status = flow.container_status(&stopped).await.unwrap();
    assert_eq!(status.state, ContainerState::ContainerExited as i32);
    assert_eq!(status.exit_code, 137);
    let refused = flow.start_container(&stopped).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    // A second stop is a no-op.
    flow.stop_container(&stopped, 0).await.unwrap();

    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}
