//! `PullImage`: resolve the name, try each endpoint (mirrors first), fetch manifest and config,
//! fetch the layers in parallel (bounded), and commit the image to the store in one step.

use futures::{StreamExt, TryStreamExt};

use super::ImageManager;
use super::auth::Credentials;
use super::digest::Digest;
use super::error::{ImageError, Result};
use super::layer::{self, LayerSpec};
use super::manifest::{self, Fetched};
use super::reference::ImageRef;
use super::registry::{self, Endpoint};
use super::store::{ImageRecord, Store};
use super::transport::Transport;

impl ImageManager {
    /// Pulls `image` and returns its id (`sha256:` of its config).
    pub async fn pull(&self, image: &str, creds: Option<&Credentials>) -> Result<String> {
        let started = std::time::Instant::now();
        let candidates = self.candidates(image)?;
        let work = async {
            let mut last = None;
            for candidate in &candidates {
                match self.pull_reference(candidate, creds).await {
                    Ok(id) => return Ok(id),
                    Err(err) => {
                        if candidates.len() > 1 {
                            tracing::info!(image = %candidate, "not pulled: {err}");
                        }
                        last = Some(err);
                    }
                }
            }
            Err(last.unwrap_or_else(|| ImageError::NotFound(image.to_string())))
        };
        let result = match self.config.pull_time_limit() {
            Some(limit) => tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
                Err(ImageError::Timeout {
                    image: image.to_string(),
                    limit,
                })
            }),
            None => work.await,
        };
        let size = |id: &String| self.store.image(id).map_or(0, |r| r.size);
        crate::telemetry::pull_done(
            started,
            result.as_ref().map(size).map_err(ImageError::reason),
        );
        if result.is_err() {
            self.remove_what_failed_pulls_wrote().await;
        }
        result
    }

    /// A failed pull leaves no blob or layer behind: what it wrote is held by no image, no
    /// container and no other pull (those hold theirs), so a collection removes exactly that.
    async fn remove_what_failed_pulls_wrote(&self) {
        if let Err(e) = self.blocking(|store| store.collect_garbage()).await {
            tracing::warn!("removing what a failed pull wrote: {e}");
        }
    }

    async fn pull_reference(
        &self,
        image: &ImageRef,
        creds: Option<&Credentials>,
    ) -> Result<String> {
        let endpoints = registry::endpoints(&self.config, image);
        let mut failures = Vec::new();
        for endpoint in &endpoints {
            match self.pull_from(image, endpoint, creds).await {
                Ok(id) => return Ok(id),
                Err(err) => {
                    tracing::warn!(%image, endpoint = %endpoint.describe(), "pull failed: {err}");
                    failures.push((endpoint.describe(), err));
                }
            }
        }
        let Some((_, last)) = failures.pop() else {
            return Err(ImageError::NotFound(image.to_string()));
        };
        if failures.is_empty() {
            return Err(last);
        }
        // Name every endpoint tried; keep the last error's kind for the status code.
        let tried: Vec<String> = failures
            .iter()
            .map(|(ep, e)| format!("{ep}: {e}"))
            .collect();
        Err(match last {
            ImageError::Registry(msg) => {
                ImageError::Registry(format!("{msg} (also tried {})", tried.join("; ")))
            }
            ImageError::NoSuchManifest(msg) => {
                ImageError::NoSuchManifest(format!("{msg} (also tried {})", tried.join("; ")))
            }
            other => other,
        })
    }

    async fn pull_from(
        &self,
        image: &ImageRef,
        endpoint: &Endpoint,
        creds: Option<&Credentials>,
    ) -> Result<String> {
        let downloads = self.config.max_concurrent_downloads.max(1) as usize;
        let reference = endpoint.reference(image);
        let auth_file = self.auth_file()?;
        let creds = registry::credentials(&auth_file, endpoint, image.repository(), creds);
        let auth =
            registry::registry_auth(&creds, &self.config, endpoint, reference.repository()).await?;
        let transport = registry::transport(&self.config, endpoint, downloads, auth)?;

        let (top_digest, top_body) = transport.manifest(&reference, manifest::ACCEPTED).await?;
        let (manifest_digest, manifest_body, manifest, index) =
            match manifest::parse(&top_body, &top_digest)? {
                Fetched::Manifest(m) => (top_digest.clone(), top_body, m, None),
                Fetched::Index(index) => {
                    let platform = manifest::host_platform();
                    let (chosen, declared) =
                        manifest::select(&index, platform).ok_or_else(|| {
                            ImageError::NotFound(format!(
                                "{image}: no manifest for {}/{} in its index",
                                platform.0, platform.1
                            ))
                        })?;
                    let by_digest = reference.clone_with_digest(chosen.to_string());
                    let (digest, body) = transport.manifest(&by_digest, manifest::ACCEPTED).await?;
                    manifest::check_size("manifest", declared, &body, &digest)?;
                    match manifest::parse(&body, &digest)? {
                        Fetched::Manifest(m) => {
                            (digest, body, m, Some((top_digest.clone(), top_body)))
                        }
                        Fetched::Index(_) => {
                            return Err(ImageError::Unsupported(format!(
                                "{image}: index {top_digest} points to another index"
                            )));
                        }
                    }
                }
            };

        let config_digest = Digest::parse(manifest.config().digest().as_ref())?;
        let config_body = self
            .fetch_config(&transport, &reference, &config_digest)
            .await?;
        manifest::check_config_descriptor(
            manifest.config().media_type().as_ref(),
            manifest.config().size(),
            &config_body,
            &config_digest,
        )?;
        let summary = manifest::parse_config(&config_body, &config_digest)?;
        if summary.diff_ids.len() != manifest.layers().len() {
            return Err(ImageError::Registry(format!(
                "{image}: manifest has {} layers but config {config_digest} lists {} diff ids",
                manifest.layers().len(),
                summary.diff_ids.len()
            )));
        }
        let chain_ids = layer::chain_ids(&summary.diff_ids);
        let layers = manifest
            .layers()
            .iter()
            .zip(summary.diff_ids.iter().zip(&chain_ids))
            .map(|(desc, (diff_id, chain_id))| {
                let media_type = desc.media_type().to_string();
                manifest::check_layer_media_type(&media_type, desc.digest().as_ref())?;
                Ok(LayerSpec {
                    digest: Digest::parse(desc.digest().as_ref())?,
                    size: desc.size(),
                    media_type,
                    diff_id: diff_id.clone(),
                    chain_id: chain_id.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;

        // A layer is stored under its diff id or its chain id (see `layer`): both are held.
        let mut held: Vec<String> = summary.diff_ids.iter().map(|d| d.to_string()).collect();
        held.extend(chain_ids.iter().map(|d| d.to_string()));
        held.extend([
            config_digest.to_string(),
            manifest_digest.to_string(),
            top_digest.to_string(),
        ]);
        let _hold = self.store.hold(held);
        let mut blobs = vec![
            (config_digest.clone(), config_body.clone()),
            (manifest_digest.clone(), manifest_body),
        ];
        blobs.extend(index.clone());
        self.blocking(move |store| {
            blobs
                .iter()
                .try_for_each(|(digest, body)| store.write_blob(digest, body))
        })
        .await?;

        // Collected first: a stream combinator's closure over borrowed specs is not `Send`
        // for every lifetime, as the gRPC handler's future must be.
        let downloads_in_order: Vec<_> = layers
            .iter()
            .map(|spec| self.fetch_layer(&transport, &reference, spec))
            .collect();
        let fetched: Vec<layer::Fetched> = futures::stream::iter(downloads_in_order)
            .buffered(downloads)
            .try_collect()
            .await?;
        // Links into lower layers are filled bottom-up, once the layers below are stored.
        let mut keys: Vec<Digest> = Vec::with_capacity(layers.len());
        for (spec, fetched) in layers.iter().zip(fetched) {
            let key = match fetched {
                layer::Fetched::Stored(key) => key,
                layer::Fetched::Pending(pending) => {
                    let lowers = keys.iter().rev().map(|k| self.store.layer_dir(k)).collect();
                    let _lock = self.layer_locks.lock(spec.chain_id.as_str()).await;
                    layer::copy_up(&self.store, spec, pending, lowers).await?
                }
            };
            keys.push(key);
        }

        let size = layers.iter().map(|l| l.size).sum::<u64>() + config_body.len() as u64;
        let record = ImageRecord {
            id: config_digest.to_string(),
            manifest_digest: manifest_digest.to_string(),
            repo_tags: image
                .digest()
                .is_none()
                .then(|| image.repo_tag())
                .flatten()
                .into_iter()
                .collect(),
            repo_digests: vec![image.repo_digest(top_digest.as_str())],
            layers: keys.iter().map(|d| d.to_string()).collect(),
            size,
            user: summary.user,
            extra_blobs: index.map(|(d, _)| d.to_string()).into_iter().collect(),
        };
        self.blocking(move |store| store.commit(record)).await?;
        Ok(config_digest.to_string())
    }

    /// One layer, under its diff id's lock so concurrent pulls fetch it once.
    async fn fetch_layer(
        &self,
        transport: &Transport,
        reference: &oci_client::Reference,
        spec: &LayerSpec,
    ) -> Result<layer::Fetched> {
        let _lock = self.layer_locks.lock(spec.diff_id.as_str()).await;
        layer::fetch(&self.store, transport, reference, spec).await
    }

    /// The config blob, from the store when an earlier (or concurrent) pull kept it: under the
    /// digest's lock, so concurrent pulls of one image fetch it once.
    async fn fetch_config(
        &self,
        transport: &Transport,
        reference: &oci_client::Reference,
        digest: &Digest,
    ) -> Result<Vec<u8>> {
        let _lock = self.layer_locks.lock(digest.as_str()).await;
        if self.store.has_blob(digest) {
            return self.store.read_blob(digest);
        }
        let body = transport.blob(reference, digest).await?;
        let (digest, copy) = (digest.clone(), body.clone());
        self.blocking(move |store| store.write_blob(&digest, &copy))
            .await?;
        Ok(body)
    }

    /// Store work that touches the disk (writes, renames, fsync, syncfs), off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|join| ImageError::io("image store task", std::io::Error::other(join)))?
    }
}
