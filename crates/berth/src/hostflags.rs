//! The `run`/`create` flags that map one to one onto HostConfig (and a
//! few Config) fields: namespaces, cgroup limits beyond memory and CPUs,
//! block I/O, logging, OOM handling. Kept apart from run.rs, which holds
//! the flags with behaviour of their own (attach, restart, health...).

use clap::Args;
use serde_json::{json, Map, Value};

use crate::run::{ram_in_bytes, usage};

/// The limits `update` can change too.
#[derive(Args, Debug, Default)]
pub struct LimitOpts {
    /// Memory soft limit
    #[arg(long)]
    pub memory_reservation: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long)]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Limit CPU real-time period in microseconds
    #[arg(long)]
    pub cpu_rt_period: Option<i64>,
    /// Limit CPU real-time runtime in microseconds
    #[arg(long)]
    pub cpu_rt_runtime: Option<i64>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long, default_value = "")]
    pub cpuset_mems: String,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long)]
    pub blkio_weight: Option<u16>,
}

impl LimitOpts {
    /// Adds the limits set to a HostConfig (or an update's body).
    pub fn apply(&self, host: &mut Map<String, Value>) -> anyhow::Result<()> {
        if !self.cpuset_mems.is_empty() {
            host.insert("CpusetMems".into(), self.cpuset_mems.clone().into());
        }
        if let Some(m) = &self.memory_reservation {
            host.insert("MemoryReservation".into(), ram_in_bytes(m)?.into());
        }
        let keys = [
            "CpuPeriod",
            "CpuQuota",
            "CpuRealtimePeriod",
            "CpuRealtimeRuntime",
        ];
        let values = [
            self.cpu_period,
            self.cpu_quota,
            self.cpu_rt_period,
            self.cpu_rt_runtime,
        ];
        for (key, value) in keys.into_iter().zip(values) {
            if let Some(v) = value {
                host.insert(key.into(), v.into());
            }
        }
        if let Some(w) = self.blkio_weight {
            if w != 0 && !(10..=1000).contains(&w) {
                return Err(usage(format!(
                    "invalid value for --blkio-weight: {w}: it must be 0 or between 10 and 1000"
                )));
            }
            host.insert("BlkioWeight".into(), w.into());
        }
        Ok(())
    }
}

#[derive(Args, Debug, Default)]
pub struct HostOpts {
    #[command(flatten)]
    pub limits: LimitOpts,
    /// Optional parent cgroup for the container
    #[arg(long, default_value = "")]
    pub cgroup_parent: String,
    /// Cgroup namespace to use (host|private)
    #[arg(long, default_value = "")]
    pub cgroupns: String,
    /// Container NIS domain name
    #[arg(long, default_value = "")]
    pub domainname: String,
    /// Add additional groups to join
    #[arg(long, action = crate::cli::many())]
    pub group_add: Vec<String>,
    /// IPC mode to use
    #[arg(long, default_value = "")]
    pub ipc: String,
    /// PID namespace to use
    #[arg(long, default_value = "")]
    pub pid: String,
    /// UTS namespace to use
    #[arg(long, default_value = "")]
    pub uts: String,
    /// User namespace to use
    #[arg(long, default_value = "")]
    pub userns: String,
    /// Logging driver for the container
    #[arg(long, default_value = "")]
    pub log_driver: String,
    /// Log driver options
    #[arg(long, action = crate::cli::many())]
    pub log_opt: Vec<String>,
    /// Disable OOM Killer
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long, allow_hyphen_values = true)]
    pub oom_score_adj: Option<i64>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swappiness: Option<i64>,
    /// Kernel memory limit (deprecated by the kernel)
    #[arg(long)]
    pub kernel_memory: Option<String>,
    /// Block IO weight (relative device weight)
    #[arg(long, action = crate::cli::many())]
    pub blkio_weight_device: Vec<String>,
    /// Limit read rate (bytes per second) from a device
    #[arg(long, action = crate::cli::many())]
    pub device_read_bps: Vec<String>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long, action = crate::cli::many())]
    pub device_write_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device
    #[arg(long, action = crate::cli::many())]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (IO per second) to a device
    #[arg(long, action = crate::cli::many())]
    pub device_write_iops: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long, action = crate::cli::many())]
    pub device_cgroup_rule: Vec<String>,
    /// Storage driver options for the container
    #[arg(long, action = crate::cli::many())]
    pub storage_opt: Vec<String>,
    /// Optional volume driver for the container
    #[arg(long, default_value = "")]
    pub volume_driver: String,
    /// Add link to another container
    #[arg(long, action = crate::cli::many())]
    pub link: Vec<String>,
    /// Write the container ID to the file
    #[arg(long, default_value = "")]
    pub cidfile: String,
    /// Suppress the pull output
    #[arg(short, long)]
    pub quiet: bool,
    /// Container isolation technology (only "default" on Linux)
    #[arg(long, default_value = "")]
    pub isolation: String,
    /// Add an annotation to the container (passed through to the OCI runtime)
    #[arg(long, action = crate::cli::many())]
    pub annotation: Vec<String>,
    /// GPU devices to add to the container (not supported)
    #[arg(long, default_value = "")]
    pub gpus: String,
    /// Container IPv4/IPv6 link-local addresses (not supported)
    #[arg(long, action = crate::cli::many())]
    pub link_local_ip: Vec<String>,
    /// Time between running the check during the start period (ms|s|m|h)
    #[arg(long, default_value = "")]
    pub health_start_interval: String,
    /// CPU count (Windows only)
    #[arg(long)]
    pub cpu_count: Option<i64>,
    /// CPU percent (Windows only)
    #[arg(long)]
    pub cpu_percent: Option<i64>,
    /// Maximum IO bandwidth limit for the system drive (Windows only)
    #[arg(long)]
    pub io_maxbandwidth: Option<String>,
    /// Maximum IOps limit for the system drive (Windows only)
    #[arg(long)]
    pub io_maxiops: Option<u64>,
    /// Bind mount the engine API socket into the container (not supported)
    #[arg(long)]
    pub use_api_socket: bool,
    /// Skip image verification (berth does not verify signatures: always skipped)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub disable_content_trust: bool,
}

/// Adds the fields of `o` to the create body's HostConfig (`host`) and
/// Config (`cfg`), with docker's names and value checks (exit 125).
pub fn apply(
    o: &HostOpts,
    host: &mut Map<String, Value>,
    cfg: &mut Map<String, Value>,
) -> anyhow::Result<()> {
    refuse_unsupported(o)?;
    if !o.isolation.is_empty() {
        host.insert("Isolation".into(), o.isolation.clone().into());
    }
    for (key, value) in [
        ("CgroupParent", &o.cgroup_parent),
        ("IpcMode", &o.ipc),
        ("PidMode", &o.pid),
        ("UTSMode", &o.uts),
        ("UsernsMode", &o.userns),
        ("VolumeDriver", &o.volume_driver),
    ] {
        if !value.is_empty() {
            host.insert(key.into(), value.clone().into());
        }
    }
    if !o.cgroupns.is_empty() {
        if !matches!(o.cgroupns.as_str(), "host" | "private") {
            return Err(usage(format!(
                "--cgroupns: invalid CGROUP mode {:?}: use \"host\" or \"private\"",
                o.cgroupns
            )));
        }
        host.insert("CgroupnsMode".into(), o.cgroupns.clone().into());
    }
    if !o.domainname.is_empty() {
        cfg.insert("Domainname".into(), o.domainname.clone().into());
    }
    if !o.group_add.is_empty() {
        host.insert("GroupAdd".into(), json!(o.group_add));
    }
    if !o.link.is_empty() {
        host.insert("Links".into(), json!(o.link));
    }
    if !o.log_driver.is_empty() || !o.log_opt.is_empty() {
        let mut opts = Map::new();
        for kv in &o.log_opt {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                usage(format!(
                    "invalid argument \"{kv}\" for \"--log-opt\" flag: invalid key value pair format in log-opt"
                ))
            })?;
            opts.insert(k.into(), v.into());
        }
        host.insert(
            "LogConfig".into(),
            json!({"Type": o.log_driver, "Config": Value::Object(opts)}),
        );
    }
    if o.oom_kill_disable {
        host.insert("OomKillDisable".into(), true.into());
    }
    if let Some(adj) = o.oom_score_adj {
        if !(-1000..=1000).contains(&adj) {
            return Err(usage(format!(
                "invalid value for --oom-score-adj: {adj}: it must be between -1000 and 1000"
            )));
        }
        host.insert("OomScoreAdj".into(), adj.into());
    }
    if let Some(v) = &o.kernel_memory {
        host.insert("KernelMemory".into(), ram_in_bytes(v)?.into());
    }
    if let Some(s) = o.memory_swappiness {
        if !(-1..=100).contains(&s) {
            return Err(usage(format!(
                "invalid value for --memory-swappiness: {s}: it must be between 0 and 100"
            )));
        }
        host.insert("MemorySwappiness".into(), s.into());
    }
    o.limits.apply(host)?;
    let weights = device_values(&o.blkio_weight_device, "blkio-weight-device", |v| {
        v.parse::<u16>()
            .ok()
            .filter(|w| (10..=1000).contains(w))
            .map(|w| json!({"Weight": w}))
    })?;
    // docker's CLI sends this one as [] when empty, the rates as null.
    host.insert("BlkioWeightDevice".into(), Value::Array(weights));
    for (key, flag, values, bytes) in [
        (
            "BlkioDeviceReadBps",
            "device-read-bps",
            &o.device_read_bps,
            true,
        ),
        (
            "BlkioDeviceWriteBps",
            "device-write-bps",
            &o.device_write_bps,
            true,
        ),
        (
            "BlkioDeviceReadIOps",
            "device-read-iops",
            &o.device_read_iops,
            false,
        ),
        (
            "BlkioDeviceWriteIOps",
            "device-write-iops",
            &o.device_write_iops,
            false,
        ),
    ] {
        let rates = device_values(values, flag, |v| {
            let rate = if bytes {
                ram_in_bytes(v).ok().and_then(|r| u64::try_from(r).ok())
            } else {
                v.parse::<u64>().ok()
            };
            rate.map(|r| json!({"Rate": r}))
        })?;
        insert_list(host, key, rates);
    }
    if !o.device_cgroup_rule.is_empty() {
        host.insert("DeviceCgroupRules".into(), json!(o.device_cgroup_rule));
    }
    if !o.storage_opt.is_empty() {
        let mut opts = Map::new();
        for kv in &o.storage_opt {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                usage(format!("invalid storage option {kv:?}: expected KEY=VALUE"))
            })?;
            opts.insert(k.into(), v.into());
        }
        host.insert("StorageOpt".into(), Value::Object(opts));
    }
    if !o.annotation.is_empty() {
        let annotations = crate::network_create::kv_map(&o.annotation);
        host.insert("Annotations".into(), Value::Object(annotations));
    }
    Ok(())
}

/// Flags the daemon's API version is too old for, refused as docker
/// refuses them: "--annotation" needs 1.43, "--health-start-interval" 1.44.
/// Asks the daemon its version only when one of them is set.
pub fn check_api_version(ctx: &crate::Ctx, o: &HostOpts) -> anyhow::Result<()> {
    let needs = [
        ("annotation", !o.annotation.is_empty(), "1.43"),
        (
            "health-start-interval",
            !o.health_start_interval.is_empty(),
            "1.44",
        ),
    ];
    for (flag, _, needed) in needs.into_iter().filter(|(_, set, _)| *set) {
        let daemon = ctx.client.api_version()?;
        if berth_client::client::version_lt(daemon, needed) {
            return Err(usage(format!(
                "\"--{flag}\" requires API version {needed}, but the Docker daemon API version is {daemon}"
            )));
        }
    }
    Ok(())
}

/// Flags docker has that berth cannot honour: a clear error saying why,
/// rather than a container made without them.
fn refuse_unsupported(o: &HostOpts) -> anyhow::Result<()> {
    let windows = "it is for Windows containers only";
    let refused = [
        ("gpus", !o.gpus.is_empty(), "berth has no GPU device support"),
        ("link-local-ip", !o.link_local_ip.is_empty(), "berth's networks assign no link-local addresses"),
        ("cpu-count", o.cpu_count.is_some(), windows),
        ("cpu-percent", o.cpu_percent.is_some(), windows),
        ("io-maxbandwidth", o.io_maxbandwidth.is_some(), windows),
        ("io-maxiops", o.io_maxiops.is_some(), windows),
        ("use-api-socket", o.use_api_socket, "berth does not mount its API socket into containers; use -v /run/berth/berth.sock:/var/run/docker.sock"),
    ];
    match refused.into_iter().find(|(_, set, _)| *set) {
        Some((flag, _, why)) => Err(usage(format!("--{flag} is not supported by berth: {why}"))),
        None => Ok(()),
    }
}

/// `DEVICE:VALUE` flags (`/dev/sda:200`), each turned into an object with
/// `Path` and what `value` makes of the part after the last colon.
fn device_values(
    values: &[String],
    flag: &str,
    value: impl Fn(&str) -> Option<Value>,
) -> anyhow::Result<Vec<Value>> {
    values
        .iter()
        .map(|s| {
            let bad = || {
                usage(format!(
                    "invalid argument \"{s}\" for \"--{flag}\" flag: expected DEVICE:VALUE with DEVICE under /dev/"
                ))
            };
            let (path, v) = s.rsplit_once(':').ok_or_else(bad)?;
            if !path.starts_with("/dev/") {
                return Err(bad());
            }
            let mut entry = value(v).ok_or_else(bad)?;
            entry["Path"] = path.into();
            Ok(entry)
        })
        .collect()
}

fn insert_list(host: &mut Map<String, Value>, key: &str, list: Vec<Value>) {
    if !list.is_empty() {
        host.insert(key.into(), Value::Array(list));
    }
}

/// `--cidfile`: docker refuses a file that exists (another container may
/// own it) before it creates anything.
pub fn check_cidfile(path: &str) -> anyhow::Result<()> {
    if !path.is_empty() && std::path::Path::new(path).exists() {
        return Err(usage(format!(
            "Container ID file found, make sure the other container isn't running or delete {path}"
        )));
    }
    Ok(())
}

/// Writes the new container's id to `--cidfile`.
pub fn write_cidfile(path: &str, id: &str) -> anyhow::Result<()> {
    if path.is_empty() {
        return Ok(());
    }
    std::fs::write(path, id).map_err(|e| {
        usage(format!(
            "failed to write the container ID to the file {path}: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(o: &HostOpts) -> anyhow::Result<(Value, Value)> {
        let (mut host, mut cfg) = (Map::new(), Map::new());
        apply(o, &mut host, &mut cfg)?;
        Ok((Value::Object(host), Value::Object(cfg)))
    }

    #[test]
    fn flags_become_docker_fields() {
        let o = HostOpts {
            cgroup_parent: "/mine".into(),
            pid: "host".into(),
            domainname: "example.com".into(),
            group_add: vec!["audio".into(), "27".into()],
            log_driver: "json-file".into(),
            log_opt: vec!["max-size=1m".into()],
            oom_score_adj: Some(-5),
            limits: LimitOpts {
                memory_reservation: Some("64m".into()),
                cpu_period: Some(100000),
                cpu_quota: Some(-1),
                blkio_weight: Some(300),
                ..Default::default()
            },
            device_read_bps: vec!["/dev/sda:1mb".into()],
            device_write_iops: vec!["/dev/sda:100".into()],
            ..Default::default()
        };
        let (host, cfg) = applied(&o).unwrap();
        assert_eq!(host["CgroupParent"], "/mine");
        assert_eq!(host["PidMode"], "host");
        assert_eq!(cfg["Domainname"], "example.com");
        assert_eq!(host["GroupAdd"], json!(["audio", "27"]));
        assert_eq!(
            host["LogConfig"],
            json!({"Type": "json-file", "Config": {"max-size": "1m"}})
        );
        assert_eq!(host["OomScoreAdj"], -5);
        assert_eq!(host["MemoryReservation"], 64 << 20);
        assert_eq!(host["CpuQuota"], -1);
        assert_eq!(host["BlkioWeight"], 300);
        assert_eq!(
            host["BlkioDeviceReadBps"],
            json!([{"Path": "/dev/sda", "Rate": 1 << 20}])
        );
        assert_eq!(
            host["BlkioDeviceWriteIOps"],
            json!([{"Path": "/dev/sda", "Rate": 100}])
        );
        assert!(host.get("UTSMode").is_none());
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for o in [
            HostOpts {
                oom_score_adj: Some(1001),
                ..Default::default()
            },
            HostOpts {
                limits: LimitOpts {
                    blkio_weight: Some(5),
                    ..Default::default()
                },
                ..Default::default()
            },
            HostOpts {
                device_read_bps: vec!["sda:1mb".into()],
                ..Default::default()
            },
            HostOpts {
                log_opt: vec!["max-size".into()],
                ..Default::default()
            },
            HostOpts {
                cgroupns: "shared".into(),
                ..Default::default()
            },
            HostOpts {
                gpus: "all".into(),
                ..Default::default()
            },
            HostOpts {
                cpu_count: Some(2),
                ..Default::default()
            },
        ] {
            let e = applied(&o).unwrap_err();
            let code = e.downcast_ref::<crate::StatusError>().map(|s| s.code);
            assert_eq!(code, Some(125), "{e:#}");
        }
    }
}
