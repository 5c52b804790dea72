//! Images: names, registries, pulling, and the content-addressed store under `<root>/images`.

pub mod auth;
mod digest;
mod error;
mod keyed_lock;
mod layer;
mod manifest;
mod pull;
mod registry;
mod store;
mod transport;
pub mod unpack;

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The reference grammar is a leaf module of its own (`crate::reference`), so that `config`
/// can check image names without importing `image`; re-exported at its old path.
pub(crate) use crate::reference;
pub use digest::Digest;
pub use error::ImageError;
/// For the fuzz targets only (src/lib.rs' `fuzzing`).
#[cfg(fuzzing)]
pub use manifest::{
    ConfigSummary as FuzzConfigSummary, Fetched as FuzzFetched, check_config_descriptor,
    parse as parse_manifest, parse_config, select as select_platform,
};
pub use store::{ImageRecord, Usage};

use auth::AuthFile;
use error::Result;
use keyed_lock::KeyedLocks;
use reference::ImageRef;
use store::Store;

use crate::config::ImageConfig;

pub struct ImageManager {
    config: ImageConfig,
    /// Shared with the blocking tasks that write it.
    store: Arc<Store>,
    layer_locks: KeyedLocks,
}

impl ImageManager {
    /// Opens the store under `<root>/images`, recovering from whatever a crash left.
    pub fn open(root: &Path, config: ImageConfig) -> Result<ImageManager> {
        Ok(ImageManager {
            config,
            store: Arc::new(Store::open(&root.join("images"))?),
            layer_locks: KeyedLocks::default(),
        })
    }

    pub fn store_dir(&self) -> &Path {
        self.store.dir()
    }

    /// Where a layer of an image is unpacked (an overlayfs lower directory).
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.store.layer_dir(diff_id)
    }

    pub fn list(&self) -> Vec<ImageRecord> {
        self.store.images()
    }

    /// Finds an image by id (`sha256:<hex>` or bare hex), `name:tag` or `name@digest`; short names
    /// are looked up in each unqualified-search registry.
    pub fn find(&self, name: &str) -> Result<Option<ImageRecord>> {
        if let Some(id) = as_image_id(name) {
            // An id is never a repository name (docker's rule), so an unknown id is just absent.
            return Ok(self.store.image(&id));
        }
        for candidate in self.candidates(name)? {
            let found = self
                .store
                .images()
                .into_iter()
                .find(|img| matches(img, &candidate));
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The config JSON of an image, as the registry served it.
    pub fn config_json(&self, image: &ImageRecord) -> Result<Vec<u8>> {
        self.store.read_blob(&Digest::parse(&image.id)?)
    }

    /// Removes `name`: by a tag of an image that has other tags, only that tag; otherwise the whole
    /// image, and then every layer and blob no other image needs. Absent images are not an error.
    pub fn remove(&self, name: &str) -> Result<()> {
        let Some(mut image) = self.find(name)? else {
            return Ok(());
        };
        let tag = self
            .candidates(name)
            .ok()
            .into_iter()
            .flatten()
            .filter(|c| c.digest().is_none())
            .filter_map(|c| c.repo_tag())
            .find(|t| image.repo_tags.contains(t));
        match tag {
            Some(tag) if image.repo_tags.len() > 1 && as_image_id(name).is_none() => {
                image.repo_tags.retain(|t| *t != tag);
                let id = image.id.clone();
                self.store.update_image(&id, Some(image))
            }
            _ => self.store.update_image(&image.id, None),
        }
    }

    /// Keeps `layers` (diff ids) on disk for `owner`, a container that mounts them, even after
    /// their image is removed; replaces the owner's previous hold.
    pub fn hold_layers(&self, owner: &str, layers: &[String]) -> Result<()> {
        self.store.hold_layers(owner, layers)
    }

    /// Ends `owner`'s hold and deletes the layers nothing else needs; idempotent.
    pub fn release_layers(&self, owner: &str) -> Result<()> {
        self.store.release_layers(owner)
    }

    /// Ends the holds of owners `keep` rejects (containers whose record is gone).
    pub fn release_holds_unless(&self, keep: impl Fn(&str) -> bool) -> Result<()> {
        for owner in self.store.holders() {
            if !keep(&owner) {
                self.store.release_layers(&owner)?;
            }
        }
        Ok(())
    }

    pub fn usage(&self) -> Result<Usage> {
        self.store.usage()
    }

    /// The references `name` may mean: itself when it names a registry, else one per
    /// unqualified-search registry, in order.
    fn candidates(&self, name: &str) -> Result<Vec<ImageRef>> {
        let registries = &self.config.unqualified_search_registries;
        if !ImageRef::is_short_name(name) || registries.len() <= 1 {
            let default = registries
                .first()
                .map(String::as_str)
                .unwrap_or("docker.io");
            return Ok(vec![ImageRef::parse(name, default)?]);
        }
        registries
            .iter()
            .map(|r| ImageRef::parse(name, r).map_err(Into::into))
            .collect()
    }

    fn auth_file(&self) -> Result<AuthFile> {
        Ok(AuthFile::load(&self.config.auth_file)?)
    }
}

/// `sha256:<hex>` when `name` is an image id, with or without its algorithm.
fn as_image_id(name: &str) -> Option<String> {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("sha256:{hex}"))
}

fn matches(image: &ImageRecord, wanted: &ImageRef) -> bool {
    match wanted.digest() {
        Some(digest) => {
            image.repo_digests.contains(&wanted.repo_digest(digest))
                || (image.manifest_digest == digest
                    && image
                        .repo_digests
                        .iter()
                        .any(|d| d.starts_with(&format!("{}@", wanted.name()))))
        }
        None => wanted
            .repo_tag()
            .is_some_and(|t| image.repo_tags.contains(&t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids_are_recognised_with_or_without_algorithm() {
        let hex = "a".repeat(64);
        assert_eq!(as_image_id(&hex), Some(format!("sha256:{hex}")));
        assert_eq!(
            as_image_id(&format!("sha256:{hex}")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(as_image_id("busybox"), None);
    }
}
