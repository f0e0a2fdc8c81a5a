//! The leak check every integration test ends with: nothing of the test's
//! container may remain on the host.

use std::path::{Path, PathBuf};

/// What a test's containers could leave behind.
#[derive(Debug, Clone)]
pub struct LeakScope {
    /// Container ids the test used.
    pub ids: Vec<String>,
    /// The runtime state root of the test.
    pub state_root: PathBuf,
    /// Paths no mount may reference any more (bundles, rootfs copies).
    pub paths: Vec<PathBuf>,
    /// A marker put into every container process's environment.
    pub env_marker: String,
}

/// Every leak found, as sentences; empty when the host is clean.
pub fn find_leaks(scope: &LeakScope) -> Vec<String> {
    let mut leaks = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&scope.state_root) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                leaks.push(format!("state directory {:?} remains", e.path()));
            }
        }
    }
    for id in &scope.ids {
        for dir in cgroup_dirs_named(id) {
            leaks.push(format!("cgroup {dir:?} remains"));
        }
    }
    if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
        for line in info.lines() {
            let Some(mp) = line.split(' ').nth(4) else {
                continue;
            };
            if scope.paths.iter().any(|p| Path::new(mp).starts_with(p)) {
                leaks.push(format!("mount {mp} remains"));
            }
        }
    }
    for copy in runtime_copies_from(&scope.paths) {
        leaks.push(format!(
            "read-only runtime copy {} (of a binary under the test's dir) remains",
            copy.display()
        ));
    }
    for pid in processes_with_env(&scope.env_marker) {
        leaks.push(format!("process {pid} ({}) remains", comm(pid)));
    }
    leaks
}

/// Directories named `name` anywhere under the cgroup hierarchies (two levels deep at most).
fn cgroup_dirs_named(name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return out;
    };
    for h in hierarchies.flatten() {
        let direct = h.path().join(name);
        if direct.is_dir() {
            out.push(direct);
        }
        if let Ok(parents) = std::fs::read_dir(h.path()) {
            for p in parents.flatten() {
                let nested = p.path().join(name);
                if p.path().is_dir() && nested.is_dir() {
                    out.push(nested);
                }
            }
        }
    }
    out
}

/// Pids whose environment holds exactly `marker` (a `KEY=VALUE` entry).
pub fn processes_with_env(marker: &str) -> Vec<i32> {
    processes_where("environ", |env| {
        env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes())
    })
}

/// Pids for which `matches` holds on the content of /proc/<pid>/<file>.
pub fn processes_where(file: &str, matches: impl Fn(&[u8]) -> bool) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read(p.path().join(file)).is_ok_and(|content| matches(&content)) {
            out.push(pid);
        }
    }
    out
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Read-only copies of berth's executables (berth_sys::exe_copy) made from
/// a binary that lies under `paths` (a test that runs a copy of
/// berth-runtime or berth-shim gets one of these).
pub fn runtime_copies_from(paths: &[PathBuf]) -> Vec<PathBuf> {
    copies_made_from(paths).map(|(slot, _)| slot).collect()
}

/// Removes those copies: unmounts each slot and deletes its files.
pub fn remove_runtime_copies_from(paths: &[PathBuf]) {
    for (_, source) in copies_made_from(paths) {
        berth_sys::exe_copy::remove_copy(&source);
    }
}

/// (slot, source) of each copy whose source lies under `paths`.
fn copies_made_from(paths: &[PathBuf]) -> impl Iterator<Item = (PathBuf, PathBuf)> + '_ {
    berth_sys::exe_copy::copies()
        .into_iter()
        .filter(|(_, source)| paths.iter().any(|p| source.starts_with(p)))
}
