//! Giving freed memory back to the operating system.
//!
//! SQLite allocates its page cache page by page from the C heap. When a
//! large cache shrinks (the end of a bulk load, before index builds), the
//! pages are freed, but the allocator keeps the memory mapped wherever the
//! freed pages sit between live allocations, so the process's resident
//! size stays at its peak while the next phase allocates afresh beside
//! it. [`give_back`] asks the allocator to release every free page.

/// Releases the heap's free pages to the operating system (glibc's
/// `malloc_trim`); does nothing on other platforms.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` has no preconditions: it only walks the
    // allocator's own free lists, under the allocator's locks.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    /// Freed memory leaves the resident set (glibc only: elsewhere
    /// `give_back` is a no-op and there is nothing to observe).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_small_allocations_leave_the_resident_set() {
        fn rss_kib() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap()
        }
        // 64 MiB in page-sized blocks (below the allocator's mmap
        // threshold, as SQLite's cache pages are), then a block that
        // stays, so that the freed ones cannot simply shrink the heap's
        // top on their own.
        let blocks: Vec<Vec<u8>> = (0..16_384).map(|i| vec![i as u8; 4096]).collect();
        let kept = vec![1u8; 4096];
        drop(blocks);
        let before = rss_kib();
        super::give_back();
        let after = rss_kib();
        // 64 MiB were freed; most of it must leave.
        assert!(
            before.saturating_sub(after) > 32 * 1024,
            "resident {before} KiB before, {after} KiB after"
        );
        drop(kept);
    }
}
