//! Resource limits: docker's checks (verifyPlatformContainerResources and
//! friends), its defaults (MemorySwap = 2 x Memory), and the OCI
//! `linux.resources`; Ulimits as rlimits.

use berth_api::models::HostConfig;
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxPids, LinuxResources,
    LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder, PosixRlimit, PosixRlimitBuilder,
    PosixRlimitType,
};

use super::host::{parse_list, Host};
use super::plan::Plan;
use super::SpecError;

/// docker's floor for memory limits and reservations: 6 MiB.
const MIN_MEMORY: i64 = 6 << 20;
/// The CFS period NanoCpus is spread over: 100 ms.
const NANO_PERIOD: u64 = 100_000;

/// Checked limits, ready for the spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    pub memory: Option<i64>,
    pub reservation: Option<i64>,
    pub swap: Option<i64>,
    pub swappiness: Option<u64>,
    pub oom_kill_disable: Option<bool>,
    pub shares: Option<u64>,
    pub quota: Option<i64>,
    pub period: Option<u64>,
    pub rt_period: Option<u64>,
    pub rt_runtime: Option<i64>,
    pub cpus: Option<String>,
    pub mems: Option<String>,
    pub pids: Option<i64>,
    pub blkio_weight: Option<u16>,
    /// (host device path, weight)
    pub weight_devices: Vec<(String, u16)>,
    /// (host device path, rate): read bps, write bps, read iops, write iops.
    pub throttles: [Vec<(String, u64)>; 4],
}

fn nonzero(v: Option<i64>) -> i64 {
    v.unwrap_or(0)
}

fn cpuset(
    value: &str,
    what: &str,
    available: Option<&Vec<u32>>,
) -> Result<Option<String>, SpecError> {
    if value.is_empty() {
        return Ok(None);
    }
    let wanted = parse_list(value)
        .map_err(|e| SpecError::invalid(format!("Invalid value {value} for cpuset {what}: {e}")))?;
    if let Some(avail) = available {
        if wanted.iter().any(|n| !avail.contains(n)) {
            let list = avail
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let noun = if what == "cpus" {
                "CPUs"
            } else {
                "memory nodes"
            };
            return Err(SpecError::invalid(format!(
                "Requested {noun} are not available - requested {value}, available: {list}"
            )));
        }
    }
    Ok(Some(value.to_string()))
}

pub(crate) fn check(
    hc: &HostConfig,
    host: &Host,
    warnings: &mut Vec<String>,
) -> Result<Settings, SpecError> {
    let bad = |m: String| Err(SpecError::invalid(m));
    let memory = nonzero(hc.memory);
    let mut swap = nonzero(hc.memory_swap);
    let reservation = nonzero(hc.memory_reservation);
    // -1 is the docker CLI's "not set".
    let mut swappiness = hc.memory_swappiness.filter(|s| *s != -1);
    let mut oom_kill_disable = hc.oom_kill_disable;
    // cgroup v2 has neither; docker drops them with a warning.
    if host.cgroup_v2 {
        if swappiness.take().is_some() {
            warnings.push("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.".into());
        }
        if oom_kill_disable.take() == Some(true) {
            warnings.push(
                "Your kernel does not support OomKillDisable. OomKillDisable discarded.".into(),
            );
        }
    }

    if memory != 0 && memory < MIN_MEMORY {
        return bad("Minimum memory limit allowed is 6MB".into());
    }
    if memory > 0 && swap != -1 && !host.swap_limit {
        warnings.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".into());
        swap = -1;
    }
    if memory > 0 && swap > 0 && swap < memory {
        return bad(
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        );
    }
    if memory == 0 && swap > 0 {
        return bad(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        );
    }
    if let Some(s) = swappiness {
        if !(0..=100).contains(&s) {
            return bad(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            ));
        }
    }
    if reservation > 0 && reservation < MIN_MEMORY {
        return bad("Minimum memory reservation allowed is 6MB".into());
    }
    if memory > 0 && reservation > 0 && memory < reservation {
        return bad(
            "Minimum memory limit can not be less than memory reservation limit, see usage".into(),
        );
    }
    if oom_kill_disable == Some(true) && memory == 0 {
        warnings.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".into());
    }
    if memory > 0 && swap == 0 {
        // docker's default: as much swap as memory.
        swap = memory.checked_mul(2).ok_or_else(|| {
            SpecError::invalid(format!(
                "invalid Memory {memory}: the default memory+swap limit (twice Memory) does not fit in 64 bits; give MemorySwap (-1 for unlimited swap) or at most {} bytes of Memory",
                i64::MAX / 2
            ))
        })?;
    }

    let nano = nonzero(hc.nano_cpus);
    let period = nonzero(hc.cpu_period);
    let quota = nonzero(hc.cpu_quota);
    if nano > 0 && period > 0 {
        return bad("Conflicting options: Nano CPUs and CPU Period cannot both be set".into());
    }
    if nano > 0 && quota > 0 {
        return bad("Conflicting options: Nano CPUs and CPU Quota cannot both be set".into());
    }
    let ncpu = host.ncpu as i64;
    if nano != 0 && (nano < 0 || nano > ncpu * 1_000_000_000) {
        return bad(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        ));
    }
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return bad(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                .into(),
        );
    }
    if quota > 0 && quota < 1000 {
        return bad("CPU cfs quota can not be less than 1ms (i.e. 1000)".into());
    }
    let shares = nonzero(hc.cpu_shares);
    if shares < 0 {
        return bad(format!(
            "invalid CPU shares ({shares}): value must be a positive integer"
        ));
    }
    let rt_period = nonzero(hc.cpu_realtime_period);
    let rt_runtime = nonzero(hc.cpu_realtime_runtime);
    if rt_period < 0 {
        return bad("cpu real-time period cannot be negative".into());
    }
    if rt_period != 0 && rt_runtime != 0 && rt_runtime > rt_period {
        return bad("cpu real-time runtime cannot be higher than cpu real-time period".into());
    }
    if nonzero(hc.cpu_percent) > 0 {
        warnings.push("linux does not support CPU percent. Percent discarded.".into());
    }
    let cpus = cpuset(
        hc.cpuset_cpus.as_deref().unwrap_or(""),
        "cpus",
        host.cpus.as_ref(),
    )?;
    let mems = cpuset(
        hc.cpuset_mems.as_deref().unwrap_or(""),
        "mems",
        host.mems.as_ref(),
    )?;

    let weight = hc.blkio_weight.unwrap_or(0);
    if weight > 0 && !(10..=1000).contains(&weight) {
        return bad("Range of blkio weight is from 10 to 1000".into());
    }
    if nonzero(hc.io_maximum_bandwidth) != 0 || nonzero(hc.io_maximum_iops) != 0 {
        return bad(
            "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps"
                .into(),
        );
    }
    let mut weight_devices = Vec::new();
    for d in hc.blkio_weight_device.iter().flatten() {
        let path = d.path.clone().unwrap_or_default();
        let w = d.weight.unwrap_or(0);
        if !path.starts_with('/') || !(10..=1000).contains(&w) {
            return bad(format!(
                "invalid weight for device: {path}:{w} (the weight must be from 10 to 1000)"
            ));
        }
        weight_devices.push((path, w as u16));
    }
    let mut throttles: [Vec<(String, u64)>; 4] = Default::default();
    for (i, list) in [
        &hc.blkio_device_read_bps,
        &hc.blkio_device_write_bps,
        &hc.blkio_device_read_iops,
        &hc.blkio_device_write_iops,
    ]
    .into_iter()
    .enumerate()
    {
        for d in list.iter().flatten() {
            let path = d.path.clone().unwrap_or_default();
            let rate = d.rate.unwrap_or(0);
            if !path.starts_with('/') || rate < 0 {
                return bad(format!("invalid rate for device: {path}:{rate}"));
            }
            throttles[i].push((path, rate as u64));
        }
    }

    Ok(Settings {
        memory: (memory > 0).then_some(memory),
        reservation: (reservation > 0).then_some(reservation),
        swap: (swap > 0).then_some(swap),
        swappiness: swappiness.map(|s| s as u64),
        oom_kill_disable,
        shares: (shares > 0).then_some(shares as u64),
        quota: if nano > 0 {
            Some(nano * NANO_PERIOD as i64 / 1_000_000_000)
        } else {
            (quota != 0).then_some(quota)
        },
        period: if nano > 0 {
            Some(NANO_PERIOD)
        } else {
            (period != 0).then_some(period as u64)
        },
        rt_period: (rt_period != 0).then_some(rt_period as u64),
        rt_runtime: (rt_runtime != 0).then_some(rt_runtime),
        cpus,
        mems,
        pids: hc.pids_limit.filter(|p| *p > 0),
        blkio_weight: (weight > 0).then_some(weight),
        weight_devices,
        throttles,
    })
}

fn build_error(e: oci_spec::OciSpecError) -> SpecError {
    SpecError::invalid(e.to_string())
}

/// (major, minor) of the device at `path` on the host.
fn device_numbers(path: &str) -> Result<(i64, i64), SpecError> {
    let st = rustix::fs::stat(path)
        .map_err(|e| SpecError::invalid(format!("stat {path}: {}", std::io::Error::from(e))))?;
    Ok((
        rustix::fs::major(st.st_rdev) as i64,
        rustix::fs::minor(st.st_rdev) as i64,
    ))
}

/// The spec's `linux.resources`, with the device rules.
pub(crate) fn build(
    plan: &Plan,
    device_rules: Vec<LinuxDeviceCgroup>,
) -> Result<LinuxResources, SpecError> {
    let s = &plan.resources;
    let mut r = LinuxResources::default();
    r.set_devices(Some(device_rules));

    if s.memory.is_some()
        || s.reservation.is_some()
        || s.swap.is_some()
        || s.swappiness.is_some()
        || s.oom_kill_disable.is_some()
    {
        let mut m = LinuxMemory::default();
        m.set_limit(s.memory);
        m.set_reservation(s.reservation);
        m.set_swap(s.swap);
        m.set_swappiness(s.swappiness);
        m.set_disable_oom_killer(s.oom_kill_disable);
        r.set_memory(Some(m));
    } else {
        r.set_memory(None);
    }

    let mut cpu = LinuxCpu::default();
    cpu.set_shares(s.shares);
    cpu.set_quota(s.quota);
    cpu.set_period(s.period);
    cpu.set_realtime_period(s.rt_period);
    cpu.set_realtime_runtime(s.rt_runtime);
    cpu.set_cpus(s.cpus.clone());
    cpu.set_mems(s.mems.clone());
    r.set_cpu((cpu != LinuxCpu::default()).then_some(cpu));

    r.set_pids(s.pids.map(|limit| {
        let mut p = LinuxPids::default();
        p.set_limit(limit);
        p
    }));

    let mut io = LinuxBlockIo::default();
    io.set_weight(s.blkio_weight);
    let mut weights = Vec::new();
    for (path, w) in &s.weight_devices {
        let (major, minor) = device_numbers(path)?;
        weights.push(
            LinuxWeightDeviceBuilder::default()
                .major(major)
                .minor(minor)
                .weight(*w)
                .build()
                .map_err(build_error)?,
        );
    }
    io.set_weight_device((!weights.is_empty()).then_some(weights));
    let mut lists = Vec::new();
    for list in &s.throttles {
        let mut out = Vec::new();
        for (path, rate) in list {
            let (major, minor) = device_numbers(path)?;
            out.push(
                LinuxThrottleDeviceBuilder::default()
                    .major(major)
                    .minor(minor)
                    .rate(*rate)
                    .build()
                    .map_err(build_error)?,
            );
        }
        lists.push((!out.is_empty()).then_some(out));
    }
    io.set_throttle_read_bps_device(lists[0].take());
    io.set_throttle_write_bps_device(lists[1].take());
    io.set_throttle_read_iops_device(lists[2].take());
    io.set_throttle_write_iops_device(lists[3].take());
    r.set_block_io((io != LinuxBlockIo::default()).then_some(io));
    r.set_hugepage_limits(None);
    r.set_network(None);
    r.set_rdma(None);
    r.set_unified(None);
    Ok(r)
}

/// HostConfig.Ulimits as rlimits (names as docker's go-units knows them;
/// a negative value is unlimited).
pub(crate) fn rlimits(hc: &HostConfig) -> Result<Vec<PosixRlimit>, SpecError> {
    use PosixRlimitType as T;
    let mut out: Vec<PosixRlimit> = Vec::new();
    for u in hc.ulimits.iter().flatten() {
        let name = u.name.clone().unwrap_or_default();
        let typ = match name.as_str() {
            "core" => T::RlimitCore,
            "cpu" => T::RlimitCpu,
            "data" => T::RlimitData,
            "fsize" => T::RlimitFsize,
            "locks" => T::RlimitLocks,
            "memlock" => T::RlimitMemlock,
            "msgqueue" => T::RlimitMsgqueue,
            "nice" => T::RlimitNice,
            "nofile" => T::RlimitNofile,
            "nproc" => T::RlimitNproc,
            "rss" => T::RlimitRss,
            "rtprio" => T::RlimitRtprio,
            "rttime" => T::RlimitRttime,
            "sigpending" => T::RlimitSigpending,
            "stack" => T::RlimitStack,
            _ => return Err(SpecError::invalid(format!("invalid ulimit type: {name}"))),
        };
        let (soft, hard) = (u.soft.unwrap_or(0), u.hard.unwrap_or(0));
        let as_u64 = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
        if as_u64(soft) > as_u64(hard) {
            return Err(SpecError::invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )));
        }
        let r = PosixRlimitBuilder::default()
            .typ(typ)
            .soft(as_u64(soft))
            .hard(as_u64(hard))
            .build()
            .map_err(build_error)?;
        // A repeated name: the last one wins.
        out.retain(|o| o.typ() != typ);
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::ResourcesUlimits;

    fn v1() -> Host {
        Host {
            cgroup_v2: false,
            ..Host::fixed()
        }
    }

    fn check_hc(hc: HostConfig) -> Result<Settings, SpecError> {
        check(&hc, &v1(), &mut Vec::new())
    }

    fn err(hc: HostConfig) -> String {
        let e = check_hc(hc).unwrap_err();
        assert_eq!(
            berth_errdefs::HasKind::kind(&e),
            berth_errdefs::ErrorKind::InvalidArgument
        );
        e.to_string()
    }

    #[test]
    fn memory_whose_default_swap_overflows() {
        // The container_limits fuzz target's crash (tmin'd): Memory 2^62
        // without MemorySwap, whose default (twice Memory) overflowed.
        let e = err(HostConfig {
            memory: Some(1 << 62),
            ..Default::default()
        });
        assert!(e.starts_with("invalid Memory 4611686018427387904: the default memory+swap limit (twice Memory) does not fit in 64 bits"), "{e}");
        let s = check_hc(HostConfig {
            memory: Some(1 << 62),
            memory_swap: Some(-1),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((s.memory, s.swap), (Some(1 << 62), None));
        let s = check_hc(HostConfig {
            memory: Some(i64::MAX / 2),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.swap, Some(i64::MAX - 1));
    }

    #[test]
    fn memory() {
        let s = check_hc(HostConfig {
            memory: Some(64 << 20),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((s.memory, s.swap), (Some(64 << 20), Some(128 << 20)));
        let s = check_hc(HostConfig {
            memory: Some(64 << 20),
            memory_swap: Some(-1),
            memory_swappiness: Some(-1),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((s.swap, s.swappiness), (None, None));
        assert_eq!(
            err(HostConfig {
                memory: Some(1 << 20),
                ..Default::default()
            }),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            err(HostConfig {
                memory: Some(64 << 20),
                memory_swap: Some(32 << 20),
                ..Default::default()
            }),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        assert_eq!(
            err(HostConfig {
                memory_swap: Some(32 << 20),
                ..Default::default()
            }),
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        );
        assert_eq!(
            err(HostConfig {
                memory_swappiness: Some(101),
                ..Default::default()
            }),
            "Invalid value: 101, valid memory swappiness range is 0-100"
        );
        assert_eq!(
            err(HostConfig {
                memory_reservation: Some(1),
                ..Default::default()
            }),
            "Minimum memory reservation allowed is 6MB"
        );
        assert_eq!(
            err(HostConfig {
                memory: Some(10 << 20),
                memory_reservation: Some(20 << 20),
                ..Default::default()
            }),
            "Minimum memory limit can not be less than memory reservation limit, see usage"
        );
        let mut w = Vec::new();
        let oom_off = HostConfig {
            oom_kill_disable: Some(true),
            memory_swappiness: Some(10),
            ..Default::default()
        };
        let s = check(&oom_off, &v1(), &mut w).unwrap();
        assert_eq!((s.oom_kill_disable, s.swappiness), (Some(true), Some(10)));
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("OOM killer is disabled"), "{w:?}");
        // cgroup v2 has neither: dropped with docker's warnings.
        let mut w = Vec::new();
        let s = check(&oom_off, &Host::fixed(), &mut w).unwrap();
        assert_eq!((s.oom_kill_disable, s.swappiness), (None, None));
        assert_eq!(w.len(), 2, "{w:?}");
        // No swap accounting: docker's warning, and no swap limit.
        let mut w = Vec::new();
        let host = Host {
            swap_limit: false,
            ..v1()
        };
        let s = check(
            &HostConfig {
                memory: Some(64 << 20),
                ..Default::default()
            },
            &host,
            &mut w,
        )
        .unwrap();
        assert_eq!(s.swap, None);
        assert!(
            w[0].starts_with("Your kernel does not support swap limit"),
            "{w:?}"
        );
    }

    #[test]
    fn cpu() {
        let s = check_hc(HostConfig {
            nano_cpus: Some(1_500_000_000),
            cpu_shares: Some(512),
            cpuset_cpus: Some("0-1".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (s.quota, s.period, s.shares),
            (Some(150_000), Some(100_000), Some(512))
        );
        assert_eq!(s.cpus.as_deref(), Some("0-1"));
        assert_eq!(
            err(HostConfig {
                nano_cpus: Some(1_000_000_000),
                cpu_period: Some(50_000),
                ..Default::default()
            }),
            "Conflicting options: Nano CPUs and CPU Period cannot both be set"
        );
        assert_eq!(
            err(HostConfig {
                nano_cpus: Some(1_000_000_000),
                cpu_quota: Some(50_000),
                ..Default::default()
            }),
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set"
        );
        assert_eq!(
            err(HostConfig {
                nano_cpus: Some(5_000_000_000),
                ..Default::default()
            }),
            "Range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available"
        );
        assert_eq!(
            err(HostConfig {
                cpu_period: Some(10),
                ..Default::default()
            }),
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        );
        assert_eq!(
            err(HostConfig {
                cpu_quota: Some(10),
                ..Default::default()
            }),
            "CPU cfs quota can not be less than 1ms (i.e. 1000)"
        );
        assert_eq!(
            err(HostConfig {
                cpu_shares: Some(-1),
                ..Default::default()
            }),
            "invalid CPU shares (-1): value must be a positive integer"
        );
        assert_eq!(
            err(HostConfig {
                cpuset_cpus: Some("0-a".into()),
                ..Default::default()
            }),
            "Invalid value 0-a for cpuset cpus: invalid format: 0-a"
        );
        assert_eq!(
            err(HostConfig {
                cpuset_cpus: Some("7".into()),
                ..Default::default()
            }),
            "Requested CPUs are not available - requested 7, available: 0,1,2,3"
        );
        assert_eq!(
            err(HostConfig {
                cpuset_mems: Some("1".into()),
                ..Default::default()
            }),
            "Requested memory nodes are not available - requested 1, available: 0"
        );
    }

    #[test]
    fn blkio_and_pids() {
        assert_eq!(
            err(HostConfig {
                blkio_weight: Some(5),
                ..Default::default()
            }),
            "Range of blkio weight is from 10 to 1000"
        );
        assert_eq!(
            err(HostConfig {
                io_maximum_iops: Some(5),
                ..Default::default()
            }),
            "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps"
        );
        let s = check_hc(HostConfig {
            pids_limit: Some(0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.pids, None);
        let s = check_hc(HostConfig {
            pids_limit: Some(100),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.pids, Some(100));
    }

    #[test]
    fn ulimits() {
        let hc = |v: Vec<(&str, i64, i64)>| HostConfig {
            ulimits: Some(
                v.into_iter()
                    .map(|(n, s, h)| ResourcesUlimits {
                        name: Some(n.into()),
                        soft: Some(s),
                        hard: Some(h),
                    })
                    .collect(),
            ),
            ..Default::default()
        };
        let r = rlimits(&hc(vec![("nofile", 1024, 2048), ("memlock", -1, -1)])).unwrap();
        assert_eq!(r[0].typ(), PosixRlimitType::RlimitNofile);
        assert_eq!((r[0].soft(), r[0].hard()), (1024, 2048));
        assert_eq!((r[1].soft(), r[1].hard()), (u64::MAX, u64::MAX));
        assert_eq!(
            rlimits(&hc(vec![("nofiles", 1, 1)]))
                .unwrap_err()
                .to_string(),
            "invalid ulimit type: nofiles"
        );
        assert_eq!(
            rlimits(&hc(vec![("nofile", 10, 5)]))
                .unwrap_err()
                .to_string(),
            "ulimit soft limit must be less than or equal to hard limit: 10 > 5"
        );
    }
}
