//! Throw-away OCI registries: a `docker-registry serve` child (CNCF distribution, Debian's
//! `docker-registry` package) on a free loopback port, storing into a temporary directory.
//!
//! The child is killed by PID and its directory removed when the [`TestRegistry`] is dropped,
//! also when a test panics.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use tempfile::TempDir;

use crate::tls::{self, ClientCertFiles, TlsFiles};
use crate::token_server::{TokenAuth, TokenServer};
use crate::util::{free_port, tail_of_file};

/// The registry binary, overridable with `CRIUS_E2E_REGISTRY_BIN`.
pub fn registry_bin() -> PathBuf {
    std::env::var_os("CRIUS_E2E_REGISTRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-registry"))
}

/// How a [`TestRegistry`] serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryMode {
    /// Plain HTTP, anonymous read and write.
    Plain,
    /// HTTPS with a certificate signed by a CA generated for this registry ([`TestRegistry::ca_cert`]).
    Tls,
    /// Plain HTTP with htpasswd basic authentication for one user (distribution 2.8 does not
    /// require TLS for it). Anonymous requests get `401` with `WWW-Authenticate: Basic`.
    BasicAuth { user: String, password: String },
    /// HTTPS (as [`RegistryMode::Tls`]) plus htpasswd basic authentication.
    TlsBasicAuth { user: String, password: String },
    /// Plain HTTP with distribution's bearer-token authentication (`auth: token:`): anonymous
    /// requests get `401` with `WWW-Authenticate: Bearer realm=..,service=..,scope=..`, the realm
    /// being a [`TokenServer`] started with the registry ([`TestRegistry::token_server`]) that
    /// knows this user, password and refresh token.
    Token(TokenAuth),
    /// HTTPS (as [`RegistryMode::Tls`]) plus bearer-token authentication (the token server
    /// itself stays plain HTTP on loopback).
    TlsToken(TokenAuth),
}

impl RegistryMode {
    /// Basic-auth mode for `user` / `password` over plain HTTP.
    pub fn basic_auth(user: &str, password: &str) -> Self {
        RegistryMode::BasicAuth {
            user: user.to_string(),
            password: password.to_string(),
        }
    }

    /// Token mode for `user` / `password` (and the OAuth2 `refresh_token`) over plain HTTP.
    pub fn token(user: &str, password: &str, refresh_token: &str) -> Self {
        RegistryMode::Token(TokenAuth::new(user, password, refresh_token))
    }

    fn is_tls(&self) -> bool {
        matches!(
            self,
            RegistryMode::Tls | RegistryMode::TlsBasicAuth { .. } | RegistryMode::TlsToken(_)
        )
    }

    fn credentials(&self) -> Option<(&str, &str)> {
        match self {
            RegistryMode::BasicAuth { user, password }
            | RegistryMode::TlsBasicAuth { user, password } => Some((user, password)),
            RegistryMode::Token(auth) | RegistryMode::TlsToken(auth) => {
                Some((&auth.user, &auth.password))
            }
            RegistryMode::Plain | RegistryMode::Tls => None,
        }
    }

    fn htpasswd(&self) -> bool {
        matches!(
            self,
            RegistryMode::BasicAuth { .. } | RegistryMode::TlsBasicAuth { .. }
        )
    }

    fn token_auth(&self) -> Option<&TokenAuth> {
        match self {
            RegistryMode::Token(auth) | RegistryMode::TlsToken(auth) => Some(auth),
            _ => None,
        }
    }
}

/// A running (or stopped) throw-away registry.
pub struct TestRegistry {
    mode: RegistryMode,
    addr: SocketAddr,
    child: Option<Child>,
    tls: Option<TlsFiles>,
    /// Set by [`TestRegistry::require_client_certs`].
    client_certs: Option<ClientCertFiles>,
    token_server: Option<TokenServer>,
    log: PathBuf,
    config: PathBuf,
    // Last field: removed after the child is gone.
    dir: TempDir,
}

impl std::fmt::Debug for TestRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRegistry")
            .field("mode", &self.mode)
            .field("addr", &self.addr)
            .field("dir", &self.dir.path())
            .finish()
    }
}

const START_ATTEMPTS: usize = 5;
const READY_TIMEOUT: Duration = Duration::from_secs(20);

impl TestRegistry {
    /// Starts a registry in `mode` and waits until `/v2/` answers (200, or 401 with auth).
    pub async fn start(mode: RegistryMode) -> Result<TestRegistry> {
        let dir = tempfile::Builder::new()
            .prefix("crius-e2e-registry-")
            .tempdir()
            .context("creating the registry's temporary directory")?;
        let tls = if mode.is_tls() {
            Some(
                tls::generate(&dir.path().join("tls"))
                    .context("generating the registry's TLS certificates")?,
            )
        } else {
            None
        };
        if let Some((user, password)) = mode.credentials().filter(|_| mode.htpasswd()) {
            let hash = bcrypt::hash(password, 5).context("hashing the registry password")?;
            std::fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n"))
                .context("writing htpasswd")?;
        }
        let token_server = match mode.token_auth() {
            Some(auth) => {
                Some(TokenServer::start(auth.clone()).context("starting the token server")?)
            }
            None => None,
        };
        let mut registry = TestRegistry {
            mode,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            child: None,
            tls,
            client_certs: None,
            token_server,
            log: dir.path().join("registry.log"),
            config: dir.path().join("config.yml"),
            dir,
        };
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            registry.addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
            match registry.spawn_and_wait().await {
                Ok(()) => return Ok(registry),
                Err(err) => {
                    registry.kill_child();
                    last_error = Some(err);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("registry did not start")))
    }

    /// `127.0.0.1:<port>`: the registry part of image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn mode(&self) -> &RegistryMode {
        &self.mode
    }

    /// Whether the registry speaks HTTPS.
    pub fn is_tls(&self) -> bool {
        self.mode.is_tls()
    }

    /// The PEM CA certificate that signed the registry's server certificate (TLS modes only).
    pub fn ca_cert(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.ca_cert.as_path())
    }

    /// `(user, password)` in the auth modes.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.mode.credentials()
    }

    /// The token server of the token modes: its realm, request log and [`TokenServer::mint`].
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token_server.as_ref()
    }

    /// `http://127.0.0.1:<port>` or `https://...`.
    pub fn base_url(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The registry's storage root (distribution's filesystem driver layout).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's combined stdout/stderr (including its access log).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An oci-client configured to push to and pull from this registry (trusting its CA).
    pub fn oci_client(&self) -> Result<oci_client::Client> {
        let mut config = ClientConfig {
            protocol: if self.is_tls() {
                ClientProtocol::Https
            } else {
                ClientProtocol::Http
            },
            use_monolithic_push: true,
            ..ClientConfig::default()
        };
        if let Some(ca) = self.ca_cert() {
            config.extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data: std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?,
            });
        }
        Ok(oci_client::Client::new(config))
    }

    /// The credentials oci-client should use with this registry (in the token modes it trades
    /// them for a token itself).
    pub fn registry_auth(&self) -> RegistryAuth {
        match self.credentials() {
            Some((user, password)) => RegistryAuth::Basic(user.to_string(), password.to_string()),
            None => RegistryAuth::Anonymous,
        }
    }

    /// A reqwest client trusting this registry's CA (no credentials attached).
    pub fn http_client(&self) -> Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
        if let Some(ca) = self.ca_cert() {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        if let Some(client) = &self.client_certs {
            let mut pem = std::fs::read(&client.cert)?;
            pem.extend(std::fs::read(&client.key)?);
            builder = builder.identity(reqwest::Identity::from_pem(&pem)?);
        }
        Ok(builder.build()?)
    }

    /// Requires a TLS client certificate from now on: generates a client CA and a certificate
    /// it signs, and restarts the registry (same port and storage) trusting that CA
    /// (`http.tls.clientcas`). [`TestRegistry::http_client`] presents the certificate from then
    /// on; [`TestRegistry::oci_client`] cannot, so push first. TLS modes only.
    pub async fn require_client_certs(&mut self) -> Result<ClientCertFiles> {
        if !self.is_tls() {
            bail!("client certificates need a TLS mode, not {:?}", self.mode);
        }
        let files = tls::generate_client(&self.dir.path().join("tls-client"))
            .context("generating the client certificate")?;
        self.client_certs = Some(files.clone());
        self.restart().await?;
        Ok(files)
    }

    /// The client certificate set up by [`TestRegistry::require_client_certs`].
    pub fn client_certs(&self) -> Option<&ClientCertFiles> {
        self.client_certs.as_ref()
    }

    /// Whether the child process is (still) running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the registry (its port stops answering); storage and log are kept until drop.
    pub fn stop(&mut self) {
        self.kill_child();
    }

    /// Starts the registry again on the same port and storage.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill_child();
        self.spawn_and_wait().await
    }

    fn write_config(&self) -> Result<()> {
        let storage = self.storage_dir();
        std::fs::create_dir_all(&storage)?;
        let mut yaml = format!(
            "version: 0.1\n\
             log:\n  level: info\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: {addr}\n  secret: {secret}\n",
            storage = storage.display(),
            addr = self.addr,
            secret = hex::encode(rand::random::<[u8; 16]>()),
        );
        if let Some(tls) = &self.tls {
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                tls.server_cert.display(),
                tls.server_key.display()
            ));
        }
        if let Some(client) = &self.client_certs {
            yaml.push_str(&format!(
                "    clientcas:\n      - {}\n",
                client.ca_cert.display()
            ));
        }
        if self.mode.htpasswd() {
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: crius-e2e\n    path: {}\n",
                self.dir.path().join("htpasswd").display()
            ));
        }
        if let Some(server) = &self.token_server {
            yaml.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    \
                 rootcertbundle: {}\n",
                server.realm(),
                server.service(),
                server.issuer(),
                server.root_cert().display()
            ));
        }
        std::fs::write(&self.config, yaml)
            .with_context(|| format!("writing {}", self.config.display()))
    }

    async fn spawn_and_wait(&mut self) -> Result<()> {
        self.write_config()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let bin = registry_bin();
        let child = Command::new(&bin)
            .arg("serve")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "spawning {} (install it: hack/install-deps.sh)",
                    bin.display()
                )
            })?;
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let http = self.http_client()?;
        let url = format!("{}/v2/", self.base_url());
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "docker-registry on {} exited with {status}; log:\n{}",
                    self.addr,
                    tail_of_file(&self.log, 4000)
                );
            }
            if let Ok(response) = http.get(&url).send().await {
                let status = response.status().as_u16();
                let expected = if self.credentials().is_some() {
                    401
                } else {
                    200
                };
                if status == expected {
                    return Ok(());
                }
                bail!("GET {url} answered {status}, expected {expected}");
            }
            if Instant::now() >= deadline {
                bail!(
                    "docker-registry on {} did not answer within {READY_TIMEOUT:?}; log:\n{}",
                    self.addr,
                    tail_of_file(&self.log, 4000)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Child::kill sends SIGKILL to this child's PID only.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.kill_child();
        if std::thread::panicking() {
            eprintln!(
                "--- registry {} log (tail) ---\n{}",
                self.addr,
                tail_of_file(&self.log, 4000)
            );
        }
    }
}
