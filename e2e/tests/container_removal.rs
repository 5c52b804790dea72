//! RemoveContainer answers once the container is stopped and recorded as being removed; the
//! runtime's delete, the rootfs unmount and the files go after the reply. To the CRI the
//! container is gone at once (its name free again), its cleanup does finish, and a daemon killed
//! right after the answer finishes it at start-up: nothing is left either way.

use std::time::{Duration, Instant};

use crius_e2e::pods::{PodEnv, pod_config, sleep_container};
use tonic::Code;

/// Waits (with a deadline) until no mount of this process' view names `id`.
async fn wait_unmounted(id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let left: Vec<&str> = table.lines().filter(|l| l.contains(id)).collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "still mounted: {left:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn mounted(id: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(id))
}

#[tokio::test]
async fn a_removed_container_is_gone_at_once_and_its_cleanup_finishes_even_across_a_kill9() {
    let mut env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("removal", &env.log_dir("removal"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let config = sleep_container("app", &env.image, 3600);

    // A running container: stopped before the answer, gone to the CRI at once.
    let running = flow.create_and_start(&pod_id, &config, &pod).await.unwrap();
    assert!(mounted(&running));
    flow.remove_container(&running).await.unwrap();
    let status = flow.container_status(&running).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let listed = flow.list_containers().await.unwrap();
    assert!(listed.iter().all(|c| c.id != running), "{listed:?}");
    // Its name is free: the same request makes a new container right away.
    let again = flow.create_container(&pod_id, &config, &pod).await.unwrap();
    assert_ne!(again, running);
    wait_unmounted(&running).await;
    // Removing it twice is still fine.
    flow.remove_container(&running).await.unwrap();

    // Killed right after the answer: the restarted daemon finishes the removal.
    flow.remove_container(&again).await.unwrap();
    env.crius.kill9().await.unwrap();
    env.crius.restart().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let status = flow.container_status(&again).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    wait_unmounted(&again).await;

    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}
