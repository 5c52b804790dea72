//! The image layers under a running pod stay on disk whatever happens to the image's name: a
//! configured pause image's layers are held by the pod from before its root is mounted until
//! RemovePodSandbox unmounts it — across a RemoveImage, the image garbage collection that
//! follows, and a daemon restart — and collected once the pod is gone; a container's rootfs
//! (and image volumes) are held by the container until its exit unmounts them.

use std::path::PathBuf;
use std::time::Duration;

use crius_e2e::cri::api::PodSandboxState;
use crius_e2e::images::{self, ConfigSpec, Format, ImageBuild, marker_layer};
use crius_e2e::layer::Compression;
use crius_e2e::pods::leak_check::mounts_under;
use crius_e2e::pods::{PodEnv, pod_config, sleep_container};

const SECOND: Duration = Duration::from_secs(1);

/// A pause image of its own: busybox (shared with the test image) and a layer no other image
/// has, holding `/pause-marker`.
fn pause_image() -> ImageBuild {
    let mut spec = ConfigSpec::new("pause-held");
    spec.entrypoint = vec![
        "/bin/sh".into(),
        "-c".into(),
        "trap 'exit 0' TERM; while :; do sleep 1; done".into(),
    ];
    spec.cmd.clear();
    let layers = vec![
        images::busybox_layer().unwrap(),
        marker_layer("pause-marker", b"held\n", Compression::Gzip(6)).unwrap(),
    ];
    ImageBuild::new(Format::Oci, &spec, layers).unwrap()
}

/// Pulls and removes another image: a RemoveImage runs the image store's garbage collection.
async fn collect_garbage(env: &PodEnv, tag: &str) {
    let other = images::push_single(&env.registry, "e2e/other", tag)
        .await
        .unwrap();
    let mut client = env.crius.images().await.unwrap();
    client.pull(&other.reference).await.unwrap();
    client.remove(&other.reference).await.unwrap();
}

#[tokio::test]
async fn a_running_pods_pause_image_layers_outlive_remove_image_and_a_restart() {
    // Registry first: the daemon's configuration names the pause image in it.
    let registry = crius_e2e::TestRegistry::start(crius_e2e::RegistryMode::Plain)
        .await
        .unwrap();
    let pause = images::push_image(&registry, "e2e/pause-held", "v1", &pause_image())
        .await
        .unwrap();
    let pause_ref = pause.reference.clone();
    let mut env = PodEnv::start_with(|b| {
        b.insecure(&registry.host())
            .config_value("runtime.pause_image", pause_ref.as_str())
    })
    .await
    .unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("held", &env.log_dir("held"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let marker_hex = pause.diff_ids[1].trim_start_matches("sha256:").to_owned();
    let marker_layer: PathBuf = env.crius.layers_dir().join(&marker_hex);
    let pause_root = env
        .crius
        .runroot()
        .join("sandboxes")
        .join(&pod_id)
        .join("pause/rootfs");
    assert!(marker_layer.is_dir(), "{}", marker_layer.display());
    assert_eq!(
        std::fs::read_to_string(pause_root.join("pause-marker")).unwrap(),
        "held\n"
    );

    // RemoveImage removes the name; the layers under the running pause stay, through the
    // garbage collection of a later removal too.
    let mut client = env.crius.images().await.unwrap();
    client.remove(&pause_ref).await.unwrap();
    assert_eq!(client.status(&pause_ref).await.unwrap(), None);
    collect_garbage(&env, "v1").await;
    assert!(
        marker_layer.is_dir(),
        "the pause root's layer was collected"
    );
    assert_eq!(
        std::fs::read_to_string(pause_root.join("pause-marker")).unwrap(),
        "held\n"
    );

    // The hold is recorded with the image index: a restart keeps it (the pod still exists).
    env.crius.restart().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    collect_garbage(&env, "v2").await;
    assert!(marker_layer.is_dir(), "collected after a restart");

    // The pod still works: Ready, and a container runs and execs in it.
    assert_eq!(
        flow.pod_status(&pod_id).await.unwrap().state,
        PodSandboxState::SandboxReady as i32
    );
    let c = flow
        .create_and_start(&pod_id, &sleep_container("c", &env.image, 3600), &pod)
        .await
        .unwrap();
    let r = flow
        .exec_sync(&c, &["hostname"], 10 * SECOND)
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), "held");
    assert_eq!(
        std::fs::read_to_string(pause_root.join("pause-marker")).unwrap(),
        "held\n"
    );

    // Removing the pod unmounts the pause root and releases the hold: the layer goes.
    flow.remove_pod(&pod_id).await.unwrap();
    assert!(
        !marker_layer.exists(),
        "the pause image's layer outlived its pod"
    );
    assert_eq!(mounts_under(&[&pause_root]), []);
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

/// A container's image layers: held while it runs (across RemoveImage and the collection after
/// it), released at its exit — its rootfs unmounted then, as containerd deletes its task — so an
/// image removed meanwhile is collected as soon as the container has stopped, before it is
/// removed.
#[tokio::test]
async fn a_containers_image_layers_are_held_while_it_runs_and_released_at_its_exit() {
    let env = PodEnv::start().await.unwrap();
    let mut spec = ConfigSpec::new("held-app");
    spec.cmd = vec!["sleep".into(), "3600".into()];
    let layers = vec![
        images::busybox_layer().unwrap(),
        marker_layer("app-marker", b"mine\n", Compression::Gzip(6)).unwrap(),
    ];
    let build = ImageBuild::new(Format::Oci, &spec, layers).unwrap();
    let image = images::push_image(&env.registry, "e2e/held-app", "v1", &build)
        .await
        .unwrap();
    let mut client = env.crius.images().await.unwrap();
    client.pull(&image.reference).await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("held-app", &env.log_dir("held-app"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let id = flow
        .create_and_start(
            &pod_id,
            &sleep_container("app", &image.reference, 3600),
            &pod,
        )
        .await
        .unwrap();
    let marker_hex = image.diff_ids[1].trim_start_matches("sha256:").to_owned();
    let marker_layer: PathBuf = env.crius.layers_dir().join(&marker_hex);
    let rootfs = env
        .crius
        .runroot()
        .join("containers")
        .join(&id)
        .join("rootfs");

    client.remove(&image.reference).await.unwrap();
    collect_garbage(&env, "v1").await;
    assert!(marker_layer.is_dir(), "collected under a running container");
    let r = flow
        .exec_sync(&id, &["cat", "/app-marker"], 10 * SECOND)
        .await
        .unwrap();
    assert_eq!(r.stdout, b"mine\n");

    // Stopped: unmounted, and its layers collected with the next collection.
    flow.stop_container(&id, 0).await.unwrap();
    assert_eq!(mounts_under(&[&rootfs]), []);
    collect_garbage(&env, "v2").await;
    assert!(
        !marker_layer.exists(),
        "the layer of an image nobody runs outlived the container's exit"
    );
    flow.remove_container(&id).await.unwrap();
    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}
