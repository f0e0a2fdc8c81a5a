//! `LinuxResources` -> cgroup v1 file writes (validated plan). On a hybrid
//! host, hugetlb and `unified` keys go to the cgroup2 part through the v2
//! planner.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNetwork, LinuxRdma, LinuxResources,
};

use super::V1Manager;
use crate::devices;
use crate::error::Error;
use crate::fsutil;
use crate::hugetlb;
use crate::plan::Plan;
use crate::v2::resources as v2res;

const F: &str = "linux.resources";

pub(crate) fn plan(m: &V1Manager, r: &LinuxResources) -> Result<Plan, Error> {
    let mut p = Plan::default();
    if let Some(mem) = r.memory() {
        memory(m, mem, &mut p)?;
    }
    if let Some(c) = r.cpu() {
        cpu(m, c, &mut p)?;
    }
    if let Some(pids) = r.pids() {
        let field = format!("{F}.pids.limit");
        if pids.limit() > 0 {
            let dir = m.need("pids", &field)?;
            p.push(field, dir, "pids.max", pids.limit().to_string());
        } else if let Some(dir) = m.dir("pids") {
            // No limit asked for: only worth writing where a limit can exist.
            p.push(field, dir, "pids.max", "max");
        }
    }
    if let Some(b) = r.block_io() {
        block_io(m, b, &mut p)?;
    }
    if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
        if let Some(dir) = m.dir("hugetlb") {
            let valid = hugetlb::validate(limits, &hugetlb::page_sizes())?;
            for l in valid {
                let file = format!("hugetlb.{}.limit_in_bytes", l.size);
                if !dir.join(&file).exists() {
                    return Err(Error::unavailable(
                        format!("{}.pageSize", l.field),
                        format!("{} is missing", dir.join(&file).display()),
                    ));
                }
                p.push(
                    format!("{}.limit", l.field),
                    dir,
                    &file,
                    l.bytes.to_string(),
                );
                let rsvd = format!("hugetlb.{}.rsvd.limit_in_bytes", l.size);
                if dir.join(&rsvd).exists() {
                    p.push(
                        format!("{}.limit", l.field),
                        dir,
                        &rsvd,
                        l.bytes.to_string(),
                    );
                }
            }
        } else if let Some(t) = m.unified_target()? {
            v2res::plan_hugetlb(&t, limits, &mut p)?;
        } else {
            let valid = hugetlb::validate(limits, &hugetlb::page_sizes())?;
            if let Some(first) = valid.first() {
                m.need("hugetlb", &first.field)?;
            }
        }
    }
    if let Some(rules) = r.devices().as_ref().filter(|r| !r.is_empty()) {
        let rules = devices::validate(rules)?;
        let dir = m.need("devices", &format!("{F}.devices"))?;
        for (i, rule) in rules.iter().enumerate() {
            for line in rule.v1_lines() {
                p.push(format!("{F}.devices[{i}]"), dir, rule.v1_file(), line);
            }
        }
    }
    if let Some(n) = r.network() {
        network(m, n, &mut p)?;
    }
    if let Some(rdma) = r.rdma() {
        let sorted: BTreeMap<_, _> = rdma.iter().collect();
        for (dev, l) in sorted {
            let field = format!("{F}.rdma.{dev}");
            let dir = m.need("rdma", &field)?;
            if let Some(line) = rdma_line(&field, dev, l)? {
                p.push(field, dir, "rdma.max", line);
            }
        }
    }
    if let Some(u) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        match m.unified_target()? {
            Some(t) => v2res::plan_unified(&t, u, &mut p)?,
            None => {
                return Err(Error::unsupported(
                    format!("{F}.unified"),
                    "unified keys are cgroup v2 interface files, and this host has only cgroup v1",
                ))
            }
        }
    }
    Ok(p)
}

/// "mlx5_0 hca_handle=2 hca_object=2000"; None when neither limit is set.
pub(crate) fn rdma_line(field: &str, dev: &str, l: &LinuxRdma) -> Result<Option<String>, Error> {
    if dev.is_empty()
        || dev.len() > 64
        || dev
            .chars()
            .any(|c| c.is_whitespace() || c == '=' || c.is_control())
    {
        return Err(Error::invalid(
            field,
            format!("{dev:?} is not an RDMA device name"),
        ));
    }
    let mut line = dev.to_string();
    if let Some(h) = l.hca_handles() {
        line.push_str(&format!(" hca_handle={h}"));
    }
    if let Some(o) = l.hca_objects() {
        line.push_str(&format!(" hca_object={o}"));
    }
    Ok((line.len() > dev.len()).then_some(line))
}

fn memory(m: &V1Manager, mem: &LinuxMemory, p: &mut Plan) -> Result<(), Error> {
    let field = |n: &str| format!("{F}.memory.{n}");
    let set = |v: Option<i64>| v.filter(|v| *v != 0);
    let mut any = false;
    for (name, v) in [
        ("limit", mem.limit()),
        ("reservation", mem.reservation()),
        ("swap", mem.swap()),
    ] {
        if let Some(v) = set(v) {
            if v < -1 {
                return Err(Error::invalid(
                    field(name),
                    format!("{v} is not a limit (use -1 for unlimited)"),
                ));
            }
            any = true;
        }
    }
    if let Some(s) = mem.swappiness() {
        if s > 100 {
            return Err(Error::invalid(
                field("swappiness"),
                format!("{s} is out of range (0 to 100)"),
            ));
        }
        any = true;
    }
    any |= mem.disable_oom_killer() == Some(true);
    if !any {
        // `disableOOMKiller: false` is the default (docker always sends it):
        // worth writing, to undo an earlier true, only where the knob exists.
        // kernel, kernelTCP and useHierarchy are ignored: see ignored_settings().
        if let (Some(false), Some(dir)) = (mem.disable_oom_killer(), m.dir("memory")) {
            p.push(field("disableOOMKiller"), dir, "memory.oom_control", "0");
        }
        return Ok(());
    }
    let name = [
        "limit",
        "reservation",
        "swap",
        "swappiness",
        "disableOOMKiller",
    ]
    .into_iter()
    .find(|n| match *n {
        "limit" => set(mem.limit()).is_some(),
        "reservation" => set(mem.reservation()).is_some(),
        "swap" => set(mem.swap()).is_some(),
        "swappiness" => mem.swappiness().is_some(),
        _ => true,
    })
    .unwrap_or("limit");
    let dir = m.need("memory", &field(name))?;

    let limit = set(mem.limit());
    let mut swap = set(mem.swap());
    let memsw = dir.join("memory.memsw.limit_in_bytes").exists();
    // Unlimited memory with no swap setting means unlimited memory+swap,
    // or the old memsw limit would still cap the container.
    if limit == Some(-1) && swap.is_none() && memsw {
        swap = Some(-1);
    }
    if let Some(s) = swap {
        if !memsw {
            if s == -1 {
                swap = None;
            } else {
                return Err(Error::unavailable(
                    field("swap"),
                    "this kernel has no swap accounting (memory.memsw.* is missing; boot with swapaccount=1)",
                ));
            }
        }
    }
    if let (Some(l), Some(s)) = (limit, swap) {
        if l > 0 && s != -1 && s < l {
            return Err(Error::invalid(
                field("swap"),
                format!("memory+swap limit {s} is below the memory limit {l}; it must be at least the memory limit"),
            ));
        }
    }
    match (limit, swap) {
        (Some(l), Some(s)) => {
            // The kernel keeps memory <= memory+swap at every step, so the
            // order of the two writes depends on where the limits move.
            let current = fsutil::read_u64(&dir.join("memory.limit_in_bytes"))?;
            let swap_first = s == -1 || current < s as u64;
            let writes = [
                (field("limit"), "memory.limit_in_bytes", l),
                (field("swap"), "memory.memsw.limit_in_bytes", s),
            ];
            let order: [usize; 2] = if swap_first { [1, 0] } else { [0, 1] };
            for i in order {
                let (f, file, v) = &writes[i];
                p.push(f.clone(), dir, file, v.to_string());
            }
        }
        (Some(l), None) => p.push(field("limit"), dir, "memory.limit_in_bytes", l.to_string()),
        (None, Some(s)) => p.push(
            field("swap"),
            dir,
            "memory.memsw.limit_in_bytes",
            s.to_string(),
        ),
        (None, None) => {}
    }
    if let Some(res) = set(mem.reservation()) {
        p.push(
            field("reservation"),
            dir,
            "memory.soft_limit_in_bytes",
            res.to_string(),
        );
    }
    if let Some(s) = mem.swappiness() {
        p.push(field("swappiness"), dir, "memory.swappiness", s.to_string());
    }
    if let Some(d) = mem.disable_oom_killer() {
        p.push(
            field("disableOOMKiller"),
            dir,
            "memory.oom_control",
            if d { "1" } else { "0" },
        );
    }
    Ok(())
}

fn cpu(m: &V1Manager, c: &LinuxCpu, p: &mut Plan) -> Result<(), Error> {
    let field = |n: &str| format!("{F}.cpu.{n}");
    let (quota, period) = v2res::check_cfs(c)?;
    let cpu_dir = |name: &str| m.need("cpu", &field(name));
    let exists_or = |dir: &Path, file: &str, name: &str, why: &str| -> Result<(), Error> {
        if dir.join(file).exists() {
            Ok(())
        } else {
            Err(Error::unavailable(
                field(name),
                format!("this kernel has no {file} ({why})"),
            ))
        }
    };
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        p.push(
            field("shares"),
            cpu_dir("shares")?,
            "cpu.shares",
            s.to_string(),
        );
    }
    if let Some(per) = period {
        p.push(
            field("period"),
            cpu_dir("period")?,
            "cpu.cfs_period_us",
            per.to_string(),
        );
    }
    if let Some(q) = quota {
        p.push(
            field("quota"),
            cpu_dir("quota")?,
            "cpu.cfs_quota_us",
            q.to_string(),
        );
    }
    if let Some(b) = c.burst() {
        let dir = cpu_dir("burst")?;
        exists_or(dir, "cpu.cfs_burst_us", "burst", "needs Linux 5.14")?;
        p.push(field("burst"), dir, "cpu.cfs_burst_us", b.to_string());
    }
    let rt_runtime = c.realtime_runtime();
    let rt_period = c.realtime_period().filter(|p| *p != 0);
    if rt_runtime.is_some() || rt_period.is_some() {
        let name = if rt_runtime.is_some() {
            "realtimeRuntime"
        } else {
            "realtimePeriod"
        };
        let dir = cpu_dir(name)?;
        exists_or(
            dir,
            "cpu.rt_runtime_us",
            name,
            "the kernel lacks CONFIG_RT_GROUP_SCHED",
        )?;
        if let Some(rt) = rt_runtime {
            if rt < -1 {
                return Err(Error::invalid(
                    field("realtimeRuntime"),
                    format!("{rt} is negative (use -1 for unlimited)"),
                ));
            }
        }
        let current_period = fsutil::read_u64(&dir.join("cpu.rt_period_us"))?;
        let effective_period = rt_period.unwrap_or(current_period);
        if let Some(rt) = rt_runtime.filter(|rt| *rt > 0) {
            if rt as u64 > effective_period {
                return Err(Error::invalid(
                    field("realtimeRuntime"),
                    format!("{rt} is larger than the real-time period {effective_period}"),
                ));
            }
        }
        // The kernel keeps runtime <= period at every step.
        let runtime_first = rt_period.is_none_or(|p| p < current_period);
        let rt_w = rt_runtime.map(|rt| {
            (
                field("realtimeRuntime"),
                "cpu.rt_runtime_us",
                rt.to_string(),
            )
        });
        let per_w =
            rt_period.map(|per| (field("realtimePeriod"), "cpu.rt_period_us", per.to_string()));
        let ordered = if runtime_first {
            [rt_w, per_w]
        } else {
            [per_w, rt_w]
        };
        for (f, file, v) in ordered.into_iter().flatten() {
            p.push(f, dir, file, v);
        }
    }
    if let Some(i) = c.idle() {
        let dir = cpu_dir("idle")?;
        exists_or(dir, "cpu.idle", "idle", "needs Linux 5.15")?;
        p.push(field("idle"), dir, "cpu.idle", i.to_string());
    }
    for (name, v, file) in [
        ("cpus", c.cpus(), "cpuset.cpus"),
        ("mems", c.mems(), "cpuset.mems"),
    ] {
        if let Some(list) = v.as_deref().filter(|l| !l.trim().is_empty()) {
            let dir = m.need("cpuset", &field(name))?;
            p.push(field(name), dir, file, list.trim());
        }
    }
    Ok(())
}

/// "major:minor" of an existing block device; the kernel rejects limits for
/// devices it does not know, and we want that before writing anything.
pub(crate) fn block_device(field: &str, major: i64, minor: i64) -> Result<String, Error> {
    if major < 0 || minor < 0 {
        return Err(Error::invalid(
            field,
            format!("{major}:{minor} is not a device number"),
        ));
    }
    let dev = format!("{major}:{minor}");
    if !Path::new("/sys/dev/block").join(&dev).exists() {
        return Err(Error::invalid(
            field,
            format!("there is no block device {dev} on this host"),
        ));
    }
    Ok(dev)
}

fn block_io(m: &V1Manager, b: &LinuxBlockIo, p: &mut Plan) -> Result<(), Error> {
    let field = |n: &str| format!("{F}.blockIO.{n}");
    let check_weight = |f: &str, w: u16| -> Result<(), Error> {
        if (10..=1000).contains(&w) {
            Ok(())
        } else {
            Err(Error::invalid(
                f,
                format!("{w} is out of range (10 to 1000)"),
            ))
        }
    };
    // CFQ (gone since Linux 5.0) had blkio.weight and leaf weights; BFQ
    // has blkio.bfq.weight and no leaf weights.
    let pick = |dir: &Path,
                cfq: &'static str,
                bfq: &'static str,
                f: &str|
     -> Result<&'static str, Error> {
        if dir.join(cfq).exists() {
            Ok(cfq)
        } else if dir.join(bfq).exists() {
            Ok(bfq)
        } else {
            Err(Error::unavailable(
                f,
                format!(
                    "neither {cfq} nor {bfq} exists: no proportional I/O scheduler (CFQ or BFQ)"
                ),
            ))
        }
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        check_weight(&field("weight"), w)?;
        let dir = m.need("blkio", &field("weight"))?;
        let file = pick(dir, "blkio.weight", "blkio.bfq.weight", &field("weight"))?;
        p.push(field("weight"), dir, file, w.to_string());
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        check_weight(&field("leafWeight"), w)?;
        let dir = m.need("blkio", &field("leafWeight"))?;
        if !dir.join("blkio.leaf_weight").exists() {
            return Err(Error::unavailable(
                field("leafWeight"),
                "leaf weights need the CFQ I/O scheduler, which this kernel lacks",
            ));
        }
        p.push(field("leafWeight"), dir, "blkio.leaf_weight", w.to_string());
    }
    for (i, wd) in b.weight_device().iter().flatten().enumerate() {
        let f = field(&format!("weightDevice[{i}]"));
        let dir = m.need("blkio", &f)?;
        let dev = block_device(&f, wd.major(), wd.minor())?;
        if let Some(w) = wd.weight() {
            check_weight(&format!("{f}.weight"), w)?;
            let file = pick(dir, "blkio.weight_device", "blkio.bfq.weight_device", &f)?;
            p.push(format!("{f}.weight"), dir, file, format!("{dev} {w}"));
        }
        if let Some(w) = wd.leaf_weight() {
            check_weight(&format!("{f}.leafWeight"), w)?;
            if !dir.join("blkio.leaf_weight_device").exists() {
                return Err(Error::unavailable(
                    format!("{f}.leafWeight"),
                    "leaf weights need the CFQ I/O scheduler, which this kernel lacks",
                ));
            }
            p.push(
                format!("{f}.leafWeight"),
                dir,
                "blkio.leaf_weight_device",
                format!("{dev} {w}"),
            );
        }
    }
    for (name, key, list) in v2res::throttles(b) {
        let file = match key {
            "rbps" => "blkio.throttle.read_bps_device",
            "wbps" => "blkio.throttle.write_bps_device",
            "riops" => "blkio.throttle.read_iops_device",
            _ => "blkio.throttle.write_iops_device",
        };
        for (i, td) in list.iter().flatten().enumerate() {
            let f = field(&format!("{name}[{i}]"));
            let dir = m.need("blkio", &f)?;
            let dev = block_device(&f, td.major(), td.minor())?;
            p.push(f, dir, file, format!("{dev} {}", td.rate()));
        }
    }
    Ok(())
}

fn network(m: &V1Manager, n: &LinuxNetwork, p: &mut Plan) -> Result<(), Error> {
    if let Some(id) = n.class_id() {
        let f = format!("{F}.network.classID");
        let dir = m.need("net_cls", &f)?;
        p.push(f, dir, "net_cls.classid", id.to_string());
    }
    for (i, prio) in n.priorities().iter().flatten().enumerate() {
        let f = format!("{F}.network.priorities[{i}]");
        let name = prio.name();
        // IFNAMSIZ is 16 including the NUL.
        if name.is_empty() || name.len() > 15 || name.chars().any(|c| c.is_whitespace() || c == '/')
        {
            return Err(Error::invalid(
                format!("{f}.name"),
                format!("{name:?} is not an interface name"),
            ));
        }
        let dir = m.need("net_prio", &f)?;
        p.push(
            f,
            dir,
            "net_prio.ifpriomap",
            format!("{name} {}", prio.priority()),
        );
    }
    Ok(())
}
