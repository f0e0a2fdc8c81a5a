//! Read-only copies of berth's own executables, against CVE-2019-5736.
//!
//! Code that enters a container (the runtime's create/exec, berth-shim's
//! helpers, which embed the runtime) runs as its executable until its
//! execve. A file it runs from must not be writable through
//! /proc/PID/exe by a container process, so it runs from a copy
//! bind-mounted read-only onto itself: one slot per installed path under
//! [`CACHE_DIR`] (a tmpfs, so one copy per boot), refreshed when the file
//! at that path changes. The sidecar beside a slot names the version it
//! holds and the path it copies; slots whose path is gone are swept when a
//! new copy is made.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::StatVfsMountFlags;

/// Where the copies live.
pub const CACHE_DIR: &str = "/run/berth-runtime-exe";

/// Whether `path` is on a read-only mount (so it cannot be written through
/// any link to it).
pub fn on_read_only_mount(path: &Path) -> bool {
    rustix::fs::statvfs(path).is_ok_and(|s| s.f_flag.contains(StatVfsMountFlags::RDONLY))
}

/// The read-only copy of the executable at `source` (an absolute path),
/// made or refreshed now if the slot does not hold the file there.
pub fn read_only_copy(source: &Path) -> std::io::Result<PathBuf> {
    let meta = std::fs::metadata(source)?;
    // Which file this is: a rebuilt or upgraded one at the same path
    // replaces the slot's copy instead of adding another.
    let version = format!(
        "{} {} {} {}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime_nsec() + meta.mtime() * 1_000_000_000
    );
    let slot = slot_of(source);
    if !slot_is_current(&slot, &version) {
        refresh_slot(&slot, source, &version)?;
    }
    Ok(slot)
}

/// Removes the copy of `source`, if there is one (for a test's temporary
/// binaries; a removed install's copy is swept when another is made).
pub fn remove_copy(source: &Path) {
    remove_slot(&slot_of(source));
}

/// Every copy there is: (slot, the path it copies).
pub fn copies() -> Vec<(PathBuf, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(CACHE_DIR) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let side = entry.path();
            let slot = PathBuf::from(side.to_str()?.strip_suffix(".src")?);
            let source = std::fs::read_to_string(&side).ok()?.lines().nth(1)?.into();
            Some((slot, source))
        })
        .collect()
}

/// The slot of the executable at `source`.
fn slot_of(source: &Path) -> PathBuf {
    let name = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "exe".into());
    Path::new(CACHE_DIR).join(format!(
        "{name}-{:016x}",
        fnv1a(source.as_os_str().as_bytes())
    ))
}

/// Unmounts and deletes a slot with its sidecar and lock.
fn remove_slot(slot: &Path) {
    while on_read_only_mount(slot) {
        if rustix::mount::unmount(slot, rustix::mount::UnmountFlags::DETACH).is_err() {
            break;
        }
    }
    let _ = std::fs::remove_file(slot);
    let _ = std::fs::remove_file(beside(slot, ".lock"));
    let _ = std::fs::remove_file(sidecar(slot));
}

/// The sidecar beside a slot: the version it holds, then the path it copies.
fn sidecar(slot: &Path) -> PathBuf {
    beside(slot, ".src")
}

/// `slot` with `suffix` appended to its file name (an executable's name
/// may hold dots, so not `with_extension`).
fn beside(slot: &Path, suffix: &str) -> PathBuf {
    let mut name = slot.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn slot_is_current(slot: &Path, version: &str) -> bool {
    on_read_only_mount(slot)
        && std::fs::read_to_string(sidecar(slot)).is_ok_and(|s| s.lines().next() == Some(version))
}

/// Puts a read-only copy of `source` in `slot`, replacing an older one:
/// copy, rename into place, bind-mount read-only onto itself. A lock keeps
/// concurrent callers from stacking mounts. Processes still running the
/// old copy keep it (the old mount is only detached).
fn refresh_slot(slot: &Path, source: &Path, version: &str) -> std::io::Result<()> {
    let dir = slot.parent().expect("the cache path has a parent");
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let lock = std::fs::File::create(beside(slot, ".lock"))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
    if slot_is_current(slot, version) {
        return Ok(());
    }
    sweep_stale_slots(slot);
    while on_read_only_mount(slot) {
        rustix::mount::unmount(slot, rustix::mount::UnmountFlags::DETACH)?;
    }
    let tmp: PathBuf = dir.join(format!(".tmp-{}", std::process::id()));
    std::fs::copy(source, &tmp)?;
    drop_written_pages(&tmp);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555))?;
    std::fs::rename(&tmp, slot)?;
    std::fs::write(sidecar(slot), format!("{version}\n{}\n", source.display()))?;
    rustix::mount::mount_bind(slot, slot)?;
    rustix::mount::mount_remount(
        slot,
        rustix::mount::MountFlags::BIND | rustix::mount::MountFlags::RDONLY,
        c"",
    )?;
    if !on_read_only_mount(slot) {
        return Err(std::io::Error::other(format!(
            "{} is not read-only after remounting",
            slot.display()
        )));
    }
    Ok(())
}

/// Writes the copy out and drops it from the page cache (where `CACHE_DIR`
/// is on a disk; on a tmpfs both are no-ops). The copy's writes left it in
/// large folios, and a process maps a large folio whole when it faults on
/// any page of it: an idle shim would keep hundreds of KiB of code mapped
/// that it never runs. Read back by the processes' own faults, the file is
/// cached in pages and mapped 64 KiB around each fault. Best effort: the
/// copy is whole either way.
fn drop_written_pages(path: &Path) {
    let Ok(f) = std::fs::File::open(path) else {
        return;
    };
    if f.sync_data().is_ok() {
        let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
    }
}

/// Removes the slots (mount, copy, sidecar, lock) whose source path no
/// longer exists: a removed build or install. Best effort; the caller
/// holds its own slot's lock, so `keep` is skipped.
fn sweep_stale_slots(keep: &Path) {
    for (slot, source) in copies() {
        if slot != keep && !source.exists() {
            remove_slot(&slot);
        }
    }
}

/// FNV-1a: a stable name for a slot from the file's path.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_are_stable_per_path() {
        assert_eq!(fnv1a(b"/usr/bin/berth-shim"), fnv1a(b"/usr/bin/berth-shim"));
        assert_ne!(
            fnv1a(b"/usr/bin/berth-shim"),
            fnv1a(b"/usr/local/bin/berth-shim")
        );
    }
}
