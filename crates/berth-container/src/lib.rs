#![forbid(unsafe_code)]
//! One OCI bundle's lifecycle, crun-style: parse once, clone3 straight into
//! the new namespaces, set up in the child, never re-exec the runtime.
//!
//! Synchronous by design (it forks): the runtime binary and the shim embed it.

mod affinity;
pub mod caps;
pub mod config;
pub mod console;
pub mod container;
mod devices;
pub mod error;
pub mod exec;
mod hooks;
pub mod idmap;
mod init;
pub mod mounts;
mod namespaces;
pub mod paths;
mod process;
mod rootfs;
pub mod state;
mod sync;
pub mod sysctl;

pub use container::{Container, CreateOptions, Runtime};
pub use error::{Error, Result};
pub use exec::ExecOptions;
pub use state::{OciState, Status};
