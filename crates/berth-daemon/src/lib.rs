#![forbid(unsafe_code)]
// `/info` is one large json! literal.
#![recursion_limit = "256"]
//! berthd's engine and its Docker Engine API routers.
//!
//! [`Engine`] owns the stores (metadata database, content, layers) and the
//! registry client and offers the image services; they are synchronous
//! (the libraries below are) and run on tokio's blocking threads. The
//! [`http`] module turns requests into service calls and answers in
//! docker's wire format through berth-api. Containers are reached only
//! through the shim protocol ([`containers`]).

mod build;
pub mod config;
mod container_routes;
pub mod containers;
mod distribution;
pub mod engine;
pub mod error;
pub mod events;
// For the fuzz targets in fuzz/ only: not an API.
#[doc(hidden)]
pub mod fuzzing;
mod go_duration;
mod hex;
pub mod http;
mod image_lineage;
pub mod images;
mod inflight;
pub mod init;
mod network_routes;
pub mod networks;
mod plugins;
mod progress;
pub mod spec;
mod streams;
mod system;
mod url_import;
mod volume_routes;
pub mod volumes;
mod websocket;

pub use config::{DaemonConfig, Host};
pub use engine::Engine;
pub use error::ApiError;
