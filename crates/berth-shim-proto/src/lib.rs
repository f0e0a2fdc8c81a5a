#![forbid(unsafe_code)]
//! The protocol between berthd and one `berth-shim`.
//!
//! One shim supervises one container and listens on a unix stream socket.
//! A connection carries frames (`frame`): a big-endian `u32` length, then
//! that many bytes of JSON, at most [`MAX_FRAME`]. The first exchange on
//! every connection is [`Request::Hello`] / [`Response::Hello`]: the shim
//! refuses a client whose major [`PROTOCOL_VERSION`] differs, so a daemon
//! and a shim from different releases fail loudly instead of misreading
//! each other. After the hello, the client sends one [`Request`] at a time
//! and reads exactly one [`Response`] for it (blocking requests such as
//! [`Request::Wait`] simply take long; open another connection meanwhile).
//!
//! [`Request::Attach`] and an attached [`Request::Exec`] end the framed part
//! of a connection: after their response the socket carries raw stream
//! bytes (`stream`), see [`Request::Attach`].
//!
//! The protocol is synchronous and has no async dependency: the shim serves
//! it from an epoll loop, the daemon calls [`ShimClient`] from blocking
//! threads. Engine types only: the Docker wire format lives in berth-api.

pub mod client;
pub mod error;
pub mod frame;
pub mod messages;
pub mod stream;

pub use client::ShimClient;
pub use error::{Error, Result};
pub use messages::{
    AttachOptions, ContainerStatus, ErrorCode, Exit, Request, Response, ShimStatus, Stats,
};

/// The protocol's version. Bumped on any change that an older peer would
/// misread; the shim and the client must agree exactly.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest frame either side sends or accepts (4 MiB). An exec request
/// with a large environment fits; a hostile or confused peer cannot make
/// the other side allocate without bound.
pub const MAX_FRAME: u32 = 4 << 20;

/// The name of the exit record the shim writes next to its socket
/// (`<socket dir>/exit.json`): an [`Exit`] as JSON, written to a temporary
/// file and renamed, so a reader never sees half of it.
pub const EXIT_RECORD: &str = "exit.json";
