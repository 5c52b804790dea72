//! Gives back the mappings of code the monitor no longer runs: when it enters its poll loop,
//! and after each quiet period (`monitor.rs`, `RELEASE_AFTER_QUIET_MS`).
//!
//! The kernel maps file pages around each fault (64 KiB of them), so setting up (argument
//! parsing, spawning the runtime, JSON, reading the cgroup) leaves most of the binary's code
//! mapped in every monitor, though an idle monitor runs only its poll loop. `MADV_DONTNEED` on
//! the non-writable load segments unmaps them; the pages the loop then runs fault back in. The
//! pages stay in the page cache, shared by every monitor, so nothing is read again from disk;
//! unmapped by all monitors they are reclaimable. Writable segments (data, and RELRO, whose
//! pages the start-up code wrote) are left alone: their contents are not the file's. The heap's
//! free pages go back too (`malloc_trim`). docs/monitor.md, "Footprint", has the numbers.
//!
//! The program headers are read through `__ehdr_start` (the ELF header, which the linker places
//! at the start of the first loaded segment) rather than `dl_iterate_phdr`, whose locking would
//! fault its own code back in right after.

use std::ffi::c_void;

use nix::libc;

unsafe extern "C" {
    /// Defined by the linker (GNU ld and lld) at the executable's ELF header.
    static __ehdr_start: libc::Elf64_Ehdr;
}

/// Unmaps the whole pages of the executable's loaded segments that are not writable (see the
/// module doc). Best effort: a failure leaves the mappings as they were.
pub fn release_code_pages() {
    let Some(page) = page_size() else {
        return;
    };
    // SAFETY: malloc_trim has no preconditions; single-threaded, nothing else allocates now.
    unsafe {
        libc::malloc_trim(0);
    }
    let ranges = readonly_segments(page);
    for (start, len) in ranges.iter().flatten() {
        // SAFETY: the range is whole pages of a read-only private file mapping of the
        // executable, which nothing has written to; its pages fault back in unchanged.
        unsafe {
            libc::madvise(*start as *mut c_void, *len, libc::MADV_DONTNEED);
        }
    }
}

/// The page-aligned ranges (start, length) of the executable's loaded, non-writable segments;
/// at most 8, which is more than a linker makes (two: read-only data and code).
fn readonly_segments(page: usize) -> [Option<(usize, usize)>; 8] {
    let mut ranges = [None; 8];
    // SAFETY: __ehdr_start is the mapped ELF header of this executable; its program headers
    // are mapped too (they follow it in the first loaded segment).
    let (image, headers) = unsafe {
        let ehdr = &raw const __ehdr_start;
        let header = &*ehdr;
        if header.e_phentsize as usize != size_of::<libc::Elf64_Phdr>() {
            return ranges;
        }
        let phdr = (ehdr as *const u8).add(header.e_phoff as usize) as *const libc::Elf64_Phdr;
        (
            ehdr as usize,
            std::slice::from_raw_parts(phdr, usize::from(header.e_phnum)),
        )
    };
    // The ELF header is at the file offset 0 of the first loaded segment: that segment's
    // address (0 when position-independent) is where `image` is.
    let Some(first) = headers.iter().find(|h| h.p_type == libc::PT_LOAD) else {
        return ranges;
    };
    if first.p_offset != 0 {
        return ranges;
    }
    let loads = headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W == 0);
    for (slot, header) in ranges.iter_mut().zip(loads) {
        let start = image + (header.p_vaddr - first.p_vaddr) as usize;
        let end = start + header.p_memsz as usize;
        // Whole pages only: an edge page may be shared with a writable segment.
        let low = start.div_ceil(page) * page;
        let high = end / page * page;
        if high > low {
            *slot = Some((low, high - low));
        }
    }
    ranges
}

fn page_size() -> Option<usize> {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).ok().filter(|s| s.is_power_of_two())
}
