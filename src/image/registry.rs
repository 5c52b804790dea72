//! Where a pull goes: the endpoints for a registry (mirrors in order, upstream last), each with the
//! scheme, trust roots and credentials configured for its host.

use std::path::Path;
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;

use super::auth::{self, AuthFile, Credentials};
use super::error::{ImageError, Result};
use super::reference::ImageRef;
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

/// An oci-client for one endpoint. A fresh client per pull keeps credentials and tokens of one
/// pull from ever serving another.
pub fn client(
    config: &ImageConfig,
    endpoint: &Endpoint,
    max_downloads: usize,
) -> Result<oci_client::Client> {
    let certs = host_certificates(&config.certs_dir, &endpoint.host)?;
    let client_config = ClientConfig {
        protocol: match endpoint.scheme {
            Scheme::Http => ClientProtocol::Http,
            Scheme::Https | Scheme::HttpsUnverified => ClientProtocol::Https,
        },
        accept_invalid_certificates: endpoint.scheme == Scheme::HttpsUnverified,
        extra_root_certificates: certs,
        platform_resolver: None,
        max_concurrent_download: max_downloads,
        connect_timeout: Some(Duration::from_secs(30)),
        read_timeout: Some(Duration::from_secs(60)),
        user_agent: concat!("crius/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    };
    oci_client::Client::try_from(client_config)
        .map_err(|e| ImageError::Registry(format!("{}: {e}", endpoint.describe())))
}

/// The CA certificates of `<certs_dir>/<host>/` (`*.crt`, as docker and containerd read them).
fn host_certificates(certs_dir: &Path, host: &str) -> Result<Vec<Certificate>> {
    let dir = certs_dir.join(host);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ImageError::io(format!("read {}", dir.display()), e)),
    };
    let mut certs = Vec::new();
    let mut names: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    for path in names {
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => {
                let data = std::fs::read(&path)
                    .map_err(|e| ImageError::io(format!("read {}", path.display()), e))?;
                certs.push(Certificate {
                    encoding: CertificateEncoding::Pem,
                    data,
                });
            }
            Some("cert") | Some("key") => {
                return Err(ImageError::Unsupported(format!(
                    "{}: TLS client certificates are not supported yet (the registry client \
                     crius uses cannot present one)",
                    path.display()
                )));
            }
            _ => {}
        }
    }
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
            let mut builder = reqwest::Client::builder()
                .danger_accept_invalid_certs(endpoint.scheme == Scheme::HttpsUnverified);
            for cert in host_certificates(&config.certs_dir, &endpoint.host)? {
                let cert = reqwest::Certificate::from_pem(&cert.data)
                    .map_err(|e| ImageError::Registry(format!("{}: bad CA: {e}", endpoint.host)))?;
                builder = builder.add_root_certificate(cert);
            }
            let http = builder
                .build()
                .map_err(|e| ImageError::Registry(format!("{}: {e}", endpoint.describe())))?;
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
}
