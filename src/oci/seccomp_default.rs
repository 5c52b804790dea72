//! crius' RuntimeDefault seccomp profile, as data.
//!
//! An allow-list: every syscall not named here fails with EPERM. The list covers what ordinary
//! (non-privileged) workloads use — files, memory, signals, sockets, timers, IPC, scheduling —
//! and leaves out kernel-wide or namespace-escaping operations unless the container's bounding
//! set holds the capability that guards them anyway (so an added CAP_SYS_ADMIN or CAP_SYS_TIME
//! keeps working). Only the native architecture is listed: crius' compiler filters only that
//! one, and other ABIs are killed (see libcontainer/seccomp.rs).

use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg,
    LinuxSeccompArgBuilder, LinuxSeccompOperator, LinuxSyscall,
};

use super::SpecError;

/// errno for everything outside the list.
const EPERM: u32 = 1;
/// clone3 cannot be filtered by flags (they live in memory): ENOSYS makes libc fall back to clone.
const ENOSYS: u32 = 38;

/// Syscalls allowed on every supported architecture.
const ALLOWED: &[&str] = &[
    // files and directories
    "close",
    "close_range",
    "copy_file_range",
    "dup",
    "dup3",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "flock",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "getcwd",
    "getdents64",
    "pipe2",
    "linkat",
    "lseek",
    "mkdirat",
    "mknodat",
    "newfstatat",
    "openat",
    "openat2",
    "pread64",
    "preadv",
    "preadv2",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlinkat",
    "readv",
    "renameat",
    "renameat2",
    "sendfile",
    "splice",
    "statfs",
    "statx",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "tee",
    "truncate",
    "umask",
    "unlinkat",
    "utimensat",
    "vmsplice",
    "write",
    "writev",
    "chdir",
    "name_to_handle_at",
    "cachestat",
    // extended attributes
    "fgetxattr",
    "flistxattr",
    "fremovexattr",
    "fsetxattr",
    "getxattr",
    "lgetxattr",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lsetxattr",
    "removexattr",
    "setxattr",
    "getxattrat",
    "listxattrat",
    "removexattrat",
    "setxattrat",
    // file notification, polling, event fds
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_pwait2",
    "eventfd2",
    "fanotify_mark",
    "inotify_add_watch",
    "inotify_init1",
    "inotify_rm_watch",
    "ppoll",
    "pselect6",
    "signalfd4",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    // asynchronous I/O
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    // memory
    "brk",
    "madvise",
    "membarrier",
    "memfd_create",
    "mincore",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mprotect",
    "mremap",
    "mseal",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "remap_file_pages",
    // processes, threads and credentials
    "capget",
    "capset",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "get_robust_list",
    "getcpu",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getpgid",
    "getpid",
    "getppid",
    "getpriority",
    "getresgid",
    "getresuid",
    "getrlimit",
    "getrusage",
    "getsid",
    "gettid",
    "getuid",
    "kill",
    "pidfd_getfd",
    "pidfd_open",
    "pidfd_send_signal",
    "prctl",
    "prlimit64",
    "process_mrelease",
    "restart_syscall",
    "rseq",
    "seccomp",
    "set_robust_list",
    "set_tid_address",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "setsid",
    "setuid",
    "tgkill",
    "tkill",
    "wait4",
    "waitid",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    // futexes
    "futex",
    "futex_requeue",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    // signals
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sigaltstack",
    // scheduling
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    // time (reading it; setting needs CAP_SYS_TIME below)
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "getitimer",
    "gettimeofday",
    "nanosleep",
    "setitimer",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "times",
    "adjtimex",
    // sockets (socket itself is filtered by family below)
    "accept",
    "accept4",
    "bind",
    "connect",
    "getpeername",
    "getsockname",
    "getsockopt",
    "listen",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setsockopt",
    "shutdown",
    "socketpair",
    // System V and POSIX IPC (namespaced by the pod's ipc namespace)
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    // system information
    "getrandom",
    "sysinfo",
    "uname",
];

/// Legacy syscalls that only the x86_64 table has (arm64 uses the *at variants).
#[cfg(target_arch = "x86_64")]
const ALLOWED_ARCH: &[&str] = &[
    "access",
    "alarm",
    "arch_prctl",
    "chmod",
    "chown",
    "creat",
    "dup2",
    "epoll_create",
    "epoll_wait",
    "eventfd",
    "fork",
    "futimesat",
    "getdents",
    "getpgrp",
    "inotify_init",
    "lchown",
    "link",
    "lstat",
    "mkdir",
    "mknod",
    "open",
    "pause",
    "pipe",
    "poll",
    "readlink",
    "rename",
    "rmdir",
    "select",
    "signalfd",
    "stat",
    "symlink",
    "time",
    "unlink",
    "utime",
    "utimes",
    "vfork",
    "map_shadow_stack",
];
#[cfg(not(target_arch = "x86_64"))]
const ALLOWED_ARCH: &[&str] = &[];

/// Syscalls allowed only when the bounding set holds the capability that guards them.
const BY_CAPABILITY: &[(Capability, &[&str])] = &[
    (
        Capability::SysAdmin,
        &[
            "bpf",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "perf_event_open",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "pivot_root",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "umount2",
            "unshare",
        ],
    ),
    (Capability::SysBoot, &["reboot"]),
    (Capability::SysChroot, &["chroot"]),
    (
        Capability::SysModule,
        &["delete_module", "finit_module", "init_module"],
    ),
    (Capability::SysPacct, &["acct"]),
    (
        Capability::SysPtrace,
        &[
            "kcmp",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    (
        Capability::SysTime,
        &["clock_adjtime", "clock_settime", "settimeofday"],
    ),
    (Capability::SysTtyConfig, &["vhangup"]),
    (
        Capability::SysNice,
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    (Capability::Syslog, &["syslog"]),
    (Capability::Bpf, &["bpf"]),
    (Capability::Perfmon, &["perf_event_open"]),
    (Capability::DacReadSearch, &["open_by_handle_at"]),
];

/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
/// CLONE_NEWNET: clone may not create namespaces without CAP_SYS_ADMIN. (CLONE_NEWTIME shares
/// its bit with clone's exit-signal byte and only works through clone3/unshare, both refused.)
const CLONE_NS_FLAGS: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

/// AF_VSOCK: talks to the hypervisor, not something a pod needs.
const AF_VSOCK: u64 = 40;

/// personality() values that only switch execution domains harmlessly (PER_LINUX, PER_LINUX32,
/// UNAME26 variants) or query the current one.
const PERSONALITY_ALLOWED: &[u64] = &[0x0, 0x0008, 0x20000, 0x20008, 0xffff_ffff];

fn rule(names: &[&str], action: LinuxSeccompAction) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names.iter().map(|n| n.to_string()).collect())
        .set_action(action)
        .set_errno_ret(None)
        .set_args(None);
    s
}

fn arg(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> Result<LinuxSeccompArg, SpecError> {
    let mut b = LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value);
    if let Some(v) = value_two {
        b = b.value_two(v);
    }
    b.build()
        .map_err(|e| SpecError::FailedPrecondition(format!("building seccomp argument: {e}")))
}

fn conditional(name: &str, args: Vec<LinuxSeccompArg>) -> LinuxSyscall {
    let mut s = rule(&[name], LinuxSeccompAction::ScmpActAllow);
    s.set_args(Some(args));
    s
}

fn native_arch() -> Vec<Arch> {
    if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64]
    } else {
        vec![Arch::ScmpArchX86_64]
    }
}

/// Every syscall name the profile can mention (for the compiler test).
#[cfg(test)]
pub fn all_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = ALLOWED.iter().chain(ALLOWED_ARCH).copied().collect();
    for (_, names) in BY_CAPABILITY {
        v.extend(names.iter().copied());
    }
    v.extend(["clone", "clone3", "socket", "personality"]);
    v
}

/// The RuntimeDefault profile for a container whose bounding set is `bounding`.
pub fn profile(bounding: &Capabilities) -> Result<LinuxSeccomp, SpecError> {
    use LinuxSeccompAction::{ScmpActAllow, ScmpActErrno};
    use LinuxSeccompOperator::{ScmpCmpEq, ScmpCmpMaskedEq, ScmpCmpNe};

    let mut syscalls = vec![rule(ALLOWED, ScmpActAllow)];
    if !ALLOWED_ARCH.is_empty() {
        syscalls.push(rule(ALLOWED_ARCH, ScmpActAllow));
    }
    let mut granted: Vec<&str> = Vec::new();
    for (cap, names) in BY_CAPABILITY {
        if bounding.contains(cap) {
            for n in names.iter() {
                if !granted.contains(n) {
                    granted.push(n);
                }
            }
        }
    }
    if !granted.is_empty() {
        syscalls.push(rule(&granted, ScmpActAllow));
    }
    if bounding.contains(&Capability::SysAdmin) {
        syscalls.push(rule(&["clone"], ScmpActAllow));
    } else {
        // clone's flags are argument 0 on x86_64 and arm64.
        syscalls.push(conditional(
            "clone",
            vec![arg(0, ScmpCmpMaskedEq, CLONE_NS_FLAGS, Some(0))?],
        ));
        let mut clone3 = rule(&["clone3"], ScmpActErrno);
        clone3.set_errno_ret(Some(ENOSYS));
        syscalls.push(clone3);
    }
    syscalls.push(conditional(
        "socket",
        vec![arg(0, ScmpCmpNe, AF_VSOCK, None)?],
    ));
    for v in PERSONALITY_ALLOWED {
        syscalls.push(conditional(
            "personality",
            vec![arg(0, ScmpCmpEq, *v, None)?],
        ));
    }

    let mut p = LinuxSeccomp::default();
    p.set_default_action(ScmpActErrno)
        .set_default_errno_ret(Some(EPERM))
        .set_architectures(Some(native_arch()))
        .set_flags(None)
        .set_syscalls(Some(syscalls));
    Ok(p)
}
