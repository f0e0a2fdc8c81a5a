//! Managed plugins: docker's `/plugins` endpoints over berth-store's
//! `plugins` table and `<data-root>/plugins/<id>/rootfs`.
//!
//! berthd keeps plugins (`docker plugin create`, `ls`, `inspect`, `set`,
//! `rm`) but does not run them: its volume, network and log drivers are
//! built in, so enabling one is refused by name, as are installing one
//! from a registry and pushing one there. What a plugin in a registry
//! would be granted (`privileges`) is read from the registry.
//!
//! The row is the truth about which plugins exist. Create unpacks the
//! context into a staging directory, moves the root file system to
//! `<id>/rootfs` and then writes the row; remove deletes the row and then
//! the directory. What a daemon killed in between leaves (a staging
//! directory, a directory without a row) is removed at start-up.

pub mod config;
pub mod privileges;
pub mod routes;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use berth_api::Filters;
use berth_errdefs::ErrorKind;
use berth_image::reference::Reference;
use berth_store::{PluginRow, StoreError};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use self::config::{PluginConfig, RootFs, Settings};
use crate::engine::Engine;
use crate::error::ApiError;

/// The largest `config.json` a plugin context may hold.
const MAX_CONFIG: u64 = 1 << 20;
/// The largest plugin context (its root file system, unpacked).
const MAX_CONTEXT: u64 = 8 << 30;
/// Staging directories of creates in flight start with this.
const STAGING_PREFIX: &str = ".create-";

fn bad_context(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(format!("invalid plugin context: {}", msg.into()))
}

/// `name` as docker names plugins: a reference, `latest` when untagged,
/// never a digest.
fn plugin_reference(name: &str) -> Result<Reference, ApiError> {
    let r = Reference::parse(name)
        .map_err(|e| ApiError::bad_request(format!("invalid plugin name {name:?}: {e}")))?;
    if r.digest().is_some() {
        return Err(ApiError::bad_request(format!(
            "invalid plugin name {name:?}: a plugin is named by a tag, not a digest"
        )));
    }
    Ok(r.with_default_tag())
}

/// `sha256:` of `rootfs` written as a tar: the plugin's diff id, as
/// docker records it in the config's `rootfs`.
fn diff_id(rootfs: &Path) -> Result<String, ApiError> {
    struct HashSink(Sha256);
    impl Write for HashSink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut sink = HashSink(Sha256::new());
    berth_archive::write_tree(rootfs, &mut sink).map_err(|e| {
        ApiError::internal(format!(
            "reading the plugin's root file system {}: {e}",
            rootfs.display()
        ))
    })?;
    Ok(format!("sha256:{:x}", sink.0.finalize()))
}

/// Reads the context's `config.json`.
fn read_config(staging: &Path) -> Result<PluginConfig, ApiError> {
    let path = staging.join("config.json");
    let meta = std::fs::symlink_metadata(&path)
        .map_err(|_| bad_context("it has no config.json at its top"))?;
    if !meta.is_file() {
        return Err(bad_context("config.json is not a regular file"));
    }
    if meta.len() > MAX_CONFIG {
        return Err(bad_context(format!(
            "config.json is larger than {MAX_CONFIG} bytes"
        )));
    }
    let bytes = std::fs::read(&path)
        .map_err(|e| ApiError::internal(format!("reading {}: {e}", path.display())))?;
    PluginConfig::parse(&bytes).map_err(bad_context)
}

fn unreadable(what: &str, row: &PluginRow, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorKind::DataLoss,
        format!(
            "the stored {what} of plugin {} is unreadable ({e}); remove the plugin and create it again",
            row.name
        ),
    )
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
    row: &PluginRow,
) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| unreadable(what, row, e))
}

fn stored_config(row: &PluginRow) -> Result<PluginConfig, ApiError> {
    PluginConfig::parse(&row.config).map_err(|e| unreadable("config", row, e))
}

impl Engine {
    fn plugins_dir(&self) -> PathBuf {
        self.config().data_root.join("plugins")
    }

    /// The plugin `asked` names: its name (tag `latest` if none), its id
    /// or an id prefix.
    fn find_plugin(&self, asked: &str) -> Result<PluginRow, ApiError> {
        let name = plugin_reference(asked).ok().map(|r| r.familiar());
        Ok(self.store.resolve_plugin(name.as_deref(), asked, asked)?)
    }

    /// `POST /plugins/create`: a plugin from a tar of its `config.json` and
    /// `rootfs` directory (plain or compressed), disabled, as docker
    /// makes it.
    ///
    /// A refusal reads the rest of the context first, so that the client
    /// gets the answer rather than a broken pipe.
    pub fn create_plugin(&self, name: &str, mut context: impl Read) -> Result<(), ApiError> {
        let familiar = plugin_reference(name).map(|r| r.familiar());
        // (a failing lookup is not a refusal: the insert below meets it)
        let familiar = match familiar {
            Ok(f) if self.store.resolve_plugin(Some(&f), "", name).is_err() => f,
            refused => {
                crate::streams::drain_rest(&mut context);
                return Err(match refused {
                    Ok(f) => StoreError::PluginExists { name: f }.into(),
                    Err(e) => e,
                });
            }
        };
        let id = crate::containers::names::new_id();
        let dir = self.plugins_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))?;
        let staging = dir.join(format!("{STAGING_PREFIX}{id}"));
        let made = self.stage_plugin(&staging, &dir.join(&id), &mut context);
        if made.is_err() {
            crate::streams::drain_rest(&mut context);
            // (absent unless the move of the root file system failed)
            let _ = std::fs::remove_dir_all(dir.join(&id));
        }
        if let Err(e) = std::fs::remove_dir_all(&staging) {
            tracing::warn!(dir = %staging.display(), error = %e, "removing a plugin's staging directory");
        }
        let mut config = made?;
        config.docker_version = crate::system::ENGINE_VERSION.to_owned();
        let settings = config.initial_settings();
        let row = PluginRow {
            id: id.clone(),
            name: familiar.clone(),
            created_at: crate::events::now_nanos() as i64,
            config: serde_json::to_vec(&config).expect("a plugin config serialises"),
            settings: serde_json::to_vec(&settings).expect("plugin settings serialise"),
        };
        if let Err(e) = self.store.insert_plugin(&row) {
            let _ = std::fs::remove_dir_all(dir.join(&id));
            return Err(e.into());
        }
        self.events.emit("plugin", "create", &id, Some(&familiar));
        Ok(())
    }

    /// Unpacks `context` into `staging` and moves its root file system to
    /// `<target>/rootfs`. Returns the plugin's config, its diff id filled.
    fn stage_plugin(
        &self,
        staging: &Path,
        target: &Path,
        context: impl Read,
    ) -> Result<PluginConfig, ApiError> {
        std::fs::create_dir(staging)
            .map_err(|e| ApiError::internal(format!("creating {}: {e}", staging.display())))?;
        let mut input = context.take(MAX_CONTEXT);
        let (_, plain) = berth_archive::auto_decompressor(&mut input)
            .map_err(|e| bad_context(format!("reading it: {e}")))?;
        let opts = berth_archive::ApplyOptions {
            whiteouts: false,
            max_total_size: MAX_CONTEXT,
            sync: true,
            ..Default::default()
        };
        berth_archive::apply_layer(plain, staging, &opts)
            .map_err(|e| bad_context(format!("not a valid tar archive: {e}")))?;
        crate::streams::drain_rest(&mut input);
        let mut config = read_config(staging)?;
        let rootfs = staging.join("rootfs");
        if !std::fs::symlink_metadata(&rootfs).is_ok_and(|m| m.is_dir()) {
            return Err(bad_context("it has no rootfs directory at its top"));
        }
        config.rootfs = Some(RootFs {
            kind: "layers".into(),
            diff_ids: vec![diff_id(&rootfs)?],
        });
        let fail = |what: &str, p: &Path, e: std::io::Error| {
            ApiError::internal(format!("{what} {}: {e}", p.display()))
        };
        std::fs::create_dir(target).map_err(|e| fail("creating", target, e))?;
        std::fs::rename(&rootfs, target.join("rootfs"))
            .map_err(|e| fail("moving the plugin's root file system to", target, e))?;
        Ok(config)
    }

    /// docker's `Plugin` object of a stored plugin.
    fn plugin_json(&self, row: &PluginRow) -> Result<Value, ApiError> {
        let config: Value = decode(&row.config, "config", row)?;
        let settings: Value = decode(&row.settings, "settings", row)?;
        let reference =
            Reference::parse(&row.name).map_or_else(|_| row.name.clone(), |r| r.to_string());
        Ok(json!({
            "Id": row.id,
            "Name": row.name,
            "Enabled": false,
            "Settings": settings,
            "PluginReference": reference,
            "Config": config,
        }))
    }

    /// `GET /plugins`, with docker's `capability` and `enabled` filters.
    pub fn list_plugins(&self, filters: &Filters) -> Result<Value, ApiError> {
        filters.validate(&["capability", "enabled"])?;
        // No plugin is ever enabled here.
        let enabled_only = filters.bool("enabled")? == Some(true);
        let mut out = Vec::new();
        for row in self.store.plugins()? {
            if enabled_only {
                continue;
            }
            if filters.contains("capability") {
                let config = stored_config(&row)?;
                if !filters.get("capability").any(|c| config.has_capability(c)) {
                    continue;
                }
            }
            out.push(self.plugin_json(&row)?);
        }
        Ok(Value::Array(out))
    }

    /// `GET /plugins/{name}/json`.
    pub fn inspect_plugin(&self, name: &str) -> Result<Value, ApiError> {
        self.plugin_json(&self.find_plugin(name)?)
    }

    /// `POST /plugins/{name}/set`: docker's `plugin set`.
    pub fn set_plugin(&self, name: &str, args: &[String]) -> Result<(), ApiError> {
        let row = self.find_plugin(name)?;
        let config = stored_config(&row)?;
        let mut settings =
            Settings::parse(&row.settings).map_err(|e| unreadable("settings", &row, e))?;
        settings
            .apply(&config, args)
            .map_err(|e| ApiError::bad_request(format!("plugin {}: {e}", row.name)))?;
        let bytes = serde_json::to_vec(&settings).expect("plugin settings serialise");
        Ok(self.store.set_plugin_settings(&row.id, &bytes)?)
    }

    /// `POST /plugins/{name}/enable`: refused, naming why.
    pub fn enable_plugin(&self, name: &str) -> Result<(), ApiError> {
        let row = self.find_plugin(name)?;
        Err(ApiError::new(
            ErrorKind::NotImplemented,
            format!(
                "enabling plugin {} is not supported by berthd: it keeps managed plugins but does not run them (its volume, network and log drivers are built in)",
                row.name
            ),
        ))
    }

    /// `POST /plugins/{name}/disable`: every plugin here is disabled.
    pub fn disable_plugin(&self, name: &str) -> Result<(), ApiError> {
        let row = self.find_plugin(name)?;
        Err(ApiError::new(
            ErrorKind::Conflict,
            format!("plugin {} is already disabled", row.name),
        ))
    }

    /// `DELETE /plugins/{name}`.
    pub fn remove_plugin(&self, name: &str) -> Result<(), ApiError> {
        let row = self.find_plugin(name)?;
        self.store.delete_plugin(&row.id)?;
        let dir = self.plugins_dir().join(&row.id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            // The row is gone, so the start-up sweep removes it later.
            tracing::warn!(dir = %dir.display(), error = %e, "removing a plugin's files");
        }
        self.events
            .emit("plugin", "remove", &row.id, Some(&row.name));
        Ok(())
    }

    /// Start-up: staging directories and directories without a row (a
    /// create or remove cut short) go.
    pub(crate) fn remove_orphan_plugin_dirs(&self) {
        let Ok(rows) = self.store.plugins() else {
            return;
        };
        let known: HashSet<String> = rows.into_iter().map(|p| p.id).collect();
        for e in std::fs::read_dir(self.plugins_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if !known.contains(&name) {
                tracing::warn!(dir = %e.path().display(), "removing the directory of an unrecorded plugin");
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}
