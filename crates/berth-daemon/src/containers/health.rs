//! Healthchecks: docker's `HEALTHCHECK` (Config.Healthcheck over the
//! image's), run as an exec through the container's shim.
//!
//! A running container with a probe has one monitor thread. It sleeps an
//! interval (`StartInterval` while starting within `StartPeriod`, when
//! given; else `Interval`, default 30 s), runs the probe (`CMD` execs the
//! arguments, `CMD-SHELL` runs them with the container's shell, default
//! `/bin/sh -c`) with the container's user, environment and working
//! directory, collects up to 4096 bytes of its output and its exit code
//! (killed after `Timeout`, default 30 s: exit code -1), and records the
//! result under the container's lifecycle lock, as docker does: the last
//! five results, exit code 0 resets the failing streak and makes it
//! `healthy`, anything else adds to the streak (not while `starting`
//! within `StartPeriod`) and `Retries` (default 3) failures in a row make
//! it `unhealthy`. A change of status is a `health_status: <status>`
//! event. `NONE`, an empty test or an unknown probe type disables it.
//!
//! The monitor belongs to one run of the container (its `started_at`): it
//! ends when told (the container exited, or started again), or when it
//! finds the container no longer in that run. Paused containers are not
//! probed. Starting and stopping never wait for a monitor (it may be
//! waiting for the lock they hold).

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use berth_api::models::{ContainerCreateBody, ExecConfig, HealthConfig};
use berth_store::Durability;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::record::{RunState, Status};
use super::{shim, Loaded};
use crate::engine::Engine;

/// docker's defaults.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;
/// Results kept in State.Health.Log.
const MAX_LOG_ENTRIES: usize = 5;
/// Output kept per result.
const MAX_OUTPUT: usize = 4096;
/// Longest time a probe result stays out of the database.
const PERSIST_EVERY: Duration = Duration::from_secs(60);
/// How long a killed probe may take to go away.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// docker's health states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One probe's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Nanoseconds since the epoch.
    pub start: u64,
    pub end: u64,
    pub exit_code: i64,
    pub output: String,
}

/// State.Health, kept in the container's run state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u32,
    #[serde(default)]
    pub log: Vec<ProbeResult>,
}

fn time(ns: u64) -> String {
    berth_image::time::rfc3339(UNIX_EPOCH + Duration::from_nanos(ns))
}

impl Health {
    /// docker's `State.Health`.
    pub fn to_docker(&self) -> Value {
        json!({
            "Status": self.status.as_str(),
            "FailingStreak": self.failing_streak,
            "Log": self.log.iter().map(|r| json!({
                "Start": time(r.start),
                "End": time(r.end),
                "ExitCode": r.exit_code,
                "Output": r.output,
            })).collect::<Vec<_>>(),
        })
    }

    /// What `docker ps` shows in parentheses after `Up ...`.
    pub fn describe(&self) -> &'static str {
        match self.status {
            HealthStatus::Starting => "health: starting",
            s => s.as_str(),
        }
    }
}

/// The healthcheck docker reports in Config.Healthcheck: the request's,
/// with the image's filling what it leaves unset (docker's merge).
pub fn merged_config(
    create: &ContainerCreateBody,
    image: &berth_image::ImageConfig,
) -> Option<HealthConfig> {
    let image_hc: Option<HealthConfig> = image
        .config
        .as_ref()
        .and_then(|r| r.healthcheck.clone())
        .and_then(|v| serde_json::from_value(v).ok());
    let Some(mut hc) = create.healthcheck.clone() else {
        return image_hc;
    };
    if let Some(img) = image_hc {
        if hc.test.as_ref().is_none_or(|t| t.is_empty()) {
            hc.test = img.test;
        }
        let fill = |v: &mut Option<i64>, from: Option<i64>| {
            if v.unwrap_or(0) == 0 {
                *v = from.or(*v);
            }
        };
        fill(&mut hc.interval, img.interval);
        fill(&mut hc.timeout, img.timeout);
        fill(&mut hc.start_period, img.start_period);
        fill(&mut hc.start_interval, img.start_interval);
        fill(&mut hc.retries, img.retries);
    }
    Some(hc)
}

/// A runnable probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Option<Duration>,
    pub retries: u32,
}

fn nanos(v: Option<i64>) -> Option<Duration> {
    v.filter(|n| *n > 0).map(|n| Duration::from_nanos(n as u64))
}

/// The container's probe, if it has one that runs.
pub fn probe(create: &ContainerCreateBody, image: &berth_image::ImageConfig) -> Option<Probe> {
    let hc = merged_config(create, image)?;
    let test = hc.test.clone().unwrap_or_default();
    let (kind, rest) = test.split_first()?;
    let cmd = match kind.as_str() {
        "CMD" => rest.to_vec(),
        "CMD-SHELL" => {
            let shell = create
                .shell
                .clone()
                .filter(|s| !s.is_empty())
                .or(image.config.as_ref().and_then(|r| r.shell.clone()))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            shell.into_iter().chain(rest.iter().cloned()).collect()
        }
        "NONE" => return None,
        other => {
            tracing::warn!(
                test = other,
                "unknown healthcheck type (expected CMD or CMD-SHELL); no healthcheck runs"
            );
            return None;
        }
    };
    if cmd.is_empty() {
        return None;
    }
    Some(Probe {
        cmd,
        interval: nanos(hc.interval).unwrap_or(DEFAULT_INTERVAL),
        timeout: nanos(hc.timeout).unwrap_or(DEFAULT_TIMEOUT),
        start_period: nanos(hc.start_period).unwrap_or_default(),
        start_interval: nanos(hc.start_interval),
        retries: hc
            .retries
            .filter(|r| *r > 0)
            .map_or(DEFAULT_RETRIES, |r| r.min(i64::from(u32::MAX)) as u32),
    })
}

/// Go's `time.Duration` text (`30s`, `200ms`, `1m30s`), for docker's
/// timeout message.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    let frac = |v: u128, unit: u128| {
        let whole = v / unit;
        let rest = v % unit;
        if rest == 0 {
            whole.to_string()
        } else {
            let digits = unit.to_string().len() - 1;
            let s = format!("{rest:0digits$}");
            format!("{whole}.{}", s.trim_end_matches('0'))
        }
    };
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns, 1_000_000));
    }
    let h = ns / 3_600_000_000_000;
    let m = ns / 60_000_000_000 % 60;
    let s = frac(ns % 60_000_000_000, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

/// Applies a result to the health (docker's handleProbeResult); returns
/// whether the status changed.
pub fn apply_result(h: &mut Health, result: ProbeResult, probe: &Probe, started_at: u64) -> bool {
    let old = h.status;
    let within_start =
        Duration::from_nanos(result.start.saturating_sub(started_at)) < probe.start_period;
    let ok = result.exit_code == 0;
    h.log.push(result);
    if h.log.len() > MAX_LOG_ENTRIES {
        let extra = h.log.len() - MAX_LOG_ENTRIES;
        h.log.drain(..extra);
    }
    if ok {
        h.failing_streak = 0;
        h.status = HealthStatus::Healthy;
    } else if !(h.status == HealthStatus::Starting && within_start) {
        h.failing_streak += 1;
        if h.failing_streak >= probe.retries {
            h.status = HealthStatus::Unhealthy;
        }
    }
    h.status != old
}

/// A monitor's stop signal.
#[derive(Debug, Default)]
struct Stop {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl Stop {
    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }

    fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps `d` unless stopped first; true if stopped.
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut stopped = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        while !*stopped {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stopped = self
                .cv
                .wait_timeout(stopped, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

/// The running monitors, by container id.
fn monitors() -> &'static Mutex<HashMap<String, Arc<Stop>>> {
    static MONITORS: OnceLock<Mutex<HashMap<String, Arc<Stop>>>> = OnceLock::new();
    MONITORS.get_or_init(Default::default)
}

/// Stops the container's monitor, if any (it ends on its own thread).
pub fn stop_monitor(id: &str) {
    if let Some(s) = monitors()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(id)
    {
        s.stop();
    }
}

fn now_ns() -> u64 {
    crate::events::now_nanos().max(0) as u64
}

impl Engine {
    fn container_probe(&self, c: &Loaded) -> Option<Probe> {
        let image = self.store.image(&c.image_id).ok()?;
        let config = crate::images::parse_image_config(&image).ok()?;
        probe(&c.config.create, &config)
    }

    /// Start hook (the container's lock is held; `state` is about to be
    /// saved as running): health `starting` (streak reset, log kept) and a
    /// monitor for this run, or no health when there is no probe.
    pub(crate) fn health_on_start(self: &Arc<Self>, c: &Loaded, state: &mut RunState) {
        stop_monitor(&c.id);
        let Some(probe) = self.container_probe(c) else {
            state.health = None;
            return;
        };
        let mut h = state.health.take().unwrap_or_default();
        h.status = HealthStatus::Starting;
        h.failing_streak = 0;
        state.health = Some(h);
        self.spawn_monitor(&c.id, state.started_at, probe);
    }

    /// Restore hook: a container found running after a daemon restart
    /// starts over as `starting`, as docker does.
    pub(crate) fn health_on_restore(self: &Arc<Self>, c: &Loaded) {
        let Some(probe) = self.container_probe(c) else {
            return;
        };
        let handle = self.container_handle(c);
        let _op = handle.lock();
        let Ok(now) = self.load_container(&c.id) else {
            return;
        };
        if !now.state.status.is_live() {
            return;
        }
        let mut state = now.state.clone();
        let mut h = state.health.take().unwrap_or_default();
        h.status = HealthStatus::Starting;
        h.failing_streak = 0;
        state.health = Some(h);
        if let Err(e) =
            self.store
                .set_container_state(&c.id, &super::encode(&state), Durability::Synced)
        {
            tracing::warn!(container = %c.id, error = %e, "recording the health state");
            return;
        }
        let started_at = state.started_at;
        handle.state.send_replace(state);
        self.spawn_monitor(&c.id, started_at, probe);
    }

    /// Exit hook: the run is over.
    pub(crate) fn health_on_exit(&self, id: &str) {
        stop_monitor(id);
    }

    fn spawn_monitor(self: &Arc<Self>, id: &str, started_at: u64, probe: Probe) {
        let stop = Arc::new(Stop::default());
        if let Some(old) = monitors()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), stop.clone())
        {
            old.stop();
        }
        let engine = self.clone();
        let cid = id.to_string();
        let spawned = std::thread::Builder::new()
            .name(format!("health-{}", &id[..12]))
            .stack_size(256 * 1024)
            .spawn(move || {
                engine.monitor_health(&cid, started_at, &probe, &stop);
                let mut m = monitors().lock().unwrap_or_else(|p| p.into_inner());
                if m.get(&cid).is_some_and(|s| Arc::ptr_eq(s, &stop)) {
                    m.remove(&cid);
                }
            });
        if let Err(e) = spawned {
            tracing::error!(container = id, error = %e, "cannot start a health monitor");
        }
    }

    fn monitor_health(self: &Arc<Self>, id: &str, started_at: u64, probe: &Probe, stop: &Stop) {
        let mut last_write = Instant::now();
        loop {
            let current = self.containers.handles().get(id).map(|h| h.state());
            let Some(state) = current else { return };
            let starting = state
                .health
                .as_ref()
                .is_none_or(|h| h.status == HealthStatus::Starting);
            // docker: within the start period probes come every
            // StartInterval (when given), and one comes as the period ends.
            let elapsed = Duration::from_nanos(now_ns().saturating_sub(started_at));
            let interval = if elapsed >= probe.start_period {
                probe.interval
            } else {
                let left = probe.start_period - elapsed;
                match probe.start_interval {
                    Some(si) if starting => si.min(left.max(Duration::from_millis(1))),
                    _ => probe.interval.min(left.max(Duration::from_millis(1))),
                }
            };
            if stop.sleep(interval) {
                return;
            }
            let Some(state) = self.containers.handles().get(id).map(|h| h.state()) else {
                return;
            };
            if state.started_at != started_at || !state.status.is_live() {
                return;
            }
            if state.status == Status::Paused {
                continue;
            }
            let result = self.run_probe(id, probe);
            if stop.is_stopped() {
                return;
            }
            if !self.record_probe(id, started_at, probe, result, stop, &mut last_write) {
                return;
            }
        }
    }

    /// Records a result under the container's lock; false when the run is
    /// over. The health lives in the container's in-memory state; the
    /// database gets it when its status or failing streak changes, and at
    /// most a minute after the last write otherwise (as docker, which
    /// keeps probe results in memory, so a healthy container costs no disk
    /// writes). Lifecycle steps save the row's state, so what they carry
    /// is at worst a few log entries old.
    fn record_probe(
        &self,
        id: &str,
        started_at: u64,
        probe: &Probe,
        result: ProbeResult,
        stop: &Stop,
        last_write: &mut Instant,
    ) -> bool {
        let Ok(c) = self.load_container(id) else {
            return false;
        };
        let handle = self.container_handle(&c);
        let _op = handle.lock();
        if stop.is_stopped() {
            return false;
        }
        let Ok(c) = self.load_container(id) else {
            return false;
        };
        if c.state.started_at != started_at || !c.state.status.is_live() {
            return false;
        }
        let mut state = c.state.clone();
        let mut h = handle
            .state()
            .health
            .or(state.health.take())
            .unwrap_or_default();
        let streak = h.failing_streak;
        let changed = apply_result(&mut h, result, probe, started_at);
        let status = h.status;
        let write = changed || h.failing_streak != streak || last_write.elapsed() >= PERSIST_EVERY;
        state.health = Some(h);
        if write {
            if let Err(e) =
                self.store
                    .set_container_state(id, &super::encode(&state), Durability::Synced)
            {
                tracing::warn!(container = id, error = %e, "recording a health check");
            }
            *last_write = Instant::now();
        }
        handle.state.send_replace(state);
        if changed {
            self.container_event(&c, &format!("health_status: {}", status.as_str()), &[]);
        }
        true
    }

    /// Runs the probe once as an exec in the container.
    fn run_probe(&self, id: &str, probe: &Probe) -> ProbeResult {
        let start = now_ns();
        let (exit_code, output) = match self.exec_probe(id, probe) {
            Ok(r) => r,
            Err(msg) => (-1, msg),
        };
        ProbeResult {
            start,
            end: now_ns(),
            exit_code,
            output,
        }
    }

    fn exec_probe(&self, id: &str, probe: &Probe) -> Result<(i64, String), String> {
        let paths = self.container_paths(id);
        let spec: oci_spec::runtime::Spec = std::fs::read(paths.dir.join("config.json"))
            .map_err(|e| format!("reading the container's config.json: {e}"))
            .and_then(|b| {
                serde_json::from_slice(&b)
                    .map_err(|e| format!("reading the container's config.json: {e}"))
            })?;
        let base = spec.process().clone().unwrap_or_default();
        let exec = ExecConfig {
            cmd: Some(probe.cmd.clone()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            ..Default::default()
        };
        let process =
            crate::spec::exec_process(&exec, &base, &paths.rootfs()).map_err(|e| e.to_string())?;
        let exec_id = format!("health-{}", &super::names::new_id()[..24]);
        let client = shim::connect(&paths, id).map_err(|e| e.to_string())?;
        let (_pid, stream) = client
            .exec_attached(&exec_id, process, false, false)
            .map_err(|e| format!("OCI runtime exec failed: {e}"))?;
        let deadline = Instant::now() + probe.timeout;
        let mut out = Output::default();
        let finished = read_output(&stream, deadline, &mut out);
        if !finished {
            if let Ok(mut c) = shim::connect(&paths, id) {
                let _ = c.exec_kill(&exec_id, 9);
            }
            let mut sink = Output::default();
            read_output(&stream, Instant::now() + KILL_GRACE, &mut sink);
            let text = out.text();
            let t = go_duration(probe.timeout);
            return Ok((
                -1,
                if text.is_empty() {
                    format!("Health check exceeded timeout ({t})")
                } else {
                    format!("Health check exceeded timeout ({t}): {text}")
                },
            ));
        }
        let exit = shim::connect(&paths, id)
            .map_err(|e| e.to_string())
            .and_then(|mut c| c.exec_wait(&exec_id).map_err(|e| e.to_string()))?;
        Ok((i64::from(exit.code), out.text()))
    }
}

/// A probe's output, bounded as docker's limitedBuffer.
#[derive(Default)]
struct Output {
    buf: Vec<u8>,
    truncated: bool,
}

impl Output {
    fn push(&mut self, data: &[u8]) {
        let keep = (MAX_OUTPUT - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }

    fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

/// Reads the exec's multiplexed stream until it ends (true) or the
/// deadline passes (false).
fn read_output(mut stream: &UnixStream, deadline: Instant, out: &mut Output) -> bool {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        if stream.set_read_timeout(Some(deadline - now)).is_err() {
            return false;
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        };
        pending.extend_from_slice(&buf[..n]);
        // Frames: [stream, 0, 0, 0, len (u32 BE)] then len bytes.
        loop {
            if pending.len() < 8 {
                break;
            }
            let len = u32::from_be_bytes([pending[4], pending[5], pending[6], pending[7]]) as usize;
            if pending.len() < 8 + len {
                break;
            }
            out.push(&pending[8..8 + len]);
            pending.drain(..8 + len);
        }
        if pending.len() > 8 + berth_shim_proto::stream::MAX_CHUNK * 4 {
            // Not a stream we understand; keep what we have.
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_with(hc: Option<Value>) -> berth_image::ImageConfig {
        let mut v = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "config": {}});
        if let Some(h) = hc {
            v["config"]["Healthcheck"] = h;
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn probe_merges_request_and_image() {
        let img = image_with(Some(
            json!({"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 5_000_000_000i64, "Retries": 5}),
        ));
        let p = probe(&ContainerCreateBody::default(), &img).unwrap();
        assert_eq!(p.cmd, ["/bin/sh", "-c", "curl -f localhost"]);
        assert_eq!(p.interval, Duration::from_secs(5));
        assert_eq!(p.timeout, DEFAULT_TIMEOUT);
        assert_eq!(p.retries, 5);
        // The request's fields win; its empty ones take the image's.
        let body = ContainerCreateBody {
            healthcheck: Some(HealthConfig {
                interval: Some(200_000_000),
                ..Default::default()
            }),
            ..Default::default()
        };
        let p = probe(&body, &img).unwrap();
        assert_eq!(p.cmd, ["/bin/sh", "-c", "curl -f localhost"]);
        assert_eq!(p.interval, Duration::from_millis(200));
        assert_eq!(p.retries, 5);
        // NONE and empty disable; CMD execs directly.
        let none = ContainerCreateBody {
            healthcheck: Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(probe(&none, &img).is_none());
        assert!(probe(&ContainerCreateBody::default(), &image_with(None)).is_none());
        let cmd = ContainerCreateBody {
            healthcheck: Some(HealthConfig {
                test: Some(vec!["CMD".into(), "true".into()]),
                ..Default::default()
            }),
            shell: Some(vec!["/bin/bash".into(), "-c".into()]),
            ..Default::default()
        };
        assert_eq!(probe(&cmd, &image_with(None)).unwrap().cmd, ["true"]);
        let shell = ContainerCreateBody {
            healthcheck: Some(HealthConfig {
                test: Some(vec!["CMD-SHELL".into(), "exit 1".into()]),
                ..Default::default()
            }),
            shell: Some(vec!["/bin/bash".into(), "-c".into()]),
            ..Default::default()
        };
        assert_eq!(
            probe(&shell, &image_with(None)).unwrap().cmd,
            ["/bin/bash", "-c", "exit 1"]
        );
    }

    #[test]
    fn results_follow_docker() {
        let p = Probe {
            cmd: vec!["true".into()],
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            start_period: Duration::from_secs(10),
            start_interval: None,
            retries: 2,
        };
        let r = |start_s: u64, code: i64| ProbeResult {
            start: start_s * 1_000_000_000,
            end: start_s * 1_000_000_000 + 1,
            exit_code: code,
            output: String::new(),
        };
        let mut h = Health::default();
        // Failures within the start period do not count while starting.
        assert!(!apply_result(&mut h, r(1, 1), &p, 0));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        assert!(apply_result(&mut h, r(2, 0), &p, 0));
        assert_eq!(h.status, HealthStatus::Healthy);
        // Once healthy, failures count even within the start period.
        assert!(!apply_result(&mut h, r(3, 1), &p, 0));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 1));
        assert!(apply_result(&mut h, r(4, 1), &p, 0));
        assert_eq!(h.status, HealthStatus::Unhealthy);
        for i in 5..12 {
            apply_result(&mut h, r(i, 1), &p, 0);
        }
        assert_eq!(h.log.len(), MAX_LOG_ENTRIES);
        assert_eq!(h.log[0].start, 7_000_000_000);
        assert_eq!(h.describe(), "unhealthy");
        assert_eq!(Health::default().describe(), "health: starting");
        let d = h.to_docker();
        assert_eq!(d["Status"], "unhealthy");
        assert_eq!(d["Log"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_micros(5)), "5µs");
    }

    #[test]
    fn output_is_bounded() {
        let mut o = Output::default();
        o.push(&[b'a'; 5000]);
        let t = o.text();
        assert_eq!(t.len(), MAX_OUTPUT + 3);
        assert!(t.ends_with("..."));
    }
}
