//! `berth plugin create/ls/inspect/set/enable/disable/rm` with docker's
//! flags, output and errors. `install`, `push` and `upgrade` move plugins
//! to and from a registry, which berthd cannot do: they say so.

use std::io::Write;

use berth_archive::Compression;
use berth_client::query::escape_path;
use berth_client::{Body, Query};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::cpfrom::{abs_path, clean, go_errno};
use crate::images::short_id;
use crate::output::Format;
use crate::system::filters_json;
use crate::Ctx;

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum PluginCmd {
    /// Create a plugin from a rootfs and configuration. Plugin data directory must contain config.json and rootfs directory.
    Create(CreateArgs),
    /// Disable a plugin
    Disable(DisableArgs),
    /// Enable a plugin
    Enable(EnableArgs),
    /// Display detailed information on one or more plugins
    Inspect(InspectArgs),
    /// Install a plugin (not supported: berthd cannot pull plugins)
    Install(UnsupportedArgs),
    /// List plugins
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Push a plugin to a registry (not supported: berthd cannot push plugins)
    Push(UnsupportedArgs),
    /// Remove one or more plugins
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Change settings for a plugin
    Set(SetArgs),
    /// Upgrade an existing plugin (not supported: berthd cannot pull plugins)
    Upgrade(UnsupportedArgs),
    #[command(external_subcommand)]
    Other(Vec<String>),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Compress the context using gzip
    #[arg(long)]
    pub compress: bool,
    // Not `plugin`: completion offers existing plugins for that id.
    #[arg(value_name = "PLUGIN")]
    pub name: String,
    #[arg(value_name = "PLUGIN-DATA-DIR")]
    pub dir: String,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display plugin IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Provide filter values (e.g. "enabled=true")
    #[arg(short, long, action = crate::cli::many())]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long, default_value = "")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format the output using the given Go template
    #[arg(short, long, default_value = "")]
    pub format: String,
    #[arg(required = true)]
    pub plugins: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SetArgs {
    pub plugin: String,
    #[arg(required = true, value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
}

#[derive(Args, Debug)]
pub struct EnableArgs {
    /// HTTP client timeout (in seconds)
    #[arg(long, default_value_t = 30, allow_negative_numbers = true)]
    pub timeout: i64,
    pub plugin: String,
}

#[derive(Args, Debug)]
pub struct DisableArgs {
    /// Force the disable of an active plugin
    #[arg(short, long)]
    pub force: bool,
    pub plugin: String,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of an active plugin
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub plugins: Vec<String>,
}

// Whatever docker's `install`, `push` and `upgrade` take, flags included:
// the answer does not depend on it.
#[derive(Args, Debug)]
pub struct UnsupportedArgs {
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn dispatch(ctx: &Ctx, cmd: PluginCmd) -> anyhow::Result<()> {
    match cmd {
        PluginCmd::Create(a) => create(ctx, a),
        PluginCmd::Ls(a) => ls(ctx, a),
        PluginCmd::Inspect(a) => crate::volumes::inspect_each(ctx, &a.format, &a.plugins, |n| {
            format!("/plugins/{}/json", escape_path(n))
        }),
        PluginCmd::Set(a) => {
            let path = format!("/plugins/{}/set", escape_path(&a.plugin));
            ctx.client.post_json(&path, Some(&json!(a.settings)))?;
            Ok(())
        }
        PluginCmd::Enable(a) => {
            if a.timeout < 0 {
                anyhow::bail!("negative timeout {} is invalid", a.timeout);
            }
            let q = Query::new().push("timeout", a.timeout.to_string());
            post_action(ctx, &a.plugin, "enable", q)
        }
        PluginCmd::Disable(a) => {
            let q = Query::new().flag("force", a.force);
            post_action(ctx, &a.plugin, "disable", q)
        }
        PluginCmd::Rm(a) => {
            let q = Query::new().flag("force", a.force).encode();
            crate::volumes::remove_each(ctx, &a.plugins, |n| {
                format!("/plugins/{}{q}", escape_path(n))
            })
        }
        PluginCmd::Install(_) => unsupported("install", "pull plugins from a registry"),
        PluginCmd::Push(_) => unsupported("push", "push plugins to a registry"),
        PluginCmd::Upgrade(_) => unsupported("upgrade", "pull plugins from a registry"),
        PluginCmd::Other(v) => {
            let name = v.first().map(String::as_str).unwrap_or("");
            anyhow::bail!("'plugin {name}' is not a berth command.\nSee 'berth plugin --help'")
        }
    }
}

fn unsupported(what: &str, cannot: &str) -> anyhow::Result<()> {
    anyhow::bail!(
        "'plugin {what}' is not supported by berth yet: berthd keeps plugins made by 'berth plugin create' but cannot {cannot}"
    )
}

/// `POST /plugins/{name}/{action}`; prints the name as docker does.
fn post_action(ctx: &Ctx, name: &str, action: &str, q: Query) -> anyhow::Result<()> {
    let path = format!("/plugins/{}/{action}{}", escape_path(name), q.encode());
    ctx.client.post_json(&path, None)?;
    writeln!(ctx.out(), "{name}")?;
    Ok(())
}

/// docker's checks before it sends anything: the directory is one (not a
/// link to one) and its config.json holds a JSON object.
fn check_context(dir: &str) -> anyhow::Result<String> {
    let abs = abs_path(dir)?;
    let meta = std::fs::symlink_metadata(&abs)
        .map_err(|e| anyhow::anyhow!("lstat {abs}: {}", go_errno(&e)))?;
    if !meta.is_dir() {
        anyhow::bail!("context must be a directory");
    }
    let config = clean(&format!("{dir}/config.json"));
    let bytes =
        std::fs::read(&config).map_err(|e| anyhow::anyhow!("open {config}: {}", go_errno(&e)))?;
    // Only the first JSON value counts, as Go's decoder reads it; the
    // daemon checks the fields.
    match serde_json::Deserializer::from_slice(&bytes)
        .into_iter::<Value>()
        .next()
    {
        Some(Ok(Value::Object(_) | Value::Null)) => Ok(abs),
        Some(Ok(_)) => anyhow::bail!("{config}: a plugin config is a JSON object"),
        Some(Err(e)) => anyhow::bail!("{config}: {e}"),
        None => anyhow::bail!("{config}: EOF"),
    }
}

fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<()> {
    let dir = check_context(&a.dir)?;
    let compression = if a.compress {
        Compression::Gzip
    } else {
        Compression::None
    };
    let mut tar = crate::build::context_tar(dir.into(), compression, "plugin context")?;
    let q = Query::new().push("name", a.name.as_str());
    ctx.client.request(
        "POST",
        &format!("/plugins/create{}", q.encode()),
        &[],
        Body::Stream {
            content_type: "application/x-tar",
            reader: &mut tar,
        },
    )?;
    writeln!(ctx.out(), "{}", a.name)?;
    Ok(())
}

const TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Description}}\t{{.Enabled}}";
const RAW: &str =
    "plugin_id: {{.ID}}\nname: {{.Name}}\ndescription: {{.Description}}\nenabled: {{.Enabled}}\n";
const HEADERS: &[(&str, &str)] = &[
    ("ID", "ID"),
    ("Name", "NAME"),
    ("Description", "DESCRIPTION"),
    ("Enabled", "ENABLED"),
    ("PluginReference", "IMAGE"),
];

/// `s` cut to `max` characters, the last one an ellipsis (docker counts
/// East Asian wide characters twice; berth counts every one once).
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    s.chars().take(max - 1).chain(['…']).collect()
}

/// A plugin as `plugin ls --format` sees it (docker's plugin context).
fn row(p: &Value, trunc: bool) -> Value {
    let desc: String = p["Config"]["Description"]
        .as_str()
        .unwrap_or("")
        .chars()
        .filter(|c| !matches!(c, '\n' | '\r'))
        .collect();
    json!({
        "ID": short_id(p["Id"].as_str().unwrap_or(""), !trunc),
        "Name": p["Name"],
        "Description": if trunc { ellipsis(&desc, 45) } else { desc },
        "Enabled": p["Enabled"].as_bool().unwrap_or(false),
        "PluginReference": p["PluginReference"],
    })
}

fn ls(ctx: &Ctx, a: LsArgs) -> anyhow::Result<()> {
    let mut q = Query::new();
    if !a.filter.is_empty() {
        q = q.push("filters", filters_json(&a.filter)?);
    }
    let mut list = match ctx.client.get_json(&format!("/plugins{}", q.encode()))? {
        Value::Array(l) => l,
        _ => Vec::new(),
    };
    crate::volumes::sort_by_name(&mut list);
    let rows: Vec<Value> = list.iter().map(|p| row(p, !a.no_trunc)).collect();
    // -q changes only docker's own formats; a template of the user's wins.
    let spec = match (a.format.as_str(), a.quiet) {
        ("" | "table", true) => "{{.ID}}",
        ("raw", true) => "plugin_id: {{.ID}}",
        ("raw", false) => RAW,
        (f, _) => f,
    };
    Format::new(spec, TABLE)?.print(HEADERS, &rows, &mut ctx.out())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_as_docker() {
        let p = json!({"Id": "0123456789abcdef", "Name": "a/b:latest", "Enabled": false,
                       "PluginReference": "docker.io/a/b:latest",
                       "Config": {"Description": "line\none\r that goes on and on and on and on and on"}});
        let r = row(&p, true);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(
            r["Description"],
            "lineone that goes on and on and on and on an…"
        );
        assert_eq!(r["Description"].as_str().unwrap().chars().count(), 45);
        let r = row(&p, false);
        assert_eq!(r["ID"], "0123456789abcdef");
        assert_eq!(
            r["Description"],
            "lineone that goes on and on and on and on and on"
        );
        assert_eq!(ellipsis("short", 45), "short");
    }
}
