//! Architectural rules of the workspace, checked from `cargo metadata`.
//!
//! The rules come from shared/DESIGN.md:
//! 1. The process-level crates fork and clone, so they never link an async runtime.
//! 2. Only berth-api knows the Docker wire format (bollard-stubs).
//! 3. berth-daemon never links berth-container: containers outlive the daemon
//!    because the daemon can only reach them through the shim protocol.
//! 4. The CLI depends on berth-api and berth-client, never on the engine
//!    (berth-archive too: `cp` out of a container unpacks an untrusted tar).
//! 5. berth-build (the Dockerfile parser) is a pure library: no other berth
//!    crate and no async runtime, so the daemon's builder, the CLI or a
//!    linter can use it without the engine.
//!
//! Also: every crate under crates/ is named in ARCHITECTURE.md's code map.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::Value;

/// Crates that must stay synchronous.
const SYNC_CRATES: &[&str] = &[
    "berth-sys",
    "berth-cgroups",
    "berth-seccomp",
    "berth-container",
    "berth-runtime",
    "berth-shim",
    "berth-net",
    "berth-dns",
    "berth-build",
];
/// Packages that mean "an async runtime is linked".
const ASYNC_RUNTIMES: &[&str] = &["tokio", "async-std", "smol", "async-executor"];
/// Berth crates the CLI may depend on: the API and its client, and leaf
/// crates that hold no engine state (berth-credentials reads and writes
/// the user's own `~/.docker/config.json` for `login`/`logout`).
const CLI_ALLOWED: &[&str] = &[
    "berth-api",
    "berth-client",
    "berth-errdefs",
    "berth-archive",
    "berth-credentials",
];

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Package name -> the names it depends on (normal and build dependencies).
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The normal (non-dev) dependency graph of the workspace, and its members.
fn dependency_graph(root: &Path) -> Result<(Graph, BTreeSet<String>)> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .output()
        .context("running cargo metadata")?;
    anyhow::ensure!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout)?;
    let mut names_by_id = BTreeMap::new();
    for p in meta["packages"].as_array().context("packages")? {
        names_by_id.insert(
            p["id"].as_str().unwrap_or_default().to_string(),
            p["name"].as_str().unwrap_or_default().to_string(),
        );
    }
    let members: BTreeSet<String> = meta["workspace_members"]
        .as_array()
        .context("workspace_members")?
        .iter()
        .filter_map(|id| names_by_id.get(id.as_str()?).cloned())
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().context("resolve")? {
        let name = names_by_id[node["id"].as_str().unwrap_or_default()].clone();
        let deps = graph.entry(name).or_default();
        for dep in node["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null() || k["kind"] == "build");
            if normal {
                if let Some(n) = names_by_id.get(dep["pkg"].as_str().unwrap_or_default()) {
                    deps.insert(n.clone());
                }
            }
        }
    }
    Ok((graph, members))
}

fn transitive(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![start.to_string()];
    while let Some(n) = stack.pop() {
        for d in graph.get(&n).into_iter().flatten() {
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    seen
}

/// Every violated rule, as a sentence; empty when the workspace is tidy.
pub fn check(root: &Path) -> Result<Vec<String>> {
    let (graph, members) = dependency_graph(root)?;
    let mut problems = check_graph(&graph, &members, &read_code_map(root));
    problems.extend(unsafe_outside_berth_sys(root)?);
    Ok(problems)
}

/// berth-sys holds all of berth's unsafe code; every other crate root must
/// say `#![forbid(unsafe_code)]` so the compiler keeps it that way.
fn unsafe_outside_berth_sys(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for dir in ["crates", "bins", "tests"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries {
            let krate = entry?.path();
            if krate.file_name().is_some_and(|n| n == "berth-sys") {
                continue;
            }
            for file in ["src/lib.rs", "src/main.rs"] {
                let path = krate.join(file);
                if let Ok(text) = std::fs::read_to_string(&path) {
                    if !text.contains("#![forbid(unsafe_code)]") {
                        problems.push(format!(
                            "{} lacks #![forbid(unsafe_code)]; unsafe code belongs in berth-sys",
                            path.strip_prefix(root).unwrap_or(&path).display()
                        ));
                    }
                }
            }
        }
    }
    Ok(problems)
}

fn read_code_map(root: &Path) -> String {
    std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap_or_default()
}

fn check_graph(
    graph: &BTreeMap<String, BTreeSet<String>>,
    members: &BTreeSet<String>,
    code_map: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    for krate in SYNC_CRATES.iter().filter(|c| members.contains(**c)) {
        let deps = transitive(graph, krate);
        for rt in ASYNC_RUNTIMES.iter().filter(|rt| deps.contains(**rt)) {
            problems.push(format!("{krate} must stay synchronous but links {rt}"));
        }
    }
    for krate in members.iter().filter(|m| m.as_str() != "berth-api") {
        if graph
            .get(krate)
            .is_some_and(|d| d.contains("bollard-stubs"))
        {
            problems.push(format!(
                "{krate} depends on bollard-stubs; only berth-api may know the Docker wire format"
            ));
        }
    }
    if members.contains("berth-daemon")
        && transitive(graph, "berth-daemon").contains("berth-container")
    {
        problems.push("berth-daemon links berth-container; it must reach containers only through the shim protocol".into());
    }
    if members.contains("berth-build") {
        for dep in transitive(graph, "berth-build") {
            if dep.starts_with("berth-") {
                problems.push(format!(
                    "berth-build depends on {dep}; the Dockerfile parser must stay free of berth crates"
                ));
            }
        }
    }
    if members.contains("berth") {
        for dep in graph.get("berth").into_iter().flatten() {
            if dep.starts_with("berth-") && !CLI_ALLOWED.contains(&dep.as_str()) {
                problems.push(format!(
                    "the berth CLI depends on {dep}; it may use only {CLI_ALLOWED:?}"
                ));
            }
        }
    }
    for krate in members.iter().filter(|m| m.starts_with("berth")) {
        if !code_map.contains(&format!("`{krate}`")) {
            problems.push(format!(
                "{krate} is missing from ARCHITECTURE.md's code map (write it as `{krate}`)"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    }

    fn members(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_workspace_is_tidy() {
        let problems = check(&workspace_root()).unwrap();
        assert!(
            problems.is_empty(),
            "tidy problems:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn an_async_runtime_under_the_runtime_is_caught() {
        let g = graph(&[("berth-container", "helper"), ("helper", "tokio")]);
        let p = check_graph(&g, &members(&["berth-container"]), "`berth-container`");
        assert_eq!(
            p,
            vec!["berth-container must stay synchronous but links tokio"]
        );
    }

    #[test]
    fn the_daemon_linking_the_container_library_is_caught() {
        let g = graph(&[
            ("berth-daemon", "berth-shim-proto"),
            ("berth-shim-proto", "berth-container"),
        ]);
        let p = check_graph(&g, &members(&["berth-daemon"]), "`berth-daemon`");
        assert_eq!(p.len(), 1, "{p:?}");
    }

    #[test]
    fn wire_types_outside_the_api_crate_are_caught() {
        let g = graph(&[
            ("berth-image", "bollard-stubs"),
            ("berth-api", "bollard-stubs"),
        ]);
        let p = check_graph(
            &g,
            &members(&["berth-image", "berth-api"]),
            "`berth-image` `berth-api`",
        );
        assert_eq!(p.len(), 1, "{p:?}");
    }

    #[test]
    fn the_cli_reaching_into_the_engine_is_caught() {
        let g = graph(&[("berth", "berth-api"), ("berth", "berth-image")]);
        let p = check_graph(&g, &members(&["berth"]), "`berth`");
        assert_eq!(p.len(), 1, "{p:?}");
    }

    #[test]
    fn the_parser_reaching_into_berth_is_caught() {
        let g = graph(&[
            ("berth-build", "serde_json"),
            ("berth-build", "berth-image"),
        ]);
        let p = check_graph(&g, &members(&["berth-build"]), "`berth-build`");
        assert_eq!(
            p,
            vec!["berth-build depends on berth-image; the Dockerfile parser must stay free of berth crates"]
        );
    }

    #[test]
    fn a_crate_missing_from_the_code_map_is_caught() {
        let g = graph(&[]);
        let p = check_graph(&g, &members(&["berth-net"]), "nothing here");
        assert_eq!(p.len(), 1, "{p:?}");
    }
}
