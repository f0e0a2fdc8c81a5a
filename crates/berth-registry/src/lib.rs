#![forbid(unsafe_code)]
//! berth's client for the Docker Registry HTTP API v2 (the distribution spec).
//!
//! One [`Client`] serves a whole daemon: it keeps connections, learns each
//! registry's scheme (HTTPS, or plain HTTP for loopback and configured
//! insecure registries) and auth scheme once, and caches bearer tokens per
//! (registry, scope, credentials). Requests are retried with exponential
//! backoff on 5xx, 429 and broken connections; a broken blob download is
//! resumed with a Range request; every blob and manifest is verified against
//! its digest while it streams; Docker Hub pulls try the configured mirrors
//! first.
//!
//! Credentials come from docker's `config.json` ([`credentials`]) or are
//! given per call site with [`Client::with_credentials`] (the daemon's
//! `X-Registry-Auth`).
//!
//! [`pull`] and [`push`] combine the client with berth-image's content and
//! layer stores and berth-store's database: whole images in and out,
//! reporting [`progress`] as events.

mod auth;
mod blobs;
pub mod challenge;
mod client;
pub mod config;
mod error;
mod login;
mod manifests;
pub mod progress;
pub mod pull;
pub mod push;
mod tags;

pub use berth_credentials as credentials;
pub use blobs::{PushedBlob, Resume, Verify};
pub use client::{error_chain, Client};
pub use config::{RegistryConfig, RetryPolicy, UploadConfig};
pub use credentials::Credentials;
pub use error::RegistryError;
pub use manifests::{
    Manifest, ManifestHead, ACCEPT_ALL, MAX_MANIFEST_SIZE, MEDIA_TYPE_DOCKER_LIST,
    MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST,
};
pub use progress::{LayerStatus, Progress, ProgressEvent};
pub use pull::{pull, pull_all_tags, PullError, PullOptions, PulledImage};
pub use push::{push, push_all_tags, PushError, PushOptions, PushedImage};
