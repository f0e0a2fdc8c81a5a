//! `GET /containers/{id}/json` and `GET /containers/json`: a container in
//! docker's shape (key order as docker writes it, since `docker inspect`
//! prints it as given), and docker's list filters.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use berth_api::{ApiVersion, Filters};
use serde_json::{json, Map, Value};

use super::record::Status;
use super::Loaded;
use crate::engine::Engine;
use crate::error::ApiError;

/// Docker's zero time.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time(ns: u64) -> String {
    if ns == 0 {
        ZERO_TIME.to_string()
    } else {
        berth_image::time::rfc3339(UNIX_EPOCH + Duration::from_nanos(ns))
    }
}

/// The container's Config as docker reports it: the create request with
/// the image's defaults merged in.
pub(super) fn merged_config(c: &Loaded, image: &berth_image::ImageConfig) -> Value {
    let create = &c.config.create;
    let run = image.config.clone().unwrap_or_default();
    let env = crate::spec::env::merge_env(
        create.env.as_deref().unwrap_or_default(),
        run.env.as_deref().unwrap_or_default(),
    );
    let (entrypoint, cmd) = match &create.entrypoint {
        Some(ep) => (Some(ep.clone()), create.cmd.clone()),
        None => (
            run.entrypoint.clone(),
            create.cmd.clone().or(run.cmd.clone()),
        ),
    };
    let mut labels: BTreeMap<String, String> = run.labels.clone().unwrap_or_default();
    for (k, v) in create.labels.clone().unwrap_or_default() {
        labels.insert(k, v);
    }
    let working_dir = create
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .or(run.working_dir.clone())
        .unwrap_or_default();
    let user = create
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .or(run.user.clone())
        .unwrap_or_default();
    let mut v = json!({
        "Hostname": c.config.hostname,
        "Domainname": create.domainname.clone().unwrap_or_default(),
        "User": user,
        "AttachStdin": create.attach_stdin.unwrap_or(false),
        "AttachStdout": create.attach_stdout.unwrap_or(false),
        "AttachStderr": create.attach_stderr.unwrap_or(false),
        "Tty": create.tty.unwrap_or(false),
        "OpenStdin": create.open_stdin.unwrap_or(false),
        "StdinOnce": create.stdin_once.unwrap_or(false),
        "Env": env,
        "Cmd": cmd,
        "Image": c.config.image_name,
        "Volumes": create
            .volumes
            .as_ref()
            .filter(|v| !v.is_empty())
            .map(|v| v.iter().map(|p| (p.clone(), json!({}))).collect::<Map<_, _>>())
            .map(Value::Object)
            .or(run.volumes.as_ref().filter(|v| !v.is_empty()).map(|v| json!(v))),
        "WorkingDir": working_dir,
        "Entrypoint": entrypoint,
        "OnBuild": run.on_build,
        "Labels": labels,
    });
    if let Some(ports) = &create.exposed_ports {
        let map: Map<String, Value> = ports.iter().map(|p| (p.clone(), json!({}))).collect();
        v["ExposedPorts"] = Value::Object(map);
    } else if let Some(ports) = &run.exposed_ports {
        v["ExposedPorts"] = json!(ports);
    }
    if let Some(s) = create.stop_signal.clone().or(run.stop_signal.clone()) {
        v["StopSignal"] = json!(s);
    }
    if let Some(t) = create.stop_timeout {
        v["StopTimeout"] = json!(t);
    }
    if let Some(h) = super::health::merged_config(create, image) {
        v["Healthcheck"] = json!(h);
    }
    v
}

/// HostConfig as docker reports it: what the client sent, with docker's
/// defaults for the fields every client reads and the values berth applies
/// where docker's create normalises them (ShmSize, MemorySwap, the masked
/// paths...), so that `inspect` says what the container runs with.
///
/// Kernel memory limits went in API 1.42 (cgroup v2 has none): older
/// versions show them as 0, newer ones leave them out.
fn host_config(
    c: &Loaded,
    applied: Option<&crate::spec::AppliedDefaults>,
    version: ApiVersion,
) -> Value {
    let mut v = c
        .config
        .create
        .host_config
        .as_ref()
        .map(|h| serde_json::to_value(h).unwrap_or_default())
        .unwrap_or_else(|| json!({}));
    let paths = |p: Option<&Vec<String>>| match p {
        Some(list) if !list.is_empty() => json!(list),
        _ => Value::Null,
    };
    let defaults = [
        ("NetworkMode", json!("default")),
        (
            "RestartPolicy",
            json!({"Name": "no", "MaximumRetryCount": 0}),
        ),
        ("LogConfig", json!({"Type": "json-file", "Config": {}})),
        ("AutoRemove", json!(false)),
        ("Privileged", json!(false)),
        ("ReadonlyRootfs", json!(false)),
        ("Runtime", json!(c.config.runtime)),
        ("Binds", Value::Null),
        ("PortBindings", json!({})),
        ("ShmSize", json!(crate::spec::DEFAULT_SHM_SIZE)),
        ("Memory", json!(0)),
        ("NanoCpus", json!(0)),
        ("CpuShares", json!(0)),
        ("PidsLimit", Value::Null),
        ("CapAdd", Value::Null),
        ("CapDrop", Value::Null),
        ("DeviceCgroupRules", Value::Null),
        ("DeviceRequests", Value::Null),
        ("ExtraHosts", Value::Null),
        ("GroupAdd", Value::Null),
        ("SecurityOpt", Value::Null),
        ("VolumesFrom", Value::Null),
        ("IpcMode", json!("private")),
        (
            "CgroupnsMode",
            json!(if applied.is_some_and(|a| a.cgroupns_private) {
                "private"
            } else {
                "host"
            }),
        ),
        ("MaskedPaths", paths(applied.map(|a| &a.masked_paths))),
        ("ReadonlyPaths", paths(applied.map(|a| &a.readonly_paths))),
    ];
    if let Value::Object(m) = &mut v {
        for (k, d) in defaults {
            let missing = match m.get(k) {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Object(o)) => o.is_empty() && k != "PortBindings",
                Some(_) => false,
            };
            if missing {
                m.insert(k.to_string(), d);
            }
        }
        if m.get("RestartPolicy")
            .and_then(|r| r.get("Name"))
            .is_some_and(|n| n == "" || n.is_null())
        {
            m["RestartPolicy"]["Name"] = json!("no");
        }
        // docker's create normalises these; "not set" reads as null.
        let int = |m: &serde_json::Map<String, Value>, k: &str| m.get(k).and_then(Value::as_i64);
        if int(m, "ShmSize").is_some_and(|s| s <= 0) {
            m.insert("ShmSize".into(), json!(crate::spec::DEFAULT_SHM_SIZE));
        }
        if int(m, "PidsLimit").is_some_and(|p| p <= 0) {
            m.insert("PidsLimit".into(), Value::Null);
        }
        if int(m, "MemorySwappiness") == Some(-1) {
            m.insert("MemorySwappiness".into(), Value::Null);
        }
        let memory = int(m, "Memory").unwrap_or(0);
        if memory > 0 && int(m, "MemorySwap").unwrap_or(0) == 0 {
            m.insert("MemorySwap".into(), json!(memory * 2));
        }
        // A pointer docker leaves out when unset.
        if m.get("Init").is_some_and(Value::is_null) {
            m.remove("Init");
        }
        for k in ["KernelMemory", "KernelMemoryTCP"] {
            if version < ApiVersion::new(1, 42) {
                m.entry(k).or_insert(json!(0));
            } else {
                m.remove(k);
            }
        }
    }
    v
}

impl Engine {
    /// `GET /containers/{id}/json` at API `version`.
    pub fn inspect_container(
        &self,
        name: &str,
        size: bool,
        version: ApiVersion,
    ) -> Result<Value, ApiError> {
        let c = self.load_container(name)?;
        let state = self
            .containers
            .handles()
            .get(&c.id)
            .map(|h| h.state())
            .unwrap_or_else(|| c.state.clone());
        let image = self.store.image(&c.image_id)?;
        let image_config = crate::images::parse_image_config(&image)?;
        let paths = self.container_paths(&c.id);
        let exec_ids: Vec<String> = self
            .containers
            .execs()
            .values()
            .filter(|e| e.container_id == c.id)
            .map(|e| e.id.clone())
            .collect();
        let dir = |p: std::path::PathBuf| p.display().to_string();
        let lower: Vec<String> = image
            .layers
            .iter()
            .rev()
            .map(|l| dir(self.layers.diff_path(&l.chain_id)))
            .collect();
        let mut v = json!({
            "Id": c.id,
            "Created": time(c.created_at.max(0) as u64),
            "Path": c.config.path,
            "Args": c.config.args,
            "State": {
                "Status": state.status.as_str(),
                "Running": state.status.is_live(),
                "Paused": state.status == Status::Paused,
                "Restarting": state.status == Status::Restarting,
                "OOMKilled": state.oom_killed,
                "Dead": state.status == Status::Dead,
                "Pid": state.pid,
                "ExitCode": state.exit_code,
                "Error": state.error,
                "StartedAt": time(state.started_at),
                "FinishedAt": time(state.finished_at),
            },
            "Image": c.image_id.to_string(),
            "ResolvConfPath": dir(paths.dir.join("resolv.conf")),
            "HostnamePath": dir(paths.dir.join("hostname")),
            "HostsPath": dir(paths.dir.join("hosts")),
            "LogPath": dir(paths.log(&c.id)),
            "Name": format!("/{}", c.name),
            "RestartCount": state.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": if exec_ids.is_empty() { Value::Null } else { json!(exec_ids) },
            "HostConfig": host_config(
                &c,
                crate::spec::applied_defaults(&c.config.create, &image_config).as_ref(),
                version,
            ),
            "GraphDriver": {
                "Data": {
                    "LowerDir": lower.join(":"),
                    "MergedDir": dir(paths.rootfs()),
                    "UpperDir": dir(paths.dir.join("upper")),
                    "WorkDir": dir(paths.dir.join("work")),
                },
                "Name": "overlay2",
            },
            "Mounts": self.mounts_json(&c, &image_config),
            "Config": merged_config(&c, &image_config),
            "NetworkSettings": self.network_settings(&c),
        });
        // Legacy links as docker shows them ("/child:/parent/alias").
        v["HostConfig"]["Links"] = self.links_json(&c);
        if let Some(h) = &state.health {
            v["State"]["Health"] = h.to_docker();
        }
        if size {
            let rw = dir_size(&paths.dir.join("upper"));
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rw + image.size);
        }
        Ok(v)
    }

    /// `GET /containers/json`: docker's list, newest first.
    pub fn list_containers(
        &self,
        all: bool,
        limit: Option<i64>,
        size: bool,
        filters: &Filters,
    ) -> Result<Vec<Value>, ApiError> {
        filters.validate(&[
            "id",
            "name",
            "label",
            "status",
            "exited",
            "ancestor",
            "before",
            "since",
            "health",
            "isolation",
            "network",
            "volume",
            "publish",
            "expose",
            "is-task",
        ])?;
        let mut rows: Vec<Loaded> = self
            .store
            .containers()?
            .into_iter()
            .map(Loaded::from_row)
            .collect::<Result<_, _>>()?;
        rows.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        // `before`/`since` name containers; resolve them to creation times.
        let bound = |key: &str| -> Result<Option<i64>, ApiError> {
            match filters.get(key).next() {
                Some(n) => Ok(Some(self.load_container(n)?.created_at)),
                None => Ok(None),
            }
        };
        let (before, since) = (bound("before")?, bound("since")?);
        let mut out = Vec::new();
        for mut c in rows {
            if let Some(h) = self.containers.handles().get(&c.id) {
                c.state = h.state();
            }
            let running = c.state.status.is_live() || c.state.status == Status::Restarting;
            let filtered = filters.contains("status") || filters.contains("exited");
            if !all
                && !running
                && !filtered
                && limit.unwrap_or(-1) <= 0
                && before.is_none()
                && since.is_none()
            {
                continue;
            }
            if !self.matches(&c, filters) {
                continue;
            }
            if before.is_some_and(|b| c.created_at >= b) || since.is_some_and(|s| c.created_at <= s)
            {
                continue;
            }
            out.push(self.summary(&c, size)?);
            if limit.is_some_and(|l| l > 0 && out.len() as i64 >= l) {
                break;
            }
        }
        Ok(out)
    }

    fn matches(&self, c: &Loaded, f: &Filters) -> bool {
        let any = |key: &str, ok: &dyn Fn(&str) -> bool| !f.contains(key) || f.get(key).any(ok);
        let labels = c.config.create.labels.clone().unwrap_or_default();
        any("id", &|v| c.id.starts_with(v))
            && any("name", &|v| c.name.contains(v.trim_start_matches('/')))
            && any("status", &|v| v == c.state.status.as_str())
            && any("health", &|v| {
                v == c
                    .state
                    .health
                    .as_ref()
                    .map_or("none", |h| h.status.as_str())
            })
            && any("volume", &|v| {
                c.config
                    .mount_points
                    .iter()
                    .any(|m| m.name == v || m.destination == v)
            })
            && any("exited", &|v| {
                c.state.status == Status::Exited && v.parse() == Ok(c.state.exit_code)
            })
            && f.labels_match("label", || {
                labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))
            })
            && any("ancestor", &|v| {
                c.config.image_name == v
                    || c.image_id.to_string() == v
                    || c.image_id.hex().starts_with(v)
                    || self
                        .store
                        .resolve_image(v)
                        .is_ok_and(|i| i.id == c.image_id)
            })
    }

    fn summary(&self, c: &Loaded, size: bool) -> Result<Value, ApiError> {
        let (ports, network_settings) = self.network_summary(c);
        let command = std::iter::once(c.config.path.clone())
            .chain(c.config.args.iter().cloned())
            .map(|a| {
                if a.contains(' ') {
                    format!("\"{a}\"")
                } else {
                    a
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        let mut v = json!({
            "Id": c.id,
            "Names": [format!("/{}", c.name)],
            "Image": c.config.image_name,
            "ImageID": c.image_id.to_string(),
            "Command": command,
            "Created": c.created_at / 1_000_000_000,
            "Ports": ports,
            "Labels": c.config.create.labels.clone().unwrap_or_default(),
            "State": c.state.status.as_str(),
            "Status": status_text(&c.state),
            "HostConfig": {"NetworkMode": c.config.create.host_config.as_ref().and_then(|h| h.network_mode.clone()).unwrap_or_else(|| "default".into())},
            "NetworkSettings": network_settings,
            // The image only adds anonymous volumes, which are recorded.
            "Mounts": self.mounts_json(c, &Default::default()),
        });
        if size {
            let paths = self.container_paths(&c.id);
            let rw = dir_size(&paths.dir.join("upper"));
            let image = self.store.image(&c.image_id)?;
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rw + image.size);
        }
        Ok(v)
    }
}

/// docker's human status: `Up 5 seconds`, `Exited (0) 2 minutes ago`,
/// `Created`, `Up 1 second (Paused)`, `Restarting (1) 3 seconds ago`.
pub fn status_text(s: &super::RunState) -> String {
    let now = crate::events::now_nanos().max(0) as u64;
    let ago = |t: u64| human_duration(Duration::from_nanos(now.saturating_sub(t)));
    match s.status {
        Status::Created => "Created".into(),
        Status::Running => match &s.health {
            Some(h) => format!("Up {} ({})", ago(s.started_at), h.describe()),
            None => format!("Up {}", ago(s.started_at)),
        },
        Status::Paused => format!("Up {} (Paused)", ago(s.started_at)),
        Status::Restarting => format!("Restarting ({}) {} ago", s.exit_code, ago(s.finished_at)),
        Status::Removing => "Removal In Progress".into(),
        Status::Exited => format!("Exited ({}) {} ago", s.exit_code, ago(s.finished_at)),
        Status::Dead => "Dead".into(),
    }
}

/// go-units' HumanDuration.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let hours = secs / 3600;
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s / 60 == 1 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

/// Bytes in the files under `path` (the container's writable layer).
pub fn dir_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_owned()];
    while let Some(p) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_like_go_units() {
        let s = Duration::from_secs;
        assert_eq!(human_duration(s(0)), "Less than a second");
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(30)), "30 seconds");
        assert_eq!(human_duration(s(90)), "About a minute");
        assert_eq!(human_duration(s(600)), "10 minutes");
        assert_eq!(human_duration(s(3700)), "About an hour");
        assert_eq!(human_duration(s(5 * 3600)), "5 hours");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
        assert_eq!(time(0), ZERO_TIME);
    }
}
