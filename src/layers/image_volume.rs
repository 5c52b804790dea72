//! Image volumes (CRI `Mount.image`, KEP-4639): an image the kubelet pulled, mounted read-only
//! into a container. Each is a read-only overlay of the image's layers (id-mapped in a pod with
//! its own user namespace, like the rootfs) at `<runroot>/containers/<id>/volumes/<i>`, `i` being
//! the mount's index in the request, which the spec then binds at the mount's container path.
//! Everything derives from the container id, so removal and recovery find the mounts without
//! a record of them; the image store keeps the layers while the container holds them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::layer_dirs;
use super::overlay::{self as rootfs, LayerIdmap};
use crate::api;
use crate::engine::{Engine, PodError};
use crate::image::ImageRecord;
use crate::validate::quote;

/// An image volume of a request: the index of its mount and the image found for it.
#[derive(Debug, Clone)]
pub struct ImageVolume {
    pub index: usize,
    pub image: ImageRecord,
    /// The image's unpacked layers, lowest first.
    pub lowers: Vec<PathBuf>,
}

/// Looks up the image of every image mount of `config` (the kubelet pulled them already).
pub fn resolve(
    engine: &Engine,
    config: &api::ContainerConfig,
) -> Result<Vec<ImageVolume>, PodError> {
    let mut out = Vec::new();
    for (index, m) in config.mounts.iter().enumerate() {
        let Some(name) = m.image.as_ref().map(|i| i.image.as_str()) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        let image = engine
            .images
            .find(name)
            .map_err(|e| {
                PodError::InvalidArgument(format!("mount {}: {e}", quote(&m.container_path)))
            })?
            .ok_or_else(|| {
                PodError::NotFound(format!(
                    "mount {}: image {} not found",
                    quote(&m.container_path),
                    quote(name)
                ))
            })?;
        let lowers = layer_dirs(&engine.images, &image)?;
        out.push(ImageVolume {
            index,
            image,
            lowers,
        });
    }
    Ok(out)
}

/// Writes each volume's digest into its mount's `image.image_ref`, which ContainerStatus then
/// reports (kubelet shows it in the pod's volume status): the image's id, the `image_ref` that
/// PullImage answered for it, as critest's image volume digest spec and containerd have it.
pub fn record_digests(config: &mut api::ContainerConfig, volumes: &[ImageVolume]) {
    for v in volumes {
        if let Some(spec) = config
            .mounts
            .get_mut(v.index)
            .and_then(|m| m.image.as_mut())
        {
            spec.image_ref = v.image.id.clone();
        }
    }
}

/// Where a container's image volumes are mounted: `<run_dir>/volumes`.
pub fn volumes_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("volumes")
}

/// The empty bottom layer a one-layer image volume needs.
fn empty_dir(volumes: &Path) -> PathBuf {
    volumes.join("empty")
}

/// Mounts every volume; blocking. What is mounted before a failure is left for [`unmount_all`].
pub(super) fn mount_all(
    volumes: &[ImageVolume],
    run_dir: &Path,
    idmapped: Option<&LayerIdmap>,
) -> Result<(), PodError> {
    let dir = volumes_dir(run_dir);
    for v in volumes {
        let target = crate::oci::image_volume_path(&dir, v.index);
        rootfs::mount_readonly_overlay(&v.lowers, &empty_dir(&dir), &target, idmapped)?;
    }
    Ok(())
}

/// Unmounts whatever is mounted under the container's volumes directory; idempotent, blocking.
pub(super) fn unmount_all(run_dir: &Path) -> Result<(), PodError> {
    let dir = volumes_dir(run_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(PodError::internal(format!("listing {}", dir.display()), e)),
    };
    for entry in entries {
        let entry =
            entry.map_err(|e| PodError::internal(format!("listing {}", dir.display()), e))?;
        rootfs::unmount(&entry.path())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_under_the_run_dir_and_unmounts_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        fs::create_dir_all(&layer).unwrap();
        fs::write(layer.join("f"), "x").unwrap();
        let run = dir.path().join("run");
        let image = ImageRecord {
            id: String::new(),
            manifest_digest: String::new(),
            repo_tags: vec![],
            repo_digests: vec![],
            layers: vec![],
            size: 0,
            user: String::new(),
            extra_blobs: vec![],
        };
        let v = ImageVolume {
            index: 2,
            image,
            lowers: vec![layer.clone()],
        };
        let mounted = mount_all(std::slice::from_ref(&v), &run, None);
        let read = fs::read_to_string(run.join("volumes/2/f"));
        unmount_all(&run).unwrap();
        unmount_all(&run).unwrap();
        mounted.unwrap();
        assert_eq!(read.unwrap(), "x");
        assert!(!run.join("volumes/2/f").exists());
        fs::remove_dir_all(&run).unwrap();
        assert!(layer.join("f").exists());
        unmount_all(&run).unwrap();
    }
}
