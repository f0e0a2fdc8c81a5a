//! docker's default seccomp profile as berth's own table.
//!
//! A deny-by-default (EPERM) allow list: one large rule of syscalls every
//! container may make, argument-filtered rules (`socket` families,
//! `personality` values, `clone` without namespace flags), rules for one
//! architecture, and rules that only apply when the container holds a
//! capability (`includes.caps`) or does not (`excludes.caps`). The
//! contents follow docker's default profile (moby's profiles/seccomp);
//! a unit test checks that this table resolves to exactly the OCI profile
//! docker's own JSON (shared/testdata/seccomp/docker-default.json) resolves
//! to, for several capability sets and architectures.

use oci_spec::runtime::{
    LinuxSeccompAction as Action, LinuxSeccompArgBuilder, LinuxSeccompOperator as Op,
};

use super::{ArchMap, DockerProfile, Filter, Rule as OwnedRule};

/// One rule of the table.
struct Rule {
    names: &'static [&'static str],
    action: Action,
    errno_ret: Option<u32>,
    args: &'static [Arg],
    includes: Cond,
    excludes: Cond,
}

/// A condition on the container and host: all of the capabilities, one of
/// the architectures (moby's names), at least the kernel version.
struct Cond {
    caps: &'static [&'static str],
    arches: &'static [&'static str],
    min_kernel: Option<(u32, u32)>,
}

/// (argument index, value, comparison).
struct Arg(usize, u64, Op);

const fn arg(index: usize, value: u64, op: Op) -> Arg {
    Arg(index, value, op)
}

const ANY: Cond = Cond {
    caps: &[],
    arches: &[],
    min_kernel: None,
};

const ALLOW: Rule = Rule {
    names: &[],
    action: Action::ScmpActAllow,
    errno_ret: None,
    args: &[],
    includes: ANY,
    excludes: ANY,
};

/// Denied syscalls fail with EPERM.
const DEFAULT_ERRNO: u32 = 1;

/// Which architectures a filter covers on each host architecture.
const ARCH_MAP: &[(&str, &[&str])] = &[
    ("SCMP_ARCH_X86_64", &["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
    ("SCMP_ARCH_AARCH64", &["SCMP_ARCH_ARM"]),
    (
        "SCMP_ARCH_MIPS64",
        &["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"],
    ),
    (
        "SCMP_ARCH_MIPS64N32",
        &["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"],
    ),
    (
        "SCMP_ARCH_MIPSEL64",
        &["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"],
    ),
    (
        "SCMP_ARCH_MIPSEL64N32",
        &["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"],
    ),
    ("SCMP_ARCH_S390X", &["SCMP_ARCH_S390"]),
    ("SCMP_ARCH_RISCV64", &[]),
    ("SCMP_ARCH_LOONGARCH64", &[]),
];

#[rustfmt::skip]
const RULES: &[Rule] = &[
    // Everything a container may do whatever its capabilities.
    Rule {
        names: &[
            "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat",
            "capget", "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime",
            "clock_adjtime64", "clock_getres", "clock_getres_time64", "clock_gettime",
            "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close",
            "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3",
            "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
            "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve",
            "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
            "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat",
            "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync",
            "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
            "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
            "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake",
            "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
            "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
            "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
            "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32",
            "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt",
            "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr",
            "getxattrat", "inotify_add_watch", "inotify_init", "inotify_init1",
            "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
            "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
            "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
            "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat",
            "listen", "listmount", "listxattr", "listxattrat", "llistxattr", "_llseek",
            "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise",
            "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore",
            "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap",
            "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
            "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink",
            "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
            "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat",
            "_newselect", "open", "openat", "openat2", "pause", "pidfd_open",
            "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect",
            "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2",
            "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64",
            "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
            "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages",
            "removexattr", "removexattrat", "rename", "renameat", "renameat2",
            "restart_syscall", "riscv_hwprobe", "rmdir", "rseq", "rt_sigaction",
            "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
            "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
            "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
            "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
            "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
            "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
            "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
            "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid",
            "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
            "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
            "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
            "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address",
            "setuid", "setuid32", "setxattr", "setxattrat", "shmat", "shmctl", "shmdt",
            "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask",
            "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64", "statfs",
            "statfs64", "statmount", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
            "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
            "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
            "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
            "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
            "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime",
            "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid",
            "waitpid", "write", "writev",
        ],
        ..ALLOW
    },
    // Safe with the ptrace restrictions of kernel 4.8+.
    Rule {
        names: &["process_vm_readv", "process_vm_writev", "ptrace"],
        includes: Cond { min_kernel: Some((4, 8)), ..ANY },
        ..ALLOW
    },
    // socket(2) for every address family but AF_ALG (38) and AF_VSOCK (40).
    Rule {
        names: &["socket"],
        args: &[arg(0, 38, Op::ScmpCmpLt)],
        ..ALLOW
    },
    Rule {
        names: &["socket"],
        args: &[arg(0, 39, Op::ScmpCmpEq)],
        ..ALLOW
    },
    Rule {
        names: &["socket"],
        args: &[arg(0, 40, Op::ScmpCmpGt)],
        ..ALLOW
    },
    // personality(2): PER_LINUX, UNAME26, PER_LINUX32, their combination, and the query.
    Rule {
        names: &["personality"],
        args: &[arg(0, 0, Op::ScmpCmpEq)],
        ..ALLOW
    },
    Rule {
        names: &["personality"],
        args: &[arg(0, 8, Op::ScmpCmpEq)],
        ..ALLOW
    },
    Rule {
        names: &["personality"],
        args: &[arg(0, 0x20000, Op::ScmpCmpEq)],
        ..ALLOW
    },
    Rule {
        names: &["personality"],
        args: &[arg(0, 0x20008, Op::ScmpCmpEq)],
        ..ALLOW
    },
    Rule {
        names: &["personality"],
        args: &[arg(0, 0xffffffff, Op::ScmpCmpEq)],
        ..ALLOW
    },
    // Architecture-specific calls.
    Rule {
        names: &["sync_file_range2", "swapcontext"],
        includes: Cond { arches: &["ppc64le"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &[
            "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
            "cacheflush", "set_tls",
        ],
        includes: Cond { arches: &["arm", "arm64"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &["arch_prctl"],
        includes: Cond { arches: &["amd64", "x32"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &["modify_ldt"],
        includes: Cond { arches: &["amd64", "x32", "x86"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"],
        includes: Cond { arches: &["s390", "s390x"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &["riscv_flush_icache"],
        includes: Cond { arches: &["riscv64"], ..ANY },
        ..ALLOW
    },
    // Rules for containers holding a capability.
    Rule {
        names: &["open_by_handle_at"],
        includes: Cond { caps: &["CAP_DAC_READ_SEARCH"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &[
            "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
            "fspick", "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules",
            "lsm_set_self_attr", "mount", "mount_setattr", "move_mount", "open_tree",
            "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
            "setns", "syslog", "umount", "umount2", "unshare",
        ],
        includes: Cond { caps: &["CAP_SYS_ADMIN"], ..ANY },
        ..ALLOW
    },
    // Without CAP_SYS_ADMIN, clone(2) may not create namespaces.
    Rule {
        names: &["clone"],
        args: &[arg(0, 0x7e020000, Op::ScmpCmpMaskedEq)],
        excludes: Cond { caps: &["CAP_SYS_ADMIN"], arches: &["s390", "s390x"], ..ANY },
        ..ALLOW
    },
    Rule {
        // s390 parameter ordering for clone is different
        names: &["clone"],
        args: &[arg(1, 0x7e020000, Op::ScmpCmpMaskedEq)],
        includes: Cond { arches: &["s390", "s390x"], ..ANY },
        excludes: Cond { caps: &["CAP_SYS_ADMIN"], ..ANY },
        ..ALLOW
    },
    // clone3(2) hides its flags in memory: ENOSYS makes libc fall back to clone(2).
    Rule {
        names: &["clone3"],
        action: Action::ScmpActErrno,
        errno_ret: Some(38),
        excludes: Cond { caps: &["CAP_SYS_ADMIN"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &["reboot"],
        includes: Cond { caps: &["CAP_SYS_BOOT"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &["chroot"],
        includes: Cond { caps: &["CAP_SYS_CHROOT"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &["delete_module", "init_module", "finit_module"],
        includes: Cond { caps: &["CAP_SYS_MODULE"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &["acct"],
        includes: Cond { caps: &["CAP_SYS_PACCT"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &[
            "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
            "ptrace",
        ],
        includes: Cond { caps: &["CAP_SYS_PTRACE"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &["iopl", "ioperm"],
        includes: Cond { caps: &["CAP_SYS_RAWIO"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &[
            "settimeofday", "stime", "clock_settime", "clock_settime64",
        ],
        includes: Cond { caps: &["CAP_SYS_TIME"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &["vhangup"],
        includes: Cond { caps: &["CAP_SYS_TTY_CONFIG"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &[
            "get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node",
        ],
        includes: Cond { caps: &["CAP_SYS_NICE"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &["syslog"],
        includes: Cond { caps: &["CAP_SYSLOG"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &["bpf"],
        includes: Cond { caps: &["CAP_BPF"], ..ANY },
        ..ALLOW
    },
    Rule {
        names: &["perf_event_open"],
        includes: Cond { caps: &["CAP_PERFMON"], ..ANY },
        ..ALLOW
    },
];

fn owned(cond: &Cond) -> Filter {
    Filter {
        caps: cond.caps.iter().map(|s| s.to_string()).collect(),
        arches: cond.arches.iter().map(|s| s.to_string()).collect(),
        min_kernel: cond.min_kernel,
    }
}

/// docker's default profile in the Docker profile representation.
pub(crate) fn profile() -> DockerProfile {
    DockerProfile {
        default_action: Some(Action::ScmpActErrno),
        default_errno_ret: Some(DEFAULT_ERRNO),
        architectures: Vec::new(),
        arch_map: ARCH_MAP
            .iter()
            .map(|(arch, subs)| ArchMap {
                arch: arch.to_string(),
                sub: subs.iter().map(|s| s.to_string()).collect(),
            })
            .collect(),
        flags: Vec::new(),
        listener_path: None,
        listener_metadata: None,
        syscalls: RULES
            .iter()
            .map(|r| OwnedRule {
                names: r.names.iter().map(|s| s.to_string()).collect(),
                action: r.action,
                errno_ret: r.errno_ret,
                args: r
                    .args
                    .iter()
                    .map(|Arg(index, value, op)| {
                        LinuxSeccompArgBuilder::default()
                            .index(*index)
                            .value(*value)
                            .op(*op)
                            .build()
                            .expect("every field is set")
                    })
                    .collect(),
                includes: owned(&r.includes),
                excludes: owned(&r.excludes),
            })
            .collect(),
    }
}
