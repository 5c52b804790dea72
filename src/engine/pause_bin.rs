//! The built-in pause executable (`pause/pause.rs`, built by `build.rs`), embedded in the
//! daemon and written to `<runroot>/pause` at start-up, from where each pod's pause container
//! bind-mounts it as `/pause`. It needs no library, so the pause's root holds nothing else.

use std::io;
use std::path::Path;

/// The executable: a static ELF of about 2 KB.
pub const PAUSE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/crius-pause"));

/// Writes the pause executable to `path` unless it is already there, byte for byte (a running
/// pause keeps the file it was started from: the replacement is a rename).
pub fn install(path: &Path) -> io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == PAUSE) {
        return Ok(());
    }
    let mut options = crius_atomic_file::Options::new(crius_atomic_file::Durability::Volatile);
    options.mode = Some(0o755);
    crius_atomic_file::write_with(path, PAUSE, &options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    #[test]
    fn the_pause_is_small_and_exits_0_on_sigterm() {
        assert!(PAUSE.len() < 16 << 10, "{} bytes", PAUSE.len());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pause");
        install(&path).unwrap();
        install(&path).unwrap();
        // Another test's fork may hold the new file open for writing a moment (ETXTBSY).
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut child = loop {
            match Command::new(&path)
                .arg("ignored")
                .stderr(Stdio::piped())
                .spawn()
            {
                Ok(child) => break child,
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("{e}"),
            }
        };
        // SIGTERM only once it waits for it, in rt_sigtimedwait (128 on x86_64); before, its
        // default action would kill it. (While it waits, SigBlk shows the mask without them.)
        let syscall = format!("/proc/{}/syscall", child.id());
        while !std::fs::read_to_string(&syscall).is_ok_and(|s| s.starts_with("128 ")) {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the pause ended before it blocked its signals: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "the pause never blocked its signals"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert!(status.success(), "{status}");
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(err.starts_with("Shutting down"), "{err}");
    }
}
