use super::super::test_util::{ChildResult, fork_child};
use super::*;

/// Children set no_new_privs so the tests also work without CAP_SYS_ADMIN.
fn nnp_install(prog: &BpfProgram, flags: u32) -> Result<(), String> {
    set_no_new_privs().map_err(|e| e.to_string())?;
    install_with_flags(prog, flags).map_err(|e| e.to_string())
}

fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).expect("profile json")
}

/// A trimmed Docker/containerd default profile (same shape: default
/// ERRNO, big allow list, conditional personality/clone/socket rules,
/// ENOSYS for clone3, several arches).
fn docker_like() -> LinuxSeccomp {
    let allow = [
        "accept",
        "accept4",
        "access",
        "arch_prctl",
        "bind",
        "brk",
        "capget",
        "capset",
        "chdir",
        "chmod",
        "chown",
        "clock_getres",
        "clock_gettime",
        "clock_nanosleep",
        "close",
        "close_range",
        "connect",
        "copy_file_range",
        "dup",
        "dup2",
        "dup3",
        "epoll_create",
        "epoll_create1",
        "epoll_ctl",
        "epoll_pwait",
        "epoll_wait",
        "eventfd2",
        "execve",
        "execveat",
        "exit",
        "exit_group",
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
        "fork",
        "fstat",
        "fstatfs",
        "fsync",
        "ftruncate",
        "futex",
        "futex_waitv",
        "getcwd",
        "getdents64",
        "getegid",
        "geteuid",
        "getgid",
        "getgroups",
        "getpid",
        "getppid",
        "getrandom",
        "getrlimit",
        "getsockname",
        "getsockopt",
        "gettid",
        "gettimeofday",
        "getuid",
        "ioctl",
        "kill",
        "listen",
        "lseek",
        "lstat",
        "madvise",
        "memfd_create",
        "mkdir",
        "mkdirat",
        "mmap",
        "mprotect",
        "mremap",
        "munmap",
        "nanosleep",
        "newfstatat",
        "open",
        "openat",
        "openat2",
        "pipe",
        "pipe2",
        "poll",
        "ppoll",
        "prctl",
        "pread64",
        "prlimit64",
        "pwrite64",
        "read",
        "readlink",
        "readlinkat",
        "recvfrom",
        "recvmsg",
        "rename",
        "renameat2",
        "restart_syscall",
        "rmdir",
        "rseq",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "sched_getaffinity",
        "sched_yield",
        "select",
        "sendmsg",
        "sendto",
        "set_robust_list",
        "set_tid_address",
        "setgid",
        "setgroups",
        "setsockopt",
        "setuid",
        "shutdown",
        "sigaltstack",
        "socketpair",
        "stat",
        "statfs",
        "statx",
        "symlink",
        "tgkill",
        "umask",
        "uname",
        "unlink",
        "unlinkat",
        "vfork",
        "wait4",
        "write",
        "writev",
        "socketcall",
        "_llseek",
        "ugetrlimit",
        "cachestat",
        "mseal",
    ];
    let names: Vec<String> = allow.iter().map(|s| format!("\"{s}\"")).collect();
    profile(&format!(
        r#"{{
          "defaultAction": "SCMP_ACT_ERRNO",
          "defaultErrnoRet": 1,
          "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
          "syscalls": [
            {{"names": [{}], "action": "SCMP_ACT_ALLOW"}},
            {{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
              "args": [{{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}}]}},
            {{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
              "args": [{{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}}]}},
            {{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
              "args": [{{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}}]}},
            {{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
              "args": [{{"index": 0, "value": 2114060288, "valueTwo": 0,
                         "op": "SCMP_CMP_MASKED_EQ"}}]}},
            {{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}},
            {{"names": ["socket"], "action": "SCMP_ACT_ALLOW",
              "args": [{{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}}]}},
            {{"names": ["ptrace"], "action": "SCMP_ACT_ERRNO"}}
          ]
        }}"#,
        names.join(",")
    ))
}

#[test]
fn syscall_table_has_common_names_and_matches_libc() {
    for name in ["read", "write", "openat", "execve", "clone3", "mkdirat"] {
        assert!(syscalls::native(name).is_some(), "{name}");
    }
    assert_eq!(syscalls::native("read"), Some(libc::SYS_read));
    assert_eq!(syscalls::native("no_such_syscall"), None);
    // Where libc knows a supplement entry, both must agree.
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        syscalls::supplement_for_test("fchmodat2"),
        Some(libc::SYS_fchmodat2)
    );
    assert_eq!(syscalls::native("cachestat"), Some(451));
}

#[test]
fn compiles_docker_like_profile() {
    let prog = compile(&docker_like()).expect("compile");
    assert!(
        prog.len() > 100 && prog.len() <= MAX_INSNS,
        "{}",
        prog.len()
    );
    // Ends with the default action: ERRNO(EPERM).
    let last = prog.last().expect("non-empty");
    assert_eq!(last.code, BPF_RET_K);
    assert_eq!(last.k, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    // Every jump stays inside the program.
    for (i, ins) in prog.iter().enumerate() {
        if ins.code & 0x07 == 0x05 {
            let far = if ins.code == BPF_JMP_JA {
                ins.k as usize
            } else {
                usize::from(ins.jt.max(ins.jf))
            };
            assert!(i + 1 + far < prog.len(), "jump at {i} escapes");
        }
    }
}

#[test]
fn notify_and_bad_input_are_errors() {
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    let e = compile(&p).expect_err("notify");
    assert!(e.to_string().contains("NOTIFY"), "{e}");

    let p = profile(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#);
    assert!(matches!(
        compile(&p),
        Err(SeccompError::NotifyUnsupported(_))
    ));

    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir"],"action":"SCMP_ACT_ERRNO",
             "args":[{"index":6,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(matches!(
        compile(&p),
        Err(SeccompError::InvalidArgIndex { index: 6, .. })
    ));

    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
    );
    assert!(matches!(
        filter_flags(&p),
        Err(SeccompError::FlagUnsupported(_))
    ));
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}"#,
    );
    assert_eq!(filter_flags(&p).expect("flags"), 2 | 4);
}

#[test]
fn unknown_syscalls_are_skipped_and_default_only_profile_compiles() {
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["no_such_call"],"action":"SCMP_ACT_ERRNO"},
            {"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let prog = compile(&p).expect("compile");
    // Only prologue + default return are left.
    assert_eq!(prog.len(), ARCH_PROLOGUE_LEN + 1);
    assert_eq!(prog[ARCH_PROLOGUE_LEN].k, libc::SECCOMP_RET_ALLOW);
}

fn errno_of(f: impl FnOnce() -> i32) -> i32 {
    if f() == -1 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    }
}

#[test]
fn errno_action_is_enforced_in_child() {
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
    );
    let prog = compile(&p).expect("compile");
    let dir = tempfile::tempdir().expect("tempdir");
    let target = std::ffi::CString::new(dir.path().join("x").into_os_string().into_encoded_bytes())
        .expect("cstring");
    let res = fork_child(move || {
        set_no_new_privs().map_err(|e| e.to_string())?;
        install(&prog).map_err(|e| e.to_string())?;
        // SAFETY: valid C string.
        let e = errno_of(|| unsafe { libc::mkdir(target.as_ptr(), 0o755) });
        Ok(format!("{e}"))
    });
    assert_eq!(res, ChildResult::Ok(libc::EACCES.to_string()));
    assert!(!dir.path().join("x").exists());
}

#[test]
fn kill_action_kills_child_with_sigsys() {
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getppid"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
    );
    let prog = compile(&p).expect("compile");
    let res = fork_child(move || {
        nnp_install(&prog, 0)?;
        // SAFETY: trivial syscall.
        unsafe { libc::getppid() };
        Ok("survived".into())
    });
    assert_eq!(res, ChildResult::Signaled(libc::SIGSYS));
}

#[test]
fn arg_conditions_and_mixed_actions() {
    // Default ALLOW so the child can report back; personality is refused
    // unless its argument is 0xffffffff (the "query" call); a two-arg
    // range (ANDed) on getpgid; MASKED_EQ before an unconditional rule on
    // getsid (conditional rules are evaluated first).
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["personality"],"action":"SCMP_ACT_ERRNO","errnoRet":22,
             "args":[{"index":0,"value":4294967295,"op":"SCMP_CMP_NE"}]},
            {"names":["getpgid"],"action":"SCMP_ACT_ERRNO","errnoRet":7,
             "args":[{"index":0,"value":4096,"op":"SCMP_CMP_GE"},
                     {"index":0,"value":8192,"op":"SCMP_CMP_LT"}]},
            {"names":["getsid"],"action":"SCMP_ACT_ERRNO","errnoRet":9,
             "args":[{"index":0,"value":240,"valueTwo":16,"op":"SCMP_CMP_MASKED_EQ"}]},
            {"names":["getsid"],"action":"SCMP_ACT_ERRNO","errnoRet":10}
          ]}"#,
    );
    let prog = compile(&p).expect("compile");
    let res = fork_child(move || {
        nnp_install(&prog, 0)?;
        // SAFETY: all calls below take plain integers.
        let out = [
            errno_of(|| unsafe { libc::personality(0xffff_ffff) }),
            errno_of(|| unsafe { libc::personality(0) }),
            errno_of(|| unsafe { libc::getpgid(5000) }),
            // Only one of the two ANDed conditions holds → allowed.
            i32::from(errno_of(|| unsafe { libc::getpgid(9000) }) != 7),
            // Raw syscall so the filter sees all 64 bits of the argument.
            errno_of(|| unsafe { libc::syscall(libc::SYS_getsid, 0x1_0000_0015u64) as i32 }),
            errno_of(|| unsafe { libc::syscall(libc::SYS_getsid, 0x25u64) as i32 }),
        ];
        Ok(format!("{out:?}"))
    });
    // personality(0xffffffff) passes; personality(0) → 22; getpgid in
    // [4096, 8192) → 7; getsid with (arg & 0xf0) == 0x10 → 9 (64-bit
    // compare: the high bits are ignored by the mask), other getsid → 10.
    assert_eq!(res, ChildResult::Ok("[0, 22, 7, 1, 9, 10]".into()));
}

#[test]
fn docker_like_profile_runs_a_child() {
    let prog = compile(&docker_like()).expect("compile");
    let res = fork_child(move || {
        nnp_install(&prog, 0)?;
        // SAFETY: plain syscalls.
        let pers_ok = errno_of(|| unsafe { libc::personality(0xffff_ffff) });
        let pers_bad = errno_of(|| unsafe { libc::personality(0x0040_0000) });
        let ptrace = errno_of(|| unsafe {
            libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0) as i32
        });
        let clone3 = errno_of(|| unsafe { libc::syscall(libc::SYS_clone3, 0, 0) as i32 });
        let unlisted = errno_of(|| unsafe { libc::syscall(libc::SYS_getpgrp) as i32 });
        Ok(format!("{pers_ok} {pers_bad} {ptrace} {clone3} {unlisted}"))
    });
    assert_eq!(res, ChildResult::Ok("0 1 1 38 1".into()));
}

#[test]
fn action_mapping() {
    let m = |a, e| convert_action("t", a, e).expect("maps");
    use LinuxSeccompAction as A;
    assert_eq!(m(A::ScmpActKill, None), SeccompAction::KillThread);
    assert_eq!(m(A::ScmpActKillThread, None), SeccompAction::KillThread);
    assert_eq!(m(A::ScmpActKillProcess, None), SeccompAction::KillProcess);
    assert_eq!(m(A::ScmpActTrap, None), SeccompAction::Trap);
    assert_eq!(m(A::ScmpActLog, None), SeccompAction::Log);
    assert_eq!(m(A::ScmpActAllow, None), SeccompAction::Allow);
    assert_eq!(m(A::ScmpActErrno, None), SeccompAction::Errno(1));
    assert_eq!(m(A::ScmpActErrno, Some(38)), SeccompAction::Errno(38));
    assert_eq!(m(A::ScmpActTrace, None), SeccompAction::Trace(1));
    assert_eq!(m(A::ScmpActTrace, Some(5)), SeccompAction::Trace(5));
    assert!(matches!(
        convert_action("t", A::ScmpActErrno, Some(70000)),
        Err(SeccompError::InvalidErrno { value: 70000, .. })
    ));
}

#[test]
fn flags_are_passed_to_the_kernel() {
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":5}]}"#,
    );
    let flags = filter_flags(&p).expect("flags");
    let prog = compile(&p).expect("compile");
    let res = fork_child(move || {
        nnp_install(&prog, flags)?;
        // Raw syscall: glibc's getppid() does not translate errors.
        // SAFETY: trivial syscall.
        Ok(errno_of(|| unsafe { libc::syscall(libc::SYS_getppid) as i32 }).to_string())
    });
    assert_eq!(res, ChildResult::Ok("5".into()));
}

/// x32-ABI syscall numbers must not slip past an x86_64 filter.
#[cfg(target_arch = "x86_64")]
#[test]
fn x32_syscalls_are_killed() {
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getppid"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    let prog = compile(&p).expect("compile");
    let res = fork_child(move || {
        nnp_install(&prog, 0)?;
        // SAFETY: an x32 getppid; without the guard it would be ENOSYS
        // or run unfiltered.
        unsafe { libc::syscall(libc::SYS_getppid | 0x4000_0000) };
        Ok("survived".into())
    });
    assert_eq!(res, ChildResult::Signaled(libc::SIGSYS));
}
