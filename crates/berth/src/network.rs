//! `berth network ...`: create, ls, inspect, rm, prune, connect and
//! disconnect, over the `/networks` endpoints, with docker's output.

use std::io::Write;

use berth_client::query::escape_path;
use berth_client::Query;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::images::{fail_all, short_id};
use crate::network_create::{self, CreateArgs};
use crate::output::Format;
use crate::system::filters_json;
use crate::Ctx;

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum NetworkCmd {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Provide filter values (e.g. 'driver=bridge')
    #[arg(short, long, action = crate::cli::many())]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long, default_value = "")]
    pub format: String,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long, default_value = "")]
    pub format: String,
    /// Verbose output for diagnostics
    #[arg(short, long)]
    pub verbose: bool,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Provide filter values (e.g. 'until=<timestamp>')
    #[arg(long, action = crate::cli::many())]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long, action = crate::cli::many())]
    pub alias: Vec<String>,
    /// Driver options for the network
    #[arg(long, action = crate::cli::many())]
    pub driver_opt: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long, default_value = "")]
    pub ip: String,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long, default_value = "")]
    pub ip6: String,
    /// Add link-local address for the container
    #[arg(long, action = crate::cli::many())]
    pub link_local_ip: Vec<String>,
    pub network: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

pub fn dispatch(ctx: &Ctx, cmd: NetworkCmd) -> anyhow::Result<()> {
    match cmd {
        NetworkCmd::Create(a) => create(ctx, a),
        NetworkCmd::Ls(a) => ls(ctx, a),
        NetworkCmd::Inspect(a) => crate::containers::inspect_typed_sized(
            ctx,
            Some("network"),
            &a.format,
            &a.networks,
            a.verbose,
        ),
        NetworkCmd::Rm(a) => rm(ctx, a),
        NetworkCmd::Prune(a) => prune(ctx, a),
        NetworkCmd::Connect(a) => connect(ctx, a),
        NetworkCmd::Disconnect(a) => disconnect(ctx, a),
    }
}

fn npath(name: &str) -> String {
    format!("/networks/{}", escape_path(name))
}

fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<()> {
    let body = network_create::body(&a).map_err(|msg| crate::StatusError { code: 1, msg })?;
    let r = ctx.client.post_json("/networks/create", Some(&body))?;
    if let Some(w) = r["Warning"].as_str().filter(|w| !w.is_empty()) {
        let _ = writeln!(std::io::stderr(), "{w}");
    }
    writeln!(ctx.out(), "{}", r["Id"].as_str().unwrap_or(""))?;
    Ok(())
}

/// Go's `time.Time` String of an RFC 3339 time, fraction kept to the
/// digit (`2026-11-22 15:13:31.76922963 +0000 UTC`).
fn created_at(rfc3339: &str) -> String {
    let Some(secs) = crate::units::parse_rfc3339(rfc3339) else {
        return String::new();
    };
    let base = crate::units::go_time_string(secs);
    let frac = rfc3339
        .get(19..)
        .and_then(|r| r.strip_prefix('.'))
        .map(|r| {
            r.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .unwrap_or_default();
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        return base;
    }
    // The seconds end at byte 19 of `YYYY-MM-DD hh:mm:ss`.
    format!("{}.{frac}{}", &base[..19], &base[19..])
}

/// Labels as docker's formatter joins them: `k=v,k2=v2`.
fn labels(v: &Value) -> String {
    let mut l: Vec<String> = v
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    l.sort();
    l.join(",")
}

/// One `network ls` row: the fields docker's network formatter offers.
fn network_row(n: &Value, no_trunc: bool) -> Value {
    let flag = |k: &str| n[k].as_bool().unwrap_or(false).to_string();
    let mut row = json!({
        "ID": short_id(n["Id"].as_str().unwrap_or(""), no_trunc),
        "Name": n["Name"],
        "Driver": n["Driver"],
        "Scope": n["Scope"],
        "IPv6": flag("EnableIPv6"),
        "Internal": flag("Internal"),
        "Labels": labels(&n["Labels"]),
        "CreatedAt": created_at(n["Created"].as_str().unwrap_or("")),
    });
    // Only daemons of API 1.47 and later say whether IPv4 is on; docker's
    // clients before that have no such field.
    if n.get("EnableIPv4").is_some() {
        row["IPv4"] = flag("EnableIPv4").into();
    }
    row
}

const HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv4", "IPV4"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

/// Go's natural order (`net2` before `net10`), as docker sorts names.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (i, j) = (run(x), run(y));
                let (n, m) = (&x[..i], &y[..j]);
                let trim = |s: &'_ [u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
                let (n, m) = (&n[trim(n)..], &m[trim(m)..]);
                let ord = n.len().cmp(&m.len()).then_with(|| n.cmp(m));
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
                x = &x[i..];
                y = &y[j..];
            }
            (Some(c), Some(d)) if c != d => return c.cmp(d),
            _ => {
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn ls(ctx: &Ctx, a: LsArgs) -> anyhow::Result<()> {
    let mut q = Query::new();
    if !a.filter.is_empty() {
        q = q.push("filters", filters_json(&a.filter)?);
    }
    let list = ctx.client.get_json(&format!("/networks{}", q.encode()))?;
    let mut nets: Vec<&Value> = list.as_array().into_iter().flatten().collect();
    nets.sort_by(|x, y| {
        natural_cmp(
            x["Name"].as_str().unwrap_or(""),
            y["Name"].as_str().unwrap_or(""),
        )
    });
    let rows: Vec<Value> = nets.iter().map(|n| network_row(n, a.no_trunc)).collect();
    let default = if a.quiet {
        "{{.ID}}"
    } else {
        "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
    };
    let spec = if a.quiet { "" } else { a.format.as_str() };
    Format::new(spec, default)?.print(HEADERS, &rows, &mut ctx.out())
}

fn rm(ctx: &Ctx, a: RmArgs) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    let mut out = ctx.out();
    for n in &a.networks {
        match ctx.client.delete(&npath(n)) {
            Ok(_) => writeln!(out, "{n}")?,
            Err(e) if a.force && e.status() == Some(404) => {}
            Err(e) => failed.push(e.to_string()),
        }
    }
    drop(out);
    fail_all(failed)
}

fn prune(ctx: &Ctx, a: PruneArgs) -> anyhow::Result<()> {
    let warning =
        "WARNING! This will remove all custom networks not used by at least one container.";
    if !a.force && !crate::manage::confirm(warning)? {
        return Ok(());
    }
    prune_networks(ctx, &a.filter, &mut ctx.out())
}

/// `POST /networks/prune` and docker's "Deleted Networks:" section (also
/// part of `system prune`).
pub fn prune_networks(ctx: &Ctx, filters: &[String], out: &mut dyn Write) -> anyhow::Result<()> {
    let q = crate::manage::filters_query(filters)?;
    let section = ("NetworksDeleted", "Deleted Networks");
    crate::manage::post_prune(ctx, "networks", q, section, out).map(|_| ())
}

/// The `POST /networks/{id}/connect` body: the endpoint's settings.
fn connect_body(a: &ConnectArgs) -> Value {
    let mut ipam = serde_json::Map::new();
    if !a.ip.is_empty() {
        ipam.insert("IPv4Address".into(), a.ip.clone().into());
    }
    if !a.ip6.is_empty() {
        ipam.insert("IPv6Address".into(), a.ip6.clone().into());
    }
    if !a.link_local_ip.is_empty() {
        ipam.insert("LinkLocalIPs".into(), json!(a.link_local_ip));
    }
    json!({
        "Container": a.container,
        "EndpointConfig": {
            "IPAMConfig": ipam,
            "Aliases": a.alias,
            "DriverOpts": network_create::kv_map(&a.driver_opt),
        },
    })
}

fn connect(ctx: &Ctx, a: ConnectArgs) -> anyhow::Result<()> {
    ctx.client.post_json(
        &format!("{}/connect", npath(&a.network)),
        Some(&connect_body(&a)),
    )?;
    Ok(())
}

fn disconnect(ctx: &Ctx, a: DisconnectArgs) -> anyhow::Result<()> {
    let body = json!({"Container": a.container, "Force": a.force});
    ctx.client
        .post_json(&format!("{}/disconnect", npath(&a.network)), Some(&body))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_rows_as_docker() {
        let n = json!({"Name": "nd-one", "Id": "17c97a3590e0ac937e225f4f6837244d2dee5cec43591301c3416553acb2d716",
            "Created": "2026-11-22T15:13:31.76922963Z", "Scope": "local", "Driver": "bridge",
            "EnableIPv6": true, "Internal": false, "Labels": {"b": "2", "a": "1"}});
        let r = network_row(&n, false);
        assert_eq!(r["ID"], "17c97a3590e0");
        assert_eq!(r["IPv6"], "true");
        assert!(r.get("IPv4").is_none());
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["CreatedAt"], "2026-11-22 15:13:31.76922963 +0000 UTC");
        assert_eq!(
            network_row(&n, true)["ID"],
            "17c97a3590e0ac937e225f4f6837244d2dee5cec43591301c3416553acb2d716"
        );
        assert_eq!(
            created_at("2026-11-22T15:13:31Z"),
            "2026-11-22 15:13:31 +0000 UTC"
        );
        assert_eq!(
            created_at("2026-11-22T15:13:31.500Z"),
            "2026-11-22 15:13:31.5 +0000 UTC"
        );

        let mut out = Vec::new();
        Format::new("", "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}")
            .unwrap()
            .print(HEADERS, &[r], &mut out)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NETWORK ID     NAME      DRIVER    SCOPE\n17c97a3590e0   nd-one    bridge    local\n"
        );
    }

    #[test]
    fn names_sort_naturally() {
        let mut v = vec!["net10", "net2", "bridge", "net1", "a01"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["a01", "bridge", "net1", "net2", "net10"]);
    }

    #[test]
    fn connect_sends_endpoint_settings() {
        let a = ConnectArgs {
            alias: vec!["a".into(), "b".into()],
            driver_opt: vec![],
            ip: "10.5.0.3".into(),
            ip6: "fd00:1::3".into(),
            link_local_ip: vec![],
            network: "net5".into(),
            container: "ctr".into(),
        };
        assert_eq!(
            connect_body(&a),
            json!({"Container": "ctr", "EndpointConfig": {
                "IPAMConfig": {"IPv4Address": "10.5.0.3", "IPv6Address": "fd00:1::3"},
                "Aliases": ["a", "b"], "DriverOpts": {}}})
        );
    }
}
