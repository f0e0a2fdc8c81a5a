//! `LinuxResources` -> cgroup v2 interface file writes (validated plan).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources, LinuxThrottleDevice};

use crate::convert;
use crate::devices;
use crate::error::Error;
use crate::fsutil;
use crate::hugetlb;
use crate::plan::Plan;

const F: &str = "linux.resources";

/// The cgroup a plan is for, and the controllers enabled for it.
pub(crate) struct Target {
    pub dir: PathBuf,
    pub controllers: Vec<String>,
}

impl Target {
    pub(crate) fn read(dir: &Path) -> Result<Target, Error> {
        let path = dir.join("cgroup.controllers");
        let text = fsutil::read_optional(&path)?.ok_or_else(|| Error::NotCreated {
            path: dir.to_path_buf(),
        })?;
        Ok(Target {
            dir: dir.to_path_buf(),
            controllers: text.split_whitespace().map(str::to_string).collect(),
        })
    }

    fn need(&self, controller: &str, field: &str) -> Result<(), Error> {
        if self.controllers.iter().any(|c| c == controller) {
            return Ok(());
        }
        Err(Error::unavailable(
            field,
            format!(
                "the {controller} controller is not enabled for {} (enabled: [{}]); the host must offer it in the parent's cgroup.subtree_control",
                self.dir.display(),
                self.controllers.join(" ")
            ),
        ))
    }

    fn exists(&self, file: &str) -> bool {
        self.dir.join(file).exists()
    }
}

/// Plans every resource for a pure cgroup v2 host.
pub(crate) fn plan(t: &Target, r: &LinuxResources) -> Result<Plan, Error> {
    let mut p = Plan::default();
    if let Some(m) = r.memory() {
        memory(t, m, &mut p)?;
    }
    if let Some(c) = r.cpu() {
        cpu(t, c, &mut p)?;
    }
    if let Some(pids) = r.pids() {
        t.need("pids", &format!("{F}.pids.limit"))?;
        let v = if pids.limit() > 0 {
            pids.limit().to_string()
        } else {
            "max".into()
        };
        p.push(format!("{F}.pids.limit"), &t.dir, "pids.max", v);
    }
    if let Some(b) = r.block_io() {
        block_io(t, b, &mut p)?;
    }
    if let Some(limits) = r.hugepage_limits() {
        plan_hugetlb(t, limits, &mut p)?;
    }
    if let Some(rules) = r.devices() {
        let rules = devices::validate(rules)?;
        p.devices = Some(super::device_prog::prepare(&t.dir, &rules)?);
    }
    if let Some(n) = r.network() {
        let field = if n.class_id().is_some() {
            Some("classID")
        } else if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            Some("priorities")
        } else {
            None
        };
        if let Some(name) = field {
            return Err(Error::unsupported(
                format!("{F}.network.{name}"),
                "cgroup v2 has no net_cls or net_prio controller; tag traffic with an eBPF or nftables cgroup match instead",
            ));
        }
    }
    if let Some(rdma) = r.rdma() {
        let sorted: BTreeMap<_, _> = rdma.iter().collect();
        for (dev, l) in sorted {
            let field = format!("{F}.rdma.{dev}");
            t.need("rdma", &field)?;
            if let Some(line) = crate::v1::resources::rdma_line(&field, dev, l)? {
                p.push(field, &t.dir, "rdma.max", line);
            }
        }
    }
    // Last, so a unified key overrides what the fields above set.
    if let Some(u) = r.unified() {
        plan_unified(t, u, &mut p)?;
    }
    Ok(p)
}

fn memory(t: &Target, m: &LinuxMemory, p: &mut Plan) -> Result<(), Error> {
    let field = |n: &str| format!("{F}.memory.{n}");
    let set = |v: Option<i64>| v.filter(|v| *v != 0);
    for (name, v) in [
        ("limit", m.limit()),
        ("reservation", m.reservation()),
        ("swap", m.swap()),
    ] {
        if let Some(v) = set(v) {
            if v < -1 {
                return Err(Error::invalid(
                    field(name),
                    format!("{v} is not a limit (use -1 for unlimited)"),
                ));
            }
            t.need("memory", &field(name))?;
        }
    }
    if m.swappiness().is_some() {
        return Err(Error::unsupported(
            field("swappiness"),
            "cgroup v2 has no per-cgroup swappiness; remove the setting",
        ));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(Error::unsupported(
            field("disableOOMKiller"),
            "cgroup v2 cannot turn the OOM killer off for a cgroup",
        ));
    }
    let swap = convert::swap_to_v2(m.swap(), m.limit())
        .map_err(|reason| Error::invalid(field("swap"), reason))?;
    if let Some(s) = swap {
        if t.exists("memory.swap.max") {
            p.push(
                field("swap"),
                &t.dir,
                "memory.swap.max",
                convert::v2_limit(s),
            );
        } else if s != -1 && s != 0 {
            // "max" and "no swap" are what a kernel without swap accounting does anyway.
            return Err(Error::unavailable(
                field("swap"),
                "this kernel has no swap accounting (memory.swap.max is missing)",
            ));
        }
    }
    if let Some(limit) = set(m.limit()) {
        if m.check_before_update() == Some(true) && limit > 0 {
            let current = fsutil::read_u64(&t.dir.join("memory.current"))?;
            if current > limit as u64 {
                return Err(Error::invalid(
                    field("limit"),
                    format!("{limit} is below the cgroup's current usage of {current} bytes (checkBeforeUpdate)"),
                ));
            }
        }
        p.push(
            field("limit"),
            &t.dir,
            "memory.max",
            convert::v2_limit(limit),
        );
    }
    if let Some(res) = set(m.reservation()) {
        p.push(
            field("reservation"),
            &t.dir,
            "memory.low",
            convert::v2_limit(res),
        );
    }
    Ok(())
}

/// Checks shared by v1 and v2 for the CFS bandwidth values.
pub(crate) fn check_cfs(c: &LinuxCpu) -> Result<(Option<i64>, Option<u64>), Error> {
    let quota = c.quota().filter(|q| *q != 0);
    let period = c.period().filter(|p| *p != 0);
    if let Some(q) = quota {
        if q != -1 && !(1000..=i64::from(u32::MAX) * 1000).contains(&q) {
            return Err(Error::invalid(
                format!("{F}.cpu.quota"),
                format!("{q} microseconds is out of range (at least 1000, or -1 for unlimited)"),
            ));
        }
    }
    if let Some(per) = period {
        if !(1000..=1_000_000).contains(&per) {
            return Err(Error::invalid(
                format!("{F}.cpu.period"),
                format!("{per} microseconds is out of range (1000 to 1000000)"),
            ));
        }
    }
    if let (Some(b), Some(q)) = (c.burst(), quota) {
        if q > 0 && b > q as u64 {
            return Err(Error::invalid(
                format!("{F}.cpu.burst"),
                format!("{b} is larger than the quota {q}"),
            ));
        }
    }
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        if !(2..=262_144).contains(&s) {
            return Err(Error::invalid(
                format!("{F}.cpu.shares"),
                format!("{s} is out of range (2 to 262144)"),
            ));
        }
    }
    if let Some(i) = c.idle() {
        if i != 0 && i != 1 {
            return Err(Error::invalid(
                format!("{F}.cpu.idle"),
                format!("{i} must be 0 or 1"),
            ));
        }
    }
    for (name, v) in [("cpus", c.cpus()), ("mems", c.mems())] {
        if let Some(list) = v.as_deref().filter(|l| !l.trim().is_empty()) {
            convert::check_cpuset_list(list)
                .map_err(|reason| Error::invalid(format!("{F}.cpu.{name}"), reason))?;
        }
    }
    Ok((quota, period))
}

fn cpu(t: &Target, c: &LinuxCpu, p: &mut Plan) -> Result<(), Error> {
    let field = |n: &str| format!("{F}.cpu.{n}");
    let (quota, period) = check_cfs(c)?;
    if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
        let name = if c.realtime_runtime().is_some() {
            "realtimeRuntime"
        } else {
            "realtimePeriod"
        };
        return Err(Error::unsupported(
            field(name),
            "cgroup v2 has no real-time group scheduling",
        ));
    }
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        t.need("cpu", &field("shares"))?;
        p.push(
            field("shares"),
            &t.dir,
            "cpu.weight",
            convert::cpu_shares_to_weight(s).to_string(),
        );
    }
    if quota.is_some() || period.is_some() {
        let name = if quota.is_some() { "quota" } else { "period" };
        t.need("cpu", &field(name))?;
        // cpu.max holds both; keep whichever half the spec leaves out.
        let current = fsutil::read_string(&t.dir.join("cpu.max"))?;
        let mut cur = current.split_whitespace();
        let (cur_quota, cur_period) = (cur.next().unwrap_or("max"), cur.next().unwrap_or("100000"));
        let q = match quota {
            Some(-1) => "max".to_string(),
            Some(q) => q.to_string(),
            None => cur_quota.to_string(),
        };
        let per = period.map_or_else(|| cur_period.to_string(), |p| p.to_string());
        p.push(field(name), &t.dir, "cpu.max", format!("{q} {per}"));
    }
    if let Some(b) = c.burst() {
        t.need("cpu", &field("burst"))?;
        if !t.exists("cpu.max.burst") {
            return Err(Error::unavailable(
                field("burst"),
                "this kernel has no cpu.max.burst (needs Linux 5.14)",
            ));
        }
        p.push(field("burst"), &t.dir, "cpu.max.burst", b.to_string());
    }
    if let Some(i) = c.idle() {
        t.need("cpu", &field("idle"))?;
        if !t.exists("cpu.idle") {
            return Err(Error::unavailable(
                field("idle"),
                "this kernel has no cpu.idle (needs Linux 5.15)",
            ));
        }
        p.push(field("idle"), &t.dir, "cpu.idle", i.to_string());
    }
    for (name, v, file) in [
        ("cpus", c.cpus(), "cpuset.cpus"),
        ("mems", c.mems(), "cpuset.mems"),
    ] {
        if let Some(list) = v.as_deref().filter(|l| !l.trim().is_empty()) {
            t.need("cpuset", &field(name))?;
            p.push(field(name), &t.dir, file, list.trim());
        }
    }
    Ok(())
}

pub(crate) fn throttles(
    b: &LinuxBlockIo,
) -> [(
    &'static str,
    &'static str,
    &Option<Vec<LinuxThrottleDevice>>,
); 4] {
    [
        (
            "throttleReadBpsDevice",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "riops",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ]
}

fn block_io(t: &Target, b: &LinuxBlockIo, p: &mut Plan) -> Result<(), Error> {
    let field = |n: &str| format!("{F}.blockIO.{n}");
    if b.leaf_weight().is_some() {
        return Err(Error::unsupported(
            field("leafWeight"),
            "cgroup v2 has no leaf weights",
        ));
    }
    let bfq = t.exists("io.bfq.weight");
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        t.need("io", &field("weight"))?;
        if !(10..=1000).contains(&w) {
            return Err(Error::invalid(
                field("weight"),
                format!("{w} is out of range (10 to 1000)"),
            ));
        }
        if bfq {
            p.push(field("weight"), &t.dir, "io.bfq.weight", w.to_string());
        } else {
            p.push(
                field("weight"),
                &t.dir,
                "io.weight",
                convert::blkio_weight_to_io_weight(w).to_string(),
            );
        }
    }
    for (i, wd) in b.weight_device().iter().flatten().enumerate() {
        let f = field(&format!("weightDevice[{i}]"));
        if wd.leaf_weight().is_some() {
            return Err(Error::unsupported(
                format!("{f}.leafWeight"),
                "cgroup v2 has no leaf weights",
            ));
        }
        let dev = crate::v1::resources::block_device(&f, wd.major(), wd.minor())?;
        if let Some(w) = wd.weight() {
            t.need("io", &f)?;
            if !(10..=1000).contains(&w) {
                return Err(Error::invalid(
                    format!("{f}.weight"),
                    format!("{w} is out of range (10 to 1000)"),
                ));
            }
            if bfq {
                p.push(
                    format!("{f}.weight"),
                    &t.dir,
                    "io.bfq.weight",
                    format!("{dev} {w}"),
                );
            } else {
                let v = convert::blkio_weight_to_io_weight(w);
                p.push(
                    format!("{f}.weight"),
                    &t.dir,
                    "io.weight",
                    format!("{dev} {v}"),
                );
            }
        }
    }
    for (name, key, list) in throttles(b) {
        for (i, td) in list.iter().flatten().enumerate() {
            let f = field(&format!("{name}[{i}]"));
            t.need("io", &f)?;
            let dev = crate::v1::resources::block_device(&f, td.major(), td.minor())?;
            p.push(f, &t.dir, "io.max", format!("{dev} {key}={}", td.rate()));
        }
    }
    Ok(())
}

/// hugetlb.<size>.max (and the reservation limit, when the kernel has one,
/// so reserved-but-unfaulted pages are bounded too).
pub(crate) fn plan_hugetlb(
    t: &Target,
    limits: &[oci_spec::runtime::LinuxHugepageLimit],
    p: &mut Plan,
) -> Result<(), Error> {
    if limits.is_empty() {
        return Ok(());
    }
    let valid = hugetlb::validate(limits, &hugetlb::page_sizes())?;
    for l in valid {
        t.need("hugetlb", &l.field)?;
        let max = format!("hugetlb.{}.max", l.size);
        if !t.exists(&max) {
            return Err(Error::unavailable(
                format!("{}.pageSize", l.field),
                format!("{} is missing", t.dir.join(&max).display()),
            ));
        }
        p.push(
            format!("{}.limit", l.field),
            &t.dir,
            &max,
            l.bytes.to_string(),
        );
        let rsvd = format!("hugetlb.{}.rsvd.max", l.size);
        if t.exists(&rsvd) {
            p.push(
                format!("{}.limit", l.field),
                &t.dir,
                &rsvd,
                l.bytes.to_string(),
            );
        }
    }
    Ok(())
}

/// Interface files that are not resources: writing them through
/// `unified` would move processes or change the tree's shape.
const FORBIDDEN_CORE: &[&str] = &[
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.subtree_control",
    "cgroup.type",
    "cgroup.kill",
    "cgroup.freeze",
];

/// Largest value accepted for one unified key (cgroup files take a page).
const MAX_UNIFIED_VALUE: usize = 4096;

pub(crate) fn plan_unified(
    t: &Target,
    u: &std::collections::HashMap<String, String>,
    p: &mut Plan,
) -> Result<(), Error> {
    let sorted: BTreeMap<_, _> = u.iter().collect();
    for (key, value) in sorted {
        let field = format!("{F}.unified.{key:?}");
        let well_formed = !key.is_empty()
            // Mixed case occurs: hugetlb.2MB.max.
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            && !key.starts_with('.')
            && key.contains('.');
        if !well_formed {
            return Err(Error::invalid(
                field,
                "not a cgroup v2 interface file name (controller.name, [A-Za-z0-9_.])",
            ));
        }
        if FORBIDDEN_CORE.contains(&key.as_str()) {
            return Err(Error::invalid(
                field,
                "this file is not a resource setting and cannot be set through unified",
            ));
        }
        let controller = key.split('.').next().unwrap_or_default();
        if controller != "cgroup" {
            t.need(controller, &field)?;
        }
        if !t.exists(key) {
            return Err(Error::invalid(
                field,
                format!(
                    "{} does not exist on this kernel",
                    t.dir.join(key).display()
                ),
            ));
        }
        if value.len() > MAX_UNIFIED_VALUE || value.contains('\0') {
            return Err(Error::invalid(
                field,
                "value is longer than 4096 bytes or contains NUL",
            ));
        }
        p.push(field, &t.dir, key, value.as_str());
    }
    Ok(())
}
