//! crius' pause process: pid 1 of a pod that shares its pid namespace, and the holder of the
//! pod's infra container otherwise. Its only jobs: reap every child it inherits, and exit 0 on
//! SIGINT or SIGTERM (`Shutting down, got signal: SIGTERM` on stderr, as Kubernetes' pause
//! says). It ignores its arguments.
//!
//! Built by crius' `build.rs` straight with rustc — no std, no libc, no start files, linked
//! static — into a ~2 KB executable that maps one page of code and one of stack (RSS ~12 KiB,
//! against ~4 MiB for the whole crius binary and ~0.7 MiB for Kubernetes' pause). The daemon
//! embeds it and writes it under its runroot at start (`sandbox/pause_bin.rs`). x86_64 Linux
//! only; the syscall numbers below are that ABI's.
//!
//! Signals are blocked and taken synchronously (rt_sigtimedwait): no handler ever runs. Blocked
//! signals are delivered even to pid 1 of a namespace, whose default-disposition signals the
//! kernel would otherwise drop; the dispositions are reset first so that an inherited SIG_IGN
//! cannot make the kernel discard SIGTERM or reap children behind our back.

#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::panic::PanicInfo;

const SYS_WRITE: usize = 1;
const SYS_RT_SIGACTION: usize = 13;
const SYS_RT_SIGPROCMASK: usize = 14;
const SYS_WAIT4: usize = 61;
const SYS_RT_SIGTIMEDWAIT: usize = 128;
const SYS_EXIT_GROUP: usize = 231;

const SIGINT: usize = 2;
const SIGTERM: usize = 15;
const SIGCHLD: usize = 17;
const SIG_BLOCK: usize = 0;
const WNOHANG: usize = 1;
/// The kernel's sigset size on x86_64 (64 signals).
const SIGSET_SIZE: usize = 8;

/// The kernel's `struct sigaction` on x86_64.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// A raw system call with up to four arguments; returns what the kernel returned (-errno on
/// failure).
///
/// # Safety
/// The arguments must be valid for system call `n`.
unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller vouches for the arguments; `syscall` clobbers rcx and r11 only.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

fn exit(code: usize) -> ! {
    // SAFETY: exit_group takes a status and does not return.
    unsafe { syscall4(SYS_EXIT_GROUP, code, 0, 0, 0) };
    loop {}
}

fn say(msg: &[u8]) {
    // SAFETY: writes `msg`, which lives across the call, to stderr.
    unsafe { syscall4(SYS_WRITE, 2, msg.as_ptr() as usize, msg.len(), 0) };
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    exit(2)
}

// The entry point: the kernel jumps here with the stack pointer on argc, no return address.
global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "and rsp, -16",
    "call {main}",
    "ud2",
    main = sym pause,
);

/// Reaps every exited child, without blocking.
fn reap() {
    // SAFETY: wait4(-1, NULL, WNOHANG, NULL) takes no memory of ours.
    while unsafe { syscall4(SYS_WAIT4, usize::MAX, 0, WNOHANG, 0) } > 0 {}
}

extern "C" fn pause() -> ! {
    let signals = [SIGINT, SIGTERM, SIGCHLD];
    let set: u64 = signals.iter().fold(0, |set, s| set | 1 << (s - 1));
    let default = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signal in signals {
        // SAFETY: a valid sigaction that stays alive across the call; no old action wanted.
        unsafe {
            syscall4(
                SYS_RT_SIGACTION,
                signal,
                &default as *const KernelSigaction as usize,
                0,
                SIGSET_SIZE,
            )
        };
    }
    // SAFETY: a valid set that stays alive across the call; no old mask wanted.
    if unsafe { syscall4(SYS_RT_SIGPROCMASK, SIG_BLOCK, &set as *const u64 as usize, 0, SIGSET_SIZE) } < 0 {
        say(b"pause: sigprocmask failed\n");
        exit(1);
    }
    // Children that exited before SIGCHLD was blocked sent it to nobody.
    reap();
    loop {
        // SAFETY: a valid set; no siginfo or timeout wanted.
        let signal =
            unsafe { syscall4(SYS_RT_SIGTIMEDWAIT, &set as *const u64 as usize, 0, 0, SIGSET_SIZE) };
        match signal {
            s if s == SIGCHLD as isize => reap(),
            s if s == SIGINT as isize => {
                say(b"Shutting down, got signal: SIGINT\n");
                exit(0);
            }
            s if s == SIGTERM as isize => {
                say(b"Shutting down, got signal: SIGTERM\n");
                exit(0);
            }
            // EINTR (a stop and continue) and anything else: wait again.
            _ => {}
        }
    }
}
