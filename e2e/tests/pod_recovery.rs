//! State survives the daemon: after SIGTERM or `kill -9` a restarted crius reports every pod
//! and container as it is — still running under its monitor, or exited meanwhile with its real
//! exit code — and a crash in the middle of pod churn leaks nothing.

use std::time::Duration;

use crius_e2e::cri::api::{ContainerState, PodSandboxState};
use crius_e2e::pods::{PodEnv, PodFlow, pod_config, shell_container, sleep_container};

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn restart_after_kill9_recovers_running_and_exited_containers() {
    let mut env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("survivor", &env.log_dir("survivor"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let running = flow
        .create_and_start(&pod_id, &sleep_container("running", &env.image, 3600), &pod)
        .await
        .unwrap();
    let later = flow
        .create_and_start(
            &pod_id,
            &shell_container("later", &env.image, "sleep 2; echo bye; exit 5"),
            &pod,
        )
        .await
        .unwrap();
    let created = flow
        .create_container(&pod_id, &sleep_container("created", &env.image, 3600), &pod)
        .await
        .unwrap();
    let before_pod = flow.pod_status(&pod_id).await.unwrap();

    env.crius.kill9().await.unwrap();
    // `later` exits while no daemon runs.
    tokio::time::sleep(3 * SECOND).await;
    env.crius.restart().await.unwrap();
    let mut flow = env.flow().await.unwrap();

    let after_pod = flow.pod_status(&pod_id).await.unwrap();
    assert_eq!(after_pod.state, PodSandboxState::SandboxReady as i32);
    assert_eq!(after_pod.network, before_pod.network);
    assert_eq!(after_pod.created_at, before_pod.created_at);
    assert_eq!(after_pod.metadata, before_pod.metadata);

    let r = flow.container_status(&running).await.unwrap();
    assert_eq!(r.state, ContainerState::ContainerRunning as i32);
    let echo = flow
        .exec_sync(&running, &["echo", "still here"], 10 * SECOND)
        .await
        .unwrap();
    assert_eq!(echo.stdout, b"still here\n");
    let l = flow
        .wait_container_exited(&later, 10 * SECOND)
        .await
        .unwrap();
    assert_eq!((l.exit_code, l.reason.as_str()), (5, "Error"));
    assert!(l.finished_at > l.started_at);
    let c = flow.container_status(&created).await.unwrap();
    assert_eq!(c.state, ContainerState::ContainerCreated as i32);
    flow.start_container(&created).await.unwrap();
    assert_eq!(
        flow.container_status(&created).await.unwrap().state,
        ContainerState::ContainerRunning as i32
    );

    // A clean restart too.
    env.crius.stop().await.unwrap();
    env.crius.restart().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    assert_eq!(flow.list_containers().await.unwrap().len(), 3);
    flow.stop_container(&running, 0).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

/// One pod's life, as fast as it goes, until the daemon disappears.
async fn churn(mut flow: PodFlow, image: String, logs: std::path::PathBuf) {
    for i in 0.. {
        let pod = pod_config(&format!("churn-{i}"), &logs);
        let Ok(pod_id) = flow.run_pod(&pod).await else {
            return;
        };
        let c = sleep_container("c", &image, 3600);
        if flow.create_and_start(&pod_id, &c, &pod).await.is_err()
            || flow.stop_pod(&pod_id).await.is_err()
            || flow.remove_pod(&pod_id).await.is_err()
        {
            return;
        }
    }
}

#[tokio::test]
async fn kill9_during_pod_churn_loses_and_leaks_nothing() {
    let mut env = PodEnv::start().await.unwrap();
    for (round, delay_ms) in [700u64, 1300, 2100].into_iter().enumerate() {
        let flow = env.flow().await.unwrap();
        let churner = tokio::spawn(churn(
            flow,
            env.image.clone(),
            env.log_dir(&format!("round{round}")),
        ));
        // A second pod that must come through every crash intact.
        let mut flow = env.flow().await.unwrap();
        let keeper = pod_config(&format!("keeper-{round}"), &env.log_dir("keeper"));
        let keeper_id = flow.run_pod(&keeper).await.unwrap();
        let kept = flow
            .create_and_start(
                &keeper_id,
                &sleep_container("kept", &env.image, 3600),
                &keeper,
            )
            .await
            .unwrap();

        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        env.crius.kill9().await.unwrap();
        let _ = churner.await;
        env.crius.restart().await.unwrap();

        let mut flow = env.flow().await.unwrap();
        assert_eq!(
            flow.container_status(&kept).await.unwrap().state,
            ContainerState::ContainerRunning as i32,
            "round {round}"
        );
        // Everything listed answers its status; then all of it goes away cleanly.
        for p in flow.list_pods().await.unwrap() {
            flow.pod_status(&p.id).await.unwrap();
        }
        for c in flow.list_containers().await.unwrap() {
            flow.container_status(&c.id).await.unwrap();
        }
        flow.cleanup_all().await.unwrap();
        assert!(flow.list_pods().await.unwrap().is_empty());
        let leaks = env.leaks();
        assert!(leaks.is_empty(), "round {round}: {leaks}");
    }
}
