#![forbid(unsafe_code)]
//! OCI seccomp for berth's runtime: an OCI `linux.seccomp` profile is
//! validated and compiled to a BPF program with libseccomp in the parent,
//! cached on disk by hash, and loaded in the container's child right before
//! exec with one allocation-free seccomp(2) call.
//!
//! ```text
//! parent:  compile_cached(profile, dir) -> CompiledFilter   (all validation here)
//! child:   filter.load() -> Option<listener fd>             (just the syscall)
//! runtime: send_listener(path, metadata, state, fd)         (SCMP_ACT_NOTIFY only)
//! ```
//!
//! Docker-format profiles (`archMap`, `includes`, `excludes`) are resolved
//! to an OCI section for one container with [`docker_to_oci`]; raw OCI JSON
//! is read with [`parse_profile`], whose errors name the offending field.
//!
//! Semantics follow runc: SCMP_ACT_KILL is KILL_THREAD; ERRNO and TRACE
//! default to EPERM; unknown syscall names are skipped with a warning;
//! rules equal to the default action are dropped; several conditions on
//! distinct arguments are ANDed, and if an argument index repeats each
//! condition becomes its own rule (ORed).

mod cache;
mod compile;
mod docker;
mod enosys;
mod error;
mod filter;
mod json;
mod listener;
mod plan;

pub use cache::compile_cached;
pub use docker::{docker_to_oci, DockerTarget};
pub use error::Error;
pub use filter::CompiledFilter;
pub use json::parse_profile;
pub use listener::send_listener;

use oci_spec::runtime::LinuxSeccomp;

/// Validates `profile` and compiles it to a BPF program for the running
/// kernel. Every check happens here, so that the child only loads.
pub fn compile(profile: &LinuxSeccomp) -> Result<CompiledFilter, Error> {
    let plan = plan::plan(profile)?;
    compile::compile_plan(&plan)
}
