//! The layer unpacker on hostile tars (plain, gzip or zstd, told apart by their magic as a layer
//! without a known media type is): whatever the archive holds, nothing outside the destination
//! directory is created, changed or linked to, and a successful unpack's diff_id is the sha256
//! of the uncompressed stream.
//!
//! Each input unpacks into `<scratch>/dest`, next to `<scratch>/outside` (a file, a directory, a
//! symlink back into dest) and `<scratch>/bait`; the metadata of everything in the scratch
//! directory except dest's subtree (and of the scratch directory itself) must be the same after
//! the unpack as before it. Seeds aim links, `..` and symlinked parents at those names.
#![no_main]

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crius::fuzzing::{Compression, unpack_layer};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

/// Everything about an inode an escape would change.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    size: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    content: Option<Vec<u8>>,
    xattrs: Vec<String>,
}

fn stat(path: &Path) -> Stat {
    let m = fs::symlink_metadata(path).expect("lstat in the scratch directory");
    let content = if m.file_type().is_file() {
        Some(fs::read(path).expect("read a bait file"))
    } else if m.file_type().is_symlink() {
        Some(
            fs::read_link(path)
                .expect("readlink")
                .into_os_string()
                .into_encoded_bytes(),
        )
    } else {
        None
    };
    Stat {
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        nlink: m.nlink(),
        size: m.size(),
        ino: m.ino(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
        content,
        xattrs: xattr_names(path),
    }
}

fn xattr_names(path: &Path) -> Vec<String> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    let mut buf = vec![0u8; 4096];
    // SAFETY: buf is valid for buf.len() bytes; c is a NUL-terminated path.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return vec![format!(
            "llistxattr failed: {}",
            std::io::Error::last_os_error()
        )];
    }
    buf.truncate(n as usize);
    buf.split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// lstat of every path under `root` but `skip`'s subtree, `root` included.
fn snapshot(root: &Path, skip: &Path) -> BTreeMap<PathBuf, Stat> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        if p == skip {
            continue;
        }
        let s = stat(&p);
        if s.mode & libc::S_IFMT == libc::S_IFDIR {
            for e in fs::read_dir(&p).expect("read_dir in the scratch directory") {
                todo.push(e.expect("dir entry").path());
            }
        }
        out.insert(p, s);
    }
    out
}

struct Scratch {
    root: PathBuf,
    dest: PathBuf,
    before: BTreeMap<PathBuf, Stat>,
}

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("crius-fuzz-unpack-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("outside/dir")).expect("scratch directory");
        fs::write(root.join("outside/file"), b"outside").expect("bait file");
        fs::write(root.join("bait"), b"bait").expect("bait file");
        symlink("../dest", root.join("outside/back")).expect("bait symlink");
        symlink("/", root.join("outside/root")).expect("bait symlink");
        let dest = root.join("dest");
        fs::create_dir(&dest).expect("dest");
        let before = snapshot(&root, &dest);
        Scratch { root, dest, before }
    })
}

fn uncompressed(data: &[u8], compression: Compression) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let ok = match compression {
        Compression::None => {
            out.extend_from_slice(data);
            true
        }
        Compression::Gzip => flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut out)
            .is_ok(),
        Compression::Zstd => zstd::stream::read::Decoder::new(data)
            .and_then(|mut d| d.read_to_end(&mut out))
            .is_ok(),
    };
    ok.then_some(out)
}

fuzz_target!(|data: &[u8]| {
    let s = scratch();
    let compression = Compression::detect("", data);
    let result = unpack_layer(data, compression, &s.dest);
    let after = snapshot(&s.root, &s.dest);
    assert!(
        after == s.before,
        "the unpack changed something outside its directory ({result:?}):\nbefore {:#?}\nafter {after:#?}",
        s.before
    );
    if let Ok(stats) = &result
        && let Some(tar) = uncompressed(data, compression)
    {
        let want = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));
        assert_eq!(
            stats.diff_id, want,
            "diff_id is not the uncompressed stream's sha256"
        );
    }
    // Back to an empty dest, keeping its inode so the scratch directory's own times stay put.
    for e in fs::read_dir(&s.dest).expect("read dest") {
        let p = e.expect("dest entry").path();
        if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            fs::remove_dir_all(&p).expect("clean dest");
        } else {
            fs::remove_file(&p).expect("clean dest");
        }
    }
});
