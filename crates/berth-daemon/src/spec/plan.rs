//! The request checked and turned into settings: everything docker checks
//! at create time, and the refusals of what berthd does not do yet. Both
//! `validate` (create) and `generate` (start) go through here, so the two
//! always agree.

use std::collections::BTreeMap;

use berth_api::models::{
    ContainerCreateBody, HostConfig, HostConfigCgroupnsModeEnum, HostConfigIsolationEnum,
    RestartPolicyNameEnum,
};
use berth_image::ImageConfig;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxSeccomp, PosixRlimit};

use super::host::Host;
use super::mounts::{self, UserMount};
use super::seccomp::{self, DockerProfile};
use super::{caps, devices, env, resources, security, sysctl, SpecError};

/// HOST_NAME_MAX.
const MAX_HOSTNAME: usize = 64;
/// docker's MinimumDuration for healthcheck intervals: 1 ms.
const MIN_HEALTH_DURATION: i64 = 1_000_000;
/// docker's default /dev/shm size: 64 MiB.
pub(crate) const DEFAULT_SHM_SIZE: i64 = 64 << 20;

/// The IPC namespace and /dev/shm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IpcMode {
    /// A new namespace and a private /dev/shm ("", "private").
    Private,
    /// A new namespace and a /dev/shm that berthd mounts on the host, so
    /// that other containers can join both ("shareable").
    Shareable,
    /// Another running, shareable container's namespace and /dev/shm
    /// ("container:<name>"), resolved at start.
    Joined,
    /// A new namespace and no /dev/shm.
    None,
    /// The host's namespace and /dev/shm.
    Host,
}

/// Which seccomp profile the container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seccomp {
    Unconfined,
    Default,
    Custom(Box<DockerProfile>),
}

/// A request, checked.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub warnings: Vec<String>,
    /// Path and Args.
    pub args: Vec<String>,
    /// Config.Env merged over the image's (before PATH/HOSTNAME/TERM).
    pub env: Vec<String>,
    pub user: String,
    pub group_add: Vec<String>,
    /// Clean and absolute; None runs in "/" and creates nothing.
    pub working_dir: Option<String>,
    pub tty: bool,
    pub console_size: Option<(u64, u64)>,
    pub domainname: Option<String>,
    pub privileged: bool,
    /// The bounding/effective/permitted set.
    pub caps: Vec<String>,
    pub no_new_privileges: bool,
    pub seccomp: Seccomp,
    pub readonly_rootfs: bool,
    pub writable_cgroups: bool,
    pub net_private: bool,
    pub uts_private: bool,
    pub pid_private: bool,
    pub ipc: IpcMode,
    pub cgroupns_private: bool,
    /// Binds, Tmpfs and Mounts, in request order.
    pub mounts: Vec<UserMount>,
    pub shm_size: i64,
    pub rootfs_propagation: Option<String>,
    pub rlimits: Vec<PosixRlimit>,
    pub oom_score_adj: i32,
    pub resources: resources::Settings,
    pub devices: Vec<devices::Mapping>,
    pub device_rules: Vec<LinuxDeviceCgroup>,
    pub sysctls: BTreeMap<String, String>,
    /// HostConfig.MaskedPaths / ReadonlyPaths, replacing the defaults.
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    pub annotations: BTreeMap<String, String>,
}

fn not_empty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

/// docker's signal.ParseSignal: a number, or a name with or without "SIG".
fn check_signal(sig: &str) -> Result<(), SpecError> {
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
        "RTMIN", "RTMAX", "UNUSED",
    ];
    let bad = || SpecError::invalid(format!("Invalid signal: {sig}"));
    if let Ok(n) = sig.parse::<i64>() {
        return if (1..=64).contains(&n) {
            Ok(())
        } else {
            Err(bad())
        };
    }
    let upper = sig.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let ok = NAMES.contains(&name)
        || [("RTMIN+", 1..=30), ("RTMAX-", 1..=30)]
            .iter()
            .any(|(p, r)| {
                name.strip_prefix(p)
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| r.contains(&n))
            });
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

fn check_healthcheck(body: &ContainerCreateBody) -> Result<(), SpecError> {
    let Some(h) = &body.healthcheck else {
        return Ok(());
    };
    for (name, v) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        let v = v.unwrap_or(0);
        if v != 0 && v < MIN_HEALTH_DURATION {
            return Err(SpecError::invalid(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if h.retries.unwrap_or(0) < 0 {
        return Err(SpecError::invalid(
            "Retries in Healthcheck cannot be negative",
        ));
    }
    Ok(())
}

fn check_restart(hc: &HostConfig) -> Result<(), SpecError> {
    let policy = hc.restart_policy.as_ref();
    let name = policy
        .and_then(|p| p.name)
        .unwrap_or(RestartPolicyNameEnum::EMPTY);
    let retries = policy.and_then(|p| p.maximum_retry_count).unwrap_or(0);
    match name {
        RestartPolicyNameEnum::ALWAYS
        | RestartPolicyNameEnum::UNLESS_STOPPED
        | RestartPolicyNameEnum::NO
            if retries != 0 =>
        {
            let mut msg =
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                    .to_string();
            if retries < 0 {
                msg.push_str(" and cannot be negative");
            }
            return Err(SpecError::invalid(msg));
        }
        RestartPolicyNameEnum::ON_FAILURE if retries < 0 => {
            return Err(SpecError::invalid(
                "invalid restart policy: maximum retry count cannot be negative",
            ))
        }
        _ => {}
    }
    let none = matches!(
        name,
        RestartPolicyNameEnum::EMPTY | RestartPolicyNameEnum::NO
    );
    if hc.auto_remove.unwrap_or(false) && !none {
        return Err(SpecError::invalid(
            "can't create 'AutoRemove' container with restart policy",
        ));
    }
    Ok(())
}

/// A namespace mode: "" (private), "host", "container:<name>" for PID and
/// IPC, or something docker refuses.
/// Ok(true): a namespace of the container's own (or one it joins).
fn namespace_mode(value: Option<&str>, what: &str, extra: &[&str]) -> Result<bool, SpecError> {
    match value.unwrap_or("") {
        "" => Ok(true),
        "host" => Ok(false),
        v if extra.contains(&v) => Ok(true),
        // Another container's namespace, joined at start.
        v if joined_container(Some(v)).is_some() && (what == "PID" || what == "IPC") => Ok(true),
        v => Err(SpecError::invalid(format!("invalid {what} mode: {v}"))),
    }
}

/// /dev/shm's size: HostConfig.ShmSize, docker's default when unset (0).
pub(crate) fn shm_size(hc: &HostConfig) -> i64 {
    match hc.shm_size.unwrap_or(0) {
        0 => DEFAULT_SHM_SIZE,
        n => n,
    }
}

/// The container a `container:<name>` mode names.
pub(crate) fn joined_container(mode: Option<&str>) -> Option<&str> {
    mode?
        .strip_prefix("container:")
        .filter(|name| !name.is_empty())
}

impl Plan {
    pub fn new(
        body: &ContainerCreateBody,
        image: &ImageConfig,
        host: &Host,
    ) -> Result<Plan, SpecError> {
        let default_hc = HostConfig::default();
        let hc = body.host_config.as_ref().unwrap_or(&default_hc);
        let run = image.config.clone().unwrap_or_default();
        let mut warnings = Vec::new();

        // Config, as docker's validateContainerConfig.
        let working_dir = match body
            .working_dir
            .as_deref()
            .filter(|d| !d.is_empty())
            .or(run.working_dir.as_deref().filter(|d| !d.is_empty()))
        {
            Some(d) => Some(env::clean_workdir(d)?),
            None => None,
        };
        if let Some(sig) = body.stop_signal.as_deref().filter(|s| !s.is_empty()) {
            check_signal(sig)?;
        }
        for e in body.env.iter().flatten() {
            env::check_env(e)?;
        }
        check_healthcheck(body)?;
        let hostname = body.hostname.as_deref().unwrap_or("");
        if hostname.len() > MAX_HOSTNAME {
            return Err(SpecError::invalid(format!(
                "hostname {hostname:?} is too long (maximum {MAX_HOSTNAME} bytes)"
            )));
        }
        let args = env::command_line(body, image)?;

        // HostConfig, as docker's validateHostConfig.
        check_restart(hc)?;
        let privileged = hc.privileged.unwrap_or(false);
        let caps = caps::effective(
            hc.cap_add.as_deref().unwrap_or_default(),
            hc.cap_drop.as_deref().unwrap_or_default(),
            privileged,
            host.capabilities,
        )?;
        match hc.isolation {
            None
            | Some(HostConfigIsolationEnum::EMPTY)
            | Some(HostConfigIsolationEnum::DEFAULT) => {}
            Some(other) => {
                return Err(SpecError::invalid(format!(
                    "invalid isolation ({other}): linux only supports 'default'"
                )))
            }
        }
        let annotations: BTreeMap<String, String> = hc
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        if annotations.contains_key("") {
            return Err(SpecError::invalid(
                "invalid Annotations: the empty string is not permitted as an annotation key",
            ));
        }

        // Networking: the daemon makes the namespace of bridge networks
        // (and checks that the networks exist); here only docker's
        // request-level checks.
        let network_disabled = body.network_disabled.unwrap_or(false);
        let mode = hc.network_mode.as_deref().unwrap_or("");
        let net_host = mode == "host" && !network_disabled;
        let net_shared = mode.starts_with("container:") && !network_disabled;
        match mode {
            _ if network_disabled => {}
            "container" | "container:" => {
                return Err(SpecError::invalid(
                    "invalid network mode: invalid container format container:<name|id>",
                ))
            }
            m if m.starts_with("container:") && !hostname.is_empty() => {
                return Err(SpecError::invalid(
                    "conflicting options: hostname and the network mode",
                ));
            }
            _ => {}
        }
        let publishes = hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty())
            || hc.publish_all_ports.unwrap_or(false);
        if publishes && net_host {
            warnings.push("Published ports are discarded when using host network mode".into());
        } else if publishes && net_shared {
            return Err(SpecError::invalid(
                "conflicting options: port publishing and the container type network mode",
            ));
        }
        if not_empty(&hc.links) && net_host {
            return Err(SpecError::invalid("conflicting options: host type networking can't be used with links. This would result in undefined behavior"));
        }
        if net_shared
            && (not_empty(&hc.dns) || not_empty(&hc.dns_search) || not_empty(&hc.dns_options))
        {
            return Err(SpecError::invalid(
                "conflicting options: dns and the network mode",
            ));
        }
        if net_shared && not_empty(&hc.extra_hosts) {
            return Err(SpecError::invalid(
                "conflicting options: custom host-to-IP mapping and the network mode",
            ));
        }

        // Namespaces.
        let uts_private = namespace_mode(hc.uts_mode.as_deref(), "UTS", &[])?;
        if !uts_private && !hostname.is_empty() {
            return Err(SpecError::invalid(
                "conflicting options: hostname and the UTS mode",
            ));
        }
        let domainname = body.domainname.clone().filter(|d| !d.is_empty());
        if !uts_private && domainname.is_some() {
            return Err(SpecError::invalid(
                "conflicting options: domainname and the UTS mode",
            ));
        }
        let pid_private = namespace_mode(hc.pid_mode.as_deref(), "PID", &[])?;
        let ipc = match hc.ipc_mode.as_deref().unwrap_or("") {
            "none" => IpcMode::None,
            "shareable" => IpcMode::Shareable,
            v if joined_container(Some(v)).is_some() => IpcMode::Joined,
            other => {
                if namespace_mode(Some(other), "IPC", &["private"])? {
                    IpcMode::Private
                } else {
                    IpcMode::Host
                }
            }
        };
        let cgroupns_private = match hc.cgroupns_mode {
            Some(HostConfigCgroupnsModeEnum::PRIVATE) => true,
            Some(HostConfigCgroupnsModeEnum::HOST) => false,
            // docker's default: private on cgroup v2, host on v1.
            _ => host.cgroup_v2,
        };
        match hc.userns_mode.as_deref().unwrap_or("") {
            "" | "host" => {}
            "private" => {
                return Err(SpecError::not_implemented(
                    "HostConfig.UsernsMode",
                    "user namespaces are",
                ))
            }
            other => return Err(SpecError::invalid(format!("invalid USER mode: {other}"))),
        }
        if hc.cgroup.as_deref().is_some_and(|c| !c.is_empty()) {
            return Err(SpecError::not_implemented(
                "HostConfig.Cgroup",
                "sharing another container's cgroup is",
            ));
        }
        if let Some(parent) = hc.cgroup_parent.as_deref() {
            if parent.split('/').any(|c| c == "..") {
                return Err(SpecError::invalid(format!(
                    "invalid cgroup parent {parent:?}: it must not contain '..'"
                )));
            }
        }

        // Resources and limits, as docker's verifyPlatformContainerResources.
        let resources = resources::check(hc, host, &mut warnings)?;
        if hc.shm_size.unwrap_or(0) < 0 {
            return Err(SpecError::invalid("SHM size can not be less than 0"));
        }
        let shm_size = shm_size(hc);
        let oom_score_adj = hc.oom_score_adj.unwrap_or(0);
        if !(-1000..=1000).contains(&oom_score_adj) {
            return Err(SpecError::invalid(format!(
                "Invalid value {oom_score_adj}, range for oom score adj is [-1000, 1000]"
            )));
        }
        let rlimits = resources::rlimits(hc)?;

        // Security options.
        let sec = security::parse(hc.security_opt.as_deref().unwrap_or_default())?;
        if let Some(profile) = sec.apparmor.as_deref() {
            if profile != "unconfined" {
                return Err(SpecError::not_implemented(
                    "HostConfig.SecurityOpt",
                    format!("AppArmor profiles (apparmor={profile}) are"),
                ));
            }
        }
        if sec.labels.iter().any(|l| l != "disable") {
            warnings.push("SELinux labels are ignored: berthd does not support SELinux".into());
        }
        let seccomp = match sec.seccomp.as_deref() {
            Some("unconfined") => Seccomp::Unconfined,
            Some("builtin") => Seccomp::Default,
            Some(json) => Seccomp::Custom(Box::new(seccomp::parse(json.as_bytes())?)),
            None if privileged => Seccomp::Unconfined,
            None => Seccomp::Default,
        };
        let seccomp = match seccomp {
            Seccomp::Default if privileged => Seccomp::Unconfined,
            other => other,
        };
        let writable_cgroups = sec.writable_cgroups.unwrap_or(privileged);

        // Storage.
        if hc.storage_opt.as_ref().is_some_and(|o| !o.is_empty()) {
            return Err(SpecError::not_implemented(
                "HostConfig.StorageOpt",
                "storage options are",
            ));
        }
        let (mounts, rootfs_propagation) = mounts::parse(hc)?;
        mounts::volumes_from(hc)?;
        mounts::anonymous(body, image, &mounts, hc)?;

        // Devices.
        if not_empty(&hc.device_requests) {
            return Err(SpecError::not_implemented(
                "HostConfig.DeviceRequests",
                "device requests (GPUs) are",
            ));
        }
        let devices = devices::parse_mappings(hc)?;
        let device_rules = devices::parse_rules(hc)?;

        // Process.
        let tty = body.tty.unwrap_or(false);
        let console_size = hc
            .console_size
            .as_deref()
            .and_then(|s| <[usize; 2]>::try_from(s).ok())
            .filter(|[h, w]| tty && *h > 0 && *w > 0)
            .map(|[h, w]| (h as u64, w as u64));
        let env = env::merge_env(
            body.env.as_deref().unwrap_or_default(),
            run.env.as_deref().unwrap_or_default(),
        );
        let user = body
            .user
            .clone()
            .filter(|u| !u.is_empty())
            .or(run.user.clone())
            .unwrap_or_default();
        let sysctls = sysctl::sysctls(hc, !net_host, ipc, host)?;

        Ok(Plan {
            warnings,
            args,
            env,
            user,
            group_add: hc.group_add.clone().unwrap_or_default(),
            working_dir,
            tty,
            console_size,
            domainname,
            privileged,
            caps,
            no_new_privileges: sec.no_new_privileges,
            seccomp,
            readonly_rootfs: hc.readonly_rootfs.unwrap_or(false),
            writable_cgroups,
            net_private: !net_host,
            uts_private,
            pid_private,
            ipc,
            cgroupns_private,
            mounts,
            shm_size,
            rootfs_propagation,
            rlimits,
            oom_score_adj: oom_score_adj as i32,
            resources,
            devices,
            device_rules,
            sysctls,
            masked_paths: hc.masked_paths.clone(),
            readonly_paths: hc.readonly_paths.clone(),
            annotations,
        })
    }

    /// Makes the read-only binds whose depth the request left open
    /// recursively read-only (`rro`), as dockerd does for containers
    /// created at API 1.44 and later on a kernel with mount_setattr (5.12).
    /// Docker's older API made them read-only on the top mount only, and
    /// containers created through it keep that.
    pub fn read_only_recursively(&mut self) {
        for m in &mut self.mounts {
            if let super::mounts::Kind::Bind { readonly, .. } = &mut m.kind {
                if *readonly == super::mounts::ReadOnly::Yes {
                    *readonly = super::mounts::ReadOnly::Recursive;
                }
            }
        }
    }

    /// Masked and read-only paths: docker's defaults (none when
    /// privileged), or the request's.
    pub fn system_paths(&self, host: &Host) -> (Vec<String>, Vec<String>) {
        let (mut masked, mut readonly) = if self.privileged {
            (Vec::new(), Vec::new())
        } else {
            let mut masked: Vec<String> = [
                "/proc/acpi",
                "/proc/asound",
                "/proc/interrupts",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/sched_debug",
                "/proc/scsi",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/sys/devices/virtual/powercap",
                "/sys/firmware",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            masked.extend(host.thermal_throttle.iter().cloned());
            let readonly = [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            (masked, readonly)
        };
        if let Some(m) = &self.masked_paths {
            masked = m.clone();
        }
        if let Some(r) = &self.readonly_paths {
            readonly = r.clone();
        }
        (masked, readonly)
    }

    /// The OCI seccomp section for this container on `host`.
    pub fn seccomp_profile(&self, host: &Host) -> Result<Option<LinuxSeccomp>, SpecError> {
        match &self.seccomp {
            Seccomp::Unconfined => Ok(None),
            Seccomp::Default => seccomp::resolve(
                &seccomp::default_profile(),
                &self.caps,
                host.arch,
                host.kernel,
            ),
            Seccomp::Custom(p) => seccomp::resolve(p, &self.caps, host.arch, host.kernel),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_as_docker() {
        for ok in [
            "SIGTERM",
            "TERM",
            "sigkill",
            "9",
            "SIGRTMIN+3",
            "RTMAX-1",
            "SIGWINCH",
        ] {
            check_signal(ok).unwrap();
        }
        for bad in ["SIGFOO", "0", "65", "RTMIN+40", ""] {
            assert_eq!(
                check_signal(bad).unwrap_err().to_string(),
                format!("Invalid signal: {bad}")
            );
        }
    }
}
