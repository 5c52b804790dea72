//! Pulls from registries that use distribution's bearer-token authentication: the registry
//! answers `401 WWW-Authenticate: Bearer realm=..,service=..,scope=..` and only accepts JWTs from
//! its token server ([`crius_e2e::token_server`]). Each test asserts both the pull's outcome and
//! which token flow the daemon used, from the token server's request log.

use base64::Engine as _;
use crius_e2e::cri::{Images, auth_identity_token, auth_password, auth_registry_token};
use crius_e2e::images::{self, PushedImage};
use crius_e2e::registry::{RegistryMode, TestRegistry};
use crius_e2e::token_server::{self, Access, Grant, TokenAuth, TokenServer};
use crius_e2e::{Crius, CriusBuilder};
use serde_json::json;
use tonic::Status;

const USER: &str = "dave";
const PASSWORD: &str = "b3arer-pw";
const REFRESH_TOKEN: &str = "refresh-tok-5f1c2a9e";
const REPO: &str = "e2e/private";
const PULL_SCOPE: &str = "repository:e2e/private:pull";

/// A plain-HTTP token registry holding `e2e/private:v1`; the token server's log starts empty.
async fn token_registry(mode: RegistryMode) -> (TestRegistry, PushedImage) {
    let registry = TestRegistry::start(mode).await.unwrap();
    let pushed = images::push_single(&registry, REPO, "v1").await.unwrap();
    registry.token_server().unwrap().clear_requests();
    (registry, pushed)
}

async fn plain_token_registry() -> (TestRegistry, PushedImage) {
    token_registry(RegistryMode::token(USER, PASSWORD, REFRESH_TOKEN)).await
}

/// A daemon that treats `registry` as insecure (it is plain HTTP).
fn daemon_for(registry: &TestRegistry) -> CriusBuilder {
    Crius::builder().insecure(&registry.host())
}

fn server(registry: &TestRegistry) -> &TokenServer {
    registry.token_server().unwrap()
}

async fn assert_pulled(images: &mut Images, pushed: &PushedImage) {
    let status = images
        .status(&pushed.reference)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{} was not stored", pushed.reference));
    assert_eq!(status.id, pushed.config_digest);
}

async fn assert_nothing_pulled(images: &mut Images) {
    let listed = images.list(None).await.unwrap();
    assert!(listed.is_empty(), "a failed pull left {listed:?}");
}

/// The requests of `grant` in the token server's log.
fn requests_of(server: &TokenServer, grant: Grant) -> Vec<token_server::TokenRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.grant == grant)
        .collect()
}

/// Every request of `grant` asked for pull access to [`REPO`] for the registry's service.
fn assert_pull_scope(server: &TokenServer, grant: Grant) {
    let requests = requests_of(server, grant);
    assert!(!requests.is_empty(), "no {grant:?} request");
    for request in &requests {
        assert_eq!(request.scopes, [PULL_SCOPE], "{request:#?}");
        assert_eq!(
            request.service.as_deref(),
            Some(token_server::SERVICE),
            "{request:#?}"
        );
    }
}

/// The error's message must not quote the secret.
fn assert_not_leaked(err: &Status, secret: &str) {
    assert!(
        !err.message().contains(secret),
        "the error quotes a secret: {}",
        err.message()
    );
}

// --- username and password, traded for a token --------------------------------------------

#[tokio::test]
async fn bearer_token_registry_with_cri_username_password() {
    let (registry, pushed) = plain_token_registry().await;
    let crius = daemon_for(&registry).start().await.unwrap();
    let mut images = crius.images().await.unwrap();
    images
        .pull_with(&pushed.reference, Some(auth_password(USER, PASSWORD)))
        .await
        .unwrap();
    assert_pulled(&mut images, &pushed).await;

    let server = server(&registry);
    assert!(
        server.granted(Grant::Basic) >= 1,
        "{:#?}",
        server.requests()
    );
    assert_pull_scope(server, Grant::Basic);
    assert!(
        requests_of(server, Grant::Basic)
            .iter()
            .all(|r| r.user.as_deref() == Some(USER) && r.granted()),
        "{:#?}",
        server.requests()
    );
    assert_eq!(server.count(Grant::RefreshToken), 0);
    assert_eq!(server.count(Grant::Password), 0);
}

#[tokio::test]
async fn bearer_token_registry_with_auth_file_credentials() {
    let (registry, pushed) = plain_token_registry().await;
    let crius = daemon_for(&registry)
        .auth_entry(&registry.host(), USER, PASSWORD)
        .start()
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    images.pull(&pushed.reference).await.unwrap();
    assert_pulled(&mut images, &pushed).await;

    let server = server(&registry);
    assert!(
        server.granted(Grant::Basic) >= 1,
        "{:#?}",
        server.requests()
    );
    assert_pull_scope(server, Grant::Basic);
    assert_eq!(
        server.count(Grant::Anonymous),
        0,
        "{:#?}",
        server.requests()
    );
}

#[tokio::test]
async fn bearer_token_registry_without_credentials_is_denied() {
    let (registry, pushed) = plain_token_registry().await;
    let crius = daemon_for(&registry).start().await.unwrap();
    let mut images = crius.images().await.unwrap();
    images
        .pull(&pushed.reference)
        .await
        .expect_err("an anonymous token grants nothing: the pull must fail");
    assert_nothing_pulled(&mut images).await;

    // The daemon did ask, anonymously, and got a token without access.
    let server = server(&registry);
    assert!(
        server.granted(Grant::Anonymous) >= 1,
        "{:#?}",
        server.requests()
    );
    assert_eq!(server.count(Grant::Basic), 0);
}

#[tokio::test]
async fn bearer_token_registry_with_a_wrong_password_is_denied() {
    let (registry, pushed) = plain_token_registry().await;
    let crius = daemon_for(&registry).start().await.unwrap();
    let mut images = crius.images().await.unwrap();
    let err = images
        .pull_with(&pushed.reference, Some(auth_password(USER, "not-the-pw")))
        .await
        .expect_err("a wrong password must fail the pull");
    assert_not_leaked(&err, "not-the-pw");
    assert_nothing_pulled(&mut images).await;

    let server = server(&registry);
    assert!(server.count(Grant::Basic) >= 1, "{:#?}", server.requests());
    assert_eq!(server.granted(Grant::Basic), 0, "{:#?}", server.requests());
}

// --- identity tokens: OAuth2 refresh tokens, exchanged for an access token -----------------

/// Pulls with an identity token from `crius` and checks it went through one refresh-token grant.
async fn assert_identity_token_pull(registry: &TestRegistry, crius: &Crius, pushed: &PushedImage) {
    let server = server(registry);
    let mut images = crius.images().await.unwrap();
    assert_pulled(&mut images, pushed).await;
    assert!(
        server.granted(Grant::RefreshToken) >= 1,
        "no refresh-token grant: {:#?}",
        server.requests()
    );
    assert_pull_scope(server, Grant::RefreshToken);
    // The access token was used as it is: no other flow was tried.
    assert_eq!(server.count(Grant::Basic), 0, "{:#?}", server.requests());
    assert_eq!(
        server.count(Grant::Anonymous),
        0,
        "{:#?}",
        server.requests()
    );
    assert_eq!(server.count(Grant::Password), 0, "{:#?}", server.requests());
}

#[tokio::test]
async fn identity_token_is_exchanged_for_an_access_token() {
    let (registry, pushed) = plain_token_registry().await;
    let crius = daemon_for(&registry).start().await.unwrap();
    let mut images = crius.images().await.unwrap();
    images
        .pull_with(&pushed.reference, Some(auth_identity_token(REFRESH_TOKEN)))
        .await
        .unwrap();
    assert_identity_token_pull(&registry, &crius, &pushed).await;
}

#[tokio::test]
async fn identity_token_from_the_auth_file_is_exchanged_for_an_access_token() {
    let (registry, pushed) = plain_token_registry().await;
    // What `docker login` writes for an identity token: the user in "auth", no password.
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:"));
    let crius = daemon_for(&registry)
        .auth_file_entry(
            &registry.host(),
            json!({"auth": auth, "identitytoken": REFRESH_TOKEN}),
        )
        .start()
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    images.pull(&pushed.reference).await.unwrap();
    assert_identity_token_pull(&registry, &crius, &pushed).await;
}

#[tokio::test]
async fn identity_token_exchange_over_tls_trusts_the_certs_dir_ca() {
    let mode = RegistryMode::TlsToken(TokenAuth::new(USER, PASSWORD, REFRESH_TOKEN));
    let (registry, pushed) = token_registry(mode).await;
    let crius = Crius::builder().trust(&registry).start().await.unwrap();
    let mut images = crius.images().await.unwrap();
    images
        .pull_with(&pushed.reference, Some(auth_identity_token(REFRESH_TOKEN)))
        .await
        .unwrap();
    assert_identity_token_pull(&registry, &crius, &pushed).await;
}

#[tokio::test]
async fn wrong_identity_token_fails_the_pull_naming_the_token_server() {
    let (registry, pushed) = plain_token_registry().await;
    let crius = daemon_for(&registry).start().await.unwrap();
    let mut images = crius.images().await.unwrap();
    let wrong = "refresh-tok-wrong-0000";
    let err = images
        .pull_with(&pushed.reference, Some(auth_identity_token(wrong)))
        .await
        .expect_err("a refresh token the token server refuses must fail the pull");
    let server = server(&registry);
    let message = err.message();
    assert!(
        message.contains(&server.realm()),
        "the error does not name the token server {}: {message}",
        server.realm()
    );
    assert!(
        message.contains("400"),
        "the error does not give the token server's answer: {message}"
    );
    assert_not_leaked(&err, wrong);
    assert_nothing_pulled(&mut images).await;

    assert!(
        server.count(Grant::RefreshToken) >= 1,
        "{:#?}",
        server.requests()
    );
    assert_eq!(server.granted(Grant::RefreshToken), 0);
    // A refused identity token is not silently replaced by an anonymous attempt.
    assert_eq!(
        server.count(Grant::Anonymous),
        0,
        "{:#?}",
        server.requests()
    );
}

// --- registry tokens: bearer tokens sent as they are ---------------------------------------

#[tokio::test]
async fn registry_token_is_sent_as_bearer() {
    let (registry, pushed) = plain_token_registry().await;
    let server = server(&registry);
    let token = server.mint(USER, &[Access::pull(REPO)]).unwrap();
    let crius = daemon_for(&registry).start().await.unwrap();
    let mut images = crius.images().await.unwrap();
    images
        .pull_with(&pushed.reference, Some(auth_registry_token(&token)))
        .await
        .unwrap();
    assert_pulled(&mut images, &pushed).await;
    assert!(
        server.requests().is_empty(),
        "the token server was asked although the token was given: {:#?}",
        server.requests()
    );
}

#[tokio::test]
async fn registry_token_from_the_auth_file_is_sent_as_bearer() {
    let (registry, pushed) = plain_token_registry().await;
    let server = server(&registry);
    let token = server.mint(USER, &[Access::pull(REPO)]).unwrap();
    let crius = daemon_for(&registry)
        .auth_file_entry(&registry.host(), json!({"registrytoken": token}))
        .start()
        .await
        .unwrap();
    let mut images = crius.images().await.unwrap();
    images.pull(&pushed.reference).await.unwrap();
    assert_pulled(&mut images, &pushed).await;
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
}

#[tokio::test]
async fn registry_token_for_another_repository_is_denied() {
    let (registry, pushed) = plain_token_registry().await;
    let server = server(&registry);
    let token = server.mint(USER, &[Access::pull("e2e/other")]).unwrap();
    let crius = daemon_for(&registry).start().await.unwrap();
    let mut images = crius.images().await.unwrap();
    let err = images
        .pull_with(&pushed.reference, Some(auth_registry_token(&token)))
        .await
        .expect_err("a token without access to the repository must fail the pull");
    assert_not_leaked(&err, &token);
    assert_nothing_pulled(&mut images).await;
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
}
