//! `run`, `create`, `start`, `attach`, `exec`: docker's create / attach /
//! wait / start flow, streams over hijacked connections, exit codes.

use std::io::{IsTerminal, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use berth_client::query::escape_path;
use berth_client::{Error as ClientError, Hijacked, Query};
use clap::{ArgAction, Args};
use serde_json::{json, Map, Value};

use crate::images::split_tag;
use crate::{Ctx, StatusError};

/// The flags `run` and `create` share, with docker's names.
#[derive(Args, Debug, Default)]
pub struct ContainerOpts {
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short, long, action = crate::cli::many())]
    pub attach: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long, default_value = "")]
    pub name: String,
    /// Set environment variables
    #[arg(short, long, action = crate::cli::many())]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long, action = crate::cli::many())]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long, default_value = "")]
    pub workdir: String,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long, default_value = "")]
    pub user: String,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set meta data on a container
    #[arg(short, long, action = crate::cli::many())]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long, action = crate::cli::many())]
    pub label_file: Vec<String>,
    /// Restart policy to apply when a container exits
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Memory limit
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short, long)]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long, default_value = "")]
    pub cpuset_cpus: String,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Add Linux capabilities
    #[arg(long, action = crate::cli::many())]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long, action = crate::cli::many())]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Security Options
    #[arg(long, action = crate::cli::many())]
    pub security_opt: Vec<String>,
    /// Ulimit options
    #[arg(long, action = crate::cli::many())]
    pub ulimit: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long, action = crate::cli::many())]
    pub tmpfs: Vec<String>,
    /// Size of /dev/shm
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Sysctl options
    #[arg(long, action = crate::cli::many())]
    pub sysctl: Vec<String>,
    /// Add a host device to the container
    #[arg(long, action = crate::cli::many())]
    pub device: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Runtime to use for this container
    #[arg(long, default_value = "")]
    pub runtime: String,
    /// Set platform if server is multi-platform capable
    #[arg(long, default_value = "")]
    pub platform: String,
    /// Pull image before running ("always"|"missing"|"never")
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Command to run to check health
    #[arg(long, default_value = "")]
    pub health_cmd: String,
    /// Time between running the check (ms|s|m|h)
    #[arg(long, default_value = "")]
    pub health_interval: String,
    /// Consecutive failures needed to report unhealthy
    #[arg(long, default_value_t = 0)]
    pub health_retries: i64,
    /// Start period for the container to initialize before starting health-retries countdown
    #[arg(long, default_value = "")]
    pub health_start_period: String,
    /// Maximum time to allow one check to run
    #[arg(long, default_value = "")]
    pub health_timeout: String,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long)]
    pub no_healthcheck: bool,
    /// Signal to stop the container
    #[arg(long, default_value = "")]
    pub stop_signal: String,
    /// Timeout (in seconds) to stop a container
    #[arg(long)]
    pub stop_timeout: Option<i64>,
    /// Container host name
    #[arg(short = 'h', long, default_value = "")]
    pub hostname: String,
    #[command(flatten)]
    pub net: crate::netflags::NetOpts,
    /// Bind mount a volume
    #[arg(short, long, action = crate::cli::many())]
    pub volume: Vec<String>,
    #[command(flatten)]
    pub mounts: crate::volumes::MountOpts,
    #[command(flatten)]
    pub host: crate::hostflags::HostOpts,
    /// Override the key sequence for detaching a container
    #[arg(long, default_value = "")]
    pub detach_keys: String,
    /// Image and command
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub image_and_cmd: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Proxy received signals to the process
    #[arg(long, default_value_t = true, default_missing_value = "true", num_args = 0..=1, require_equals = true, action = ArgAction::Set)]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub opts: ContainerOpts,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: ContainerOpts,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, default_value = "")]
    pub detach_keys: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, default_value_t = true, default_missing_value = "true", num_args = 0..=1, require_equals = true, action = ArgAction::Set)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, default_value = "")]
    pub detach_keys: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, default_value = "")]
    pub detach_keys: String,
    /// Set environment variables
    #[arg(short, long, action = crate::cli::many())]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long, action = crate::cli::many())]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long, default_value = "")]
    pub user: String,
    /// Working directory inside the container
    #[arg(short, long, default_value = "")]
    pub workdir: String,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

/// A list flag as docker's CLI sends it: `null` when not given.
fn json_or_null(list: &[String]) -> Value {
    if list.is_empty() {
        Value::Null
    } else {
        json!(list)
    }
}

/// A flag value that is not valid: docker exits 125 on these.
pub(crate) fn usage(msg: String) -> anyhow::Error {
    StatusError { code: 125, msg }.into()
}

/// `RAMInBytes`: `512m`, `1g`, `100k`, `1024` (binary units).
pub fn ram_in_bytes(s: &str) -> anyhow::Result<i64> {
    let t = s.trim().to_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('p') => (&t[..t.len() - 1], 1 << 50),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| usage(format!("invalid size: '{s}'")))?;
    if n < 0.0 {
        return Err(usage(format!("invalid size: '{s}'")));
    }
    Ok((n * mult as f64) as i64)
}

/// Lines of an env or label file: `#` comments and blanks skipped; a bare
/// `KEY` in an env file takes the value from our environment.
fn read_kv_file(path: &str, env: bool) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| usage(format!("open {path}: {e}")))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if env && !l.contains('=') {
            if let Ok(v) = std::env::var(l.trim()) {
                out.push(format!("{}={v}", l.trim()));
            }
            continue;
        }
        out.push(l.to_string());
    }
    Ok(out)
}

fn env_list(files: &[String], vars: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        out.extend(read_kv_file(f, true)?);
    }
    for e in vars {
        if e.contains('=') {
            out.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            out.push(format!("{e}={v}"));
        }
    }
    Ok(out)
}

fn duration_ns(flag: &str, v: &str) -> anyhow::Result<Option<i64>> {
    if v.is_empty() {
        return Ok(None);
    }
    crate::system::parse_go_duration(v)
        .map(|s| Some((s * 1e9) as i64))
        .ok_or_else(|| {
            usage(format!(
                "invalid argument {v:?} for \"--{flag}\" flag: time: invalid duration"
            ))
        })
}

/// The JSON body of `POST /containers/create`, from the flags.
pub fn create_body(o: &ContainerOpts, attach_std: bool) -> anyhow::Result<Value> {
    let image = &o.image_and_cmd[0];
    let cmd = &o.image_and_cmd[1..];
    let mut labels = Map::new();
    let mut all_labels = Vec::new();
    for f in &o.label_file {
        all_labels.extend(read_kv_file(f, false)?);
    }
    all_labels.extend(o.label.iter().cloned());
    for l in all_labels {
        let (k, v) = l.split_once('=').unwrap_or((&l, ""));
        labels.insert(k.to_string(), Value::String(v.to_string()));
    }
    let attach: Vec<String> = o.attach.iter().map(|s| s.to_lowercase()).collect();
    for a in &attach {
        if !matches!(a.as_str(), "stdin" | "stdout" | "stderr") {
            return Err(usage(format!("invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR")));
        }
    }
    let (a_in, a_out, a_err) = if !attach.is_empty() {
        (
            // -i attaches stdin whatever -a says, as docker.
            o.interactive || attach.iter().any(|a| a == "stdin"),
            attach.iter().any(|a| a == "stdout"),
            attach.iter().any(|a| a == "stderr"),
        )
    } else if attach_std {
        (o.interactive, true, true)
    } else {
        (false, false, false)
    };
    let mut host = Map::new();
    host.insert("AutoRemove".into(), o.rm.into());
    if let Some(m) = &o.memory {
        host.insert("Memory".into(), ram_in_bytes(m)?.into());
    }
    if let Some(m) = &o.memory_swap {
        let v = if m == "-1" { -1 } else { ram_in_bytes(m)? };
        host.insert("MemorySwap".into(), v.into());
    }
    if let Some(c) = o.cpus {
        host.insert("NanoCpus".into(), ((c * 1e9) as i64).into());
    }
    if let Some(c) = o.cpu_shares {
        host.insert("CpuShares".into(), c.into());
    }
    if !o.cpuset_cpus.is_empty() {
        host.insert("CpusetCpus".into(), o.cpuset_cpus.clone().into());
    }
    if let Some(p) = o.pids_limit {
        host.insert("PidsLimit".into(), p.into());
    }
    // As docker's CLI sends them: as typed (the daemon normalizes), null
    // for none.
    host.insert("CapAdd".into(), json_or_null(&o.cap_add));
    host.insert("CapDrop".into(), json_or_null(&o.cap_drop));
    host.insert("Privileged".into(), o.privileged.into());
    host.insert("ReadonlyRootfs".into(), o.read_only.into());
    host.insert("SecurityOpt".into(), json_or_null(&o.security_opt));
    let mut ulimits = Vec::new();
    for u in &o.ulimit {
        let (name, vals) = u
            .split_once('=')
            .ok_or_else(|| usage(format!("invalid ulimit argument: {u}")))?;
        let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
        let p = |x: &str| -> anyhow::Result<i64> {
            x.parse()
                .map_err(|_| usage(format!("invalid ulimit argument: {u}")))
        };
        ulimits.push(json!({"Name": name, "Soft": p(soft)?, "Hard": p(hard)?}));
    }
    // null when none, as docker's CLI sends it.
    if ulimits.is_empty() {
        host.insert("Ulimits".into(), Value::Null);
    } else {
        host.insert("Ulimits".into(), Value::Array(ulimits));
    }
    let mut tmpfs = Map::new();
    for t in &o.tmpfs {
        let (p, opts) = t.split_once(':').unwrap_or((t, ""));
        tmpfs.insert(p.to_string(), opts.into());
    }
    if !tmpfs.is_empty() {
        host.insert("Tmpfs".into(), Value::Object(tmpfs));
    }
    if let Some(s) = &o.shm_size {
        host.insert("ShmSize".into(), ram_in_bytes(s)?.into());
    }
    let mut sysctls = Map::new();
    for s in &o.sysctl {
        let (k, v) = s.split_once('=').ok_or_else(|| {
            usage(format!(
                "invalid argument \"{s}\" for \"--sysctl\" flag: sysctl '{s}' is not whitelisted"
            ))
        })?;
        sysctls.insert(k.to_string(), v.into());
    }
    if !sysctls.is_empty() {
        host.insert("Sysctls".into(), Value::Object(sysctls));
    }
    let devices: Vec<Value> = o
        .device
        .iter()
        .map(|d| {
            let parts: Vec<&str> = d.split(':').collect();
            let host_p = parts[0];
            let (cont, perms) = match parts.len() {
                1 => (host_p, "rwm"),
                2 if parts[1].chars().all(|c| "rwm".contains(c)) => (host_p, parts[1]),
                2 => (parts[1], "rwm"),
                _ => (parts[1], parts[2]),
            };
            json!({"PathOnHost": host_p, "PathInContainer": cont, "CgroupPermissions": perms})
        })
        .collect();
    host.insert("Devices".into(), Value::Array(devices));
    if o.init {
        host.insert("Init".into(), true.into());
    }
    if !o.runtime.is_empty() {
        host.insert("Runtime".into(), o.runtime.clone().into());
    }
    let (policy, retries) = match o.restart.split_once(':') {
        Some((p, n)) => (
            p,
            n.parse::<i64>()
                .map_err(|_| usage(format!("invalid restart policy: {}", o.restart)))?,
        ),
        None => (o.restart.as_str(), 0),
    };
    if !matches!(policy, "no" | "always" | "unless-stopped" | "on-failure") {
        return Err(usage(format!("invalid restart policy: {}", o.restart)));
    }
    if o.rm && policy != "no" {
        return Err(usage("Conflicting options: --restart and --rm".into()));
    }
    host.insert(
        "RestartPolicy".into(),
        json!({"Name": policy, "MaximumRetryCount": retries}),
    );
    let net = crate::netflags::networking(&o.net).map_err(usage)?;
    host.extend(net.host);
    let mut binds = Vec::new();
    let mut volumes = Map::new();
    for v in &o.volume {
        if v.contains(':') {
            binds.push(v.clone());
        } else {
            volumes.insert(v.clone(), json!({}));
        }
    }
    host.insert("Binds".into(), json_or_null(&binds));
    crate::volumes::add_mounts(&o.mounts, &mut host).map_err(|e| usage(e.to_string()))?;
    let mut cfg = Map::new();
    cfg.insert("Image".into(), image.clone().into());
    if !cmd.is_empty() {
        cfg.insert("Cmd".into(), json!(cmd));
    }
    if let Some(ep) = &o.entrypoint {
        // An empty --entrypoint clears the image's.
        cfg.insert("Entrypoint".into(), json!([ep]));
    }
    cfg.insert("Env".into(), json!(env_list(&o.env_file, &o.env)?));
    cfg.insert("Labels".into(), Value::Object(labels));
    cfg.insert("WorkingDir".into(), o.workdir.clone().into());
    cfg.insert("User".into(), o.user.clone().into());
    cfg.insert("Hostname".into(), o.hostname.clone().into());
    cfg.insert("Tty".into(), o.tty.into());
    cfg.insert("OpenStdin".into(), o.interactive.into());
    cfg.insert("StdinOnce".into(), (o.interactive && a_in).into());
    cfg.insert("AttachStdin".into(), a_in.into());
    cfg.insert("AttachStdout".into(), a_out.into());
    cfg.insert("AttachStderr".into(), a_err.into());
    if !net.exposed.is_empty() {
        cfg.insert("ExposedPorts".into(), Value::Object(net.exposed));
    }
    if !net.mac.is_empty() {
        cfg.insert("MacAddress".into(), net.mac.into());
    }
    if !volumes.is_empty() {
        cfg.insert("Volumes".into(), Value::Object(volumes));
    }
    if !o.stop_signal.is_empty() {
        cfg.insert("StopSignal".into(), o.stop_signal.clone().into());
    }
    if let Some(t) = o.stop_timeout {
        cfg.insert("StopTimeout".into(), t.into());
    }
    if o.no_healthcheck {
        cfg.insert("Healthcheck".into(), json!({"Test": ["NONE"]}));
    } else if !o.health_cmd.is_empty()
        || !o.health_interval.is_empty()
        || !o.health_timeout.is_empty()
        || !o.health_start_period.is_empty()
        || !o.host.health_start_interval.is_empty()
        || o.health_retries != 0
    {
        let mut h = Map::new();
        if !o.health_cmd.is_empty() {
            h.insert("Test".into(), json!(["CMD-SHELL", o.health_cmd]));
        }
        for (k, flag, v) in [
            ("Interval", "health-interval", &o.health_interval),
            ("Timeout", "health-timeout", &o.health_timeout),
            ("StartPeriod", "health-start-period", &o.health_start_period),
            (
                "StartInterval",
                "health-start-interval",
                &o.host.health_start_interval,
            ),
        ] {
            if let Some(ns) = duration_ns(flag, v)? {
                h.insert(k.into(), ns.into());
            }
        }
        h.insert("Retries".into(), o.health_retries.into());
        cfg.insert("Healthcheck".into(), Value::Object(h));
    }
    crate::hostflags::apply(&o.host, &mut host, &mut cfg)?;
    cfg.insert("HostConfig".into(), Value::Object(host));
    cfg.insert("NetworkingConfig".into(), net.networking);
    Ok(Value::Object(cfg))
}

fn pull_for_run(ctx: &Ctx, image: &str, platform: &str, quiet: bool) -> anyhow::Result<()> {
    // docker writes the pull's progress to stderr for run/create.
    let (repo, tag) = split_tag(image);
    let tag = if tag.is_empty() && !image.contains('@') {
        "latest"
    } else {
        tag
    };
    let digest = image.split_once('@').map(|(_, d)| d);
    let q = Query::new()
        .push("fromImage", repo)
        .push("tag", digest.unwrap_or(tag))
        .opt("platform", platform);
    let auth = crate::login::registry_auth(ctx.config_dir.as_deref(), image)?;
    let resp = ctx.client.request(
        "POST",
        &format!("/images/create{}", q.encode()),
        &[("X-Registry-Auth", &auth)],
        berth_client::Body::Empty,
    )?;
    let mut body = resp.body();
    if quiet {
        // Errors in the stream still fail the pull.
        crate::progress::display(&mut body, &mut std::io::sink(), false)?;
    } else {
        crate::progress::display(&mut body, &mut std::io::stderr(), false)?;
    }
    Ok(())
}

/// Creates the container, pulling the image when missing (or always);
/// returns its id. Errors are exit 125, as docker's.
fn create_container(ctx: &Ctx, o: &ContainerOpts, attach_std: bool) -> anyhow::Result<String> {
    let body = create_body(o, attach_std)?;
    crate::hostflags::check_api_version(ctx, &o.host)?;
    crate::hostflags::check_cidfile(&o.host.cidfile)?;
    let image = o.image_and_cmd[0].clone();
    let q = Query::new()
        .opt("name", &o.name)
        .opt("platform", &o.platform);
    let path = format!("/containers/create{}", q.encode());
    let daemon = |e: anyhow::Error| -> anyhow::Error {
        match e.downcast::<StatusError>() {
            Ok(s) => s.into(),
            // Our errors carry their cause in their own message (see
            // main's `report`): the chain would repeat it.
            Err(e) => StatusError {
                code: 125,
                msg: e.to_string(),
            }
            .into(),
        }
    };
    match o.pull.as_str() {
        "always" => pull_for_run(ctx, &image, &o.platform, o.host.quiet).map_err(daemon)?,
        "missing" | "never" => {}
        other => {
            return Err(usage(format!(
            "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
        )))
        }
    }
    let resp = match ctx.client.post_json(&path, Some(&body)) {
        Ok(v) => v,
        Err(e)
            if e.status() == Some(404)
                && o.pull == "missing"
                && e.to_string().contains("No such image") =>
        {
            if !o.host.quiet {
                let _ = writeln!(
                    std::io::stderr(),
                    "Unable to find image '{}' locally",
                    with_latest(&image)
                );
            }
            pull_for_run(ctx, &image, &o.platform, o.host.quiet).map_err(daemon)?;
            ctx.client
                .post_json(&path, Some(&body))
                .map_err(|e| daemon(e.into()))?
        }
        Err(e) => return Err(daemon(e.into())),
    };
    for w in resp["Warnings"].as_array().into_iter().flatten() {
        let _ = writeln!(std::io::stderr(), "WARNING: {}", w.as_str().unwrap_or(""));
    }
    let id = resp["Id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| daemon(anyhow::anyhow!("the daemon's create answer has no Id")))?;
    crate::hostflags::write_cidfile(&o.host.cidfile, &id)?;
    Ok(id)
}

fn with_latest(image: &str) -> String {
    if split_tag(image).1.is_empty() && !image.contains('@') {
        format!("{image}:latest")
    } else {
        image.to_string()
    }
}

pub fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<()> {
    // docker's create exits 125 on flags it refuses but 1 when the daemon
    // refuses (only `run` makes every failure 125).
    let id =
        create_container(ctx, &a.opts, true).map_err(|e| match e.downcast::<StatusError>() {
            Ok(s) if s.code == 125 && s.msg.starts_with("Error response from daemon") => {
                StatusError { code: 1, ..s }.into()
            }
            Ok(s) => s.into(),
            Err(e) => e,
        })?;
    writeln!(ctx.out(), "{id}")?;
    Ok(())
}

/// docker's exit code for a failed start: 127 when the command does not
/// exist, 126 when it cannot be executed, else 125.
fn start_error(e: ClientError) -> anyhow::Error {
    let msg = e.to_string();
    let code =
        if msg.contains("executable file not found") || msg.contains("no such file or directory") {
            127
        } else if msg.contains("permission denied") || msg.contains("is a directory") {
            126
        } else {
            125
        };
    StatusError { code, msg }.into()
}

fn cpath(id: &str) -> String {
    format!("/containers/{}", escape_path(id))
}

/// ctrl-p ctrl-q, or docker's `--detach-keys` syntax (`ctrl-a,x`).
fn detach_sequence(spec: &str) -> anyhow::Result<Vec<u8>> {
    let spec = if spec.is_empty() {
        "ctrl-p,ctrl-q"
    } else {
        spec
    };
    let mut out = Vec::new();
    for k in spec.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c {
                "@" => 0,
                "[" => 27,
                "\\" => 28,
                "]" => 29,
                "^" => 30,
                "_" => 31,
                c if c.len() == 1 && c.as_bytes()[0].is_ascii_lowercase() => {
                    c.as_bytes()[0] - b'a' + 1
                }
                _ => return Err(usage(format!("invalid detach keys: {spec}"))),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(usage(format!("invalid detach keys: {spec}")));
        }
    }
    Ok(out)
}

/// The local terminal in raw mode for the life of the guard.
struct RawMode {
    saved: rustix::termios::Termios,
}

impl RawMode {
    fn enable() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// Tells the daemon the local terminal's size.
fn resize(ctx: &Ctx, path_prefix: &str) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stdout()) {
        let q = Query::new()
            .push("h", ws.ws_row.to_string())
            .push("w", ws.ws_col.to_string());
        let _ = ctx
            .client
            .post_json(&format!("{path_prefix}/resize{}", q.encode()), None);
    }
}

/// Forwards the signals a user sends to `berth run`/`attach` (without a
/// tty) to the container, as docker's `--sig-proxy` does.
fn proxy_signals(ctx: &Ctx, container: &str) -> anyhow::Result<()> {
    use signal_hook::consts::*;
    let mut signals = signal_hook::iterator::Signals::new([
        SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT, SIGTSTP,
    ])?;
    let client =
        berth_client::Client::with_version(ctx.client.host().clone(), ctx.client.api_version()?);
    let path = cpath(container);
    std::thread::spawn(move || {
        for sig in signals.forever() {
            let q = Query::new().push("signal", sig.to_string());
            let _ = client.post_json(&format!("{path}/kill{}", q.encode()), None);
        }
    });
    Ok(())
}

/// Sends the terminal's size now and on every SIGWINCH.
fn forward_resizes(ctx: &Ctx, path_prefix: &str) -> anyhow::Result<()> {
    resize(ctx, path_prefix);
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGWINCH])?;
    let client =
        berth_client::Client::with_version(ctx.client.host().clone(), ctx.client.api_version()?);
    let prefix = path_prefix.to_string();
    std::thread::spawn(move || {
        let ctx = Ctx {
            client,
            config_dir: None,
        };
        for _ in signals.forever() {
            resize(&ctx, &prefix);
        }
    });
    Ok(())
}

/// Copies stdin to the connection (in a thread) and the connection's
/// output to stdout/stderr until the daemon closes it. Returns true when
/// the user detached with the detach keys.
fn pump(h: Hijacked, tty: bool, stdin: bool, keys: Vec<u8>) -> anyhow::Result<bool> {
    let detached = Arc::new(AtomicBool::new(false));
    if stdin {
        let mut w = h.writer;
        let flag = detached.clone();
        std::thread::spawn(move || {
            let mut input = std::io::stdin();
            let mut buf = [0u8; 4096];
            let mut matched = 0;
            loop {
                let n = match input.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if tty && !keys.is_empty() {
                    for &b in &buf[..n] {
                        if b == keys[matched] {
                            matched += 1;
                            if matched == keys.len() {
                                flag.store(true, Ordering::SeqCst);
                                let _ = w.close_write();
                                let _ = w.flush();
                                // Closing the read side too ends the output copy.
                                drop(w);
                                return;
                            }
                        } else {
                            matched = if b == keys[0] { 1 } else { 0 };
                        }
                    }
                }
                if w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = w.close_write();
        });
    }
    let mut r = h.reader;
    let res = if tty {
        let mut out = std::io::stdout();
        let mut buf = [0u8; 32 * 1024];
        loop {
            if detached.load(Ordering::SeqCst) {
                break Ok(());
            }
            match r.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    if let Err(e) = out.write_all(&buf[..n]).and_then(|_| out.flush()) {
                        break Err(e);
                    }
                }
                Err(e) => break Err(e),
            }
        }
    } else {
        berth_client::stream::demux(&mut r, &mut std::io::stdout(), &mut std::io::stderr())
    };
    if detached.load(Ordering::SeqCst) {
        return Ok(true);
    }
    res?;
    Ok(false)
}

pub fn run(ctx: &Ctx, a: RunArgs) -> anyhow::Result<()> {
    let o = &a.opts;
    if a.detach && !o.attach.is_empty() {
        return Err(StatusError {
            code: 1,
            msg: "Conflicting options: -a and -d".into(),
        }
        .into());
    }
    let attach_stdin = o.interactive || o.attach.iter().any(|s| s.eq_ignore_ascii_case("stdin"));
    check_tty(o.tty && attach_stdin && !a.detach)?;
    let keys = detach_sequence(&o.detach_keys)?;
    let id = create_container(ctx, o, !a.detach)?;
    if a.detach {
        ctx.client
            .post_json(&format!("{}/start", cpath(&id)), None)
            .map_err(start_error)?;
        writeln!(ctx.out(), "{id}")?;
        return Ok(());
    }
    let body = create_body(o, true)?;
    let (a_in, a_out, a_err) = (
        body["AttachStdin"].as_bool().unwrap_or(false),
        body["AttachStdout"].as_bool().unwrap_or(false),
        body["AttachStderr"].as_bool().unwrap_or(false),
    );
    let q = Query::new()
        .push("stream", "1")
        .flag("stdin", a_in)
        .flag("stdout", a_out)
        .flag("stderr", a_err)
        .opt("detachKeys", &o.detach_keys);
    let hijacked = ctx
        .client
        .hijack(&format!("{}/attach{}", cpath(&id), q.encode()), None)
        .map_err(|e| StatusError {
            code: 125,
            msg: e.to_string(),
        })?;
    // Wait before start, so a fast exit is not missed.
    let cond = if o.rm { "removed" } else { "next-exit" };
    let wait_path = format!("{}/wait?condition={cond}", cpath(&id));
    let host = ctx.client.host().clone();
    let version = ctx.client.api_version()?.to_string();
    let waiter = std::thread::spawn(move || {
        let c = berth_client::Client::with_version(host, &version);
        c.post_json(&wait_path, None)
    });
    let raw = if o.tty && o.interactive && std::io::stdin().is_terminal() {
        RawMode::enable()
    } else {
        None
    };
    if let Err(e) = ctx.client.post_json(&format!("{}/start", cpath(&id)), None) {
        drop(raw);
        return Err(start_error(e));
    }
    if o.tty && std::io::stdout().is_terminal() {
        forward_resizes(ctx, &cpath(&id))?;
    }
    if a.sig_proxy && !o.tty {
        proxy_signals(ctx, &id)?;
    }
    let detached = pump(hijacked, o.tty, a_in, keys)?;
    drop(raw);
    if detached {
        return Ok(());
    }
    let status = waiter
        .join()
        .map_err(|_| anyhow::anyhow!("the wait thread panicked"))??;
    if let Some(m) = status["Error"]["Message"].as_str() {
        if !m.is_empty() {
            return Err(StatusError {
                code: 125,
                msg: m.to_string(),
            }
            .into());
        }
    }
    let code = status["StatusCode"].as_i64().unwrap_or(125) as i32;
    if code != 0 {
        return Err(StatusError::exit(code));
    }
    Ok(())
}

pub fn start(ctx: &Ctx, a: StartArgs) -> anyhow::Result<()> {
    if !a.attach && !a.interactive {
        let mut failed = Vec::new();
        let mut out = ctx.out();
        for c in &a.containers {
            match ctx.client.post_json(&format!("{}/start", cpath(c)), None) {
                Ok(_) => writeln!(out, "{c}")?,
                Err(e) => failed.push(e.to_string()),
            }
        }
        drop(out);
        return crate::images::fail_all(failed);
    }
    if a.containers.len() > 1 {
        return Err(StatusError {
            code: 1,
            msg: "you cannot start and attach multiple containers at once".into(),
        }
        .into());
    }
    let c = &a.containers[0];
    let info = ctx.client.get_json(&format!("{}/json", cpath(c)))?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = a.interactive && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let keys = detach_sequence(&a.detach_keys)?;
    let q = Query::new()
        .push("stream", "1")
        .flag("stdin", stdin)
        .push("stdout", "1")
        .push("stderr", "1")
        .opt("detachKeys", &a.detach_keys);
    let h = ctx
        .client
        .hijack(&format!("{}/attach{}", cpath(c), q.encode()), None)?;
    let raw = if tty && stdin && std::io::stdin().is_terminal() {
        RawMode::enable()
    } else {
        None
    };
    ctx.client
        .post_json(&format!("{}/start", cpath(c)), None)
        .map_err(start_error)?;
    if tty && std::io::stdout().is_terminal() {
        forward_resizes(ctx, &cpath(c))?;
    } else if !tty {
        proxy_signals(ctx, c)?;
    }
    let detached = pump(h, tty, stdin, keys)?;
    drop(raw);
    if detached {
        return Ok(());
    }
    exit_with_container_code(ctx, c)
}

fn exit_with_container_code(ctx: &Ctx, c: &str) -> anyhow::Result<()> {
    let status = ctx.client.post_json(&format!("{}/wait", cpath(c)), None)?;
    let code = status["StatusCode"].as_i64().unwrap_or(0) as i32;
    if code != 0 {
        return Err(StatusError::exit(code));
    }
    Ok(())
}

pub fn attach(ctx: &Ctx, a: AttachArgs) -> anyhow::Result<()> {
    let info = ctx
        .client
        .get_json(&format!("{}/json", cpath(&a.container)))?;
    if info["State"]["Running"] != true {
        anyhow::bail!("You cannot attach to a stopped container, start it first");
    }
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let keys = detach_sequence(&a.detach_keys)?;
    let q = Query::new()
        .push("stream", "1")
        .flag("stdin", stdin)
        .push("stdout", "1")
        .push("stderr", "1")
        .opt("detachKeys", &a.detach_keys);
    let h = ctx.client.hijack(
        &format!("{}/attach{}", cpath(&a.container), q.encode()),
        None,
    )?;
    let raw = if tty && stdin && std::io::stdin().is_terminal() {
        RawMode::enable()
    } else {
        None
    };
    if tty && std::io::stdout().is_terminal() {
        forward_resizes(ctx, &cpath(&a.container))?;
    }
    if a.sig_proxy && !tty {
        proxy_signals(ctx, &a.container)?;
    }
    let detached = pump(h, tty, stdin, keys)?;
    drop(raw);
    if detached {
        return Ok(());
    }
    exit_with_container_code(ctx, &a.container)
}

/// `-it` with stdin that is not a terminal: docker refuses before it
/// creates anything (exit 1); `-t` alone, or with stdin detached, is fine.
fn check_tty(tty_with_stdin: bool) -> anyhow::Result<()> {
    if tty_with_stdin && !std::io::stdin().is_terminal() {
        return Err(StatusError {
            code: 1,
            msg: "the input device is not a TTY".into(),
        }
        .into());
    }
    Ok(())
}

pub fn exec(ctx: &Ctx, a: ExecArgs) -> anyhow::Result<()> {
    check_tty(a.tty && a.interactive && !a.detach)?;
    let body = json!({
        "AttachStdin": a.interactive && !a.detach,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "Tty": a.tty,
        "Cmd": a.cmd,
        "Env": env_list(&a.env_file, &a.env)?,
        "WorkingDir": a.workdir,
        "User": a.user,
        "Privileged": a.privileged,
        "DetachKeys": a.detach_keys,
    });
    let created = ctx
        .client
        .post_json(&format!("{}/exec", cpath(&a.container)), Some(&body))?;
    let id = created["Id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the daemon's exec answer has no Id"))?
        .to_string();
    let start = format!("/exec/{id}/start");
    if a.detach {
        ctx.client
            .post_json(&start, Some(&json!({"Detach": true, "Tty": a.tty})))?;
        return Ok(());
    }
    let keys = detach_sequence(&a.detach_keys)?;
    let h = ctx
        .client
        .hijack(&start, Some(&json!({"Detach": false, "Tty": a.tty})))?;
    let raw = if a.tty && a.interactive && std::io::stdin().is_terminal() {
        RawMode::enable()
    } else {
        None
    };
    if a.tty && std::io::stdout().is_terminal() {
        forward_resizes(ctx, &format!("/exec/{id}"))?;
    }
    let detached = pump(h, a.tty, a.interactive, keys)?;
    drop(raw);
    if detached {
        return Ok(());
    }
    let info = ctx.client.get_json(&format!("/exec/{id}/json"))?;
    let code = info["ExitCode"].as_i64().unwrap_or(0) as i32;
    if code != 0 {
        return Err(StatusError::exit(code));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct T {
        #[command(flatten)]
        o: ContainerOpts,
    }

    #[test]
    fn sizes_and_keys() {
        assert_eq!(ram_in_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert_eq!(ram_in_bytes("2kb").unwrap(), 2048);
        assert!(ram_in_bytes("x").is_err());
        assert_eq!(detach_sequence("").unwrap(), vec![16, 17]);
        assert_eq!(detach_sequence("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert!(detach_sequence("ctrl-foo").is_err());
    }

    #[test]
    fn create_body_from_flags() {
        let t = T::try_parse_from([
            "t",
            "--rm",
            "-e",
            "A=1",
            "-w",
            "/tmp",
            "-u",
            "1:2",
            "-l",
            "k=v",
            "-m",
            "64m",
            "--cpus",
            "1.5",
            "--entrypoint",
            "",
            "-p",
            "127.0.0.1:8080:80",
            "--ulimit",
            "nofile=10:20",
            "-h",
            "box",
            "busybox",
            "sh",
            "-c",
            "echo hi",
        ])
        .unwrap();
        let b = create_body(&t.o, true).unwrap();
        assert_eq!(b["Image"], "busybox");
        assert_eq!(b["Cmd"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(b["Entrypoint"], json!([""]));
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["Hostname"], "box");
        assert_eq!(b["HostConfig"]["Memory"], 64 << 20);
        assert_eq!(b["HostConfig"]["NanoCpus"], 1_500_000_000i64);
        assert_eq!(b["HostConfig"]["AutoRemove"], true);
        assert_eq!(
            b["HostConfig"]["PortBindings"]["80/tcp"],
            json!([{"HostIp": "127.0.0.1", "HostPort": "8080"}])
        );
        assert_eq!(b["HostConfig"]["Ulimits"][0]["Hard"], 20);
        let bad = T::try_parse_from(["t", "--rm", "--restart", "always", "busybox"]).unwrap();
        assert!(create_body(&bad.o, true).is_err());
    }

    #[test]
    fn annotations_and_the_start_interval_need_api_1_43_and_1_44() {
        let t = T::try_parse_from([
            "t",
            "--annotation",
            "org.example/a=1",
            "--annotation",
            "flag",
            "--health-start-interval",
            "2s",
            "busybox",
        ])
        .unwrap();
        let b = create_body(&t.o, true).unwrap();
        assert_eq!(
            b["HostConfig"]["Annotations"],
            json!({"org.example/a": "1", "flag": ""})
        );
        assert_eq!(b["Healthcheck"]["StartInterval"], 2_000_000_000i64);
    }
}
