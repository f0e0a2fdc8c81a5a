//! Parsers for /proc/self/mountinfo and /proc/self/cgroup.
//!
//! Pure functions over strings, so every layout (v1, v2, hybrid, nested
//! mounts inside a cgroup namespace) is covered by fixture tests.

use std::path::PathBuf;

use crate::error::Error;

/// One cgroup or cgroup2 mount from /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    /// Which directory of the hierarchy is mounted (not "/" inside a cgroup
    /// namespace or for a bind mount of a sub-cgroup).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// true for cgroup2, false for a v1 hierarchy.
    pub unified: bool,
    /// The super options: for v1 these name the controllers ("cpu",
    /// "cpuacct", "name=systemd") among other flags.
    pub super_options: Vec<String>,
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every cgroup and cgroup2 mount, in mountinfo order.
pub(crate) fn parse_mountinfo(content: &str) -> Result<Vec<CgroupMount>, Error> {
    let mut out = Vec::new();
    for (n, line) in content.lines().enumerate() {
        out.extend(parse_mountinfo_line(line, n + 1)?);
    }
    Ok(out)
}

/// The cgroup or cgroup2 mount that mountinfo line number `number`
/// describes, if it is one.
pub(crate) fn parse_mountinfo_line(
    line: &str,
    number: usize,
) -> Result<Option<CgroupMount>, Error> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let bad = |reason: &str| Error::Parse {
        file: "/proc/self/mountinfo",
        line: number,
        reason: reason.to_string(),
    };
    let (pre, post) = line
        .split_once(" - ")
        .ok_or_else(|| bad("no \" - \" separator before the filesystem type"))?;
    let pre: Vec<&str> = pre.split(' ').collect();
    if pre.len() < 6 {
        return Err(bad("fewer than six fields before the separator"));
    }
    let mut post = post.split(' ');
    let fstype = post.next().ok_or_else(|| bad("no filesystem type"))?;
    let unified = match fstype {
        "cgroup2" => true,
        "cgroup" => false,
        _ => return Ok(None),
    };
    let _source = post.next().ok_or_else(|| bad("no mount source"))?;
    let super_options = post
        .next()
        .ok_or_else(|| bad("no super options"))?
        .split(',')
        .map(str::to_string)
        .collect();
    Ok(Some(CgroupMount {
        root: PathBuf::from(unescape(pre[3])),
        mount_point: PathBuf::from(unescape(pre[4])),
        unified,
        super_options,
    }))
}

/// One line of /proc/self/cgroup: `id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMembership {
    pub hierarchy_id: u32,
    /// Empty for the unified hierarchy (id 0).
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

pub(crate) fn parse_proc_cgroup(content: &str) -> Result<Vec<CgroupMembership>, Error> {
    let mut out = Vec::new();
    for (n, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: &str| Error::Parse {
            file: "/proc/self/cgroup",
            line: n + 1,
            reason: reason.to_string(),
        };
        // The path may itself contain ':' so split only twice.
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected id:controllers:path"));
        };
        let hierarchy_id = id
            .parse()
            .map_err(|_| bad("hierarchy id is not a number"))?;
        if !path.starts_with('/') {
            return Err(bad("cgroup path is not absolute"));
        }
        let controllers = if ctrls.is_empty() {
            Vec::new()
        } else {
            ctrls.split(',').map(str::to_string).collect()
        };
        out.push(CgroupMembership {
            hierarchy_id,
            controllers,
            path: PathBuf::from(path),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const HYBRID_MOUNTINFO: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:7 master:3 - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn mountinfo_finds_cgroup_mounts_only() {
        let m = parse_mountinfo(HYBRID_MOUNTINFO).unwrap();
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].mount_point, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert!(!m[0].unified);
        assert_eq!(m[0].super_options, vec!["rw", "cpu"]);
        // optional fields (shared:7 master:3) do not shift the rest
        assert_eq!(m[2].mount_point, PathBuf::from("/sys/fs/cgroup/memory"));
        assert!(m[3].super_options.contains(&"name=systemd".to_string()));
        assert!(m[4].unified);
        assert_eq!(m[4].root, PathBuf::from("/"));
    }

    #[test]
    fn mountinfo_unescapes_paths() {
        let line = "50 31 0:40 /a\\040b /mnt/cg\\134x rw - cgroup2 cgroup2 rw\n";
        let m = parse_mountinfo(line).unwrap();
        assert_eq!(m[0].root, PathBuf::from("/a b"));
        assert_eq!(m[0].mount_point, PathBuf::from("/mnt/cg\\x"));
    }

    #[test]
    fn mountinfo_rejects_garbage() {
        let err = parse_mountinfo("1 2 3\n").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn proc_cgroup_parses_v1_and_v2_lines() {
        let c = parse_proc_cgroup("4:memory:/process_api/x\n1:cpu,cpuacct:/\n0::/user.slice/a:b\n")
            .unwrap();
        assert_eq!(c[0].controllers, vec!["memory"]);
        assert_eq!(c[0].path, PathBuf::from("/process_api/x"));
        assert_eq!(c[1].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(c[2].hierarchy_id, 0);
        assert!(c[2].controllers.is_empty());
        assert_eq!(c[2].path, PathBuf::from("/user.slice/a:b"));
        assert!(parse_proc_cgroup("x:memory:/\n").is_err());
        assert!(parse_proc_cgroup("4:memory\n").is_err());
    }
}
