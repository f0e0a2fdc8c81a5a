//! Reading cgroup v1 statistics into the runc-shaped [`Stats`].

use std::path::Path;

use crate::error::Error;
use crate::fsutil;
use crate::hugetlb;
use crate::stats::{limit_or_zero, BlkioEntry, Hugetlb, MemoryEntry, Stats};

/// USER_HZ: cpuacct.stat counts in these ticks (100 on every Linux ABI).
const USER_HZ: u64 = 100;

fn percpu(path: &Path) -> Result<Vec<u64>, Error> {
    let Some(text) = fsutil::read_optional(path)? else {
        return Ok(Vec::new());
    };
    text.split_whitespace()
        .map(|v| fsutil::parse_u64(path, v))
        .collect()
}

pub(crate) fn cpuacct(dir: &Path, s: &mut Stats) -> Result<(), Error> {
    let u = &mut s.cpu.usage;
    u.total = fsutil::read_u64(&dir.join("cpuacct.usage"))?;
    u.percpu = percpu(&dir.join("cpuacct.usage_percpu"))?;
    u.percpu_kernel = percpu(&dir.join("cpuacct.usage_percpu_sys"))?;
    u.percpu_user = percpu(&dir.join("cpuacct.usage_percpu_user"))?;
    match (
        fsutil::read_u64_optional(&dir.join("cpuacct.usage_user"))?,
        fsutil::read_u64_optional(&dir.join("cpuacct.usage_sys"))?,
    ) {
        (Some(user), Some(sys)) => {
            u.user = user;
            u.kernel = sys;
        }
        // Older kernels: only tick counts.
        _ => {
            let st = fsutil::read_flat_keyed(&dir.join("cpuacct.stat"))?;
            let ns = |k: &str| st.get(k).copied().unwrap_or(0) * (1_000_000_000 / USER_HZ);
            u.user = ns("user");
            u.kernel = ns("system");
        }
    }
    Ok(())
}

pub(crate) fn cpu(dir: &Path, s: &mut Stats) -> Result<(), Error> {
    let path = dir.join("cpu.stat");
    let Some(text) = fsutil::read_optional(&path)? else {
        return Ok(());
    };
    let st = fsutil::parse_flat_keyed(&path, &text)?;
    let t = &mut s.cpu.throttling;
    t.periods = st.get("nr_periods").copied().unwrap_or(0);
    t.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
    t.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
    Ok(())
}

/// usage/max/failcnt/limit of one memory counter ("memory", "memory.memsw",
/// "memory.kmem", "memory.kmem.tcp"); zeros when the kernel lacks it.
fn memory_entry(dir: &Path, prefix: &str) -> Result<MemoryEntry, Error> {
    let get = |name: &str| fsutil::read_u64_optional(&dir.join(format!("{prefix}.{name}")));
    let Some(usage) = get("usage_in_bytes")? else {
        return Ok(MemoryEntry::default());
    };
    Ok(MemoryEntry {
        usage,
        max: get("max_usage_in_bytes")?.unwrap_or(0),
        failcnt: get("failcnt")?.unwrap_or(0),
        limit: limit_or_zero(get("limit_in_bytes")?.unwrap_or(u64::MAX)),
    })
}

pub(crate) fn memory(dir: &Path, s: &mut Stats) -> Result<(), Error> {
    let m = &mut s.memory;
    m.raw = fsutil::read_flat_keyed(&dir.join("memory.stat"))?;
    m.cache = m.raw.get("cache").copied().unwrap_or(0);
    m.usage = memory_entry(dir, "memory")?;
    m.swap = memory_entry(dir, "memory.memsw")?;
    m.kernel = memory_entry(dir, "memory.kmem")?;
    m.kernel_tcp = memory_entry(dir, "memory.kmem.tcp")?;
    Ok(())
}

pub(crate) fn pids(dir: &Path, s: &mut Stats) -> Result<(), Error> {
    s.pids.current = fsutil::read_u64(&dir.join("pids.current"))?;
    s.pids.limit = limit_or_zero(fsutil::read_u64(&dir.join("pids.max"))?);
    Ok(())
}

/// blkio.* recursive files: "8:0 Read 4096" lines (or "8:0 4096" for
/// sectors and time), and a closing "Total N" line that we skip.
pub(crate) fn parse_blkio(path: &Path, text: &str) -> Result<Vec<BlkioEntry>, Error> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let bad = || Error::BadContent {
            path: path.to_path_buf(),
            content: line.chars().take(80).collect(),
            reason: "expected \"major:minor [op] value\"".into(),
        };
        if fields[0] == "Total" {
            continue;
        }
        let (dev, op, value) = match fields.as_slice() {
            [dev, op, value] => (*dev, *op, *value),
            [dev, value] => (*dev, "", *value),
            _ => return Err(bad()),
        };
        let (maj, min) = dev.split_once(':').ok_or_else(bad)?;
        out.push(BlkioEntry {
            major: maj.parse().map_err(|_| bad())?,
            minor: min.parse().map_err(|_| bad())?,
            op: op.to_string(),
            value: value.parse().map_err(|_| bad())?,
        });
    }
    Ok(out)
}

pub(crate) fn blkio(dir: &Path, s: &mut Stats) -> Result<(), Error> {
    let read = |file: &str| -> Result<Option<Vec<BlkioEntry>>, Error> {
        let path = dir.join(file);
        match fsutil::read_optional(&path)? {
            Some(text) => parse_blkio(&path, &text).map(Some),
            None => Ok(None),
        }
    };
    // CFQ had the full set; BFQ and the throttling layer only count bytes
    // and operations. Use the first source that has seen any device.
    if let Some(bytes) = read("blkio.io_service_bytes_recursive")?.filter(|b| !b.is_empty()) {
        let b = &mut s.blkio;
        b.io_service_bytes_recursive = bytes;
        b.io_serviced_recursive = read("blkio.io_serviced_recursive")?.unwrap_or_default();
        b.io_queued_recursive = read("blkio.io_queued_recursive")?.unwrap_or_default();
        b.io_service_time_recursive = read("blkio.io_service_time_recursive")?.unwrap_or_default();
        b.io_wait_time_recursive = read("blkio.io_wait_time_recursive")?.unwrap_or_default();
        b.io_merged_recursive = read("blkio.io_merged_recursive")?.unwrap_or_default();
        b.io_time_recursive = read("blkio.time_recursive")?.unwrap_or_default();
        b.sectors_recursive = read("blkio.sectors_recursive")?.unwrap_or_default();
        return Ok(());
    }
    for prefix in ["blkio.bfq.", "blkio.throttle."] {
        if let Some(bytes) =
            read(&format!("{prefix}io_service_bytes_recursive"))?.filter(|b| !b.is_empty())
        {
            s.blkio.io_service_bytes_recursive = bytes;
            s.blkio.io_serviced_recursive =
                read(&format!("{prefix}io_serviced_recursive"))?.unwrap_or_default();
            return Ok(());
        }
    }
    Ok(())
}

pub(crate) fn hugetlb(dir: &Path, s: &mut Stats) -> Result<(), Error> {
    for size in hugetlb::page_sizes() {
        let get =
            |name: &str| fsutil::read_u64_optional(&dir.join(format!("hugetlb.{size}.{name}")));
        let Some(usage) = get("usage_in_bytes")? else {
            continue;
        };
        let entry = Hugetlb {
            usage,
            max: get("max_usage_in_bytes")?.unwrap_or(0),
            failcnt: get("failcnt")?.unwrap_or(0),
        };
        s.hugetlb.insert(size, entry);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines() {
        let p = Path::new("/x/blkio.throttle.io_service_bytes_recursive");
        let e = parse_blkio(
            p,
            "254:0 Read 4096\n254:0 Write 0\n254:0 Sync 0\nTotal 4096\n",
        )
        .unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].major, e[0].minor, e[0].op.as_str(), e[0].value),
            (254, 0, "Read", 4096)
        );
        let e = parse_blkio(p, "8:16 77\n").unwrap();
        assert_eq!((e[0].minor, e[0].op.as_str(), e[0].value), (16, "", 77));
        assert!(parse_blkio(p, "8-0 Read 1\n").is_err());
        assert!(parse_blkio(p, "Total 0\n").unwrap().is_empty());
    }
}
