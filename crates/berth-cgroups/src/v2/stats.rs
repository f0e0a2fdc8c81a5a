//! Reading cgroup v2 statistics into the runc-shaped [`Stats`].
//! A controller that is not enabled simply has no files and leaves its part
//! of the stats empty.

use std::path::Path;

use crate::error::Error;
use crate::fsutil;
use crate::hugetlb;
use crate::stats::{limit_or_zero, BlkioEntry, Hugetlb, Stats};

pub(crate) fn read(dir: &Path, s: &mut Stats) -> Result<(), Error> {
    cpu(dir, s)?;
    memory(dir, s)?;
    pids(dir, s)?;
    io(dir, s)?;
    hugetlb(dir, s)?;
    Ok(())
}

fn cpu(dir: &Path, s: &mut Stats) -> Result<(), Error> {
    // cpu.stat is a core file: present even without the cpu controller.
    let path = dir.join("cpu.stat");
    let Some(text) = fsutil::read_optional(&path)? else {
        return Ok(());
    };
    let st = fsutil::parse_flat_keyed(&path, &text)?;
    let us = |k: &str| st.get(k).copied().unwrap_or(0) * 1000;
    s.cpu.usage.total = us("usage_usec");
    s.cpu.usage.user = us("user_usec");
    s.cpu.usage.kernel = us("system_usec");
    s.cpu.throttling.periods = st.get("nr_periods").copied().unwrap_or(0);
    s.cpu.throttling.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
    s.cpu.throttling.throttled_time = us("throttled_usec");
    Ok(())
}

fn memory(dir: &Path, s: &mut Stats) -> Result<(), Error> {
    let Some(usage) = fsutil::read_u64_optional(&dir.join("memory.current"))? else {
        return Ok(());
    };
    let m = &mut s.memory;
    m.usage.usage = usage;
    let max = fsutil::read_u64(&dir.join("memory.max"))?;
    m.usage.limit = limit_or_zero(max);
    m.usage.max = fsutil::read_u64_optional(&dir.join("memory.peak"))?.unwrap_or(0);
    let events = fsutil::read_flat_keyed(&dir.join("memory.events"))?;
    m.usage.failcnt = events.get("max").copied().unwrap_or(0);
    m.raw = fsutil::read_flat_keyed(&dir.join("memory.stat"))?;
    m.cache = m.raw.get("file").copied().unwrap_or(0);
    // runc reports v2 swap as swap+memory, mirroring v1's memsw.
    if let Some(swap) = fsutil::read_u64_optional(&dir.join("memory.swap.current"))? {
        m.swap.usage = swap + usage;
        let swap_max = fsutil::read_u64(&dir.join("memory.swap.max"))?;
        m.swap.limit = match (limit_or_zero(swap_max), limit_or_zero(max)) {
            (0, _) | (_, 0) => 0,
            (sw, mem) => sw + mem,
        };
        m.swap.max = fsutil::read_u64_optional(&dir.join("memory.swap.peak"))?.unwrap_or(0);
    }
    Ok(())
}

fn pids(dir: &Path, s: &mut Stats) -> Result<(), Error> {
    let Some(current) = fsutil::read_u64_optional(&dir.join("pids.current"))? else {
        return Ok(());
    };
    s.pids.current = current;
    s.pids.limit = limit_or_zero(fsutil::read_u64(&dir.join("pids.max"))?);
    Ok(())
}

/// io.stat lines: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0".
pub(crate) fn parse_io_stat(path: &Path, text: &str, s: &mut Stats) -> Result<(), Error> {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        let dev = fields.next().unwrap_or_default();
        let bad = || Error::BadContent {
            path: path.to_path_buf(),
            content: line.chars().take(80).collect(),
            reason: "expected \"major:minor key=value ...\"".into(),
        };
        let (maj, min) = dev.split_once(':').ok_or_else(bad)?;
        let (major, minor): (u64, u64) = (
            maj.parse().map_err(|_| bad())?,
            min.parse().map_err(|_| bad())?,
        );
        for kv in fields {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(bad());
            };
            let Ok(value) = v.parse::<u64>() else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    Ok(())
}

fn io(dir: &Path, s: &mut Stats) -> Result<(), Error> {
    let path = dir.join("io.stat");
    match fsutil::read_optional(&path)? {
        Some(text) => parse_io_stat(&path, &text, s),
        None => Ok(()),
    }
}

fn hugetlb(dir: &Path, s: &mut Stats) -> Result<(), Error> {
    for size in hugetlb::page_sizes() {
        let Some(usage) = fsutil::read_u64_optional(&dir.join(format!("hugetlb.{size}.current")))?
        else {
            continue;
        };
        let events = fsutil::read_flat_keyed(&dir.join(format!("hugetlb.{size}.events")))?;
        s.hugetlb.insert(
            size,
            Hugetlb {
                usage,
                max: 0, // v2 keeps no peak for hugetlb
                failcnt: events.get("max").copied().unwrap_or(0),
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_stat_maps_to_runc_entries() {
        let mut s = Stats::default();
        let text = "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=1 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n";
        parse_io_stat(Path::new("/x/io.stat"), text, &mut s).unwrap();
        let b = &s.blkio.io_service_bytes_recursive;
        assert_eq!(b.len(), 4);
        assert_eq!(
            (b[0].major, b[0].minor, b[0].op.as_str(), b[0].value),
            (8, 0, "Read", 4096)
        );
        assert_eq!((b[1].op.as_str(), b[1].value), ("Write", 8192));
        assert_eq!(s.blkio.io_serviced_recursive[1].value, 2);
        assert!(parse_io_stat(Path::new("/x/io.stat"), "junk\n", &mut s).is_err());
    }
}
