//! User namespaces made only to carry an id mapping for idmapped mounts
//! (OCI 1.2 `mounts[].uidMappings`/`gidMappings`).
//!
//! mount_setattr(MOUNT_ATTR_IDMAP) takes a user namespace fd. A mount with
//! its own mappings gets a namespace made for it here, in the parent: a
//! child is cloned into a new user namespace, the maps are written, the
//! namespace is opened through /proc, and the child exits. The open fd keeps
//! the namespace alive for as long as the init needs it.

use std::os::fd::{AsFd, OwnedFd};

use serde::Deserialize;

use crate::error::{Error, IoContext, Result};

/// One mapping line as OCI writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct IdMapping {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

/// A mount's own mappings, read from the raw config (oci-spec 0.8 has no
/// fields for them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountIdMap {
    pub uid: Vec<IdMapping>,
    pub gid: Vec<IdMapping>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    mounts: Vec<RawMount>,
}

#[derive(Deserialize)]
struct RawMount {
    #[serde(default, rename = "uidMappings")]
    uid_mappings: Vec<IdMapping>,
    #[serde(default, rename = "gidMappings")]
    gid_mappings: Vec<IdMapping>,
}

/// Per mount (in config order): its own id mappings, if it has any.
pub fn mount_idmaps(config_json: &[u8]) -> std::result::Result<Vec<Option<MountIdMap>>, String> {
    let raw: RawConfig = serde_json::from_slice(config_json).map_err(|e| format!("mounts: {e}"))?;
    raw.mounts
        .into_iter()
        .enumerate()
        .map(
            |(i, m)| match (m.uid_mappings.is_empty(), m.gid_mappings.is_empty()) {
                (true, true) => Ok(None),
                (false, false) => Ok(Some(MountIdMap {
                    uid: m.uid_mappings,
                    gid: m.gid_mappings,
                })),
                _ => Err(format!(
                    "mounts[{i}]: uidMappings and gidMappings must be given together"
                )),
            },
        )
        .collect()
}

fn map_text(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// A user namespace with exactly these mappings, as an fd.
pub fn userns_with(map: &MountIdMap) -> Result<OwnedFd> {
    let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .ctx(|| "creating a pipe for the idmap helper")?;
    let forked = berth_sys::process::clone3(berth_sys::process::CloneArgs {
        flags: libc::CLONE_NEWUSER as u64,
        into_cgroup: None,
    })
    .ctx(|| "creating a user namespace for an idmapped mount")?;
    let child = match forked {
        berth_sys::process::Forked::Child => {
            // Wait until the parent has what it needs, then leave.
            drop(writer);
            let mut buf = [0u8; 1];
            let _ = rustix::io::read(&reader, &mut buf);
            berth_sys::process::exit_now(0)
        }
        berth_sys::process::Forked::Parent { child } => child,
    };
    drop(reader);
    let result = (|| -> Result<OwnedFd> {
        std::fs::write(format!("/proc/{child}/uid_map"), map_text(&map.uid))
            .ctx(|| "mounts[].uidMappings: writing the idmap namespace's uid_map")?;
        std::fs::write(format!("/proc/{child}/setgroups"), "deny").ok();
        std::fs::write(format!("/proc/{child}/gid_map"), map_text(&map.gid))
            .ctx(|| "mounts[].gidMappings: writing the idmap namespace's gid_map")?;
        let ns = std::fs::File::open(format!("/proc/{child}/ns/user"))
            .ctx(|| "opening the idmap user namespace")?;
        Ok(OwnedFd::from(ns))
    })();
    drop(writer);
    if let Some(p) = rustix::process::Pid::from_raw(child) {
        let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
    }
    result
}

/// A bind mount's source as a detached mount tree (open_tree with
/// OPEN_TREE_CLONE) made by the parent; the init attaches it with
/// move_mount. A detached tree belongs to no mount namespace, so it can be
/// attached in the container's new one, which a plain fd of the source
/// could not be bound from.
#[derive(Debug)]
pub struct BindSource {
    pub tree: OwnedFd,
}

/// The sources of a bundle's bind mounts (None for other mounts), opened
/// here in the parent, which has the host's privileges: an init in a new
/// user namespace may be unable to reach a source, and creating an
/// idmapped mount needs CAP_SYS_ADMIN over the filesystem's user
/// namespace. A mount is idmapped when it has its own mappings, or the
/// `idmap`/`ridmap` option (then it takes the container's mappings).
pub fn prepare_sources(bundle: &crate::config::Bundle) -> Result<Vec<Option<BindSource>>> {
    let linux = bundle.spec.linux().clone().unwrap_or_default();
    let container_map = MountIdMap {
        uid: to_mappings(linux.uid_mappings().as_deref().unwrap_or_default()),
        gid: to_mappings(linux.gid_mappings().as_deref().unwrap_or_default()),
    };
    let joined_userns = linux.namespaces().iter().flatten().find_map(|n| {
        (n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
            .then(|| n.path().clone())
            .flatten()
    });
    let joined_userns = joined_userns.as_deref();
    let mut trees = Vec::new();
    for (i, m) in bundle.spec.mounts().iter().flatten().enumerate() {
        let opts = crate::mounts::MountOptions::parse(m.options().as_deref().unwrap_or_default())
            .map_err(|e| Error::InvalidArgument(format!("mounts[{i}].options: {e}")))?;
        let own = bundle.mount_idmaps.get(i).cloned().flatten();
        let is_bind = opts.bind || m.typ().as_deref() == Some("bind");
        if !is_bind {
            trees.push(None);
            continue;
        }
        if !(opts.idmap || own.is_some()) {
            // A source inside the rootfs may be made by an earlier mount:
            // the init opens it at its turn, as runc does.
            let inside_rootfs = m
                .source()
                .as_ref()
                .is_some_and(|src| bundle.dir.join(src).starts_with(&bundle.rootfs));
            if inside_rootfs {
                trees.push(None);
                continue;
            }
            let Some(source) = m.source().as_ref() else {
                return Err(Error::InvalidArgument(format!(
                    "mounts[{i}]: a bind mount needs a source"
                )));
            };
            let source = bundle.dir.join(source);
            let path =
                std::ffi::CString::new(source.as_os_str().as_encoded_bytes()).map_err(|_| {
                    Error::InvalidArgument(format!("mounts[{i}].source has a NUL byte"))
                })?;
            let tree = berth_sys::mount::open_tree_clone(&path, opts.recursive_bind)
                .ctx(|| format!("mounts[{i}]: opening bind source {source:?}"))?;
            trees.push(Some(BindSource { tree }));
            continue;
        }
        let source = m.source().as_ref().ok_or_else(|| {
            Error::InvalidArgument(format!("mounts[{i}]: an idmapped mount needs a source"))
        })?;
        let source = bundle.dir.join(source);
        // The mount's own mappings, else the container's: those it
        // declares, or those of the user namespace it joins.
        let userns = match own {
            Some(map) => userns_with(&map)?,
            None if !container_map.uid.is_empty() => userns_with(&container_map)?,
            None => match joined_userns {
                Some(path) => rustix::fs::open(
                    path,
                    rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )
                .ctx(|| {
                    format!("mounts[{i}]: opening the user namespace {path:?} to id-map with")
                })?,
                None => {
                    return Err(Error::InvalidArgument(format!(
                        "mounts[{i}]: the idmap option needs uidMappings/gidMappings on the mount \
                         or a user namespace with mappings for the container"
                    )))
                }
            },
        };
        let path = std::ffi::CString::new(source.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::InvalidArgument(format!("mounts[{i}].source has a NUL byte")))?;
        let tree = berth_sys::mount::open_tree_clone(&path, opts.recursive_bind)
            .ctx(|| format!("mounts[{i}]: cloning {source:?} for an idmapped mount"))?;
        berth_sys::mount::set_idmap(tree.as_fd(), userns.as_fd(), opts.recursive_idmap).ctx(|| {
            format!("mounts[{i}]: id-mapping {source:?} (the filesystem or kernel may not support idmapped mounts)")
        })?;
        trees.push(Some(BindSource { tree }));
    }
    Ok(trees)
}

fn to_mappings(maps: &[oci_spec::runtime::LinuxIdMapping]) -> Vec<IdMapping> {
    maps.iter()
        .map(|m| IdMapping {
            container_id: m.container_id(),
            host_id: m.host_id(),
            size: m.size(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_mount_mappings_are_read_in_order() {
        let json = br#"{"mounts":[{"destination":"/a"},
            {"destination":"/b","uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
             "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]}]}"#;
        let maps = mount_idmaps(json).unwrap();
        assert_eq!(maps.len(), 2);
        assert!(maps[0].is_none());
        assert_eq!(maps[1].as_ref().unwrap().uid[0].host_id, 100000);
    }

    #[test]
    fn half_a_mapping_is_an_error() {
        let json = br#"{"mounts":[{"destination":"/b","uidMappings":[{"containerID":0,"hostID":1,"size":1}]}]}"#;
        assert!(mount_idmaps(json).unwrap_err().contains("together"));
    }
}
