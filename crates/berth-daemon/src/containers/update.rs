//! `POST /containers/{id}/update`: new resource limits and restart policy.
//!
//! docker's rules: a field the request leaves at zero (or unset) keeps
//! the container's value; NanoCpus and CpuPeriod/CpuQuota exclude each
//! other across the old and new settings; a memory limit above an already
//! set memory+swap limit needs a new swap limit too; a restart policy
//! cannot be given to an AutoRemove container. The merged create request
//! is then checked exactly as at create (the spec module's checks, in
//! docker's words), applied to a running (or paused) container through
//! its shim (the spec module's `linux.resources`, without device rules),
//! and stored, so a later start uses it too.

use berth_api::models::{
    ContainerCreateBody, ContainerUpdateBody, HostConfig, RestartPolicyNameEnum,
};
use berth_errdefs::ErrorKind;

use super::record::Status;
use super::{encode, shim, Loaded};
use crate::engine::Engine;
use crate::error::ApiError;

fn conflict(id: &str, msg: &str) -> ApiError {
    ApiError::new(
        ErrorKind::Conflict,
        format!("Cannot update container {id}: {msg}"),
    )
}

fn set(v: i64) -> bool {
    v != 0
}

/// docker's `UpdateContainer`: the update's non-zero fields over the
/// container's HostConfig.
pub fn merge(hc: &mut HostConfig, u: &ContainerUpdateBody) -> Result<(), String> {
    let cur = |v: Option<i64>| v.unwrap_or(0);
    let new = |v: Option<i64>| v.unwrap_or(0);
    if set(new(u.nano_cpus)) && set(cur(hc.cpu_period)) {
        return Err(
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"
                .into(),
        );
    }
    if set(new(u.nano_cpus)) && set(cur(hc.cpu_quota)) {
        return Err(
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set"
                .into(),
        );
    }
    if set(new(u.cpu_period)) && set(cur(hc.nano_cpus)) {
        return Err(
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"
                .into(),
        );
    }
    if set(new(u.cpu_quota)) && set(cur(hc.nano_cpus)) {
        return Err(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
                .into(),
        );
    }
    if u.blkio_weight.unwrap_or(0) != 0 {
        hc.blkio_weight = u.blkio_weight;
    }
    for (to, from) in [
        (&mut hc.cpu_shares, u.cpu_shares),
        (&mut hc.nano_cpus, u.nano_cpus),
        (&mut hc.cpu_period, u.cpu_period),
        (&mut hc.cpu_quota, u.cpu_quota),
        (&mut hc.cpu_realtime_period, u.cpu_realtime_period),
        (&mut hc.cpu_realtime_runtime, u.cpu_realtime_runtime),
        (&mut hc.memory_reservation, u.memory_reservation),
    ] {
        if set(new(from)) {
            *to = from;
        }
    }
    if let Some(c) = u.cpuset_cpus.clone().filter(|s| !s.is_empty()) {
        hc.cpuset_cpus = Some(c);
    }
    if let Some(m) = u.cpuset_mems.clone().filter(|s| !s.is_empty()) {
        hc.cpuset_mems = Some(m);
    }
    if set(new(u.memory)) {
        let swap = cur(hc.memory_swap);
        if swap > 0 && new(u.memory) > swap && !set(new(u.memory_swap)) {
            return Err("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into());
        }
        hc.memory = u.memory;
    }
    if set(new(u.memory_swap)) {
        hc.memory_swap = u.memory_swap;
    }
    if u.pids_limit.is_some() {
        hc.pids_limit = u.pids_limit;
    }
    if let Some(p) = &u.restart_policy {
        let named = !matches!(p.name, None | Some(RestartPolicyNameEnum::EMPTY));
        if named {
            let none = p.name == Some(RestartPolicyNameEnum::NO);
            if hc.auto_remove.unwrap_or(false) && !none {
                return Err("Restart policy cannot be updated because AutoRemove is enabled for the container".into());
            }
            hc.restart_policy = Some(p.clone());
        }
    }
    Ok(())
}

impl Engine {
    /// `POST /containers/{id}/update`; returns docker's warnings.
    pub fn update_container(
        &self,
        name: &str,
        update: ContainerUpdateBody,
    ) -> Result<Vec<String>, ApiError> {
        let c = self.load_container(name)?;
        let handle = self.container_handle(&c);
        let _op = handle.lock();
        let c = self.load_container(&c.id)?;
        if matches!(c.state.status, Status::Removing | Status::Dead) {
            return Err(conflict(
                &c.id,
                "container is marked for removal and cannot be \"update\"",
            ));
        }
        let image = self.store.image(&c.image_id)?;
        let image_config = crate::images::parse_image_config(&image)?;
        let old = c.config.create.clone();
        let mut body = old.clone();
        merge(
            body.host_config.get_or_insert_with(Default::default),
            &update,
        )
        .map_err(|m| conflict(&c.id, &m))?;
        // The checks of create, on the result (docker's wording, 400).
        let warnings = crate::spec::validate(&body, &image_config)?;
        let before = crate::spec::validate(&old, &image_config).unwrap_or_default();
        let warnings: Vec<String> = warnings
            .into_iter()
            .filter(|w| !w.is_empty() && !before.contains(w))
            .collect();
        if c.state.status.is_live() {
            self.apply_resources(&c, &body, &image_config, &update)?;
        }
        let mut config = c.config.clone();
        config.create = body;
        self.store.set_container_config(&c.id, &encode(&config))?;
        self.container_event(&c, "update", &[]);
        Ok(warnings)
    }

    /// The merged request's `linux.resources` (the spec module's), sent to
    /// the running container's shim.
    fn apply_resources(
        &self,
        c: &Loaded,
        body: &ContainerCreateBody,
        image: &berth_image::ImageConfig,
        update: &ContainerUpdateBody,
    ) -> Result<(), ApiError> {
        let paths = self.container_paths(&c.id);
        let etc = crate::spec::EtcFiles {
            hosts: paths.dir.join("hosts"),
            hostname: paths.dir.join("hostname"),
            resolv_conf: paths.dir.join("resolv.conf"),
        };
        let rootfs = paths.rootfs();
        let spec = crate::spec::generate(&crate::spec::SpecInput {
            id: &c.id,
            body,
            image,
            rootfs: &rootfs,
            etc: &etc,
            cgroups_path: "/",
            network_namespace: None,
            joined: &crate::spec::Joined::default(),
            shm: None,
            init: None,
            recursive_read_only: false,
        })?;
        let mut resources = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .unwrap_or_default();
        // Device rules are the container's own business after start.
        resources.set_devices(None);
        // An explicit "unlimited" must reach the cgroup (the spec leaves
        // an unset limit out).
        if update.pids_limit.is_some_and(|p| p <= 0) {
            let mut p = oci_spec::runtime::LinuxPids::default();
            p.set_limit(-1);
            resources.set_pids(Some(p));
        }
        let mut client = shim::connect(&paths, &c.id)?;
        client.update(resources).map_err(|e| {
            ApiError::new(
                berth_errdefs::HasKind::kind(&e),
                format!("Cannot update container {}: {e}", c.id),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::RestartPolicy;

    #[test]
    fn merge_keeps_unset_fields() {
        let mut hc = HostConfig {
            memory: Some(100 << 20),
            cpu_shares: Some(512),
            ..Default::default()
        };
        merge(
            &mut hc,
            &ContainerUpdateBody {
                memory: Some(0),
                pids_limit: Some(50),
                cpuset_cpus: Some(String::new()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(hc.memory, Some(100 << 20));
        assert_eq!(hc.cpu_shares, Some(512));
        assert_eq!(hc.pids_limit, Some(50));
        assert_eq!(hc.cpuset_cpus, None);
        merge(
            &mut hc,
            &ContainerUpdateBody {
                memory: Some(200 << 20),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(hc.memory, Some(200 << 20));
    }

    #[test]
    fn merge_conflicts_like_docker() {
        let mut hc = HostConfig {
            nano_cpus: Some(1_000_000_000),
            ..Default::default()
        };
        let e = merge(
            &mut hc,
            &ContainerUpdateBody {
                cpu_quota: Some(50_000),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("CPU Quota cannot be updated"), "{e}");
        let mut hc = HostConfig {
            memory: Some(100 << 20),
            memory_swap: Some(200 << 20),
            ..Default::default()
        };
        let e = merge(
            &mut hc,
            &ContainerUpdateBody {
                memory: Some(300 << 20),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("memoryswap"), "{e}");
        let mut hc = HostConfig {
            auto_remove: Some(true),
            ..Default::default()
        };
        let policy = |n| ContainerUpdateBody {
            restart_policy: Some(RestartPolicy {
                name: Some(n),
                maximum_retry_count: None,
            }),
            ..Default::default()
        };
        assert!(merge(&mut hc, &policy(RestartPolicyNameEnum::ALWAYS)).is_err());
        merge(&mut hc, &policy(RestartPolicyNameEnum::NO)).unwrap();
        let mut hc = HostConfig::default();
        merge(&mut hc, &policy(RestartPolicyNameEnum::ON_FAILURE)).unwrap();
        assert_eq!(
            hc.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::ON_FAILURE)
        );
    }
}
