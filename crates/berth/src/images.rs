//! Image commands: `images`, `pull`, `push`, `tag`, `rmi`, `save`, `load`,
//! `import`, `history`.

use std::io::{IsTerminal, Write};

use berth_client::query::escape_path;
use berth_client::{Body, Query};
use clap::Args;
use serde_json::{json, Value};

use crate::output::Format;
use crate::system::filters_json;
use crate::units::{ago, human_size};
use crate::Ctx;

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short, long, action = crate::cli::many())]
    pub filter: Vec<String>,
    /// Pretty-print images using a Go template
    #[arg(long, default_value = "")]
    pub format: String,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Repository (and tag) to list
    pub repository: Option<String>,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, default_value = "")]
    pub platform: String,
    /// Skip image verification (the default; content trust is not
    /// supported, so =false is refused)
    #[arg(long, default_value_t = true, default_missing_value = "true", num_args = 0..=1, require_equals = true, action = clap::ArgAction::Set)]
    pub disable_content_trust: bool,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tagged images in the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Skip image verification (the default; content trust is not
    /// supported, so =false is refused)
    #[arg(long, default_value_t = true, default_missing_value = "true", num_args = 0..=1, require_equals = true, action = clap::ArgAction::Set)]
    pub disable_content_trust: bool,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long, action = crate::cli::many())]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long, default_value = "")]
    pub message: String,
    /// Set platform if server is multi-platform capable
    #[arg(long, default_value = "")]
    pub platform: String,
    /// file|URL|- to import
    pub source: String,
    pub repository: Option<String>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format (docker's -H is
    /// berth's global -H/--host: write --human=false)
    #[arg(long, default_value_t = true, default_missing_value = "true", num_args = 0..=1, require_equals = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, default_value = "")]
    pub format: String,
    pub image: String,
}

/// `sha256:abc...` -> `abc...` (12 characters unless `no_trunc`).
pub fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        return id.to_string();
    }
    let hex = id.split_once(':').map(|(_, h)| h).unwrap_or(id);
    hex.chars().take(12).collect()
}

/// The familiar repository name: `docker.io/library/busybox` -> `busybox`.
pub(crate) fn familiar(repo: &str) -> String {
    let r = repo.strip_prefix("docker.io/").unwrap_or(repo);
    r.strip_prefix("library/").unwrap_or(r).to_string()
}

/// `name:tag` split at the last colon after the last slash.
pub fn split_tag(r: &str) -> (&str, &str) {
    let r = r.split('@').next().unwrap_or(r);
    match r.rfind(':') {
        Some(i) if !r[i..].contains('/') => (&r[..i], &r[i + 1..]),
        _ => (r, ""),
    }
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The rows docker's image formatter produces for one image: one per
/// repository:tag (times its digests with `--digests`), then digest-only
/// references, or one `<none>` row for a dangling image.
fn image_rows(img: &Value, digests: bool, no_trunc: bool) -> Vec<Value> {
    let tags = strs(&img["RepoTags"]);
    let dgsts = strs(&img["RepoDigests"]);
    let id = img["Id"].as_str().unwrap_or("");
    let created = img["Created"].as_f64().unwrap_or(0.0);
    let size = img["Size"].as_f64().unwrap_or(0.0);
    let row = |repo: &str, tag: &str, digest: &str| {
        json!({
            "Repository": repo,
            "Tag": tag,
            "Digest": digest,
            "ID": short_id(id, no_trunc),
            "CreatedSince": ago(created),
            "CreatedAt": crate::units::go_time_string(created),
            "Size": human_size(size),
            // docker: HumanSize (4 digits) here, 3 digits for Size.
            "VirtualSize": crate::units::human_size_prec(size, 4),
            "SharedSize": "N/A",
            "UniqueSize": "N/A",
            "Containers": "N/A",
        })
    };
    let dangling = (tags.is_empty() || tags == ["<none>:<none>"])
        && (dgsts.is_empty() || dgsts == ["<none>@<none>"]);
    if dangling {
        return vec![row("<none>", "<none>", "<none>")];
    }
    let mut repo_tags: Vec<(String, Vec<String>)> = Vec::new();
    for t in &tags {
        let (r, tag) = split_tag(t);
        let r = familiar(r);
        match repo_tags.iter_mut().find(|(x, _)| *x == r) {
            Some((_, v)) => v.push(tag.to_string()),
            None => repo_tags.push((r, vec![tag.to_string()])),
        }
    }
    let mut repo_digests: Vec<(String, Vec<String>)> = Vec::new();
    for d in &dgsts {
        if let Some((r, dg)) = d.split_once('@') {
            let r = familiar(r);
            match repo_digests.iter_mut().find(|(x, _)| *x == r) {
                Some((_, v)) => v.push(dg.to_string()),
                None => repo_digests.push((r, vec![dg.to_string()])),
            }
        }
    }
    let mut rows = Vec::new();
    for (repo, tags) in &repo_tags {
        let ds = match repo_digests.iter().position(|(x, _)| x == repo) {
            Some(i) => repo_digests.remove(i).1,
            None => Vec::new(),
        };
        for tag in tags {
            if !digests || ds.is_empty() {
                rows.push(row(repo, tag, "<none>"));
            } else {
                for d in &ds {
                    rows.push(row(repo, tag, d));
                }
            }
        }
    }
    for (repo, ds) in &repo_digests {
        if digests {
            for d in ds {
                rows.push(row(repo, "<none>", d));
            }
        } else {
            rows.push(row(
                repo,
                "<none>",
                ds.first().map(String::as_str).unwrap_or(""),
            ));
        }
    }
    rows
}

const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("Containers", "CONTAINERS"),
];

pub fn images(ctx: &Ctx, a: ImagesArgs) -> anyhow::Result<()> {
    let mut filters = a.filter.clone();
    if let Some(r) = &a.repository {
        filters.push(format!("reference={r}"));
    }
    let mut q = Query::new().flag("all", a.all);
    if !filters.is_empty() {
        q = q.push("filters", filters_json(&filters)?);
    }
    let list = ctx
        .client
        .get_json(&format!("/images/json{}", q.encode()))?;
    let mut rows = Vec::new();
    for img in list.as_array().into_iter().flatten() {
        rows.extend(image_rows(img, a.digests, a.no_trunc));
    }
    let default = if a.quiet {
        "{{.ID}}"
    } else if a.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    let spec = if a.quiet { "" } else { a.format.as_str() };
    Format::new(spec, default)?.print(IMAGE_HEADERS, &rows, &mut ctx.out())
}

/// docker's content trust (Notary signatures) is off unless asked for;
/// berth has none, and says so rather than pulling unverified.
fn no_content_trust(disabled: bool) -> anyhow::Result<()> {
    if !disabled {
        return Err(crate::StatusError {
            code: 1,
            msg: "content trust (--disable-content-trust=false) is not supported by berth".into(),
        }
        .into());
    }
    Ok(())
}

pub fn pull(ctx: &Ctx, a: PullArgs) -> anyhow::Result<()> {
    no_content_trust(a.disable_content_trust)?;
    let mut out = ctx.out();
    let (repo, mut tag) = split_tag(&a.name);
    let digest = a.name.split_once('@').map(|(_, d)| d);
    if tag.is_empty() && digest.is_none() && !a.all_tags {
        if !a.quiet {
            writeln!(out, "Using default tag: latest")?;
        }
        tag = "latest";
    }
    let mut q = Query::new().push("fromImage", repo);
    if let Some(d) = digest {
        q = q.push("tag", d);
    } else if !a.all_tags {
        q = q.push("tag", tag);
    }
    q = q.opt("platform", &a.platform);
    let path = format!("/images/create{}", q.encode());
    let auth = crate::login::registry_auth(ctx.config_dir.as_deref(), &a.name)?;
    let resp = ctx
        .client
        .request("POST", &path, &[("X-Registry-Auth", &auth)], Body::Empty)?;
    let mut body = resp.body();
    crate::progress::display(&mut body, &mut out, a.quiet)?;
    let full = full_name(&a.name, if a.all_tags { "" } else { tag });
    writeln!(out, "{full}")?;
    Ok(())
}

/// `busybox` -> `docker.io/library/busybox:latest`, as docker prints after a pull.
fn full_name(name: &str, tag: &str) -> String {
    let has_domain =
        crate::login::registry_domain(name) != "docker.io" || name.starts_with("docker.io/");
    let mut n = if has_domain {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    if !tag.is_empty() && split_tag(&n).1.is_empty() && !n.contains('@') {
        n = format!("{n}:{tag}");
    }
    n
}

pub fn push(ctx: &Ctx, a: PushArgs) -> anyhow::Result<()> {
    no_content_trust(a.disable_content_trust)?;
    let (repo, tag) = split_tag(&a.name);
    let mut out = ctx.out();
    if tag.is_empty() && !a.all_tags {
        writeln!(out, "Using default tag: latest")?;
    }
    let q = Query::new().opt(
        "tag",
        if a.all_tags {
            ""
        } else if tag.is_empty() {
            "latest"
        } else {
            tag
        },
    );
    let path = format!("/images/{}/push{}", escape_path(repo), q.encode());
    let auth = crate::login::registry_auth(ctx.config_dir.as_deref(), &a.name)?;
    let resp = ctx
        .client
        .request("POST", &path, &[("X-Registry-Auth", &auth)], Body::Empty)?;
    let mut body = resp.body();
    crate::progress::display(&mut body, &mut out, a.quiet)?;
    Ok(())
}

pub fn tag(ctx: &Ctx, a: TagArgs) -> anyhow::Result<()> {
    let (repo, tag) = split_tag(&a.target);
    let q = Query::new().push("repo", repo).opt("tag", tag);
    ctx.client.post_json(
        &format!("/images/{}/tag{}", escape_path(&a.source), q.encode()),
        None,
    )?;
    Ok(())
}

pub fn rmi(ctx: &Ctx, a: RmiArgs) -> anyhow::Result<()> {
    let q = Query::new()
        .flag("force", a.force)
        .flag("noprune", a.no_prune);
    let mut failed = Vec::new();
    let mut out = ctx.out();
    for img in &a.images {
        match ctx
            .client
            .delete(&format!("/images/{}{}", escape_path(img), q.encode()))
        {
            Ok(items) => {
                for it in items.as_array().into_iter().flatten() {
                    if let Some(u) = it["Untagged"].as_str() {
                        writeln!(out, "Untagged: {u}")?;
                    }
                    if let Some(d) = it["Deleted"].as_str() {
                        writeln!(out, "Deleted: {d}")?;
                    }
                }
            }
            Err(e) => forgive_missing(a.force, e, &mut failed),
        }
    }
    fail_all(failed)
}

/// `rm -f` and `rmi -f` of something that is not there: docker prints the
/// daemon's error but does not fail for it. Any other error counts.
pub fn forgive_missing(force: bool, e: berth_client::Error, failed: &mut Vec<String>) {
    if force && e.status() == Some(404) {
        let _ = writeln!(std::io::stderr(), "berth: {e}");
    } else {
        failed.push(e.to_string());
    }
}

/// docker prints every failure of a multi-object command and exits 1.
pub fn fail_all(failed: Vec<String>) -> anyhow::Result<()> {
    if failed.is_empty() {
        return Ok(());
    }
    let mut err = std::io::stderr();
    let n = failed.len();
    for (i, f) in failed.iter().enumerate() {
        if i + 1 < n {
            let _ = writeln!(err, "berth: {f}");
        }
    }
    Err(crate::StatusError {
        code: 1,
        msg: failed.last().cloned().unwrap_or_default(),
    }
    .into())
}

pub fn save(ctx: &Ctx, a: SaveArgs) -> anyhow::Result<()> {
    let mut q = Query::new();
    for i in &a.images {
        q = q.push("names", i.as_str());
    }
    let path = format!("/images/get{}", q.encode());
    crate::download::body_to_file_or_stdout(ctx, &path, a.output.as_deref(), "failed to save image")
}

pub fn load(ctx: &Ctx, a: LoadArgs) -> anyhow::Result<()> {
    let mut input: Box<dyn std::io::Read> = match &a.input {
        Some(f) => {
            Box::new(std::fs::File::open(f).map_err(|e| anyhow::anyhow!("opening {f}: {e}"))?)
        }
        None => {
            if std::io::stdin().is_terminal() {
                anyhow::bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(std::io::stdin())
        }
    };
    let q = Query::new().flag("quiet", a.quiet || !std::io::stdout().is_terminal());
    post_tar(ctx, &format!("/images/load{}", q.encode()), &mut input)
}

/// POSTs a tar to `path` and shows the daemon's JSON message stream.
pub(crate) fn post_tar(ctx: &Ctx, path: &str, tar: &mut dyn std::io::Read) -> anyhow::Result<()> {
    let resp = ctx.client.request(
        "POST",
        path,
        &[],
        Body::Stream {
            content_type: "application/x-tar",
            reader: tar,
        },
    )?;
    let mut body = resp.body();
    crate::progress::display(&mut body, &mut ctx.out(), false)?;
    Ok(())
}

pub fn import(ctx: &Ctx, a: ImportArgs) -> anyhow::Result<()> {
    let mut q = Query::new();
    let mut input: Option<Box<dyn std::io::Read>> = None;
    if a.source == "-" {
        q = q.push("fromSrc", "-");
        input = Some(Box::new(std::io::stdin()));
    } else if a.source.contains("://") {
        q = q.push("fromSrc", a.source.as_str());
    } else {
        q = q.push("fromSrc", "-");
        input = Some(Box::new(
            std::fs::File::open(&a.source)
                .map_err(|e| anyhow::anyhow!("opening {}: {e}", a.source))?,
        ));
    }
    if let Some(r) = &a.repository {
        let (repo, tag) = split_tag(r);
        q = q.push("repo", repo).opt("tag", tag);
    }
    q = q.opt("message", &a.message).opt("platform", &a.platform);
    for c in &a.change {
        q = q.push("changes", c.as_str());
    }
    let path = format!("/images/create{}", q.encode());
    let resp = match input.as_mut() {
        Some(r) => ctx.client.request(
            "POST",
            &path,
            &[],
            Body::Stream {
                content_type: "application/x-tar",
                reader: r,
            },
        )?,
        None => ctx.client.request("POST", &path, &[], Body::Empty)?,
    };
    let mut body = resp.body();
    crate::progress::display(&mut body, &mut ctx.out(), false)?;
    Ok(())
}

pub fn history(ctx: &Ctx, a: HistoryArgs) -> anyhow::Result<()> {
    let h = ctx
        .client
        .get_json(&format!("/images/{}/history", escape_path(&a.image)))?;
    let rows: Vec<Value> = h
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let id = e["Id"].as_str().unwrap_or("");
            let mut by = e["CreatedBy"].as_str().unwrap_or("").to_string();
            if !a.no_trunc && by.chars().count() > 45 {
                by = by.chars().take(44).collect::<String>() + "…";
            }
            let created = e["Created"].as_f64().unwrap_or(0.0);
            let size = e["Size"].as_f64().unwrap_or(0.0);
            // --human=false: RFC 3339 dates and sizes in bytes, as docker.
            let created_at = crate::units::rfc3339_utc(created);
            json!({
                "ID": if id == "<missing>" { id.to_string() } else { short_id(id, a.no_trunc) },
                "CreatedSince": if a.human { ago(created) } else { created_at.clone() },
                "CreatedAt": created_at,
                "CreatedBy": by,
                "Size": if a.human { human_size(size) } else { (size as i64).to_string() },
                "Comment": e["Comment"].as_str().unwrap_or(""),
            })
        })
        .collect();
    let default = if a.quiet {
        "{{.ID}}"
    } else if a.human {
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    } else {
        "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    };
    Format::new(if a.quiet { "" } else { &a.format }, default)?.print(
        &[
            ("ID", "IMAGE"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("CreatedBy", "CREATED BY"),
            ("Size", "SIZE"),
            ("Comment", "COMMENT"),
        ],
        &rows,
        &mut ctx.out(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(split_tag("busybox:1"), ("busybox", "1"));
        assert_eq!(split_tag("localhost:5000/a"), ("localhost:5000/a", ""));
        assert_eq!(split_tag("localhost:5000/a:b"), ("localhost:5000/a", "b"));
        assert_eq!(
            full_name("busybox", "latest"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full_name("localhost:5000/a", "x"), "localhost:5000/a:x");
        assert_eq!(short_id("sha256:0123456789abcdef", false), "0123456789ab");
    }

    #[test]
    fn rows_per_tag_and_dangling() {
        let img = json!({"Id": "sha256:aa", "RepoTags": ["busybox:latest", "busybox:1", "x/y:2"],
                         "RepoDigests": ["busybox@sha256:dd"], "Created": 0, "Size": 1000});
        let rows = image_rows(&img, true, false);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["Digest"], "sha256:dd");
        assert_eq!(rows[2]["Repository"], "x/y");
        let d = json!({"Id": "sha256:bb", "RepoTags": ["<none>:<none>"], "RepoDigests": ["<none>@<none>"]});
        assert_eq!(image_rows(&d, false, false)[0]["Tag"], "<none>");
    }
}
