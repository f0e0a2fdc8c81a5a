//! Docker's container create request and the image's config, turned into
//! the OCI runtime spec (config.json) the shim hands to the runtime.
//!
//! Pure apart from what docker itself reads or touches: the host (its
//! kernel, CPUs, devices, sysctls under /proc/sys), the rootfs's
//! `/etc/passwd` and `/etc/group` (read inside the root with
//! `openat2(RESOLVE_IN_ROOT)`, bounded) and the working directory, which
//! [`generate`] creates in the rootfs when it is missing, as docker does.
//!
//! ```text
//! create:  validate(body, image) -> warnings        (everything but the rootfs)
//!          command(body, image)  -> (Path, Args)     (inspect's Path and Args)
//!          hostname(body, id)    -> Config.Hostname
//! start:   generate(&SpecInput)  -> Spec             (validate again, then users, workdir, devices)
//! exec:    exec_process(exec, &container_process, rootfs) -> Process
//! ```
//!
//! Semantics are moby's (daemon/oci_linux.go, daemon/pkg/oci/defaults.go,
//! daemon_unix.go's checks, the volume parser, profiles/seccomp), written
//! here from their behaviour; error messages use docker's wording where
//! docker has one. What berthd cannot do yet (volumes, published ports,
//! networks, joining other containers' namespaces, ...) is refused with a
//! [`SpecError::NotImplemented`] naming the field.

mod caps;
mod devices;
pub(crate) mod env;
mod host;
mod mounts;
mod plan;
mod resources;
mod root;
mod seccomp;
mod security;
mod sysctl;
mod user;

use std::path::{Path, PathBuf};

use berth_api::models::{ContainerCreateBody, ExecConfig};
use berth_errdefs::{ErrorKind, HasKind};
use berth_image::ImageConfig;
use oci_spec::runtime::{
    Linux, LinuxDeviceCgroup, LinuxNamespace, LinuxNamespaceType, LinuxResources, LinuxSeccomp,
    Process, Root, Spec, User,
};

pub(crate) use host::Host;
pub use mounts::{requests as mount_requests, BindPoint, Requests, ResolvedMount, VolumeRequest};
pub(crate) use plan::{shm_size, DEFAULT_SHM_SIZE};
use plan::{IpcMode, Plan};
use root::RootDir;

/// The ociVersion written into every spec (docker writes the same).
pub const OCI_VERSION: &str = "1.0.2-dev";

/// Where a container's cgroup goes when the request names no CgroupParent.
pub const DEFAULT_CGROUP_PARENT: &str = "/berth";

/// Host files bind-mounted onto the container's /etc files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
}

/// Everything [`generate`] needs.
#[derive(Debug, Clone, Copy)]
pub struct SpecInput<'a> {
    /// The 64-hex container id.
    pub id: &'a str,
    pub body: &'a ContainerCreateBody,
    pub image: &'a ImageConfig,
    /// The mounted rootfs (absolute); User names resolve inside it.
    pub rootfs: &'a Path,
    /// Host files bind-mounted onto /etc/hosts, /etc/hostname, /etc/resolv.conf.
    pub etc: &'a EtcFiles,
    /// e.g. "/berth/<id>" (see [`cgroups_path`]).
    pub cgroups_path: &'a str,
    /// The network namespace file the container joins (bridge networks,
    /// `container:<id>`); `None`: a new one, or the host's.
    pub network_namespace: Option<&'a Path>,
    /// What the container joins of another one (`--pid` and `--ipc
    /// container:<name>`), resolved at its start.
    pub joined: &'a Joined,
    /// The host directory bound at /dev/shm: the container's own for
    /// `--ipc shareable`, the donor's for `--ipc container:<name>`.
    pub shm: Option<&'a Path>,
    /// The init binary on the host (berth-init), when the container runs
    /// one ([`uses_init`]): it is bind-mounted read-only at
    /// [`CONTAINER_INIT_PATH`] and runs the command as its child.
    pub init: Option<&'a Path>,
    /// Read-only binds are recursively read-only where the kernel allows
    /// ([`ContainerConfig::recursive_read_only`]).
    ///
    /// [`ContainerConfig::recursive_read_only`]: crate::containers::ContainerConfig::recursive_read_only
    pub recursive_read_only: bool,
}

/// Namespaces a container joins from another, running container: that
/// one's `/proc/<pid>/ns` files (`--pid`, `--ipc container:<name>`).
#[derive(Debug, Default, Clone)]
pub struct Joined {
    pub pid: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
}

/// The container a HostConfig's PidMode joins (`container:<name>`).
pub fn joined_pid_container(body: &ContainerCreateBody) -> Option<String> {
    plan::joined_container(host_mode(body, |h| &h.pid_mode)).map(str::to_string)
}

/// The container a HostConfig's IpcMode joins (`container:<name>`).
pub fn joined_ipc_container(body: &ContainerCreateBody) -> Option<String> {
    plan::joined_container(host_mode(body, |h| &h.ipc_mode)).map(str::to_string)
}

/// Whether a HostConfig's IpcMode is `shareable` (its /dev/shm is mounted
/// on the host, see containers::shm).
pub fn shareable_ipc(body: &ContainerCreateBody) -> bool {
    host_mode(body, |h| &h.ipc_mode) == Some("shareable")
}

/// One of HostConfig's mode strings, if set.
fn host_mode<'a>(
    body: &'a ContainerCreateBody,
    field: impl FnOnce(&'a berth_api::models::HostConfig) -> &'a Option<String>,
) -> Option<&'a str> {
    body.host_config.as_ref().and_then(|h| field(h).as_deref())
}

/// Where the init binary appears inside a container (docker's path, which
/// images and tools expect).
pub const CONTAINER_INIT_PATH: &str = "/sbin/docker-init";

/// Whether the container runs an init as PID 1: HostConfig.Init, else the
/// daemon's default (`init` in daemon.json); never without a PID namespace
/// of its own (`--pid host` or `container:<id>`), as docker.
pub fn uses_init(body: &ContainerCreateBody, daemon_default: bool) -> bool {
    let hc = body.host_config.as_ref();
    let pid_private = hc
        .and_then(|h| h.pid_mode.as_deref())
        .is_none_or(str::is_empty);
    pid_private && hc.and_then(|h| h.init).unwrap_or(daemon_default)
}

/// Why a container cannot be created or started as asked.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A value docker refuses too (400), in docker's words.
    #[error("{0}")]
    InvalidArgument(String),
    /// Something docker supports and berthd does not yet (501). `field`
    /// names the request field, e.g. `HostConfig.PortBindings`.
    #[error("{field}: {message}")]
    NotImplemented { field: String, message: String },
    /// The host or the rootfs could not be read or changed (500).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl SpecError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        SpecError::InvalidArgument(message.into())
    }

    /// `what` is the subject of "... not implemented by berthd yet", e.g.
    /// "published ports are".
    pub(crate) fn not_implemented(field: impl Into<String>, what: impl AsRef<str>) -> Self {
        SpecError::NotImplemented {
            field: field.into(),
            message: format!("{} not implemented by berthd yet", what.as_ref()),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SpecError::Io {
            context: context.into(),
            source,
        }
    }
}

impl HasKind for SpecError {
    fn kind(&self) -> ErrorKind {
        match self {
            SpecError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            SpecError::NotImplemented { .. } => ErrorKind::NotImplemented,
            SpecError::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// At create time (no rootfs yet): everything checkable without the rootfs.
/// Returns docker's warnings (for the create response's `Warnings`).
pub fn validate(body: &ContainerCreateBody, image: &ImageConfig) -> Result<Vec<String>, SpecError> {
    validate_on(body, image, &Host::detect())
}

/// [`validate`] on a given host.
pub(crate) fn validate_on(
    body: &ContainerCreateBody,
    image: &ImageConfig,
    host: &Host,
) -> Result<Vec<String>, SpecError> {
    Ok(Plan::new(body, image, host)?.warnings)
}

/// For the fuzz targets ([`crate::fuzzing`]): what [`generate`] derives
/// from the request alone, on a fixed host, without a rootfs or the host's
/// devices ([`planned_linux`] and the mounts). Returns the plan's warnings.
pub(crate) fn check_offline(
    body: &ContainerCreateBody,
    image: &ImageConfig,
) -> Result<Vec<String>, SpecError> {
    let host = Host::fixed();
    let plan = Plan::new(body, image, &host)?;
    planned_linux(&plan, &host, devices::cgroup_rules(&plan, Vec::new()))?;
    let etc = EtcFiles {
        hosts: "/etc-files/hosts".into(),
        hostname: "/etc-files/hostname".into(),
        resolv_conf: "/etc-files/resolv.conf".into(),
    };
    mounts::build(&plan, &etc, &[], None);
    Ok(plan.warnings)
}

/// The parts of a spec's `linux` that come from the plan alone, on any
/// host; [`generate_on`] adds the devices, the joined namespaces' paths
/// and the cgroup path.
struct PlannedLinux {
    namespaces: Vec<LinuxNamespace>,
    masked_paths: Vec<String>,
    readonly_paths: Vec<String>,
    resources: LinuxResources,
    seccomp: Option<LinuxSeccomp>,
}

fn planned_linux(
    plan: &Plan,
    host: &Host,
    device_rules: Vec<LinuxDeviceCgroup>,
) -> Result<PlannedLinux, SpecError> {
    let (masked_paths, readonly_paths) = plan.system_paths(host);
    Ok(PlannedLinux {
        namespaces: namespaces(plan),
        masked_paths,
        readonly_paths,
        resources: resources::build(plan, device_rules)?,
        seccomp: plan.seccomp_profile(host)?,
    })
}

/// Defaults berth applies to a container that docker's inspect reports in
/// its HostConfig: the masked and read-only paths (none when privileged)
/// and whether it gets a cgroup namespace of its own.
pub struct AppliedDefaults {
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub cgroupns_private: bool,
}

/// The [`AppliedDefaults`] of a created container (None if its request no
/// longer plans, which create would have refused).
pub fn applied_defaults(
    body: &ContainerCreateBody,
    image: &ImageConfig,
) -> Option<AppliedDefaults> {
    let host = Host::detect();
    let plan = Plan::new(body, image, &host).ok()?;
    let (masked_paths, readonly_paths) = plan.system_paths(&host);
    Some(AppliedDefaults {
        masked_paths,
        readonly_paths,
        cgroupns_private: plan.cgroupns_private,
    })
}

/// Docker's Path and Args: the image's Entrypoint and Cmd under the
/// request's (a request Entrypoint also drops the image's Cmd; `[""]`
/// resets the Entrypoint), or "No command specified".
pub fn command(
    body: &ContainerCreateBody,
    image: &ImageConfig,
) -> Result<(String, Vec<String>), SpecError> {
    let mut argv = env::command_line(body, image)?.into_iter();
    let path = argv.next().unwrap_or_default();
    Ok((path, argv.collect()))
}

/// The container's hostname: Config.Hostname, else the host's with host
/// networking, else the id's first 12 characters.
pub fn hostname(body: &ContainerCreateBody, id: &str) -> String {
    if let Some(h) = body.hostname.as_deref().filter(|h| !h.is_empty()) {
        return h.to_string();
    }
    let network_host = body
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.as_deref())
        == Some("host");
    if network_host {
        return rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
    }
    id.chars().take(12).collect()
}

/// The container's cgroupsPath: `<HostConfig.CgroupParent>/<id>`, with
/// [`DEFAULT_CGROUP_PARENT`] when the request names none.
pub fn cgroups_path(body: &ContainerCreateBody, id: &str) -> String {
    let parent = body
        .host_config
        .as_ref()
        .and_then(|h| h.cgroup_parent.as_deref())
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_CGROUP_PARENT);
    let parent = parent.trim_end_matches('/');
    if parent.starts_with('/') {
        format!("{parent}/{id}")
    } else {
        format!("/{parent}/{id}")
    }
}

/// At start: the full spec. Also creates the WorkingDir inside the rootfs
/// when it is missing (as docker does: mode 0755, owned by root), resolving
/// every component inside the root.
pub fn generate(input: &SpecInput) -> Result<Spec, SpecError> {
    generate_on(input, &Host::detect(), &[])
}

/// [`generate`] with the volumes (and inherited binds) the daemon resolved
/// to host directories.
pub fn generate_with(input: &SpecInput, volumes: &[ResolvedMount]) -> Result<Spec, SpecError> {
    generate_on(input, &Host::detect(), volumes)
}

fn generate_on(
    input: &SpecInput,
    host: &Host,
    volumes: &[ResolvedMount],
) -> Result<Spec, SpecError> {
    if !input.rootfs.is_absolute() {
        return Err(SpecError::invalid(format!(
            "the rootfs {:?} must be an absolute path",
            input.rootfs
        )));
    }
    let mut plan = Plan::new(input.body, input.image, host)?;
    if input.recursive_read_only && host.kernel >= (5, 12) {
        plan.read_only_recursively();
    }
    let root = RootDir::open(input.rootfs)?;
    let resolved = user::resolve(&root, &plan.user, &plan.group_add)?;
    if let Some(dir) = &plan.working_dir {
        root.mkdir_all(dir)?;
    }
    mounts::prepare(&plan)?;

    let hostname = hostname(input.body, input.id);
    let mut process = Process::default();
    process.set_terminal(Some(plan.tty));
    if let Some((h, w)) = plan.console_size {
        process.set_console_size(Some(console_box(h, w)));
    }
    process.set_user(resolved.to_oci());
    let args = match input.init {
        // docker's form: `/sbin/docker-init -- CMD ARGS...`.
        Some(_) => [CONTAINER_INIT_PATH.to_string(), "--".to_string()]
            .into_iter()
            .chain(plan.args.iter().cloned())
            .collect(),
        None => plan.args.clone(),
    };
    process.set_args(Some(args));
    process.set_command_line(None);
    process.set_env(Some(env::daemon_env(&plan.env, &hostname, plan.tty)));
    process.set_cwd(PathBuf::from(plan.working_dir.as_deref().unwrap_or("/")));
    process.set_capabilities(Some(caps::oci(&plan.caps)));
    process.set_rlimits((!plan.rlimits.is_empty()).then(|| plan.rlimits.clone()));
    process.set_no_new_privileges(plan.no_new_privileges.then_some(true));
    process.set_apparmor_profile(None);
    process.set_oom_score_adj(Some(plan.oom_score_adj));
    process.set_selinux_label(None);
    process.set_io_priority(None);
    process.set_scheduler(None);
    process.set_exec_cpu_affinity(None);

    let mut root_cfg = Root::default();
    root_cfg.set_path(input.rootfs.to_path_buf());
    root_cfg.set_readonly(Some(plan.readonly_rootfs));

    let (devs, rules) = devices::devices(&plan)?;
    let planned = planned_linux(&plan, host, rules)?;
    let mut linux = Linux::default();
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    let mut namespaces = planned.namespaces;
    let joined = [
        (LinuxNamespaceType::Network, input.network_namespace),
        (LinuxNamespaceType::Pid, input.joined.pid.as_deref()),
        (LinuxNamespaceType::Ipc, input.joined.ipc.as_deref()),
    ];
    for ns in namespaces.iter_mut() {
        if let Some((_, Some(path))) = joined.iter().find(|(t, _)| *t == ns.typ()) {
            ns.set_path(Some(path.to_path_buf()));
        }
    }
    linux.set_namespaces(Some(namespaces));
    linux.set_cgroups_path(Some(PathBuf::from(input.cgroups_path)));
    let sysctls = plan.sysctls.clone();
    linux.set_sysctl((!sysctls.is_empty()).then(|| sysctls.into_iter().collect()));
    linux.set_masked_paths(Some(planned.masked_paths));
    linux.set_readonly_paths(Some(planned.readonly_paths));
    linux.set_devices((!devs.is_empty()).then_some(devs));
    linux.set_resources(Some(planned.resources));
    linux.set_seccomp(planned.seccomp);
    linux.set_rootfs_propagation(plan.rootfs_propagation.clone());
    linux.set_mount_label(None);
    linux.set_intel_rdt(None);

    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.to_string());
    spec.set_process(Some(process));
    spec.set_root(Some(root_cfg));
    spec.set_hostname(plan.uts_private.then_some(hostname));
    spec.set_domainname(plan.domainname.clone());
    let mut all_mounts = mounts::build(&plan, input.etc, volumes, input.shm);
    if let Some(init) = input.init {
        all_mounts.push(mounts::init_mount(init));
    }
    spec.set_mounts(Some(all_mounts));
    spec.set_annotations(
        (!plan.annotations.is_empty()).then(|| plan.annotations.clone().into_iter().collect()),
    );
    spec.set_linux(Some(linux));
    spec.set_hooks(None);
    Ok(spec)
}

fn console_box(height: u64, width: u64) -> oci_spec::runtime::Box {
    oci_spec::runtime::BoxBuilder::default()
        .height(height)
        .width(width)
        .build()
        .expect("every field is set")
}

/// The namespaces a container gets: mount always; network, IPC, PID and UTS
/// unless shared with the host; cgroup per CgroupnsMode.
fn namespaces(plan: &Plan) -> Vec<LinuxNamespace> {
    let mut out = Vec::new();
    let mut add = |typ| {
        let mut ns = LinuxNamespace::default();
        ns.set_typ(typ);
        ns.set_path(None);
        out.push(ns);
    };
    add(LinuxNamespaceType::Mount);
    if plan.net_private {
        add(LinuxNamespaceType::Network);
    }
    if plan.uts_private {
        add(LinuxNamespaceType::Uts);
    }
    if plan.pid_private {
        add(LinuxNamespaceType::Pid);
    }
    if plan.ipc != IpcMode::Host {
        add(LinuxNamespaceType::Ipc);
    }
    if plan.cgroupns_private {
        add(LinuxNamespaceType::Cgroup);
    }
    out
}

/// The exec process for `POST /containers/{id}/exec` given the container's
/// spec process: its env (with the exec's Tty deciding TERM) overlaid by
/// the exec's Env, the exec's User resolved in `rootfs` (else the
/// container's), its WorkingDir (else the container's), all capabilities
/// when Privileged; rlimits, no_new_privileges and oomScoreAdj inherited.
pub fn exec_process(
    exec: &ExecConfig,
    container: &Process,
    rootfs: &Path,
) -> Result<Process, SpecError> {
    exec_process_with_groups(exec, container, rootfs, &[])
}

/// [`exec_process`] with the container's HostConfig.GroupAdd, which docker
/// adds to the groups of an exec run as another user.
pub fn exec_process_with_groups(
    exec: &ExecConfig,
    container: &Process,
    rootfs: &Path,
    group_add: &[String],
) -> Result<Process, SpecError> {
    let args = exec.cmd.clone().unwrap_or_default();
    if args.is_empty() {
        return Err(SpecError::invalid("No exec command specified"));
    }
    for e in exec.env.iter().flatten() {
        env::check_env(e)?;
    }
    let tty = exec.tty.unwrap_or(false);
    let mut p = container.clone();
    p.set_args(Some(args));
    p.set_command_line(None);
    let base = env::exec_base_env(
        container.env().as_deref().unwrap_or_default(),
        container.terminal().unwrap_or(false),
        tty,
    );
    p.set_env(Some(env::replace_or_append(
        base,
        exec.env.as_deref().unwrap_or_default(),
    )));
    p.set_terminal(Some(tty));
    p.set_console_size(None);
    if tty {
        if let Some([h, w]) = exec
            .console_size
            .as_deref()
            .and_then(|s| <[usize; 2]>::try_from(s).ok())
        {
            if h > 0 && w > 0 {
                p.set_console_size(Some(console_box(h as u64, w as u64)));
            }
        }
    }
    if let Some(dir) = exec.working_dir.as_deref().filter(|d| !d.is_empty()) {
        p.set_cwd(PathBuf::from(env::clean_workdir(dir)?));
    }
    if let Some(spec) = exec.user.as_deref().filter(|u| !u.is_empty()) {
        let root = RootDir::open(rootfs)?;
        p.set_user(user::resolve(&root, spec, group_add)?.to_oci());
    }
    if exec.privileged.unwrap_or(false) {
        let all = caps::all(Host::detect().capabilities.held);
        p.set_capabilities(Some(caps::oci(&all)));
    }
    Ok(p)
}

impl user::Resolved {
    fn to_oci(&self) -> User {
        let mut u = User::default();
        u.set_uid(self.uid);
        u.set_gid(self.gid);
        u.set_umask(None);
        u.set_additional_gids(Some(self.additional_gids.clone()));
        u.set_username(None);
        u
    }
}

#[cfg(test)]
mod tests;
