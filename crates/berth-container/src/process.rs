//! The process a container runs (its init's program, or an exec'd one):
//! everything about it is computed in the parent into a [`ProcessPlan`],
//! so the child after fork only makes system calls in a fixed order.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    IOPriorityClass, Linux, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, PosixRlimitType, Process, Scheduler,
};

use crate::caps::CapPlan;
use crate::error::{Error, Result};

/// Where a program is looked up when the process has no PATH.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct ProcessPlan {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub caps: Option<CapPlan>,
    pub rlimits: Vec<(u32, u64, u64)>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    /// personality(2) persona from linux.personality (domain | flags).
    pub personality: Option<libc::c_ulong>,
    /// ioprio_set(2) value from process.ioPriority (class << 13 | level).
    pub io_priority: Option<i32>,
    /// sched_setattr(2) attributes from process.scheduler.
    pub scheduler: Option<berth_sys::process::SchedAttr>,
    /// Whether linux.resources.cpu.cpus limits the CPUs: a deadline
    /// policy then fails with EPERM, which the error explains.
    pub cpus_limited: bool,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    pub seccomp: Option<berth_seccomp::CompiledFilter>,
    /// Extra fds (3..3+N) passed through to the process.
    pub preserve_fds: u32,
}

fn cstring(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidArgument(format!("{what} {s:?} contains a NUL byte")))
}

impl ProcessPlan {
    pub fn new(
        p: &Process,
        linux: Option<&Linux>,
        seccomp: Option<berth_seccomp::CompiledFilter>,
        preserve_fds: u32,
    ) -> Result<ProcessPlan> {
        let args = p
            .args()
            .as_ref()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| Error::InvalidArgument("process.args must not be empty".into()))?
            .iter()
            .map(|a| cstring("process.args entry", a))
            .collect::<Result<Vec<_>>>()?;
        let env = dedup_env(p.env().as_deref().unwrap_or_default())
            .iter()
            .map(|e| cstring("process.env entry", e))
            .collect::<Result<Vec<_>>>()?;
        let mut rlimits = Vec::new();
        for r in p.rlimits().iter().flatten() {
            if r.soft() > r.hard() {
                return Err(Error::InvalidArgument(format!(
                    "process.rlimits: {:?} soft limit {} is above its hard limit {}",
                    r.typ(),
                    r.soft(),
                    r.hard()
                )));
            }
            rlimits.push((rlimit_resource(r.typ()), r.soft(), r.hard()));
        }
        let user = p.user();
        let io_priority = p
            .io_priority()
            .as_ref()
            .map(io_priority_value)
            .transpose()?;
        let personality = linux
            .and_then(|l| l.personality().as_ref())
            .map(persona)
            .transpose()?;
        let scheduler = p.scheduler().as_ref().map(sched_attr);
        let cpus_limited = linux
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.cpu().as_ref())
            .and_then(|c| c.cpus().as_ref())
            .is_some_and(|c| !c.is_empty());
        Ok(ProcessPlan {
            args,
            env,
            cwd: p.cwd().clone(),
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask(),
            caps: p.capabilities().as_ref().map(CapPlan::new),
            rlimits,
            no_new_privileges: p.no_new_privileges().unwrap_or(false),
            oom_score_adj: p.oom_score_adj(),
            personality,
            io_priority,
            scheduler,
            cpus_limited,
            terminal: p.terminal().unwrap_or(false),
            console_size: p.console_size().as_ref().map(|b| {
                (
                    b.height().min(u16::MAX as u64) as u16,
                    b.width().min(u16::MAX as u64) as u16,
                )
            }),
            seccomp,
            preserve_fds,
        })
    }

    /// The value of PATH in the process's environment.
    fn path_var(&self) -> String {
        self.env
            .iter()
            .filter_map(|e| e.to_str().ok())
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH)
            .to_string()
    }

    /// Finds the program to exec, as exec.LookPath does, inside the
    /// container (so call it after pivot_root or setns).
    pub fn resolve_executable(&self) -> std::result::Result<CString, String> {
        let prog = self.args[0]
            .to_str()
            .map_err(|_| "process.args[0] is not UTF-8".to_string())?;
        let is_exec = |p: &Path| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        };
        if prog.contains('/') {
            let p = if Path::new(prog).is_absolute() {
                PathBuf::from(prog)
            } else {
                self.cwd.join(prog)
            };
            return if is_exec(&p) {
                Ok(CString::new(p.into_os_string().into_encoded_bytes())
                    .expect("no NUL: came from a CString"))
            } else if p.exists() {
                Err(format!("exec: {prog:?}: permission denied"))
            } else {
                Err(format!("exec: {prog:?}: no such file or directory"))
            };
        }
        for dir in self.path_var().split(':') {
            let dir = if dir.is_empty() { "." } else { dir };
            let candidate = Path::new(dir).join(prog);
            if is_exec(&candidate) {
                return Ok(
                    CString::new(candidate.into_os_string().into_encoded_bytes()).expect("no NUL"),
                );
            }
        }
        Err(format!(
            "exec: {prog:?}: executable file not found in $PATH"
        ))
    }

    /// Terminal, rlimits and oom score: what must happen while still root.
    pub fn setup_privileged(
        &self,
        console_socket: Option<&OwnedFd>,
    ) -> std::result::Result<(), String> {
        berth_sys::process::setsid().map_err(|e| format!("setsid: {e}"))?;
        if self.terminal {
            let socket = console_socket
                .ok_or("process.terminal is true but no --console-socket was given")?;
            let (master, slave) =
                crate::console::open_pty().map_err(|e| format!("creating a pty: {e}"))?;
            // The terminal belongs to the process's user, as after a login;
            // its group stays the one devpts gives (gid=5, tty, by default).
            rustix::fs::fchown(&slave, Some(rustix::fs::Uid::from_raw(self.uid)), None).map_err(
                |e| {
                    format!(
                        "chown of the pty to uid {}: {}",
                        self.uid,
                        std::io::Error::from(e)
                    )
                },
            )?;
            crate::console::send_fd(socket.as_fd(), master.as_fd(), "/dev/ptmx")
                .map_err(|e| format!("sending the pty to the console socket: {e}"))?;
            drop(master);
            crate::console::become_terminal(&slave, self.console_size)
                .map_err(|e| format!("setting up the terminal: {e}"))?;
        }
        if let Some(adj) = self.oom_score_adj {
            std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| {
                format!("process.oomScoreAdj: writing {adj}: {e} (lowering the score needs CAP_SYS_RESOURCE)")
            })?;
        }
        if let Some(persona) = self.personality {
            berth_sys::process::personality(persona)
                .map_err(|e| format!("linux.personality: setting persona {persona:#x}: {e}"))?;
        }
        if let Some(ioprio) = self.io_priority {
            berth_sys::process::ioprio_set_self(ioprio).map_err(|e| {
                format!("process.ioPriority: setting I/O priority {ioprio:#x}: {e} (the realtime class needs CAP_SYS_ADMIN)")
            })?;
        }
        if let Some(attr) = &self.scheduler {
            berth_sys::process::sched_setattr_self(attr).map_err(|e| {
                if e.raw_os_error() == Some(libc::EPERM) && self.cpus_limited {
                    format!("process.scheduler: process scheduler can't be used together with AllowedCPUs (linux.resources.cpu.cpus): {e}")
                } else {
                    format!("process.scheduler: sched_setattr: {e} (realtime and deadline policies need CAP_SYS_NICE)")
                }
            })?;
        }
        for (res, soft, hard) in &self.rlimits {
            berth_sys::process::setrlimit(*res, *soft, *hard).map_err(|e| {
                format!(
                    "process.rlimits: setting {} to {soft}/{hard}: {e} (raising a hard limit needs CAP_SYS_RESOURCE)",
                    rlimit_name(*res)
                )
            })?;
        }
        Ok(())
    }

    /// Changes to the target directory; first as root (which may see more),
    /// and again after the identity change if that failed for permissions.
    /// The path is resolved inside the container's root without magic
    /// links, so a cwd like /proc/self/fd/N can never reach a host
    /// directory through an inherited fd (CVE-2024-21626).
    pub fn chdir(&self) -> std::io::Result<bool> {
        match change_dir_in_root(&self.cwd) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Identity, capabilities, no_new_privs and seccomp, in the order that
    /// lets each step still have the privilege it needs. `hand_listener`
    /// gets the seccomp notify fd as soon as the filter is loaded.
    pub fn drop_privileges(
        &self,
        cwd_done: bool,
        hand_listener: &dyn Fn(OwnedFd) -> std::result::Result<(), String>,
    ) -> std::result::Result<(), String> {
        if let Some(caps) = &self.caps {
            caps.apply_bounding()
                .map_err(|e| format!("dropping bounding capabilities: {e}"))?;
        }
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which
        // the identity change below may take away: load it first.
        if !self.no_new_privileges {
            self.load_seccomp(hand_listener)?;
        }
        berth_sys::process::prctl(libc::PR_SET_KEEPCAPS, 1, 0)
            .map_err(|e| format!("PR_SET_KEEPCAPS: {e}"))?;
        let setgroups_allowed =
            std::fs::read_to_string("/proc/self/setgroups").map_or(true, |s| s.trim() != "deny");
        if setgroups_allowed {
            berth_sys::ids::setgroups(&self.additional_gids).map_err(|e| {
                format!("setting additional groups {:?}: {e}", self.additional_gids)
            })?;
        } else if !self.additional_gids.is_empty() {
            return Err(
                "process.user.additionalGids: setgroups is denied in this user namespace".into(),
            );
        }
        berth_sys::ids::setresgid(self.gid).map_err(|e| {
            format!(
                "setting gid {}: {e} (is it mapped in the user namespace?)",
                self.gid
            )
        })?;
        berth_sys::ids::setresuid(self.uid).map_err(|e| {
            format!(
                "setting uid {}: {e} (is it mapped in the user namespace?)",
                self.uid
            )
        })?;
        berth_sys::process::prctl(libc::PR_SET_KEEPCAPS, 0, 0)
            .map_err(|e| format!("PR_SET_KEEPCAPS: {e}"))?;
        if !cwd_done {
            rustix::process::chdir(&self.cwd).map_err(|e| {
                format!(
                    "process.cwd: chdir to {:?}: {}",
                    self.cwd,
                    std::io::Error::from(e)
                )
            })?;
        }
        if let Some(caps) = &self.caps {
            caps.apply_sets()
                .map_err(|e| format!("setting capabilities: {e}"))?;
        }
        if self.no_new_privileges {
            berth_sys::process::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0)
                .map_err(|e| format!("PR_SET_NO_NEW_PRIVS: {e}"))?;
        }
        if let Some(umask) = self.umask {
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(umask & 0o777));
        }
        Ok(())
    }

    /// With no_new_privs the filter goes last, so nothing berth still has
    /// to do is subject to it.
    pub fn load_late_seccomp(
        &self,
        hand_listener: &dyn Fn(OwnedFd) -> std::result::Result<(), String>,
    ) -> std::result::Result<(), String> {
        if self.no_new_privileges {
            self.load_seccomp(hand_listener)?;
        }
        Ok(())
    }

    /// Loads the filter and hands its notify fd over at once: until the
    /// agent holds it, any syscall the profile sends to the agent (read,
    /// close, openat, fcntl, ...) would block this process for good.
    fn load_seccomp(
        &self,
        hand_listener: &dyn Fn(OwnedFd) -> std::result::Result<(), String>,
    ) -> std::result::Result<(), String> {
        let Some(filter) = &self.seccomp else {
            return Ok(());
        };
        match filter
            .load()
            .map_err(|e| format!("loading the seccomp filter: {e}"))?
        {
            Some(listener) => hand_listener(listener),
            None => Ok(()),
        }
    }

    /// Closes (on exec) every fd the process must not inherit: CVE-2024-21626
    /// leaked a host directory fd into containers this way.
    pub fn seal_fds(&self) -> std::io::Result<()> {
        let first = 3 + self.preserve_fds;
        for fd in 3..first {
            // The caller's fds must survive exec even if they were marked CLOEXEC.
            let _ = berth_sys::process::clear_cloexec(fd as i32);
        }
        berth_sys::process::close_range(first, true)
    }

    /// `HOME=<dir>` from the container's /etc/passwd (or `HOME=/`) when the
    /// process has no HOME or an empty one, as runc and docker do. Call it
    /// inside the container.
    pub fn default_home(&self) -> Option<CString> {
        let has_home = self
            .env
            .iter()
            .any(|e| e.to_bytes().starts_with(b"HOME=") && e.to_bytes().len() > 5);
        if has_home {
            return None;
        }
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let home = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 6 && f[2].parse::<u32>() == Ok(self.uid))
            .map(|f| f[5].to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "/".to_string());
        CString::new(format!("HOME={home}")).ok()
    }

    /// Replaces the process; returns only the error.
    pub fn exec(&self, path: &CString, home: Option<&CString>) -> String {
        let argv: Vec<&std::ffi::CStr> = self.args.iter().map(|a| a.as_c_str()).collect();
        let mut envp: Vec<&std::ffi::CStr> = self
            .env
            .iter()
            .filter(|e| home.is_none() || !e.to_bytes().starts_with(b"HOME="))
            .map(|e| e.as_c_str())
            .collect();
        envp.extend(home.map(|h| h.as_c_str()));
        let err = berth_sys::process::execve(path, &argv, &envp);
        format!(
            "exec {}: {}",
            self.args[0].to_string_lossy(),
            go_style(&err)
        )
    }
}

/// fchdir to `cwd` resolved inside "/", then make sure the kernel agrees
/// that the working directory is reachable from our root.
fn change_dir_in_root(cwd: &Path) -> std::io::Result<()> {
    let root = rustix::fs::open(
        "/",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let dir = crate::paths::open_in_root(
        root.as_fd(),
        cwd,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
    )?;
    rustix::process::fchdir(&dir)?;
    let now = rustix::process::getcwd(Vec::new())?;
    if !now.as_bytes().starts_with(b"/") {
        return Err(std::io::Error::other(format!(
            "the working directory {:?} is outside the container",
            now
        )));
    }
    Ok(())
}

/// An OS error as Go prints it ("no such file or directory"): callers and
/// runc's tests match these words.
fn go_style(err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One entry per variable, the last one winning (as Go's exec does for runc).
fn dedup_env(env: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<String> = env
        .iter()
        .rev()
        .filter(|kv| seen.insert(kv.split('=').next().unwrap_or_default().to_string()))
        .cloned()
        .collect();
    out.reverse();
    out
}

/// The ioprio_set(2) value for process.ioPriority: the class in the top
/// bits, the level (0 highest to 7 lowest) in the low 13.
fn io_priority_value(p: &LinuxIOPriority) -> Result<i32> {
    const CLASS_SHIFT: i32 = 13;
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&p.priority()) {
        return Err(Error::InvalidArgument(format!(
            "process.ioPriority.priority: {} is out of range; use 0 (highest) to 7 (lowest)",
            p.priority()
        )));
    }
    Ok(class << CLASS_SHIFT | p.priority() as i32)
}

/// The sched_setattr(2) attributes for process.scheduler, with the
/// kernel's values for the policies and flags of <linux/sched.h>.
fn sched_attr(s: &Scheduler) -> berth_sys::process::SchedAttr {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let flags = s.flags().iter().flatten().fold(0, |acc, f| {
        acc | match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        }
    });
    berth_sys::process::SchedAttr {
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0).max(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    }
}

/// The personality(2) persona for linux.personality: the domain plus the
/// flags of <linux/personality.h>, named as there.
fn persona(p: &LinuxPersonality) -> Result<libc::c_ulong> {
    const FLAGS: &[(&str, libc::c_ulong)] = &[
        ("UNAME26", 0x002_0000),
        ("ADDR_NO_RANDOMIZE", 0x004_0000),
        ("FDPIC_FUNCPTRS", 0x008_0000),
        ("MMAP_PAGE_ZERO", 0x010_0000),
        ("ADDR_COMPAT_LAYOUT", 0x020_0000),
        ("READ_IMPLIES_EXEC", 0x040_0000),
        ("ADDR_LIMIT_32BIT", 0x080_0000),
        ("SHORT_INODE", 0x100_0000),
        ("WHOLE_SECONDS", 0x200_0000),
        ("STICKY_TIMEOUTS", 0x400_0000),
        ("ADDR_LIMIT_3GB", 0x800_0000),
    ];
    let mut persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    for flag in p.flags().iter().flatten() {
        let (_, bit) = FLAGS.iter().find(|(name, _)| name == flag).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "linux.personality.flags: unknown flag {flag:?}; use one of {}",
                FLAGS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ))
        })?;
        persona |= bit;
    }
    Ok(persona)
}

fn rlimit_resource(t: PosixRlimitType) -> u32 {
    use PosixRlimitType as T;
    let res = match t {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    };
    // The constants' integer type differs between libc targets.
    #[allow(clippy::unnecessary_cast)]
    let res = res as u32;
    res
}

fn rlimit_name(res: u32) -> &'static str {
    const NAMES: &[&str] = &[
        "RLIMIT_CPU",
        "RLIMIT_FSIZE",
        "RLIMIT_DATA",
        "RLIMIT_STACK",
        "RLIMIT_CORE",
        "RLIMIT_RSS",
        "RLIMIT_NPROC",
        "RLIMIT_NOFILE",
        "RLIMIT_MEMLOCK",
        "RLIMIT_AS",
        "RLIMIT_LOCKS",
        "RLIMIT_SIGPENDING",
        "RLIMIT_MSGQUEUE",
        "RLIMIT_NICE",
        "RLIMIT_RTPRIO",
        "RLIMIT_RTTIME",
    ];
    NAMES.get(res as usize).copied().unwrap_or("RLIMIT_?")
}
