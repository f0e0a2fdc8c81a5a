//! testcontainers-node (on dockerode, a client of its own, unlike docker-py
//! and the docker CLI) driving berthd unchanged: published ports and the
//! wait strategies (port, log, healthcheck, HTTP), exec, files copied both
//! ways, restart, user networks with aliases, host networking, a Dockerfile
//! build, create options, privileged mode, commit and reuse; and dockerode
//! itself: hijacked attach and exec with stdin, resize. The scenario
//! is `clients/testcontainers-node.mjs`; this test installs the client
//! (pinned, from npm, cached) and runs it against a berthd of its own.
//! Ryuk, testcontainers' reaper, is turned off: its image comes from
//! Docker Hub, which cannot be reached here; the scenario removes what it
//! made and checks that no container is left, and `Berthd::stop` checks
//! the host.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_integration::daemon::{has_docker, Berthd};
use berth_integration::peers::ensure_installed;
use berth_integration::{require_root, text};

const PACKAGE: &str = "testcontainers@10.28.0";
const SCENARIO: &str = include_str!("../clients/testcontainers-node.mjs");

/// The steps the scenario reports, in order: a run that stops early (node
/// exits 0 when only unreferenced sockets are left) fails on the count.
const STEPS: usize = 11;

/// `PACKAGE` installed under /var/cache (once; npm's registry is reachable
/// here), or why not.
fn installed_client() -> Result<PathBuf, String> {
    ensure_installed("/usr/bin/node", "nodejs")?;
    ensure_installed("/usr/bin/npm", "npm")?;
    let cache = Path::new("/var/cache/berth-tests");
    let dir = cache.join(PACKAGE.replace('@', "-"));
    if dir
        .join("node_modules/testcontainers/package.json")
        .exists()
    {
        return Ok(dir);
    }
    std::fs::create_dir_all(cache).map_err(|e| format!("creating {}: {e}", cache.display()))?;
    let tmp = tempfile::tempdir_in(cache).map_err(|e| format!("a temp dir: {e}"))?;
    let out = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--prefix",
        ])
        .arg(tmp.path())
        .arg(PACKAGE)
        .output()
        .map_err(|e| format!("running npm: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "npm install {PACKAGE} failed: {}",
            text(&out.stderr)
        ));
    }
    // Whole or not at all: a half install is never found as done.
    match std::fs::rename(tmp.keep(), &dir) {
        Ok(()) => Ok(dir),
        Err(_)
            if dir
                .join("node_modules/testcontainers/package.json")
                .exists() =>
        {
            Ok(dir)
        }
        Err(e) => Err(format!("moving the install to {}: {e}", dir.display())),
    }
}

#[test]
fn testcontainers_node_drives_berthd() {
    if !require_root() || !has_docker() {
        return;
    }
    let client = match installed_client() {
        Ok(dir) => dir,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let d = Berthd::with_busybox(&[]);
    // Node resolves the import from the script's own directory.
    let script = tempfile::Builder::new()
        .suffix(".mjs")
        .tempfile_in(&client)
        .expect("the scenario's file");
    std::fs::write(script.path(), SCENARIO).expect("writing the scenario");
    let scratch = tempfile::tempdir().expect("scratch dir");
    let out = d.sh_ok(&format!(
        "cd {} && TMPDIR={} IMAGE=bb:1 TESTCONTAINERS_RYUK_DISABLED=true node {} 2>&1",
        client.display(),
        scratch.path().display(),
        script.path().display()
    ));
    let passed = out.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(
        passed == STEPS && !out.contains("FAIL"),
        "{passed} of {STEPS} steps passed:\n{out}"
    );
    d.stop();
}
