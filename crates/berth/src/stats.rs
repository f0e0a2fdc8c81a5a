//! `stats`: docker's CPU, memory, network and block I/O figures from the
//! stats endpoint, once (`--no-stream`) or refreshed in place.

use std::io::Write;

use berth_client::query::escape_path;
use berth_client::Query;
use clap::Args;
use serde_json::{json, Value};

use crate::output::Format;
use crate::units::{bytes_size, human_size};
use crate::Ctx;

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Pretty-print stats using a Go template
    #[arg(long, default_value = "")]
    pub format: String,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    pub containers: Vec<String>,
}

const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Container", "CONTAINER"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

fn u(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// One row from one stats sample, computed as docker's CLI does (linux).
pub fn row(container: &str, s: &Value, no_trunc: bool) -> Value {
    let cpu = &s["cpu_stats"];
    let pre = &s["precpu_stats"];
    let cpu_delta = u(&cpu["cpu_usage"]["total_usage"]) - u(&pre["cpu_usage"]["total_usage"]);
    let sys_delta = u(&cpu["system_cpu_usage"]) - u(&pre["system_cpu_usage"]);
    let mut online = u(&cpu["online_cpus"]);
    if online == 0.0 {
        online = cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map(|a| a.len() as f64)
            .unwrap_or(0.0);
    }
    let cpu_pct = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let mem = &s["memory_stats"];
    let usage = u(&mem["usage"]);
    // The page cache is not the container's: cgroup v1 total_inactive_file,
    // v2 inactive_file.
    let inactive = mem["stats"]["total_inactive_file"]
        .as_f64()
        .or_else(|| mem["stats"]["inactive_file"].as_f64());
    let used = match inactive {
        Some(i) if i < usage => usage - i,
        _ => usage,
    };
    let limit = u(&mem["limit"]);
    let mem_pct = if limit > 0.0 {
        used / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in s["networks"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        rx += u(&n["rx_bytes"]);
        tx += u(&n["tx_bytes"]);
    }
    let (mut read, mut write) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read += u(&e["value"]),
            Some("write") => write += u(&e["value"]),
            _ => {}
        }
    }
    let id = s["id"].as_str().unwrap_or("");
    json!({
        "ID": if no_trunc { id.to_string() } else { id.chars().take(12).collect() },
        "Container": container,
        "Name": s["name"].as_str().unwrap_or("").trim_start_matches('/'),
        "CPUPerc": format!("{cpu_pct:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(used), bytes_size(limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": format!("{} / {}", human_size(rx), human_size(tx)),
        "BlockIO": format!("{} / {}", human_size(read), human_size(write)),
        "PIDs": s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
    })
}

/// One sample of every container, fetched in parallel (each takes the
/// daemon about a second: it needs two readings for the CPU figure).
fn sample(ctx: &Ctx, names: &[String], no_trunc: bool) -> anyhow::Result<Vec<Value>> {
    let host = ctx.client.host().clone();
    let version = ctx.client.api_version()?.to_string();
    let handles: Vec<_> = names
        .iter()
        .map(|n| {
            let (host, version, n) = (host.clone(), version.clone(), n.clone());
            std::thread::spawn(move || {
                let c = berth_client::Client::with_version(host, &version);
                let q = Query::new().push("stream", "0");
                c.get_json(&format!(
                    "/containers/{}/stats{}",
                    escape_path(&n),
                    q.encode()
                ))
                .map(|s| row(&n, &s, no_trunc))
            })
        })
        .collect();
    let mut rows = Vec::new();
    for h in handles {
        rows.push(
            h.join()
                .map_err(|_| anyhow::anyhow!("a stats thread panicked"))??,
        );
    }
    Ok(rows)
}

pub fn stats(ctx: &Ctx, a: StatsArgs) -> anyhow::Result<()> {
    let listed = a.containers.is_empty();
    let names = |ctx: &Ctx| -> anyhow::Result<Vec<String>> {
        if !listed {
            return Ok(a.containers.clone());
        }
        let q = Query::new().flag("all", a.all);
        let list = ctx
            .client
            .get_json(&format!("/containers/json{}", q.encode()))?;
        Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["Id"].as_str())
            .map(|id| id.chars().take(12).collect())
            .collect())
    };
    let fmt = Format::new(
        &a.format,
        "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
    )?;
    loop {
        let rows = sample(ctx, &names(ctx)?, a.no_trunc)?;
        let mut screen = Vec::new();
        fmt.print(HEADERS, &rows, &mut screen)?;
        let mut out = ctx.out();
        if !a.no_stream {
            // Redraw in place, as docker does.
            out.write_all(b"\x1b[2J\x1b[H")?;
        }
        out.write_all(&screen)?;
        out.flush()?;
        if a.no_stream {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_as_docker() {
        let s = json!({
            "id": "0123456789abcdef", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 3145728, "limit": 10485760, "stats": {"total_inactive_file": 1048576}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 20}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}, {"op": "Write", "value": 0}]},
            "pids_stats": {"current": 3}
        });
        let r = row("web", &s, false);
        assert_eq!(r["CPUPerc"], "40.00%");
        assert_eq!(r["MemUsage"], "2MiB / 10MiB");
        assert_eq!(r["MemPerc"], "20.00%");
        assert_eq!(r["NetIO"], "1.5kB / 20B");
        assert_eq!(r["BlockIO"], "4.1kB / 0B");
        assert_eq!(r["PIDs"], "3");
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Name"], "web");
    }
}
