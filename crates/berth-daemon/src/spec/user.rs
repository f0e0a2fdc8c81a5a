//! `User` ("", "uid", "uid:gid", "name", "name:group", ...) resolved
//! against the rootfs's /etc/passwd and /etc/group, with the rules of
//! moby/sys/user's GetExecUser and GetAdditionalGroups.

use super::root::RootDir;
use super::SpecError;

/// /etc/passwd or /etc/group larger than this is refused.
const MAX_DB_BYTES: u64 = 16 << 20;
/// uids and gids must fit runc's int32.
const MAX_ID: i64 = (1 << 31) - 1;

/// A resolved process identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub uid: u32,
    pub gid: u32,
    /// The primary gid, the user's groups from /etc/group (implicit form
    /// only), then GroupAdd; no repeats.
    pub additional_gids: Vec<u32>,
}

struct PasswdEntry {
    name: String,
    uid: i64,
    gid: i64,
}

struct GroupEntry {
    name: String,
    gid: i64,
    members: Vec<String>,
}

/// Go's strconv.Atoi as passwd parsing uses it: errors become 0.
fn atoi(s: &str) -> i64 {
    s.parse().unwrap_or(0)
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            PasswdEntry {
                name: f[0].to_string(),
                uid: f.get(2).map_or(0, |s| atoi(s)),
                gid: f.get(3).map_or(0, |s| atoi(s)),
            }
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            GroupEntry {
                name: f[0].to_string(),
                gid: f.get(2).map_or(0, |s| atoi(s)),
                members: f
                    .get(3)
                    .filter(|m| !m.is_empty())
                    .map(|m| m.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// moby's parseNumeric: Some(id) for a number in range, None for a name,
/// an error for a number out of range.
fn numeric(s: &str) -> Result<Option<i64>, SpecError> {
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<i64>() {
        Ok(n) if (0..=MAX_ID).contains(&n) => Ok(Some(n)),
        Ok(_) => Err(range_error()),
        Err(e) => match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                Err(range_error())
            }
            _ => Ok(None),
        },
    }
}

fn range_error() -> SpecError {
    SpecError::invalid(format!("uids and gids must be in range 0-{MAX_ID}"))
}

fn id(n: i64) -> Result<u32, SpecError> {
    if (0..=MAX_ID).contains(&n) {
        Ok(n as u32)
    } else {
        Err(range_error())
    }
}

fn read_db(root: &RootDir, path: &str) -> Result<Option<String>, SpecError> {
    Ok(root
        .read_file(path, MAX_DB_BYTES)?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Resolves `spec` and `group_add` in `root`.
pub(crate) fn resolve(
    root: &RootDir,
    spec: &str,
    group_add: &[String],
) -> Result<Resolved, SpecError> {
    let passwd = read_db(root, "/etc/passwd")?.map(|t| parse_passwd(&t));
    let needs_groups = spec.contains(':') || !group_add.is_empty() || passwd.is_some();
    let group = if needs_groups {
        read_db(root, "/etc/group")?.map(|t| parse_group(&t))
    } else {
        None
    };
    resolve_in(passwd.as_deref(), group.as_deref(), spec, group_add)
}

fn resolve_in(
    passwd: Option<&[PasswdEntry]>,
    group: Option<&[GroupEntry]>,
    spec: &str,
    group_add: &[String],
) -> Result<Resolved, SpecError> {
    let mut parts = spec.split(':');
    let user_arg = parts.next().unwrap_or("");
    let group_arg = parts.next().unwrap_or("");
    let user_num = numeric(user_arg)?;
    let group_num = numeric(group_arg)?;

    let (mut uid, mut gid) = (0i64, 0i64);
    let mut matched_name: Option<&str> = None;
    let found = passwd.and_then(|entries| {
        entries.iter().find(|u| match (user_arg, user_num) {
            ("", _) => u.uid == 0,
            (_, Some(n)) => u.uid == n,
            (name, None) => u.name == name,
        })
    });
    match found {
        Some(u) => {
            uid = u.uid;
            gid = u.gid;
            matched_name = Some(&u.name);
        }
        None if !user_arg.is_empty() => match user_num {
            Some(n) => uid = n,
            None => {
                return Err(SpecError::invalid(format!(
                    "unable to find user {user_arg}: no matching entries in passwd file"
                )))
            }
        },
        None => {}
    }

    let mut supplementary = Vec::new();
    if !group_arg.is_empty() || matched_name.is_some() {
        let entries = group.unwrap_or_default();
        if !group_arg.is_empty() {
            let found = entries.iter().find(|g| match group_num {
                Some(n) => g.gid == n,
                None => g.name == group_arg,
            });
            gid = match (found, group_num) {
                (Some(g), _) => g.gid,
                (None, Some(n)) => n,
                (None, None) => {
                    return Err(SpecError::invalid(format!(
                        "unable to find group {group_arg}: no matching entries in group file"
                    )))
                }
            };
        } else if let Some(name) = matched_name {
            supplementary = entries
                .iter()
                .filter(|g| g.members.iter().any(|m| m == name))
                .map(|g| g.gid)
                .collect();
        }
    }

    let mut extra = Vec::new();
    for wanted in group_add {
        let num = numeric(wanted)?;
        let found = group.unwrap_or_default().iter().find(|g| match num {
            Some(n) => g.gid == n,
            None => &g.name == wanted,
        });
        extra.push(match (found, num) {
            (Some(g), _) => g.gid,
            (None, Some(n)) => n,
            (None, None) => {
                return Err(SpecError::invalid(format!(
                    "unable to find group {wanted}: no matching entries in group file"
                )))
            }
        });
    }

    let gid = id(gid)?;
    let mut additional_gids = vec![gid];
    for g in supplementary.into_iter().chain(extra) {
        let g = id(g)?;
        if !additional_gids.contains(&g) {
            additional_gids.push(g);
        }
    }
    Ok(Resolved {
        uid: id(uid)?,
        gid,
        additional_gids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1::/:/bin/false\n\
        alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
        \n\
        bob:x:1001:1001\n";
    const GROUP: &str = "root:x:0:\n\
        # a comment\n\
        wheel:x:10:alice,root\n\
        staff:x:50:alice\n\
        alice:x:1000:\n\
        bob:x:1001:\n";

    fn rootfs(passwd: Option<&str>, group: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        if let Some(p) = passwd {
            std::fs::write(dir.path().join("etc/passwd"), p).unwrap();
        }
        if let Some(g) = group {
            std::fs::write(dir.path().join("etc/group"), g).unwrap();
        }
        dir
    }

    fn run(dir: &tempfile::TempDir, spec: &str, add: &[&str]) -> Result<Resolved, SpecError> {
        let root = RootDir::open(dir.path()).unwrap();
        let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
        resolve(&root, spec, &add)
    }

    fn r(uid: u32, gid: u32, gids: &[u32]) -> Resolved {
        Resolved {
            uid,
            gid,
            additional_gids: gids.to_vec(),
        }
    }

    #[test]
    fn users_resolve_as_docker_does() {
        let dir = rootfs(Some(PASSWD), Some(GROUP));
        assert_eq!(run(&dir, "", &[]).unwrap(), r(0, 0, &[0, 10]));
        assert_eq!(
            run(&dir, "alice", &[]).unwrap(),
            r(1000, 1000, &[1000, 10, 50])
        );
        assert_eq!(
            run(&dir, "1000", &[]).unwrap(),
            r(1000, 1000, &[1000, 10, 50])
        );
        // An explicit group replaces the primary group and drops the
        // supplementary ones.
        assert_eq!(run(&dir, "alice:staff", &[]).unwrap(), r(1000, 50, &[50]));
        assert_eq!(run(&dir, "alice:77", &[]).unwrap(), r(1000, 77, &[77]));
        assert_eq!(run(&dir, "bob", &[]).unwrap(), r(1001, 1001, &[1001]));
        // Numeric ids need no entry.
        assert_eq!(run(&dir, "4242", &[]).unwrap(), r(4242, 0, &[0]));
        assert_eq!(run(&dir, "4242:4343", &[]).unwrap(), r(4242, 4343, &[4343]));
        // GroupAdd by name or number.
        assert_eq!(
            run(&dir, "bob", &["staff", "9999", "1001"]).unwrap(),
            r(1001, 1001, &[1001, 50, 9999])
        );
    }

    #[test]
    fn missing_names_are_errors_in_dockers_words() {
        let dir = rootfs(Some(PASSWD), Some(GROUP));
        let err = run(&dir, "foo", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find user foo: no matching entries in passwd file"
        );
        assert_eq!(
            berth_errdefs::HasKind::kind(&err),
            berth_errdefs::ErrorKind::InvalidArgument
        );
        assert_eq!(
            run(&dir, "alice:nogroup", &[]).unwrap_err().to_string(),
            "unable to find group nogroup: no matching entries in group file"
        );
        assert_eq!(
            run(&dir, "alice", &["ghosts"]).unwrap_err().to_string(),
            "unable to find group ghosts: no matching entries in group file"
        );
        assert_eq!(
            run(&dir, "99999999999", &[]).unwrap_err().to_string(),
            "uids and gids must be in range 0-2147483647"
        );
        assert_eq!(
            run(&dir, "-1", &[]).unwrap_err().to_string(),
            "uids and gids must be in range 0-2147483647"
        );
    }

    #[test]
    fn no_passwd_file_allows_numeric_users_only() {
        let dir = rootfs(None, None);
        assert_eq!(run(&dir, "", &[]).unwrap(), r(0, 0, &[0]));
        assert_eq!(run(&dir, "5:6", &[]).unwrap(), r(5, 6, &[6]));
        assert_eq!(
            run(&dir, "alice", &[]).unwrap_err().to_string(),
            "unable to find user alice: no matching entries in passwd file"
        );
        assert_eq!(
            run(&dir, "0:wheel", &[]).unwrap_err().to_string(),
            "unable to find group wheel: no matching entries in group file"
        );
    }

    #[test]
    fn symlinked_passwd_resolves_inside_the_root() {
        // A host passwd that would give "alice" uid 0 if it were read.
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("passwd"), "alice:x:0:0::/:/bin/sh\n").unwrap();
        let dir = rootfs(None, Some(GROUP));
        symlink(host.path().join("passwd"), dir.path().join("etc/passwd")).unwrap();
        // The absolute link target names a path inside the root, which is missing.
        assert_eq!(
            run(&dir, "alice", &[]).unwrap_err().to_string(),
            "unable to find user alice: no matching entries in passwd file"
        );
        // Put the file at that path inside the root: it is the one read.
        let inside = dir.path().join(host.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(inside.join("passwd"), PASSWD).unwrap();
        assert_eq!(
            run(&dir, "alice", &[]).unwrap(),
            r(1000, 1000, &[1000, 10, 50])
        );
        // A relative link climbing out also stays inside.
        std::fs::remove_file(dir.path().join("etc/passwd")).unwrap();
        let climb = format!("../../../../../../..{}/passwd", host.path().display());
        symlink(&climb, dir.path().join("etc/passwd")).unwrap();
        assert_eq!(
            run(&dir, "alice", &[]).unwrap(),
            r(1000, 1000, &[1000, 10, 50])
        );
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = rootfs(None, None);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("etc/passwd"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let err = run(&dir, "alice", &[]).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
