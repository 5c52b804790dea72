//! crius' one atomic file write. A reader of the path sees the old file or the new one complete,
//! never a part of it: the contents go to a temporary file beside the target, which is then
//! renamed over it. What a crash of the *machine* (power loss, kernel panic) may leave is a
//! separate question, answered by the [`Durability`] every caller names:
//!
//! - [`Durability::Durable`]: `fdatasync` the temporary file, rename, `fsync` the directory.
//!   After it returns, the new contents survive a power loss, and a power loss before it leaves
//!   the old file (or none), never an empty or torn one. For state that outlives a boot:
//!   records and the image index under `/var/lib/crius`, and for files whose torn form would
//!   wedge a reader after a crash even on a run directory placed on disk (exit files, the CNI
//!   cache). On tmpfs the syncs cost next to nothing.
//! - [`Durability::Volatile`]: write and rename only. Atomic for every reader and across a crash
//!   of the writing *process* (the page cache keeps what was written), but not across a power
//!   loss. For files whose life ends with the boot anyway: pod files under the run root
//!   (resolv.conf, hosts), the OCI runtime's state under its tmpfs root, pid files, and files a
//!   later `syncfs` makes durable in one go (image blobs before the index commit).
//!
//! Temporary files are named `.<name>.<pid>-<n>.tmp`, unique per call, so concurrent writers of
//! one path never write into each other's temporary file; [`is_temp_name`] and
//! [`remove_temps`] let a store clear what a crash left, at start-up.
//!
//! Why not the `atomic-write-file` crate: it always syncs (no rule for tmpfs files written on
//! every pod start), and it brings `rand` and its own `nix` into the monitor binary, whose size
//! and resident memory matter (one monitor per container). This is fifty lines of `std`.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a crash of the machine may do to the write; see the crate's documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fdatasync the file, rename, fsync the directory.
    Durable,
    /// Write and rename only.
    Volatile,
}

/// How to write: the durability rule, the file's mode, where the temporary file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options<'a> {
    pub durability: Durability,
    /// The new file's permission bits, set exactly (not filtered by the umask). `None`: as
    /// `File::create` (0666 less the umask).
    pub mode: Option<u32>,
    /// Where the temporary file is made, on the target's file system; `None`: beside the
    /// target. A store that wipes a work directory at start-up stages its files there.
    pub temp_dir: Option<&'a Path>,
}

impl Options<'_> {
    pub fn new(durability: Durability) -> Self {
        Options {
            durability,
            mode: None,
            temp_dir: None,
        }
    }
}

/// Replaces `path` with `contents` atomically, with the given durability.
pub fn write(path: &Path, contents: &[u8], durability: Durability) -> io::Result<()> {
    write_with(path, contents, &Options::new(durability))
}

/// Replaces `path` with `contents` atomically, as `options` say.
pub fn write_with(path: &Path, contents: &[u8], options: &Options<'_>) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let dir = parent(path);
    let tmp = options.temp_dir.unwrap_or(dir).join(temp_name(name));
    let result = (|| {
        let mut open = fs::OpenOptions::new();
        open.write(true).create_new(true);
        if let Some(mode) = options.mode {
            open.mode(mode);
        }
        let mut file = open.open(&tmp)?;
        if let Some(mode) = options.mode {
            // The mode given to open(2) is filtered by the umask.
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        file.write_all(contents)?;
        if options.durability == Durability::Durable {
            // The data and the metadata needed to read it back (the size).
            file.sync_data()?;
        }
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if options.durability == Durability::Durable {
        // The rename itself.
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Whether a directory entry is a temporary file of [`write`] (`.<name>.<pid>-<n>.tmp`).
pub fn is_temp_name(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name.len() >= ".x.0-0.tmp".len() && name.starts_with(b".") && name.ends_with(b".tmp")
}

/// Removes the temporary files a crashed [`write`] left in `dir`. Only for start-up: a write in
/// progress in the same directory would lose its temporary file.
pub fn remove_temps(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if is_temp_name(&entry.file_name()) && entry.file_type().is_ok_and(|t| t.is_file()) {
            match fs::remove_file(entry.path()) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn temp_name(name: &OsStr) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".{}-{n}.tmp", std::process::id()));
    tmp.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        for durability in [Durability::Durable, Durability::Volatile] {
            write(&path, b"one", durability).unwrap();
            write(&path, b"two", durability).unwrap();
            assert_eq!(fs::read(&path).unwrap(), b"two");
            assert_eq!(names(dir.path()), ["state.json"]);
        }
    }

    #[test]
    fn a_mode_is_set_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        let options = Options {
            mode: Some(0o644),
            ..Options::new(Durability::Volatile)
        };
        write_with(&path, b"127.0.0.1 localhost\n", &options).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o644);
        let options = Options {
            mode: Some(0o600),
            ..options
        };
        write_with(&path, b"x", &options).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o600);
    }

    #[test]
    fn staged_in_another_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, blobs) = (dir.path().join("tmp"), dir.path().join("blobs"));
        fs::create_dir_all(&tmp).unwrap();
        fs::create_dir_all(&blobs).unwrap();
        let options = Options {
            temp_dir: Some(&tmp),
            ..Options::new(Durability::Volatile)
        };
        write_with(&blobs.join("abc"), b"blob", &options).unwrap();
        assert_eq!(names(&blobs), ["abc"]);
        assert!(names(&tmp).is_empty());
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write(&path, b"old", Durability::Durable).unwrap();
        // The rename fails: a directory is in the way.
        let blocked = dir.path().join("d");
        fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write(&blocked, b"new", Durability::Durable).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["d", "f"]);
        assert!(write(Path::new("/"), b"", Durability::Volatile).is_err());
    }

    #[test]
    fn concurrent_writers_of_one_path_do_not_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let contents: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 64 * 1024]).collect();
        std::thread::scope(|scope| {
            for data in &contents {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..10 {
                        write(path, data, Durability::Volatile).unwrap();
                    }
                });
            }
        });
        assert!(contents.contains(&fs::read(&path).unwrap()));
        assert_eq!(names(dir.path()), ["f"]);
    }

    #[test]
    fn temporaries_are_recognised_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let name = temp_name(OsStr::new("index.json"));
        assert!(is_temp_name(name.as_os_str()));
        assert!(!is_temp_name(OsStr::new("index.json")));
        assert!(!is_temp_name(OsStr::new(".tmp")));
        fs::write(dir.path().join(&name), b"half").unwrap();
        fs::write(dir.path().join("index.json"), b"{}").unwrap();
        remove_temps(dir.path()).unwrap();
        assert_eq!(names(dir.path()), ["index.json"]);
    }
}
