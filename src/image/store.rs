//! The image store on disk, under `<root>/images/`:
//!
//! - `blobs/sha256/<hex>`: manifests, indexes and image configs, content-addressed;
//! - `layers/<hex of diff_id>/`: each layer unpacked once, ready to be an overlayfs lower layer
//!   (`<hex of chain id>` for a layer with hard links into lower layers: see `image::layer`);
//! - `tmp/`: work in progress (downloads being unpacked, files being written); wiped at start-up;
//! - `index.json`: names → manifest → config, per-layer sizes, and the layers each container
//!   keeps mounted (its rootfs and image volumes), which collection spares even when their image
//!   is gone: deleting a lower directory under a mounted overlay empties it. It is the commit point: an image
//!   exists when, and only when, the index names it. It is replaced atomically and durably
//!   (`crius_atomic_file`, `Durable`: temp file, fsync, rename, fsync of the directory), so a
//!   crash leaves either the old or the new index, and whatever a crashed pull left in `layers/`
//!   or `blobs/` is collected at the next start.
//!
//! Everything here that writes is blocking file work (fsync, syncfs, renames): async callers run
//! it on `spawn_blocking`. Readers (`images`, `image`, `has_layer`) never wait for an fsync: an
//! update is written from a copy under a writer lock of its own, and the index lock is only
//! taken to swap the copy in (and by collection, around its renames).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crius_atomic_file::{Durability, Options};
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{ImageError, Result};

/// One image, keyed in the index by its id (the digest of its config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `sha256:<hex>` of the image config.
    pub id: String,
    /// Digest of the platform manifest that was pulled.
    pub manifest_digest: String,
    /// `name:tag`, fully qualified.
    pub repo_tags: Vec<String>,
    /// `name@<digest>` of what the registry served (the index digest for multi-arch images).
    pub repo_digests: Vec<String>,
    /// The store keys of its layers, lowest first: a layer's diff id, or its chain id when its
    /// hard links reach into lower layers (`image::layer`).
    pub layers: Vec<String>,
    /// Bytes of config plus compressed layers, as the registry served them.
    pub size: u64,
    /// The config's `User`, as written there.
    pub user: String,
    /// Other blobs this image keeps alive (the index it was chosen from, if any).
    #[serde(default)]
    pub extra_blobs: Vec<String>,
}

/// One unpacked layer: what it costs on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub bytes: u64,
    pub inodes: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Index {
    images: BTreeMap<String, ImageRecord>,
    layers: BTreeMap<String, LayerRecord>,
    /// Owner (a container id) → the layer diff ids it has mounted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    holds: BTreeMap<String, Vec<String>>,
}

/// Bytes and inodes the store occupies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub inodes: u64,
}

pub struct Store {
    dir: PathBuf,
    /// The index as last written (plus layers added since, see [`Store::add_layer`]). Held only
    /// briefly, never across file work.
    index: Mutex<Index>,
    /// Serialises the writers of `index.json` and collection; held across their file work.
    writer: Mutex<()>,
    /// Layers and blobs that running pulls have written but not yet committed: collection spares them.
    in_flight: Mutex<HashMap<String, usize>>,
    next_tmp: AtomicU64,
}

impl Store {
    /// Opens (creating if needed) the store under `dir`, clears `tmp/` and collects leftovers.
    pub fn open(dir: &Path) -> Result<Store> {
        for sub in ["blobs/sha256", "layers", "tmp"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path)
                .map_err(|e| ImageError::io(format!("create {}", path.display()), e))?;
        }
        // A crash while writing the index leaves its temporary file (`index.json.tmp` before
        // the shared helper named them).
        crius_atomic_file::remove_temps(dir)
            .and_then(|()| match fs::remove_file(dir.join("index.json.tmp")) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            })
            .map_err(|e| ImageError::io(format!("clean {}", dir.display()), e))?;
        let index = read_index(&dir.join("index.json"))?;
        let store = Store {
            dir: dir.to_path_buf(),
            index: Mutex::new(index),
            writer: Mutex::new(()),
            in_flight: Mutex::new(HashMap::new()),
            next_tmp: AtomicU64::new(0),
        };
        remove_children(&store.dir.join("tmp"))?;
        store.collect_garbage()?;
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join("layers").join(diff_id.hex())
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    /// A fresh, unique path under `tmp/` (not created).
    pub fn tmp_path(&self, what: &str) -> PathBuf {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join("tmp")
            .join(format!("{what}-{}-{n}", std::process::id()))
    }

    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.lock_index().layers.contains_key(diff_id.as_str()) || self.layer_dir(diff_id).is_dir()
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(|e| ImageError::io(format!("read blob {digest}"), e))
    }

    /// Writes an already verified blob (blocking). `Volatile`: [`Store::commit`] syncs the
    /// filesystem once before the index names it, and staged in `tmp/`, which start-up wipes.
    pub fn write_blob(&self, digest: &Digest, data: &[u8]) -> Result<()> {
        let path = self.blob_path(digest);
        if path.is_file() {
            return Ok(());
        }
        let tmp = self.dir.join("tmp");
        let options = Options {
            temp_dir: Some(&tmp),
            ..Options::new(Durability::Volatile)
        };
        crius_atomic_file::write_with(&path, data, &options)
            .map_err(|e| ImageError::io(format!("write blob {digest}"), e))
    }

    /// Marks layers and blobs as being written by a pull, until the returned guard drops.
    pub fn hold<'a>(&'a self, keys: Vec<String>) -> InFlight<'a> {
        let mut map = self.lock_in_flight();
        for key in &keys {
            *map.entry(key.clone()).or_default() += 1;
        }
        InFlight { store: self, keys }
    }

    /// Records a freshly unpacked layer (its directory already renamed into `layers/`), in memory:
    /// the next write of the index (the pull's commit) includes it. The one change made outside
    /// the writer lock, so [`Store::update`] carries the live layer map over.
    pub fn add_layer(&self, diff_id: &Digest, record: LayerRecord) {
        self.lock_index()
            .layers
            .insert(diff_id.as_str().to_string(), record);
    }

    /// Makes `image` visible: its tags move to it from any other image, and the index is written
    /// (blocking).
    pub fn commit(&self, image: ImageRecord) -> Result<()> {
        // One syncfs makes every layer file and blob of this pull durable before the index names them.
        sync_filesystem(&self.dir)?;
        self.update(|next| {
            commit_into(next, image);
            Ok(true)
        })
    }

    /// Changes the index: `change` edits a copy (and says whether it changed anything), the copy
    /// is written durably, and only then swapped in, so the file and the memory never disagree
    /// about images and holds. Writers wait for each other; readers only for the swap. Layers
    /// added meanwhile ([`Store::add_layer`]) stay in the live map; the next write has them.
    fn update(&self, change: impl FnOnce(&mut Index) -> Result<bool>) -> Result<()> {
        let _writer = self.lock_writer();
        let mut next = self.lock_index().clone();
        if !change(&mut next)? {
            return Ok(());
        }
        write_index(&self.dir, &next)?;
        let mut index = self.lock_index();
        next.layers = std::mem::take(&mut index.layers);
        *index = next;
        Ok(())
    }

    pub fn images(&self) -> Vec<ImageRecord> {
        self.lock_index().images.values().cloned().collect()
    }

    pub fn image(&self, id: &str) -> Option<ImageRecord> {
        self.lock_index().images.get(id).cloned()
    }

    /// Replaces (or with `None` deletes) the image `id`, writes the index, then deletes what no
    /// image needs any more.
    pub fn update_image(&self, id: &str, record: Option<ImageRecord>) -> Result<()> {
        self.update(|next| {
            match record {
                Some(record) => next.images.insert(id.to_string(), record),
                None => next.images.remove(id),
            };
            Ok(true)
        })?;
        self.collect_garbage()
    }

    /// Records that `owner` has `layers` mounted (replacing what it held before): collection
    /// keeps them until [`Store::release_layers`]. Fails if a layer is no longer in the store.
    pub fn hold_layers(&self, owner: &str, layers: &[String]) -> Result<()> {
        // Under the writer lock, so collection (which takes it too) cannot remove a layer
        // between this check and the hold.
        self.update(|next| {
            if let Some(gone) = layers
                .iter()
                .find(|l| !next.layers.contains_key(l.as_str()))
            {
                return Err(ImageError::io(
                    format!("layer {gone}"),
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                ));
            }
            let mut held = layers.to_vec();
            held.sort();
            held.dedup();
            next.holds.insert(owner.to_string(), held);
            Ok(true)
        })
    }

    /// Drops `owner`'s hold, then deletes what nothing needs any more; no hold is fine. The
    /// collection (a walk of the store's directories) runs only when a layer of that hold is
    /// needed by no image and no other holder: removing a container of an image still present
    /// frees nothing.
    pub fn release_layers(&self, owner: &str) -> Result<()> {
        let mut freed = false;
        self.update(|next| {
            let Some(held) = next.holds.remove(owner) else {
                return Ok(false);
            };
            freed = held.iter().any(|layer| {
                !next.holds.values().any(|h| h.contains(layer))
                    && !next.images.values().any(|i| i.layers.contains(layer))
            });
            Ok(true)
        })?;
        if !freed {
            return Ok(());
        }
        self.collect_garbage()
    }

    /// The owners holding layers.
    pub fn holders(&self) -> Vec<String> {
        self.lock_index().holds.keys().cloned().collect()
    }

    /// Deletes layers and blobs no image references and no pull or container holds.
    ///
    /// What goes is decided, and moved out of the store's names, under the index lock: a pull
    /// or a container hold arriving afterwards finds the layer gone (and unpacks or refuses it)
    /// instead of one that vanishes under it. Only the slow delete of the renamed trees runs
    /// after the lock.
    pub fn collect_garbage(&self) -> Result<()> {
        let doomed_layers = {
            let _writer = self.lock_writer();
            let mut index = self.lock_index();
            let in_flight = self.lock_in_flight();
            let mut live: BTreeSet<String> = BTreeSet::new();
            live.extend(index.holds.values().flatten().cloned());
            for img in index.images.values() {
                live.extend(img.layers.iter().cloned());
                live.insert(img.id.clone());
                live.insert(img.manifest_digest.clone());
                live.extend(img.extra_blobs.iter().cloned());
            }
            let keep = |key: &str| live.contains(key) || in_flight.contains_key(key);
            let unused_layers = list_digests(&self.dir.join("layers"))?
                .into_iter()
                .filter(|d| !keep(d))
                .collect::<Vec<_>>();
            let unused_blobs = list_digests(&self.dir.join("blobs/sha256"))?
                .into_iter()
                .filter(|d| !keep(d))
                .collect::<Vec<_>>();
            index.layers.retain(|d, _| keep(d));
            let mut doomed = Vec::with_capacity(unused_layers.len());
            for digest in unused_layers {
                let hex = digest.trim_start_matches("sha256:");
                let path = self.dir.join("layers").join(hex);
                // Renamed first, so a crash during the long delete leaves nothing that looks
                // like a layer.
                let to = self.tmp_path("gc");
                fs::rename(&path, &to)
                    .map_err(|e| ImageError::io(format!("remove layer {digest}"), e))?;
                doomed.push((digest, to));
            }
            for digest in unused_blobs {
                let path = self
                    .dir
                    .join("blobs/sha256")
                    .join(digest.trim_start_matches("sha256:"));
                fs::remove_file(&path)
                    .map_err(|e| ImageError::io(format!("remove blob {digest}"), e))?;
            }
            doomed
        };
        for (digest, path) in doomed_layers {
            fs::remove_dir_all(&path)
                .map_err(|e| ImageError::io(format!("remove layer {digest}"), e))?;
            tracing::debug!(%digest, "removed unused layer");
        }
        Ok(())
    }

    /// Space used: recorded layer sizes plus blobs and the index (few, small files).
    pub fn usage(&self) -> Result<Usage> {
        let mut usage = {
            let index = self.lock_index();
            index.layers.values().fold(
                Usage {
                    bytes: 0,
                    inodes: 0,
                },
                |u, l| Usage {
                    bytes: u.bytes + l.bytes,
                    inodes: u.inodes + l.inodes,
                },
            )
        };
        let blobs = self.dir.join("blobs/sha256");
        let entries = fs::read_dir(&blobs)
            .map_err(|e| ImageError::io(format!("list {}", blobs.display()), e))?;
        for entry in entries.flatten() {
            if let Ok(meta) = entry.metadata() {
                usage.bytes += meta.blocks() * 512;
                usage.inodes += 1;
            }
        }
        Ok(usage)
    }

    fn lock_index(&self) -> std::sync::MutexGuard<'_, Index> {
        // A panic while holding the lock cannot leave the index half-changed (updates are
        // built on a clone and swapped in), so a poisoned lock is still consistent.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Releases a pull's hold on its layers and blobs.
pub struct InFlight<'a> {
    store: &'a Store,
    keys: Vec<String>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut map = self.store.lock_in_flight();
        for key in &self.keys {
            if let Some(count) = map.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    map.remove(key);
                }
            }
        }
    }
}

/// `image` into the index: its tags move to it from any other image, and an image left with no
/// name goes.
fn commit_into(next: &mut Index, image: ImageRecord) {
    for other in next.images.values_mut() {
        if other.id != image.id {
            other.repo_tags.retain(|t| !image.repo_tags.contains(t));
        }
    }
    let merged = match next.images.remove(&image.id) {
        Some(old) => merge_records(old, image),
        None => image,
    };
    next.images.insert(merged.id.clone(), merged);
    // An image left with no name is unreachable through the CRI: drop it, as containerd does.
    next.images
        .retain(|_, img| !img.repo_tags.is_empty() || !img.repo_digests.is_empty());
}

fn merge_records(mut old: ImageRecord, new: ImageRecord) -> ImageRecord {
    for tag in new.repo_tags {
        if !old.repo_tags.contains(&tag) {
            old.repo_tags.push(tag);
        }
    }
    for digest in new.repo_digests {
        if !old.repo_digests.contains(&digest) {
            old.repo_digests.push(digest);
        }
    }
    for blob in new.extra_blobs {
        if !old.extra_blobs.contains(&blob) {
            old.extra_blobs.push(blob);
        }
    }
    old
}

fn read_index(path: &Path) -> Result<Index> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            ImageError::io(
                format!("parse {}", path.display()),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
        Err(e) => Err(ImageError::io(format!("read {}", path.display()), e)),
    }
}

/// `Durable`: the index is the commit point of every pull and removal, and must survive a power
/// loss whole (old or new), never torn.
fn write_index(dir: &Path, index: &Index) -> Result<()> {
    let path = dir.join("index.json");
    serde_json::to_vec(index)
        .map_err(std::io::Error::other)
        .and_then(|bytes| crius_atomic_file::write(&path, &bytes, Durability::Durable))
        .map_err(|e| ImageError::io(format!("write {}", path.display()), e))
}

fn sync_filesystem(dir: &Path) -> Result<()> {
    let file = File::open(dir).map_err(|e| ImageError::io("open store for sync", e))?;
    nix::unistd::syncfs(&file)
        .map_err(|e| ImageError::io("sync image store", std::io::Error::from(e)))
}

/// `sha256:<hex>` for every entry of a directory named by hex digest.
fn list_digests(dir: &Path) -> Result<Vec<String>> {
    let entries =
        fs::read_dir(dir).map_err(|e| ImageError::io(format!("list {}", dir.display()), e))?;
    Ok(entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .map(|hex| format!("sha256:{hex}"))
        .collect())
}

fn remove_children(dir: &Path) -> Result<()> {
    let entries =
        fs::read_dir(dir).map_err(|e| ImageError::io(format!("list {}", dir.display()), e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(|e| ImageError::io(format!("remove {}", path.display()), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn record(id: &Digest, tags: &[&str], layers: &[&Digest]) -> ImageRecord {
        ImageRecord {
            id: id.to_string(),
            manifest_digest: digest('f').to_string(),
            repo_tags: tags.iter().map(|t| t.to_string()).collect(),
            repo_digests: vec![],
            layers: layers.iter().map(|l| l.to_string()).collect(),
            size: 1,
            user: String::new(),
            extra_blobs: vec![],
        }
    }

    fn add_layer_dir(store: &Store, d: &Digest) {
        fs::create_dir_all(store.layer_dir(d).join("etc")).unwrap();
        store.add_layer(
            d,
            LayerRecord {
                bytes: 10,
                inodes: 2,
            },
        );
    }

    #[test]
    fn a_layer_added_while_the_index_is_written_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (digest('a'), digest('b'));
        add_layer_dir(&store, &a);
        // The change runs under the writer lock only, as a concurrent pull's add_layer would.
        store
            .update(|next| {
                add_layer_dir(&store, &b);
                next.holds.insert("c1".into(), vec![a.to_string()]);
                Ok(true)
            })
            .unwrap();
        assert!(store.has_layer(&b));
        assert_eq!(store.holders(), ["c1"]);
        // It reaches the file with the next write.
        store
            .commit(record(&digest('1'), &["x:1"], &[&a, &b]))
            .unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(store.has_layer(&a) && store.has_layer(&b));
    }

    #[test]
    fn no_change_no_write_and_no_temporaries_left() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.release_layers("nobody").unwrap();
        assert!(!dir.path().join("index.json").exists());
        let a = digest('a');
        add_layer_dir(&store, &a);
        store.hold_layers("c1", &[a.to_string()]).unwrap();
        assert!(store.hold_layers("c2", &[digest('b').to_string()]).is_err());
        assert_eq!(store.holders(), ["c1"]);
        // What a crash mid-write leaves (old and new temporary names) goes at the next start.
        fs::write(dir.path().join("index.json.tmp"), b"{").unwrap();
        fs::write(dir.path().join(".index.json.1-0.tmp"), b"{").unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.holders(), ["c1"]);
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["blobs", "index.json", "layers", "tmp"]);
    }

    #[test]
    fn committed_images_survive_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let (id, layer) = (digest('a'), digest('1'));
        add_layer_dir(&store, &layer);
        store.commit(record(&id, &["r/x:1"], &[&layer])).unwrap();
        drop(store);
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(store.images().len(), 1);
        assert!(store.layer_dir(&layer).is_dir());
        assert_eq!(store.usage().unwrap().inodes, 2);
    }

    #[test]
    fn uncommitted_layers_and_tmp_are_collected_at_open() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        add_layer_dir(&store, &digest('2'));
        fs::write(tmp.path().join("tmp/partial"), b"x").unwrap();
        drop(store);
        let store = Store::open(tmp.path()).unwrap();
        assert!(!store.layer_dir(&digest('2')).exists());
        assert!(
            fs::read_dir(tmp.path().join("tmp"))
                .unwrap()
                .next()
                .is_none()
        );
    }

    #[test]
    fn a_tag_moves_to_the_newly_committed_image() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let layer = digest('1');
        add_layer_dir(&store, &layer);
        store
            .commit(record(&digest('a'), &["r/x:1", "r/x:2"], &[&layer]))
            .unwrap();
        store
            .commit(record(&digest('b'), &["r/x:1"], &[&layer]))
            .unwrap();
        let a = store.image(digest('a').as_str()).unwrap();
        assert_eq!(a.repo_tags, vec!["r/x:2".to_string()]);
        store
            .commit(record(&digest('c'), &["r/x:2"], &[&layer]))
            .unwrap();
        assert!(
            store.image(digest('a').as_str()).is_none(),
            "untagged image dropped"
        );
    }

    #[test]
    fn held_layers_are_spared_by_collection() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let layer = digest('3');
        let guard = store.hold(vec![layer.to_string()]);
        add_layer_dir(&store, &layer);
        store.collect_garbage().unwrap();
        assert!(store.layer_dir(&layer).is_dir());
        drop(guard);
        store.collect_garbage().unwrap();
        assert!(!store.layer_dir(&layer).exists());
    }

    #[test]
    fn layers_a_container_holds_outlive_their_image_and_a_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let layer = digest('6');
        add_layer_dir(&store, &layer);
        store
            .commit(record(&digest('a'), &["r/a:1"], &[&layer]))
            .unwrap();
        assert!(store.hold_layers("c1", &[digest('7').to_string()]).is_err());
        store.hold_layers("c1", &[layer.to_string()]).unwrap();
        store.update_image(digest('a').as_str(), None).unwrap();
        assert!(store.layer_dir(&layer).is_dir());
        drop(store);
        let store = Store::open(tmp.path()).unwrap();
        assert!(store.layer_dir(&layer).is_dir());
        assert_eq!(store.holders(), vec!["c1".to_string()]);
        store.release_layers("c1").unwrap();
        store.release_layers("c1").unwrap();
        assert!(!store.layer_dir(&layer).exists());
        assert!(store.holders().is_empty());
    }

    #[test]
    fn a_layer_goes_with_its_last_holder_once_no_image_needs_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let layer = digest('8');
        add_layer_dir(&store, &layer);
        store
            .commit(record(&digest('a'), &["r/a:1"], &[&layer]))
            .unwrap();
        store.hold_layers("c1", &[layer.to_string()]).unwrap();
        store.hold_layers("c2", &[layer.to_string()]).unwrap();
        // The image needs it: a release frees nothing.
        store.release_layers("c1").unwrap();
        assert!(store.layer_dir(&layer).is_dir());
        store.update_image(digest('a').as_str(), None).unwrap();
        // Another holder needs it.
        assert!(store.layer_dir(&layer).is_dir());
        store.release_layers("c2").unwrap();
        assert!(!store.layer_dir(&layer).exists());
    }

    #[test]
    fn removing_an_image_deletes_only_what_no_other_image_needs() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let (shared, own) = (digest('4'), digest('5'));
        add_layer_dir(&store, &shared);
        add_layer_dir(&store, &own);
        store
            .commit(record(&digest('a'), &["r/a:1"], &[&shared]))
            .unwrap();
        store
            .commit(record(&digest('b'), &["r/b:1"], &[&shared, &own]))
            .unwrap();
        store.update_image(digest('b').as_str(), None).unwrap();
        assert!(store.layer_dir(&shared).is_dir());
        assert!(!store.layer_dir(&own).exists());
    }
}
