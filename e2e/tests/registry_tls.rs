//! Registries that require a TLS client certificate (distribution's `http.tls.clientcas`): crius
//! presents `<certs_dir>/<host:port>/client.cert` + `client.key` (docker's and containerd's
//! layout) through its own registry transport, and refuses half a pair with a clear error.

use std::path::{Path, PathBuf};

use crius_e2e::Crius;
use crius_e2e::cri::{Images, auth_identity_token, auth_password};
use crius_e2e::images::{self, PushedImage, PushedIndex};
use crius_e2e::registry::{RegistryMode, TestRegistry};
use crius_e2e::tls::ClientCertFiles;
use crius_e2e::token_server::{Grant, TokenAuth};
use tempfile::TempDir;
use tonic::Code;

const USER: &str = "mtls-user";
const PASSWORD: &str = "mtls-secret";
const REFRESH_TOKEN: &str = "mtls-refresh-7c1e";

/// A registry in `mode` holding `e2e/mtls:v1` (multi-layer) and `e2e/mtls-index:v1` (an OCI
/// index), that requires a client certificate from then on.
async fn registry_requiring_client_cert(
    mode: RegistryMode,
) -> (TestRegistry, ClientCertFiles, PushedImage, PushedIndex) {
    let mut registry = TestRegistry::start(mode).await.unwrap();
    // Pushed before the requirement: the harness pushes with oci-client, which cannot present one.
    let image = images::push_multi(&registry, "e2e/mtls", "v1")
        .await
        .unwrap();
    let index = images::push_oci_index(&registry, "e2e/mtls-index", "v1")
        .await
        .unwrap();
    let client = registry.require_client_certs().await.unwrap();
    (registry, client, image, index)
}

/// `<tmp>/<host>/` with the registry's CA as `ca.crt` and the given client files, named as in
/// `certs.d` (`client.cert`, `client.key`).
fn certs_dir(registry: &TestRegistry, client: &ClientCertFiles, files: &[&str]) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("crius-e2e-certs-")
        .tempdir()
        .unwrap();
    let host = dir.path().join(registry.host());
    std::fs::create_dir(&host).unwrap();
    std::fs::copy(registry.ca_cert().unwrap(), host.join("ca.crt")).unwrap();
    for &name in files {
        let from: &Path = match name {
            "client.cert" => &client.cert,
            "client.key" => &client.key,
            other => panic!("no client file {other}"),
        };
        std::fs::copy(from, host.join(name)).unwrap();
    }
    dir
}

async fn daemon(certs: &TempDir) -> (Crius, Images) {
    let crius = Crius::builder()
        .certs_dir(certs.path())
        .start()
        .await
        .unwrap();
    let images = crius.images().await.unwrap();
    (crius, images)
}

#[tokio::test]
async fn pull_from_registry_requiring_client_cert() {
    let (registry, client, image, index) = registry_requiring_client_cert(RegistryMode::Tls).await;

    // The requirement is real: a client trusting the CA but presenting nothing is turned away.
    let bare = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(registry.ca_cert().unwrap()).unwrap())
                .unwrap(),
        )
        .build()
        .unwrap();
    bare.get(format!("{}/v2/", registry.base_url()))
        .send()
        .await
        .expect_err("the registry must refuse a client without a certificate");

    let certs = certs_dir(&registry, &client, &["client.cert", "client.key"]);
    let (_crius, mut images) = daemon(&certs).await;

    images.pull(&image.reference).await.unwrap();
    let status = images.status(&image.reference).await.unwrap().unwrap();
    assert_eq!(status.id, image.config_digest);
    assert_eq!(status.repo_digests, [image.by_digest()]);

    // An index: the platform manifest is fetched again by digest over the same transport.
    let host_image = index.for_host();
    images.pull(&index.reference).await.unwrap();
    let status = images.status(&index.reference).await.unwrap().unwrap();
    assert_eq!(status.id, host_image.config_digest);

    // Again, by digest, after removal.
    images.remove(&image.reference).await.unwrap();
    images.pull(&image.by_digest()).await.unwrap();
    assert_eq!(images.list(None).await.unwrap().len(), 2);
}

#[tokio::test]
async fn pull_without_client_cert_is_refused() {
    let (registry, client, image, _) = registry_requiring_client_cert(RegistryMode::Tls).await;
    let certs = certs_dir(&registry, &client, &[]);
    let (crius, mut images) = daemon(&certs).await;

    let error = images
        .pull(&image.reference)
        .await
        .expect_err("a registry requiring a client certificate must refuse a pull without one");
    assert_eq!(error.code(), Code::Unknown, "{error:?}");
    assert!(error.message().contains(&registry.host()), "{error:?}");
    // The TLS alert is named (distribution sends `bad_certificate`).
    assert!(
        error.message().to_lowercase().contains("certificate"),
        "{error:?}"
    );
    assert!(images.list(None).await.unwrap().is_empty());
    assert!(crius.layer_dirs().is_empty(), "{:?}", crius.layer_dirs());
}

#[tokio::test]
async fn client_cert_without_key_is_a_clear_error() {
    let (registry, client, image, _) = registry_requiring_client_cert(RegistryMode::Tls).await;
    for (present, missing) in [("client.cert", "client.key"), ("client.key", "client.cert")] {
        let certs = certs_dir(&registry, &client, &[present]);
        let (_crius, mut images) = daemon(&certs).await;

        let error = images
            .pull(&image.reference)
            .await
            .expect_err("half a client certificate must fail the pull");
        assert_eq!(error.code(), Code::FailedPrecondition, "{error:?}");
        let missing: PathBuf = certs.path().join(registry.host()).join(missing);
        assert!(
            error.message().contains(&missing.display().to_string()),
            "the error must name the missing {}: {error:?}",
            missing.display()
        );
        assert!(images.list(None).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn client_cert_and_basic_auth_together() {
    let mode = RegistryMode::TlsBasicAuth {
        user: USER.into(),
        password: PASSWORD.into(),
    };
    let (registry, client, image, _) = registry_requiring_client_cert(mode).await;
    let certs = certs_dir(&registry, &client, &["client.cert", "client.key"]);
    let (_crius, mut images) = daemon(&certs).await;

    let error = images
        .pull(&image.reference)
        .await
        .expect_err("a client certificate does not replace credentials");
    assert!(error.message().contains("401"), "{error:?}");
    assert!(images.list(None).await.unwrap().is_empty());

    images
        .pull_with(&image.reference, Some(auth_password(USER, PASSWORD)))
        .await
        .unwrap();
    let status = images.status(&image.reference).await.unwrap().unwrap();
    assert_eq!(status.id, image.config_digest);
}

#[tokio::test]
async fn client_cert_and_bearer_token_auth() {
    let mode = RegistryMode::TlsToken(TokenAuth::new(USER, PASSWORD, REFRESH_TOKEN));
    let (registry, client, image, _) = registry_requiring_client_cert(mode).await;
    let server = registry.token_server().unwrap();
    server.clear_requests();
    let certs = certs_dir(&registry, &client, &["client.cert", "client.key"]);
    let (_crius, mut images) = daemon(&certs).await;

    // Username and password: crius' transport answers the registry's Bearer challenge with a
    // token from its realm, asked for with those credentials.
    images
        .pull_with(&image.reference, Some(auth_password(USER, PASSWORD)))
        .await
        .unwrap();
    let status = images.status(&image.reference).await.unwrap().unwrap();
    assert_eq!(status.id, image.config_digest);
    let requests = server.requests();
    assert!(server.granted(Grant::Basic) >= 1, "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|r| r.scopes == ["repository:e2e/mtls:pull"]),
        "{requests:?}"
    );

    // An identity token: exchanged for an access token (the exchange's ping presents the client
    // certificate too), which the transport then sends as is.
    images.remove(&image.reference).await.unwrap();
    server.clear_requests();
    images
        .pull_with(&image.reference, Some(auth_identity_token(REFRESH_TOKEN)))
        .await
        .unwrap();
    assert_eq!(
        server.granted(Grant::RefreshToken),
        1,
        "{:?}",
        server.requests()
    );
    assert_eq!(server.count(Grant::Basic), 0, "{:?}", server.requests());
}
