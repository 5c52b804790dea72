//! Layers are built in memory; hostile ones with raw header bytes where the
//! tar builder would refuse the name. Each hostile case also proves that a
//! sentinel beside the layer directory is untouched and nothing was created
//! outside it. These tests need root (mknod, chown, trusted xattrs).

use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::makedev;
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};
use tempfile::TempDir;

use super::*;

const MTIME: u64 = 1_600_000_000;
const SENTINEL: &[u8] = b"sentinel content";

fn header(path: &str, kind: EntryType, size: u64, mode: u32) -> Header {
    let mut h = Header::new_ustar();
    // Raw bytes: `set_path` would refuse the hostile names we need.
    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h
}

fn link_header(path: &str, kind: EntryType, target: &str) -> Header {
    let mut h = header(path, kind, 0, 0o777);
    h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
    h
}

fn owned(mut h: Header, uid: u64, gid: u64) -> Header {
    h.set_uid(uid);
    h.set_gid(gid);
    h
}

fn pax_records(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        // The length prefix counts itself.
        let rest = key.len() + value.len() + 3;
        let mut len = rest + rest.to_string().len();
        if len.to_string().len() != rest.to_string().len() {
            len += 1;
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    fn push(mut self, mut h: Header, data: &[u8]) -> Self {
        h.set_cksum();
        self.0.append(&h, data).expect("append entry");
        self
    }

    fn file(self, path: &str, content: &[u8]) -> Self {
        self.push(
            header(path, EntryType::Regular, content.len() as u64, 0o644),
            content,
        )
    }

    fn dir(self, path: &str) -> Self {
        self.push(header(path, EntryType::Directory, 0, 0o755), b"")
    }

    fn symlink(self, path: &str, target: &str) -> Self {
        self.push(link_header(path, EntryType::Symlink, target), b"")
    }

    fn hard_link(self, path: &str, target: &str) -> Self {
        self.push(link_header(path, EntryType::Link, target), b"")
    }

    /// A PAX extended header describing the next entry.
    fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let data = pax_records(records);
        self.push(
            header("PaxHeader", EntryType::XHeader, data.len() as u64, 0o644),
            &data,
        )
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().expect("finish tar")
    }
}

struct Fixture {
    root: TempDir,
    dest: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let dest = root.path().join("layer");
        fs::create_dir(&dest).expect("create layer dir");
        fs::create_dir(root.path().join("outside")).expect("create outside dir");
        fs::write(root.path().join("outside/sentinel"), SENTINEL).expect("write sentinel");
        Self { root, dest }
    }

    fn unpack(&self, layer: &[u8]) -> Result<UnpackStats, UnpackError> {
        unpack_layer(layer, Compression::None, &self.dest)
    }

    fn at(&self, rel: &str) -> PathBuf {
        self.dest.join(rel)
    }

    fn outside(&self) -> PathBuf {
        self.root.path().join("outside")
    }

    fn assert_outside_untouched(&self) {
        assert_eq!(names(self.root.path()), ["layer", "outside"]);
        assert_eq!(names(&self.outside()), ["sentinel"]);
        let sentinel = self.outside().join("sentinel");
        assert_eq!(fs::read(&sentinel).expect("read sentinel"), SENTINEL);
        let meta = fs::symlink_metadata(&sentinel).expect("stat sentinel");
        assert!(meta.file_type().is_file());
        assert_eq!((meta.uid(), meta.nlink()), (0, 1));
        assert_eq!(xattr(&self.outside(), "trusted.overlay.opaque"), None);
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let path = CString::new(path.as_os_str().as_bytes()).expect("path");
    let name = CString::new(name).expect("name");
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the stated length.
    let n = unsafe {
        nix::libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Opaque directories need trusted xattrs on the layer's filesystem.
fn trusted_xattrs_supported(fx: &Fixture) -> bool {
    let probe = fx.root.path().join("probe");
    fs::write(&probe, b"").expect("write probe");
    let path = CString::new(probe.as_os_str().as_bytes()).expect("path");
    // SAFETY: valid C strings and a one-byte value.
    let rc = unsafe {
        nix::libc::lsetxattr(
            path.as_ptr(),
            c"trusted.crius-probe".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    fs::remove_file(&probe).expect("remove probe");
    if rc != 0 {
        eprintln!(
            "skipping opaque-xattr assertions: {}",
            io::Error::last_os_error()
        );
    }
    rc == 0
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn lstat(path: &Path) -> fs::Metadata {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {path:?}: {e}"))
}

// --- kept entry types --------------------------------------------------------

#[test]
fn regular_file_keeps_content_setuid_mode_owner_and_mtime() {
    let fx = Fixture::new();
    let h = owned(
        header("bin/tool", EntryType::Regular, 5, 0o4755),
        1234,
        1234,
    );
    fx.unpack(&Layer::new().push(h, b"hello").bytes())
        .expect("unpack");
    let meta = lstat(&fx.at("bin/tool"));
    assert_eq!(fs::read(fx.at("bin/tool")).expect("read"), b"hello");
    assert_eq!(meta.mode() & 0o7777, 0o4755);
    assert_eq!((meta.uid(), meta.gid()), (1234, 1234));
    assert_eq!(meta.mtime(), MTIME as i64);
}

#[test]
fn directory_keeps_mode_owner_and_mtime_although_children_follow() {
    let fx = Fixture::new();
    let d = owned(header("d/", EntryType::Directory, 0, 0o1777), 1234, 1234);
    let layer = Layer::new()
        .push(d, b"")
        .file("d/f", b"x")
        .dir("d/sub/")
        .file("d/sub/g", b"y");
    fx.unpack(&layer.bytes()).expect("unpack");
    let meta = lstat(&fx.at("d"));
    assert!(meta.is_dir());
    assert_eq!(meta.mode() & 0o7777, 0o1777);
    assert_eq!((meta.uid(), meta.gid()), (1234, 1234));
    assert_eq!(meta.mtime(), MTIME as i64);
    assert_eq!(lstat(&fx.at("d/sub")).mtime(), MTIME as i64);
}

#[test]
fn missing_parents_are_created_root_owned_0755() {
    let fx = Fixture::new();
    fx.unpack(&Layer::new().file("x/y/z", b"z").bytes())
        .expect("unpack");
    for dir in ["x", "x/y"] {
        let meta = lstat(&fx.at(dir));
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o7777, 0o755, "{dir}");
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{dir}");
    }
}

#[test]
fn root_directory_entry_sets_the_layer_root_metadata() {
    let fx = Fixture::new();
    let root = owned(header("./", EntryType::Directory, 0, 0o750), 1234, 1234);
    fx.unpack(&Layer::new().push(root, b"").file("f", b"").bytes())
        .expect("unpack");
    let meta = lstat(&fx.dest);
    assert_eq!(meta.mode() & 0o7777, 0o750);
    assert_eq!((meta.uid(), meta.mtime()), (1234, MTIME as i64));
}

#[test]
fn symlink_target_is_kept_verbatim_even_if_absolute_or_dangling() {
    let fx = Fixture::new();
    let abs = owned(
        link_header("abs", EntryType::Symlink, "/etc/passwd"),
        1234,
        1234,
    );
    let layer = Layer::new()
        .push(abs, b"")
        .symlink("dangling", "no/such/../place");
    fx.unpack(&layer.bytes()).expect("unpack");
    assert_eq!(
        fs::read_link(fx.at("abs")).expect("readlink"),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        fs::read_link(fx.at("dangling")).expect("readlink"),
        Path::new("no/such/../place")
    );
    let meta = lstat(&fx.at("abs"));
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mtime()),
        (1234, 1234, MTIME as i64)
    );
}

#[test]
fn hard_link_shares_the_inode_of_its_target() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .file("f", b"data")
        .hard_link("g", "f")
        .hard_link("h", "/./f");
    fx.unpack(&layer.bytes()).expect("unpack");
    let f = lstat(&fx.at("f"));
    assert_eq!(lstat(&fx.at("g")).ino(), f.ino());
    assert_eq!(lstat(&fx.at("h")).ino(), f.ino());
    assert_eq!(f.nlink(), 3);
}

#[test]
fn device_nodes_and_fifos_keep_numbers_mode_and_owner() {
    let fx = Fixture::new();
    let mut null = owned(header("dev/null", EntryType::Char, 0, 0o666), 1234, 1234);
    null.set_device_major(1).expect("major");
    null.set_device_minor(3).expect("minor");
    let mut loop9 = header("dev/loop9", EntryType::Block, 0, 0o660);
    loop9.set_device_major(7).expect("major");
    loop9.set_device_minor(9).expect("minor");
    let fifo = owned(header("run/pipe", EntryType::Fifo, 0, 0o620), 1234, 1234);
    fx.unpack(
        &Layer::new()
            .push(null, b"")
            .push(loop9, b"")
            .push(fifo, b"")
            .bytes(),
    )
    .expect("unpack");

    let null = lstat(&fx.at("dev/null"));
    assert!(null.file_type().is_char_device());
    assert_eq!((null.rdev(), null.mode() & 0o7777), (makedev(1, 3), 0o666));
    assert_eq!(
        (null.uid(), null.gid(), null.mtime()),
        (1234, 1234, MTIME as i64)
    );
    let loop9 = lstat(&fx.at("dev/loop9"));
    assert!(loop9.file_type().is_block_device());
    assert_eq!(loop9.rdev(), makedev(7, 9));
    let fifo = lstat(&fx.at("run/pipe"));
    assert!(fifo.file_type().is_fifo());
    assert_eq!((fifo.mode() & 0o7777, fifo.uid()), (0o620, 1234));
}

#[test]
fn pax_xattrs_are_applied_to_files_and_directories() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .pax(&[("SCHILY.xattr.user.foo", b"bar")])
        .dir("d/")
        .pax(&[("SCHILY.xattr.user.foo", b"\x00binary\xff")])
        .file("d/f", b"x");
    fx.unpack(&layer.bytes()).expect("unpack");
    assert_eq!(xattr(&fx.at("d"), "user.foo").as_deref(), Some(&b"bar"[..]));
    assert_eq!(
        xattr(&fx.at("d/f"), "user.foo").as_deref(),
        Some(&b"\x00binary\xff"[..])
    );
}

#[test]
fn xattr_the_filesystem_refuses_fails_naming_entry_and_xattr() {
    let fx = Fixture::new();
    // The kernel allows user.* xattrs only on files and directories.
    let layer = Layer::new()
        .pax(&[("SCHILY.xattr.user.foo", b"bar")])
        .symlink("l", "target");
    let err = fx.unpack(&layer.bytes());
    assert!(
        matches!(err, Err(UnpackError::Xattr { ref entry, ref name, .. }) if entry == "l" && name == "user.foo"),
        "{err:?}"
    );
}

#[test]
fn overlay_xattrs_carried_by_the_layer_are_dropped() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .pax(&[("SCHILY.xattr.trusted.overlay.redirect", b"/etc")])
        .dir("d/");
    fx.unpack(&layer.bytes()).expect("unpack");
    assert_eq!(xattr(&fx.at("d"), "trusted.overlay.redirect"), None);
}

#[test]
fn pax_mtime_keeps_nanoseconds_and_pax_path_wins_over_header_name() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .pax(&[("mtime", b"1600000000.123456789"), ("path", b"real/name")])
        .file("header-name", b"x");
    fx.unpack(&layer.bytes()).expect("unpack");
    let meta = lstat(&fx.at("real/name"));
    assert_eq!(
        (meta.mtime(), meta.mtime_nsec()),
        (MTIME as i64, 123_456_789)
    );
    assert!(!fx.at("header-name").exists());
}

#[test]
fn gnu_long_names_are_honoured() {
    let fx = Fixture::new();
    let long = format!("{}/file", "d".repeat(150));
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    builder
        .append_data(&mut h, &long, &b"hi"[..])
        .expect("append");
    fx.unpack(&builder.into_inner().expect("finish"))
        .expect("unpack");
    assert_eq!(fs::read(fx.at(&long)).expect("read"), b"hi");
}

// --- whiteouts ---------------------------------------------------------------

#[test]
fn whiteout_becomes_a_0_0_char_device_and_no_wh_file_is_kept() {
    let fx = Fixture::new();
    let wh = owned(
        header("d/.wh.gone", EntryType::Regular, 0, 0o644),
        1234,
        1234,
    );
    fx.unpack(&Layer::new().file(".wh.top", b"").push(wh, b"").bytes())
        .expect("unpack");
    for path in ["top", "d/gone"] {
        let meta = lstat(&fx.at(path));
        assert!(meta.file_type().is_char_device(), "{path}");
        assert_eq!(meta.rdev(), 0, "{path}");
    }
    assert_eq!(lstat(&fx.at("d/gone")).uid(), 1234);
    assert_eq!(names(&fx.dest), ["d", "top"]);
    assert_eq!(names(&fx.at("d")), ["gone"]);
}

#[test]
fn opaque_marker_before_the_directory_entries_marks_it_opaque() {
    let fx = Fixture::new();
    if !trusted_xattrs_supported(&fx) {
        return;
    }
    let d = header("d/", EntryType::Directory, 0, 0o750);
    let layer = Layer::new()
        .file("d/.wh..wh..opq", b"")
        .push(d, b"")
        .file("d/f", b"x");
    fx.unpack(&layer.bytes()).expect("unpack");
    assert_eq!(
        xattr(&fx.at("d"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(lstat(&fx.at("d")).mode() & 0o7777, 0o750);
    assert_eq!(names(&fx.at("d")), ["f"]);
}

#[test]
fn opaque_marker_after_the_directory_entries_marks_it_opaque() {
    let fx = Fixture::new();
    if !trusted_xattrs_supported(&fx) {
        return;
    }
    let layer = Layer::new()
        .dir("d/")
        .file("d/f", b"x")
        .file("d/.wh..wh..opq", b"");
    fx.unpack(&layer.bytes()).expect("unpack");
    assert_eq!(
        xattr(&fx.at("d"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(names(&fx.at("d")), ["f"]);
}

#[test]
fn opaque_marker_creates_its_directory_when_absent() {
    let fx = Fixture::new();
    if !trusted_xattrs_supported(&fx) {
        return;
    }
    fx.unpack(&Layer::new().file("a/b/.wh..wh..opq", b"").bytes())
        .expect("unpack");
    assert!(lstat(&fx.at("a/b")).is_dir());
    assert_eq!(
        xattr(&fx.at("a/b"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
}

#[test]
fn aufs_metadata_entries_are_ignored() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .dir(".wh..wh.plnk/")
        .file(".wh..wh.aufs", b"")
        .file("kept", b"");
    fx.unpack(&layer.bytes()).expect("unpack");
    assert_eq!(names(&fx.dest), ["kept"]);
}

// --- streams and digests -----------------------------------------------------

fn snapshot(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for name in names(&dir) {
            let path = dir.join(&name);
            let meta = lstat(&path);
            let detail = if meta.is_file() {
                format!("{:?}", fs::read(&path).expect("read"))
            } else if meta.file_type().is_symlink() {
                format!("-> {:?}", fs::read_link(&path).expect("readlink"))
            } else {
                String::new()
            };
            let rel = path
                .strip_prefix(root)
                .expect("prefix")
                .display()
                .to_string();
            out.push(format!(
                "{rel} {:o} {} {} {detail}",
                meta.mode(),
                meta.uid(),
                meta.mtime()
            ));
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

fn sample_layer() -> Vec<u8> {
    Layer::new()
        .dir("etc/")
        .file("etc/hostname", b"crius\n")
        .symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
        .hard_link("etc/hostname2", "etc/hostname")
        // Listed, so its mtime comes from the tar: an implied parent gets "now", which differs
        // between the three unpacks when they straddle a second.
        .dir("usr/")
        .file("usr/.wh.games", b"")
        .file("big", &vec![7u8; 300 * 1024])
        .bytes()
}

#[test]
fn plain_gzip_and_zstd_streams_give_the_same_tree_and_diff_id() {
    let plain = sample_layer();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let zst = zstd::encode_all(&plain[..], 3).expect("zstd");

    let mut trees = Vec::new();
    for bytes in [&plain, &gz, &zst] {
        let fx = Fixture::new();
        let compression = Compression::detect("application/octet-stream", &bytes[..4]);
        let stats = unpack_layer(&bytes[..], compression, &fx.dest).expect("unpack");
        assert_eq!(stats.diff_id, sha256(&plain), "{compression:?}");
        assert_eq!(stats.size, 6 + 300 * 1024);
        trees.push(snapshot(&fx.dest));
    }
    assert!(!trees[0].is_empty());
    assert_eq!(trees[0], trees[1]);
    assert_eq!(trees[0], trees[2]);
}

#[test]
fn diff_id_covers_bytes_after_the_end_of_archive_marker() {
    let fx = Fixture::new();
    let mut padded = Layer::new().file("f", b"x").bytes();
    padded.extend_from_slice(&[0u8; 10 * 1024]);
    let stats = fx.unpack(&padded).expect("unpack");
    assert_eq!(stats.diff_id, sha256(&padded));
}

#[test]
fn stats_count_entries_and_file_bytes() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .dir("d/")
        .file("d/a", b"12345")
        .file("d/b", b"678")
        .symlink("l", "d/a");
    let stats = fx.unpack(&layer.bytes()).expect("unpack");
    assert_eq!((stats.entries, stats.size), (4, 8));
}

#[test]
fn truncated_layer_is_an_error() {
    let fx = Fixture::new();
    let layer = Layer::new().file("f", &[1u8; 4096]).bytes();
    let err = fx
        .unpack(&layer[..2048])
        .expect_err("truncated layer must fail");
    assert!(
        matches!(
            err,
            UnpackError::Truncated {
                written: 1536,
                expected: 4096,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn corrupt_gzip_is_a_decompress_error() {
    let fx = Fixture::new();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&sample_layer()).expect("gzip");
    let mut gz = gz.finish().expect("gzip");
    let len = gz.len();
    gz[len - 6] ^= 0xff; // CRC/size trailer
    let err = unpack_layer(&gz[..], Compression::Gzip, &fx.dest).expect_err("must fail");
    assert!(
        matches!(
            err,
            UnpackError::Decompress {
                compression: Compression::Gzip,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn failing_source_is_a_read_error() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "registry went away",
            ))
        }
    }
    let fx = Fixture::new();
    let err = unpack_layer(Broken, Compression::Gzip, &fx.dest).expect_err("must fail");
    assert!(matches!(err, UnpackError::Read(_)), "{err}");
}

#[test]
fn compression_comes_from_the_media_type_then_the_magic_bytes() {
    let gzip = [0x1f, 0x8b, 8, 0];
    let zstd = [0x28, 0xb5, 0x2f, 0xfd];
    let detect = Compression::detect;
    assert_eq!(
        detect("application/vnd.oci.image.layer.v1.tar+gzip", b""),
        Compression::Gzip
    );
    assert_eq!(
        detect("application/vnd.oci.image.layer.v1.tar+zstd", b""),
        Compression::Zstd
    );
    assert_eq!(
        detect("application/vnd.oci.image.layer.v1.tar", &gzip),
        Compression::None
    );
    assert_eq!(
        detect("application/vnd.docker.image.rootfs.diff.tar.gzip", b""),
        Compression::Gzip
    );
    assert_eq!(
        detect(
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            b""
        ),
        Compression::Gzip
    );
    assert_eq!(detect("", &gzip), Compression::Gzip);
    assert_eq!(detect("application/octet-stream", &zstd), Compression::Zstd);
    assert_eq!(
        detect("application/octet-stream", b"etc/"),
        Compression::None
    );
}

// --- replacement within a layer ---------------------------------------------

#[test]
fn later_entries_replace_earlier_ones_and_directories_merge() {
    let fx = Fixture::new();
    let c_again = header("c/", EntryType::Directory, 0, 0o700);
    let layer = Layer::new()
        .dir("a/")
        .file("a/old", b"")
        .file("a", b"now a file")
        .file("b", b"")
        .dir("b/")
        .dir("c/")
        .file("c/keep", b"")
        .push(c_again, b"")
        .file("f", b"first")
        .file("f", b"second");
    fx.unpack(&layer.bytes()).expect("unpack");
    assert_eq!(fs::read(fx.at("a")).expect("read"), b"now a file");
    assert!(lstat(&fx.at("b")).is_dir());
    assert_eq!(names(&fx.at("c")), ["keep"]);
    assert_eq!(lstat(&fx.at("c")).mode() & 0o7777, 0o700);
    assert_eq!(fs::read(fx.at("f")).expect("read"), b"second");
}

#[test]
fn destination_must_be_empty() {
    let fx = Fixture::new();
    fs::write(fx.at("leftover"), b"").expect("write");
    let err = fx
        .unpack(&Layer::new().file("f", b"").bytes())
        .expect_err("must fail");
    assert!(
        matches!(err, UnpackError::DestinationNotEmpty { .. }),
        "{err}"
    );
}

#[test]
fn unknown_and_sparse_entry_types_are_rejected() {
    let fx = Fixture::new();
    let err = fx.unpack(
        &Layer::new()
            .push(header("vol", EntryType::new(b'V'), 0, 0o644), b"")
            .bytes(),
    );
    assert!(
        matches!(err, Err(UnpackError::UnsupportedType { ref entry, .. }) if entry == "vol"),
        "{err:?}"
    );

    let fx = Fixture::new();
    let mut sparse = Header::new_gnu();
    sparse.as_old_mut().name[..6].copy_from_slice(b"sparse");
    sparse.set_entry_type(EntryType::GNUSparse);
    sparse.set_size(0);
    sparse.set_mode(0o644);
    sparse.set_uid(0);
    sparse.set_gid(0);
    sparse.set_mtime(MTIME);
    sparse.as_gnu_mut().expect("gnu header").set_real_size(0);
    let err = fx.unpack(&Layer::new().push(sparse, b"").bytes());
    assert!(
        matches!(err, Err(UnpackError::UnsupportedType { .. })),
        "{err:?}"
    );
}

#[test]
fn file_under_a_regular_file_is_rejected() {
    let fx = Fixture::new();
    let err = fx.unpack(&Layer::new().file("a", b"").file("a/b", b"").bytes());
    assert!(
        matches!(err, Err(UnpackError::NotADirectory { ref component, .. }) if component == "a"),
        "{err:?}"
    );
}

mod hostile;
