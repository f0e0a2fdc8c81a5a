//! Letting go of the executable's mapped pages while a process idles.
//!
//! A process keeps mapped every page of its executable it has touched,
//! and the kernel maps more than it touches: a fault maps the 64 KiB
//! around it, or a whole large folio of the page cache. A berth-shim runs
//! its start-up code once and then waits for days, so most of what it has
//! mapped (about 1.3 MiB of a 3.3 MiB text) is code it will not run again.
//! `MADV_DONTNEED` on the executable's read-only segments removes those
//! page-table entries: the pages stay in the page cache (shared with every
//! other shim, and reclaimable like any unmapped file page) and the next
//! instruction or read that needs one maps it again with a minor fault.
//!
//! Only pages that are still the file's own are released: those of the
//! segments without write permission and of RELRO (relocated by the loader,
//! then made read-only), and of those only the pages that
//! /proc/self/pagemap reports as file pages. A private copy (relocated
//! data in RELRO, a breakpoint a debugger or a uprobe wrote into the text)
//! holds what the file does not, and stays. Nothing can write to these
//! pages meanwhile: they are mapped without write permission.

use std::fs::File;
use std::mem::size_of;
use std::os::unix::fs::FileExt;

/// The page size the kernel maps with.
fn page_size() -> usize {
    rustix::param::page_size()
}

/// An address range `[start, end)` of this process's own executable image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    start: usize,
    end: usize,
}

/// The executable's parts that are never written once it runs: its loaded
/// segments without write permission and its RELRO, each narrowed to the
/// whole pages inside it. Empty when the program headers cannot be found
/// (no `AT_PHDR`, no `PT_PHDR`, an unexpected entry size).
fn read_only_segments() -> Vec<Range> {
    // SAFETY: getauxval reads the auxiliary vector the kernel put on the
    // stack at exec; it has no preconditions.
    let (phdr, phnum, phent) = unsafe {
        (
            libc::getauxval(libc::AT_PHDR) as usize,
            libc::getauxval(libc::AT_PHNUM) as usize,
            libc::getauxval(libc::AT_PHENT) as usize,
        )
    };
    if phdr == 0 || phnum == 0 || phent != size_of::<libc::Elf64_Phdr>() {
        return Vec::new();
    }
    // SAFETY: AT_PHDR points at the executable's program headers, AT_PHNUM
    // entries of AT_PHENT bytes (checked above to be Elf64_Phdr's size),
    // mapped read-only for the life of the process.
    let headers = unsafe { std::slice::from_raw_parts(phdr as *const libc::Elf64_Phdr, phnum) };
    // The load bias (non-zero for a PIE) is where the headers are minus
    // where the file says they are.
    let Some(bias) = headers
        .iter()
        .find(|h| h.p_type == libc::PT_PHDR)
        .map(|h| phdr.wrapping_sub(h.p_vaddr as usize))
    else {
        return Vec::new();
    };
    let page = page_size();
    headers
        .iter()
        .filter(|h| {
            (h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W == 0)
                || h.p_type == libc::PT_GNU_RELRO
        })
        .filter_map(|h| {
            let start = bias.wrapping_add(h.p_vaddr as usize);
            let end = start + h.p_memsz as usize;
            // Whole pages only: a page shared with a writable segment is
            // not ours to drop.
            let start = start.div_ceil(page) * page;
            let end = end / page * page;
            (start < end).then_some(Range { start, end })
        })
        .collect()
}

/// The runs of pages in `r` that are mapped and still the file's own
/// (/proc/self/pagemap: bit 63 present, bit 61 file page).
fn file_page_runs(pagemap: &File, r: Range) -> std::io::Result<Vec<Range>> {
    const PRESENT: u64 = 1 << 63;
    const FILE: u64 = 1 << 61;
    let page = page_size();
    let mut entries = vec![0u8; (r.end - r.start) / page * 8];
    pagemap.read_exact_at(&mut entries, (r.start / page * 8) as u64)?;
    let mut runs: Vec<Range> = Vec::new();
    for (i, e) in entries.chunks_exact(8).enumerate() {
        let e = u64::from_ne_bytes(e.try_into().expect("8-byte chunks"));
        if e & (PRESENT | FILE) != PRESENT | FILE {
            continue;
        }
        let at = r.start + i * page;
        match runs.last_mut() {
            Some(last) if last.end == at => last.end = at + page,
            _ => runs.push(Range {
                start: at,
                end: at + page,
            }),
        }
    }
    Ok(runs)
}

/// Drops this process's page-table entries for its executable's pages
/// that are never written (see the module's documentation). Returns the
/// bytes that were mapped and no longer are.
pub fn release() -> crate::Result<usize> {
    // The runs are found first and the pagemap closed before any is
    // released: what runs after the last release is mapped again, so that
    // is kept to this function's tail.
    let runs = {
        let pagemap = File::open("/proc/self/pagemap")?;
        let mut runs = Vec::new();
        for segment in read_only_segments() {
            runs.extend(file_page_runs(&pagemap, segment)?);
        }
        runs
    };
    let mut released = 0;
    for r in &runs {
        // SAFETY: the range is whole pages of our own executable's
        // private file mapping, mapped without write permission, each
        // present and the file's own page (not a private copy):
        // MADV_DONTNEED only removes their page-table entries, and the
        // next access maps the same file page again.
        let ret = unsafe {
            libc::madvise(
                r.start as *mut libc::c_void,
                r.end - r.start,
                libc::MADV_DONTNEED,
            )
        };
        crate::check(ret.into())?;
        released += r.end - r.start;
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pages of `r` that are mapped in this process, from
    /// /proc/self/pagemap (bit 63: present).
    fn present_pages(r: Range) -> usize {
        use std::io::{Read, Seek, SeekFrom};
        let page = page_size();
        let mut f = std::fs::File::open("/proc/self/pagemap").unwrap();
        f.seek(SeekFrom::Start((r.start / page * 8) as u64))
            .unwrap();
        let mut buf = vec![0u8; (r.end - r.start) / page * 8];
        f.read_exact(&mut buf).unwrap();
        buf.chunks(8)
            .filter(|e| u64::from_ne_bytes((*e).try_into().unwrap()) >> 63 == 1)
            .count()
    }

    #[test]
    fn finds_the_code_and_leaves_writable_data_out() {
        let segments = read_only_segments();
        let code = read_only_segments as *const () as usize;
        assert!(
            segments.iter().any(|r| r.start <= code && code < r.end),
            "this function's own code at {code:#x} is in no read-only segment: {segments:x?}"
        );
        // Interior mutability puts a static in a writable segment.
        static WRITABLE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let data = &WRITABLE as *const _ as usize;
        assert!(
            !segments.iter().any(|r| r.start <= data && data < r.end),
            "a writable static at {data:#x} is in a read-only segment: {segments:x?}"
        );
    }

    #[test]
    fn release_unmaps_code_which_maps_again_when_run() {
        let segments = read_only_segments();
        let mapped_before: usize = segments.iter().map(|r| present_pages(*r)).sum();
        assert!(mapped_before > 0, "no code page was mapped before");
        let released = release().unwrap();
        assert!(released > 0, "nothing released");
        let mapped_after: usize = segments.iter().map(|r| present_pages(*r)).sum();
        // What ran between the release and the count is mapped again,
        // with its fault-around blocks or whole large folios of the page
        // cache; the rest is gone.
        assert!(
            mapped_after < mapped_before,
            "{mapped_after} of {mapped_before} pages still mapped after the release"
        );
        // RELRO's relocated pages (a test binary is a PIE) were kept:
        // formatting calls through vtables that live there.
        assert_eq!(format!("{:?}", Some(42)), "Some(42)");
    }
}
