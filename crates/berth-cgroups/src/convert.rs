//! Value conversions between the OCI spec (shaped after cgroup v1) and the
//! cgroup v2 interface files. Pure functions, unit-tested against the values
//! runc and crun produce, so a container gets the same weights everywhere.

/// cpu.shares (v1, 2..=262144, default 1024) to cpu.weight (v2,
/// 1..=10000, default 100).
///
/// The old linear mapping sent the default 1024 shares to weight 39, not
/// 100, so a container with default shares got less CPU than its
/// neighbours. runc 1.3+ and crun 1.23+ use a quadratic fit in log2 space
/// through (2, 1), (1024, 100) and (262144, 10000); we use the same curve
/// so the same spec means the same weight under every runtime.
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0; // unset
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    // libm's log2 and pow, not std's: std's call glibc's libm.so, which
    // would be the only reason the runtime loads that library at every
    // start. Both are the same correctly rounded routines (checked against
    // std's for every input in the tests).
    let l = libm::log2(shares as f64);
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    libm::ceil(libm::pow(10.0, exponent)) as u64
}

/// blkio.weight (10..=1000) to io.weight (1..=10000), linearly.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    let w = u64::from(weight.max(10));
    1 + (w - 10) * 9999 / 990
}

/// The OCI `memory.swap` is memory+swap (v1's memsw); v2's memory.swap.max
/// is swap alone. Returns the value for memory.swap.max, `None` for "leave
/// it", `Some(-1)` for "max". Errors are reasons, the caller adds the field.
pub fn swap_to_v2(swap: Option<i64>, limit: Option<i64>) -> Result<Option<i64>, String> {
    let limit = limit.unwrap_or(0);
    match swap.unwrap_or(0) {
        // Unlimited memory without a swap setting: unlimited swap too, as
        // v1 would behave (memsw follows memory).
        0 if limit == -1 => Ok(Some(-1)),
        0 => Ok(None),
        -1 => Ok(Some(-1)),
        s if s < -1 => Err(format!("{s} is not a limit (use -1 for unlimited)")),
        s => match limit {
            -1 => Ok(Some(s)),
            0 => Err("a swap limit needs a memory limit (swap is memory+swap)".into()),
            l if s < l => Err(format!(
                "memory+swap limit {s} is below the memory limit {l}; it must be at least the memory limit"
            )),
            l => Ok(Some(s - l)),
        },
    }
}

/// The hugetlb page size name the kernel uses in file names, from a
/// /sys/kernel/mm/hugepages entry ("hugepages-2048kB" -> "2MB").
pub fn hugepage_size_name(dir_name: &str) -> Option<String> {
    let kb: u64 = dir_name
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    let mut size = kb;
    let mut units = ["KB", "MB", "GB", "TB", "PB"].iter();
    let mut unit = units.next()?;
    // 1024 is a power of two: a multiple of it has the low ten bits clear.
    while size >= 1024 && size & 1023 == 0 {
        match units.next() {
            Some(u) => {
                size /= 1024;
                unit = u;
            }
            None => break,
        }
    }
    Some(format!("{size}{unit}"))
}

/// A cpuset list such as "0-3,8,10-11". Returns a reason on error.
pub fn check_cpuset_list(list: &str) -> Result<(), String> {
    let t = list.trim();
    if t.is_empty() {
        return Err("empty list".into());
    }
    for part in t.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: u32 = a
            .parse()
            .map_err(|_| format!("{part:?} is not a number or range"))?;
        let b: u32 = b
            .parse()
            .map_err(|_| format!("{part:?} is not a number or range"))?;
        if a > b {
            return Err(format!("range {part:?} runs backwards"));
        }
    }
    Ok(())
}

/// A v1 limit: -1 stays -1 (unlimited), positive as is.
pub fn v1_limit(v: i64) -> String {
    v.to_string()
}

/// A v2 limit: -1 is "max".
pub fn v2_limit(v: i64) -> String {
    if v == -1 {
        "max".into()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_matches_runc_and_crun() {
        assert_eq!(cpu_shares_to_weight(0), 0);
        assert_eq!(cpu_shares_to_weight(1), 1);
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 100);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        // The same weight as glibc's log2 and pow (what crun computes with)
        // for every share value in range.
        for shares in 3..262_144u64 {
            let l = (shares as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            let with_glibc = 10f64.powf(exponent).ceil() as u64;
            assert_eq!(cpu_shares_to_weight(shares), with_glibc, "{shares} shares");
        }
        assert_eq!(cpu_shares_to_weight(1_000_000), 10_000);
        // monotonic in between, and half the default is below the default
        let w512 = cpu_shares_to_weight(512);
        assert!(w512 < 100 && w512 > 1, "{w512}");
        let mut prev = 0;
        for s in (2..=262_144).step_by(97) {
            let w = cpu_shares_to_weight(s);
            assert!(w >= prev && (1..=10_000).contains(&w), "{s} -> {w}");
            prev = w;
        }
    }

    #[test]
    fn blkio_weight_conversion() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(500), 1 + 490 * 9999 / 990);
    }

    #[test]
    fn swap_conversion() {
        assert_eq!(swap_to_v2(None, None), Ok(None));
        assert_eq!(swap_to_v2(None, Some(-1)), Ok(Some(-1)));
        assert_eq!(swap_to_v2(Some(-1), Some(100)), Ok(Some(-1)));
        assert_eq!(swap_to_v2(Some(300), Some(100)), Ok(Some(200)));
        assert_eq!(swap_to_v2(Some(100), Some(100)), Ok(Some(0)));
        assert_eq!(swap_to_v2(Some(300), Some(-1)), Ok(Some(300)));
        assert!(swap_to_v2(Some(50), Some(100)).is_err());
        assert!(swap_to_v2(Some(50), None).is_err());
        assert!(swap_to_v2(Some(-7), Some(100)).is_err());
    }

    #[test]
    fn hugepage_names() {
        assert_eq!(
            hugepage_size_name("hugepages-2048kB").as_deref(),
            Some("2MB")
        );
        assert_eq!(
            hugepage_size_name("hugepages-1048576kB").as_deref(),
            Some("1GB")
        );
        assert_eq!(
            hugepage_size_name("hugepages-64kB").as_deref(),
            Some("64KB")
        );
        assert_eq!(
            hugepage_size_name("hugepages-32768kB").as_deref(),
            Some("32MB")
        );
        assert_eq!(hugepage_size_name("nonsense"), None);
    }

    #[test]
    fn cpuset_lists() {
        assert!(check_cpuset_list("0").is_ok());
        assert!(check_cpuset_list("0-3,8,10-11").is_ok());
        assert!(check_cpuset_list("").is_err());
        assert!(check_cpuset_list("3-1").is_err());
        assert!(check_cpuset_list("a").is_err());
        assert!(check_cpuset_list("0,,1").is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(v2_limit(-1), "max");
        assert_eq!(v2_limit(4096), "4096");
        assert_eq!(v1_limit(-1), "-1");
    }
}
