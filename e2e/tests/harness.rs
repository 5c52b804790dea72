//! Self-tests of the harness: registries, image building and pushing, the fault proxy, the
//! token server. These need no crius binary.

use std::time::Duration;

use crius_e2e::images::{self, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crius_e2e::proxy::{BlobFault, Proxy};
use crius_e2e::registry::{RegistryMode, TestRegistry};
use crius_e2e::token_server::{Access, Grant, TokenAuth, TokenServer};
use crius_e2e::util::sha256_digest;
use oci_client::Reference;
use oci_client::manifest::OciManifest;

async fn get_v2(registry: &TestRegistry) -> reqwest::Response {
    registry
        .http_client()
        .unwrap()
        .get(format!("{}/v2/", registry.base_url()))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn plain_registry_answers_v2_over_http() {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    assert!(registry.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(get_v2(&registry).await.status(), 200);
    assert!(registry.ca_cert().is_none());
}

#[tokio::test]
async fn tls_registry_answers_v2_with_its_generated_ca() {
    let registry = TestRegistry::start(RegistryMode::Tls).await.unwrap();
    assert!(registry.base_url().starts_with("https://127.0.0.1:"));
    assert_eq!(get_v2(&registry).await.status(), 200);
    let ca = std::fs::read_to_string(registry.ca_cert().unwrap()).unwrap();
    assert!(ca.contains("BEGIN CERTIFICATE"));

    // A client that does not trust the CA is refused.
    let untrusting = reqwest::Client::new();
    assert!(
        untrusting
            .get(format!("{}/v2/", registry.base_url()))
            .send()
            .await
            .is_err()
    );
    // localhost is in the certificate too.
    let by_name = format!("https://localhost:{}/v2/", registry.addr().port());
    assert_eq!(
        registry
            .http_client()
            .unwrap()
            .get(by_name)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn basic_auth_registry_requires_its_credentials() {
    let registry = TestRegistry::start(RegistryMode::basic_auth("alice", "s3cret"))
        .await
        .unwrap();
    let anonymous = get_v2(&registry).await;
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Basic"), "{challenge}");
    let http = registry.http_client().unwrap();
    let url = format!("{}/v2/", registry.base_url());
    let ok = http
        .get(&url)
        .basic_auth("alice", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let wrong = http
        .get(&url)
        .basic_auth("alice", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}

#[tokio::test]
async fn tls_basic_auth_registry_requires_tls_and_credentials() {
    let mode = RegistryMode::TlsBasicAuth {
        user: "bob".into(),
        password: "pw".into(),
    };
    let registry = TestRegistry::start(mode).await.unwrap();
    assert!(registry.is_tls());
    assert_eq!(get_v2(&registry).await.status(), 401);
    let pushed = images::push_single(&registry, "e2e/private", "v1")
        .await
        .unwrap();
    assert!(pushed.reference.ends_with("/e2e/private:v1"));
}

#[tokio::test]
async fn stopped_registry_stops_answering_and_drop_removes_its_directory() {
    let mut registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let storage = registry.storage_dir();
    assert!(storage.exists());
    registry.stop();
    assert!(!registry.is_running());
    assert!(
        registry
            .http_client()
            .unwrap()
            .get(format!("{}/v2/", registry.base_url()))
            .send()
            .await
            .is_err()
    );
    registry.restart().await.unwrap();
    assert_eq!(get_v2(&registry).await.status(), 200);
    drop(registry);
    assert!(!storage.exists());
}

async fn pull_manifest(
    registry: &TestRegistry,
    reference: &str,
    accept: &[&str],
) -> (bytes::Bytes, String) {
    let client = registry.oci_client().unwrap();
    let reference: Reference = reference.parse().unwrap();
    client
        .pull_manifest_raw(&reference, &registry.registry_auth(), accept)
        .await
        .unwrap()
}

#[tokio::test]
async fn images_push_to_the_test_registry() {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();

    // single: one gzip layer, busybox and the applet links, config as documented.
    let single = images::push_single(&registry, "e2e/single", "latest")
        .await
        .unwrap();
    let (body, digest) = pull_manifest(&registry, &single.reference, &[OCI_MANIFEST]).await;
    assert_eq!(digest, single.manifest_digest);
    assert_eq!(sha256_digest(&body), single.manifest_digest);
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(manifest["config"]["digest"], single.config_digest.as_str());
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert!(
        single.size > 500_000,
        "busybox layer is {} bytes",
        single.size
    );
    let client = registry.oci_client().unwrap();
    let reference: Reference = single.reference.parse().unwrap();
    let (parsed, _, config) = client
        .pull_manifest_and_config(&reference, &registry.registry_auth())
        .await
        .unwrap();
    assert_eq!(parsed.layers[0].digest, single.layer_digests[0]);
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(config["config"]["User"], "");
    assert_eq!(config["rootfs"]["diff_ids"][0], single.diff_ids[0].as_str());
    let mut layer = Vec::new();
    client
        .pull_blob(&reference, &parsed.layers[0], &mut layer)
        .await
        .unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&layer[..]));
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "bin/busybox",
        "bin/sh",
        "bin/ls",
        "bin/sleep",
        "etc/passwd",
        "etc/group",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    // By digest, the same manifest comes back.
    let (_, by_digest) = pull_manifest(&registry, &single.by_digest(), &[OCI_MANIFEST]).await;
    assert_eq!(by_digest, single.manifest_digest);

    // multi: three layers, the second with a whiteout and an opaque marker.
    let multi = images::push_multi(&registry, "e2e/multi", "v1")
        .await
        .unwrap();
    let (body, _) = pull_manifest(&registry, &multi.reference, &[OCI_MANIFEST]).await;
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 3);
    let built = images::multi().unwrap();
    let middle = &built.layers[1].0.blob;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&middle[..]));
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"data/.wh.remove-me.txt".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"opaque/.wh..wh..opq".to_string()),
        "{names:?}"
    );

    // zstd: a zstd layer and an uncompressed one.
    let zstd = images::push_zstd(&registry, "e2e/zstd", "v1")
        .await
        .unwrap();
    let (body, _) = pull_manifest(&registry, &zstd.reference, &[OCI_MANIFEST]).await;
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_eq!(
        manifest["layers"][1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );

    // OCI index with amd64 and arm64.
    let index = images::push_oci_index(&registry, "e2e/index", "v1")
        .await
        .unwrap();
    let (body, digest) = pull_manifest(&registry, &index.reference, &[OCI_INDEX]).await;
    assert_eq!(digest, index.index_digest);
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(parsed["mediaType"], OCI_INDEX);
    let archs: Vec<&str> = parsed["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    assert_ne!(
        index.for_arch("amd64").unwrap().config_digest,
        index.for_arch("arm64").unwrap().config_digest
    );
    let client = registry.oci_client().unwrap();
    let reference: Reference = index.reference.parse().unwrap();
    match client
        .pull_manifest(&reference, &registry.registry_auth())
        .await
        .unwrap()
        .0
    {
        OciManifest::ImageIndex(i) => assert_eq!(i.manifests.len(), 2),
        other => panic!("expected an index, got {other:?}"),
    }
    let amd64 = index.for_arch("amd64").unwrap();
    let (_, digest) = pull_manifest(&registry, &amd64.by_digest(), &[OCI_MANIFEST]).await;
    assert_eq!(digest, amd64.manifest_digest);

    // Docker manifest list with schema2 manifests.
    let list = images::push_docker_list(&registry, "e2e/dockerlist", "v1")
        .await
        .unwrap();
    let (body, digest) = pull_manifest(&registry, &list.reference, &[DOCKER_LIST]).await;
    assert_eq!(digest, list.index_digest);
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(parsed["mediaType"], DOCKER_LIST);
    assert_eq!(parsed["manifests"][0]["mediaType"], DOCKER_MANIFEST);
    let host = list.for_host();
    let (body, _) = pull_manifest(&registry, &host.by_digest(), &[DOCKER_MANIFEST]).await;
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(manifest["config"]["mediaType"], images::DOCKER_CONFIG);
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
}

#[tokio::test]
async fn images_push_to_an_auth_registry_and_raw_pushes_work() {
    let registry = TestRegistry::start(RegistryMode::basic_auth("u", "p"))
        .await
        .unwrap();
    let pushed = images::push_single(&registry, "e2e/auth", "v1")
        .await
        .unwrap();
    let (_, digest) = pull_manifest(&registry, &pushed.reference, &[OCI_MANIFEST]).await;
    assert_eq!(digest, pushed.manifest_digest);

    let blob = images::push_blob(&registry, "e2e/raw", b"hello".to_vec())
        .await
        .unwrap();
    assert_eq!(blob, sha256_digest(b"hello"));
    let config = images::push_blob(&registry, "e2e/raw", b"{}".to_vec())
        .await
        .unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": 5, "digest": blob}],
    });
    let body = serde_json::to_vec(&manifest).unwrap();
    let digest = images::push_manifest_raw(&registry, "e2e/raw", "odd", OCI_MANIFEST, body.clone())
        .await
        .unwrap();
    let (pulled, pulled_digest) = pull_manifest(
        &registry,
        &format!("{}/e2e/raw:odd", registry.host()),
        &[OCI_MANIFEST],
    )
    .await;
    assert_eq!(pulled_digest, digest);
    assert_eq!(&pulled[..], &body[..]);
}

#[test]
fn images_are_deterministic() {
    assert_eq!(
        images::single().unwrap().manifest.digest,
        images::single().unwrap().manifest.digest
    );
    assert_eq!(
        images::multi().unwrap().manifest.digest,
        images::multi().unwrap().manifest.digest
    );
    assert_eq!(
        images::oci_index().unwrap().index.digest,
        images::oci_index().unwrap().index.digest
    );
    let (mut a, mut b) = (vec![0u8; 1000], vec![0u8; 1000]);
    images::fill_random(&mut a, 7);
    images::fill_random(&mut b, 7);
    assert_eq!(a, b);
}

#[tokio::test]
async fn big_image_has_five_incompressible_layers_and_pushes() {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let big = images::push_big(&registry, "e2e/big", "v1").await.unwrap();
    assert_eq!(big.layer_digests.len(), images::BIG_LAYERS);
    let min = (images::BIG_LAYERS * images::BIG_LAYER_BYTES) as u64;
    assert!(big.size > min, "big image is {} bytes", big.size);
    let (_, digest) = pull_manifest(&registry, &big.reference, &[OCI_MANIFEST]).await;
    assert_eq!(digest, big.manifest_digest);
}

async fn fetch(url: &str) -> Result<(u16, Vec<u8>), reqwest::Error> {
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(url)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.bytes().await?.to_vec()))
}

#[tokio::test]
async fn proxy_forwards_and_logs_blob_gets() {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let pushed = images::push_single(&registry, "e2e/single", "latest")
        .await
        .unwrap();
    let proxy = Proxy::for_registry(&registry).unwrap();
    let layer = &pushed.layer_digests[0];
    let url = format!("http://{}/v2/e2e/single/blobs/{layer}", proxy.host());
    let (status, body) = fetch(&url).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(&sha256_digest(&body), layer);
    let (status, _) = fetch(&format!("http://{}/v2/", proxy.host()))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, _) = fetch(&format!(
        "http://{}/v2/e2e/single/manifests/nope",
        proxy.host()
    ))
    .await
    .unwrap();
    assert_eq!(status, 404);
    assert_eq!(proxy.blob_gets(layer), 1);
    let requests = proxy.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests[0].complete);
    assert_eq!(requests[0].body_bytes as usize, body.len());

    // A real client pulls manifest and config through it.
    let client = oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    });
    let reference: Reference = format!("{}/e2e/single:latest", proxy.host())
        .parse()
        .unwrap();
    let (_, digest, _) = client
        .pull_manifest_and_config(&reference, &oci_client::secrets::RegistryAuth::Anonymous)
        .await
        .unwrap();
    assert_eq!(digest, pushed.manifest_digest);
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.path.contains("/manifests/latest"))
    );
}

#[tokio::test]
async fn proxy_corrupts_one_byte_keeping_the_length() {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let pushed = images::push_single(&registry, "e2e/single", "latest")
        .await
        .unwrap();
    let proxy = Proxy::for_registry(&registry).unwrap();
    let layer = pushed.layer_digests[0].clone();
    proxy.set_fault_for(std::slice::from_ref(&layer), BlobFault::Corrupt);
    let url = format!("http://{}/v2/e2e/single/blobs/{layer}", proxy.host());
    let (status, corrupted) = fetch(&url).await.unwrap();
    assert_eq!(status, 200);
    let (_, original) = fetch(&format!(
        "{}/v2/e2e/single/blobs/{layer}",
        registry.base_url()
    ))
    .await
    .unwrap();
    assert_eq!(corrupted.len(), original.len());
    let differing: Vec<usize> = (0..original.len())
        .filter(|&i| original[i] != corrupted[i])
        .collect();
    assert_eq!(differing, [original.len() / 2]);
    assert_ne!(sha256_digest(&corrupted), layer);

    // Blobs not named are untouched.
    let config = &pushed.config_digest;
    let (_, body) = fetch(&format!(
        "http://{}/v2/e2e/single/blobs/{config}",
        proxy.host()
    ))
    .await
    .unwrap();
    assert_eq!(&sha256_digest(&body), config);
}

#[tokio::test]
async fn proxy_stalls_a_blob_until_the_client_gives_up_or_is_released() {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let pushed = images::push_single(&registry, "e2e/single", "latest")
        .await
        .unwrap();
    let proxy = Proxy::for_registry(&registry).unwrap();
    proxy.set_fault(BlobFault::Stall { after: 1000 });
    let layer = pushed.layer_digests[0].clone();
    let url = format!("http://{}/v2/e2e/single/blobs/{layer}", proxy.host());

    // A client with a timeout gives up.
    let started = std::time::Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(800))
        .build()
        .unwrap();
    let result = async { client.get(&url).send().await?.bytes().await }.await;
    assert!(result.is_err(), "a stalled body must not complete");
    assert!(started.elapsed() >= Duration::from_millis(700));
    proxy.wait_stalled(1, Duration::from_secs(5)).await.unwrap();
    let entry = proxy
        .requests()
        .into_iter()
        .find(|r| r.blob_digest() == Some(layer.as_str()))
        .unwrap();
    assert_eq!(entry.body_bytes, 1000);
    assert!(!entry.complete);

    // A patient client is cut off by release_stalled.
    let url2 = url.clone();
    let waiting = tokio::spawn(async move {
        let response = reqwest::get(&url2).await?;
        response.bytes().await
    });
    proxy.wait_stalled(2, Duration::from_secs(5)).await.unwrap();
    proxy.release_stalled();
    let result = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(
        result.is_err(),
        "a released stall closes the connection early"
    );

    // Back to normal.
    proxy.clear();
    let (status, body) = fetch(&url).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(sha256_digest(&body), layer);
}

#[tokio::test]
async fn proxy_cuts_a_blob_mid_body_and_throttles() {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let pushed = images::push_single(&registry, "e2e/single", "latest")
        .await
        .unwrap();
    let proxy = Proxy::for_registry(&registry).unwrap();
    let layer = pushed.layer_digests[0].clone();
    let url = format!("http://{}/v2/e2e/single/blobs/{layer}", proxy.host());

    proxy.set_fault(BlobFault::Cut { after: 4096 });
    assert!(
        fetch(&url).await.is_err(),
        "a cut body must fail the client"
    );
    let entry = proxy.requests().pop().unwrap();
    assert_eq!(entry.body_bytes, 4096);
    assert!(!entry.complete);

    proxy.clear();
    proxy.throttle(Some(2_000_000));
    let started = std::time::Instant::now();
    let (_, body) = fetch(&url).await.unwrap();
    let expected = Duration::from_secs_f64(body.len() as f64 / 2_000_000.0 * 0.8);
    assert!(
        started.elapsed() >= expected,
        "{:?} < {expected:?}",
        started.elapsed()
    );
    assert_eq!(sha256_digest(&body), layer);
}

// --- token server ---------------------------------------------------------------------------

const TOKEN_USER: &str = "carol";
const TOKEN_PASSWORD: &str = "t0ken-pw";
const REFRESH: &str = "refresh-0123456789";

/// `GET /v2/<repo>/manifests/<tag>` with `Authorization: Bearer <token>`: status and the
/// `WWW-Authenticate` header.
async fn get_manifest_with(
    registry: &TestRegistry,
    repo: &str,
    tag: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut request = registry
        .http_client()
        .unwrap()
        .get(format!("{}/v2/{repo}/manifests/{tag}", registry.base_url()))
        .header("Accept", OCI_MANIFEST);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (response.status().as_u16(), challenge)
}

/// `POST <realm>` with a form body; status and JSON answer.
async fn post_form(realm: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut body = reqwest::Url::parse("http://x/").unwrap();
    body.query_pairs_mut().extend_pairs(form);
    let response = reqwest::Client::new()
        .post(realm)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.query().unwrap_or_default().to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// `GET <realm>?service=..&scope=..`, optionally with basic credentials.
async fn get_token(
    server: &TokenServer,
    scope: &str,
    basic: Option<(&str, &str)>,
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().get(format!(
        "{}?service={}&scope={scope}",
        server.realm(),
        server.service()
    ));
    if let Some((user, password)) = basic {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn token_of(answer: &serde_json::Value) -> &str {
    answer["access_token"].as_str().unwrap()
}

#[tokio::test]
async fn token_registry_challenges_with_its_token_server_realm() {
    let registry = TestRegistry::start(RegistryMode::token(TOKEN_USER, TOKEN_PASSWORD, REFRESH))
        .await
        .unwrap();
    let server = registry.token_server().unwrap();
    let anonymous = get_v2(&registry).await;
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(&format!("realm=\"{}\"", server.realm())),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!("service=\"{}\"", server.service())),
        "{challenge}"
    );
    assert!(server.realm().starts_with("http://127.0.0.1:"));
    assert!(
        std::fs::read_to_string(server.root_cert())
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
}

#[tokio::test]
async fn token_registry_accepts_tokens_of_every_grant_and_only_for_their_scope() {
    let registry = TestRegistry::start(RegistryMode::token(TOKEN_USER, TOKEN_PASSWORD, REFRESH))
        .await
        .unwrap();
    let server = registry.token_server().unwrap();
    // oci-client pushes with the basic credentials, trading them for pull,push tokens.
    let pushed = images::push_single(&registry, "e2e/private", "v1")
        .await
        .unwrap();
    assert!(server.granted(Grant::Basic) > 0, "{:#?}", server.requests());
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.scopes == ["repository:e2e/private:pull,push"]),
        "{:#?}",
        server.requests()
    );
    let (_, digest) = pull_manifest(&registry, &pushed.reference, &[OCI_MANIFEST]).await;
    assert_eq!(digest, pushed.manifest_digest);
    server.clear_requests();

    let scope = "repository:e2e/private:pull";
    let realm = server.realm();

    // No token, or an anonymous one (it grants nothing): denied.
    let (status, challenge) = get_manifest_with(&registry, "e2e/private", "v1", None).await;
    assert_eq!(status, 401);
    assert!(challenge.contains(scope), "{challenge}");
    let (status, anonymous) = get_token(server, scope, None).await;
    assert_eq!(status, 200);
    assert_eq!(anonymous["token"], anonymous["access_token"]);
    let (status, challenge) =
        get_manifest_with(&registry, "e2e/private", "v1", Some(token_of(&anonymous))).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("insufficient_scope"), "{challenge}");

    // Basic credentials on GET.
    let (status, _) = get_token(server, scope, Some((TOKEN_USER, "wrong"))).await;
    assert_eq!(status, 401);
    let (status, basic) = get_token(server, scope, Some((TOKEN_USER, TOKEN_PASSWORD))).await;
    assert_eq!(status, 200);
    assert_eq!(basic["expires_in"], 300);
    let (status, _) =
        get_manifest_with(&registry, "e2e/private", "v1", Some(token_of(&basic))).await;
    assert_eq!(status, 200);

    // The OAuth2 password grant hands out the refresh token, which the refresh grant accepts.
    let service = server.service();
    let (status, _) = post_form(
        &realm,
        &[
            ("grant_type", "password"),
            ("username", TOKEN_USER),
            ("password", "wrong"),
            ("service", service),
            ("scope", scope),
            ("client_id", "harness"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    let (status, password) = post_form(
        &realm,
        &[
            ("grant_type", "password"),
            ("username", TOKEN_USER),
            ("password", TOKEN_PASSWORD),
            ("service", service),
            ("scope", scope),
            ("client_id", "harness"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(password["refresh_token"], REFRESH);
    let (status, _) =
        get_manifest_with(&registry, "e2e/private", "v1", Some(token_of(&password))).await;
    assert_eq!(status, 200);
    let (status, refused) = post_form(
        &realm,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "not-the-refresh-token"),
            ("service", service),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"], "invalid_grant");
    let (status, refreshed) = post_form(
        &realm,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", REFRESH),
            ("service", service),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) =
        get_manifest_with(&registry, "e2e/private", "v1", Some(token_of(&refreshed))).await;
    assert_eq!(status, 200);

    assert_eq!(server.count(Grant::Anonymous), 1);
    assert_eq!(
        (server.count(Grant::Basic), server.granted(Grant::Basic)),
        (2, 1)
    );
    assert_eq!(
        (
            server.count(Grant::Password),
            server.granted(Grant::Password)
        ),
        (2, 1)
    );
    assert_eq!(
        (
            server.count(Grant::RefreshToken),
            server.granted(Grant::RefreshToken)
        ),
        (2, 1)
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.service.as_deref() == Some(service) && r.scopes == [scope]),
        "{:#?}",
        server.requests()
    );

    // Minted tokens: accepted for their own repository only, and not logged as requests.
    let minted = server
        .mint(TOKEN_USER, &[Access::pull("e2e/private")])
        .unwrap();
    let (status, _) = get_manifest_with(&registry, "e2e/private", "v1", Some(&minted)).await;
    assert_eq!(status, 200);
    let other = server
        .mint(TOKEN_USER, &[Access::pull("e2e/other")])
        .unwrap();
    let (status, _) = get_manifest_with(&registry, "e2e/private", "v1", Some(&other)).await;
    assert_eq!(status, 401);
    assert_eq!(server.requests().len(), 7);

    // A token signed by another server's key is not trusted.
    let stranger = TokenServer::start(TokenAuth::new(TOKEN_USER, TOKEN_PASSWORD, REFRESH)).unwrap();
    let forged = stranger
        .mint(TOKEN_USER, &[Access::pull("e2e/private")])
        .unwrap();
    let (status, _) = get_manifest_with(&registry, "e2e/private", "v1", Some(&forged)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn tls_token_registry_serves_https_with_a_plain_http_realm() {
    let registry = TestRegistry::start(RegistryMode::TlsToken(TokenAuth::new(
        TOKEN_USER,
        TOKEN_PASSWORD,
        REFRESH,
    )))
    .await
    .unwrap();
    assert!(registry.base_url().starts_with("https://"));
    assert_eq!(get_v2(&registry).await.status(), 401);
    let pushed = images::push_single(&registry, "e2e/private", "v1")
        .await
        .unwrap();
    let (_, digest) = pull_manifest(&registry, &pushed.reference, &[OCI_MANIFEST]).await;
    assert_eq!(digest, pushed.manifest_digest);
    assert!(registry.token_server().unwrap().granted(Grant::Basic) > 0);
}
