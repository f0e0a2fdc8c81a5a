#![forbid(unsafe_code)]
//! The Docker Engine API wire format, and nothing else.
//!
//! Only this crate knows how docker spells things on the wire: the generated
//! models (re-exported from bollard-stubs so every other crate names them
//! through `berth_api::models`), the query strings of the endpoints berth
//! serves, version negotiation, the error body, the multiplexed stdout/stderr
//! stream and the JSON progress messages of pull, push and load. The daemon
//! converts its own engine types into these; the CLI reads them back.

pub use bollard_stubs::models;

pub mod error;
pub mod filters;
pub mod progress;
pub mod query;
pub mod stream;
pub mod version;

pub use error::ErrorBody;
pub use filters::Filters;
pub use progress::{JsonMessage, ProgressDetail};
pub use stream::{FrameDecoder, StreamKind};
pub use version::ApiVersion;
