//! Image layers under running pods, in one place: the overlay root filesystem of a container
//! and of a pod's pause process (with a configured `pause_image`), and image volumes — each
//! held in the image store, mounted, unmounted and released the same way.
//!
//! Every mount of image layers belongs to an *owner*: a container's id, or a sandbox's id for
//! its pause root. Before anything is mounted, [`Mounts::mount`] records every layer the owner
//! uses in the image store's index (`Store::hold_layers`), so a `RemoveImage` meanwhile removes
//! the image's name but image garbage collection keeps the directories an overlay sits on —
//! deleting a lower directory under a mounted overlay empties the pod's view. The hold is
//! written to `index.json` with the rest of the index, so it survives a restart; [`release`]
//! ends it once the owner's overlays are unmounted ([`unmount`]), and at start-up
//! [`release_stale`] ends the holds of owners that no longer exist.
//!
//! The layers of a pod with its own user namespace are id-mapped clones ([`LayerIdmap`]).

pub mod image_volume;
mod overlay;

use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;

use crate::engine::PodError;
use crate::image::{ImageManager, ImageRecord};
use image_volume::ImageVolume;
pub use overlay::{LayerIdmap, remove_tree};

/// What one owner mounts of image layers: an image as an overlay root filesystem (read-write,
/// its upper and work directories in `state_dir`), and the image volumes of a container.
#[derive(Debug)]
pub struct Mounts {
    /// The id the hold is recorded under: the container's, or the sandbox's for its pause.
    pub owner: String,
    /// The image of the root filesystem.
    pub image: ImageRecord,
    /// Where the overlay's `upper/` and `work/` directories go.
    pub state_dir: PathBuf,
    /// The mount point of the root filesystem.
    pub rootfs: PathBuf,
    /// Image volumes, mounted under `<run_dir>/volumes/<index>`.
    pub volumes: Vec<ImageVolume>,
    pub run_dir: PathBuf,
}

impl Mounts {
    /// Holds every layer of the image and the volumes for the owner, then mounts the root
    /// filesystem and the volumes. Blocking. What was held or mounted before a failure is left
    /// for [`unmount`] and [`release`], which undo it.
    pub fn mount(&self, images: &ImageManager, idmap: Option<&LayerIdmap>) -> Result<(), PodError> {
        let lowers = layer_dirs(images, &self.image)?;
        let mut held = self.image.layers.clone();
        held.extend(
            self.volumes
                .iter()
                .flat_map(|v| v.image.layers.iter().cloned()),
        );
        // Before mounting: a RemoveImage meanwhile must not delete the layers under us.
        images
            .hold_layers(&self.owner, &held)
            .map_err(|e| PodError::FailedPrecondition(format!("image layers: {e}")))?;
        overlay::mount_overlay(&lowers, &self.state_dir, &self.rootfs, idmap)?;
        image_volume::mount_all(&self.volumes, &self.run_dir, idmap)
    }
}

/// Unmounts an owner's image volumes under `run_dir` (if any) and its root filesystem at
/// `rootfs`; idempotent, blocking. Its layers stay held until [`release`].
pub fn unmount(rootfs: &Path, run_dir: Option<&Path>) -> Result<(), PodError> {
    if let Some(run_dir) = run_dir {
        image_volume::unmount_all(run_dir)?;
    }
    overlay::unmount(rootfs)
}

/// Ends `owner`'s hold, once nothing of it mounts its layers, and deletes the layers no image
/// and no other owner needs. Idempotent, blocking.
pub fn release(images: &ImageManager, owner: &str) -> Result<(), PodError> {
    images
        .release_layers(owner)
        .map_err(|e| PodError::internal(format!("releasing the image layers of {owner}"), e))
}

/// At start-up: ends the holds of owners `exists` does not know (a crash between an owner's
/// removal and its release). Blocking.
pub fn release_stale(images: &ImageManager, exists: impl Fn(&str) -> bool) -> Result<(), PodError> {
    images
        .release_holds_unless(exists)
        .map_err(|e| PodError::internal("releasing stale image layer holds", e))
}

/// The image's unpacked layers, lowest first.
pub fn layer_dirs(images: &ImageManager, image: &ImageRecord) -> Result<Vec<PathBuf>, PodError> {
    image
        .layers
        .iter()
        .map(|l| crate::image::Digest::parse(l).map(|d| images.layer_dir(&d)))
        .collect::<Result<Vec<PathBuf>, _>>()
        .map_err(|e| PodError::internal("image layers", e))
}

/// The image's configuration (entrypoint, cmd, env, user, …), as the registry served it.
pub fn image_config(
    images: &ImageManager,
    image: &ImageRecord,
) -> Result<ImageConfiguration, PodError> {
    let bytes = images
        .config_json(image)
        .map_err(|e| PodError::internal("reading the image config", e))?;
    ImageConfiguration::from_reader(bytes.as_slice())
        .map_err(|e| PodError::internal(format!("image config of {}", image.id), e))
}
