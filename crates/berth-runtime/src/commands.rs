//! One function per runtime command.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_container::config::Bundle;
use berth_container::{Container, CreateOptions, ExecOptions, Runtime, Status};
use oci_spec::runtime::{LinuxResources, Process};
use serde_json::{json, Value};

use crate::logging::Log;
use crate::{signals, spec_template, tty, Cli, Command, CreateArgs, ExecArgs, UpdateArgs};

pub fn run(cli: &Cli, log: &Log) -> Result<i32> {
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup: systemd cgroup management is not supported yet; run without it (cgroupfs is used)");
    }
    let rt = Runtime::new(&cli.root);
    log.debug(&format!("command: {:?}", cli.command));
    match &cli.command {
        Command::Spec { bundle, rootless } => {
            spec(bundle.as_deref().unwrap_or(Path::new(".")), *rootless)
        }
        Command::Create(args) => {
            let bundle = load_bundle(args, log)?;
            let c = rt.create_bundle(&bundle, &create_options(args)?)?;
            send_init_pidfd(args.pidfd_socket.as_deref(), &c)?;
            Ok(0)
        }
        Command::Start { id } => {
            rt.load(id)?.start()?;
            Ok(0)
        }
        Command::State { id } => {
            print_json(&rt.load(id)?.oci_state())?;
            Ok(0)
        }
        Command::Kill { id, signal, all } => {
            let sig = signals::parse(signal.as_deref().unwrap_or("SIGTERM"))
                .map_err(anyhow::Error::msg)?;
            rt.load(id)?.kill(sig, *all)?;
            Ok(0)
        }
        Command::Delete { id, force } => delete(&rt, id, *force),
        Command::Run {
            create,
            detach,
            keep,
        } => run_container(&rt, create, *detach, *keep, log),
        Command::Exec(args) => exec(&rt, args),
        Command::Ps {
            id,
            format,
            ps_args,
        } => ps(&rt.load(id)?, format, ps_args),
        Command::List { format, quiet } => list(&rt, format, *quiet),
        Command::Pause { id } => {
            rt.load(id)?.pause()?;
            Ok(0)
        }
        Command::Resume { id } => {
            rt.load(id)?.resume()?;
            Ok(0)
        }
        Command::Update(args) => update(&rt, args),
        Command::Events {
            id,
            stats,
            interval,
        } => events(&rt, id, *stats, interval),
        Command::Features => {
            print_json(&features())?;
            Ok(0)
        }
        Command::Checkpoint { .. } | Command::Restore { .. } => {
            bail!("checkpoint and restore are not supported by berth-runtime")
        }
    }
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

fn create_options(args: &CreateArgs) -> Result<CreateOptions> {
    if args.notify_socket.is_some() {
        bail!("--notify-socket: systemd notify sockets are not supported yet");
    }
    Ok(CreateOptions {
        id: args.id.clone(),
        bundle: args.bundle.clone(),
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
        preserve_fds: args.preserve_fds,
    })
}

/// `--pidfd-socket`: sends a pidfd of `pid` to the caller's unix socket,
/// so it can signal the process without pid-reuse races.
fn send_pidfd(socket: Option<&Path>, pid: i32) -> Result<()> {
    let Some(socket) = socket else { return Ok(()) };
    let send = || -> Result<()> {
        let pid = rustix::process::Pid::from_raw(pid).context("invalid pid")?;
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .context("pidfd_open")?;
        let conn = berth_container::container::connect_unix(socket)?;
        berth_container::console::send_fd(conn.as_fd(), pidfd.as_fd(), "pidfd")
            .context("sending the pidfd")?;
        Ok(())
    };
    send().with_context(|| format!("--pidfd-socket {}", socket.display()))
}

/// As [`send_pidfd`] for a new container, which is removed again when that
/// fails (as a failed create would be).
fn send_init_pidfd(socket: Option<&Path>, container: &Container) -> Result<()> {
    send_pidfd(socket, container.record.pid).inspect_err(|_| {
        let _ = container.delete(true);
    })
}

/// Reads the bundle's config.json once, and passes on its warnings (what
/// berth accepts but does not apply, as runc warns about it).
fn load_bundle(args: &CreateArgs, log: &Log) -> Result<Bundle> {
    let bundle = Bundle::load(&args.bundle)?;
    for w in &bundle.warnings {
        log.warn(w);
    }
    Ok(bundle)
}

fn spec(bundle: &Path, rootless: bool) -> Result<i32> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let text = serde_json::to_string_pretty(&spec_template::default_spec(rootless))?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(0)
}

fn delete(rt: &Runtime, id: &str, force: bool) -> Result<i32> {
    match rt.load(id) {
        Ok(c) => c.delete(force)?,
        // runc: deleting a container that does not exist with --force is not an error.
        Err(berth_container::Error::NotFound { .. }) if force => {}
        Err(e) => return Err(e.into()),
    }
    Ok(0)
}

/// `run`: create, start, and (unless detached) wait, forwarding signals.
fn run_container(
    rt: &Runtime,
    args: &CreateArgs,
    detach: bool,
    keep: bool,
    log: &Log,
) -> Result<i32> {
    let bundle = load_bundle(args, log)?;
    let mut opts = create_options(args)?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let listener = if terminal && opts.console_socket.is_none() {
        if detach {
            bail!(
                "process.terminal is true and --detach was given, so --console-socket is required"
            );
        }
        std::fs::create_dir_all(&rt.root)?;
        let l = tty::ConsoleListener::bind(&rt.root.join(format!(
            ".console-{}-{}.sock",
            args.id,
            std::process::id()
        )))?;
        opts.console_socket = Some(l.path().to_path_buf());
        Some(l)
    } else {
        None
    };
    let container = rt.create_bundle(&bundle, &opts)?;
    send_init_pidfd(args.pidfd_socket.as_deref(), &container)?;
    let output = match &listener {
        Some(l) => Some(tty::spawn_copiers(l.receive_master()?)?),
        None => None,
    };
    drop(listener);
    if let Err(e) = container.start() {
        let _ = container.delete(true);
        return Err(e.into());
    }
    if detach {
        return Ok(0);
    }
    let _raw = output.as_ref().map(|_| tty::RawMode::enter());
    let code = wait_forwarding_signals(container.record.pid)?;
    if let Some(h) = output {
        let _ = h.join();
    }
    if !keep {
        container.delete(true)?;
    }
    Ok(code)
}

/// Waits for our child `pid`, passing on the signals we receive; returns
/// its exit code as a shell reports it (128 + signal when killed).
fn wait_forwarding_signals(pid: i32) -> Result<i32> {
    use signal_hook::consts::*;
    let mut signals = signal_hook::iterator::Signals::new([
        SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH,
    ])?;
    let handle = signals.handle();
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if let (Some(p), Some(s)) = (
                rustix::process::Pid::from_raw(pid),
                rustix::process::Signal::from_named_raw(sig),
            ) {
                let _ = rustix::process::kill_process(p, s);
            }
        }
    });
    let p = rustix::process::Pid::from_raw(pid).context("invalid pid")?;
    let status = loop {
        match rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, status))) => break status,
            Ok(None) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).context(format!("waiting for pid {pid}")),
        }
    };
    handle.close();
    Ok(exit_code(status))
}

fn exit_code(status: rustix::process::WaitStatus) -> i32 {
    if let Some(code) = status.exit_status() {
        code
    } else if let Some(sig) = status.terminating_signal() {
        128 + sig
    } else {
        255
    }
}

/// An exec whose process could not be started, an unknown container
/// included: runc exits 255 for these, so callers can tell them from the
/// process's own exit status. Bad flags (clap) exit as elsewhere.
#[derive(Debug)]
pub struct ExecFailed(pub anyhow::Error);

impl std::fmt::Display for ExecFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for ExecFailed {}

fn exec(rt: &Runtime, args: &ExecArgs) -> Result<i32> {
    let load_and_exec = || -> Result<i32> {
        let container = rt.load(&args.id)?;
        exec_in(rt, &container, args)
    };
    load_and_exec().map_err(|e| ExecFailed(e).into())
}

fn exec_in(rt: &Runtime, container: &Container, args: &ExecArgs) -> Result<i32> {
    if container.status() == Status::Paused && !args.ignore_paused {
        bail!(
            "cannot exec in a paused container {:?}; resume it first (or pass --ignore-paused)",
            args.id
        );
    }
    let process = exec_process(container, args)?;
    let terminal = process.terminal().unwrap_or(false);
    let mut console_socket = args.console_socket.clone();
    let listener = if terminal && console_socket.is_none() {
        if args.detach {
            bail!("--tty with --detach needs --console-socket");
        }
        let l = tty::ConsoleListener::bind(&rt.root.join(format!(
            ".console-exec-{}-{}.sock",
            args.id,
            std::process::id()
        )))?;
        console_socket = Some(l.path().to_path_buf());
        Some(l)
    } else {
        None
    };
    let pid = container.exec(&ExecOptions {
        process,
        console_socket,
        pid_file: args.pid_file.clone(),
        preserve_fds: args.preserve_fds,
        sub_cgroups: args
            .cgroup
            .iter()
            .map(|c| match c.split_once(':') {
                Some((ctrl, path)) => (Some(ctrl.to_string()), path.to_string()),
                None => (None, c.clone()),
            })
            .collect(),
        ignore_paused: args.ignore_paused,
    })?;
    send_pidfd(args.pidfd_socket.as_deref(), pid)?;
    let output = match &listener {
        Some(l) => Some(tty::spawn_copiers(l.receive_master()?)?),
        None => None,
    };
    drop(listener);
    if args.detach {
        return Ok(0);
    }
    let _raw = output.as_ref().map(|_| tty::RawMode::enter());
    let code = wait_forwarding_signals(pid)?;
    if let Some(h) = output {
        let _ = h.join();
    }
    Ok(code)
}

/// The process to exec: from --process, or the container's process with
/// the command line's changes, as runc builds it.
fn exec_process(container: &Container, args: &ExecArgs) -> Result<Process> {
    if let Some(path) = &args.process {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let not_valid = || format!("{}: not a valid OCI process", path.display());
        let mut value: serde_json::Value =
            serde_json::from_slice(&bytes).with_context(not_valid)?;
        // runc decodes with Go's zero values: a process without `user` runs
        // as uid 0, gid 0 (runc's own tests write such files).
        if let Some(obj) = value.as_object_mut() {
            obj.entry("user")
                .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
        }
        berth_container::config::spec_scheduler_flag_names(&mut value);
        return serde_json::from_value(value).with_context(not_valid);
    }
    if args.command.is_empty() {
        bail!("exec needs a command to run (or --process FILE)");
    }
    let mut value = serde_json::to_value(
        container
            .spec()
            .process()
            .as_ref()
            .context("the container has no process")?,
    )?;
    value["args"] = json!(args.command);
    value["terminal"] = json!(args.tty);
    if let Some(env) = value["env"].as_array_mut() {
        env.extend(args.env.iter().map(|e| json!(e)));
    } else {
        value["env"] = json!(args.env);
    }
    if let Some(cwd) = &args.cwd {
        value["cwd"] = json!(cwd);
    }
    if let Some(user) = &args.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        value["user"]["uid"] = json!(uid
            .parse::<u32>()
            .with_context(|| format!("--user {user:?}: the uid must be a number"))?);
        if let Some(g) = gid {
            value["user"]["gid"] = json!(g
                .parse::<u32>()
                .with_context(|| format!("--user {user:?}: the gid must be a number"))?);
        }
    }
    if !args.additional_gids.is_empty() {
        value["user"]["additionalGids"] = json!(args.additional_gids);
    }
    if args.no_new_privs {
        value["noNewPrivileges"] = json!(true);
    }
    for cap in &args.cap {
        let name = cap.to_ascii_uppercase();
        let name = if name.starts_with("CAP_") {
            name
        } else {
            format!("CAP_{name}")
        };
        if berth_container::caps::number(&name).is_none() {
            bail!("--cap {cap:?}: unknown capability");
        }
        // As runc: the cap goes to bounding, effective and permitted, and
        // to ambient only when the process has an inheritable set (without
        // one the kernel cannot raise it; --cap does not add inheritable).
        let has_inheritable = value["capabilities"]["inheritable"].is_array();
        let sets: &[&str] = if has_inheritable {
            &["bounding", "effective", "permitted", "ambient"]
        } else {
            &["bounding", "effective", "permitted"]
        };
        for set in sets {
            let list = &mut value["capabilities"][*set];
            if !list.is_array() {
                *list = json!([]);
            }
            let arr = list.as_array_mut().expect("just made an array");
            if !arr.iter().any(|c| c == &json!(name)) {
                arr.push(json!(name));
            }
        }
    }
    Ok(serde_json::from_value(value)?)
}

fn ps(container: &Container, format: &str, ps_args: &[String]) -> Result<i32> {
    let pids = container.pids()?;
    if format == "json" {
        print_json(&pids)?;
        return Ok(0);
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("running ps(1)")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column; pass options that print one")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{header}")?;
    for line in lines {
        let pid: Option<i32> = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            writeln!(stdout, "{line}")?;
        }
    }
    Ok(0)
}

fn list(rt: &Runtime, format: &str, quiet: bool) -> Result<i32> {
    let containers = rt.list()?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for c in &containers {
            writeln!(out, "{}", c.id())?;
        }
        return Ok(0);
    }
    let states: Vec<_> = containers.iter().map(|c| c.oci_state()).collect();
    if format == "json" {
        serde_json::to_writer(&mut out, &states)?;
        writeln!(out)?;
        return Ok(0);
    }
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .map(String::from)
        .to_vec()];
    for s in &states {
        rows.push(vec![
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.display().to_string(),
            s.created.clone(),
            if s.owner.is_empty() {
                "root".into()
            } else {
                s.owner.clone()
            },
        ]);
    }
    write!(out, "{}", tabulate(&rows))?;
    Ok(0)
}

/// Aligns columns as Go's tabwriter does for runc (minwidth 12, padding 3);
/// the last column is not padded.
fn tabulate(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            out.push_str(cell);
            if c + 1 < r.len() {
                out.push_str(&" ".repeat(widths[c] - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

fn update(rt: &Runtime, args: &UpdateArgs) -> Result<i32> {
    let mut container = rt.load(&args.id)?;
    if args.l3_cache_schema.is_some() || args.mem_bw_schema.is_some() {
        bail!("--l3-cache-schema/--mem-bw-schema: Intel RDT is not supported");
    }
    let mut res: Value = match &args.resources {
        Some(p) if p == Path::new("-") => {
            serde_json::from_reader(std::io::stdin()).context("reading resources from stdin")?
        }
        Some(p) => serde_json::from_slice(
            &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("{}: not valid JSON", p.display()))?,
        None => serde_json::to_value(
            container
                .spec()
                .linux()
                .as_ref()
                .and_then(|l| l.resources().clone())
                .unwrap_or_default(),
        )?,
    };
    let mut set = |section: &str, key: &str, v: Value| {
        if !res[section].is_object() {
            res[section] = json!({});
        }
        res[section][key] = v;
    };
    if let Some(v) = args.blkio_weight {
        set("blockIO", "weight", json!(v));
    }
    if let Some(v) = args.cpu_period {
        set("cpu", "period", json!(v));
    }
    if let Some(v) = args.cpu_quota {
        set("cpu", "quota", json!(v));
    }
    if let Some(v) = args.cpu_share {
        set("cpu", "shares", json!(v));
    }
    if let Some(v) = args.cpu_rt_period {
        set("cpu", "realtimePeriod", json!(v));
    }
    if let Some(v) = args.cpu_rt_runtime {
        set("cpu", "realtimeRuntime", json!(v));
    }
    if let Some(v) = &args.cpuset_cpus {
        set("cpu", "cpus", json!(v));
    }
    if let Some(v) = &args.cpuset_mems {
        set("cpu", "mems", json!(v));
    }
    if let Some(v) = &args.memory {
        let limit = parse_bytes("--memory", v)?;
        set("memory", "limit", json!(limit));
        // Unlimited memory without --memory-swap lifts memory+swap too (as
        // runc): the stored swap limit would stay below it, which the
        // kernel refuses.
        if limit == -1 && args.memory_swap.is_none() {
            set("memory", "swap", json!(-1));
        }
    }
    if let Some(v) = &args.memory_reservation {
        set(
            "memory",
            "reservation",
            json!(parse_bytes("--memory-reservation", v)?),
        );
    }
    if let Some(v) = &args.memory_swap {
        set("memory", "swap", json!(parse_bytes("--memory-swap", v)?));
    }
    if let Some(v) = &args.kernel_memory {
        set(
            "memory",
            "kernel",
            json!(parse_bytes("--kernel-memory", v)?),
        );
    }
    if let Some(v) = &args.kernel_memory_tcp {
        set(
            "memory",
            "kernelTCP",
            json!(parse_bytes("--kernel-memory-tcp", v)?),
        );
    }
    if let Some(v) = args.pids_limit {
        set("pids", "limit", json!(v));
    }
    let resources: LinuxResources =
        serde_json::from_value(res).context("the resulting resources are not valid")?;
    container.update(&resources)?;
    Ok(0)
}

/// Sizes as runc's --memory takes them: bytes, or with k/m/g/t (powers of 1024); -1 is unlimited.
fn parse_bytes(flag: &str, s: &str) -> Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower.trim_end_matches('b');
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        _ => (lower, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("{flag} {s:?}: not a size (e.g. 512m, 1g)"))?;
    if n < 0.0 {
        bail!("{flag} {s:?}: a size cannot be negative (use -1 for unlimited)");
    }
    Ok((n * mult as f64) as i64)
}

fn events(rt: &Runtime, id: &str, once: bool, interval: &str) -> Result<i32> {
    let container = rt.load(id)?;
    let interval = parse_duration(interval)?;
    let mut out = std::io::stdout();
    let emit = |out: &mut std::io::Stdout, v: Event| -> Result<()> {
        serde_json::to_writer(&mut *out, &v)?;
        writeln!(out)?;
        out.flush()?;
        Ok(())
    };
    if once {
        if container.status() == Status::Stopped {
            bail!("container {id:?} is stopped");
        }
        emit(
            &mut out,
            event("stats", id, Some(serde_json::to_value(container.stats()?)?)),
        )?;
        return Ok(0);
    }
    let mut ooms = container.oom_kill_count().unwrap_or(0);
    let mut next = std::time::Instant::now();
    while container.status() != Status::Stopped {
        let now_ooms = container.oom_kill_count().unwrap_or(ooms);
        if now_ooms > ooms {
            emit(&mut out, event("oom", id, None))?;
            ooms = now_ooms;
        }
        if std::time::Instant::now() >= next {
            if let Ok(stats) = container.stats() {
                emit(
                    &mut out,
                    event("stats", id, Some(serde_json::to_value(stats)?)),
                )?;
            }
            next += interval;
        }
        std::thread::sleep(Duration::from_millis(100).min(interval));
    }
    Ok(0)
}

/// An event line; a struct, so the fields keep runc's order: type, id, data.
#[derive(serde::Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

fn event<'a>(kind: &'a str, id: &'a str, data: Option<Value>) -> Event<'a> {
    Event { kind, id, data }
}

fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || anyhow::anyhow!("--interval {s:?}: use a duration such as 5s or 500ms");
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| s.split_at(i))
        .ok_or_else(bad)?;
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if secs <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `features`: what this build supports, in runc's JSON shape.
fn features() -> Value {
    let caps: Vec<&str> = berth_container::caps::NAMES.to_vec();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.3.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "idmap",
            "iversion", "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec",
            "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid",
            "nosymfollow", "private", "ratime", "rbind", "relatime", "remount", "ridmap",
            "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "silent",
            "slave", "strictatime", "suid", "sync", "tmpcopyup", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {
            "org.berth.runtime.version": env!("CARGO_PKG_VERSION")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("--memory", "512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("--memory", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("--memory", "100").unwrap(), 100);
        assert_eq!(parse_bytes("--memory", "-1").unwrap(), -1);
        assert!(parse_bytes("--memory", "lots").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("5").is_err());
    }

    #[test]
    fn table_alignment() {
        let rows = vec![
            vec!["ID".to_string(), "PID".into()],
            vec!["a".into(), "1".into()],
        ];
        assert_eq!(tabulate(&rows), "ID          PID\na           1\n");
    }
}
