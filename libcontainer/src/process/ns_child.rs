//! A short-lived process in new namespaces, safe to make from a multi-threaded process (the
//! daemon) as well as from `crius oci`.
//!
//! A multi-threaded process may not unshare(CLONE_NEWUSER), so a new user namespace needs a new
//! process. The child is cloned like fork (no CLONE_VM) and, as the child of a multi-threaded
//! parent, runs only async-signal-safe calls: set the hostname, then block on a pipe until the
//! parent, having written its id maps, says go; write the sysctls it was given (from inside the
//! user namespace, so that values holding ids, `net.ipv4.ping_group_range`, are read in its
//! terms), then block until the parent, having bind-mounted its namespaces, lets it exit.

use std::ffi::CStr;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

/// Why the child could not do its part.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error("cloning a process into new namespaces ({flags:?}): {source}")]
    Clone {
        flags: CloneFlags,
        #[source]
        source: Errno,
    },
    #[error("writing {path}: {source}")]
    Map {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the namespace process {0}")]
    Exit(String),
    /// The child could not write sysctl number `.0` of those it was given.
    #[error("the namespace process could not write sysctl #{0}")]
    Sysctl(usize),
}

/// A sysctl for the child to write: the absolute `/proc/sys/...` path and the value.
#[derive(Debug, Clone)]
pub struct SysctlWrite {
    pub path: std::ffi::CString,
    pub value: std::ffi::CString,
}

/// The child; killed and reaped on drop unless [`NsChild::finish`] ran.
#[derive(Debug)]
pub struct NsChild {
    pid: Pid,
    release: Option<OwnedFd>,
    reaped: bool,
}

/// Exit codes of the child.
const EXIT_HOSTNAME: i32 = 3;
/// Plus the index of a sysctl it could not write.
const EXIT_SYSCTL: i32 = 10;
/// How many sysctls a child takes: their exit codes stay below 256.
pub const MAX_SYSCTLS: usize = 200;

impl NsChild {
    /// Clones a child into the namespaces of `flags`. With CLONE_NEWUSER the kernel makes the
    /// user namespace first, so it owns the others. `hostname` is set in its UTS namespace.
    pub fn spawn(flags: CloneFlags, hostname: Option<&CStr>) -> Result<NsChild, ChildError> {
        Self::spawn_with_sysctls(flags, hostname, &[])
    }

    /// [`NsChild::spawn`], the child also writing `sysctls` once [`NsChild::write_maps`] has
    /// run (at most [`MAX_SYSCTLS`]); a failure shows at [`NsChild::finish`].
    pub fn spawn_with_sysctls(
        flags: CloneFlags,
        hostname: Option<&CStr>,
        sysctls: &[SysctlWrite],
    ) -> Result<NsChild, ChildError> {
        let err = |source| ChildError::Clone { flags, source };
        if sysctls.len() > MAX_SYSCTLS {
            return Err(err(Errno::E2BIG));
        }
        let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(err)?;
        let host = hostname.map(|h| (h.as_ptr(), h.to_bytes().len()));
        // SAFETY: clone without CLONE_VM and with a null stack behaves like fork. The child
        // only makes async-signal-safe libc calls on memory prepared before the clone, then
        // _exits, so locks held by other threads of the parent do not matter.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags.bits() | libc::SIGCHLD) as libc::c_ulong,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_int>(),
                std::ptr::null_mut::<libc::c_int>(),
                0 as libc::c_ulong,
            )
        };
        match rc {
            -1 => Err(err(Errno::last())),
            0 => {
                // SAFETY: see above; only close_range, sethostname, read, open, write, close and
                // _exit, on memory prepared before the clone.
                unsafe {
                    // Every fd but our read end goes, above all the write ends of other
                    // children's pipes: holding one would keep that child from ever exiting.
                    let keep = read_end.as_raw_fd() as libc::c_uint;
                    if keep > 0 {
                        libc::syscall(libc::SYS_close_range, 0, keep - 1, 0);
                    }
                    libc::syscall(libc::SYS_close_range, keep + 1, libc::c_uint::MAX, 0);
                    if let Some((name, len)) = host
                        && libc::sethostname(name, len) != 0
                    {
                        libc::_exit(EXIT_HOSTNAME);
                    }
                    let mut byte = 0u8;
                    // One byte: the maps are written, go on. 0: EOF, the parent closed its end
                    // (or died).
                    let mut read = || loop {
                        let n = libc::read(
                            read_end.as_raw_fd(),
                            (&raw mut byte).cast::<libc::c_void>(),
                            1,
                        );
                        if n >= 0 || *libc::__errno_location() != libc::EINTR {
                            break n;
                        }
                    };
                    if read() == 1 {
                        for (i, w) in sysctls.iter().enumerate() {
                            let fd = libc::open(
                                w.path.as_ptr(),
                                libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                            );
                            let len = w.value.as_bytes().len();
                            if fd < 0
                                || libc::write(fd, w.value.as_ptr().cast(), len) != len as isize
                            {
                                libc::_exit(EXIT_SYSCTL + i as i32);
                            }
                            libc::close(fd);
                        }
                        while read() > 0 {}
                    }
                    libc::_exit(0)
                }
            }
            pid => Ok(NsChild {
                pid: Pid::from_raw(pid as i32),
                release: Some(write_end),
                reaped: false,
            }),
        }
    }

    /// `/proc/<pid>/ns/<kind>` of the child, valid until [`NsChild::finish`].
    pub fn ns_path(&self, kind: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/{kind}", self.pid))
    }

    /// Writes the child's uid_map and gid_map (root of the parent namespace may write any).
    pub fn write_maps(&self, uid_map: &str, gid_map: &str) -> Result<(), ChildError> {
        for (file, text) in [("uid_map", uid_map), ("gid_map", gid_map)] {
            let path = PathBuf::from(format!("/proc/{}/{file}", self.pid));
            fs::write(&path, text).map_err(|source| ChildError::Map { path, source })?;
        }
        // Go: the child writes its sysctls now that its ids mean something.
        if let Some(release) = &self.release {
            let _ = nix::unistd::write(release, &[1]);
        }
        Ok(())
    }

    /// Lets the child exit and reaps it; an error if it failed to set the hostname.
    pub fn finish(mut self) -> Result<(), ChildError> {
        self.release = None;
        let status = loop {
            match waitpid(self.pid, None) {
                Err(Errno::EINTR) => continue,
                other => break other,
            }
        };
        // Reaped: drop must not signal a pid that may be reused.
        self.reaped = status.is_ok();
        match status {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(WaitStatus::Exited(_, EXIT_HOSTNAME)) => {
                Err(ChildError::Exit("could not set the hostname".into()))
            }
            Ok(WaitStatus::Exited(_, code))
                if (EXIT_SYSCTL..EXIT_SYSCTL + MAX_SYSCTLS as i32).contains(&code) =>
            {
                Err(ChildError::Sysctl((code - EXIT_SYSCTL) as usize))
            }
            other => Err(ChildError::Exit(format!("ended with {other:?}"))),
        }
    }
}

impl Drop for NsChild {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        let _ = kill(self.pid, Signal::SIGKILL);
        let _ = waitpid(self.pid, None);
    }
}
