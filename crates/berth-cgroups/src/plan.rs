//! A validated list of cgroup file writes.
//!
//! `apply` first turns the whole `LinuxResources` into a plan, checking every
//! value and every file it needs (reads only), and writes nothing until the
//! plan is complete. An invalid value therefore leaves the cgroup as it was;
//! only the kernel refusing a value mid-way (a limit below current usage)
//! can leave earlier writes applied, and that error names the field.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::fsutil;
use crate::v2::device_prog::DeviceProgram;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    /// The spec field this write comes from, e.g. "linux.resources.memory.limit".
    pub field: String,
    pub path: PathBuf,
    pub value: String,
}

#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub writes: Vec<Write>,
    /// cgroup v2 device control, installed after the writes.
    pub devices: Option<DeviceProgram>,
}

impl Plan {
    pub(crate) fn push(
        &mut self,
        field: impl Into<String>,
        dir: &Path,
        file: &str,
        value: impl Into<String>,
    ) {
        self.writes.push(Write {
            field: field.into(),
            path: dir.join(file),
            value: value.into(),
        });
    }

    pub(crate) fn execute(&self) -> Result<(), Error> {
        for w in &self.writes {
            fsutil::write(&w.path, &w.value).map_err(|source| Error::Write {
                hint: hint(&w.path, &source),
                field: w.field.clone(),
                path: w.path.clone(),
                value: w.value.clone(),
                source,
            })?;
        }
        if let Some(d) = &self.devices {
            d.install()?;
        }
        Ok(())
    }
}

/// What the user can do about a refused write.
fn hint(path: &Path, err: &std::io::Error) -> String {
    let file = path
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    let errno = err.raw_os_error();
    let is = |e: rustix::io::Errno| errno == Some(e.raw_os_error());
    if is(rustix::io::Errno::BUSY) && file.starts_with("memory.") {
        " (the cgroup already uses more memory than the new limit)".into()
    } else if is(rustix::io::Errno::NOENT) {
        " (this kernel does not provide that file)".into()
    } else if is(rustix::io::Errno::INVAL) && file.starts_with("cpu.rt_") {
        " (the parent cgroup has no real-time budget left; raise its cpu.rt_runtime_us)".into()
    } else if is(rustix::io::Errno::INVAL) {
        " (the kernel rejected the value: out of range, or in conflict with a parent cgroup's setting)".into()
    } else if is(rustix::io::Errno::PERM) || is(rustix::io::Errno::ACCESS) {
        " (not permitted: a parent cgroup may restrict it)".into()
    } else {
        String::new()
    }
}
