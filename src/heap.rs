//! The daemon's heap, counted: the global allocator is the system's, wrapped to count
//! allocations and the bytes in use, as Go's runtime counts `go_memstats_mallocs_total` and
//! `go_memstats_alloc_bytes` for cri-o and containerd. The Prometheus endpoint serves both
//! (`crius_heap_allocations_total`, `crius_heap_bytes`), and `pod-bench --metrics` uses them to
//! tell what one `ListPodSandboxMetrics` allocates.
//!
//! The cost is two relaxed atomic adds per allocation; no lock, no allocation of its own.
//! Written here because the well-kept counting allocators (`stats_alloc`, `cap`) are test
//! tools with more than this needs, or unmaintained.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The system allocator, counted.
pub struct Counted;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static IN_USE: AtomicU64 = AtomicU64::new(0);

/// Allocations made since the process started (frees not subtracted).
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Relaxed)
}

/// Heap bytes allocated and not yet freed (what the program asked for, without the
/// allocator's own overhead).
pub fn in_use() -> u64 {
    IN_USE.load(Relaxed)
}

// SAFETY: every call is passed on to `System` unchanged; only counters are updated around it.
unsafe impl GlobalAlloc for Counted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCATIONS.fetch_add(1, Relaxed);
            IN_USE.fetch_add(layout.size() as u64, Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCATIONS.fetch_add(1, Relaxed);
            IN_USE.fetch_add(layout.size() as u64, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size() as u64, Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // A reallocation counts as one allocation, as Go counts a grown slice.
            ALLOCATIONS.fetch_add(1, Relaxed);
            IN_USE.fetch_add(new_size as u64, Relaxed);
            IN_USE.fetch_sub(layout.size() as u64, Relaxed);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_counted_and_freed_bytes_given_back() {
        let before = allocations();
        let block = std::hint::black_box(vec![7u8; 1 << 20]);
        assert!(allocations() > before);
        // Other tests allocate at the same time: only a lower bound holds while it lives.
        assert!(in_use() >= 1 << 20);
        drop(block);
    }
}
