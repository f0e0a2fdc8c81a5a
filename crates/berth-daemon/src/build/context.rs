//! The build context: the request's tar unpacked into a private directory
//! (berth-archive confines every entry to it and bounds sizes), the
//! Dockerfile read from it, and `.dockerignore`'s paths removed.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::BuildError;

/// An unpacked context; removed when dropped.
pub(crate) struct Context {
    pub dir: PathBuf,
    /// The directory holding `dir` and the builds' staging dirs.
    pub work: PathBuf,
}

impl Drop for Context {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.work) {
            tracing::warn!(dir = %self.work.display(), error = %e, "removing a build's work dir");
        }
    }
}

/// Where builds unpack their contexts; swept at start-up, since a build a
/// daemon kill interrupted leaves its directory behind.
pub(crate) fn builds_dir(data_root: &Path) -> PathBuf {
    data_root.join("builds")
}

impl Context {
    /// Unpacks `input` (a tar, plain or compressed) under `data_root`.
    pub fn unpack(data_root: &Path, input: impl Read, limit: u64) -> Result<Context, BuildError> {
        let parent = builds_dir(data_root);
        std::fs::create_dir_all(&parent)
            .map_err(|e| BuildError::new(format!("creating {}: {e}", parent.display())))?;
        let work = parent.join(&crate::containers::names::new_id()[..16]);
        let dir = work.join("context");
        std::fs::create_dir_all(&dir)
            .map_err(|e| BuildError::new(format!("creating {}: {e}", dir.display())))?;
        let ctx = Context { dir, work };
        let (_, plain) = berth_archive::auto_decompressor(input.take(limit))
            .map_err(|e| BuildError::new(format!("reading the build context: {e}")))?;
        let opts = berth_archive::ApplyOptions {
            whiteouts: false,
            max_total_size: limit,
            ..Default::default()
        };
        berth_archive::apply_layer(plain, &ctx.dir, &opts).map_err(|e| {
            BuildError::new(format!("the build context is not a valid tar archive: {e}"))
        })?;
        Ok(ctx)
    }

    /// Reads the Dockerfile named `name` (relative to the context root).
    pub fn dockerfile(&self, name: &str) -> Result<String, BuildError> {
        let path = self.resolve(name);
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|_| BuildError::new(format!("Cannot locate specified Dockerfile: {name}")))?;
        if !meta.is_file() {
            return Err(BuildError::new(format!(
                "Cannot locate specified Dockerfile: {name} (not a regular file)"
            )));
        }
        if meta.len() > 16 << 20 {
            return Err(BuildError::new(format!(
                "the Dockerfile {name} is larger than 16 MiB"
            )));
        }
        std::fs::read_to_string(&path)
            .map_err(|e| BuildError::new(format!("reading the Dockerfile {name}: {e}")))
    }

    /// Removes what `.dockerignore` names (after the Dockerfile was read:
    /// docker lets a build ignore its own Dockerfile).
    pub fn apply_dockerignore(&self) -> Result<(), BuildError> {
        let path = self.dir.join(".dockerignore");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        let ignore = berth_build::Ignore::parse(&text);
        remove_ignored(&self.dir, "", &ignore)
            .map(|_| ())
            .map_err(|e| BuildError::new(format!("applying .dockerignore: {e}")))
    }

    /// `rel` (a path in the context, as written in the Dockerfile) as a
    /// path under the context dir: cleaned lexically, `..` stopping at the
    /// root as docker's does. Symlinks are never followed by the callers
    /// (they copy links as links), so nothing outside can be reached.
    pub fn resolve(&self, rel: &str) -> PathBuf {
        let mut out = self.dir.clone();
        let mut depth = 0;
        for c in Path::new(rel).components() {
            match c {
                Component::Normal(n) => {
                    out.push(n);
                    depth += 1;
                }
                Component::ParentDir if depth > 0 => {
                    out.pop();
                    depth -= 1;
                }
                _ => {}
            }
        }
        out
    }
}

/// Removes the entries `ignore` excludes under `dir` (`rel` its path in
/// the context); a directory is kept when something under it is
/// re-included.
fn remove_ignored(dir: &Path, rel: &str, ignore: &berth_build::Ignore) -> std::io::Result<bool> {
    let mut kept_any = false;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{rel}{name}");
        let is_dir = entry.file_type()?.is_dir();
        let excluded = ignore.excludes(&path);
        if is_dir {
            let kept_inside = remove_ignored(&entry.path(), &format!("{path}/"), ignore)?;
            if excluded && !kept_inside {
                std::fs::remove_dir_all(entry.path())?;
                continue;
            }
        } else if excluded {
            std::fs::remove_file(entry.path())?;
            continue;
        }
        kept_any = true;
    }
    Ok(kept_any)
}
