//! v2 `devices`: the device allow-list becomes a BPF_PROG_TYPE_CGROUP_DEVICE
//! program (cgroup v2 has no devices.* files).
//!
//! Why hand-assembled: the program is a fixed-shape sequence of compares,
//! ~10 lines of opcode table; `aya` or `libbpf-rs` would pull in a large
//! dependency tree (or a C toolchain) for that, and no small, maintained
//! crate assembles and loads cgroup-device programs. Loading is a plain
//! bpf(2) call, see `bpf.rs`.
//!
//! Semantics: the rules are read last-to-first (a later rule overrides an
//! earlier one, as in the OCI list and v1's replay), independently for each
//! requested access bit (m, r, w); a request is allowed only if every bit it
//! asks for is allowed. The default, before any rule, is deny — which is
//! what v1's initial `a` write to devices.deny gives too.

use oci_spec::runtime::LinuxDeviceCgroup;

use super::super::CgroupError;
use super::super::device_rules::{ACC_MKNOD, ACC_READ, ACC_WRITE, DevKind, DeviceRule, normalise};

/// One eBPF instruction, layout of the kernel's `struct bpf_insn`
/// (dst register in the low nibble of `regs`, src in the high one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes (class | op | source), from linux/bpf.h and bpf_common.h.
pub(crate) const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub(crate) const ALU64_MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
pub(crate) const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
pub(crate) const ALU64_AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
pub(crate) const ALU64_RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
pub(crate) const JMP_JA: u8 = 0x05; // BPF_JMP | BPF_JA
pub(crate) const JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub(crate) const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
pub(crate) const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
// access_type = (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*.
const CTX_ACCESS_TYPE: i16 = 0;
const CTX_MAJOR: i16 = 4;
const CTX_MINOR: i16 = 8;
const DEV_BLOCK: i32 = 1; // BPF_DEVCG_DEV_BLOCK
const DEV_CHAR: i32 = 2; // BPF_DEVCG_DEV_CHAR

// Register use: r1 = ctx, r2 = device type, r3 = requested access bits,
// r4 = major, r5 = minor, r0 = scratch / return value (1 allow, 0 deny).
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// Builds the program for an OCI device rule list.
pub fn generate(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>, CgroupError> {
    generate_normalised(&normalise(rules)?)
}

pub(crate) fn generate_normalised(rules: &[DeviceRule]) -> Result<Vec<Insn>, CgroupError> {
    let mut prog = vec![
        insn(LDX_MEM_W, R2, R1, CTX_ACCESS_TYPE, 0),
        insn(ALU64_MOV_X, R3, R2, 0, 0),
        insn(ALU64_AND_K, R2, 0, 0, 0xffff),
        insn(ALU64_RSH_K, R3, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, CTX_MAJOR, 0),
        insn(LDX_MEM_W, R5, R1, CTX_MINOR, 0),
    ];
    for bit in [ACC_MKNOD, ACC_READ, ACC_WRITE] {
        prog.extend(access_block(rules, bit)?);
    }
    prog.push(insn(ALU64_MOV_K, R0, 0, 0, 1));
    prog.push(insn(JMP_EXIT, 0, 0, 0, 0));
    Ok(prog)
}

/// Decides one access bit: skipped when not requested, exits with 0 when
/// denied, falls through to the next block when allowed.
fn access_block(rules: &[DeviceRule], bit: u8) -> Result<Vec<Insn>, CgroupError> {
    let mut block = vec![
        insn(ALU64_MOV_X, R0, R3, 0, 0),
        insn(ALU64_AND_K, R0, 0, 0, i32::from(bit)),
        insn(JMP_JEQ_K, R0, 0, 0, 0), // -> end of block, patched below
    ];
    let mut to_end = vec![2];
    let mut fallthrough_allows = false;
    for rule in rules.iter().rev().filter(|r| r.access & bit != 0) {
        let mut checks: Vec<(u8, i32)> = Vec::with_capacity(3);
        match rule.kind {
            DevKind::Char => checks.push((R2, DEV_CHAR)),
            DevKind::Block => checks.push((R2, DEV_BLOCK)),
            DevKind::All => {}
        }
        // Numbers were range-checked to fit i32 in normalise().
        if let Some(m) = rule.major {
            checks.push((R4, m as i32));
        }
        if let Some(m) = rule.minor {
            checks.push((R5, m as i32));
        }
        if checks.is_empty() {
            // Matches every request: it decides, and rules before it in
            // the list can never be reached (emitting them would also be
            // dead code, which the verifier rejects).
            fallthrough_allows = rule.allow;
            break;
        }
        let action_len = if rule.allow { 1 } else { 2 };
        let n = checks.len();
        for (i, (reg, v)) in checks.into_iter().enumerate() {
            // On mismatch skip the remaining checks and the action.
            block.push(insn(JMP_JNE_K, reg, 0, (n - i - 1 + action_len) as i16, v));
        }
        if rule.allow {
            to_end.push(block.len());
            block.push(insn(JMP_JA, 0, 0, 0, 0));
        } else {
            block.push(insn(ALU64_MOV_K, R0, 0, 0, 0));
            block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        }
    }
    if !fallthrough_allows {
        block.push(insn(ALU64_MOV_K, R0, 0, 0, 0));
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
    }
    let len = block.len();
    if len > i16::MAX as usize {
        return Err(CgroupError::InvalidResource(format!(
            "{} device rules are too many for one device program",
            rules.len()
        )));
    }
    for i in to_end {
        block[i].off = (len - i - 1) as i16;
    }
    Ok(block)
}

#[cfg(test)]
pub(crate) mod interp {
    //! Minimal interpreter for exactly the opcodes `generate` emits, so the
    //! program's decisions can be tested without a kernel.
    use super::*;

    pub(crate) fn run(prog: &[Insn], access_type: u32, major: u32, minor: u32) -> u64 {
        let ctx = [access_type, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..100_000 {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let imm = i.imm as i64 as u64;
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from ctx");
                    r[dst] = u64::from(ctx[(i.off / 4) as usize]);
                }
                ALU64_MOV_X => r[dst] = r[src],
                ALU64_MOV_K => r[dst] = imm,
                ALU64_AND_K => r[dst] &= imm,
                ALU64_RSH_K => r[dst] >>= imm,
                JMP_JA => pc = (pc as i64 + i64::from(i.off)) as usize,
                JMP_JEQ_K if r[dst] == imm => pc = (pc as i64 + i64::from(i.off)) as usize,
                JMP_JNE_K if r[dst] != imm => pc = (pc as i64 + i64::from(i.off)) as usize,
                JMP_JEQ_K | JMP_JNE_K => {}
                JMP_EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
            assert!(pc < prog.len(), "fell off the program");
        }
        panic!("no exit")
    }
}
