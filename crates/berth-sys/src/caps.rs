//! Capability sets: bounding, effective/permitted/inheritable, ambient.

use crate::{check, process::prctl, Result};

/// The highest capability number this kernel knows.
/// The kernel's highest capability number, read once per process (it
/// cannot change while the kernel runs; create and exec ask for it more
/// than once).
pub fn last_cap() -> u32 {
    static LAST_CAP: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *LAST_CAP.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40)
    })
}

/// The calling thread's bounding set as a bit mask (bit N: capability N),
/// up to the kernel's last capability. Nothing this process starts can
/// hold a capability outside it.
pub fn bounding_set() -> u64 {
    (0..=last_cap().min(63))
        .filter(|&cap| matches!(prctl(libc::PR_CAPBSET_READ, cap as _, 0), Ok(1)))
        .fold(0, |set, cap| set | 1 << cap)
}

pub fn drop_bounding(cap: u32) -> Result<()> {
    prctl(libc::PR_CAPBSET_DROP, cap as _, 0).map(drop)
}

pub fn clear_ambient() -> Result<()> {
    prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as _, 0).map(drop)
}

pub fn raise_ambient(cap: u32) -> Result<()> {
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_RAISE as _,
        cap as _,
    )
    .map(drop)
}

/// Sets the effective, permitted and inheritable sets (bit masks) of the calling thread.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (e0, e1) = split(effective);
    let (p0, p1) = split(permitted);
    let (i0, i1) = split(inheritable);
    let data = [
        Data {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        Data {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: header and data are the v3 layout the kernel expects and live for the call.
    check(unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) }).map(drop)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bounding_set_is_what_proc_reports() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix("CapBnd:"))
            .expect("CapBnd in /proc/self/status")
            .trim();
        assert_eq!(super::bounding_set(), u64::from_str_radix(hex, 16).unwrap());
    }
}
