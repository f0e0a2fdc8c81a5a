//! `cp` (tar streams both ways, host files into a container; out of a
//! container in `cpfrom`), `update`,
//! and the prune commands.

use std::io::{BufRead, IsTerminal, Write};

use berth_client::query::escape_path;
use berth_client::{Body, Query};
use clap::Args;
use serde_json::{json, Map, Value};

use crate::run::ram_in_bytes;
use crate::system::filters_json;
use crate::units::human_size;
use crate::{Ctx, StatusError};

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output during copy (only shown on a terminal)
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH, - or a host path
    pub src: String,
    /// CONTAINER:DEST_PATH, - or a host path
    pub dest: String,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[arg(long)]
    pub cpus: Option<f64>,
    #[arg(short, long)]
    pub cpu_shares: Option<i64>,
    #[arg(long, default_value = "")]
    pub cpuset_cpus: String,
    #[arg(short, long)]
    pub memory: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    #[arg(long, default_value = "")]
    pub restart: String,
    #[command(flatten)]
    pub limits: crate::hostflags::LimitOpts,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. 'until=<timestamp>')
    #[arg(long, action = crate::cli::many())]
    pub filter: Vec<String>,
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Prune volumes (system prune)
    #[arg(long)]
    pub volumes: bool,
}

/// `CONTAINER:PATH` -> (container, path); host paths and `-` have no container.
fn split_spec(s: &str) -> (Option<&str>, &str) {
    if s.starts_with('/') || s.starts_with('.') || s == "-" {
        return (None, s);
    }
    match s.split_once(':') {
        Some((c, p)) if !c.is_empty() && !c.contains('/') => (Some(c), p),
        _ => (None, s),
    }
}

pub fn cp(ctx: &Ctx, a: CpArgs) -> anyhow::Result<()> {
    let usage = |m: &str| -> anyhow::Error {
        StatusError {
            code: 1,
            msg: m.to_string(),
        }
        .into()
    };
    match (split_spec(&a.src), split_spec(&a.dest)) {
        ((Some(c), path), (None, "-")) => {
            if std::io::stdout().is_terminal() {
                return Err(usage(
                    "cowardly refusing to write a tar archive to a terminal",
                ));
            }
            // -L: the link's target, under its own name (docker rebases
            // only what it unpacks itself).
            let path = if a.follow_link {
                crate::cpfrom::follow_symlink(ctx, c, path)?.0
            } else {
                path.to_string()
            };
            let q = Query::new().push("path", &path);
            let p = format!("/containers/{}/archive{}", escape_path(c), q.encode());
            let resp = ctx.client.request("GET", &p, &[], Body::Empty)?;
            ctx.client.copy_body(&p, resp, &mut ctx.out())?;
            Ok(())
        }
        ((None, "-"), (Some(c), path)) => {
            put_archive(ctx, c, path, &mut std::io::stdin().lock(), a.archive)
        }
        ((None, host), (Some(c), path)) => {
            // The host path goes in as one tar entry (a file or a tree)
            // named after its last component, as docker does.
            let src = std::path::Path::new(host);
            let name = src
                .file_name()
                .ok_or_else(|| usage("cannot copy a path without a final component"))?;
            let meta =
                std::fs::symlink_metadata(src).map_err(|e| usage(&format!("{host}: {e}")))?;
            let mut b = tar::Builder::new(Vec::new());
            b.follow_symlinks(a.follow_link);
            if meta.is_dir() {
                b.append_dir_all(name, src)?;
            } else {
                b.append_path_with_name(src, name)?;
            }
            let data = b.into_inner()?;
            put_archive(ctx, c, path, &mut &data[..], a.archive)
        }
        ((Some(c), path), (None, host)) => {
            crate::cpfrom::copy_from_container(ctx, c, path, host, a.follow_link, a.quiet)
        }
        ((Some(_), _), (Some(_), _)) => Err(usage("copying between containers is not supported")),
        ((None, _), (None, _)) => Err(usage("must specify at least one container source")),
    }
}

fn put_archive(
    ctx: &Ctx,
    c: &str,
    path: &str,
    r: &mut dyn std::io::Read,
    archive: bool,
) -> anyhow::Result<()> {
    let q = Query::new().push("path", path).flag("copyUIDGID", archive);
    ctx.client.request(
        "PUT",
        &format!("/containers/{}/archive{}", escape_path(c), q.encode()),
        &[],
        Body::Stream {
            content_type: "application/x-tar",
            reader: r,
        },
    )?;
    Ok(())
}

pub fn update(ctx: &Ctx, a: UpdateArgs) -> anyhow::Result<()> {
    let mut body = Map::new();
    if let Some(c) = a.cpus {
        body.insert("NanoCpus".into(), ((c * 1e9) as i64).into());
    }
    if let Some(c) = a.cpu_shares {
        body.insert("CpuShares".into(), c.into());
    }
    if !a.cpuset_cpus.is_empty() {
        body.insert("CpusetCpus".into(), a.cpuset_cpus.clone().into());
    }
    if let Some(m) = &a.memory {
        body.insert("Memory".into(), ram_in_bytes(m)?.into());
    }
    if let Some(m) = &a.memory_swap {
        let v = if m == "-1" { -1 } else { ram_in_bytes(m)? };
        body.insert("MemorySwap".into(), v.into());
    }
    if let Some(p) = a.pids_limit {
        body.insert("PidsLimit".into(), p.into());
    }
    a.limits.apply(&mut body)?;
    if !a.restart.is_empty() {
        let (name, n) = a.restart.split_once(':').unwrap_or((&a.restart, "0"));
        body.insert(
            "RestartPolicy".into(),
            json!({"Name": if name == "no" { "" } else { name }, "MaximumRetryCount": n.parse::<i64>().unwrap_or(0)}),
        );
    }
    let body = Value::Object(body);
    let mut failed = Vec::new();
    let mut warnings = Vec::new();
    let mut out = ctx.out();
    for c in &a.containers {
        match ctx.client.post_json(
            &format!("/containers/{}/update", escape_path(c)),
            Some(&body),
        ) {
            Ok(v) => {
                writeln!(out, "{c}")?;
                warnings.extend(
                    v["Warnings"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|w| w.as_str().unwrap_or("").to_string()),
                );
            }
            Err(e) => failed.push(e.to_string()),
        }
    }
    // As docker: the daemon's warnings after the names, on stdout.
    for w in warnings {
        writeln!(out, "{w}")?;
    }
    drop(out);
    crate::images::fail_all(failed)
}

/// docker's prompt; anything but y/Y is no.
pub(crate) fn confirm(warning: &str) -> anyhow::Result<bool> {
    ask(&format!("{warning}\nAre you sure you want to continue?"))
}

/// `question [y/N] ` on stderr; true for y or Y.
fn ask(question: &str) -> anyhow::Result<bool> {
    let mut err = std::io::stderr();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y"))
}

/// Which prune: the endpoint, docker's warning, and the answer's list key.
pub enum Prune {
    Containers,
    Images,
    System,
}

/// `filters` (`key=value` flags) as a prune's query; none when empty.
pub(crate) fn filters_query(filters: &[String]) -> anyhow::Result<Query> {
    Ok(if filters.is_empty() {
        Query::new()
    } else {
        Query::new().push("filters", filters_json(filters)?)
    })
}

/// `POST /<what>/prune`: prints docker's section for the answer's `key`
/// list ("<title>:", one entry a line, a blank line; nothing when the list
/// is empty) and returns the space reclaimed.
pub(crate) fn post_prune(
    ctx: &Ctx,
    what: &str,
    q: Query,
    (key, title): (&str, &str),
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let r = ctx
        .client
        .post_json(&format!("/{what}/prune{}", q.encode()), None)?;
    let deleted: Vec<&str> = r[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !deleted.is_empty() {
        writeln!(out, "{title}:")?;
        for d in deleted {
            writeln!(out, "{d}")?;
        }
        writeln!(out)?;
    }
    Ok(r["SpaceReclaimed"].as_u64().unwrap_or(0))
}

/// `POST /images/prune` and docker's "Deleted Images:" section (untagged
/// and deleted lines).
fn prune_images(ctx: &Ctx, filters: &[String], out: &mut dyn Write) -> anyhow::Result<u64> {
    let q = filters_query(filters)?;
    let r = ctx
        .client
        .post_json(&format!("/images/prune{}", q.encode()), None)?;
    let items = r["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if !items.is_empty() {
        writeln!(out, "Deleted Images:")?;
        for it in items {
            if let Some(u) = it["Untagged"].as_str() {
                writeln!(out, "untagged: {u}")?;
            }
            if let Some(d) = it["Deleted"].as_str() {
                writeln!(out, "deleted: {d}")?;
            }
        }
        writeln!(out)?;
    }
    Ok(r["SpaceReclaimed"].as_u64().unwrap_or(0))
}

pub fn prune(ctx: &Ctx, kind: Prune, a: PruneArgs) -> anyhow::Result<()> {
    let warning = match kind {
        Prune::Containers => "WARNING! This will remove all stopped containers.".to_string(),
        Prune::Images if a.all => "WARNING! This will remove all images without at least one container associated to them.".into(),
        Prune::Images => "WARNING! This will remove all dangling images.".into(),
        // docker's list and order (what it prunes, in that order).
        Prune::System => {
            let volumes = if a.volumes {
                "  - all volumes not used by at least one container\n"
            } else {
                ""
            };
            let images = if a.all {
                "  - all images without at least one container associated to them\n  - all build cache\n"
            } else {
                "  - all dangling images\n  - all dangling build cache\n"
            };
            format!("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n{volumes}{images}")
        }
    };
    if !a.force && !confirm(&warning)? {
        return Ok(());
    }
    let mut out = ctx.out();
    let mut total = 0;
    if matches!(kind, Prune::Containers | Prune::System) {
        let q = filters_query(&a.filter)?;
        let section = ("ContainersDeleted", "Deleted Containers");
        total += post_prune(ctx, "containers", q, section, &mut out)?;
    }
    if matches!(kind, Prune::System) {
        crate::network::prune_networks(ctx, &a.filter, &mut out)?;
        if a.volumes {
            total += crate::volumes::prune_volumes(ctx, &a.filter, &mut out)?;
        }
    }
    if matches!(kind, Prune::Images | Prune::System) {
        let mut filters = a.filter.clone();
        filters.push(format!("dangling={}", !a.all));
        total += prune_images(ctx, &filters, &mut out)?;
    }
    if matches!(kind, Prune::System) {
        total += prune_build_cache(ctx, a.all, &a.filter, None, &mut out)?;
    }
    writeln!(out, "Total reclaimed space: {}", human_size(total as f64))?;
    Ok(())
}

/// `builder prune`'s flags.
#[derive(Args, Debug)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. 'until=24h')
    #[arg(long, action = crate::cli::many())]
    pub filter: Vec<String>,
    /// Amount of disk space to keep for cache
    #[arg(long)]
    pub keep_storage: Option<String>,
}

/// `builder prune`: docker's prompt (on one line) and report.
pub fn builder_prune(ctx: &Ctx, a: BuilderPruneArgs) -> anyhow::Result<()> {
    let what = if a.all { "all" } else { "all dangling" };
    let question =
        format!("WARNING! This will remove {what} build cache. Are you sure you want to continue?");
    if !a.force && !ask(&question)? {
        return Ok(());
    }
    let keep = a.keep_storage.as_deref().map(ram_in_bytes).transpose()?;
    let mut out = ctx.out();
    let total = prune_build_cache(ctx, a.all, &a.filter, keep, &mut out)?;
    writeln!(out, "Total reclaimed space: {}", human_size(total as f64))?;
    Ok(())
}

/// `POST /build/prune` and docker's "Deleted build cache objects:" section.
fn prune_build_cache(
    ctx: &Ctx,
    all: bool,
    filters: &[String],
    keep_storage: Option<i64>,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut q = filters_query(filters)?;
    if all {
        q = q.push("all", "1");
    }
    if let Some(bytes) = keep_storage {
        q = q.push("keep-storage", bytes.to_string());
    }
    let section = ("CachesDeleted", "Deleted build cache objects");
    post_prune(ctx, "build", q, section, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_specs() {
        assert_eq!(split_spec("web:/etc/hosts"), (Some("web"), "/etc/hosts"));
        assert_eq!(split_spec("-"), (None, "-"));
        assert_eq!(split_spec("./a:b"), (None, "./a:b"));
        assert_eq!(split_spec("/tmp/x"), (None, "/tmp/x"));
        assert_eq!(split_spec("dir/file"), (None, "dir/file"));
    }
}
