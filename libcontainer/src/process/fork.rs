//! Forking without threads: the CLI is single-threaded, so a raw clone(2) is safe.

use nix::errno::Errno;
use nix::unistd::Pid;

/// Like fork(2), but with extra clone flags (e.g. `CLONE_PARENT`, so the container process
/// becomes a child of the runtime process rather than of the intermediate one, which lets
/// `exec` wait for it and lets a subreaper such as conmon inherit it).
///
/// Returns `Some(child)` in the parent, `None` in the child.
pub fn clone_fork(flags: libc::c_int) -> Result<Option<Pid>, Errno> {
    // SAFETY: clone without CLONE_VM and with a null stack behaves like fork: the child gets a
    // copy of the address space. The process is single-threaded, so no locks can be held by
    // another thread at this point.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match rc {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// Run `f` in a forked child and exit with its result; report the error on `report` first.
pub fn exit_with(code: Result<(), String>, report: impl FnOnce(&str)) -> ! {
    match code {
        Ok(()) => {
            // SAFETY: _exit skips atexit handlers and stdio flushing inherited from the parent.
            unsafe { libc::_exit(0) }
        }
        Err(e) => {
            report(&e);
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
    }
}

/// clone3's argument (linux/sched.h), up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Like [`clone_fork`]`(0)`, but the child is born in the cgroup v2 directory open as
/// `cgroup` (clone3's `CLONE_INTO_CGROUP`, Linux 5.7), so nobody has to move it there. Errors
/// such as `ENOSYS` (an older kernel) leave the caller to fork and move the child.
pub fn clone_fork_into_cgroup(cgroup: std::os::fd::BorrowedFd) -> Result<Option<Pid>, Errno> {
    use std::os::fd::AsRawFd;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: as clone_fork: no CLONE_VM and no stack, so the child gets a copy of the address
    // space and returns here; the process is single-threaded. `args` outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}
