//! The on-disk cache of ADD results, one file per (network, container, interface), so that
//! DEL gets its `prevResult` after a daemon restart. Layout as libcni's:
//! `<cache_dir>/results/<network>-<container id>-<ifname>`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::CniError;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    kind: String,
    network_name: String,
    container_id: String,
    if_name: String,
    result: Value,
    /// The capability arguments of the ADD (port mappings, ...): DEL must repeat them.
    #[serde(default)]
    capability_args: Map<String, Value>,
}

/// A cached ADD: its result and the capability arguments it was made with.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    pub result: Value,
    pub capability_args: Map<String, Value>,
}

const KIND: &str = "cniCacheV1";

/// The cache file of one attachment. Names containing `/` cannot escape the directory: they
/// are replaced by `_` (container ids and interface names never contain one).
pub fn path(cache_dir: &Path, network: &str, container_id: &str, ifname: &str) -> PathBuf {
    let name = format!("{network}-{container_id}-{ifname}").replace(['/', '\0'], "_");
    cache_dir.join("results").join(name)
}

fn cache_err(path: &Path, msg: impl std::fmt::Display) -> CniError {
    CniError::Cache {
        path: path.to_path_buf(),
        msg: msg.to_string(),
    }
}

/// Write the result atomically. `Durable`, although `<runroot>` is normally tmpfs (where the
/// syncs cost nothing): on a run root placed on disk, a power loss must not leave a torn entry,
/// which would make the DEL after the restart fail instead of running without a cached result.
pub fn write(
    cache_dir: &Path,
    network: &str,
    container_id: &str,
    ifname: &str,
    result: &Value,
    capability_args: &Map<String, Value>,
) -> Result<(), CniError> {
    let path = path(cache_dir, network, container_id, ifname);
    let dir = path.parent().unwrap_or(cache_dir);
    std::fs::create_dir_all(dir).map_err(|e| cache_err(dir, e))?;
    let entry = Entry {
        kind: KIND.to_string(),
        network_name: network.to_string(),
        container_id: container_id.to_string(),
        if_name: ifname.to_string(),
        result: result.clone(),
        capability_args: capability_args.clone(),
    };
    let bytes = serde_json::to_vec(&entry).map_err(|e| cache_err(&path, e))?;
    crius_atomic_file::write(&path, &bytes, crius_atomic_file::Durability::Durable)
        .map_err(|e| cache_err(&path, e))
}

/// The cached ADD, `None` when there is no entry.
pub fn read(
    cache_dir: &Path,
    network: &str,
    container_id: &str,
    ifname: &str,
) -> Result<Option<Cached>, CniError> {
    let path = path(cache_dir, network, container_id, ifname);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(cache_err(&path, e)),
    };
    let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| cache_err(&path, e))?;
    if entry.kind != KIND {
        return Err(cache_err(&path, format!("unknown kind {:?}", entry.kind)));
    }
    Ok(Some(Cached {
        result: entry.result,
        capability_args: entry.capability_args,
    }))
}

/// Remove the entry; a missing one is fine.
pub fn remove(
    cache_dir: &Path,
    network: &str,
    container_id: &str,
    ifname: &str,
) -> Result<(), CniError> {
    let path = path(cache_dir, network, container_id, ifname);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(cache_err(&path, e)),
    }
}
