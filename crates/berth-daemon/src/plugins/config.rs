//! A managed plugin's configuration (its `config.json`) and settings, in
//! docker's shapes, and `plugin set`'s rules for changing the settings.
//!
//! docker reads `config.json` with Go's decoder, which matches keys
//! without regard to case (the documented file is lower camel case, the
//! API answers in upper camel case), so keys are lower-cased before
//! decoding and the API's names are written on the way out.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// docker's `PluginConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all(serialize = "PascalCase", deserialize = "lowercase"),
    default
)]
pub struct PluginConfig {
    #[serde(
        rename(serialize = "DockerVersion", deserialize = "dockerversion"),
        skip_serializing_if = "String::is_empty"
    )]
    pub docker_version: String,
    pub description: String,
    pub documentation: String,
    pub interface: Interface,
    pub entrypoint: Vec<String>,
    #[serde(rename(serialize = "WorkDir", deserialize = "workdir"))]
    pub work_dir: String,
    #[serde(skip_serializing_if = "User::is_empty")]
    pub user: User,
    pub network: Network,
    pub linux: Linux,
    #[serde(rename(serialize = "PropagatedMount", deserialize = "propagatedmount"))]
    pub propagated_mount: String,
    #[serde(rename(serialize = "IpcHost", deserialize = "ipchost"))]
    pub ipc_host: bool,
    #[serde(rename(serialize = "PidHost", deserialize = "pidhost"))]
    pub pid_host: bool,
    pub mounts: Vec<Mount>,
    pub env: Vec<EnvVar>,
    pub args: Args,
    #[serde(rename = "rootfs", skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<RootFs>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all(serialize = "PascalCase", deserialize = "lowercase"),
    default
)]
pub struct Interface {
    /// `prefix.capability/version`, e.g. `docker.volumedriver/1.0`.
    pub types: Vec<String>,
    pub socket: String,
    #[serde(
        rename(serialize = "ProtocolScheme", deserialize = "protocolscheme"),
        skip_serializing_if = "String::is_empty"
    )]
    pub protocol_scheme: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    #[serde(
        rename(serialize = "UID", deserialize = "uid"),
        skip_serializing_if = "is_zero"
    )]
    pub uid: u32,
    #[serde(
        rename(serialize = "GID", deserialize = "gid"),
        skip_serializing_if = "is_zero"
    )]
    pub gid: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl User {
    fn is_empty(&self) -> bool {
        self.uid == 0 && self.gid == 0
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all(serialize = "PascalCase", deserialize = "lowercase"),
    default
)]
pub struct Network {
    #[serde(rename(serialize = "Type", deserialize = "type"))]
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all(serialize = "PascalCase", deserialize = "lowercase"),
    default
)]
pub struct Linux {
    pub capabilities: Vec<String>,
    #[serde(rename(serialize = "AllowAllDevices", deserialize = "allowalldevices"))]
    pub allow_all_devices: bool,
    pub devices: Vec<Device>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all(serialize = "PascalCase", deserialize = "lowercase"),
    default
)]
pub struct Mount {
    pub name: String,
    pub description: String,
    pub settable: Vec<String>,
    pub source: Option<String>,
    pub destination: String,
    #[serde(rename(serialize = "Type", deserialize = "type"))]
    pub kind: String,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all(serialize = "PascalCase", deserialize = "lowercase"),
    default
)]
pub struct Device {
    pub name: String,
    pub description: String,
    pub settable: Vec<String>,
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all(serialize = "PascalCase", deserialize = "lowercase"),
    default
)]
pub struct EnvVar {
    pub name: String,
    pub description: String,
    pub settable: Vec<String>,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all(serialize = "PascalCase", deserialize = "lowercase"),
    default
)]
pub struct Args {
    pub name: String,
    pub description: String,
    pub settable: Vec<String>,
    pub value: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

/// docker's `Settings` of a plugin: what `plugin set` may change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all(serialize = "PascalCase", deserialize = "lowercase"),
    default
)]
pub struct Settings {
    pub mounts: Vec<Mount>,
    pub env: Vec<String>,
    pub args: Vec<String>,
    pub devices: Vec<Device>,
}

impl PluginConfig {
    /// Reads a plugin's `config.json`: any case of its keys, as docker's
    /// decoder accepts, and each interface type in docker's form.
    pub fn parse(bytes: &[u8]) -> Result<PluginConfig, String> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("config.json is not JSON: {e}"))?;
        if !value.is_object() {
            return Err("config.json is not a JSON object".into());
        }
        let config: PluginConfig = serde_json::from_value(lowercase_keys(value))
            .map_err(|e| format!("config.json: {e}"))?;
        for t in &config.interface.types {
            interface_capability(t)
                .ok_or_else(|| format!("config.json: {t:?} is not a plugin interface type (prefix.capability/version, e.g. docker.volumedriver/1.0)"))?;
        }
        Ok(config)
    }

    /// The settings a new plugin starts with: its configuration's values.
    pub fn initial_settings(&self) -> Settings {
        Settings {
            mounts: self.mounts.clone(),
            env: self
                .env
                .iter()
                .filter_map(|e| Some(format!("{}={}", e.name, e.value.as_ref()?)))
                .collect(),
            args: self.args.value.clone(),
            devices: self.linux.devices.clone(),
        }
    }

    /// Whether the plugin implements `capability` (`volumedriver`, ...),
    /// as `plugin ls --filter capability=` asks.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.interface
            .types
            .iter()
            .any(|t| interface_capability(t) == Some(capability))
    }
}

/// The capability of an interface type `prefix.capability/version` (the
/// prefix and version are optional, as in docker's parser).
fn interface_capability(t: &str) -> Option<&str> {
    let head = t.split_once('/').map_or(t, |(h, _)| h);
    let capability = head.rsplit_once('.').map_or(head, |(_, c)| c);
    (!capability.is_empty()).then_some(capability)
}

fn lowercase_keys(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.to_lowercase(), lowercase_keys(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(lowercase_keys).collect()),
        other => other,
    }
}

/// One `plugin set` argument: `name=value` or `name.field=value`.
struct Setting<'a> {
    name: &'a str,
    field: Option<&'a str>,
    value: &'a str,
}

fn parse_setting(arg: &str) -> Result<Setting<'_>, String> {
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("invalid plugin setting {arg:?}: expected name=value"))?;
    let (name, field) = match key.split_once('.') {
        Some((n, f)) => (n, Some(f)),
        None => (key, None),
    };
    if name.is_empty() {
        return Err(format!("invalid plugin setting {arg:?}: the name is empty"));
    }
    Ok(Setting { name, field, value })
}

/// Whether `s` may change a value whose configuration lists `settable`
/// and whose kind allows `allowed` to be set: a setting that names no
/// field means the one settable field, as in docker.
fn settable(s: &Setting<'_>, allowed: &str, settable: &[String]) -> Result<(), String> {
    let field = match (s.field, settable) {
        (Some(f), _) => f,
        (None, [only]) => only.as_str(),
        (None, []) => allowed,
        (None, _) => {
            return Err(format!(
                "{:?} has several settable fields: name one, as {}.FIELD=VALUE",
                s.name, s.name
            ))
        }
    };
    if field == allowed && settable.iter().any(|f| f == field) {
        Ok(())
    } else {
        let pretty = s
            .field
            .map_or(s.name.to_owned(), |f| format!("{}.{f}", s.name));
        Err(format!("{pretty:?} is not settable"))
    }
}

/// The settings' entry `is` picks, or a copy of the configuration's
/// (`configured`) added if the settings lack it.
fn entry<'a, T: Clone>(list: &'a mut Vec<T>, configured: &T, is: impl Fn(&T) -> bool) -> &'a mut T {
    let at = match list.iter().position(is) {
        Some(at) => at,
        None => {
            list.push(configured.clone());
            list.len() - 1
        }
    };
    &mut list[at]
}

impl Settings {
    /// Reads settings as [`Settings`] writes them.
    pub fn parse(bytes: &[u8]) -> Result<Settings, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        serde_json::from_value(lowercase_keys(value)).map_err(|e| e.to_string())
    }

    /// Applies `plugin set`'s arguments, docker's way: an environment
    /// variable's value, a mount's source, a device's path or the
    /// arguments, each only where the configuration marks it settable.
    /// Nothing changes unless every argument applies.
    pub fn apply(&mut self, config: &PluginConfig, args: &[String]) -> Result<(), String> {
        let mut next = self.clone();
        for arg in args {
            let s = parse_setting(arg)?;
            if let Some(env) = config.env.iter().find(|e| e.name == s.name) {
                settable(&s, "value", &env.settable)?;
                let entry = format!("{}={}", s.name, s.value);
                let prefix = format!("{}=", s.name);
                match next.env.iter_mut().find(|e| e.starts_with(&prefix)) {
                    Some(e) => *e = entry,
                    None => next.env.push(entry),
                }
            } else if let Some(i) = config.mounts.iter().position(|m| m.name == s.name) {
                settable(&s, "source", &config.mounts[i].settable)?;
                let m = entry(&mut next.mounts, &config.mounts[i], |m| m.name == s.name);
                m.source = Some(s.value.to_owned());
            } else if let Some(i) = config.linux.devices.iter().position(|d| d.name == s.name) {
                settable(&s, "path", &config.linux.devices[i].settable)?;
                let d = entry(&mut next.devices, &config.linux.devices[i], |d| {
                    d.name == s.name
                });
                d.path = Some(s.value.to_owned());
            } else if !config.args.name.is_empty() && config.args.name == s.name {
                settable(&s, "value", &config.args.settable)?;
                next.args = s.value.split(' ').map(str::to_owned).collect();
            } else {
                return Err(format!(
                    "setting {:?} not found in the plugin configuration",
                    s.name
                ));
            }
        }
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMMY: &str = r#"{
        "description": "Dummy test plugin",
        "Documentation": "https://example.com",
        "entrypoint": ["/dummy"],
        "network": {"type": "host"},
        "interface": {"types": ["docker.volumedriver/1.0"], "socket": "dummy.sock"},
        "propagatedMount": "/data",
        "mounts": [{"name": "state", "settable": ["source"], "source": "/var/lib/x",
                    "destination": "/state", "type": "bind", "options": ["rbind"]}],
        "linux": {"capabilities": ["CAP_SYS_ADMIN"], "devices": [{"name": "fuse", "path": "/dev/fuse"}]},
        "env": [{"name": "DEBUG", "settable": ["value"], "value": "0"},
                {"name": "FIXED", "value": "1"},
                {"name": "UNSET", "settable": ["value"]}],
        "args": {"name": "args", "settable": ["value"], "value": ["-a", "-b"]}
    }"#;

    #[test]
    fn config_keys_are_read_in_any_case_and_written_in_dockers() {
        let c = PluginConfig::parse(DUMMY.as_bytes()).unwrap();
        assert_eq!(c.entrypoint, ["/dummy"]);
        assert_eq!(c.documentation, "https://example.com");
        assert_eq!(c.propagated_mount, "/data");
        assert_eq!(c.network.kind, "host");
        let out = serde_json::to_value(&c).unwrap();
        assert_eq!(out["Interface"]["Types"][0], "docker.volumedriver/1.0");
        assert_eq!(out["Interface"]["Socket"], "dummy.sock");
        assert_eq!(out["Network"]["Type"], "host");
        assert_eq!(out["Linux"]["AllowAllDevices"], false);
        assert_eq!(out["Env"][2]["Value"], Value::Null);
        assert_eq!(out["Mounts"][0]["Type"], "bind");
        assert_eq!(out["Args"]["Value"][1], "-b");
        assert!(out.get("rootfs").is_none() && out.get("User").is_none());
        // What it writes, it reads back (the database keeps it this way).
        let again = PluginConfig::parse(&serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn bad_configs_are_named() {
        let e = PluginConfig::parse(b"[1]").unwrap_err();
        assert!(e.contains("not a JSON object"), "{e}");
        let e = PluginConfig::parse(br#"{"entrypoint": "/x"}"#).unwrap_err();
        assert!(e.contains("config.json"), "{e}");
        let e = PluginConfig::parse(br#"{"interface": {"types": ["docker./1.0"]}}"#).unwrap_err();
        assert!(e.contains("not a plugin interface type"), "{e}");
    }

    #[test]
    fn capabilities_come_from_the_interface_types() {
        let c = PluginConfig::parse(DUMMY.as_bytes()).unwrap();
        assert!(c.has_capability("volumedriver"));
        assert!(!c.has_capability("networkdriver"));
        assert_eq!(interface_capability("authz"), Some("authz"));
        assert_eq!(interface_capability("docker.logdriver"), Some("logdriver"));
    }

    #[test]
    fn settings_start_from_the_config_and_change_only_where_settable() {
        let c = PluginConfig::parse(DUMMY.as_bytes()).unwrap();
        let mut s = c.initial_settings();
        assert_eq!(s.env, ["DEBUG=0", "FIXED=1"]);
        assert_eq!(s.args, ["-a", "-b"]);
        assert_eq!(s.devices[0].path.as_deref(), Some("/dev/fuse"));

        s.apply(
            &c,
            &["DEBUG=1".into(), "UNSET=x".into(), "state=/srv".into()],
        )
        .unwrap();
        assert_eq!(s.env, ["DEBUG=1", "FIXED=1", "UNSET=x"]);
        assert_eq!(s.mounts[0].source.as_deref(), Some("/srv"));
        // Stored and read back, as set does between requests.
        let stored = serde_json::to_vec(&s).unwrap();
        assert!(String::from_utf8_lossy(&stored).contains(r#""Source":"/srv""#));
        assert_eq!(Settings::parse(&stored).unwrap(), s);
        s.apply(&c, &["args=-c -d".into(), "DEBUG.value=2".into()])
            .unwrap();
        assert_eq!(s.args, ["-c", "-d"]);
        assert_eq!(s.env[0], "DEBUG=2");

        let before = s.clone();
        for (arg, why) in [
            ("FIXED=2", "\"FIXED\" is not settable"),
            ("fuse=/dev/other", "\"fuse\" is not settable"),
            (
                "state.destination=/x",
                "\"state.destination\" is not settable",
            ),
            ("NOPE=1", "setting \"NOPE\" not found"),
            ("DEBUG", "expected name=value"),
        ] {
            let e = s.apply(&c, &["DEBUG=9".into(), arg.into()]).unwrap_err();
            assert!(e.contains(why), "{arg}: {e}");
            assert_eq!(s, before, "{arg} changed the settings");
        }
    }
}
