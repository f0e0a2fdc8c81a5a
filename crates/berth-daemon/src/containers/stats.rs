//! `GET /containers/{id}/stats` and `top`: the shim's cgroup statistics
//! in docker's JSON, and the container's processes as `ps` shows them.

use std::sync::Arc;
use std::time::Duration;

use berth_errdefs::ErrorKind;
use serde_json::{json, Value};

use super::shim;
use crate::engine::Engine;
use crate::error::ApiError;

/// docker samples once a second when streaming.
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// The system's total CPU time in nanoseconds (docker's
/// `system_cpu_usage`): the first line of /proc/stat, in clock ticks.
fn system_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(7)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on every Linux docker supports.
    ticks * 10_000_000
}

fn online_cpus() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

fn blkio(entries: &[berth_cgroups::stats::BlkioEntry]) -> Value {
    let v: Vec<Value> = entries
        .iter()
        .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
        .collect();
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

/// What one stats sample reads: the cgroup's counters (from the shim) and
/// the network interfaces' (docker's `networks`: `None` when the
/// container has no network namespace of its own, as docker omits it).
#[derive(Debug, Clone)]
pub struct Sample {
    pub cgroup: berth_cgroups::Stats,
    pub networks: Option<Value>,
}

/// docker's per-interface `networks` from a `/proc/<pid>/net/dev`: every
/// interface but the loopback, which docker does not count; `None` if
/// that leaves none.
fn parse_net_dev(text: &str) -> Option<Value> {
    let mut out = serde_json::Map::new();
    // Two header lines, then `name: rx(8 fields) tx(8 fields)`.
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let n: Vec<u64> = counters
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        if n.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            json!({
                "rx_bytes": n[0], "rx_packets": n[1], "rx_errors": n[2], "rx_dropped": n[3],
                "tx_bytes": n[8], "tx_packets": n[9], "tx_errors": n[10], "tx_dropped": n[11],
            }),
        );
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// The interface counters of the network namespace `pid` is in, unless
/// that is the daemon's own (the host's: `--network host`), whose
/// interfaces are not the container's.
fn network_stats(pid: u32) -> Option<Value> {
    use std::os::unix::fs::MetadataExt;
    let theirs = std::fs::metadata(format!("/proc/{pid}/ns/net")).ok()?;
    let ours = std::fs::metadata("/proc/self/ns/net").ok()?;
    if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
        return None;
    }
    parse_net_dev(&std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?)
}

/// One docker stats sample; `pre` is the previous sample's cpu part.
pub fn docker_stats(id: &str, name: &str, sample: &Sample, pre: &Value) -> Value {
    let s = &sample.cgroup;
    let now = berth_image::time::rfc3339(std::time::SystemTime::now());
    let mut mem_stats = serde_json::Map::new();
    for (k, v) in &s.memory.raw {
        mem_stats.insert(k.clone(), json!(v));
    }
    let cpu = json!({
        "cpu_usage": {
            "total_usage": s.cpu.usage.total,
            "percpu_usage": s.cpu.usage.percpu,
            "usage_in_kernelmode": s.cpu.usage.kernel,
            "usage_in_usermode": s.cpu.usage.user,
        },
        "system_cpu_usage": system_cpu_ns(),
        "online_cpus": online_cpus(),
        "throttling_data": {
            "periods": s.cpu.throttling.periods,
            "throttled_periods": s.cpu.throttling.throttled_periods,
            "throttled_time": s.cpu.throttling.throttled_time,
        },
    });
    let mut v = json!({
        "read": now,
        "preread": if pre.is_null() { "0001-01-01T00:00:00Z".to_string() } else { now.clone() },
        "pids_stats": {"current": s.pids.current, "limit": s.pids.limit},
        "blkio_stats": {
            "io_service_bytes_recursive": blkio(&s.blkio.io_service_bytes_recursive),
            "io_serviced_recursive": blkio(&s.blkio.io_serviced_recursive),
            "io_queue_recursive": blkio(&s.blkio.io_queued_recursive),
            "io_service_time_recursive": Value::Null,
            "io_wait_time_recursive": Value::Null,
            "io_merged_recursive": Value::Null,
            "io_time_recursive": Value::Null,
            "sectors_recursive": Value::Null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu,
        "precpu_stats": if pre.is_null() { json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}) } else { pre.clone() },
        "memory_stats": {
            "usage": s.memory.usage.usage,
            "max_usage": s.memory.usage.max,
            "stats": mem_stats,
            "failcnt": s.memory.usage.failcnt,
            "limit": limit_or_host(s.memory.usage.limit),
        },
        "name": format!("/{name}"),
        "id": id,
    });
    if let Some(n) = &sample.networks {
        v["networks"] = n.clone();
    }
    v
}

/// An unlimited cgroup reports a huge number; docker shows the host's
/// memory instead.
fn limit_or_host(limit: u64) -> u64 {
    let host = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                })
        })
        .map_or(u64::MAX, |kb| kb * 1024);
    if limit == 0 {
        host
    } else {
        limit.min(host)
    }
}

impl Engine {
    /// One stats sample of a running container, as the shim reads it.
    pub fn container_stats(&self, name: &str) -> Result<(String, String, Sample), ApiError> {
        let c = self.load_container(name)?;
        if !c.state.status.is_live() {
            return Err(super::lifecycle::not_running(&c.id));
        }
        let paths = self.container_paths(&c.id);
        let mut client = shim::connect(&paths, &c.id)?;
        let sample = Sample {
            cgroup: client.stats()?,
            networks: network_stats(c.state.pid),
        };
        Ok((c.id, c.name, sample))
    }

    /// `GET /containers/{id}/top`: `ps` on the host, rows of the
    /// container's processes only (as docker does).
    pub fn top_container(self: &Arc<Self>, name: &str, ps_args: &str) -> Result<Value, ApiError> {
        let c = self.load_container(name)?;
        if !c.state.status.is_live() {
            return Err(super::lifecycle::not_running(&c.id));
        }
        let pids = container_pids(c.state.pid)?;
        let args: Vec<&str> = if ps_args.trim().is_empty() {
            vec!["-ef"]
        } else {
            ps_args.split_whitespace().collect()
        };
        let out = std::process::Command::new("ps")
            .args(&args)
            .output()
            .map_err(|e| ApiError::new(ErrorKind::Internal, format!("running ps: {e}")))?;
        if !out.status.success() {
            return Err(ApiError::new(
                ErrorKind::Internal,
                format!("ps: {}", String::from_utf8_lossy(&out.stderr).trim()),
            ));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

/// The pids in the init's cgroup (any hierarchy lists them all).
fn container_pids(init: u32) -> Result<Vec<u32>, ApiError> {
    let cgroups = std::fs::read_to_string(format!("/proc/{init}/cgroup")).map_err(|e| {
        ApiError::new(
            ErrorKind::Conflict,
            format!("the container's init {init} is gone: {e}"),
        )
    })?;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let dir = if controllers.is_empty() {
            ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
                .iter()
                .map(|root| format!("{root}{path}"))
                .find(|d| std::path::Path::new(&format!("{d}/cgroup.procs")).exists())
        } else {
            let c = controllers
                .split(',')
                .find(|c| !c.starts_with("name="))
                .unwrap_or(controllers);
            let d = format!("/sys/fs/cgroup/{c}{path}");
            std::path::Path::new(&format!("{d}/cgroup.procs"))
                .exists()
                .then_some(d)
        };
        if let Some(d) = dir {
            if let Ok(procs) = std::fs::read_to_string(format!("{d}/cgroup.procs")) {
                let pids: Vec<u32> = procs
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect();
                if !pids.is_empty() {
                    return Ok(pids);
                }
            }
        }
    }
    Ok(vec![init])
}

/// docker's `top` parsing: the header's PID column picks the rows.
fn parse_ps(output: &str, pids: &[u32]) -> Result<Value, ApiError> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| ApiError::bad_request("Couldn't find PID field in ps output"))?;
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<u32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        // The last column keeps its spaces (the command line).
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        processes.push(row);
    }
    Ok(json!({"Titles": titles, "Processes": processes}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_without_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    1296      16    1    2    0     0          0         0      656       8    3    4    0     0       0          0
";
        let v = parse_net_dev(text).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1);
        assert_eq!(v["eth0"]["rx_bytes"], 1296);
        assert_eq!(v["eth0"]["rx_packets"], 16);
        assert_eq!(v["eth0"]["rx_errors"], 1);
        assert_eq!(v["eth0"]["rx_dropped"], 2);
        assert_eq!(v["eth0"]["tx_bytes"], 656);
        assert_eq!(v["eth0"]["tx_packets"], 8);
        assert_eq!(v["eth0"]["tx_errors"], 3);
        assert_eq!(v["eth0"]["tx_dropped"], 4);
        let lo_only = text.lines().take(3).collect::<Vec<_>>().join("\n");
        assert_eq!(parse_net_dev(&lo_only), None);
    }

    #[test]
    fn ps_rows_of_the_container_only() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init\nroot 42 1 0 10:01 ? 00:00:00 sleep 100\n";
        let v = parse_ps(out, &[42]).unwrap();
        assert_eq!(v["Titles"][1], "PID");
        assert_eq!(v["Processes"].as_array().unwrap().len(), 1);
        assert_eq!(v["Processes"][0][7], "sleep 100");
        assert!(parse_ps("A B\n", &[1]).is_err());
    }
}
