//! What the spec depends on about the host, read once per call so that
//! tests can pass a fixed host instead.

use std::path::Path;

/// Facts about the machine the container runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Host {
    /// moby's native architecture name, as Docker seccomp profiles spell it
    /// in `includes.arches` ("amd64", "arm64", "x86", ...).
    pub arch: &'static str,
    /// Kernel version (major, minor), for seccomp `minKernel`.
    pub kernel: (u32, u32),
    /// The capabilities the kernel knows, and those a container can have:
    /// the ones in berthd's own bounding set, since a runtime berthd starts
    /// can grant no others (a VM or a container may withhold some, as this
    /// one withholds CAP_SYS_RESOURCE).
    pub capabilities: super::caps::Available,
    /// Pure cgroup v2 (a container gets a cgroup namespace by default).
    pub cgroup_v2: bool,
    /// The memory cgroup can limit swap (v2, or v1 with memsw accounting).
    pub swap_limit: bool,
    /// CPUs this process may run on (docker's runtime.NumCPU()).
    pub ncpu: usize,
    /// CPUs and memory nodes a cpuset may name; None when unknown.
    pub cpus: Option<Vec<u32>>,
    pub mems: Option<Vec<u32>>,
    /// The sysctls docker sets by default in a new network namespace, when
    /// the kernel has them.
    pub ping_group_range: bool,
    pub unprivileged_port_start: bool,
    /// /sys/devices/system/cpu/cpuN/thermal_throttle directories (masked).
    pub thermal_throttle: Vec<String>,
}

impl Host {
    pub fn detect() -> Host {
        let kernel = rustix::system::uname();
        let kernel = parse_kernel(&kernel.release().to_string_lossy()).unwrap_or((0, 0));
        let known = (0..=berth_sys::caps::last_cap().min(63)).fold(0u64, |m, c| m | 1 << c);
        let capabilities = super::caps::Available {
            known,
            held: known & berth_sys::caps::bounding_set(),
        };
        let cgroup_v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let swap_limit =
            cgroup_v2 || Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists();
        let ncpu = rustix::thread::sched_getaffinity(None)
            .map(|set| set.count() as usize)
            .ok()
            .filter(|n| *n > 0)
            .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
            .unwrap_or(1);
        let read_list = |paths: &[&str]| {
            paths.iter().find_map(|p| {
                std::fs::read_to_string(p)
                    .ok()
                    .and_then(|s| parse_list(s.trim()).ok())
            })
        };
        let cpus = read_list(&[
            "/sys/fs/cgroup/cpuset.cpus.effective",
            "/sys/fs/cgroup/cpuset/cpuset.effective_cpus",
            "/sys/fs/cgroup/cpuset/cpuset.cpus",
            "/sys/devices/system/cpu/online",
        ]);
        let mems = read_list(&[
            "/sys/fs/cgroup/cpuset.mems.effective",
            "/sys/fs/cgroup/cpuset/cpuset.effective_mems",
            "/sys/fs/cgroup/cpuset/cpuset.mems",
            "/sys/devices/system/node/online",
        ]);
        let possible = std::fs::read_to_string("/sys/devices/system/cpu/possible")
            .ok()
            .and_then(|s| parse_list(s.trim()).ok())
            .unwrap_or_default();
        let thermal_throttle = possible
            .iter()
            .map(|n| format!("/sys/devices/system/cpu/cpu{n}/thermal_throttle"))
            .filter(|p| Path::new(p).exists())
            .collect();
        Host {
            arch: native_arch(std::env::consts::ARCH),
            kernel,
            capabilities,
            cgroup_v2,
            swap_limit,
            ncpu,
            cpus,
            mems,
            ping_group_range: Path::new("/proc/sys/net/ipv4/ping_group_range").exists(),
            unprivileged_port_start: Path::new("/proc/sys/net/ipv4/ip_unprivileged_port_start")
                .exists(),
            thermal_throttle,
        }
    }

    /// A fixed x86_64 host for tests and the fuzz targets.
    pub fn fixed() -> Host {
        Host {
            arch: "amd64",
            kernel: (6, 1),
            capabilities: super::caps::Available {
                known: (1 << 41) - 1,
                held: (1 << 41) - 1,
            },
            cgroup_v2: true,
            swap_limit: true,
            ncpu: 4,
            cpus: Some(vec![0, 1, 2, 3]),
            mems: Some(vec![0]),
            ping_group_range: true,
            unprivileged_port_start: true,
            thermal_throttle: Vec::new(),
        }
    }
}

/// Rust's architecture name -> moby's native name (profiles/seccomp's
/// goToNative applied to Go's GOARCH).
pub(crate) fn native_arch(rust_arch: &str) -> &'static str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "powerpc" => "ppc",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loongarch64",
        "mips64" if cfg!(target_endian = "little") => "mipsel64",
        "mips64" => "mips64",
        "mips" if cfg!(target_endian = "little") => "mipsel",
        "mips" => "mips",
        _ => "unknown",
    }
}

/// "6.1.0-18-amd64" -> (6, 1).
pub(crate) fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// A cpuset list ("0-3,7"), in docker's grammar (parsers.ParseUintList):
/// comma-separated numbers and inclusive ranges, nothing empty.
pub(crate) fn parse_list(text: &str) -> Result<Vec<u32>, String> {
    let invalid = || format!("invalid format: {text}");
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in text.split(',') {
        let number = |s: &str| -> Result<u32, String> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            s.parse().map_err(|_| invalid())
        };
        match part.split_once('-') {
            None => out.push(number(part)?),
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if b < a || b - a > 1 << 16 {
                    return Err(invalid());
                }
                out.extend(a..=b);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_as_docker_does() {
        assert_eq!(parse_list("0-3,7").unwrap(), vec![0, 1, 2, 3, 7]);
        assert_eq!(parse_list("1").unwrap(), vec![1]);
        assert_eq!(parse_list("").unwrap(), Vec::<u32>::new());
        for bad in ["a", "1-", "-1", "3-1", "1,,2", "1 ", "0x1"] {
            assert_eq!(
                parse_list(bad).unwrap_err(),
                format!("invalid format: {bad}"),
                "{bad}"
            );
        }
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_kernel("5"), Some((5, 0)));
        assert_eq!(parse_kernel("x"), None);
    }

    #[test]
    fn detect_finds_this_machine() {
        let h = Host::detect();
        assert!(h.ncpu >= 1);
        assert_ne!(h.capabilities.held & 1, 0, "CAP_CHOWN is held");
        assert_eq!(h.capabilities.held & !h.capabilities.known, 0);
        assert_ne!(h.arch, "unknown");
    }
}
