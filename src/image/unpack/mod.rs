//! Unpacks one OCI/Docker image layer into its own directory, in the form
//! overlayfs expects for a lower layer.
//!
//! The layer is hostile until proven otherwise: every entry is created
//! through directory fds opened one component at a time with `O_NOFOLLOW`
//! from an fd on the destination, so no name, `..`, symlink or hard link in
//! the tar can create or change anything outside it. Whiteouts become
//! overlayfs whiteouts (0:0 character devices) and opaque markers become the
//! `trusted.overlay.opaque` xattr. A hard link to a file of a lower layer
//! becomes a copy of that file (overlayfs copy-up), made once the lower
//! layers are there (`lower`).

mod entries;
mod fsops;
mod lower;
mod meta;
mod path;
mod stream;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use entries::Unpacker;
use fsops::Tree;
pub use lower::{LowerLink, copy_up_lower_links};
use stream::{LayerStream, read_error};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From the OCI/Docker media type; falls back to sniffing the first bytes
    /// (gzip 1f 8b, zstd 28 b5 2f fd) when the media type is unknown or says
    /// nothing.
    pub fn detect(media_type: &str, magic: &[u8]) -> Compression {
        Self::from_media_type(media_type).unwrap_or_else(|| Self::sniff(magic))
    }

    fn from_media_type(media_type: &str) -> Option<Compression> {
        let essence = media_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        // OCI uses `+gzip`/`+zstd` suffixes, docker `.tar.gzip`.
        if essence.ends_with("+gzip") || essence.ends_with(".tar.gzip") {
            Some(Compression::Gzip)
        } else if essence.ends_with("+zstd") || essence.ends_with(".tar.zstd") {
            Some(Compression::Zstd)
        } else if matches!(
            essence.as_str(),
            "application/vnd.oci.image.layer.v1.tar"
                | "application/vnd.oci.image.layer.nondistributable.v1.tar"
        ) {
            Some(Compression::None)
        } else {
            None
        }
    }

    fn sniff(magic: &[u8]) -> Compression {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

/// What unpacking a layer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// `sha256:<hex>` of the uncompressed tar stream.
    pub diff_id: String,
    /// Bytes of file content written.
    pub size: u64,
    /// Tar entries read (extension headers folded into the entry they describe).
    pub entries: u64,
    /// Hard links to files this layer does not have: placeholders that
    /// [`copy_up_lower_links`] fills from the lower layers. A layer with none
    /// is complete on its own.
    pub lower_links: Vec<LowerLink>,
}

/// Why a layer could not be unpacked. Entry errors name the tar entry path.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer destination {path:?}: {source}")]
    Destination { path: PathBuf, source: io::Error },
    #[error("layer destination {path:?} is not empty")]
    DestinationNotEmpty { path: PathBuf },
    #[error("layer entry {entry:?}: path escapes the layer directory")]
    PathEscapes { entry: String },
    #[error("layer entry {entry:?}: {reason}")]
    InvalidEntry { entry: String, reason: String },
    #[error(
        "layer entry {entry:?}: {component:?} is a symlink; refusing to resolve the path through it"
    )]
    SymlinkInPath { entry: String, component: String },
    #[error("layer entry {entry:?}: {component:?} is not a directory")]
    NotADirectory { entry: String, component: String },
    #[error("layer entry {entry:?}: hard link target {target:?} escapes the layer directory")]
    LinkTargetEscapes { entry: String, target: String },
    #[error("layer entry {entry:?}: hard link target {target:?} does not exist in the layer")]
    LinkTargetMissing { entry: String, target: String },
    #[error("layer entry {entry:?}: hard link target {target:?} is a directory")]
    LinkTargetIsDirectory { entry: String, target: String },
    #[error("layer entry {entry:?}: unsupported entry type: {kind}")]
    UnsupportedType { entry: String, kind: String },
    #[error("layer entry {entry:?}: content ends after {written} of {expected} bytes")]
    Truncated {
        entry: String,
        written: u64,
        expected: u64,
    },
    #[error("layer entry {entry:?}: cannot set xattr {name:?}: {source}")]
    Xattr {
        entry: String,
        name: String,
        source: io::Error,
    },
    #[error("layer entry {entry:?}: {op}: {source}")]
    Io {
        entry: String,
        op: &'static str,
        source: io::Error,
    },
    #[error("reading layer stream: {0}")]
    Read(#[source] io::Error),
    #[error("decompressing {compression} layer: {source}")]
    Decompress {
        compression: Compression,
        source: io::Error,
    },
    #[error("malformed layer tar: {0}")]
    Tar(#[source] io::Error),
}

/// Unpacks a (possibly compressed) layer tar stream into `dest`, which must
/// exist and be empty.
///
/// Computes the diff_id (sha256 of the *uncompressed* stream, reading the
/// stream to its end even after the tar end-of-archive marker) while reading.
/// On error `dest` may hold a partial tree for the caller to delete; nothing
/// outside it has been touched.
pub fn unpack_layer<R: Read>(
    reader: R,
    compression: Compression,
    dest: &Path,
) -> Result<UnpackStats, UnpackError> {
    let destination = |e: Errno| UnpackError::Destination {
        path: dest.to_owned(),
        source: e.into(),
    };
    let tree = Tree::open(dest).map_err(destination)?;
    if !tree.is_empty().map_err(destination)? {
        return Err(UnpackError::DestinationNotEmpty {
            path: dest.to_owned(),
        });
    }
    let stream = LayerStream::new(reader, compression).map_err(|e| read_error(e, compression))?;
    let mut archive = tar::Archive::new(stream);
    let mut unpacker = Unpacker::new(tree, compression);
    for entry in archive.entries().map_err(|e| read_error(e, compression))? {
        let mut entry = entry.map_err(|e| read_error(e, compression))?;
        unpacker.entries += 1;
        unpacker.unpack_entry(&mut entry)?;
    }
    let diff_id = archive
        .into_inner()
        .finish()
        .map_err(|e| read_error(e, compression))?;
    unpacker.set_dir_times()?;
    Ok(UnpackStats {
        diff_id,
        size: unpacker.size,
        entries: unpacker.entries,
        lower_links: unpacker.lower_links,
    })
}
