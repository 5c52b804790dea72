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

    /// An entry written from raw header bytes, for the names and links a hostile layer carries
    /// and the tar crate refuses to write (`..`, absolute): `path` and `link` up to 100 bytes.
    /// `declared` is the size the header states, whatever `contents` holds.
    pub fn raw(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        link: Option<&str>,
        declared: u64,
        contents: &[u8],
    ) -> Result<&mut Self> {
        let mut header = Self::header(kind, 0o644, 0, 0, declared);
        let old = header.as_old_mut();
        if path.len() > old.name.len() || link.is_some_and(|l| l.len() > old.linkname.len()) {
            anyhow::bail!("raw tar entry {path:?}: name or link over 100 bytes");
        }
        old.name = [0; 100];
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(link) = link {
            old.linkname = [0; 100];
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_cksum();
        self.builder
            .append(&header, contents)
            .with_context(|| format!("tar: raw entry {path}"))?;
        Ok(self)
    }

    /// A PAX extended header: its records (`path`, `linkpath`, `SCHILY.xattr.*`, ...) apply to
    /// the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> Result<&mut Self> {
        let mut data = Vec::new();
        for (key, value) in records {
            // The length prefix counts itself.
            let rest = key.len() + value.len() + 3;
            let mut len = rest + rest.to_string().len();
            if len.to_string().len() != rest.to_string().len() {
                len += 1;
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        self.raw(
            "PaxHeaders/x",
            tar::EntryType::XHeader,
            None,
            data.len() as u64,
            &data,
        )
    }

    /// A character or block device node, or a FIFO (`major`/`minor` unused).
    pub fn node(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        major: u32,
        minor: u32,
    ) -> Result<&mut Self> {
        let mut header = Self::header(kind, 0o666, 0, 0, 0);
        header.set_device_major(major)?;
        header.set_device_minor(minor)?;
        self.builder
            .append_data(&mut header, path, std::io::empty())
            .with_context(|| format!("tar: node {path}"))?;
        Ok(self)
    }

    /// The finished archive (with its end-of-archive blocks).
    pub fn finish(self) -> Result<Vec<u8>> {
        self.builder.into_inner().context("finishing tar archive")
    }
}
