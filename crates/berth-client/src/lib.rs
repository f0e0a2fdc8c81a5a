#![forbid(unsafe_code)]
//! A synchronous client for the Docker Engine API, as berth's CLI uses it.
//!
//! Synchronous on purpose: the CLI makes a handful of requests per command,
//! and a blocking client over a `UnixStream` starts in microseconds where an
//! async runtime would cost a thread pool and milliseconds.
//!
//! - [`host`]: where the daemon is (`-H`, `BERTH_HOST`, `DOCKER_HOST`).
//! - [`http`]: HTTP/1.1 requests, response framing (length, chunked, EOF).
//! - [`client`]: API version negotiation, error bodies, JSON helpers, hijack.
//! - [`stream`]: multiplexed stdout/stderr frames and JSON progress lines.

pub mod client;
pub mod error;
pub mod host;
pub mod http;
pub mod query;
pub mod stream;

pub use client::{Client, Hijacked, MAX_API_VERSION};
pub use error::Error;
pub use host::Host;
pub use http::{Body, Response};
pub use query::Query;
