//! Container commands that are one request each (or a few): `ps`,
//! `inspect`, `stop`, `kill`, `rm`, `pause`, `wait`, `rename`, `top`,
//! `port`, `logs`, `diff`, `export`.

use std::io::Write;

use berth_client::query::escape_path;
use berth_client::{Body, Error as ClientError, Query};
use clap::Args;
use serde_json::{json, Value};

use crate::images::{fail_all, short_id};
use crate::output::{indent_json, Format};
use crate::system::{api_time, filters_json};
use crate::template::Template;
use crate::units::{ago, human_size};
use crate::Ctx;

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Filter output based on conditions provided
    #[arg(short, long, action = crate::cli::many())]
    pub filter: Vec<String>,
    /// Pretty-print containers using a Go template
    #[arg(long, default_value = "")]
    pub format: String,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format the output using the given Go template
    #[arg(short, long, default_value = "")]
    pub format: String,
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    pub size: bool,
    /// Return JSON for specified type
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "timeout",
        visible_alias = "time",
        allow_hyphen_values = true
    )]
    pub time: Option<i64>,
    /// Signal to send to the container
    #[arg(short, long, default_value = "")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove the specified link
    #[arg(short, long)]
    pub link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NameArg {
    pub container: String,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long, default_value = "")]
    pub author: String,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long, action = crate::cli::many())]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short, long, default_value = "")]
    pub message: String,
    /// Pause container during commit
    #[arg(short, long, default_value_t = true, default_missing_value = "true", num_args = 0..=1, require_equals = true, action = clap::ArgAction::Set)]
    pub pause: bool,
    pub container: String,
    /// REPOSITORY[:TAG] of the new image
    pub repository: Option<String>,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
    /// ps options
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Show logs since timestamp or relative (e.g. 42m)
    #[arg(long, default_value = "")]
    pub since: String,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs before a timestamp or relative (e.g. 42m)
    #[arg(long, default_value = "")]
    pub until: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<String>,
    pub container: String,
}

fn cpath(name: &str) -> String {
    format!("/containers/{}", escape_path(name))
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

/// `"sleep 100"`, cut to 20 characters with an ellipsis unless `--no-trunc`.
fn command(c: &str, trunc: bool) -> String {
    let c = if trunc && c.chars().count() > 20 {
        c.chars().take(19).collect::<String>() + "…"
    } else {
        c.to_string()
    };
    serde_json::to_string(&c).unwrap_or_default()
}

fn ports(v: &Value) -> String {
    let list: Vec<crate::ports::Port> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(crate::ports::Port::from_json)
        .collect();
    crate::ports::display(&list)
}

pub(crate) fn container_row(c: &Value, trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let mut names: Vec<String> = strs(&c["Names"])
        .into_iter()
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    if trunc {
        if let Some(n) = names.iter().find(|n| !n.contains('/')) {
            names = vec![n.clone()];
        }
    }
    let mut image = c["Image"].as_str().unwrap_or("").to_string();
    if image.is_empty() {
        image = "<no image>".into();
    } else if trunc {
        if image.starts_with("sha256:") {
            image = short_id(&image, false);
        } else {
            image = image.split('@').next().unwrap_or("").to_string();
            let i = image
                .strip_prefix("docker.io/")
                .unwrap_or(&image)
                .to_string();
            image = i.strip_prefix("library/").unwrap_or(&i).to_string();
        }
    }
    let created = c["Created"].as_f64().unwrap_or(0.0);
    let mut labels: Vec<String> = c["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let mut networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| match m["Name"].as_str() {
            Some(n) if !n.is_empty() => {
                if trunc {
                    n.chars().take(15).collect()
                } else {
                    n.to_string()
                }
            }
            _ => m["Source"].as_str().unwrap_or("").to_string(),
        })
        .collect();
    let srw = c["SizeRw"].as_f64().unwrap_or(0.0);
    let srf = c["SizeRootFs"].as_f64().unwrap_or(0.0);
    let size = if srf > 0.0 {
        format!("{} (virtual {})", human_size(srw), human_size(srf))
    } else {
        human_size(srw)
    };
    json!({
        "ID": short_id(id, !trunc),
        "Image": image,
        "Command": command(c["Command"].as_str().unwrap_or(""), trunc),
        "CreatedAt": crate::units::go_time_string(created),
        "RunningFor": ago(created),
        "Ports": ports(&c["Ports"]),
        "State": c["State"].as_str().unwrap_or(""),
        "Status": c["Status"].as_str().unwrap_or(""),
        "Size": size,
        "Names": names.join(","),
        "Labels": labels.join(","),
        "Mounts": mounts.join(","),
        "Networks": networks.join(","),
        "LocalVolumes": c["Mounts"].as_array().map(|m| m.iter().filter(|x| x["Driver"] == "local").count()).unwrap_or(0).to_string(),
    })
}

pub(crate) const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

pub fn ps(ctx: &Ctx, a: PsArgs) -> anyhow::Result<()> {
    let limit = if a.latest { 1 } else { a.last };
    // As docker: a --format that shows sizes (`.Size`, `{{json .}}`)
    // asks the daemon for them; `-q` never does.
    let size = a.size
        || !a.quiet
            && (a.format == "json" || a.format.contains(".Size") || a.format.contains("json ."));
    let mut q = Query::new()
        .flag("all", a.all || limit > 0)
        .flag("size", size);
    if limit > 0 {
        q = q.push("limit", limit.to_string());
    }
    if !a.filter.is_empty() {
        q = q.push("filters", filters_json(&a.filter)?);
    }
    let list = ctx
        .client
        .get_json(&format!("/containers/json{}", q.encode()))?;
    let rows: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| container_row(c, !a.no_trunc))
        .collect();
    let default = if a.quiet {
        "{{.ID}}"
    } else if a.size {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
    } else {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    };
    // docker's `raw` format: a block of `key: value` lines per container.
    let raw = match (a.quiet, size) {
        (true, _) => "container_id: {{.ID}}".to_string(),
        (false, size) => format!(
            "container_id: {{{{.ID}}}}\nimage: {{{{.Image}}}}\ncommand: {{{{.Command}}}}\n\
             created_at: {{{{.CreatedAt}}}}\nstate: {{{{- pad .State 1 0}}}}\n\
             status: {{{{- pad .Status 1 0}}}}\nnames: {{{{.Names}}}}\n\
             labels: {{{{- pad .Labels 1 0}}}}\nports: {{{{- pad .Ports 1 0}}}}\n{}",
            if size { "size: {{.Size}}\n" } else { "" }
        ),
    };
    // A --format wins over -q (`table` alone is the default table).
    let spec = match a.format.as_str() {
        "raw" => raw.as_str(),
        "table" | "" if a.quiet => "",
        f => f,
    };
    Format::new(spec, default)?.print(PS_HEADERS, &rows, &mut ctx.out())
}

/// The raw JSON of a container or image, in the daemon's own key order.
fn inspect_raw(ctx: &Ctx, kind: &str, name: &str, size: bool) -> Result<Vec<u8>, ClientError> {
    let path = match kind {
        "container" => format!(
            "{}/json{}",
            cpath(name),
            Query::new().flag("size", size).encode()
        ),
        // `size` is `network inspect --verbose` here.
        "network" => format!(
            "/networks/{}{}",
            escape_path(name),
            Query::new().flag("verbose", size).encode()
        ),
        "volume" => format!("/volumes/{}", escape_path(name)),
        "plugin" => format!("/plugins/{}/json", escape_path(name)),
        _ => format!("/images/{}/json", escape_path(name)),
    };
    let resp = ctx.client.request("GET", &path, &[], Body::Empty)?;
    resp.read_to_vec(256 * 1024 * 1024)
        .map_err(|e| ctx.client.io_error("reading", &path, e))
}

pub fn inspect(ctx: &Ctx, a: InspectArgs) -> anyhow::Result<()> {
    match a.kind.as_deref() {
        None | Some("container" | "image" | "network" | "volume" | "plugin") => {}
        Some(k @ ("node" | "service" | "task" | "secret" | "config")) => {
            anyhow::bail!("inspect --type {k} is not available yet in this version of berth")
        }
        Some(k) => anyhow::bail!("{k:?} is not a valid value for --type"),
    }
    inspect_typed_sized(ctx, a.kind.as_deref(), &a.format, &a.names, a.size)
}

pub fn inspect_typed(
    ctx: &Ctx,
    kind: Option<&str>,
    format: &str,
    names: &[String],
) -> anyhow::Result<()> {
    inspect_typed_sized(ctx, kind, format, names, false)
}

pub fn inspect_typed_sized(
    ctx: &Ctx,
    kind: Option<&str>,
    format: &str,
    names: &[String],
    size: bool,
) -> anyhow::Result<()> {
    let tmpl = if format.is_empty() {
        None
    } else {
        Some(Template::parse(
            &format.replace("\\n", "\n").replace("\\t", "\t"),
        )?)
    };
    let mut found = Vec::new();
    let mut failed = Vec::new();
    for name in names {
        let res = match kind {
            // (docker passes the daemon's message on for plugins)
            Some(k) => inspect_raw(ctx, k, name, size).map_err(|e| match e.status() {
                Some(404) if k != "plugin" => format!("No such {k}: {name}"),
                _ => e.to_string(),
            }),
            // Containers, images, networks, volumes, then plugins, as
            // docker looks (berth has no swarm objects to look at between
            // them); a daemon without some endpoints (501) still has the
            // others.
            None => {
                let mut res = Err(format!("No such object: {name}"));
                for (i, k) in ["container", "image", "network", "volume", "plugin"]
                    .iter()
                    .enumerate()
                {
                    match inspect_raw(ctx, k, name, size && i == 0) {
                        Err(e) if matches!(e.status(), Some(404 | 501)) => continue,
                        other => {
                            res = other.map_err(|e| e.to_string());
                            break;
                        }
                    }
                }
                res
            }
        };
        match res {
            Ok(raw) => found.push(raw),
            // The daemon's messages carry their own prefix.
            Err(e) if e.starts_with("Error response from daemon") => failed.push(e),
            Err(e) => failed.push(format!("Error: {e}")),
        }
    }
    let mut out = ctx.out();
    match &tmpl {
        Some(t) => {
            if found.is_empty() {
                // docker prints the (empty) result of no objects as a line.
                writeln!(out)?;
            }
            for raw in &found {
                let v: Value = serde_json::from_slice(raw)?;
                writeln!(out, "{}", t.render(&v)?)?;
            }
        }
        None => {
            if found.is_empty() {
                writeln!(out, "[]")?;
            } else {
                let items: Vec<String> = found.iter().map(|r| indent_json(r, 1)).collect();
                writeln!(out, "[\n    {}\n]", items.join(",\n    "))?;
            }
        }
    }
    drop(out);
    if failed.is_empty() {
        return Ok(());
    }
    let n = failed.len();
    for f in &failed[..n - 1] {
        let _ = writeln!(std::io::stderr(), "{f}");
    }
    Err(crate::StatusError {
        code: 1,
        msg: failed[n - 1].trim_start_matches("Error: ").to_string(),
    }
    .into())
}

/// Runs `each` for every container, printing the name on success and
/// collecting failures as docker does.
fn for_each(
    ctx: &Ctx,
    names: &[String],
    each: impl Fn(&str) -> Result<(), ClientError>,
) -> anyhow::Result<()> {
    for_each_forced(ctx, names, false, each)
}

/// [`for_each`] where `force` (`rm -f`) forgives names that are not there.
fn for_each_forced(
    ctx: &Ctx,
    names: &[String],
    force: bool,
    each: impl Fn(&str) -> Result<(), ClientError>,
) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    let mut out = ctx.out();
    for n in names {
        match each(n) {
            Ok(()) => writeln!(out, "{n}")?,
            Err(e) => crate::images::forgive_missing(force, e, &mut failed),
        }
    }
    drop(out);
    fail_all(failed)
}

pub fn stop(ctx: &Ctx, a: StopArgs, verb: &str) -> anyhow::Result<()> {
    let q = match a.time {
        Some(t) => Query::new().push("t", t.to_string()),
        None => Query::new(),
    }
    .opt("signal", &a.signal);
    for_each(ctx, &a.containers, |n| {
        ctx.client
            .post_json(&format!("{}/{verb}{}", cpath(n), q.encode()), None)
            .map(drop)
    })
}

pub fn kill(ctx: &Ctx, a: KillArgs) -> anyhow::Result<()> {
    let q = Query::new().push("signal", a.signal.as_str());
    for_each(ctx, &a.containers, |n| {
        ctx.client
            .post_json(&format!("{}/kill{}", cpath(n), q.encode()), None)
            .map(drop)
    })
}

pub fn rm(ctx: &Ctx, a: RmArgs) -> anyhow::Result<()> {
    let q = Query::new()
        .flag("force", a.force)
        .flag("v", a.volumes)
        .flag("link", a.link);
    for_each_forced(ctx, &a.containers, a.force, |n| {
        ctx.client
            .delete(&format!("{}{}", cpath(n), q.encode()))
            .map(drop)
    })
}

pub fn simple_post(ctx: &Ctx, a: NamesArgs, verb: &str) -> anyhow::Result<()> {
    for_each(ctx, &a.containers, |n| {
        ctx.client
            .post_json(&format!("{}/{verb}", cpath(n)), None)
            .map(drop)
    })
}

pub fn wait(ctx: &Ctx, a: NamesArgs) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    let mut out = ctx.out();
    for n in &a.containers {
        match ctx.client.post_json(&format!("{}/wait", cpath(n)), None) {
            Ok(v) => writeln!(out, "{}", v["StatusCode"].as_i64().unwrap_or(-1))?,
            Err(e) => failed.push(e.to_string()),
        }
    }
    drop(out);
    fail_all(failed)
}

/// `docker commit`: a new image from a container's changes; prints its id.
pub fn commit(ctx: &Ctx, a: CommitArgs) -> anyhow::Result<()> {
    let mut q = Query::new().push("container", a.container.as_str());
    if let Some(r) = &a.repository {
        let (repo, tag) = crate::images::split_tag(r);
        q = q.push("repo", repo).opt("tag", tag);
    }
    q = q.opt("comment", &a.message).opt("author", &a.author);
    for c in &a.change {
        q = q.push("changes", c.as_str());
    }
    // docker's client sends pause only to turn it off.
    if !a.pause {
        q = q.push("pause", "0");
    }
    let r = ctx
        .client
        .post_json(&format!("/commit{}", q.encode()), None)?;
    writeln!(ctx.out(), "{}", r["Id"].as_str().unwrap_or_default())?;
    Ok(())
}

pub fn rename(ctx: &Ctx, a: RenameArgs) -> anyhow::Result<()> {
    let q = Query::new().push("name", a.new_name.as_str());
    ctx.client.post_json(
        &format!("{}/rename{}", cpath(&a.container), q.encode()),
        None,
    )?;
    Ok(())
}

pub fn top(ctx: &Ctx, a: TopArgs) -> anyhow::Result<()> {
    let q = Query::new().opt("ps_args", &a.ps_args.join(" "));
    let t = ctx
        .client
        .get_json(&format!("{}/top{}", cpath(&a.container), q.encode()))?;
    let mut text = strs(&t["Titles"]).join("\t") + "\n";
    for p in t["Processes"].as_array().into_iter().flatten() {
        text.push_str(&strs(p).join("\t"));
        text.push('\n');
    }
    let mut tw = crate::output::docker_tabwriter(Vec::new(), 20);
    tw.write_all(text.as_bytes())?;
    tw.flush()?;
    ctx.out().write_all(&tw.into_inner()?)?;
    Ok(())
}

pub fn port(ctx: &Ctx, a: PortArgs) -> anyhow::Result<()> {
    let c = ctx
        .client
        .get_json(&format!("{}/json", cpath(&a.container)))?;
    let mut entries: Vec<(u64, String, String)> = Vec::new();
    if let Some(m) = c["NetworkSettings"]["Ports"].as_object() {
        for (k, binds) in m {
            let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            for b in binds.as_array().into_iter().flatten() {
                let ip = b["HostIp"].as_str().unwrap_or("");
                let hp = b["HostPort"].as_str().unwrap_or("");
                let ip = crate::ports::join_host(ip);
                entries.push((
                    p.parse().unwrap_or(0),
                    format!("{p}/{proto}"),
                    format!("{ip}:{hp}"),
                ));
            }
        }
    }
    entries.sort();
    let mut out = ctx.out();
    match &a.port {
        Some(want) => {
            let key = if want.contains('/') {
                want.clone()
            } else {
                format!("{want}/tcp")
            };
            let hits: Vec<_> = entries.iter().filter(|e| e.1 == key).collect();
            if hits.is_empty() {
                drop(out);
                anyhow::bail!("No public port '{want}' published for {}", a.container);
            }
            for (_, _, host) in hits {
                writeln!(out, "{host}")?;
            }
        }
        None => {
            for (_, p, host) in &entries {
                writeln!(out, "{p} -> {host}")?;
            }
        }
    }
    Ok(())
}

pub fn logs(ctx: &Ctx, a: LogsArgs) -> anyhow::Result<()> {
    let c = ctx
        .client
        .get_json(&format!("{}/json", cpath(&a.container)))?;
    let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
    let q = Query::new()
        .push("stdout", "1")
        .push("stderr", "1")
        .opt("since", &api_time(&a.since)?)
        .opt("until", &api_time(&a.until)?)
        .flag("timestamps", a.timestamps)
        .flag("follow", a.follow)
        .push("tail", a.tail.as_str())
        .flag("details", a.details);
    let path = format!("{}/logs{}", cpath(&a.container), q.encode());
    let resp = ctx.client.request("GET", &path, &[], Body::Empty)?;
    let mut body = resp.body();
    if tty {
        std::io::copy(&mut body, &mut ctx.out())?;
    } else {
        berth_client::stream::demux(&mut body, &mut ctx.out(), &mut std::io::stderr())?;
    }
    Ok(())
}

pub fn diff(ctx: &Ctx, a: NameArg) -> anyhow::Result<()> {
    let ch = ctx
        .client
        .get_json(&format!("{}/changes", cpath(&a.container)))?;
    let mut out = ctx.out();
    for c in ch.as_array().into_iter().flatten() {
        let k = match c["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        writeln!(out, "{k} {}", c["Path"].as_str().unwrap_or(""))?;
    }
    Ok(())
}

pub fn export(ctx: &Ctx, a: ExportArgs) -> anyhow::Result<()> {
    let path = format!("{}/export", cpath(&a.container));
    crate::download::body_to_file_or_stdout(
        ctx,
        &path,
        a.output.as_deref(),
        "failed to export container",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_columns() {
        assert_eq!(command("sleep 100", true), "\"sleep 100\"");
        assert_eq!(
            command("sh -c 'echo hello world foo'", true),
            "\"sh -c 'echo hello w…\""
        );
        let p = json!([{"PrivatePort": 80, "Type": "tcp"}, {"IP": "0.0.0.0", "PrivatePort": 22, "PublicPort": 2222, "Type": "tcp"}]);
        // Bindings to another host port come after the unpublished ones,
        // as docker's ps prints them.
        assert_eq!(ports(&p), "80/tcp, 0.0.0.0:2222->22/tcp");
        let c = json!({"Id": "0123456789abcdef", "Names": ["/a", "/b/a"], "Image": "docker.io/library/busybox:latest",
                       "Command": "sh", "Created": 0, "State": "running", "Status": "Up 1 second"});
        let r = container_row(&c, true);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Names"], "a");
        assert_eq!(r["Image"], "busybox:latest");
    }
}
