//! Helpers for berth-image's integration tests: layer tarballs made on the
//! spot, and real overlay mounts that are undone when the test ends.
#![allow(dead_code)]

use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};

use berth_image::{Digest, Mount};

/// A layer tarball made from `files` (path, contents); directories are
/// created as needed. Returns the tar bytes and its diff id.
pub fn layer_tar(files: &[(&str, &[u8])]) -> (Vec<u8>, Digest) {
    let dir = tempfile::tempdir().unwrap();
    for (path, data) in files {
        let p = dir.path().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
    }
    let mut out = Vec::new();
    let stats = berth_archive::write_tree(dir.path(), &mut out).unwrap();
    let diff_id = Digest::parse(&stats.diff_id).unwrap();
    assert_eq!(diff_id, Digest::sha256_of(&out));
    (out, diff_id)
}

/// `data` compressed with `c`.
pub fn compress(data: &[u8], c: berth_archive::Compression) -> Vec<u8> {
    use std::io::Write;
    let mut w = berth_archive::compressor(Vec::new(), c).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

/// A mounted filesystem, unmounted (lazily) on drop, even when a test fails.
pub struct Mounted {
    pub target: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.target, rustix::mount::UnmountFlags::DETACH);
    }
}

/// Performs a mount description as the container path would: when it asks
/// for a working directory, the mount runs in a thread with its own
/// filesystem context (`unshare(CLONE_FS)`), so no other thread's working
/// directory changes.
pub fn mount(m: &Mount, target: &Path) -> std::io::Result<Mounted> {
    let m = m.clone();
    let target = target.to_owned();
    let t = target.clone();
    std::thread::spawn(move || -> std::io::Result<()> {
        if let Some(dir) = &m.chdir {
            berth_sys::process::unshare(libc::CLONE_FS)?;
            std::env::set_current_dir(dir)?;
        }
        let data = CString::new(m.data()).unwrap();
        rustix::mount::mount(
            m.source.as_str(),
            &t,
            m.fstype.as_str(),
            rustix::mount::MountFlags::empty(),
            data.as_c_str(),
        )?;
        Ok(())
    })
    .join()
    .expect("the mount thread panicked")?;
    Ok(Mounted { target })
}
