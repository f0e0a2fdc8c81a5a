//! The container's mounts: docker's defaults (/proc, /dev, /dev/pts, /sys,
//! /sys/fs/cgroup, /dev/mqueue, /dev/shm), the /etc files, HostConfig.Binds,
//! HostConfig.Tmpfs and HostConfig.Mounts (bind, volume, tmpfs), parsed and
//! checked as docker's volume parser does. Volumes are only requests here:
//! the daemon names, creates and records them at create time and hands the
//! resolved host directories to [`build`] as [`ResolvedMount`]s.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use berth_api::models::{
    HostConfig, Mount as ApiMount, MountBindOptionsPropagationEnum, MountType,
};
use oci_spec::runtime::Mount;

use super::plan::{IpcMode, Plan};
use super::{EtcFiles, SpecError};

/// How a bind mount is made read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadOnly {
    No,
    /// Read-only, how deep left to the daemon: `ro` (the top mount only)
    /// until [`super::plan::Plan::read_only_recursively`] makes it `rro`.
    Yes,
    /// `ro`, the top mount only, whatever the daemon's default
    /// (ReadOnlyNonRecursive).
    TopOnly,
    /// `rro` (every submount, ReadOnlyForceRecursive).
    Recursive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Bind {
        source: String,
        recursive: bool,
        readonly: ReadOnly,
        propagation: String,
        /// Binds create a missing source directory, as docker does;
        /// Mounts require it to exist.
        create_source: bool,
    },
    Tmpfs {
        options: Vec<String>,
    },
    Volume(VolumeRequest),
}

/// A volume a request asks for (`-v name:/path`, `-v /path`, a `Mounts`
/// entry of type volume).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeRequest {
    /// Empty for an anonymous volume.
    pub name: String,
    pub readonly: bool,
    /// Copy the image's content at the destination into the volume while
    /// it is empty (docker's default; `nocopy`/`volume-nocopy` turn it off).
    pub copy: bool,
    /// docker's `Mode` in inspect: the mode words given, else "z".
    pub mode: String,
    /// `VolumeOptions.Labels` and `DriverConfig`, for a volume made now.
    pub labels: BTreeMap<String, String>,
    pub driver: String,
    pub driver_opts: BTreeMap<String, String>,
}

/// A directory the daemon resolved for a mount point the spec cannot name
/// itself (a volume's `_data`, a bind inherited through `VolumesFrom`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedMount {
    pub destination: String,
    pub source: PathBuf,
    pub readonly: bool,
    /// `rprivate` unless inherited otherwise.
    pub propagation: String,
}

/// A mount the request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserMount {
    /// Absolute and clean.
    pub destination: String,
    pub kind: Kind,
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];
const DEFAULT_PROPAGATION: &str = "rprivate";

/// Checks a container path: absolute, not "/", no "..". Returns it clean.
fn destination(p: &str) -> Result<String, String> {
    if !p.starts_with('/') {
        return Err(format!(
            "invalid mount path: '{p}' mount path must be absolute"
        ));
    }
    if p.split('/').any(|c| c == "..") {
        return Err(format!(
            "invalid mount path: '{p}' mount path must not contain '..'"
        ));
    }
    let clean = super::env::clean(p);
    if clean == "/" {
        return Err("invalid specification: destination can't be '/'".to_string());
    }
    Ok(clean)
}

/// docker's linuxValidMountMode: comma-separated words, at most one of
/// each kind (rw/ro, z/Z, propagation, nocopy, consistency).
fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut counts = [0u32; 5];
    for word in mode.split(',') {
        let kind = match word {
            "rw" | "ro" => 0,
            "z" | "Z" => 1,
            w if PROPAGATIONS.contains(&w) => 2,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return false,
        };
        counts[kind] += 1;
    }
    counts.iter().all(|c| *c <= 1)
}

/// One HostConfig.Binds entry.
fn parse_bind(raw: &str) -> Result<UserMount, SpecError> {
    let spec_error = || SpecError::invalid(format!("invalid volume specification: '{raw}'"));
    let parts: Vec<&str> = raw.splitn(4, ':').collect();
    if parts[0].is_empty() {
        return Err(spec_error());
    }
    let (source, target, mode) = match parts.as_slice() {
        [target] => ("", *target, ""),
        [_, mode] if valid_mode(mode) => return Err(spec_error()),
        [source, target] => (*source, *target, ""),
        [source, target, mode] => (*source, *target, *mode),
        _ => return Err(spec_error()),
    };
    if !valid_mode(mode) {
        return Err(SpecError::invalid(format!("invalid mode: {mode}")));
    }
    let bind = source.starts_with('/');
    let kind = if bind { "bind" } else { "volume" };
    let target = destination(target).map_err(|e| {
        SpecError::invalid(format!(
            "invalid volume specification: '{raw}': invalid mount config for type \"{kind}\": {e}"
        ))
    })?;
    let words: Vec<&str> = mode.split(',').collect();
    if !bind {
        return Ok(UserMount {
            destination: target,
            kind: Kind::Volume(VolumeRequest {
                name: source.to_string(),
                readonly: words.contains(&"ro"),
                copy: !words.contains(&"nocopy"),
                mode: if mode.is_empty() { "z" } else { mode }.to_string(),
                ..VolumeRequest::default()
            }),
        });
    }
    let propagation = words
        .iter()
        .find(|w| PROPAGATIONS.contains(w))
        .copied()
        .unwrap_or(DEFAULT_PROPAGATION);
    Ok(UserMount {
        destination: target,
        kind: Kind::Bind {
            source: super::env::clean(source),
            recursive: true,
            readonly: if words.contains(&"ro") {
                ReadOnly::Yes
            } else {
                ReadOnly::No
            },
            propagation: propagation.to_string(),
            create_source: true,
        },
    })
}

/// moby's MergeTmpfsOptions: later options win over earlier ones of the
/// same flag or data key; only tmpfs's data keys are accepted.
fn merge_tmpfs_options(options: &[String]) -> Result<Vec<String>, SpecError> {
    fn flag_key(o: &str) -> Option<&'static str> {
        Some(match o {
            "ro" | "rw" => "rdonly",
            "suid" | "nosuid" => "nosuid",
            "dev" | "nodev" => "nodev",
            "exec" | "noexec" => "noexec",
            "sync" | "async" => "sync",
            "dirsync" => "dirsync",
            "remount" => "remount",
            "mand" | "nomand" => "mand",
            "atime" | "noatime" => "noatime",
            "diratime" | "nodiratime" => "nodiratime",
            "relatime" | "norelatime" => "relatime",
            "strictatime" | "nostrictatime" => "strictatime",
            "bind" | "rbind" | "unbindable" | "runbindable" | "private" | "rprivate" | "shared"
            | "rshared" | "slave" | "rslave" => "propagation",
            _ => return None,
        })
    }
    const DATA: &[&str] = &[
        "",
        "size",
        "mode",
        "uid",
        "gid",
        "nr_inodes",
        "nr_blocks",
        "mpol",
    ];
    let mut flags = HashSet::new();
    let mut data = HashSet::new();
    let mut out = Vec::new();
    for o in options.iter().rev() {
        if o == "defaults" {
            continue;
        }
        if let Some(key) = flag_key(o) {
            if flags.insert(key) {
                out.push(o.clone());
            }
            continue;
        }
        let key = match o.split_once('=') {
            Some((k, _)) if DATA.contains(&k) => k,
            Some((k, _)) => return Err(SpecError::invalid(format!("invalid tmpfs option {k:?}"))),
            None => return Err(SpecError::invalid(format!("invalid tmpfs option {o:?}"))),
        };
        if data.insert(key) {
            out.push(o.clone());
        }
    }
    out.reverse();
    Ok(out)
}

/// A tmpfs's options: docker's noexec,nosuid,nodev,rprivate then `data`.
fn tmpfs_options(data: &str) -> Result<Vec<String>, SpecError> {
    let mut options: Vec<String> = ["noexec", "nosuid", "nodev", DEFAULT_PROPAGATION]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if !data.is_empty() {
        options.extend(data.split(',').map(str::to_string));
    }
    merge_tmpfs_options(&options)
}

fn mount_error(kind: &str, e: impl std::fmt::Display) -> SpecError {
    SpecError::invalid(format!("invalid mount config for type \"{kind}\": {e}"))
}

/// One HostConfig.Mounts entry (docker's ParseMountSpec).
fn parse_api_mount(m: &ApiMount) -> Result<UserMount, SpecError> {
    let kind = m.typ.map(|t| t.to_string()).unwrap_or_default();
    let err = |e: &str| mount_error(&kind, e);
    let extra = |field: &str| err(&format!("field {field} must not be specified"));
    let typ = m.typ;
    if typ != Some(MountType::BIND) && m.bind_options.is_some() {
        return Err(extra("BindOptions"));
    }
    if typ != Some(MountType::VOLUME) && m.volume_options.is_some() {
        return Err(extra("VolumeOptions"));
    }
    if typ != Some(MountType::IMAGE) && m.image_options.is_some() {
        return Err(extra("ImageOptions"));
    }
    if typ != Some(MountType::TMPFS) && m.tmpfs_options.is_some() {
        return Err(extra("TmpfsOptions"));
    }
    let target = m.target.as_deref().unwrap_or("");
    if target.is_empty() {
        return Err(err("field Target must not be empty"));
    }
    let target = destination(target).map_err(|e| err(&e))?;
    let source = m.source.as_deref().unwrap_or("");
    let readonly = m.read_only.unwrap_or(false);
    match typ {
        Some(MountType::BIND) => {
            if source.is_empty() {
                return Err(err("field Source must not be empty"));
            }
            if !source.starts_with('/') {
                return Err(err(&format!(
                    "invalid mount path: '{source}' mount path must be absolute"
                )));
            }
            let opts = m.bind_options.clone().unwrap_or_default();
            let create = opts.create_mountpoint.unwrap_or(false);
            if !create && !Path::new(source).exists() {
                return Err(err(&format!("bind source path does not exist: {source}")));
            }
            let non_rec = opts.read_only_non_recursive.unwrap_or(false);
            let force_rec = opts.read_only_force_recursive.unwrap_or(false);
            if non_rec && force_rec {
                return Err(SpecError::invalid(
                    "mount options conflict: ReadOnlyNonRecursive && ReadOnlyForceRecursive",
                ));
            }
            let propagation = match opts.propagation {
                None | Some(MountBindOptionsPropagationEnum::EMPTY) => {
                    DEFAULT_PROPAGATION.to_string()
                }
                Some(p) => p.to_string(),
            };
            Ok(UserMount {
                destination: target,
                kind: Kind::Bind {
                    source: super::env::clean(source),
                    recursive: !opts.non_recursive.unwrap_or(false),
                    readonly: match (readonly, force_rec, non_rec) {
                        (false, _, _) => ReadOnly::No,
                        (true, true, _) => ReadOnly::Recursive,
                        (true, false, true) => ReadOnly::TopOnly,
                        (true, false, false) => ReadOnly::Yes,
                    },
                    propagation,
                    create_source: create,
                },
            })
        }
        Some(MountType::TMPFS) => {
            if !source.is_empty() {
                return Err(extra("Source"));
            }
            let mut data = Vec::new();
            if readonly {
                data.push("ro".to_string());
            }
            let t = m.tmpfs_options.clone().unwrap_or_default();
            if let Some(mode) = t.mode.filter(|m| *m != 0) {
                data.push(format!("mode={mode:o}"));
            }
            if let Some(size) = t.size_bytes.filter(|s| *s != 0) {
                let (mut n, mut suffix) = (size, "");
                for (s, d) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
                    if size % d == 0 {
                        n = size / d;
                        suffix = s;
                        break;
                    }
                }
                data.push(format!("size={n}{suffix}"));
            }
            for opt in t.options.iter().flatten() {
                match opt.as_slice() {
                    [k] if k == "exec" || k == "noexec" => data.push(k.clone()),
                    [k, v] if k == "exec" || k == "noexec" => data.push(format!("{k}={v}")),
                    [k] | [k, _] => return Err(err(&format!("invalid option: {k}"))),
                    _ => return Err(err("invalid option array length")),
                }
            }
            Ok(UserMount {
                destination: target,
                kind: Kind::Tmpfs {
                    options: tmpfs_options(&data.join(","))?,
                },
            })
        }
        Some(MountType::VOLUME) => {
            if source.is_empty() && readonly {
                return Err(err(
                    "must not set ReadOnly mode when using anonymous volumes",
                ));
            }
            let opts = m.volume_options.clone().unwrap_or_default();
            if opts.subpath.as_deref().is_some_and(|p| !p.is_empty()) {
                return Err(SpecError::not_implemented(
                    "HostConfig.Mounts",
                    "volume subpaths (VolumeOptions.Subpath) are",
                ));
            }
            let driver = opts.driver_config.unwrap_or_default();
            Ok(UserMount {
                destination: target,
                kind: Kind::Volume(VolumeRequest {
                    name: source.to_string(),
                    readonly,
                    copy: !opts.no_copy.unwrap_or(false),
                    mode: "z".to_string(),
                    labels: opts.labels.unwrap_or_default().into_iter().collect(),
                    driver: driver.name.unwrap_or_default(),
                    driver_opts: driver.options.unwrap_or_default().into_iter().collect(),
                }),
            })
        }
        Some(MountType::IMAGE) => Err(SpecError::not_implemented(
            "HostConfig.Mounts",
            "image mounts are",
        )),
        Some(MountType::CLUSTER) | Some(MountType::NPIPE) | None => Err(err("mount type unknown")),
    }
}

/// The request's mounts (Binds, then Tmpfs, then Mounts) and the rootfs
/// propagation shared or slave binds need.
pub(crate) fn parse(hc: &HostConfig) -> Result<(Vec<UserMount>, Option<String>), SpecError> {
    let mut out: Vec<UserMount> = Vec::new();
    let mut seen = HashSet::new();
    let tmpfs_dests: HashSet<String> = hc
        .tmpfs
        .iter()
        .flatten()
        .filter_map(|(d, _)| destination(d).ok())
        .collect();
    for raw in hc.binds.iter().flatten() {
        let m = parse_bind(raw)?;
        if !seen.insert(m.destination.clone()) || tmpfs_dests.contains(&m.destination) {
            return Err(SpecError::invalid(format!(
                "Duplicate mount point: {}",
                m.destination
            )));
        }
        out.push(m);
    }
    let mut tmpfs: Vec<(&String, &String)> = hc.tmpfs.iter().flatten().collect();
    tmpfs.sort();
    for (dest, data) in tmpfs {
        let d = destination(dest).map_err(SpecError::invalid)?;
        out.push(UserMount {
            destination: d,
            kind: Kind::Tmpfs {
                options: tmpfs_options(data)?,
            },
        });
    }
    for m in hc.mounts.iter().flatten() {
        let parsed = parse_api_mount(m)?;
        if !seen.insert(parsed.destination.clone()) {
            return Err(SpecError::invalid(format!(
                "Duplicate mount point: {}",
                m.target.as_deref().unwrap_or_default()
            )));
        }
        out.push(parsed);
    }
    // Shared binds need a shared rootfs, slave ones at least a slave one.
    let mut propagation: Option<String> = None;
    for m in &out {
        if let Kind::Bind { propagation: p, .. } = &m.kind {
            match p.as_str() {
                "shared" | "rshared" => propagation = Some("shared".into()),
                "slave" | "rslave" if propagation.is_none() => propagation = Some("rslave".into()),
                _ => {}
            }
        }
    }
    Ok((out, propagation))
}

/// HostConfig.VolumesFrom (`container[:ro|rw]`), as docker's
/// parseVolumesFrom: (container, writable). Propagation and copy words are
/// refused: the mounts keep their own.
pub(crate) fn volumes_from(hc: &HostConfig) -> Result<Vec<(String, bool)>, SpecError> {
    let mut out = Vec::new();
    for raw in hc.volumes_from.iter().flatten() {
        let (id, mode) = raw.split_once(':').unwrap_or((raw, "rw"));
        let words: Vec<&str> = mode.split(',').collect();
        let bad = mode.is_empty()
            || !valid_mode(mode)
            || words
                .iter()
                .any(|w| PROPAGATIONS.contains(w) || *w == "nocopy");
        if bad {
            return Err(SpecError::invalid(format!("invalid mode: {mode}")));
        }
        if id.is_empty() {
            return Err(SpecError::invalid(format!(
                "invalid volumes-from specification: '{raw}'"
            )));
        }
        out.push((id.to_string(), !words.contains(&"ro")));
    }
    Ok(out)
}

/// The anonymous volumes of Config.Volumes and the image's VOLUMEs, by
/// destination, sorted, leaving out those another mount (or a tmpfs)
/// already covers, as docker does.
pub(crate) fn anonymous(
    body: &berth_api::models::ContainerCreateBody,
    image: &berth_image::ImageConfig,
    mounts: &[UserMount],
    hc: &HostConfig,
) -> Result<Vec<String>, SpecError> {
    let image_volumes = image.config.as_ref().and_then(|c| c.volumes.as_ref());
    let mut out = Vec::new();
    let keys = body
        .volumes
        .iter()
        .flatten()
        .chain(image_volumes.into_iter().flat_map(|v| v.keys()));
    for raw in keys {
        let dest = destination(raw).map_err(|e| {
            SpecError::invalid(format!(
                "invalid volume specification: '{raw}': invalid mount config for type \"volume\": {e}"
            ))
        })?;
        let covered = mounts.iter().any(|m| m.destination == dest)
            || hc
                .tmpfs
                .iter()
                .flatten()
                .any(|(d, _)| super::env::clean(d) == dest);
        if !covered && !out.contains(&dest) {
            out.push(dest);
        }
    }
    out.sort();
    Ok(out)
}

/// A bind mount as docker's inspect shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindPoint {
    pub destination: String,
    pub source: String,
    pub readonly: bool,
    /// The mode words of a Binds entry ("" for Mounts).
    pub mode: String,
    pub propagation: String,
}

/// What a create request asks of the daemon's volume service, and what
/// inspect's `Mounts` shows of its own mounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests {
    /// Volumes of Binds and Mounts: (destination, request), in order.
    pub volumes: Vec<(String, VolumeRequest)>,
    /// Binds and Mounts of type bind.
    pub binds: Vec<BindPoint>,
    /// Destinations of Mounts of type tmpfs (inspect lists those, not
    /// HostConfig.Tmpfs).
    pub tmpfs: Vec<String>,
    /// Config.Volumes and the image's VOLUMEs no other mount covers.
    pub anonymous: Vec<String>,
    /// HostConfig.VolumesFrom: (container, writable).
    pub volumes_from: Vec<(String, bool)>,
}

/// The request's mounts as [`Requests`], checked as at create.
pub fn requests(
    body: &berth_api::models::ContainerCreateBody,
    image: &berth_image::ImageConfig,
) -> Result<Requests, SpecError> {
    let default_hc = HostConfig::default();
    let hc = body.host_config.as_ref().unwrap_or(&default_hc);
    let (mounts, _) = parse(hc)?;
    let bind_modes: Vec<String> = hc
        .binds
        .iter()
        .flatten()
        .map(|raw| raw.splitn(3, ':').nth(2).unwrap_or("").to_string())
        .collect();
    let mut out = Requests {
        anonymous: anonymous(body, image, &mounts, hc)?,
        volumes_from: volumes_from(hc)?,
        ..Requests::default()
    };
    // Binds come first in `mounts`, one each, in order.
    for (i, m) in mounts.into_iter().enumerate() {
        match m.kind {
            Kind::Volume(v) => out.volumes.push((m.destination, v)),
            Kind::Bind {
                source,
                readonly,
                propagation,
                ..
            } => out.binds.push(BindPoint {
                destination: m.destination,
                source,
                readonly: readonly != ReadOnly::No,
                mode: bind_modes.get(i).cloned().unwrap_or_default(),
                propagation,
            }),
            Kind::Tmpfs { .. } => {
                let from_mounts = hc.mounts.iter().flatten().any(|a| {
                    a.target.as_deref().map(super::env::clean) == Some(m.destination.clone())
                });
                if from_mounts {
                    out.tmpfs.push(m.destination);
                }
            }
        }
    }
    Ok(out)
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|s| s.to_string()).collect()));
    m
}

/// The init binary, read-only at [`super::CONTAINER_INIT_PATH`] (docker's
/// options: `bind`, `ro`).
pub(crate) fn init_mount(source: &Path) -> Mount {
    mount(
        super::CONTAINER_INIT_PATH,
        "bind",
        &source.to_string_lossy(),
        &["bind", "ro"],
    )
}

fn bind(dest: &str, source: &str, recursive: bool, readonly: ReadOnly, propagation: &str) -> Mount {
    let mut opts = vec![if recursive { "rbind" } else { "bind" }];
    match readonly {
        ReadOnly::No => {}
        ReadOnly::Yes | ReadOnly::TopOnly => opts.push("ro"),
        ReadOnly::Recursive => opts.push("rro"),
    }
    opts.push(propagation);
    mount(dest, "bind", source, &opts)
}

/// Creates the missing source directories of Binds (docker does, for the
/// legacy `-v /host:/ctr` form; Mounts must name an existing source).
pub(crate) fn prepare(plan: &Plan) -> Result<(), SpecError> {
    for m in &plan.mounts {
        if let Kind::Bind {
            source,
            create_source: true,
            ..
        } = &m.kind
        {
            if std::fs::symlink_metadata(source).is_err() {
                std::fs::create_dir_all(source).map_err(|e| {
                    SpecError::io(format!("creating the bind mount source {source}"), e)
                })?;
            }
        }
    }
    Ok(())
}

/// Every mount of the spec, in order: docker's defaults (minus those a
/// request mount replaces), then the request's mounts (its volumes as the
/// daemon resolved them, in `resolved`) and the /etc files sorted parents
/// first.
pub(crate) fn build(
    plan: &Plan,
    etc: &EtcFiles,
    resolved: &[ResolvedMount],
    shm: Option<&Path>,
) -> Vec<Mount> {
    let ro_etc = if plan.readonly_rootfs {
        ReadOnly::Yes
    } else {
        ReadOnly::No
    };
    let mut user: Vec<Mount> = Vec::new();
    let requested: HashSet<&str> = plan
        .mounts
        .iter()
        .map(|m| m.destination.as_str())
        .chain(resolved.iter().map(|r| r.destination.as_str()))
        .collect();
    for (dest, source) in [
        ("/etc/resolv.conf", &etc.resolv_conf),
        ("/etc/hostname", &etc.hostname),
        ("/etc/hosts", &etc.hosts),
    ] {
        if !requested.contains(dest) {
            user.push(bind(
                dest,
                &source.to_string_lossy(),
                true,
                ro_etc,
                DEFAULT_PROPAGATION,
            ));
        }
    }
    // A /dev/shm from the host: the host's own, or a shareable one (the
    // container's or the one it joins, see containers::shm).
    let shm_source = match plan.ipc {
        IpcMode::Host => Some(Path::new("/dev/shm")),
        IpcMode::Shareable | IpcMode::Joined => shm,
        IpcMode::Private | IpcMode::None => None,
    };
    if let Some(source) = shm_source.filter(|_| !requested.contains("/dev/shm")) {
        user.push(bind(
            "/dev/shm",
            &source.to_string_lossy(),
            true,
            ReadOnly::No,
            DEFAULT_PROPAGATION,
        ));
    }
    for r in resolved {
        let readonly = if r.readonly {
            ReadOnly::Yes
        } else {
            ReadOnly::No
        };
        let source = r.source.to_string_lossy();
        user.push(bind(
            &r.destination,
            &source,
            true,
            readonly,
            &r.propagation,
        ));
    }
    for m in &plan.mounts {
        user.push(match &m.kind {
            Kind::Bind {
                source,
                recursive,
                readonly,
                propagation,
                ..
            } => bind(&m.destination, source, *recursive, *readonly, propagation),
            Kind::Tmpfs { options } => {
                let opts: Vec<&str> = options.iter().map(String::as_str).collect();
                mount(&m.destination, "tmpfs", "tmpfs", &opts)
            }
            // Resolved by the daemon: in `resolved`.
            Kind::Volume(_) => continue,
        });
    }
    // Parents before children (docker's sortMounts: by depth, stable).
    user.sort_by_key(|m| m.destination().to_string_lossy().matches('/').count());
    let user_dests: HashSet<PathBuf> = user.iter().map(|m| m.destination().clone()).collect();
    let dev_mounted = user_dests.contains(Path::new("/dev"));

    let shm_size = format!("size={}", plan.shm_size);
    let defaults = [
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        ),
    ];
    let mut out: Vec<Mount> = defaults
        .into_iter()
        .filter(|m| {
            let d = m.destination();
            let replaced = user_dests.contains(d);
            let under_user_dev = dev_mounted && d.starts_with("/dev") && d != Path::new("/dev");
            let no_shm = d == Path::new("/dev/shm") && plan.ipc == IpcMode::None;
            !(replaced || under_user_dev || no_shm)
        })
        .collect();
    for m in &mut out {
        let d = m.destination().to_string_lossy().into_owned();
        let opts = m.options_mut().get_or_insert_with(Vec::new);
        let keep_rw =
            ["/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev"].contains(&d.as_str());
        if plan.readonly_rootfs && !keep_rw && !opts.iter().any(|o| o == "ro") {
            opts.push("ro".into());
        }
        if (d == "/sys" && plan.privileged) || (d == "/sys/fs/cgroup" && plan.writable_cgroups) {
            opts.retain(|o| o != "ro");
        }
    }
    out.extend(user);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binds(v: &[&str]) -> HostConfig {
        HostConfig {
            binds: Some(v.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    fn err(hc: &HostConfig) -> SpecError {
        parse(hc).unwrap_err()
    }

    #[test]
    fn binds_parse_as_docker() {
        let (m, prop) = parse(&binds(&[
            "/host:/ctr",
            "/a/../b:/x/./y:ro,Z",
            "/s:/s:rshared",
        ]))
        .unwrap();
        assert_eq!(m[0].destination, "/ctr");
        assert_eq!(
            m[0].kind,
            Kind::Bind {
                source: "/host".into(),
                recursive: true,
                readonly: ReadOnly::No,
                propagation: "rprivate".into(),
                create_source: true,
            }
        );
        assert_eq!(m[1].destination, "/x/y");
        assert!(
            matches!(&m[1].kind, Kind::Bind { source, readonly: ReadOnly::Yes, .. } if source == "/b")
        );
        assert!(matches!(&m[2].kind, Kind::Bind { propagation, .. } if propagation == "rshared"));
        assert_eq!(prop.as_deref(), Some("shared"));
    }

    #[test]
    fn bad_binds_use_dockers_words() {
        let cases = [
            (":/x", "invalid volume specification: ':/x'"),
            ("/foo:rw", "invalid volume specification: '/foo:rw'"),
            ("/a:/b:c:d", "invalid volume specification: '/a:/b:c:d'"),
            ("/a:/b:rx", "invalid mode: rx"),
            ("/a:/b:ro,rw", "invalid mode: ro,rw"),
            (
                "/a:/",
                "invalid volume specification: '/a:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'",
            ),
            (
                "/a:rel",
                "invalid volume specification: '/a:rel': invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute",
            ),
            (
                "/a:/x/../y",
                "invalid volume specification: '/a:/x/../y': invalid mount config for type \"bind\": invalid mount path: '/x/../y' mount path must not contain '..'",
            ),
        ];
        for (raw, want) in cases {
            let e = err(&binds(&[raw]));
            assert_eq!(e.to_string(), want, "{raw}");
            assert_eq!(
                berth_errdefs::HasKind::kind(&e),
                berth_errdefs::ErrorKind::InvalidArgument
            );
        }
        let e = err(&binds(&["/a:/x", "/b:/x/"]));
        assert_eq!(e.to_string(), "Duplicate mount point: /x");
    }

    #[test]
    fn volumes_parse_as_docker() {
        let hc = HostConfig {
            binds: Some(vec![
                "data:/x".into(),
                "/anon".into(),
                "ro_vol:/y:ro,nocopy".into(),
                "/h:/b:ro".into(),
            ]),
            mounts: Some(vec![ApiMount {
                typ: Some(MountType::VOLUME),
                target: Some("/m".into()),
                source: Some("vol".into()),
                read_only: Some(true),
                volume_options: Some(berth_api::models::MountVolumeOptions {
                    no_copy: Some(true),
                    labels: Some([("l".to_string(), "v".to_string())].into()),
                    driver_config: Some(berth_api::models::MountVolumeOptionsDriverConfig {
                        name: Some("local".into()),
                        options: Some([("type".to_string(), "tmpfs".to_string())].into()),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            volumes_from: Some(vec!["other:ro".into(), "third".into()]),
            ..Default::default()
        };
        let body = berth_api::models::ContainerCreateBody {
            volumes: Some(vec!["/data/".into(), "/x".into()]),
            host_config: Some(hc),
            ..Default::default()
        };
        let image = berth_image::ImageConfig {
            config: Some(berth_image::config::RunConfig {
                volumes: Some(
                    [
                        ("/img".to_string(), serde_json::json!({})),
                        ("/y".to_string(), serde_json::json!({})),
                    ]
                    .into(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = requests(&body, &image).unwrap();
        let names: Vec<(&str, &str, bool, bool, &str)> = r
            .volumes
            .iter()
            .map(|(d, v)| {
                (
                    d.as_str(),
                    v.name.as_str(),
                    v.readonly,
                    v.copy,
                    v.mode.as_str(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("/x", "data", false, true, "z"),
                ("/anon", "", false, true, "z"),
                ("/y", "ro_vol", true, false, "ro,nocopy"),
                ("/m", "vol", true, false, "z"),
            ]
        );
        assert_eq!(r.volumes[3].1.labels["l"], "v");
        assert_eq!(r.volumes[3].1.driver_opts["type"], "tmpfs");
        assert_eq!(
            r.binds,
            [BindPoint {
                destination: "/b".into(),
                source: "/h".into(),
                readonly: true,
                mode: "ro".into(),
                propagation: "rprivate".into(),
            }]
        );
        // /x and /y are covered by other mounts.
        assert_eq!(r.anonymous, ["/data", "/img"]);
        assert_eq!(
            r.volumes_from,
            [("other".to_string(), false), ("third".to_string(), true)]
        );
        for (raw, want) in [
            ("c:rshared", "invalid mode: rshared"),
            ("c:nocopy", "invalid mode: nocopy"),
            ("c:", "invalid mode: "),
            ("c:xx", "invalid mode: xx"),
        ] {
            let hc = HostConfig {
                volumes_from: Some(vec![raw.into()]),
                ..Default::default()
            };
            assert_eq!(volumes_from(&hc).unwrap_err().to_string(), want);
        }
        let anonymous_ro = HostConfig {
            mounts: Some(vec![ApiMount {
                typ: Some(MountType::VOLUME),
                target: Some("/data".into()),
                read_only: Some(true),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(
            err(&anonymous_ro).to_string(),
            "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes"
        );
    }

    #[test]
    fn tmpfs_options_merge_as_docker() {
        let o = tmpfs_options("size=1m,exec,mode=1777").unwrap();
        assert_eq!(
            o,
            [
                "nosuid",
                "nodev",
                "rprivate",
                "size=1m",
                "exec",
                "mode=1777"
            ]
        );
        let o = tmpfs_options("").unwrap();
        assert_eq!(o, ["noexec", "nosuid", "nodev", "rprivate"]);
        let o = tmpfs_options("size=1m,size=2m,ro").unwrap();
        assert_eq!(
            o,
            ["noexec", "nosuid", "nodev", "rprivate", "size=2m", "ro"]
        );
        assert_eq!(
            tmpfs_options("foo=1").unwrap_err().to_string(),
            "invalid tmpfs option \"foo\""
        );
        assert_eq!(
            tmpfs_options("size").unwrap_err().to_string(),
            "invalid tmpfs option \"size\""
        );
        let hc = HostConfig {
            tmpfs: Some([("/run".to_string(), "size=64k".to_string())].into()),
            binds: Some(vec!["/h:/run".into()]),
            ..Default::default()
        };
        assert_eq!(err(&hc).to_string(), "Duplicate mount point: /run");
    }

    #[test]
    fn api_mounts() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().to_str().unwrap().to_string();
        let hc = HostConfig {
            mounts: Some(vec![
                ApiMount {
                    typ: Some(MountType::BIND),
                    target: Some("/data".into()),
                    source: Some(src.clone()),
                    read_only: Some(true),
                    bind_options: Some(berth_api::models::MountBindOptions {
                        non_recursive: Some(true),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ApiMount {
                    typ: Some(MountType::TMPFS),
                    target: Some("/scratch".into()),
                    tmpfs_options: Some(berth_api::models::MountTmpfsOptions {
                        size_bytes: Some(3 << 20),
                        mode: Some(0o700),
                        options: Some(vec![vec!["exec".into()]]),
                    }),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let (m, _) = parse(&hc).unwrap();
        assert_eq!(
            m[0].kind,
            Kind::Bind {
                source: src.clone(),
                recursive: false,
                readonly: ReadOnly::Yes,
                propagation: "rprivate".into(),
                create_source: false,
            }
        );
        assert_eq!(
            m[1].kind,
            Kind::Tmpfs {
                options: ["nosuid", "nodev", "rprivate", "mode=700", "size=3m", "exec"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            }
        );

        let one = |m: ApiMount| {
            parse(&HostConfig {
                mounts: Some(vec![m]),
                ..Default::default()
            })
        };
        let e = one(ApiMount {
            typ: Some(MountType::BIND),
            target: Some("/data".into()),
            source: Some("/does/not/exist".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid mount config for type \"bind\": bind source path does not exist: /does/not/exist"
        );
        let e = one(ApiMount {
            typ: Some(MountType::TMPFS),
            target: Some("/t".into()),
            bind_options: Some(Default::default()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid mount config for type \"tmpfs\": field BindOptions must not be specified"
        );
        let e = one(ApiMount {
            typ: Some(MountType::TMPFS),
            target: Some("".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid mount config for type \"tmpfs\": field Target must not be empty"
        );
        let e = one(ApiMount {
            typ: Some(MountType::TMPFS),
            target: Some("/t".into()),
            tmpfs_options: Some(berth_api::models::MountTmpfsOptions {
                options: Some(vec![vec!["suid".into()]]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid mount config for type \"tmpfs\": invalid option: suid"
        );
    }
}
