//! Where a pull goes: the endpoints for a registry (mirrors in order, upstream last), each with the
//! scheme, trust roots, client certificate and credentials configured for its host, and the
//! transport that speaks to it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;

use super::auth::{self, AuthFile, Credentials};
use super::error::{ImageError, Result};
use super::reference::ImageRef;
use super::transport::Transport;
use super::transport::mtls::Mtls;
use crate::config::ImageConfig;

/// How to speak to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Https,
    /// An insecure registry: TLS without verifying the certificate...
    HttpsUnverified,
    /// ...and, when that fails, plain HTTP (as docker and containerd try insecure registries).
    Http,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]`.
    pub host: String,
    /// A mirror's path prefix (`mirror:5000/dockerhub` → `dockerhub`), or empty.
    pub prefix: String,
    pub scheme: Scheme,
    pub mirror: bool,
}

impl Endpoint {
    /// The reference to ask this endpoint for.
    pub fn reference(&self, image: &ImageRef) -> oci_client::Reference {
        let repository = if self.prefix.is_empty() {
            image.repository().to_string()
        } else {
            format!("{}/{}", self.prefix, image.repository())
        };
        let host = self.host.clone();
        match (image.tag(), image.digest()) {
            (_, Some(d)) => oci_client::Reference::with_digest(host, repository, d.to_string()),
            (Some(t), None) => oci_client::Reference::with_tag(host, repository, t.to_string()),
            (None, None) => oci_client::Reference::with_tag(host, repository, "latest".into()),
        }
    }

    pub fn describe(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Https => "https",
            Scheme::HttpsUnverified => "https (unverified)",
            Scheme::Http => "http",
        };
        let role = if self.mirror { "mirror " } else { "" };
        format!("{role}{} over {scheme}", self.host)
    }
}

/// The endpoints to try for `image`, in order.
pub fn endpoints(config: &ImageConfig, image: &ImageRef) -> Vec<Endpoint> {
    let upstream = image.registry();
    let mut out = Vec::new();
    for mirror in &config.registry(upstream).mirrors {
        let (host, prefix) = mirror.split_once('/').unwrap_or((mirror.as_str(), ""));
        push_schemes(config, &mut out, host, prefix.trim_matches('/'), true);
    }
    push_schemes(config, &mut out, upstream, "", false);
    out
}

fn push_schemes(
    config: &ImageConfig,
    out: &mut Vec<Endpoint>,
    host: &str,
    prefix: &str,
    mirror: bool,
) {
    let schemes: &[Scheme] = if config.registry(host).insecure {
        &[Scheme::HttpsUnverified, Scheme::Http]
    } else {
        &[Scheme::Https]
    };
    for &scheme in schemes {
        out.push(Endpoint {
            host: host.to_string(),
            prefix: prefix.to_string(),
            scheme,
            mirror,
        });
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const USER_AGENT: &str = concat!("crius/", env!("CARGO_PKG_VERSION"));

/// The registry client for one endpoint, authenticating with `auth`: crius' own transport when
/// the host's certs directory holds a TLS client certificate (oci-client cannot present one),
/// oci-client otherwise. A fresh one per pull keeps credentials and tokens of one pull from ever
/// serving another.
pub fn transport(
    config: &ImageConfig,
    endpoint: &Endpoint,
    max_downloads: usize,
    auth: RegistryAuth,
) -> Result<Transport> {
    let certs = host_certificates(&config.certs_dir, &endpoint.host)?;
    if let Some(identity) = &certs.identity {
        tracing::debug!(endpoint = %endpoint.describe(), cert = %identity.cert.display(),
            "presenting a TLS client certificate");
        let scheme = if endpoint.scheme == Scheme::Http {
            "http"
        } else {
            "https"
        };
        return Ok(Transport::Mtls(Mtls::new(
            http_client(endpoint, &certs)?,
            scheme,
            endpoint.describe(),
            auth,
        )));
    }
    let client_config = ClientConfig {
        protocol: match endpoint.scheme {
            Scheme::Http => ClientProtocol::Http,
            Scheme::Https | Scheme::HttpsUnverified => ClientProtocol::Https,
        },
        accept_invalid_certificates: endpoint.scheme == Scheme::HttpsUnverified,
        extra_root_certificates: certs
            .cas
            .into_iter()
            .map(|data| Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            })
            .collect(),
        platform_resolver: None,
        max_concurrent_download: max_downloads,
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
        user_agent: USER_AGENT,
        ..ClientConfig::default()
    };
    let client = oci_client::Client::try_from(client_config)
        .map_err(|e| ImageError::Registry(format!("{}: {e}", endpoint.describe())))?;
    Ok(Transport::Oci {
        client,
        auth,
        endpoint: endpoint.describe(),
    })
}

/// A reqwest client for `endpoint`: the system trust store plus the host's CAs, its client
/// certificate when it has one, unverified TLS for an insecure registry.
fn http_client(endpoint: &Endpoint, certs: &HostCerts) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .danger_accept_invalid_certs(endpoint.scheme == Scheme::HttpsUnverified)
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .user_agent(USER_AGENT);
    for pem in &certs.cas {
        let cas = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| ImageError::Registry(format!("{}: bad CA: {e}", endpoint.host)))?;
        builder = builder.tls_certs_merge(cas);
    }
    if let Some(identity) = &certs.identity {
        builder = builder.identity(identity.load()?);
    }
    builder
        .build()
        .map_err(|e| ImageError::Registry(format!("{}: {e}", endpoint.describe())))
}

/// What `<certs_dir>/<host>/` holds, in docker's and containerd's `certs.d` layout.
#[derive(Debug, Default)]
struct HostCerts {
    /// PEM CA certificates (`*.crt`), trusted besides the system store.
    cas: Vec<Vec<u8>>,
    /// A TLS client certificate (`<name>.cert` with its `<name>.key`).
    identity: Option<ClientIdentity>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientIdentity {
    cert: PathBuf,
    key: PathBuf,
}

impl ClientIdentity {
    /// The certificate (chain) and its private key, both PEM.
    fn load(&self) -> Result<reqwest::Identity> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| ImageError::io(format!("read {}", path.display()), e))
        };
        let mut pem = read(&self.cert)?;
        pem.push(b'\n');
        pem.extend(read(&self.key)?);
        reqwest::Identity::from_pem(&pem).map_err(|e| {
            ImageError::Certificates(format!(
                "{} and {}: not a PEM certificate and private key: {e}",
                self.cert.display(),
                self.key.display()
            ))
        })
    }
}

/// Reads `<certs_dir>/<host>/`: every `*.crt`, and the `*.cert` / `*.key` pair (each needs the
/// other, with the same name; one pair at most, as one identity can be presented).
fn host_certificates(certs_dir: &Path, host: &str) -> Result<HostCerts> {
    let dir = certs_dir.join(host);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HostCerts::default()),
        Err(e) => return Err(ImageError::io(format!("read {}", dir.display()), e)),
    };
    let mut certs = HostCerts::default();
    let mut names: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    let mut identities = Vec::new();
    for path in &names {
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => {
                let data = std::fs::read(path)
                    .map_err(|e| ImageError::io(format!("read {}", path.display()), e))?;
                certs.cas.push(data);
            }
            Some(ext @ ("cert" | "key")) => {
                let other = path.with_extension(if ext == "cert" { "key" } else { "cert" });
                if !names.contains(&other) {
                    return Err(ImageError::Certificates(format!(
                        "{} has no {} beside it: a TLS client certificate needs both",
                        path.display(),
                        other.display()
                    )));
                }
                if ext == "cert" {
                    identities.push(ClientIdentity {
                        cert: path.clone(),
                        key: other,
                    });
                }
            }
            _ => {}
        }
    }
    if identities.len() > 1 {
        return Err(ImageError::Certificates(format!(
            "{}: more than one client certificate ({}); crius presents one",
            dir.display(),
            identities
                .iter()
                .map(|i| i.cert.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    certs.identity = identities.pop();
    Ok(certs)
}

/// Credentials for an endpoint: the request's own for the upstream registry, else the auth file's
/// entry for the endpoint's host (a mirror never receives credentials meant for another host).
pub fn credentials(
    auth_file: &AuthFile,
    endpoint: &Endpoint,
    repository: &str,
    from_request: Option<&Credentials>,
) -> Credentials {
    match from_request {
        Some(creds) if !endpoint.mirror && *creds != Credentials::Anonymous => creds.clone(),
        _ => auth_file.lookup(&endpoint.host, repository),
    }
}

/// Turns credentials into what oci-client sends, exchanging an identity token when there is one.
pub async fn registry_auth(
    creds: &Credentials,
    config: &ImageConfig,
    endpoint: &Endpoint,
    repository: &str,
) -> Result<RegistryAuth> {
    match creds {
        Credentials::Anonymous => Ok(RegistryAuth::Anonymous),
        Credentials::Basic { username, password } => {
            Ok(RegistryAuth::Basic(username.clone(), password.clone()))
        }
        Credentials::RegistryToken(token) => Ok(RegistryAuth::Bearer(token.clone())),
        Credentials::IdentityToken { .. } => {
            let http = http_client(
                endpoint,
                &host_certificates(&config.certs_dir, &endpoint.host)?,
            )?;
            let scheme = if endpoint.scheme == Scheme::Http {
                "http"
            } else {
                "https"
            };
            let base = format!("{scheme}://{}", endpoint.host);
            Ok(auth::resolve(creds, &http, &base, repository).await?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RegistryConfig;

    fn config_with(host: &str, reg: RegistryConfig) -> ImageConfig {
        let mut c = ImageConfig::default();
        c.registries.insert(host.to_string(), reg);
        c
    }

    #[test]
    fn mirrors_come_first_and_upstream_last() {
        let reg = RegistryConfig {
            mirrors: vec!["m1:5000".into(), "m2:5000/hub".into()],
            ..Default::default()
        };
        let config = config_with("docker.io", reg);
        let image = ImageRef::parse("busybox", "docker.io").unwrap();
        let eps = endpoints(&config, &image);
        let hosts: Vec<_> = eps
            .iter()
            .map(|e| (e.host.as_str(), e.prefix.as_str(), e.mirror))
            .collect();
        assert_eq!(
            hosts,
            vec![
                ("m1:5000", "", true),
                ("m2:5000", "hub", true),
                ("docker.io", "", false)
            ]
        );
        assert_eq!(eps[1].reference(&image).repository(), "hub/library/busybox");
    }

    #[test]
    fn insecure_registries_try_unverified_tls_then_http() {
        let reg = RegistryConfig {
            insecure: true,
            ..Default::default()
        };
        let config = config_with("127.0.0.1:5000", reg);
        let image = ImageRef::parse("127.0.0.1:5000/x", "docker.io").unwrap();
        let schemes: Vec<_> = endpoints(&config, &image)
            .iter()
            .map(|e| e.scheme)
            .collect();
        assert_eq!(schemes, vec![Scheme::HttpsUnverified, Scheme::Http]);
    }

    #[test]
    fn request_credentials_never_go_to_a_mirror() {
        let file = AuthFile::from_json(r#"{"auths":{}}"#, "test").unwrap();
        let creds = Credentials::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        let mirror = Endpoint {
            host: "m:1".into(),
            prefix: String::new(),
            scheme: Scheme::Https,
            mirror: true,
        };
        assert_eq!(
            credentials(&file, &mirror, "r", Some(&creds)),
            Credentials::Anonymous
        );
        let upstream = Endpoint {
            mirror: false,
            ..mirror
        };
        assert_eq!(credentials(&file, &upstream, "r", Some(&creds)), creds);
    }

    fn certs_dir(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("reg:5000");
        std::fs::create_dir(&host).unwrap();
        for name in files {
            std::fs::write(host.join(name), format!("contents of {name}")).unwrap();
        }
        dir
    }

    #[test]
    fn host_certificates_read_cas_and_a_client_pair() {
        let dir = certs_dir(&["ca.crt", "b.crt", "client.cert", "client.key", "README"]);
        let certs = host_certificates(dir.path(), "reg:5000").unwrap();
        assert_eq!(
            certs.cas,
            [
                b"contents of b.crt".to_vec(),
                b"contents of ca.crt".to_vec()
            ]
        );
        let host = dir.path().join("reg:5000");
        assert_eq!(
            certs.identity,
            Some(ClientIdentity {
                cert: host.join("client.cert"),
                key: host.join("client.key"),
            })
        );

        let none = host_certificates(dir.path(), "other:1").unwrap();
        assert!(none.cas.is_empty() && none.identity.is_none());
    }

    #[test]
    fn half_a_client_pair_is_a_clear_error() {
        for (present, missing) in [("client.cert", "client.key"), ("client.key", "client.cert")] {
            let dir = certs_dir(&["ca.crt", present]);
            let err = host_certificates(dir.path(), "reg:5000").unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, ImageError::Certificates(_)), "{msg}");
            let missing = dir.path().join("reg:5000").join(missing);
            assert!(msg.contains(&missing.display().to_string()), "{msg}");
        }
        // Pairs go by name, as in docker.
        let dir = certs_dir(&["a.cert", "b.key"]);
        assert!(host_certificates(dir.path(), "reg:5000").is_err());
        let dir = certs_dir(&["a.cert", "a.key", "b.cert", "b.key"]);
        let msg = host_certificates(dir.path(), "reg:5000")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("more than one client certificate"), "{msg}");
    }

    #[test]
    fn transport_is_ours_only_with_a_client_certificate() {
        let endpoint = Endpoint {
            host: "reg:5000".into(),
            prefix: String::new(),
            scheme: Scheme::Https,
            mirror: false,
        };
        let mut config = ImageConfig::default();
        let dir = certs_dir(&[]);
        config.certs_dir = dir.path().to_path_buf();
        let oci = transport(&config, &endpoint, 1, RegistryAuth::Anonymous).unwrap();
        assert!(matches!(oci, Transport::Oci { .. }));

        // A client pair selects crius' own transport, which must load it: this one is not PEM.
        let dir = certs_dir(&["client.cert", "client.key"]);
        config.certs_dir = dir.path().to_path_buf();
        let Err(err) = transport(&config, &endpoint, 1, RegistryAuth::Anonymous) else {
            panic!("a client certificate that is not PEM must be refused");
        };
        let msg = err.to_string();
        assert!(matches!(err, ImageError::Certificates(_)), "{msg}");
        assert!(
            msg.contains("client.cert") && msg.contains("client.key"),
            "{msg}"
        );
    }
}
