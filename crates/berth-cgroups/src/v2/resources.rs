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
    /// What the hierarchy's root offers, to tell "this host has no such
    /// controller" from "a parent did not enable it".
    pub offered: Vec<String>,
}

impl Target {
    pub(crate) fn read(dir: &Path, mount_point: &Path) -> Result<Target, Error> {
        let path = dir.join("cgroup.controllers");
        let text = fsutil::read_optional(&path)?.ok_or_else(|| Error::NotCreated {
            path: dir.to_path_buf(),
        })?;
        let offered =
            fsutil::read_optional(&mount_point.join("cgroup.controllers"))?.unwrap_or_default();
        Ok(Target {
            dir: dir.to_path_buf(),
            controllers: text.split_whitespace().map(str::to_string).collect(),
            offered: offered.split_whitespace().map(str::to_string).collect(),
        })
    }

    fn need(&self, controller: &str, field: &str) -> Result<(), Error> {
        if self.controllers.iter().any(|c| c == controller) {
            return Ok(());
        }
        let reason = if self.offered.iter().any(|c| c == controller) {
            format!(
                "the {controller} controller is not enabled for {} (enabled: [{}]); a parent cgroup's \
                 cgroup.subtree_control lacks it, and enabling it failed (a parent with processes cannot delegate)",
                self.dir.display(),
                self.controllers.join(" ")
            )
        } else {
            format!(
                "this host's cgroup v2 hierarchy does not offer the {controller} controller (it offers: [{}])",
                self.offered.join(" ")
            )
        };
        Err(Error::unavailable(field, reason))
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
        let field = format!("{F}.pids.limit");
        if pids.limit() > 0 {
            t.need("pids", &field)?;
            p.push(field, &t.dir, "pids.max", pids.limit().to_string());
        } else if t.controllers.iter().any(|c| c == "pids") {
            // No limit asked for: only worth writing where a limit can exist.
            p.push(field, &t.dir, "pids.max", "max");
        }
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
        // The kernel's floor is 1 ms per period.
        if q != -1 && q < 1000 {
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
    // Zero means "not set" to the tools that send it (crictl, some CRI shims).
    let rt_runtime = c.realtime_runtime().filter(|r| *r != 0);
    let rt_period = c.realtime_period().filter(|p| *p != 0);
    if rt_runtime.is_some() || rt_period.is_some() {
        let name = if rt_runtime.is_some() {
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

#[cfg(test)]
mod tests {
    //! The planner against a fixture directory shaped like a cgroup2 leaf
    //! with every controller enabled: this host's cgroup2 mount has only
    //! hugetlb, so these cover what the conformance suite cannot reach here.
    //! Plans are inspected, never executed.

    use super::*;

    struct Fixture {
        _tmp: tempfile::TempDir,
        target: Target,
    }

    fn fixture(extra: &[(&str, &str)]) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let files = [
            (
                "cgroup.controllers",
                "cpuset cpu io memory hugetlb pids rdma",
            ),
            ("cpu.max", "max 100000"),
            ("cpu.weight", "100"),
            ("cpu.max.burst", "0"),
            ("cpu.idle", "0"),
            ("memory.max", "max"),
            ("memory.low", "0"),
            ("memory.swap.max", "max"),
            ("memory.current", "1048576"),
            ("io.weight", "default 100"),
            ("io.max", ""),
            ("pids.max", "max"),
            ("hugetlb.2MB.max", "max"),
            ("memory.high", "max"),
        ];
        for (name, content) in files.iter().chain(extra) {
            std::fs::write(tmp.path().join(name), content).unwrap();
        }
        let target = Target::read(tmp.path(), tmp.path()).unwrap();
        Fixture { _tmp: tmp, target }
    }

    fn writes(f: &Fixture, json: &str) -> Vec<(String, String)> {
        let r: LinuxResources = serde_json::from_str(json).unwrap();
        plan(&f.target, &r)
            .unwrap()
            .writes
            .into_iter()
            .map(|w| {
                (
                    w.path.file_name().unwrap().to_string_lossy().into_owned(),
                    w.value,
                )
            })
            .collect()
    }

    fn error(f: &Fixture, json: &str) -> String {
        let r: LinuxResources = serde_json::from_str(json).unwrap();
        plan(&f.target, &r).unwrap_err().to_string()
    }

    fn w(file: &str, value: &str) -> (String, String) {
        (file.to_string(), value.to_string())
    }

    #[test]
    fn memory_converts_swap_and_limits() {
        let f = fixture(&[]);
        assert_eq!(
            writes(
                &f,
                r#"{"memory":{"limit":1048576,"swap":3145728,"reservation":524288}}"#
            ),
            vec![
                w("memory.swap.max", "2097152"),
                w("memory.max", "1048576"),
                w("memory.low", "524288")
            ]
        );
        assert_eq!(
            writes(&f, r#"{"memory":{"limit":-1}}"#),
            vec![w("memory.swap.max", "max"), w("memory.max", "max")]
        );
        assert!(error(&f, r#"{"memory":{"swap":100}}"#).starts_with("linux.resources.memory.swap:"));
        assert!(error(&f, r#"{"memory":{"swappiness":10}}"#)
            .starts_with("linux.resources.memory.swappiness:"));
        assert!(error(&f, r#"{"memory":{"disableOOMKiller":true}}"#)
            .starts_with("linux.resources.memory.disableOOMKiller:"));
        assert!(writes(&f, r#"{"memory":{"disableOOMKiller":false}}"#).is_empty());
        // checkBeforeUpdate compares with memory.current (1 MiB here)
        let e = error(&f, r#"{"memory":{"limit":4096,"checkBeforeUpdate":true}}"#);
        assert!(
            e.starts_with("linux.resources.memory.limit:") && e.contains("1048576"),
            "{e}"
        );
    }

    #[test]
    fn memory_without_swap_accounting() {
        let f = fixture(&[]);
        std::fs::remove_file(f.target.dir.join("memory.swap.max")).unwrap();
        assert_eq!(
            writes(&f, r#"{"memory":{"limit":-1}}"#),
            vec![w("memory.max", "max")]
        );
        assert!(error(&f, r#"{"memory":{"limit":100,"swap":200}}"#).contains("no swap accounting"));
    }

    #[test]
    fn cpu_weight_and_max() {
        let f = fixture(&[]);
        assert_eq!(
            writes(
                &f,
                r#"{"cpu":{"shares":1024,"quota":50000,"period":200000,"burst":1000,"idle":1}}"#
            ),
            vec![
                w("cpu.weight", "100"),
                w("cpu.max", "50000 200000"),
                w("cpu.max.burst", "1000"),
                w("cpu.idle", "1")
            ]
        );
        // half of cpu.max keeps the current other half
        assert_eq!(
            writes(&f, r#"{"cpu":{"quota":20000}}"#),
            vec![w("cpu.max", "20000 100000")]
        );
        assert_eq!(
            writes(&f, r#"{"cpu":{"period":50000}}"#),
            vec![w("cpu.max", "max 50000")]
        );
        assert_eq!(
            writes(&f, r#"{"cpu":{"quota":-1}}"#),
            vec![w("cpu.max", "max 100000")]
        );
        assert_eq!(
            writes(&f, r#"{"cpu":{"cpus":"0-1","mems":"0"}}"#),
            vec![w("cpuset.cpus", "0-1"), w("cpuset.mems", "0")]
        );
        assert!(writes(&f, r#"{"cpu":{"realtimeRuntime":0,"realtimePeriod":0}}"#).is_empty());
        assert!(error(&f, r#"{"cpu":{"realtimeRuntime":1000}}"#)
            .starts_with("linux.resources.cpu.realtimeRuntime:"));
        assert!(error(&f, r#"{"cpu":{"quota":500}}"#).starts_with("linux.resources.cpu.quota:"));
        assert!(error(&f, r#"{"cpu":{"quota":1000,"burst":2000}}"#)
            .starts_with("linux.resources.cpu.burst:"));
        assert!(error(&f, r#"{"cpu":{"idle":2}}"#).starts_with("linux.resources.cpu.idle:"));
    }

    #[test]
    fn io_weights_and_throttles() {
        let f = fixture(&[]);
        assert_eq!(
            writes(&f, r#"{"blockIO":{"weight":1000}}"#),
            vec![w("io.weight", "10000")]
        );
        std::fs::write(f.target.dir.join("io.bfq.weight"), "default 100").unwrap();
        assert_eq!(
            writes(&f, r#"{"blockIO":{"weight":500}}"#),
            vec![w("io.bfq.weight", "500")]
        );
        assert!(error(&f, r#"{"blockIO":{"leafWeight":500}}"#)
            .starts_with("linux.resources.blockIO.leafWeight:"));
        assert!(
            error(&f, r#"{"blockIO":{"weight":5}}"#).starts_with("linux.resources.blockIO.weight:")
        );
        // a device that exists on every Linux host: the first one in /sys/dev/block
        if let Some(dev) = std::fs::read_dir("/sys/dev/block")
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
        {
            let dev = dev.file_name().to_string_lossy().into_owned();
            let (maj, min) = dev.split_once(':').unwrap();
            let json = format!(
                r#"{{"blockIO":{{"throttleReadBpsDevice":[{{"major":{maj},"minor":{min},"rate":10}}],
                                 "throttleWriteIOPSDevice":[{{"major":{maj},"minor":{min},"rate":20}}]}}}}"#
            );
            assert_eq!(
                writes(&f, &json),
                vec![
                    w("io.max", &format!("{dev} rbps=10")),
                    w("io.max", &format!("{dev} wiops=20"))
                ]
            );
        }
    }

    #[test]
    fn pids_devices_network_unified() {
        let f = fixture(&[]);
        assert_eq!(
            writes(&f, r#"{"pids":{"limit":0}}"#),
            vec![w("pids.max", "max")]
        );
        assert_eq!(
            writes(&f, r#"{"pids":{"limit":64}}"#),
            vec![w("pids.max", "64")]
        );
        let r: LinuxResources =
            serde_json::from_str(r#"{"devices":[{"allow":true,"access":"rwm"}]}"#).unwrap();
        let p = plan(&f.target, &r).unwrap();
        assert!(
            p.devices.as_ref().is_some_and(|d| d.prog.is_none()),
            "allow-all needs no program"
        );
        assert!(error(&f, r#"{"network":{"classID":1}}"#)
            .starts_with("linux.resources.network.classID:"));
        assert_eq!(
            writes(
                &f,
                r#"{"pids":{"limit":5},"unified":{"pids.max":"9","memory.high":"4096"}}"#
            ),
            vec![
                w("pids.max", "5"),
                w("memory.high", "4096"),
                w("pids.max", "9")
            ],
            "unified comes last, sorted, and overrides"
        );
        for bad in [
            "cgroup.procs",
            "../memory.max",
            "memory",
            "memory.nonexistent",
            "misc.max",
        ] {
            let e = error(&f, &format!(r#"{{"unified":{{"{bad}":"1"}}}}"#));
            assert!(e.starts_with("linux.resources.unified."), "{bad}: {e}");
        }
    }

    #[test]
    fn missing_controller_names_the_field() {
        let f = fixture(&[("cgroup.controllers", "cpu")]);
        let f = Fixture {
            target: Target::read(&f.target.dir, &f.target.dir).unwrap(),
            ..f
        };
        let e = error(&f, r#"{"memory":{"limit":4096}}"#);
        assert!(
            e.starts_with("linux.resources.memory.limit:") && e.contains("memory controller"),
            "{e}"
        );
        let e = error(&f, r#"{"pids":{"limit":4}}"#);
        assert!(e.starts_with("linux.resources.pids.limit:"), "{e}");
        // "unlimited" without the controller is already true
        assert!(writes(&f, r#"{"pids":{"limit":0}}"#).is_empty());
    }
}
