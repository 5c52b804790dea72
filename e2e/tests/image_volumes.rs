//! Image volumes (CRI `Mount.image`, Kubernetes' ImageVolume): an image the kubelet pulled,
//! mounted read-only at a container path — its layers merged, id-mapped in a pod
//! with its own user namespace, kept on disk while a container mounts them, and nothing left
//! once the container is gone.

use std::time::Duration;

use crius_e2e::cri::api::{
    IdMapping, ImageSpec, Mount, NamespaceMode, NamespaceOption, UserNamespace,
};
use crius_e2e::images::{self, ConfigSpec, Format, ImageBuild, marker_layer};
use crius_e2e::layer::{Compression, Layer, TarBuilder};
use crius_e2e::pods::leak_check::mounts_under;
use crius_e2e::pods::{PodEnv, PodFlow, pod_config, shell_container, with_namespaces};
use tonic::Code;

const SECOND: Duration = Duration::from_secs(1);

/// Two layers: the upper one replaces `data/both.txt` and adds an executable script.
fn two_layer_image() -> ImageBuild {
    let mut lower = TarBuilder::new();
    lower
        .dir("data", 0o755)
        .unwrap()
        .file("data/low.txt", 0o644, b"low\n")
        .unwrap()
        .file("data/both.txt", 0o644, b"layer 1\n")
        .unwrap();
    let mut upper = TarBuilder::new();
    upper
        .dir("data", 0o755)
        .unwrap()
        .file("data/both.txt", 0o644, b"layer 2\n")
        .unwrap()
        .file("tool.sh", 0o755, b"#!/bin/sh\necho ran\n")
        .unwrap();
    let layers = vec![
        Layer::from_tar(&lower.finish().unwrap(), Compression::Gzip(6)).unwrap(),
        Layer::from_tar(&upper.finish().unwrap(), Compression::Gzip(6)).unwrap(),
    ];
    ImageBuild::new(Format::Oci, &ConfigSpec::new("volume"), layers).unwrap()
}

/// Pushes `image` to the test registry and pulls it as the kubelet does: the `image_ref` it
/// gets back is what it puts in `Mount.image`.
async fn push_and_pull(env: &PodEnv, repo: &str, image: &ImageBuild) -> String {
    let pushed = images::push_image(&env.registry, repo, "v1", image)
        .await
        .unwrap();
    env.crius
        .images()
        .await
        .unwrap()
        .pull(&pushed.reference)
        .await
        .unwrap()
}

fn image_mount(dest: &str, image: &str) -> Mount {
    Mount {
        container_path: dest.into(),
        image: Some(ImageSpec {
            image: image.into(),
            ..ImageSpec::default()
        }),
        readonly: true,
        ..Mount::default()
    }
}

/// Runs `script`; its exit code and stdout.
async fn sh(flow: &mut PodFlow, id: &str, script: &str) -> (i32, String) {
    let r = flow
        .exec_sync(id, &["sh", "-c", script], 10 * SECOND)
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&r.stdout).trim().to_string();
    (r.exit_code, out)
}

#[tokio::test]
async fn an_image_volume_is_the_merged_image_read_only() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let two = push_and_pull(&env, "e2e/volume", &two_layer_image()).await;
    let one_image = ImageBuild::new(
        Format::Oci,
        &ConfigSpec::new("one-layer"),
        vec![marker_layer("hello.txt", b"one\n", Compression::Gzip(6)).unwrap()],
    )
    .unwrap();
    let one = push_and_pull(&env, "e2e/one-layer", &one_image).await;

    let pod = pod_config("imgvol", &env.log_dir("imgvol"));
    let pod_id = flow.run_pod(&pod).await.unwrap();

    // An image that was not pulled.
    let mut missing = shell_container("missing", &env.image, "sleep 3600");
    missing.mounts = vec![image_mount("/vol", "127.0.0.1:1/e2e/absent:v1")];
    let err = flow
        .create_container(&pod_id, &missing, &pod)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");

    let mut c = shell_container("app", &env.image, "sleep 3600");
    c.mounts = vec![image_mount("/vol", &two), image_mount("/one", &one)];
    let id = flow.create_and_start(&pod_id, &c, &pod).await.unwrap();

    // The layers merged, the upper one winning; a one-layer image works too.
    assert_eq!(
        sh(
            &mut flow,
            &id,
            "cat /vol/data/low.txt /vol/data/both.txt /one/hello.txt"
        )
        .await,
        (0, "low\nlayer 2\none".into())
    );
    // Read-only, whatever the container's root may do; not noexec (as cri-o and containerd).
    assert_ne!(sh(&mut flow, &id, "touch /vol/new").await.0, 0);
    assert_ne!(sh(&mut flow, &id, "touch /one/new").await.0, 0);
    assert_eq!(sh(&mut flow, &id, "/vol/tool.sh").await, (0, "ran".into()));
    let (_, line) = sh(&mut flow, &id, "grep ' /vol ' /proc/self/mounts").await;
    let opts: Vec<&str> = line.split(' ').nth(3).unwrap().split(',').collect();
    assert!(opts.contains(&"ro"), "{line}");

    // A writable image volume is refused (the CRI defines them read-only).
    let mut writable = shell_container("writable", &env.image, "sleep 3600");
    writable.mounts = vec![image_mount("/vol", &two)];
    writable.mounts[0].readonly = false;
    let err = flow
        .create_container(&pod_id, &writable, &pod)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");

    // The status gives the mounts as the request did.
    let status = flow.container_status(&id).await.unwrap();
    let images: Vec<_> = status
        .mounts
        .iter()
        .map(|m| m.image.as_ref().map(|i| i.image.clone()))
        .collect();
    assert_eq!(images, [Some(two.clone()), Some(one.clone())]);

    // Removing the image keeps the layers the container mounts; removing the container
    // then deletes them.
    let layers_before = env.crius.layer_dirs().len();
    env.crius
        .images()
        .await
        .unwrap()
        .remove(&two)
        .await
        .unwrap();
    assert_eq!(env.crius.layer_dirs().len(), layers_before);
    assert_eq!(
        sh(&mut flow, &id, "cat /vol/data/low.txt").await,
        (0, "low".into())
    );
    let run_dir = env.crius.runroot().join("containers").join(&id);
    let volumes: Vec<_> = mounts_under(&[&run_dir.join("volumes")])
        .into_iter()
        .map(|m| (m.mount_point, m.fs_type))
        .collect();
    assert_eq!(
        volumes,
        [
            (run_dir.join("volumes/0"), "overlay".to_string()),
            (run_dir.join("volumes/1"), "overlay".to_string())
        ]
    );
    flow.stop_container(&id, 0).await.unwrap();
    flow.remove_container(&id).await.unwrap();
    assert_eq!(env.crius.layer_dirs().len(), layers_before - 2);
    assert_eq!(mounts_under(&[&run_dir]), []);

    // The directories go after RemoveContainer's answer, and before RemovePodSandbox's.
    flow.remove_pod(&pod_id).await.unwrap();
    assert!(!run_dir.exists());
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

#[tokio::test]
async fn an_image_volume_in_a_user_namespace_pod_belongs_to_the_pods_root() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let two = push_and_pull(&env, "e2e/volume", &two_layer_image()).await;
    let map = vec![IdMapping {
        host_id: 3 * 65536,
        container_id: 0,
        length: 65536,
    }];
    let ns = NamespaceOption {
        userns_options: Some(UserNamespace {
            mode: NamespaceMode::Pod as i32,
            uids: map.clone(),
            gids: map,
        }),
        ..NamespaceOption::default()
    };
    let pod = with_namespaces(pod_config("imgvol-userns", &env.log_dir("u")), ns);
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let mut c = shell_container("app", &env.image, "sleep 3600");
    c.mounts = vec![image_mount("/vol", &two)];
    let id = flow.create_and_start(&pod_id, &c, &pod).await.unwrap();
    assert_eq!(
        sh(
            &mut flow,
            &id,
            "stat -c %u:%g /vol/data/low.txt /vol/tool.sh /vol"
        )
        .await,
        (0, ["0:0"; 3].join("\n"))
    );
    assert_eq!(
        sh(&mut flow, &id, "cat /vol/data/both.txt").await,
        (0, "layer 2".into())
    );
    assert_ne!(sh(&mut flow, &id, "touch /vol/new").await.0, 0);

    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

#[tokio::test]
async fn an_image_sub_path_mounts_only_that_part_of_the_image() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let image = push_and_pull(&env, "e2e/subpath", &two_layer_image()).await;
    let pod = pod_config("subpath", &env.log_dir("subpath"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let sub = |dest: &str, path: &str| Mount {
        image_sub_path: path.into(),
        ..image_mount(dest, &image)
    };

    // A directory and a single file of the image.
    let mut c = shell_container("app", &env.image, "sleep 3600");
    c.mounts = vec![sub("/dir", "data"), sub("/tool", "tool.sh")];
    let id = flow.create_and_start(&pod_id, &c, &pod).await.unwrap();
    assert_eq!(
        sh(&mut flow, &id, "ls /dir; cat /dir/both.txt; /tool").await,
        (0, "both.txt\nlow.txt\nlayer 2\nran".into())
    );
    // The status echoes the sub path and gives the volume's digest.
    let status = flow.container_status(&id).await.unwrap();
    let echoed: Vec<_> = status
        .mounts
        .iter()
        .map(|m| m.image_sub_path.as_str())
        .collect();
    assert_eq!(echoed, ["data", "tool.sh"]);
    // What PullImage answered for it (critest's image volume digest spec).
    let volume = status.mounts[0].image.clone().unwrap();
    assert_eq!(volume.image_ref, image, "{volume:?}");

    // Paths that leave the image are refused; one the image lacks is not found.
    for (path, code) in [
        ("../data", Code::InvalidArgument),
        ("/data", Code::InvalidArgument),
        ("data/../../etc", Code::InvalidArgument),
        ("absent", Code::NotFound),
    ] {
        let mut bad = shell_container("bad", &env.image, "sleep 3600");
        bad.mounts = vec![sub("/vol", path)];
        let err = flow
            .create_container(&pod_id, &bad, &pod)
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{path}: {err}");
    }

    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}
