//! Mount options as runc accepts them, turned into flags and data.

use rustix::mount::MountFlags;

/// What one OCI mount's `options` list asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for mount(2) itself.
    pub flags: MountFlags,
    /// Flags explicitly cleared (for remounts that must not inherit them).
    pub cleared: MountFlags,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<MountFlags>,
    /// Filesystem-specific options, joined with commas.
    pub data: String,
    pub bind: bool,
    pub recursive_bind: bool,
    /// `rro`, `rnosuid`, ...: attributes set recursively with mount_setattr.
    pub recursive_attrs: Vec<String>,
    /// `tmpcopyup`: copy the rootfs directory's content into the new tmpfs.
    pub tmpcopyup: bool,
    /// `idmap`/`ridmap`: id-map the bind mount with the container's user namespace.
    pub idmap: bool,
    /// `ridmap`: the mounts below an rbind's top are id-mapped too; with
    /// `idmap` (or mappings alone) only the top one is, as in runc.
    pub recursive_idmap: bool,
}

/// Maps a propagation word (also used by rootfsPropagation) to its flags.
pub fn propagation_flag(word: &str) -> Option<MountFlags> {
    use MountFlags as F;
    let rec = F::from_bits_retain(libc::MS_REC as _);
    let private = F::from_bits_retain(libc::MS_PRIVATE as _);
    let shared = F::from_bits_retain(libc::MS_SHARED as _);
    let slave = F::from_bits_retain(libc::MS_SLAVE as _);
    let unbindable = F::from_bits_retain(libc::MS_UNBINDABLE as _);
    Some(match word {
        "private" => private,
        "rprivate" => private | rec,
        "shared" => shared,
        "rshared" => shared | rec,
        "slave" => slave,
        "rslave" => slave | rec,
        "unbindable" => unbindable,
        "runbindable" => unbindable | rec,
        _ => return None,
    })
}

/// Flags that an option sets (true) or clears (false).
fn flag_option(word: &str) -> Option<(bool, MountFlags)> {
    use MountFlags as F;
    let f = |bits: libc::c_ulong| F::from_bits_retain(bits as _);
    Some(match word {
        "defaults" | "rw" => (false, f(libc::MS_RDONLY)),
        "ro" => (true, f(libc::MS_RDONLY)),
        "suid" => (false, f(libc::MS_NOSUID)),
        "nosuid" => (true, f(libc::MS_NOSUID)),
        "dev" => (false, f(libc::MS_NODEV)),
        "nodev" => (true, f(libc::MS_NODEV)),
        "exec" => (false, f(libc::MS_NOEXEC)),
        "noexec" => (true, f(libc::MS_NOEXEC)),
        "sync" => (true, f(libc::MS_SYNCHRONOUS)),
        "async" => (false, f(libc::MS_SYNCHRONOUS)),
        "dirsync" => (true, f(libc::MS_DIRSYNC)),
        "remount" => (true, f(libc::MS_REMOUNT)),
        "mand" => (true, f(libc::MS_MANDLOCK)),
        "nomand" => (false, f(libc::MS_MANDLOCK)),
        "atime" => (false, f(libc::MS_NOATIME)),
        "noatime" => (true, f(libc::MS_NOATIME)),
        "diratime" => (false, f(libc::MS_NODIRATIME)),
        "nodiratime" => (true, f(libc::MS_NODIRATIME)),
        "relatime" => (true, f(libc::MS_RELATIME)),
        "norelatime" => (false, f(libc::MS_RELATIME)),
        "strictatime" => (true, f(libc::MS_STRICTATIME)),
        "nostrictatime" => (false, f(libc::MS_STRICTATIME)),
        "lazytime" => (true, f(libc::MS_LAZYTIME)),
        "nolazytime" => (false, f(libc::MS_LAZYTIME)),
        "iversion" => (true, f(libc::MS_I_VERSION)),
        "noiversion" => (false, f(libc::MS_I_VERSION)),
        "silent" => (true, f(libc::MS_SILENT)),
        "loud" => (false, f(libc::MS_SILENT)),
        _ => return None,
    })
}

/// Recursive mount attributes (`rro`, `rnosuid`, ...) that runc accepts.
const RECURSIVE_ATTRS: &[&str] = &[
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rrelatime",
    "rnorelatime",
    "rnoatime",
    "ratime",
    "rstrictatime",
    "rnostrictatime",
    "rnosymfollow",
    "rsymfollow",
];

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MountFlags::empty(),
            cleared: MountFlags::empty(),
            propagation: Vec::new(),
            data: String::new(),
            bind: false,
            recursive_bind: false,
            recursive_attrs: Vec::new(),
            tmpcopyup: false,
            idmap: false,
            recursive_idmap: false,
        }
    }
}

impl MountOptions {
    pub fn parse(options: &[String]) -> Result<MountOptions, String> {
        let mut out = MountOptions::default();
        let mut data = Vec::new();
        for opt in options {
            let word = opt.as_str();
            if let Some((set, flag)) = flag_option(word) {
                if set {
                    out.flags |= flag;
                    out.cleared -= flag;
                } else {
                    out.flags -= flag;
                    out.cleared |= flag;
                }
            } else if let Some(p) = propagation_flag(word) {
                out.propagation.push(p);
            } else if word == "bind" {
                out.bind = true;
            } else if word == "rbind" {
                out.bind = true;
                out.recursive_bind = true;
            } else if RECURSIVE_ATTRS.contains(&word) {
                out.recursive_attrs.push(word.to_string());
            } else if word == "tmpcopyup" {
                out.tmpcopyup = true;
            } else if word == "idmap" || word == "ridmap" {
                out.idmap = true;
                out.recursive_bind |= word == "ridmap";
                out.recursive_idmap |= word == "ridmap";
            } else if word == "nosymfollow" {
                out.flags |= MountFlags::from_bits_retain(libc::MS_NOSYMFOLLOW as _);
            } else if word == "acl" || word == "noacl" {
                // Filesystem ACL switches have no mount flag on Linux; the
                // filesystem reads them from data.
                data.push(word);
            } else if word.is_empty() {
                return Err("an empty option".into());
            } else {
                data.push(word);
            }
        }
        out.data = data.join(",");
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(words: &[&str]) -> MountOptions {
        MountOptions::parse(&words.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_and_data_split() {
        let o = opts(&["nosuid", "noexec", "mode=755", "size=64k"]);
        assert!(o.flags.contains(MountFlags::NOSUID));
        assert!(o.flags.contains(MountFlags::NOEXEC));
        assert_eq!(o.data, "mode=755,size=64k");
    }

    #[test]
    fn later_options_win() {
        let o = opts(&["ro", "rw"]);
        assert!(!o.flags.contains(MountFlags::RDONLY));
        assert!(o.cleared.contains(MountFlags::RDONLY));
    }

    #[test]
    fn bind_and_propagation() {
        let o = opts(&["rbind", "rprivate", "ro"]);
        assert!(o.bind && o.recursive_bind);
        assert_eq!(o.propagation.len(), 1);
        assert!(o.flags.contains(MountFlags::RDONLY));
    }

    #[test]
    fn empty_option_is_an_error() {
        assert!(MountOptions::parse(&["".to_string()]).is_err());
    }
}
