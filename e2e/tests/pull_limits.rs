//! Pulls cut short by crius itself: the pull time limit, blobs whose size is not what their
//! descriptor says, image metadata that contradicts itself and names the registry does not
//! have. Each must fail with the right code, name the problem, and leave nothing.

use std::time::Duration;

use crius_e2e::Crius;
use crius_e2e::images::{self, Format};
use crius_e2e::proxy::{BlobFault, Proxy};
use crius_e2e::registry::{RegistryMode, TestRegistry};
use crius_e2e::util::digest_hex;
use tonic::Code;

#[tokio::test]
async fn pull_timeout_is_deadline_exceeded_and_leaves_nothing() {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let pushed = images::push_single(&registry, "e2e/slow", "v1")
        .await
        .unwrap();
    let proxy = Proxy::for_registry(&registry).unwrap();
    proxy.set_fault_for(&pushed.layer_digests, BlobFault::Stall { after: 4096 });
    let crius = Crius::builder()
        .insecure(&proxy.host())
        .pull_timeout("6s")
        .start()
        .await
        .unwrap();
    let reference = format!("{}/e2e/slow:v1", proxy.host());
    let mut images = crius.images().await.unwrap();

    let error = images
        .pull(&reference)
        .await
        .expect_err("the layer never arrives");
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error:?}");
    assert!(error.message().contains("6s"), "{error:?}");
    assert!(images.list(None).await.unwrap().is_empty());
    // The abandoned download is torn down at once, not left waiting on the stalled registry.
    let tmp = crius.root().join("images/tmp");
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = std::fs::read_dir(&tmp).unwrap().count();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        left,
        0,
        "work files of the abandoned pull remain in {}",
        tmp.display()
    );
    proxy.release_stalled();
    assert!(crius.layer_dirs().is_empty(), "{:?}", crius.layer_dirs());

    proxy.clear();
    assert_eq!(images.pull(&reference).await.unwrap(), pushed.config_digest);
}

/// Pushes the single-layer image again under `tag` with its layer descriptor's size changed by
/// `delta` bytes (the registry stores manifests as given).
async fn push_with_layer_size_off_by(
    registry: &TestRegistry,
    tag: &str,
    delta: i64,
) -> (String, String) {
    let image = images::single().unwrap();
    assert_eq!(image.format, Format::Oci);
    images::push_image(registry, "e2e/sized", "base", &image)
        .await
        .unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(&image.manifest.data).unwrap();
    let size = manifest["layers"][0]["size"].as_i64().unwrap();
    manifest["layers"][0]["size"] = serde_json::json!(size + delta);
    images::push_manifest_raw(
        registry,
        "e2e/sized",
        tag,
        &image.manifest.media_type,
        serde_json::to_vec(&manifest).unwrap(),
    )
    .await
    .unwrap();
    (
        format!("{}/e2e/sized:{tag}", registry.host()),
        image.layers[0].0.digest.clone(),
    )
}

#[tokio::test]
async fn blob_larger_or_smaller_than_its_descriptor_fails_naming_it() {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let crius = Crius::builder()
        .insecure(&registry.host())
        .start()
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    for (tag, delta) in [("short", -100), ("long", 100)] {
        let (reference, layer) = push_with_layer_size_off_by(&registry, tag, delta).await;
        let error = images
            .pull(&reference)
            .await
            .expect_err("size mismatch must fail");
        assert!(
            error.message().contains(digest_hex(&layer)) && error.message().contains("bytes"),
            "{tag}: {error:?}"
        );
        assert_eq!(images.status(&reference).await.unwrap(), None);
        assert!(
            crius.layer_dirs().is_empty(),
            "{tag}: {:?}",
            crius.layer_dirs()
        );
    }
}

/// Pushes the single-layer image's layers, then a manifest under `tag` whose config descriptor
/// is `edit`ed (and, when `config` is given, names that config blob instead).
async fn push_with_config(
    registry: &TestRegistry,
    tag: &str,
    config: Option<serde_json::Value>,
    edit: impl FnOnce(&mut serde_json::Value),
) -> String {
    let image = images::single().unwrap();
    images::push_image(registry, "e2e/meta", "base", &image)
        .await
        .unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(&image.manifest.data).unwrap();
    if let Some(config) = config {
        let body = serde_json::to_vec(&config).unwrap();
        let size = body.len();
        let digest = images::push_blob(registry, "e2e/meta", body).await.unwrap();
        manifest["config"]["digest"] = serde_json::json!(digest);
        manifest["config"]["size"] = serde_json::json!(size);
    }
    edit(&mut manifest["config"]);
    images::push_manifest_raw(
        registry,
        "e2e/meta",
        tag,
        &image.manifest.media_type,
        serde_json::to_vec(&manifest).unwrap(),
    )
    .await
    .unwrap();
    format!("{}/e2e/meta:{tag}", registry.host())
}

/// Image metadata that contradicts itself is refused as containerd refuses it — a config
/// blob larger or smaller than its descriptor, a config whose `rootfs.type` is not `layers`, a
/// config descriptor that is not an image config — and a tag the registry does not have is
/// NOT_FOUND. Each refusal leaves no blob and no layer in the store.
#[tokio::test]
async fn lying_image_metadata_is_refused_and_leaves_nothing() {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let crius = Crius::builder()
        .insecure(&registry.host())
        .start()
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    let blobs = crius.root().join("images/blobs/sha256");
    let stored_blobs = || {
        std::fs::read_dir(&blobs)
            .map(|d| d.count())
            .unwrap_or_default()
    };
    let good: serde_json::Value =
        serde_json::from_slice(&images::single().unwrap().config.data).unwrap();
    let mut squashfs = good.clone();
    squashfs["rootfs"]["type"] = serde_json::json!("squashfs");

    let cases: Vec<(&str, String, Code, &str)> = vec![
        (
            "config longer than its descriptor",
            push_with_config(&registry, "cfg-short", None, |c| {
                c["size"] = serde_json::json!(c["size"].as_i64().unwrap() - 1)
            })
            .await,
            Code::Unknown,
            "bytes",
        ),
        (
            "config shorter than its descriptor",
            push_with_config(&registry, "cfg-long", None, |c| {
                c["size"] = serde_json::json!(c["size"].as_i64().unwrap() + 1)
            })
            .await,
            Code::Unknown,
            "bytes",
        ),
        (
            "rootfs.type not layers",
            push_with_config(&registry, "squashfs", Some(squashfs), |_| {}).await,
            Code::Unknown,
            "rootfs.type",
        ),
        (
            "an artifact's config",
            push_with_config(&registry, "helm", None, |c| {
                c["mediaType"] = serde_json::json!("application/vnd.cncf.helm.config.v1+json")
            })
            .await,
            Code::FailedPrecondition,
            "not an image config",
        ),
        (
            "an unknown tag",
            format!("{}/e2e/meta:never-pushed", registry.host()),
            Code::NotFound,
            "manifest unknown",
        ),
        (
            "an unknown repository",
            format!("{}/e2e/nothing-here:v1", registry.host()),
            Code::NotFound,
            "e2e/nothing-here",
        ),
    ];
    for (case, reference, code, says) in cases {
        let error = images.pull(&reference).await.expect_err(case);
        assert_eq!(error.code(), code, "{case}: {error:?}");
        assert!(error.message().contains(says), "{case}: {error:?}");
        assert_eq!(images.status(&reference).await.unwrap(), None, "{case}");
        assert!(images.list(None).await.unwrap().is_empty(), "{case}");
        assert!(
            crius.layer_dirs().is_empty(),
            "{case}: {:?}",
            crius.layer_dirs()
        );
        assert_eq!(
            stored_blobs(),
            0,
            "{case}: blobs left in {}",
            blobs.display()
        );
    }
    // The same image with honest metadata pulls.
    let honest = push_with_config(&registry, "honest", None, |_| {}).await;
    images.pull(&honest).await.unwrap();
    assert!(stored_blobs() > 0);
}
