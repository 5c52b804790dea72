//! Loading and attaching the device program with the raw bpf(2) syscall
//! (see devices.rs for why no eBPF crate). The attr structs below are the
//! leading members of the kernel's `union bpf_attr` for each command; the
//! kernel accepts a shorter attr and treats the rest as zero.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::libc;

use super::super::CgroupError;
use super::devices::Insn;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Several programs may coexist; needed to swap ours without a gap.
const BPF_F_ALLOW_MULTI: u32 = 2;

const LICENSE: &[u8] = b"Apache\0";
const LOG_SIZE: usize = 64 * 1024;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn sys_bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised #[repr(C)] prefix of
    // union bpf_attr for `cmd`; the kernel reads and writes at most
    // size_of::<T>() bytes of it, and any pointers inside it point to
    // buffers that outlive this call.
    let ret =
        unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the bpf syscall just returned this new fd and nothing else
    // owns it.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// Loads the program; on refusal, loads again with a log buffer so the
/// error carries the verifier's explanation.
pub(crate) fn load(insns: &[Insn], dir: &Path) -> Result<OwnedFd, CgroupError> {
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"crius_dev");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    match sys_bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => return Ok(owned(fd)),
        Err(e)
            if e.raw_os_error() != Some(libc::EINVAL) && e.raw_os_error() != Some(libc::EACCES) =>
        {
            return Err(CgroupError::Bpf {
                op: "BPF_PROG_LOAD",
                path: dir.to_path_buf(),
                log: String::new(),
                source: e,
            });
        }
        Err(_) => {}
    }
    let mut log = vec![0u8; LOG_SIZE];
    attr.log_level = 1;
    attr.log_size = LOG_SIZE as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    match sys_bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(source) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            Err(CgroupError::Bpf {
                op: "BPF_PROG_LOAD",
                path: dir.to_path_buf(),
                log: String::from_utf8_lossy(&log[..end]).trim().to_string(),
                source,
            })
        }
    }
}

fn query(cgroup: &File, dir: &Path) -> Result<Vec<u32>, CgroupError> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    sys_bpf(BPF_PROG_QUERY, &mut attr).map_err(|source| CgroupError::Bpf {
        op: "BPF_PROG_QUERY",
        path: dir.to_path_buf(),
        log: String::new(),
        source,
    })?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

fn attach_op(cmd: libc::c_long, cgroup: &File, prog: RawFd, flags: u32) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        ..Default::default()
    };
    sys_bpf(cmd, &mut attr).map(|_| ())
}

/// Loads `insns` and makes it the only device program of the cgroup at
/// `dir`: the new one is attached before the old ones are detached, so the
/// container is never left without device filtering in between.
pub(crate) fn attach_device_program(dir: &Path, insns: &[Insn]) -> Result<(), CgroupError> {
    let bpf_err = |op, source| CgroupError::Bpf {
        op,
        path: dir.to_path_buf(),
        log: String::new(),
        source,
    };
    let cgroup = File::open(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let old = query(&cgroup, dir)?;
    let prog = load(insns, dir)?;
    if let Err(e) = attach_op(
        BPF_PROG_ATTACH,
        &cgroup,
        prog.as_raw_fd(),
        BPF_F_ALLOW_MULTI,
    ) {
        // A program attached by someone else without ALLOW_MULTI can only
        // be replaced by a plain attach.
        if old.is_empty() {
            return Err(bpf_err("BPF_PROG_ATTACH", e));
        }
        attach_op(BPF_PROG_ATTACH, &cgroup, prog.as_raw_fd(), 0)
            .map_err(|e| bpf_err("BPF_PROG_ATTACH", e))?;
        return Ok(());
    }
    for id in old {
        let mut attr = GetFdByIdAttr {
            prog_id: id,
            ..Default::default()
        };
        let old_fd = match sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) {
            Ok(fd) => owned(fd),
            // Already gone.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(bpf_err("BPF_PROG_GET_FD_BY_ID", e)),
        };
        attach_op(BPF_PROG_DETACH, &cgroup, old_fd.as_raw_fd(), 0)
            .map_err(|e| bpf_err("BPF_PROG_DETACH", e))?;
    }
    Ok(())
}

/// Ids of the device programs attached to `dir` (for tests and debugging).
pub fn attached_device_programs(dir: &Path) -> Result<Vec<u32>, CgroupError> {
    let cgroup = File::open(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    query(&cgroup, dir)
}
