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
