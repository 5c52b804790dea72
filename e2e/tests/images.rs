//! The CRI ImageService against throw-away registries: pulls of every image shape, status,
//! listing, authentication, TLS, insecure registries, mirrors, removal, concurrency, restarts,
//! interrupted and corrupted downloads.

use std::time::Duration;

use crius_cri_api::v1::Image;
use crius_e2e::cri::{Images, auth_field, auth_password};
use crius_e2e::images::{self, ConfigSpec, KIND_LABEL, PushedImage};
use crius_e2e::proxy::{BlobFault, Proxy};
use crius_e2e::registry::{RegistryMode, TestRegistry};
use crius_e2e::util::{digest_hex, walk};
use crius_e2e::{Crius, PushedIndex};
use tonic::Code;

/// A plain-HTTP registry and a daemon that treats it as insecure.
async fn plain_setup() -> (TestRegistry, Crius) {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let crius = Crius::builder()
        .insecure(&registry.host())
        .start()
        .await
        .unwrap();
    (registry, crius)
}

/// `PullImage`'s `image_ref` must identify the image: its id, or `name@<manifest digest>`.
fn assert_image_ref(image_ref: &str, id: &str, manifest_digests: &[&str]) {
    assert!(
        image_ref == id
            || manifest_digests
                .iter()
                .any(|d| image_ref.ends_with(&format!("@{d}"))),
        "image_ref {image_ref:?} is neither the id {id} nor a digest reference to {manifest_digests:?}"
    );
}

async fn status_of(images: &mut Images, reference: &str) -> Image {
    images
        .status(reference)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("ImageStatus({reference}) found nothing"))
}

/// Pulls `pushed` by digest (no tag may appear), then by tag (the tag appears, same image).
async fn pull_by_digest_then_tag(images: &mut Images, pushed: &PushedImage) {
    let image_ref = images.pull(&pushed.by_digest()).await.unwrap();
    assert_image_ref(&image_ref, pushed.id(), &[&pushed.manifest_digest]);
    let status = status_of(images, &pushed.by_digest()).await;
    assert_eq!(status.id, pushed.config_digest);
    assert!(
        status.repo_tags.is_empty(),
        "a pull by digest added tags: {:?}",
        status.repo_tags
    );
    assert_eq!(status.repo_digests, [pushed.by_digest()]);

    let image_ref = images.pull(&pushed.reference).await.unwrap();
    assert_image_ref(&image_ref, pushed.id(), &[&pushed.manifest_digest]);
    let status = status_of(images, &pushed.reference).await;
    assert_eq!(status.id, pushed.config_digest);
    assert_eq!(status.repo_tags, [pushed.reference.as_str()]);
    assert_eq!(status.repo_digests, [pushed.by_digest()]);
    assert!(status.size > 0);
    assert_eq!(
        images.list(None).await.unwrap().len(),
        1,
        "one image, pulled twice"
    );
}

#[tokio::test]
async fn pull_single_layer_image_by_digest_and_by_tag() {
    let (registry, crius) = plain_setup().await;
    let pushed = images::push_single(&registry, "e2e/single", "v1")
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    pull_by_digest_then_tag(&mut images, &pushed).await;
}

#[tokio::test]
async fn pull_multi_layer_image_with_whiteouts() {
    let (registry, crius) = plain_setup().await;
    let pushed = images::push_multi(&registry, "e2e/multi", "v1")
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    pull_by_digest_then_tag(&mut images, &pushed).await;
    // Whiteout files are markers for the union, never files in a layer's unpacked tree.
    let leaked: Vec<_> = walk(&crius.layers_dir())
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".wh."))
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "whiteout markers unpacked as files: {leaked:?}"
    );
}

#[tokio::test]
async fn pull_zstd_and_uncompressed_layers() {
    let (registry, crius) = plain_setup().await;
    let pushed = images::push_zstd(&registry, "e2e/zstd", "v1")
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    pull_by_digest_then_tag(&mut images, &pushed).await;
}

/// Pulls an index by digest and by tag: the host platform's image must be chosen.
async fn pull_index(images: &mut Images, index: &PushedIndex) {
    let host = index.for_host();
    let acceptable_digests = [index.by_digest(), host.by_digest()];
    for reference in [index.by_digest(), index.reference.clone()] {
        let image_ref = images.pull(&reference).await.unwrap();
        assert_image_ref(
            &image_ref,
            host.id(),
            &[&index.index_digest, &host.manifest_digest],
        );
        let status = status_of(images, &reference).await;
        assert_eq!(
            status.id, host.config_digest,
            "{reference}: wrong platform chosen"
        );
        assert!(
            status
                .repo_digests
                .iter()
                .any(|d| acceptable_digests.contains(d)),
            "{reference}: repo_digests {:?} name neither the index nor the instance",
            status.repo_digests
        );
    }
    let status = status_of(images, &index.reference).await;
    assert_eq!(status.repo_tags, [index.reference.as_str()]);
    let listed = images.list(None).await.unwrap();
    assert_eq!(
        listed.len(),
        1,
        "only the host platform is pulled: {listed:?}"
    );
}

#[tokio::test]
async fn pull_oci_index_chooses_the_host_platform() {
    let (registry, crius) = plain_setup().await;
    let index = images::push_oci_index(&registry, "e2e/index", "v1")
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    pull_index(&mut images, &index).await;
}

#[tokio::test]
async fn pull_docker_manifest_list_chooses_the_host_platform() {
    let (registry, crius) = plain_setup().await;
    let list = images::push_docker_list(&registry, "e2e/dockerlist", "v1")
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    pull_index(&mut images, &list).await;
}

#[tokio::test]
async fn image_status_reports_user_as_uid_or_username() {
    let (registry, crius) = plain_setup().await;
    let cases = [
        ("empty", "", None, ""),
        ("numeric", "1000", Some(1000), ""),
        ("numeric-group", "1000:1000", Some(1000), ""),
        ("named", "app", None, "app"),
    ];
    let mut images = crius.images().await.unwrap();
    for (tag, user, uid, username) in cases {
        let spec = ConfigSpec::new("single").user(user);
        let pushed = images::push_single_with(&registry, "e2e/users", tag, spec)
            .await
            .unwrap();
        images.pull(&pushed.reference).await.unwrap();
        let status = status_of(&mut images, &pushed.reference).await;
        assert_eq!(status.id, pushed.config_digest);
        assert_eq!(status.uid.map(|u| u.value), uid, "User {user:?}");
        assert_eq!(status.username, username, "User {user:?}");
    }
}

#[tokio::test]
async fn image_status_verbose_info_contains_the_image_config() {
    let (registry, crius) = plain_setup().await;
    let pushed = images::push_single(&registry, "e2e/single", "v1")
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    images.pull(&pushed.reference).await.unwrap();

    let (image, info) = images
        .status_verbose(&pushed.reference, true)
        .await
        .unwrap();
    assert_eq!(image.unwrap().id, pushed.config_digest);
    assert!(!info.is_empty(), "verbose ImageStatus returned no info");
    for value in info.values() {
        serde_json::from_str::<serde_json::Value>(value)
            .unwrap_or_else(|e| panic!("info value is not JSON ({e}): {value}"));
    }
    assert!(
        info.values()
            .any(|v| v.contains(KIND_LABEL) && v.contains("\"sh\"")),
        "no info value holds the image config (label {KIND_LABEL}, Cmd sh): {info:?}"
    );

    let (_, info) = images
        .status_verbose(&pushed.reference, false)
        .await
        .unwrap();
    assert!(
        info.is_empty(),
        "non-verbose ImageStatus returned info: {info:?}"
    );
}

#[tokio::test]
async fn image_status_of_an_absent_image_is_empty_not_an_error() {
    let (registry, crius) = plain_setup().await;
    let mut images = crius.images().await.unwrap();
    let reference = format!("{}/e2e/never-pulled:v1", registry.host());
    assert_eq!(images.status(&reference).await.unwrap(), None);
    let id = format!("sha256:{}", "0".repeat(64));
    assert_eq!(images.status(&id).await.unwrap(), None);
    // A bare 64-hex id too (critest removes one); an unknown id is absent, not invalid.
    assert_eq!(images.status(&"0".repeat(64)).await.unwrap(), None);
    images.remove(&"0".repeat(64)).await.unwrap();
}

#[tokio::test]
async fn list_images_shows_all_and_filters_by_reference() {
    let (registry, crius) = plain_setup().await;
    let single = images::push_single(&registry, "e2e/single", "v1")
        .await
        .unwrap();
    let multi = images::push_multi(&registry, "e2e/multi", "v1")
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    assert!(images.list(None).await.unwrap().is_empty());
    images.pull(&single.reference).await.unwrap();
    images.pull(&multi.reference).await.unwrap();

    let mut ids: Vec<String> = images
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    ids.sort();
    let mut expected = vec![single.config_digest.clone(), multi.config_digest.clone()];
    expected.sort();
    assert_eq!(ids, expected);

    let filtered = images.list(Some(&single.reference)).await.unwrap();
    assert_eq!(filtered.len(), 1, "{filtered:?}");
    assert_eq!(filtered[0].id, single.config_digest);
    assert_eq!(filtered[0].repo_tags, [single.reference.as_str()]);

    let none = images
        .list(Some(&format!("{}/e2e/absent:v1", registry.host())))
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
}

// --- authentication -------------------------------------------------------------------------

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pw";

async fn auth_registry() -> (TestRegistry, PushedImage) {
    let registry = TestRegistry::start(RegistryMode::basic_auth(USER, PASSWORD))
        .await
        .unwrap();
    let pushed = images::push_single(&registry, "e2e/private", "v1")
        .await
        .unwrap();
    (registry, pushed)
}

#[tokio::test]
async fn pull_with_cri_username_and_password() {
    let (registry, pushed) = auth_registry().await;
    let crius = Crius::builder()
        .insecure(&registry.host())
        .start()
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    images
        .pull_with(&pushed.reference, Some(auth_password(USER, PASSWORD)))
        .await
        .unwrap();
    assert_eq!(
        status_of(&mut images, &pushed.reference).await.id,
        pushed.config_digest
    );
}

#[tokio::test]
async fn pull_with_cri_auth_field() {
    let (registry, pushed) = auth_registry().await;
    let crius = Crius::builder()
        .insecure(&registry.host())
        .start()
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    images
        .pull_with(&pushed.reference, Some(auth_field(USER, PASSWORD)))
        .await
        .unwrap();
    assert_eq!(
        status_of(&mut images, &pushed.reference).await.id,
        pushed.config_digest
    );
}

#[tokio::test]
async fn pull_with_credentials_from_the_auth_file() {
    let (registry, pushed) = auth_registry().await;
    let crius = Crius::builder()
        .insecure(&registry.host())
        .auth_entry(&registry.host(), USER, PASSWORD)
        .start()
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    images.pull(&pushed.reference).await.unwrap();
    assert_eq!(
        status_of(&mut images, &pushed.reference).await.id,
        pushed.config_digest
    );
}

#[tokio::test]
async fn pull_with_wrong_or_missing_credentials_fails() {
    let (registry, pushed) = auth_registry().await;
    let crius = Crius::builder()
        .insecure(&registry.host())
        .start()
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    let wrong = images
        .pull_with(&pushed.reference, Some(auth_password(USER, "wrong")))
        .await
        .expect_err("a wrong password must fail the pull");
    assert_ne!(wrong.code(), Code::Ok);
    images
        .pull(&pushed.reference)
        .await
        .expect_err("no credentials must fail the pull");
    assert!(images.list(None).await.unwrap().is_empty());
}

// --- TLS and insecure registries ------------------------------------------------------------

#[tokio::test]
async fn tls_registry_with_ca_in_certs_dir_is_trusted() {
    let registry = TestRegistry::start(RegistryMode::Tls).await.unwrap();
    let pushed = images::push_single(&registry, "e2e/tls", "v1")
        .await
        .unwrap();
    let crius = Crius::builder().trust(&registry).start().await.unwrap();
    assert!(
        crius
            .certs_dir()
            .join(registry.host())
            .join("ca.crt")
            .exists()
    );
    let mut images = crius.images().await.unwrap();
    images.pull(&pushed.reference).await.unwrap();
    assert_eq!(
        status_of(&mut images, &pushed.reference).await.id,
        pushed.config_digest
    );
}

#[tokio::test]
async fn tls_registry_without_ca_is_refused() {
    let registry = TestRegistry::start(RegistryMode::Tls).await.unwrap();
    let pushed = images::push_single(&registry, "e2e/tls", "v1")
        .await
        .unwrap();
    let crius = Crius::start().await.unwrap();
    let mut images = crius.images().await.unwrap();
    images
        .pull(&pushed.reference)
        .await
        .expect_err("an untrusted certificate must fail the pull");
    assert!(images.list(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn insecure_tls_registry_is_pulled_without_verification() {
    let registry = TestRegistry::start(RegistryMode::Tls).await.unwrap();
    let pushed = images::push_single(&registry, "e2e/tls", "v1")
        .await
        .unwrap();
    let crius = Crius::builder()
        .insecure(&registry.host())
        .start()
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    images.pull(&pushed.reference).await.unwrap();
}

#[tokio::test]
async fn tls_registry_with_basic_auth() {
    let mode = RegistryMode::TlsBasicAuth {
        user: USER.into(),
        password: PASSWORD.into(),
    };
    let registry = TestRegistry::start(mode).await.unwrap();
    let pushed = images::push_single(&registry, "e2e/private", "v1")
        .await
        .unwrap();
    let crius = Crius::builder().trust(&registry).start().await.unwrap();
    let mut images = crius.images().await.unwrap();
    images
        .pull_with(&pushed.reference, Some(auth_password(USER, PASSWORD)))
        .await
        .unwrap();
}

#[tokio::test]
async fn insecure_registry_over_plain_http_is_allowed() {
    let (registry, crius) = plain_setup().await;
    let pushed = images::push_single(&registry, "e2e/plain", "v1")
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    images.pull(&pushed.reference).await.unwrap();
    assert_eq!(
        status_of(&mut images, &pushed.reference).await.id,
        pushed.config_digest
    );
}

#[tokio::test]
async fn plain_http_registry_not_marked_insecure_is_refused() {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let pushed = images::push_single(&registry, "e2e/plain", "v1")
        .await
        .unwrap();
    let crius = Crius::start().await.unwrap();
    let mut images = crius.images().await.unwrap();
    images
        .pull(&pushed.reference)
        .await
        .expect_err("plain HTTP without insecure = true must fail");
    assert!(images.list(None).await.unwrap().is_empty());
}

// --- mirrors --------------------------------------------------------------------------------

#[tokio::test]
async fn mirror_serves_pulls_for_its_stopped_upstream() {
    let mut upstream = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let mirror = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let mirror_proxy = Proxy::for_registry(&mirror).unwrap();
    let on_mirror = images::push_single(&mirror, "e2e/mirrored", "v1")
        .await
        .unwrap();
    upstream.stop();

    let crius = Crius::builder()
        .insecure(&upstream.host())
        .insecure(&mirror_proxy.host())
        .mirror(&upstream.host(), &mirror_proxy.host())
        .start()
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    let reference = format!("{}/e2e/mirrored:v1", upstream.host());
    images.pull(&reference).await.unwrap();

    let status = status_of(&mut images, &reference).await;
    assert_eq!(status.id, on_mirror.config_digest);
    assert_eq!(
        status.repo_tags,
        [reference.as_str()],
        "the image keeps the name it was pulled by"
    );
    assert_eq!(
        mirror_proxy.blob_gets(&on_mirror.layer_digests[0]),
        1,
        "the layer came from the mirror"
    );
}

#[tokio::test]
async fn mirror_without_the_image_falls_back_to_upstream() {
    let upstream = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let empty_mirror = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let pushed = images::push_single(&upstream, "e2e/fallback", "v1")
        .await
        .unwrap();
    let crius = Crius::builder()
        .insecure(&upstream.host())
        .insecure(&empty_mirror.host())
        .mirror(&upstream.host(), &empty_mirror.host())
        .start()
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    images.pull(&pushed.reference).await.unwrap();
    assert_eq!(
        status_of(&mut images, &pushed.reference).await.id,
        pushed.config_digest
    );
}

// --- removal --------------------------------------------------------------------------------

#[tokio::test]
async fn remove_by_id_deletes_the_image_and_its_layers() {
    let (registry, crius) = plain_setup().await;
    let pushed = images::push_multi(&registry, "e2e/multi", "v1")
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    images.pull(&pushed.reference).await.unwrap();
    let used_before = images.used_bytes().await.unwrap();
    assert!(
        !crius.layer_dirs().is_empty(),
        "no layer directories under {}",
        crius.layers_dir().display()
    );

    images.remove(pushed.id()).await.unwrap();

    assert_eq!(images.status(&pushed.reference).await.unwrap(), None);
    assert_eq!(images.status(pushed.id()).await.unwrap(), None);
    assert!(images.list(None).await.unwrap().is_empty());
    let used_after = images.used_bytes().await.unwrap();
    assert!(
        used_after < used_before,
        "ImageFsInfo used bytes {used_before} -> {used_after}"
    );
    assert_eq!(
        crius.layer_dirs(),
        Vec::<std::path::PathBuf>::new(),
        "layer directories left behind"
    );
}

#[tokio::test]
async fn remove_by_one_of_two_tags_only_untags() {
    let (registry, crius) = plain_setup().await;
    let built = images::single().unwrap();
    let v1 = images::push_image(&registry, "e2e/tags", "v1", &built)
        .await
        .unwrap();
    let v2 = images::push_image(&registry, "e2e/tags", "v2", &built)
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    images.pull(&v1.reference).await.unwrap();
    images.pull(&v2.reference).await.unwrap();
    let mut tags = status_of(&mut images, &v1.reference).await.repo_tags;
    tags.sort();
    assert_eq!(tags, [v1.reference.clone(), v2.reference.clone()]);
    let layers = crius.layer_dirs();

    images.remove(&v1.reference).await.unwrap();

    assert_eq!(
        images.status(&v1.reference).await.unwrap(),
        None,
        "v1 still resolves"
    );
    let status = status_of(&mut images, &v2.reference).await;
    assert_eq!(status.id, v2.config_digest);
    assert_eq!(status.repo_tags, [v2.reference.as_str()]);
    assert_eq!(images.list(None).await.unwrap().len(), 1);
    assert_eq!(
        crius.layer_dirs(),
        layers,
        "untagging must not touch layers"
    );

    images.remove(&v2.reference).await.unwrap();
    assert!(images.list(None).await.unwrap().is_empty());
    assert!(crius.layer_dirs().is_empty());
}

#[tokio::test]
async fn remove_by_digest_deletes_the_image() {
    let (registry, crius) = plain_setup().await;
    let pushed = images::push_single(&registry, "e2e/single", "v1")
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    images.pull(&pushed.reference).await.unwrap();
    images.remove(&pushed.by_digest()).await.unwrap();
    assert_eq!(images.status(&pushed.reference).await.unwrap(), None);
    assert!(images.list(None).await.unwrap().is_empty());
    assert!(crius.layer_dirs().is_empty());
}

#[tokio::test]
async fn remove_absent_image_succeeds() {
    let (registry, crius) = plain_setup().await;
    let mut images = crius.images().await.unwrap();
    images
        .remove(&format!("{}/e2e/never-pulled:v1", registry.host()))
        .await
        .unwrap();
    images
        .remove(&format!("sha256:{}", "a".repeat(64)))
        .await
        .unwrap();
}

// --- concurrency, restarts, failures --------------------------------------------------------

#[tokio::test]
async fn concurrent_identical_pulls_download_each_blob_once() {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let pushed = images::push_multi(&registry, "e2e/multi", "v1")
        .await
        .unwrap();
    let proxy = Proxy::for_registry(&registry).unwrap();
    // Slow enough that the second pull starts while the first is still downloading.
    proxy.throttle(Some(1 << 20));
    let crius = Crius::builder()
        .insecure(&proxy.host())
        .start()
        .await
        .unwrap();
    let reference = format!("{}/e2e/multi:v1", proxy.host());
    let mut first = crius.images().await.unwrap();
    let mut second = crius.images().await.unwrap();

    let (a, b) = tokio::join!(first.pull(&reference), second.pull(&reference));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    assert_eq!(
        status_of(&mut first, &reference).await.id,
        pushed.config_digest
    );
    for blob in pushed.layer_digests.iter().chain([&pushed.config_digest]) {
        assert_eq!(
            proxy.blob_gets(blob),
            1,
            "blob {blob} was downloaded more than once"
        );
    }
    assert_eq!(first.list(None).await.unwrap().len(), 1);
}

fn sorted(mut images: Vec<Image>) -> Vec<Image> {
    for image in &mut images {
        image.repo_tags.sort();
        image.repo_digests.sort();
    }
    images.sort_by(|a, b| a.id.cmp(&b.id));
    images
}

#[tokio::test]
async fn restart_keeps_images() {
    let (registry, mut crius) = plain_setup().await;
    let single = images::push_single(&registry, "e2e/single", "v1")
        .await
        .unwrap();
    let multi = images::push_multi(&registry, "e2e/multi", "v1")
        .await
        .unwrap();
    let index = images::push_oci_index(&registry, "e2e/index", "v1")
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    for reference in [&single.reference, &multi.by_digest(), &index.reference] {
        images.pull(reference).await.unwrap();
    }
    let before = sorted(images.list(None).await.unwrap());
    assert_eq!(before.len(), 3);
    let layers_before = crius.layer_dirs();

    crius.restart().await.unwrap();

    let mut images = crius.images().await.unwrap();
    let after = sorted(images.list(None).await.unwrap());
    assert_eq!(after, before);
    assert_eq!(crius.layer_dirs(), layers_before);
    assert_eq!(
        status_of(&mut images, &single.reference).await.id,
        single.config_digest
    );
}

#[tokio::test]
async fn kill9_mid_pull_then_clean_repull() {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let pushed = images::push_big(&registry, "e2e/big", "v1").await.unwrap();
    let proxy = Proxy::for_registry(&registry).unwrap();
    proxy.set_fault_for(&pushed.layer_digests, BlobFault::Stall { after: 8 << 20 });
    let mut crius = Crius::builder()
        .insecure(&proxy.host())
        .start()
        .await
        .unwrap();
    let reference = format!("{}/e2e/big:v1", proxy.host());

    let mut puller = crius.images().await.unwrap();
    let pull_reference = reference.clone();
    let pull = tokio::spawn(async move { puller.pull(&pull_reference).await });
    proxy
        .wait_stalled(1, Duration::from_secs(120))
        .await
        .unwrap();
    // Let the other downloads get going too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    crius.kill9().await.unwrap();
    pull.await
        .unwrap()
        .expect_err("the pull cannot succeed: its daemon was killed");
    proxy.clear();
    proxy.release_stalled();

    crius.restart().await.unwrap();
    let mut images = crius.images().await.unwrap();
    assert!(
        images.list(None).await.unwrap().is_empty(),
        "a half-pulled image is listed"
    );
    assert_eq!(images.status(&reference).await.unwrap(), None);

    let image_ref = images.pull(&reference).await.unwrap();
    assert_image_ref(&image_ref, pushed.id(), &[&pushed.manifest_digest]);
    let status = status_of(&mut images, &reference).await;
    assert_eq!(status.id, pushed.config_digest);
    assert_eq!(status.repo_tags, [reference.as_str()]);
    assert_eq!(
        status.repo_digests,
        [format!(
            "{}/e2e/big@{}",
            proxy.host(),
            pushed.manifest_digest
        )]
    );
    assert!(
        status.size >= pushed.size - pushed.size / 10,
        "size {} for a {}-byte image",
        status.size,
        pushed.size
    );
    assert_eq!(
        crius.layer_dirs().len(),
        pushed.layer_digests.len(),
        "leftovers of the killed pull: {:?}",
        crius.layer_dirs()
    );
}

#[tokio::test]
async fn corrupted_blob_fails_pull_and_leaves_nothing() {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let pushed = images::push_single(&registry, "e2e/single", "v1")
        .await
        .unwrap();
    let proxy = Proxy::for_registry(&registry).unwrap();
    let layer = pushed.layer_digests[0].clone();
    proxy.set_fault_for(std::slice::from_ref(&layer), BlobFault::Corrupt);
    let crius = Crius::builder()
        .insecure(&proxy.host())
        .start()
        .await
        .unwrap();
    let reference = format!("{}/e2e/single:v1", proxy.host());
    let mut images = crius.images().await.unwrap();

    let error = images
        .pull(&reference)
        .await
        .expect_err("a corrupted layer must fail the pull");
    assert!(
        error.message().contains(digest_hex(&layer)),
        "the error does not name the corrupted blob {layer}: {error:?}"
    );
    assert!(proxy.blob_gets(&layer) >= 1);
    assert!(images.list(None).await.unwrap().is_empty());
    assert_eq!(images.status(&reference).await.unwrap(), None);
    let leftovers: Vec<_> = walk(crius.root())
        .into_iter()
        .filter(|p| {
            let p = p.to_string_lossy();
            p.contains(digest_hex(&layer)) || p.contains(digest_hex(&pushed.diff_ids[0]))
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "files of the corrupted layer left: {leftovers:?}"
    );
    assert!(
        crius.layer_dirs().is_empty(),
        "layer directories left: {:?}",
        crius.layer_dirs()
    );

    // Nothing poisoned: with the fault gone the same pull works.
    proxy.clear();
    images.pull(&reference).await.unwrap();
    assert_eq!(
        status_of(&mut images, &reference).await.id,
        pushed.config_digest
    );
}

#[tokio::test]
async fn invalid_reference_is_invalid_argument() {
    let crius = Crius::start().await.unwrap();
    let mut images = crius.images().await.unwrap();
    for reference in [
        "",
        "Not A Reference",
        "UPPERCASE/Repo:tag",
        "127.0.0.1:5000/repo@sha256:tooshort",
        "127.0.0.1:5000/repo:bad!tag",
    ] {
        let error = images.pull(reference).await.expect_err(reference);
        assert_eq!(
            error.code(),
            Code::InvalidArgument,
            "{reference:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn image_fs_info_reports_store_usage() {
    let (registry, crius) = plain_setup().await;
    let pushed = images::push_single(&registry, "e2e/single", "v1")
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    images.pull(&pushed.reference).await.unwrap();
    let filesystems = images.fs_info().await.unwrap();
    assert!(
        !filesystems.is_empty(),
        "ImageFsInfo lists no image filesystem"
    );
    for fs in &filesystems {
        let mountpoint = &fs.fs_id.as_ref().expect("fs_id set").mountpoint;
        assert!(!mountpoint.is_empty(), "empty mountpoint: {fs:?}");
        assert!(
            std::path::Path::new(mountpoint).exists(),
            "mountpoint {mountpoint} does not exist"
        );
        assert!(fs.timestamp > 0, "{fs:?}");
    }
    let used = images.used_bytes().await.unwrap();
    assert!(used > 0, "used_bytes is 0 after a pull");
}
