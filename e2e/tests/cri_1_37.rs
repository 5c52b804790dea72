//! What CRI 1.33–1.37 added, against the real daemon: the `Stream*` list RPCs give what their
//! `List*` twins give, `UpdatePodSandboxResources` records a resize (and writes a pod's own
//! cgroup), containers report the image name the user wrote, and the RPCs crius does not
//! support say so with UNIMPLEMENTED (the pod metrics RPCs are tested in metrics.rs).

use std::collections::BTreeSet;

use crius_e2e::cri::api::{
    CheckpointPodRequest, ContainerFilter, ContainerState, ContainerStateValue,
    LinuxContainerResources, LinuxPodSandboxConfig, ListContainerStatsRequest,
    ListContainersRequest, ListImagesRequest, ListPodSandboxRequest, ListPodSandboxStatsRequest,
    PodSandboxFilter, RestorePodRequest, StreamContainerStatsRequest, StreamContainersRequest,
    StreamImagesRequest, StreamPodSandboxStatsRequest, StreamPodSandboxesRequest,
    UpdatePodSandboxResourcesRequest,
};
use crius_e2e::pods::{PodEnv, pod_config, sleep_container};
use futures::StreamExt;
use tonic::{Code, Status, Streaming};

/// Every message of a server stream, each checked to hold at least one item.
async fn drain<M>(stream: Streaming<M>, items: impl Fn(M) -> Vec<String>) -> Vec<String> {
    let messages: Vec<Result<M, Status>> = stream.collect().await;
    let mut all = Vec::new();
    for m in messages {
        let ids = items(m.unwrap());
        assert!(!ids.is_empty(), "a Stream* message without items");
        all.extend(ids);
    }
    all
}

fn sorted(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    ids.into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn stream_rpcs_give_what_the_list_rpcs_give() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let mut images = env.crius.images().await.unwrap();
    let a = pod_config("stream-a", &env.log_dir("a"));
    let b = pod_config("stream-b", &env.log_dir("b"));
    let pod_a = flow.run_pod(&a).await.unwrap();
    let pod_b = flow.run_pod(&b).await.unwrap();
    let running = flow
        .create_and_start(&pod_a, &sleep_container("run", &env.image, 3600), &a)
        .await
        .unwrap();
    flow.create_container(&pod_b, &sleep_container("made", &env.image, 3600), &b)
        .await
        .unwrap();
    let client = &mut flow.client;

    // Pods: all of them, then only one by id.
    for filter in [
        None,
        Some(PodSandboxFilter {
            id: pod_b.clone(),
            ..Default::default()
        }),
    ] {
        let listed = client
            .list_pod_sandbox(ListPodSandboxRequest {
                filter: filter.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .items;
        let streamed = client
            .stream_pod_sandboxes(StreamPodSandboxesRequest { filter })
            .await
            .unwrap()
            .into_inner();
        let streamed = drain(streamed, |m| {
            m.pod_sandboxes.into_iter().map(|p| p.id).collect()
        })
        .await;
        assert_eq!(streamed.len(), listed.len(), "an item sent twice");
        assert_eq!(sorted(streamed), sorted(listed.into_iter().map(|p| p.id)));
    }

    // Containers: all of them, then only the running one.
    let running_only = ContainerFilter {
        state: Some(ContainerStateValue {
            state: ContainerState::ContainerRunning as i32,
        }),
        ..Default::default()
    };
    for filter in [None, Some(running_only)] {
        let listed = client
            .list_containers(ListContainersRequest {
                filter: filter.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .containers;
        let streamed = client
            .stream_containers(StreamContainersRequest { filter })
            .await
            .unwrap()
            .into_inner();
        let streamed = drain(streamed, |m| {
            m.containers.into_iter().map(|c| c.id).collect()
        })
        .await;
        assert_eq!(streamed.len(), listed.len(), "an item sent twice");
        assert_eq!(sorted(streamed), sorted(listed.into_iter().map(|c| c.id)));
    }
    let in_pod_a = client
        .stream_containers(StreamContainersRequest {
            filter: Some(ContainerFilter {
                pod_sandbox_id: pod_a.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let in_pod_a = drain(in_pod_a, |m| {
        m.containers.into_iter().map(|c| c.id).collect()
    })
    .await;
    assert_eq!(in_pod_a, [running]);

    // Stats: the same containers and pods (the numbers move between two calls).
    let listed = client
        .list_container_stats(ListContainerStatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stats;
    let streamed = client
        .stream_container_stats(StreamContainerStatsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let id_of = |a: Option<crius_e2e::cri::api::ContainerAttributes>| a.unwrap_or_default().id;
    let streamed = drain(streamed, |m| {
        m.container_stats
            .into_iter()
            .map(|s| id_of(s.attributes))
            .collect()
    })
    .await;
    assert_eq!(streamed.len(), 2);
    assert_eq!(
        sorted(streamed),
        sorted(listed.into_iter().map(|s| id_of(s.attributes)))
    );

    let listed = client
        .list_pod_sandbox_stats(ListPodSandboxStatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stats;
    let streamed = client
        .stream_pod_sandbox_stats(StreamPodSandboxStatsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let pod_of = |a: Option<crius_e2e::cri::api::PodSandboxAttributes>| a.unwrap_or_default().id;
    let streamed = drain(streamed, |m| {
        m.pod_sandbox_stats
            .into_iter()
            .map(|s| pod_of(s.attributes))
            .collect()
    })
    .await;
    assert_eq!(sorted(streamed), sorted([pod_a.clone(), pod_b.clone()]));
    assert_eq!(listed.len(), 2);

    // Images.
    let listed = images
        .client
        .list_images(ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .images;
    let streamed = images
        .client
        .stream_images(StreamImagesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let streamed = drain(streamed, |m| m.images.into_iter().map(|i| i.id).collect()).await;
    assert!(!streamed.is_empty());
    assert_eq!(sorted(streamed), sorted(listed.into_iter().map(|i| i.id)));

    // No pods, no messages: the stream just ends.
    flow.cleanup_all().await.unwrap();
    let empty = flow
        .client
        .stream_pod_sandboxes(StreamPodSandboxesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        drain(empty, |m| m
            .pod_sandboxes
            .into_iter()
            .map(|p| p.id)
            .collect())
        .await
        .is_empty()
    );
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

#[tokio::test]
async fn unsupported_rpcs_answer_unimplemented_with_the_reason() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let checkpoint = flow
        .client
        .checkpoint_pod(CheckpointPodRequest::default())
        .await
        .unwrap_err();
    assert_eq!(checkpoint.code(), Code::Unimplemented);
    assert!(checkpoint.message().contains("checkpoint"), "{checkpoint}");
    let restore = flow
        .client
        .restore_pod(RestorePodRequest::default())
        .await
        .unwrap_err();
    assert_eq!(restore.code(), Code::Unimplemented);
}

#[tokio::test]
async fn update_pod_sandbox_resources_records_and_writes_the_pods_own_cgroup() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let resize = |id: &str, quota: i64| UpdatePodSandboxResourcesRequest {
        pod_sandbox_id: id.to_string(),
        resources: Some(LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: quota,
            cpu_shares: 512,
            memory_limit_in_bytes: 256 << 20,
            ..Default::default()
        }),
        overhead: Some(LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 10_000,
            cpu_shares: 2,
            memory_limit_in_bytes: 1 << 20,
            ..Default::default()
        }),
    };

    // Under crius' shared parent there is nothing pod-level to write: OK all the same.
    let shared = pod_config("resize-shared", &env.log_dir("shared"));
    let shared_id = flow.run_pod(&shared).await.unwrap();
    flow.client
        .update_pod_sandbox_resources(resize(&shared_id, 50_000))
        .await
        .unwrap();

    // A pod in a cgroup of its own (kubelet's pod<uid> cgroup) gets resources + overhead.
    let own_parent = format!("{}/pod-own", env.cgroup_parent);
    let mut own = pod_config("resize-own", &env.log_dir("own"));
    own.linux = Some(LinuxPodSandboxConfig {
        cgroup_parent: own_parent.clone(),
        ..own.linux.unwrap_or_default()
    });
    let own_id = flow.run_pod(&own).await.unwrap();
    flow.client
        .update_pod_sandbox_resources(resize(&own_id, 50_000))
        .await
        .unwrap();
    let read = |file: &str| {
        let rel = own_parent.trim_start_matches('/');
        let v2 = std::path::Path::new("/sys/fs/cgroup").join(rel).join(file);
        std::fs::read_to_string(&v2)
            .or_else(|_| {
                let controller = file.split('.').next().unwrap_or_default();
                std::fs::read_to_string(
                    std::path::Path::new("/sys/fs/cgroup")
                        .join(controller)
                        .join(rel)
                        .join(file),
                )
            })
            .map(|s| s.trim().to_string())
    };
    match read("cpu.max") {
        Ok(max) => assert_eq!(max, "60000 100000"),
        Err(_) => {
            assert_eq!(read("cpu.cfs_quota_us").unwrap(), "60000");
            assert_eq!(read("cpu.shares").unwrap(), "514");
            assert_eq!(
                read("memory.limit_in_bytes").unwrap(),
                ((256u64 << 20) + (1 << 20)).to_string()
            );
        }
    }

    // Unknown pods are not found; a negative limit is refused.
    let err = flow
        .client
        .update_pod_sandbox_resources(resize("0123456789abcdef", 50_000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    let err = flow
        .client
        .update_pod_sandbox_resources(resize(&own_id, -5))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");

    flow.cleanup_all().await.unwrap();
    crius_e2e::pods::env::remove_cgroup_tree(&own_parent);
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

#[tokio::test]
async fn containers_report_the_image_name_the_user_wrote() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    // As kubelet does: the image id from PullImage, and the user's reference beside it.
    let id = env
        .crius
        .images()
        .await
        .unwrap()
        .pull(&env.image)
        .await
        .unwrap();
    let pod = pod_config("image-name", &env.log_dir("image-name"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let mut c = sleep_container("app", &id, 3600);
    c.image.as_mut().unwrap().user_specified_image = env.image.clone();
    let container = flow.create_and_start(&pod_id, &c, &pod).await.unwrap();

    let status = flow.container_status(&container).await.unwrap();
    let image = status.image.clone().unwrap();
    assert_eq!(image.image, env.image);
    assert_eq!(image.user_specified_image, env.image);
    assert_eq!(status.image_id, id);
    let repository = env.image.rsplit_once(':').unwrap().0;
    assert!(
        status
            .image_ref
            .starts_with(&format!("{repository}@sha256:")),
        "{} is not a digest of {repository}",
        status.image_ref
    );
    let listed = flow.list_containers().await.unwrap();
    let listed = listed.iter().find(|c| c.id == container).unwrap();
    assert_eq!(listed.image.as_ref().unwrap().image, env.image);
    assert_eq!(listed.image_ref, status.image_ref);

    flow.cleanup_all().await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}
