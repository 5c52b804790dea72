//! Fetching one layer: the blob streams from the registry through digest and size checks,
//! decompression and the unpacker straight into a directory under `tmp/`, which is renamed into
//! `layers/` only when every check passed. Nothing of a bad blob is kept.
//!
//! A layer is stored under its diff id, except one with hard links to files of lower layers:
//! those links become copies of the lower files ([`copy_up`]), so what it unpacks to depends on
//! the layers below, and it is stored under its chain id (the OCI `ChainID`, as containerd keys
//! its snapshots). Whether a layer has such links is a property of its tar, so a diff id is
//! always stored the one way or always the other.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Future, Stream};
use tokio_util::io::{StreamReader, SyncIoBridge};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::digest::Digest;
use super::error::{ImageError, Result};
use super::store::{LayerRecord, Store};
use super::transport::Transport;
use super::unpack::{Compression, LowerLink, UnpackStats, copy_up_lower_links, unpack_layer};

/// What the puller knows about a layer from the manifest and config.
pub struct LayerSpec {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub diff_id: Digest,
    /// The OCI chain id of the image's layers up to and including this one.
    pub chain_id: Digest,
}

/// The OCI `ChainID`s of layers with these diff ids, lowest first.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut chain: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(below) => Digest::of(format!("{below} {diff_id}").as_bytes()),
        };
        chain.push(next);
    }
    chain
}

/// What fetching a layer left.
pub enum Fetched {
    /// The layer is in the store under this key (its diff id or its chain id).
    Stored(Digest),
    /// Unpacked, but its hard links to lower layers wait for [`copy_up`].
    Pending(Pending),
}

/// An unpacked layer under `tmp/` with placeholders for its links into lower layers; the
/// directory is deleted if it is dropped before [`copy_up`] stores it.
pub struct Pending {
    dir: Option<PathBuf>,
    links: Vec<LowerLink>,
    record: LayerRecord,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(discard(dir))),
                Err(_) => drop(std::fs::remove_dir_all(dir)),
            }
        }
    }
}

/// The first problem the download stream itself saw (digest, size, network), kept because the
/// unpacker only sees a failed read.
type StreamFault = Arc<Mutex<Option<String>>>;

/// Downloads and unpacks `layer` unless the store has it already.
pub async fn fetch(
    store: &Store,
    transport: &Transport,
    reference: &oci_client::Reference,
    layer: &LayerSpec,
) -> Result<Fetched> {
    for key in [&layer.diff_id, &layer.chain_id] {
        if store.has_layer(key) {
            return Ok(Fetched::Stored(key.clone()));
        }
    }
    let stream = transport.blob_stream(reference, &layer.digest).await?;
    let fault: StreamFault = Arc::default();
    // Dropping this future (pull timeout, client gone) cancels the download, which fails the
    // unpacker's next read; the blocking task then deletes its directory itself.
    let cancel = CancellationToken::new();
    let _cancel_on_drop = cancel.clone().drop_guard();
    let checked = CheckedStream {
        inner: stream,
        expected: layer.size,
        seen: 0,
        fault: fault.clone(),
        cancelled: Box::pin(cancel.cancelled_owned()),
    };
    let reader = SyncIoBridge::new(StreamReader::new(checked));
    let tmp = store.tmp_path("layer");
    let media_type = layer.media_type.clone();
    let dest = tmp.clone();
    let unpacked = tokio::task::spawn_blocking(move || {
        let result = unpack_into(reader, &media_type, &dest);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&dest);
        }
        result
    })
    .await;
    let outcome = match unpacked {
        Ok(Ok(stats)) => check_fault(&fault, layer).map(|()| stats),
        Ok(Err(err)) => Err(check_fault(&fault, layer)
            .err()
            .unwrap_or_else(|| unpack_error(layer, err))),
        Err(join) => Err(ImageError::Registry(format!(
            "layer {}: unpack task failed: {join}",
            layer.digest
        ))),
    };
    let stats = match outcome {
        Ok(stats) => stats,
        Err(err) => {
            discard(tmp).await;
            return Err(err);
        }
    };
    if stats.diff_id != layer.diff_id.as_str() {
        discard(tmp).await;
        return Err(ImageError::Verification {
            digest: layer.digest.to_string(),
            message: format!(
                "uncompressed content is {} but the image config says {}",
                stats.diff_id, layer.diff_id
            ),
        });
    }
    let record = LayerRecord {
        bytes: stats.size,
        inodes: stats.entries,
    };
    if !stats.lower_links.is_empty() {
        return Ok(Fetched::Pending(Pending {
            dir: Some(tmp),
            links: stats.lower_links,
            record,
        }));
    }
    store_dir(store, tmp, &layer.diff_id, record).await?;
    Ok(Fetched::Stored(layer.diff_id.clone()))
}

/// Fills `pending`'s links from `lowers` (the image's lower layer directories, topmost first)
/// and stores it under its chain id, unless the store has that already.
pub async fn copy_up(
    store: &Store,
    layer: &LayerSpec,
    mut pending: Pending,
    lowers: Vec<PathBuf>,
) -> Result<Digest> {
    let key = layer.chain_id.clone();
    if store.has_layer(&key) {
        return Ok(key);
    }
    let Some(dir) = pending.dir.take() else {
        return Err(ImageError::io(
            format!("layer {}", layer.digest),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    };
    let links = std::mem::take(&mut pending.links);
    let work = dir.clone();
    let copied = tokio::task::spawn_blocking(move || {
        let lowers: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
        copy_up_lower_links(&work, &links, &lowers)
    })
    .await;
    let copied = match copied {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(source)) => {
            discard(dir).await;
            return Err(ImageError::Unpack {
                digest: layer.digest.to_string(),
                source,
            });
        }
        Err(join) => {
            discard(dir).await;
            return Err(ImageError::Registry(format!(
                "layer {}: copy-up task failed: {join}",
                layer.digest
            )));
        }
    };
    let record = LayerRecord {
        bytes: pending.record.bytes + copied,
        ..pending.record
    };
    store_dir(store, dir, &key, record).await?;
    Ok(key)
}

/// Moves a finished layer directory into `layers/` under `key` and records it.
async fn store_dir(store: &Store, dir: PathBuf, key: &Digest, record: LayerRecord) -> Result<()> {
    if let Err(e) = tokio::fs::rename(&dir, store.layer_dir(key)).await {
        discard(dir).await;
        return Err(ImageError::io(format!("store layer {key}"), e));
    }
    store.add_layer(key, record);
    Ok(())
}

/// The blocking part: sniff the compression, unpack, and read the stream to its end so the digest
/// check at the end of the stream runs.
fn unpack_into(
    reader: impl std::io::Read,
    media_type: &str,
    dest: &std::path::Path,
) -> std::io::Result<UnpackStats> {
    std::fs::create_dir(dest)?;
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    let magic = reader.fill_buf()?;
    let compression = Compression::detect(media_type, &magic[..magic.len().min(4)]);
    let stats = unpack_layer(&mut reader, compression, dest).map_err(std::io::Error::other)?;
    std::io::copy(&mut reader, &mut std::io::sink())?;
    Ok(stats)
}

fn check_fault(fault: &StreamFault, layer: &LayerSpec) -> Result<()> {
    let seen = fault.lock().unwrap_or_else(|p| p.into_inner()).take();
    match seen {
        None => Ok(()),
        Some(message) => Err(ImageError::Verification {
            digest: layer.digest.to_string(),
            message,
        }),
    }
}

fn unpack_error(layer: &LayerSpec, err: std::io::Error) -> ImageError {
    match err.into_inner() {
        Some(inner) => match inner.downcast::<super::unpack::UnpackError>() {
            Ok(source) => ImageError::Unpack {
                digest: layer.digest.to_string(),
                source: *source,
            },
            Err(other) => ImageError::io(
                format!("unpack layer {}", layer.digest),
                std::io::Error::other(other),
            ),
        },
        None => ImageError::Registry(format!("layer {}: read failed", layer.digest)),
    }
}

async fn discard(dir: PathBuf) {
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
}

/// Passes the blob through, failing it the moment it grows past its descriptor's size, when it
/// ends short, or when the digest check at its end fails.
struct CheckedStream<S> {
    inner: S,
    expected: u64,
    seen: u64,
    fault: StreamFault,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl<S> CheckedStream<S> {
    fn fail(&self, message: String) -> Poll<Option<std::io::Result<Bytes>>> {
        let mut slot = self.fault.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(message.clone());
        Poll::Ready(Some(Err(std::io::Error::other(message))))
    }
}

impl<S> Stream for CheckedStream<S>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.cancelled.as_mut().poll(cx).is_ready() {
            return self.fail("pull abandoned".to_string());
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len() as u64;
                if self.seen > self.expected {
                    let (seen, expected) = (self.seen, self.expected);
                    return self.fail(format!(
                        "registry sent {seen}+ bytes, descriptor says {expected}"
                    ));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(err))) => self.fail(format!("download failed: {err}")),
            Poll::Ready(None) if self.seen < self.expected => {
                let (seen, expected) = (self.seen, self.expected);
                self.fail(format!(
                    "registry sent {seen} bytes, descriptor says {expected}"
                ))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let (a, b, c) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c"));
        let chain = chain_ids(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], Digest::of(format!("{a} {b}").as_bytes()));
        assert_eq!(chain[2], Digest::of(format!("{} {c}", chain[1]).as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }
}
