//! Pulls cut short by crius itself: the pull time limit, and blobs whose size is not what their
//! descriptor says. Each must fail with the right code, name the problem, and leave nothing.

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
