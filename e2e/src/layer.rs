//! Building image layers: deterministic tar archives (fixed mtimes, numeric owners) and their
//! compressed forms, with the OCI whiteout conventions (`.wh.<name>`, `.wh..wh..opq`).

use std::io::Write;

use anyhow::{Context, Result};
use bytes::Bytes;

use crate::util::sha256_digest;

/// The modification time written into every tar entry (2024-01-01T00:00:00Z).
pub const MTIME: u64 = 1_704_067_200;

/// How a layer blob is compressed, which also decides its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar (`...tar`).
    None,
    /// gzip at a level 0..=9 (`...tar+gzip`); level 0 writes stored (uncompressed) deflate blocks.
    Gzip(u32),
    /// zstd at a level (`...tar+zstd`).
    Zstd(i32),
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip(_) => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd(_) => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// The Docker schema2 layer media type (Docker only knows gzip layers).
    pub fn docker_media_type(self) -> &'static str {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    }
}

/// A finished layer: its blob and the digests a manifest and a config need.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The (possibly compressed) blob as pushed.
    pub blob: Bytes,
    /// `sha256:` of `blob`: the manifest's layer digest.
    pub digest: String,
    /// `sha256:` of the uncompressed tar: the config's `rootfs.diff_ids` entry.
    pub diff_id: String,
    pub compression: Compression,
}

impl Layer {
    /// Compresses `tar` and computes both digests.
    pub fn from_tar(tar: &[u8], compression: Compression) -> Result<Layer> {
        let blob = compress(tar, compression)?;
        Ok(Layer {
            digest: sha256_digest(&blob),
            diff_id: sha256_digest(tar),
            blob: Bytes::from(blob),
            compression,
        })
    }

    pub fn size(&self) -> u64 {
        self.blob.len() as u64
    }
}

/// Compresses a tar archive.
pub fn compress(tar: &[u8], compression: Compression) -> Result<Vec<u8>> {
    match compression {
        Compression::None => Ok(tar.to_vec()),
        Compression::Gzip(level) => {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(tar.len() / 2 + 64),
                flate2::Compression::new(level),
            );
            encoder.write_all(tar)?;
            Ok(encoder.finish()?)
        }
        Compression::Zstd(level) => zstd::encode_all(tar, level).context("zstd compression"),
    }
}

/// Appends entries to an in-memory tar archive; paths are relative to the image root
/// (no leading `/`), parents are not created implicitly.
pub struct TarBuilder {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    pub fn new() -> TarBuilder {
        let mut builder = tar::Builder::new(Vec::new());
        builder.mode(tar::HeaderMode::Deterministic);
        TarBuilder { builder }
    }

    fn header(kind: tar::EntryType, mode: u32, uid: u64, gid: u64, size: u64) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mtime(MTIME);
        header.set_size(size);
        header
    }

    /// A directory owned by root.
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<&mut Self> {
        self.dir_owned(path, mode, 0, 0)
    }

    pub fn dir_owned(&mut self, path: &str, mode: u32, uid: u64, gid: u64) -> Result<&mut Self> {
        let mut header = Self::header(tar::EntryType::Directory, mode, uid, gid, 0);
        let path = format!("{}/", path.trim_end_matches('/'));
        self.builder
            .append_data(&mut header, &path, std::io::empty())
            .with_context(|| format!("tar: directory {path}"))?;
        Ok(self)
    }

    /// A regular file owned by root.
    pub fn file(&mut self, path: &str, mode: u32, contents: &[u8]) -> Result<&mut Self> {
        self.file_owned(path, mode, 0, 0, contents)
    }

    pub fn file_owned(
        &mut self,
        path: &str,
        mode: u32,
        uid: u64,
        gid: u64,
        contents: &[u8],
    ) -> Result<&mut Self> {
        let mut header = Self::header(
            tar::EntryType::Regular,
            mode,
            uid,
            gid,
            contents.len() as u64,
        );
        self.builder
            .append_data(&mut header, path, contents)
            .with_context(|| format!("tar: file {path}"))?;
        Ok(self)
    }

    /// A symbolic link `path -> target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<&mut Self> {
        let mut header = Self::header(tar::EntryType::Symlink, 0o777, 0, 0, 0);
        self.builder
            .append_link(&mut header, path, target)
            .with_context(|| format!("tar: symlink {path}"))?;
        Ok(self)
    }

    /// A hard link `path` to the earlier entry `target`.
    pub fn hardlink(&mut self, path: &str, target: &str) -> Result<&mut Self> {
        let mut header = Self::header(tar::EntryType::Link, 0o644, 0, 0, 0);
        self.builder
            .append_link(&mut header, path, target)
            .with_context(|| format!("tar: hard link {path}"))?;
        Ok(self)
    }

    /// Deletes `path` (from lower layers): the whiteout file `<dir>/.wh.<name>`.
    pub fn whiteout(&mut self, path: &str) -> Result<&mut Self> {
        let (dir, name) = match path.rsplit_once('/') {
            Some((dir, name)) => (format!("{dir}/"), name),
            None => (String::new(), path),
        };
        self.file(&format!("{dir}.wh.{name}"), 0o644, b"")
    }

    /// Hides everything lower layers put into directory `dir`: `<dir>/.wh..wh..opq`.
    pub fn opaque(&mut self, dir: &str) -> Result<&mut Self> {
        self.file(
            &format!("{}/.wh..wh..opq", dir.trim_end_matches('/')),
            0o644,
            b"",
        )
    }

    /// The finished archive (with its end-of-archive blocks).
    pub fn finish(self) -> Result<Vec<u8>> {
        self.builder.into_inner().context("finishing tar archive")
    }
}
