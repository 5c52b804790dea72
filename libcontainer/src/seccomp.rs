//! OCI `linux.seccomp` → seccomp BPF, compiled with `seccompiler`.
//!
//! seccompiler builds a filter with exactly one "match" action and one
//! "mismatch" action, while an OCI profile mixes several actions. We therefore
//! compile one seccompiler filter per (action, conditional?) group and chain
//! them: each group's "mismatch" returns are rewritten into jumps to the start
//! of the next group, and the profile's default action is returned after the
//! last group. All comparisons, argument checks and jump offsets inside a group
//! are seccompiler's own output; we only splice whole groups together.
//!
//! Semantics (kept close to runc + libseccomp):
//! * several `args` in one rule are ANDed, also when they test the same
//!   argument (e.g. GE + LT for a range); several rules for one syscall are
//!   ORed. (runc instead splits same-index conditions into separate ORed
//!   rules, a libseccomp workaround; we keep the plain OCI reading.)
//! * a rule whose action equals the default action is skipped (runc does the
//!   same; libseccomp rejects it).
//! * when one syscall has rules with different actions, conditional rules are
//!   evaluated before unconditional ones (the more specific rule wins), and
//!   otherwise in profile order.
//! * syscall names unknown on this architecture are skipped with a debug log.
//! * only the native architecture is filtered. Other `architectures` entries
//!   are accepted and ignored (debug log); a syscall made through another ABI
//!   (i386 `int 0x80`, x32) kills the process, as libseccomp's default
//!   "bad arch" action does for arches absent from the filter.
//! * `SCMP_ACT_NOTIFY` is not supported (no seccomp agent plumbing).

use std::collections::BTreeMap;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

mod syscalls;

/// Errors while compiling or installing a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: architecture {0} is not supported by this runtime's seccomp compiler")]
    UnsupportedArch(&'static str),
    #[error("seccomp: SCMP_ACT_NOTIFY ({0}) is not supported by this runtime")]
    NotifyUnsupported(String),
    #[error("seccomp: flag {0} is not supported by this runtime")]
    FlagUnsupported(String),
    #[error("seccomp: errnoRet {value} for {context} does not fit in 16 bits")]
    InvalidErrno { context: String, value: u32 },
    #[error("seccomp: syscall {syscall}: argument index {index} out of range (0..=5)")]
    InvalidArgIndex { syscall: String, index: usize },
    #[error("seccomp: empty syscall name in profile")]
    EmptySyscallName,
    #[error("seccomp: building filter for {context}: {source}")]
    Build {
        context: String,
        #[source]
        source: seccompiler::BackendError,
    },
    #[error("seccomp: unexpected seccompiler output layout: {0}")]
    UnexpectedLayout(&'static str),
    #[error("seccomp: filter has {0} BPF instructions, the kernel limit is 4096")]
    TooLarge(usize),
    #[error("seccomp: empty BPF program")]
    EmptyProgram,
    #[error("seccomp: prctl(PR_SET_NO_NEW_PRIVS): {0}")]
    NoNewPrivs(#[source] std::io::Error),
    #[error("seccomp: loading filter (flags {flags:#x}): {source}")]
    Load {
        flags: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("seccomp: TSYNC failed, thread {0} could not be synchronised")]
    ThreadSync(libc::c_long),
}

// Classic-BPF encodings (linux/bpf_common.h). Only used to recognise
// seccompiler's returns and to emit the glue jumps / x32 guard.
/// BPF_LD | BPF_W | BPF_ABS.
const BPF_LD_W_ABS: u16 = 0x20;
/// BPF_JMP | BPF_JA.
const BPF_JMP_JA: u16 = 0x05;
/// BPF_JMP | BPF_JGE | BPF_K.
const BPF_JMP_JGE_K: u16 = 0x35;
/// BPF_JMP | BPF_JEQ | BPF_K.
const BPF_JMP_JEQ_K: u16 = 0x15;
/// BPF_RET | BPF_K.
const BPF_RET_K: u16 = 0x06;
/// `offsetof(struct seccomp_data, arch)`.
const SECCOMP_DATA_ARCH: u32 = 4;
/// `offsetof(struct seccomp_data, nr)`.
const SECCOMP_DATA_NR: u32 = 0;
/// Length of seccompiler's arch-validation prologue (load arch, jeq, ret kill).
const ARCH_PROLOGUE_LEN: usize = 3;
/// x32 syscalls run with AUDIT_ARCH_X86_64 but with this bit set in `nr`.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// BPF_MAXINSNS.
const MAX_INSNS: usize = 4096;

/// Name, seccompiler target and the OCI arch of the native architecture.
fn native_arch() -> Result<(TargetArch, Arch), SeccompError> {
    if cfg!(target_arch = "x86_64") {
        Ok((TargetArch::x86_64, Arch::ScmpArchX86_64))
    } else if cfg!(target_arch = "aarch64") {
        Ok((TargetArch::aarch64, Arch::ScmpArchAarch64))
    } else {
        Err(SeccompError::UnsupportedArch(std::env::consts::ARCH))
    }
}

fn errno_action(
    context: &str,
    errno: Option<u32>,
    make: fn(u32) -> SeccompAction,
) -> Result<SeccompAction, SeccompError> {
    // runc defaults ERRNO and TRACE to EPERM.
    let value = errno.unwrap_or(libc::EPERM as u32);
    if value > u32::from(u16::MAX) {
        return Err(SeccompError::InvalidErrno {
            context: context.to_string(),
            value,
        });
    }
    Ok(make(value))
}

fn convert_action(
    context: &str,
    action: LinuxSeccompAction,
    errno: Option<u32>,
) -> Result<SeccompAction, SeccompError> {
    Ok(match action {
        // libseccomp's SCMP_ACT_KILL is "kill thread".
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActErrno => errno_action(context, errno, SeccompAction::Errno)?,
        LinuxSeccompAction::ScmpActTrace => errno_action(context, errno, SeccompAction::Trace)?,
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::NotifyUnsupported(context.to_string()));
        }
    })
}

fn convert_arg(syscall: &str, arg: &LinuxSeccompArg) -> Result<SeccompCondition, SeccompError> {
    let index = u8::try_from(arg.index())
        .ok()
        .filter(|i| *i <= 5)
        .ok_or_else(|| SeccompError::InvalidArgIndex {
            syscall: syscall.to_string(),
            index: arg.index(),
        })?;
    // libseccomp compares the full 64-bit argument; MASKED_EQ is
    // `(arg & value) == valueTwo`.
    let (op, value) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            SeccompCmpOp::MaskedEq(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value).map_err(|source| {
        SeccompError::Build {
            context: format!("condition on syscall {syscall}"),
            source,
        }
    })
}

/// Rules of one (action, conditional?) group, keyed by syscall number.
/// An empty rule list means "match on the syscall number alone".
struct Group {
    action: SeccompAction,
    conditional: bool,
    rules: BTreeMap<i64, Vec<SeccompRule>>,
}

/// Whether `name` is a syscall of the native architecture this compiler knows (names it does
/// not know are skipped when compiling a profile).
pub fn known_syscall(name: &str) -> bool {
    syscalls::native(name).is_some()
}

/// Translate an OCI seccomp profile into one BPF program for the native
/// architecture. See the module docs for the exact semantics.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<BpfProgram, SeccompError> {
    let (target, native) = native_arch()?;
    if let Some(arches) = seccomp.architectures() {
        for arch in arches
            .iter()
            .filter(|a| **a != native && **a != Arch::ScmpArchNative)
        {
            tracing::debug!(
                ?arch,
                "seccomp: architecture ignored, only the native one is filtered"
            );
        }
    }
    let default = convert_action(
        "defaultAction",
        seccomp.default_action(),
        seccomp.default_errno_ret(),
    )?;

    let mut groups: Vec<Group> = Vec::new();
    for (i, sc) in seccomp.syscalls().iter().flatten().enumerate() {
        let context = format!("syscalls[{i}] ({})", sc.names().join(","));
        let action = convert_action(&context, sc.action(), sc.errno_ret())?;
        if action == default {
            continue;
        }
        let args = sc.args().as_deref().unwrap_or_default();
        for name in sc.names() {
            if name.is_empty() {
                return Err(SeccompError::EmptySyscallName);
            }
            let Some(nr) = syscalls::native(name) else {
                tracing::debug!(syscall = %name, "seccomp: unknown syscall ignored");
                continue;
            };
            let conditional = !args.is_empty();
            let pos = groups
                .iter()
                .position(|g| g.action == action && g.conditional == conditional);
            let group = match pos {
                Some(p) => &mut groups[p],
                None => {
                    groups.push(Group {
                        action: action.clone(),
                        conditional,
                        rules: BTreeMap::new(),
                    });
                    let last = groups.len() - 1;
                    &mut groups[last]
                }
            };
            let chain = group.rules.entry(nr).or_default();
            if conditional {
                chain.push(build_rule(name, args)?);
            }
        }
    }
    // Conditional groups first (stable: profile order otherwise).
    groups.sort_by_key(|g| !g.conditional);

    let mut program: BpfProgram = Vec::new();
    if groups.is_empty() {
        // Nothing but the default action: seccompiler emits prologue + RET.
        let filter = SeccompFilter::new(
            BTreeMap::new(),
            default.clone(),
            other_than(&default),
            target,
        )
        .map_err(|source| build_err("default action", source))?;
        return BpfProgram::try_from(filter).map_err(|source| build_err("default action", source));
    }
    for (i, group) in groups.into_iter().enumerate() {
        let body = compile_group(group, target)?;
        if i == 0 {
            program.extend_from_slice(&body.prologue);
            if target == TargetArch::x86_64 {
                program.extend(x32_guard());
            }
        }
        program.extend(body.instructions);
    }
    program.push(stmt(BPF_RET_K, u32::from(default)));
    if program.len() > MAX_INSNS {
        return Err(SeccompError::TooLarge(program.len()));
    }
    Ok(program)
}

/// One OCI rule → one seccompiler rule whose conditions are ANDed.
fn build_rule(name: &str, args: &[LinuxSeccompArg]) -> Result<SeccompRule, SeccompError> {
    let conditions = args
        .iter()
        .map(|a| convert_arg(name, a))
        .collect::<Result<Vec<_>, _>>()?;
    SeccompRule::new(conditions).map_err(|source| build_err(name, source))
}

fn build_err(context: &str, source: seccompiler::BackendError) -> SeccompError {
    SeccompError::Build {
        context: context.to_string(),
        source,
    }
}

/// Any action different from `a` (seccompiler refuses equal match/mismatch
/// actions; the mismatch returns are rewritten anyway).
fn other_than(a: &SeccompAction) -> SeccompAction {
    if *a == SeccompAction::Allow {
        SeccompAction::KillProcess
    } else {
        SeccompAction::Allow
    }
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// Kill x32-ABI syscalls: they carry AUDIT_ARCH_X86_64, so the arch check
/// lets them through, but their numbers differ from the x86_64 table.
fn x32_guard() -> [sock_filter; 3] {
    [
        stmt(BPF_LD_W_ABS, SECCOMP_DATA_NR),
        sock_filter {
            code: BPF_JMP_JGE_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        stmt(BPF_RET_K, libc::SECCOMP_RET_KILL_PROCESS),
    ]
}

struct CompiledGroup {
    prologue: Vec<sock_filter>,
    instructions: Vec<sock_filter>,
}

/// Compile one group with seccompiler and turn every "mismatch" return into a
/// jump past the group's end, so evaluation falls through to the next group.
fn compile_group(group: Group, target: TargetArch) -> Result<CompiledGroup, SeccompError> {
    let context = format!("{:?} rules", group.action);
    let match_k = u32::from(group.action.clone());
    let mismatch = other_than(&group.action);
    let mismatch_k = u32::from(mismatch.clone());
    let filter = SeccompFilter::new(group.rules, mismatch, group.action, target)
        .map_err(|source| build_err(&context, source))?;
    let prog = BpfProgram::try_from(filter).map_err(|source| build_err(&context, source))?;

    // Check the layout we rely on: [ld arch, jeq arch, ret kill] [ld nr] ...
    let (prologue, body) =
        prog.split_at_checked(ARCH_PROLOGUE_LEN)
            .ok_or(SeccompError::UnexpectedLayout(
                "program shorter than the arch prologue",
            ))?;
    let prologue_ok = prologue[0].code == BPF_LD_W_ABS
        && prologue[0].k == SECCOMP_DATA_ARCH
        && prologue[1].code == BPF_JMP_JEQ_K
        && prologue[1].jt == 1
        && prologue[1].jf == 0
        && prologue[2].code == BPF_RET_K;
    if !prologue_ok {
        return Err(SeccompError::UnexpectedLayout("arch prologue"));
    }
    match body.first() {
        Some(first) if first.code == BPF_LD_W_ABS && first.k == SECCOMP_DATA_NR => {}
        _ => return Err(SeccompError::UnexpectedLayout("syscall number load")),
    }

    let end = body.len();
    let mut instructions = Vec::with_capacity(end);
    for (i, ins) in body.iter().enumerate() {
        if ins.code == BPF_RET_K && ins.k != match_k {
            if ins.k != mismatch_k {
                return Err(SeccompError::UnexpectedLayout("unknown return value"));
            }
            // JA k lands on i + 1 + k == end, the next group's `ld nr`
            // (or the final default return).
            let k = u32::try_from(end - i - 1).map_err(|_| SeccompError::TooLarge(end))?;
            instructions.push(stmt(BPF_JMP_JA, k));
        } else {
            instructions.push(ins.clone());
        }
    }
    Ok(CompiledGroup {
        prologue: prologue.to_vec(),
        instructions,
    })
}

/// `SECCOMP_FILTER_FLAG_*` bits for the profile's `flags`.
pub fn filter_flags(seccomp: &LinuxSeccomp) -> Result<u32, SeccompError> {
    let mut flags = 0;
    for flag in seccomp.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            // Only meaningful with a user-notification listener (NOTIFY).
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(SeccompError::FlagUnsupported(flag.to_string()));
            }
        } as u32;
    }
    Ok(flags)
}

/// Load `prog` for the calling thread with no flags. See [`install_with_flags`].
pub fn install(prog: &BpfProgram) -> Result<(), SeccompError> {
    install_with_flags(prog, 0)
}

/// Load `prog` with `seccomp(SECCOMP_SET_MODE_FILTER, flags)`.
///
/// Unlike `seccompiler::apply_filter`, this does NOT set no_new_privs: OCI
/// only sets it when `process.noNewPrivileges` is true (call
/// [`set_no_new_privs`] first then). Without it the caller needs
/// CAP_SYS_ADMIN, i.e. it must install the filter before dropping
/// capabilities, exactly as runc does.
pub fn install_with_flags(prog: &BpfProgram, flags: u32) -> Result<(), SeccompError> {
    if prog.is_empty() {
        return Err(SeccompError::EmptyProgram);
    }
    let len = u16::try_from(prog.len()).map_err(|_| SeccompError::TooLarge(prog.len()))?;
    // seccompiler's sock_filter is #[repr(C)] and layout-identical to the
    // kernel's struct sock_filter.
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points to `prog`, which outlives the call; the kernel
    // copies the program and does not keep the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    if rc > 0 {
        // TSYNC reports the thread id that could not be synchronised.
        return Err(SeccompError::ThreadSync(rc));
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ENOSYS) && flags == 0 {
        // Pre-3.17 kernels: the prctl interface (no flags there).
        // SAFETY: same pointer argument as above.
        let rc = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &fprog as *const libc::sock_fprog,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        return Err(SeccompError::Load {
            flags,
            source: std::io::Error::last_os_error(),
        });
    }
    Err(SeccompError::Load { flags, source: err })
}

/// prctl(PR_SET_NO_NEW_PRIVS, 1) — for `process.noNewPrivileges: true`.
pub fn set_no_new_privs() -> Result<(), SeccompError> {
    // SAFETY: plain prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(SeccompError::NoNewPrivs(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// compile + install with the profile's flags.
pub fn apply(seccomp: &LinuxSeccomp) -> Result<(), SeccompError> {
    let flags = filter_flags(seccomp)?;
    let prog = compile(seccomp)?;
    install_with_flags(&prog, flags)
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests;
