//! Persistent records of pod sandboxes and containers: one JSON file per object under
//! `<root>/state/{sandboxes,containers}/<id>.json`.
//!
//! Every write is crash-safe (`crius_atomic_file`, `Durable`: temporary file, fsync, rename,
//! fsync of the directory), so after a `kill -9` or a power loss at any moment a record is
//! either the old one or the new one. Those writes and removals block on the disk, so they run
//! on tokio's blocking threads (`spawn_blocking`), never on the async workers. The lifecycle code
//! writes a record *before* it creates anything the record names (phase `Creating`, `Removing`),
//! which is what lets recovery finish or undo whatever a crash interrupted.

mod records;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use records::{
    ContainerPhase, ContainerRecord, NetworkState, Pinned, ProcessRef, ProcessUser, SandboxPhase,
    SandboxRecord, now_nanos,
};

/// Which kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sandbox,
    Container,
}

impl Kind {
    fn dir_name(self) -> &'static str {
        match self {
            Kind::Sandbox => "sandboxes",
            Kind::Container => "containers",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("state record {path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The blocking thread writing a record failed (it panicked).
    #[error("state store: {0}")]
    Task(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The record directories.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    /// Opens (creating) `<dir>/sandboxes` and `<dir>/containers`, removing temporary files a
    /// crash left.
    pub fn open(dir: &Path) -> Result<StateStore, StoreError> {
        let store = StateStore {
            dir: dir.to_path_buf(),
        };
        for kind in [Kind::Sandbox, Kind::Container] {
            let d = store.kind_dir(kind);
            fs::create_dir_all(&d).map_err(io_err(&d))?;
            for entry in fs::read_dir(&d).map_err(io_err(&d))?.flatten() {
                if entry.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(store)
    }

    fn kind_dir(&self, kind: Kind) -> PathBuf {
        self.dir.join(kind.dir_name())
    }

    fn path(&self, kind: Kind, id: &str) -> PathBuf {
        self.kind_dir(kind).join(format!("{id}.json"))
    }

    /// Writes the record atomically and durably (the JSON is made here, the file written on a
    /// blocking thread).
    pub async fn save<T: Serialize>(
        &self,
        kind: Kind,
        id: &str,
        record: &T,
    ) -> Result<(), StoreError> {
        // Durable: recovery after any crash, power loss included, starts from these records.
        self.save_as(kind, id, record, crius_atomic_file::Durability::Durable)
            .await
    }

    /// [`StateStore::save`] without the syncs: atomic across a crash of the daemon, not across
    /// a power loss. Only for a step whose loss is harmless because it is taken again or
    /// because a power loss makes it moot: a container marked `Removing` that comes back as it
    /// was (or, torn, is quarantined) after a power loss is removed again, and the kubelet asks
    /// for that anyway; a create's process and a start name a process the power loss ended.
    pub async fn save_volatile<T: Serialize>(
        &self,
        kind: Kind,
        id: &str,
        record: &T,
    ) -> Result<(), StoreError> {
        self.save_as(kind, id, record, crius_atomic_file::Durability::Volatile)
            .await
    }

    async fn save_as<T: Serialize>(
        &self,
        kind: Kind,
        id: &str,
        record: &T,
        durability: crius_atomic_file::Durability,
    ) -> Result<(), StoreError> {
        let path = self.path(kind, id);
        let bytes = serde_json::to_vec(record).map_err(|source| StoreError::Json {
            path: path.clone(),
            source,
        })?;
        blocking(move || crius_atomic_file::write(&path, &bytes, durability).map_err(io_err(&path)))
            .await
    }

    /// [`StateStore::remove`] without the directory sync, on the calling thread (for work
    /// already on a blocking thread): a removal that a power loss undoes brings back
    /// a record of something already removed, which is removed again (the reasoning of
    /// [`StateStore::save_volatile`]).
    pub fn remove_volatile_blocking(&self, kind: Kind, id: &str) -> Result<(), StoreError> {
        remove_record(&self.path(kind, id), None)
    }

    /// Deletes the record (the directory synced after); absent is fine.
    pub async fn remove(&self, kind: Kind, id: &str) -> Result<(), StoreError> {
        let path = self.path(kind, id);
        let dir = self.kind_dir(kind);
        blocking(move || remove_record(&path, Some(&dir))).await
    }

    /// Moves an unreadable record out of the way, to `<dir>/quarantine/<kind>/<file>`: kept
    /// for a person to look at, never read again (the next start-up is not hindered by it).
    pub fn quarantine(&self, kind: Kind, path: &Path) -> Result<PathBuf, StoreError> {
        let dir = self.dir.join("quarantine").join(kind.dir_name());
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let to = dir.join(format!("{name}.{}", now_nanos()));
        fs::rename(path, &to).map_err(io_err(path))?;
        sync_dir(&self.kind_dir(kind))?;
        Ok(to)
    }

    /// Every record of a kind; unreadable ones come back as errors so the caller can log them.
    pub fn load_all<T: DeserializeOwned>(
        &self,
        kind: Kind,
    ) -> Result<Vec<Result<T, StoreError>>, StoreError> {
        let dir = self.kind_dir(kind);
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            out.push(fs::read(&path).map_err(io_err(&path)).and_then(|b| {
                serde_json::from_slice(&b).map_err(|source| StoreError::Json {
                    path: path.clone(),
                    source,
                })
            }));
        }
        Ok(out)
    }
}

/// Runs file work on a blocking thread.
async fn blocking(
    work: impl FnOnce() -> Result<(), StoreError> + Send + 'static,
) -> Result<(), StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(StoreError::Task(e.to_string())))
}

/// Deletes a record file, then syncs `sync_dir` if given; absent is fine.
fn remove_record(path: &Path, sync: Option<&Path>) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => sync.map_or(Ok(()), sync_dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct R {
        n: u32,
    }

    #[tokio::test]
    async fn save_replace_load_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store.save(Kind::Sandbox, "a", &R { n: 1 }).await.unwrap();
        store.save(Kind::Sandbox, "a", &R { n: 2 }).await.unwrap();
        store.save(Kind::Container, "b", &R { n: 3 }).await.unwrap();
        let sandboxes: Vec<R> = store
            .load_all(Kind::Sandbox)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(sandboxes, vec![R { n: 2 }]);
        store.remove(Kind::Sandbox, "a").await.unwrap();
        store.remove(Kind::Sandbox, "a").await.unwrap();
        assert!(store.load_all::<R>(Kind::Sandbox).unwrap().is_empty());
    }

    #[tokio::test]
    async fn volatile_saves_and_removals_read_back_as_durable_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store.save(Kind::Container, "c", &R { n: 1 }).await.unwrap();
        store
            .save_volatile(Kind::Container, "c", &R { n: 2 })
            .await
            .unwrap();
        let read = |store: &StateStore| -> Vec<R> {
            store
                .load_all(Kind::Container)
                .unwrap()
                .into_iter()
                .map(Result::unwrap)
                .collect()
        };
        assert_eq!(read(&store), vec![R { n: 2 }]);
        // No temporary file is left beside it.
        assert_eq!(
            fs::read_dir(dir.path().join("containers")).unwrap().count(),
            1
        );
        store
            .remove_volatile_blocking(Kind::Container, "c")
            .unwrap();
        store
            .remove_volatile_blocking(Kind::Container, "c")
            .unwrap();
        assert!(read(&store).is_empty());
    }

    #[test]
    fn leftover_temporary_files_are_dropped_and_bad_records_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let sdir = dir.path().join("sandboxes");
        fs::write(sdir.join("x.json.tmp"), b"{").unwrap();
        fs::write(sdir.join("y.json"), b"not json").unwrap();
        let store2 = StateStore::open(dir.path()).unwrap();
        assert!(!sdir.join("x.json.tmp").exists());
        let all = store2.load_all::<R>(Kind::Sandbox).unwrap();
        assert_eq!(all.len(), 1);
        assert!(all[0].is_err());
        drop(store);
    }
}
