//! The compiled filter: what the parent hands to the child, and the one
//! call the child makes with it.

use std::os::fd::OwnedFd;

use berth_sys::seccomp::{self as sys, SockFilter};

use crate::Error;

/// A seccomp filter ready to load: the BPF program and its seccomp(2) flags.
///
/// Built in the parent by [`crate::compile`] or [`crate::compile_cached`];
/// [`CompiledFilter::load`] in the child only makes the syscall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFilter {
    program: Vec<SockFilter>,
    flags: u32,
}

impl CompiledFilter {
    pub(crate) fn new(program: Vec<SockFilter>, flags: u32) -> Self {
        CompiledFilter { program, flags }
    }

    /// The classic-BPF instructions.
    pub fn program(&self) -> &[SockFilter] {
        &self.program
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits passed to seccomp(2).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether loading returns a notification listener (the profile uses
    /// `SCMP_ACT_NOTIFY`); the runtime must then pass it on with
    /// [`crate::send_listener`] before the container's first notified syscall.
    pub fn needs_listener(&self) -> bool {
        self.flags & sys::FLAG_NEW_LISTENER != 0
    }

    /// Attaches the filter to the calling thread; for the container's child
    /// process, right before exec.
    ///
    /// Allocates nothing (safe after fork). The caller must hold
    /// `no_new_privs` or `CAP_SYS_ADMIN`: without noNewPrivileges, load
    /// before dropping capabilities. Returns the listener fd when
    /// [`needs_listener`](Self::needs_listener).
    pub fn load(&self) -> Result<Option<OwnedFd>, Error> {
        sys::set_mode_filter(self.flags, &self.program).map_err(|source| Error::Load { source })
    }
}
