#![forbid(unsafe_code)]
//! berth's metadata database, `<data_root>/berth.db` (SQLite, WAL).
//!
//! The schema is written in code as numbered migrations ([`schema`]); every
//! change happens in a transaction. Images, references, layers, leases,
//! containers, networks, volumes and managed plugins live here; blobs and layer files live in berth-image's content and
//! layer stores, and [`Store::gc`] removes the ones nothing reaches.

mod containers;
mod db;
mod gc;
mod images;
mod layers;
mod leases;
mod networks;
mod plugins;
pub mod schema;
mod volumes;

pub use containers::ContainerRow;
pub use db::{Durability, Store, StoreError};
pub use gc::{GcError, GcOptions, GcReport};
pub use images::{ImageLayer, ImageRecord, LayerBlob, RefKind};
pub use layers::LayerRecord;
pub use leases::{Lease, LeaseResource};
pub use networks::{EndpointRow, NetworkRow, PortBindingRow};
pub use plugins::PluginRow;
pub use volumes::VolumeRow;
