//! `berth volume create/ls/inspect/rm/prune`, and `--mount` for `run` and
//! `create`, with docker's flags, output and errors.

use std::io::Write;

use berth_client::query::escape_path;
use berth_client::Query;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::output::{indent_json, Format};
use crate::system::filters_json;
use crate::template::Template;
use crate::units::human_size;
use crate::Ctx;

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum VolumeCmd {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
    #[command(external_subcommand)]
    Other(Vec<String>),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long, action = crate::cli::many())]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short, long, action = crate::cli::many())]
    pub opt: Vec<String>,
    /// Specify volume name
    #[arg(long, hide = true)]
    pub name: Option<String>,
    pub volume: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short, long)]
    pub quiet: bool,
    /// Provide filter values (e.g. 'dangling=true')
    #[arg(short, long, action = crate::cli::many())]
    pub filter: Vec<String>,
    /// Pretty-print volumes using a Go template
    #[arg(long, default_value = "")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format the output using the given Go template
    #[arg(short, long, default_value = "")]
    pub format: String,
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values (e.g. 'label=<label>')
    #[arg(long, action = crate::cli::many())]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

pub fn dispatch(ctx: &Ctx, cmd: VolumeCmd) -> anyhow::Result<()> {
    match cmd {
        VolumeCmd::Create(a) => create(ctx, a),
        VolumeCmd::Ls(a) => ls(ctx, a),
        VolumeCmd::Inspect(a) => inspect(ctx, a),
        VolumeCmd::Rm(a) => rm(ctx, a),
        VolumeCmd::Prune(a) => prune(ctx, a),
        VolumeCmd::Other(v) => {
            let name = v.first().map(String::as_str).unwrap_or("");
            anyhow::bail!("'volume {name}' is not a berth command.\nSee 'berth volume --help'")
        }
    }
}

/// `key=value` pairs of repeated flags as a JSON object (docker's
/// `--label` without a value means an empty one).
fn pairs(values: &[String], flag: &str, need_value: bool) -> anyhow::Result<Map<String, Value>> {
    let mut m = Map::new();
    for v in values {
        let (k, val) = match v.split_once('=') {
            Some((k, val)) => (k, val),
            None if need_value => anyhow::bail!(
                "invalid argument \"{v}\" for \"--{flag}\" flag: invalid key value pair format in driver options"
            ),
            None => (v.as_str(), ""),
        };
        m.insert(k.to_string(), val.into());
    }
    Ok(m)
}

fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<()> {
    if a.name.is_some() && a.volume.is_some() {
        anyhow::bail!(
            "conflicting options: either specify --name or provide positional arg, not both"
        );
    }
    let name = a.volume.or(a.name).unwrap_or_default();
    let body = json!({
        "Name": name,
        "Driver": a.driver,
        "DriverOpts": pairs(&a.opt, "opt", true)?,
        "Labels": pairs(&a.label, "label", false)?,
    });
    let v = ctx.client.post_json("/volumes/create", Some(&body))?;
    writeln!(ctx.out(), "{}", v["Name"].as_str().unwrap_or_default())?;
    Ok(())
}

/// Go's sortorder.NaturalLess: runs of digits compare as numbers.
fn natural_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let na = std::str::from_utf8(&a[si..i])
                .unwrap_or("")
                .trim_start_matches('0');
            let nb = std::str::from_utf8(&b[sj..j])
                .unwrap_or("")
                .trim_start_matches('0');
            if na.len() != nb.len() {
                return na.len() < nb.len();
            }
            if na != nb {
                return na < nb;
            }
            if i - si != j - sj {
                return i - si < j - sj;
            }
            continue;
        }
        if a[i] != b[j] {
            return a[i] < b[j];
        }
        i += 1;
        j += 1;
    }
    a.len() - i < b.len() - j
}

/// Objects in the natural order of their `Name`, as docker lists volumes
/// and plugins.
pub(crate) fn sort_by_name(list: &mut [Value]) {
    list.sort_by(|x, y| {
        let (x, y) = (
            x["Name"].as_str().unwrap_or(""),
            y["Name"].as_str().unwrap_or(""),
        );
        if natural_less(x, y) {
            std::cmp::Ordering::Less
        } else if natural_less(y, x) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
}

/// A volume as `volume ls --format` sees it (docker's volume context).
fn row(v: &Value) -> Value {
    let labels = v["Labels"]
        .as_object()
        .map(|m| {
            let mut l: Vec<String> = m
                .iter()
                .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or("")))
                .collect();
            l.sort();
            l.join(",")
        })
        .unwrap_or_default();
    let size = v["UsageData"]["Size"]
        .as_i64()
        .filter(|s| *s >= 0)
        .map_or("N/A".to_string(), |s| human_size(s as f64));
    let links = v["UsageData"]["RefCount"]
        .as_i64()
        .filter(|s| *s >= 0)
        .map_or("N/A".to_string(), |s| s.to_string());
    json!({
        "Name": v["Name"],
        "Driver": v["Driver"],
        "Scope": v["Scope"],
        "Mountpoint": v["Mountpoint"],
        "Labels": labels,
        "Links": links,
        "Size": size,
    })
}

fn ls(ctx: &Ctx, a: LsArgs) -> anyhow::Result<()> {
    let mut q = Query::new();
    if !a.filter.is_empty() {
        q = q.push("filters", filters_json(&a.filter)?);
    }
    let r = ctx.client.get_json(&format!("/volumes{}", q.encode()))?;
    let mut list: Vec<Value> = r["Volumes"].as_array().cloned().unwrap_or_default();
    sort_by_name(&mut list);
    let rows: Vec<Value> = list.iter().map(row).collect();
    let (spec, default) = if a.quiet {
        ("", "{{.Name}}")
    } else {
        (a.format.as_str(), "table {{.Driver}}\t{{.Name}}")
    };
    Format::new(spec, default)?.print(
        &[
            ("Name", "VOLUME NAME"),
            ("Driver", "DRIVER"),
            ("Scope", "SCOPE"),
            ("Mountpoint", "MOUNTPOINT"),
            ("Labels", "LABELS"),
            ("Links", "LINKS"),
            ("Size", "SIZE"),
        ],
        &rows,
        &mut ctx.out(),
    )
}

fn inspect(ctx: &Ctx, a: InspectArgs) -> anyhow::Result<()> {
    inspect_each(ctx, &a.format, &a.volumes, |n| {
        format!("/volumes/{}", escape_path(n))
    })
}

/// docker's inspect of one kind of object (`volume inspect`, `plugin
/// inspect`): the JSON at `path(name)` for each name, as an indented array
/// or through the template; the daemon's errors after what was found.
pub(crate) fn inspect_each(
    ctx: &Ctx,
    format: &str,
    names: &[String],
    path: impl Fn(&str) -> String,
) -> anyhow::Result<()> {
    let tmpl = if format.is_empty() {
        None
    } else {
        Some(Template::parse(
            &format.replace("\\n", "\n").replace("\\t", "\t"),
        )?)
    };
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut failed = Vec::new();
    for name in names {
        let path = path(name);
        let raw = ctx
            .client
            .request("GET", &path, &[], berth_client::Body::Empty)
            .and_then(|resp| {
                resp.read_to_vec(16 << 20)
                    .map_err(|e| ctx.client.io_error("reading", &path, e))
            });
        match raw {
            Ok(raw) => found.push(raw),
            Err(e) => failed.push(e.to_string()),
        }
    }
    let mut out = ctx.out();
    match &tmpl {
        // docker prints the (empty) result of no objects as a line.
        Some(_) if found.is_empty() => writeln!(out)?,
        Some(t) => {
            for raw in &found {
                let v: Value = serde_json::from_slice(raw)?;
                writeln!(out, "{}", t.render(&v)?)?;
            }
        }
        None if found.is_empty() => writeln!(out, "[]")?,
        None => {
            let items: Vec<String> = found.iter().map(|r| indent_json(r, 1)).collect();
            writeln!(out, "[\n    {}\n]", items.join(",\n    "))?;
        }
    }
    drop(out);
    crate::images::fail_all(failed)
}

fn rm(ctx: &Ctx, a: RmArgs) -> anyhow::Result<()> {
    let q = Query::new().flag("force", a.force).encode();
    remove_each(ctx, &a.volumes, |n| {
        format!("/volumes/{}{q}", escape_path(n))
    })
}

/// DELETE `path(name)` for each name, printing the names removed and then
/// the daemon's errors, as docker's `volume rm` and `plugin rm`.
pub(crate) fn remove_each(
    ctx: &Ctx,
    names: &[String],
    path: impl Fn(&str) -> String,
) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    let mut out = ctx.out();
    for name in names {
        match ctx.client.delete(&path(name)) {
            Ok(_) => writeln!(out, "{name}")?,
            Err(e) => failed.push(e.to_string()),
        }
    }
    drop(out);
    crate::images::fail_all(failed)
}

/// `POST /volumes/prune` with `filters`; prints docker's "Deleted
/// Volumes:" list and returns the space reclaimed.
pub fn prune_volumes(ctx: &Ctx, filters: &[String], out: &mut dyn Write) -> anyhow::Result<u64> {
    let q = crate::manage::filters_query(filters)?;
    let section = ("VolumesDeleted", "Deleted Volumes");
    crate::manage::post_prune(ctx, "volumes", q, section, out)
}

/// Whether the daemon prunes only anonymous volumes unless told `all`
/// (API 1.42 and later).
pub fn prunes_anonymous_only(ctx: &Ctx) -> bool {
    ctx.client
        .api_version()
        .is_ok_and(|v| !berth_client::client::version_lt(v, "1.42"))
}

fn prune(ctx: &Ctx, a: PruneArgs) -> anyhow::Result<()> {
    let anonymous_only = prunes_anonymous_only(ctx);
    let mut filters = a.filter.clone();
    let warning = if anonymous_only && !a.all {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    } else {
        "WARNING! This will remove all local volumes not used by at least one container."
    };
    if a.all && anonymous_only {
        filters.push("all=true".into());
    }
    if !a.force && !crate::manage::confirm(warning)? {
        return Ok(());
    }
    let mut out = ctx.out();
    let total = prune_volumes(ctx, &filters, &mut out)?;
    writeln!(out, "Total reclaimed space: {}", human_size(total as f64))?;
    Ok(())
}

/// `run`/`create`'s `--mount` and `--volumes-from`.
#[derive(Args, Debug, Default)]
pub struct MountOpts {
    /// Attach a filesystem mount to the container
    #[arg(long, action = crate::cli::many())]
    pub mount: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long, action = crate::cli::many())]
    pub volumes_from: Vec<String>,
}

/// Adds `HostConfig.Mounts` and `HostConfig.VolumesFrom` for `o`.
pub fn add_mounts(o: &MountOpts, host: &mut Map<String, Value>) -> anyhow::Result<()> {
    if !o.mount.is_empty() {
        let mounts = o
            .mount
            .iter()
            .map(|m| parse_mount(m))
            .collect::<anyhow::Result<Vec<_>>>()?;
        host.insert("Mounts".into(), Value::Array(mounts));
    }
    if !o.volumes_from.is_empty() {
        host.insert("VolumesFrom".into(), json!(o.volumes_from));
    }
    Ok(())
}

/// docker's `--mount` CSV (`type=volume,source=x,target=/y,readonly,...`)
/// as a `HostConfig.Mounts` entry.
pub fn parse_mount(spec: &str) -> anyhow::Result<Value> {
    let bad =
        |msg: String| anyhow::anyhow!("invalid argument \"{spec}\" for \"--mount\" flag: {msg}");
    let mut m = Map::new();
    let mut typ = "volume".to_string();
    let mut bind = Map::new();
    let mut volume = Map::new();
    let mut tmpfs = Map::new();
    let mut labels = Map::new();
    let mut driver_opts = Map::new();
    let mut driver = None;
    let boolean = |key: &str, v: Option<&str>| -> anyhow::Result<bool> {
        match v.map(str::to_ascii_lowercase).as_deref() {
            None | Some("1" | "true") => Ok(true),
            Some("0" | "false") => Ok(false),
            Some(other) => Err(bad(format!("invalid value for {key}: {other}"))),
        }
    };
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| -> anyhow::Result<String> {
            v.map(str::to_string)
                .ok_or_else(|| bad(format!("invalid field '{field}' must be a key=value pair")))
        };
        match key.as_str() {
            "type" => typ = need(value)?.to_ascii_lowercase(),
            "source" | "src" => {
                m.insert("Source".into(), need(value)?.into());
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), need(value)?.into());
            }
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), boolean(&key, value)?.into());
            }
            "consistency" => {
                m.insert("Consistency".into(), need(value)?.into());
            }
            "bind-propagation" => {
                bind.insert(
                    "Propagation".into(),
                    need(value)?.to_ascii_lowercase().into(),
                );
            }
            "bind-nonrecursive" => {
                bind.insert("NonRecursive".into(), boolean(&key, value)?.into());
            }
            "volume-nocopy" => {
                volume.insert("NoCopy".into(), boolean(&key, value)?.into());
            }
            "volume-label" => {
                let v = need(value)?;
                let (k, x) = v.split_once('=').unwrap_or((v.as_str(), ""));
                labels.insert(k.to_string(), x.into());
            }
            "volume-driver" => driver = Some(need(value)?),
            "volume-opt" => {
                let v = need(value)?;
                let (k, x) = v
                    .split_once('=')
                    .ok_or_else(|| bad(format!("invalid volume-opt '{v}': must be key=value")))?;
                driver_opts.insert(k.to_string(), x.into());
            }
            "volume-subpath" => {
                volume.insert("Subpath".into(), need(value)?.into());
            }
            "tmpfs-size" => {
                let v = need(value)?;
                let n = crate::run::ram_in_bytes(&v).map_err(|e| bad(e.to_string()))?;
                tmpfs.insert("SizeBytes".into(), n.into());
            }
            "tmpfs-mode" => {
                let v = need(value)?;
                let n = u32::from_str_radix(&v, 8)
                    .map_err(|_| bad(format!("invalid value for {key}: {v}")))?;
                tmpfs.insert("Mode".into(), n.into());
            }
            _ => return Err(bad(format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    if !labels.is_empty() {
        volume.insert("Labels".into(), Value::Object(labels));
    }
    if driver.is_some() || !driver_opts.is_empty() {
        volume.insert(
            "DriverConfig".into(),
            json!({"Name": driver.unwrap_or_default(), "Options": driver_opts}),
        );
    }
    m.insert("Type".into(), typ.clone().into());
    match typ.as_str() {
        "bind" if !bind.is_empty() => {
            m.insert("BindOptions".into(), Value::Object(bind));
        }
        "volume" if !volume.is_empty() => {
            m.insert("VolumeOptions".into(), Value::Object(volume));
        }
        "tmpfs" if !tmpfs.is_empty() => {
            m.insert("TmpfsOptions".into(), Value::Object(tmpfs));
        }
        _ => {
            let extra = [("bind", &bind), ("volume", &volume), ("tmpfs", &tmpfs)]
                .into_iter()
                .find(|(t, o)| *t != typ && !o.is_empty());
            if let Some((t, _)) = extra {
                return Err(bad(format!(
                    "cannot mix '{t}-*' options with mount type '{typ}'"
                )));
            }
        }
    }
    if !m.contains_key("Target") {
        return Err(bad("target is required".into()));
    }
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_as_docker() {
        let mut v = ["myvol", "8ac29d", "m2", "4908ea", "tv"];
        v.sort_by(|a, b| {
            if natural_less(a, b) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        });
        assert_eq!(v, ["8ac29d", "4908ea", "m2", "myvol", "tv"]);
    }

    #[test]
    fn mounts_parse_as_docker() {
        let m = parse_mount("type=volume,source=data,target=/x,readonly,volume-nocopy,volume-opt=type=tmpfs,volume-label=a=b").unwrap();
        assert_eq!(
            m,
            json!({"Type": "volume", "Source": "data", "Target": "/x", "ReadOnly": true,
                   "VolumeOptions": {"NoCopy": true, "Labels": {"a": "b"},
                                     "DriverConfig": {"Name": "", "Options": {"type": "tmpfs"}}}})
        );
        let m = parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        assert_eq!(
            m["TmpfsOptions"],
            json!({"SizeBytes": 1 << 20, "Mode": 0o1770})
        );
        let m = parse_mount("type=bind,src=/h,target=/c,bind-propagation=rshared").unwrap();
        assert_eq!(m["BindOptions"], json!({"Propagation": "rshared"}));
        assert!(parse_mount("type=bind,src=/h")
            .unwrap_err()
            .to_string()
            .contains("target is required"));
        assert!(parse_mount("type=bind,src=/h,target=/x,volume-nocopy").is_err());
        assert!(parse_mount("bogus=1,target=/x").is_err());
    }
}
