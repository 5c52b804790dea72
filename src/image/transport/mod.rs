//! How a pull talks to one registry endpoint. The puller needs exactly three things, each
//! verified against its digest: a manifest by reference, a small blob in memory (the config) and a
//! blob as a stream (a layer). Two transports provide them:
//!
//! - [`Transport::Oci`]: the `oci-client` crate, for every host unless said otherwise;
//! - [`Transport::Mtls`]: crius' own minimal distribution client ([`mtls`]), for hosts whose
//!   `certs.d` directory holds a TLS client certificate. oci-client builds its reqwest client
//!   inside `TryFrom<ClientConfig>`, and `ClientConfig` has no field for a client identity, so it
//!   cannot be made to present one.
//!
//! [`super::registry::transport`] chooses; `pull.rs` and `layer.rs` only see [`Transport`].

pub mod mtls;

use std::io;
use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;
use oci_client::Reference;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;

use super::digest::Digest;
use super::error::{ImageError, Result};

/// A blob's bytes as they arrive. The stream fails at its end when the content does not match
/// the digest it was asked for.
pub type BlobStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// One endpoint's registry client for one pull (credentials and tokens never outlive it).
pub enum Transport {
    Oci {
        client: oci_client::Client,
        auth: RegistryAuth,
        /// [`super::registry::Endpoint::describe`], for error messages.
        endpoint: String,
    },
    Mtls(mtls::Mtls),
}

/// Logs in before the first request when there are credentials. oci-client would otherwise do it
/// lazily and, when the token server refuses, drop that answer and send the request without
/// credentials, leaving only the registry's bare "unauthorized" to report.
async fn authenticate(
    client: &oci_client::Client,
    reference: &Reference,
    auth: &RegistryAuth,
    endpoint: &str,
) -> Result<()> {
    if *auth == RegistryAuth::Anonymous {
        return Ok(());
    }
    client
        .auth(reference, auth, oci_client::RegistryOperation::Pull)
        .await
        .map(|_| ())
        .map_err(|e| {
            ImageError::Registry(format!(
                "{reference}: logging in at {endpoint} failed: {}",
                with_causes(&e)
            ))
        })
}

impl Transport {
    /// The manifest or index `reference` names, and its digest. The body is checked against the
    /// reference's digest and the registry's `Docker-Content-Digest`, whichever are present.
    pub async fn manifest(
        &self,
        reference: &Reference,
        accepted: &[&str],
    ) -> Result<(Digest, Vec<u8>)> {
        match self {
            Transport::Oci {
                client,
                auth,
                endpoint,
            } => {
                authenticate(client, reference, auth, endpoint).await?;
                let (body, digest) = client
                    .pull_manifest_raw(reference, auth, accepted)
                    .await
                    .map_err(|e| match e {
                        OciDistributionError::DigestError(d) => ImageError::Verification {
                            digest: reference.digest().unwrap_or("manifest").to_string(),
                            message: d.to_string(),
                        },
                        other if names_no_manifest(&other) => ImageError::NoSuchManifest(format!(
                            "{reference} from {endpoint}: {}",
                            with_causes(&other)
                        )),
                        other => ImageError::Registry(format!(
                            "{reference} from {endpoint}: {}",
                            with_causes(&other)
                        )),
                    })?;
                Ok((Digest::parse(&digest)?, body.to_vec()))
            }
            Transport::Mtls(mtls) => mtls.manifest(reference, accepted).await,
        }
    }

    /// A whole blob in memory, verified against `digest`. Meant for small blobs (configs).
    pub async fn blob(&self, reference: &Reference, digest: &Digest) -> Result<Vec<u8>> {
        match self {
            Transport::Oci { client, auth, .. } => {
                client
                    .store_auth_if_needed(reference.resolve_registry(), auth)
                    .await;
                let mut body = Vec::new();
                client
                    .pull_blob(reference, digest.as_str(), &mut body)
                    .await
                    .map_err(|e| match e {
                        OciDistributionError::DigestError(d) => ImageError::Verification {
                            digest: digest.to_string(),
                            message: d.to_string(),
                        },
                        other => {
                            ImageError::Registry(format!("blob {digest}: {}", with_causes(&other)))
                        }
                    })?;
                Ok(body)
            }
            Transport::Mtls(mtls) => mtls.blob(reference, digest).await,
        }
    }

    /// A blob as a stream, verified against `digest` at its end.
    pub async fn blob_stream(&self, reference: &Reference, digest: &Digest) -> Result<BlobStream> {
        match self {
            Transport::Oci { client, auth, .. } => {
                client
                    .store_auth_if_needed(reference.resolve_registry(), auth)
                    .await;
                let sized = client
                    .pull_blob_stream(reference, digest.as_str())
                    .await
                    .map_err(|e| {
                        ImageError::Registry(format!("blob {digest}: {}", with_causes(&e)))
                    })?;
                Ok(sized.stream)
            }
            Transport::Mtls(mtls) => mtls.blob_stream(reference, digest).await,
        }
    }
}

/// Whether the registry said the manifest, tag or repository does not exist (404, or the
/// distribution spec's MANIFEST_UNKNOWN / NAME_UNKNOWN), which the CRI answers NOT_FOUND.
fn names_no_manifest(err: &OciDistributionError) -> bool {
    use oci_client::errors::OciErrorCode;
    match err {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown
            )
        }),
        _ => false,
    }
}

/// An error and its causes, `: `-separated: reqwest's own message says only that a request
/// failed; why (refused, TLS alert, certificate) is several sources deep. A cause whose text is
/// already there is left out.
pub fn with_causes(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Layer(String, #[source] Option<Box<Layer>>);

    #[test]
    fn causes_are_listed_once() {
        let inner = Layer("certificate required".into(), None);
        let middle = Layer("client error (Connect)".into(), Some(Box::new(inner)));
        let repeated = Layer("client error (Connect)".into(), Some(Box::new(middle)));
        let top = Layer("error sending request".into(), Some(Box::new(repeated)));
        assert_eq!(
            with_causes(&top),
            "error sending request: client error (Connect): certificate required"
        );
    }
}
