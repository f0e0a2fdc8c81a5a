#![forbid(unsafe_code)]
//! Registry credentials in docker's `config.json` format.
//!
//! Lookup follows docker: a `credHelpers` entry for the registry wins, then
//! `credsStore`, then the inline `auths` entry (base64 `auth`, or separate
//! `username`/`password`, and `identitytoken`). `store` and `erase` back
//! `berth login`/`logout`: they rewrite the file atomically (temp file,
//! fsync, rename) with mode 0600 and keep every field they do not own.

use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use berth_errdefs::{ErrorKind, HasKind};
use serde_json::{Map, Value};

/// The key docker stores Docker Hub's credentials under.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// Whether `domain` names Docker Hub.
pub fn is_docker_hub(domain: &str) -> bool {
    matches!(
        domain,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// Bound on the size of a config file or a helper's answer.
const MAX_CONFIG_SIZE: u64 = 4 << 20;
/// How long a credential helper may take before berth gives up on it.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read docker config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("docker config {path} is not valid JSON ({source}); fix or remove the file")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("docker config {path} is larger than {MAX_CONFIG_SIZE} bytes; refusing to read it")]
    TooLarge { path: PathBuf },
    #[error("the \"auth\" entry for {registry} in {path} is not base64 of \"user:password\"; log in again with `berth login {registry}`")]
    BadAuth { path: PathBuf, registry: String },
    #[error("cannot write docker config {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("credential helper docker-credential-{helper} not found in PATH; install it or remove \"{helper}\" from {path}")]
    HelperNotFound { helper: String, path: PathBuf },
    #[error("credential helper docker-credential-{helper} failed to {action} credentials for {registry}: {message}")]
    Helper {
        helper: String,
        action: &'static str,
        registry: String,
        message: String,
    },
}

impl HasKind for CredentialsError {
    fn kind(&self) -> ErrorKind {
        match self {
            CredentialsError::Parse { .. }
            | CredentialsError::BadAuth { .. }
            | CredentialsError::TooLarge { .. } => ErrorKind::InvalidArgument,
            CredentialsError::HelperNotFound { .. } => ErrorKind::FailedPrecondition,
            CredentialsError::Read { .. }
            | CredentialsError::Write { .. }
            | CredentialsError::Helper { .. } => ErrorKind::Internal,
        }
    }
}

/// A user's credentials for one registry.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// An OAuth2 refresh token from a previous login; used instead of the password.
    pub identity_token: Option<String>,
}

impl fmt::Debug for Credentials {
    // Secrets never reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field(
                "identity_token",
                &self.identity_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Credentials {
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
            identity_token: None,
        }
    }
}

/// The default config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn default_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// The key `domain` is stored under in `auths` and passed to helpers.
pub fn server_key(domain: &str) -> String {
    if is_docker_hub(domain) {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        domain.to_string()
    }
}

/// docker's ConvertToHostname: drop the scheme and any path from a stored key.
pub fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn same_registry(key: &str, domain: &str) -> bool {
    let host = key_host(key);
    host.eq_ignore_ascii_case(domain) || (is_docker_hub(domain) && is_docker_hub(host))
}

/// Where [`DockerConfig::store`] put the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// With the named `docker-credential-<name>` helper.
    Helper(String),
    /// In the file itself (base64, not encrypted); `written` is false when
    /// the same entry was already there.
    File { written: bool },
}

/// A loaded config file.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    root: Map<String, Value>,
    /// Search path for helpers; `$PATH` when `None`.
    helper_path: Option<OsString>,
}

impl DockerConfig {
    /// Loads `path`; a missing file is an empty config.
    pub fn load(path: &Path, helper_path: Option<OsString>) -> Result<Self, CredentialsError> {
        let root = match std::fs::File::open(path) {
            Ok(f) => {
                let mut text = Vec::new();
                f.take(MAX_CONFIG_SIZE + 1)
                    .read_to_end(&mut text)
                    .map_err(|source| CredentialsError::Read {
                        path: path.into(),
                        source,
                    })?;
                if text.len() as u64 > MAX_CONFIG_SIZE {
                    return Err(CredentialsError::TooLarge { path: path.into() });
                }
                if text.iter().all(u8::is_ascii_whitespace) {
                    Map::new()
                } else {
                    serde_json::from_slice(&text).map_err(|source| CredentialsError::Parse {
                        path: path.into(),
                        source,
                    })?
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(source) => {
                return Err(CredentialsError::Read {
                    path: path.into(),
                    source,
                })
            }
        };
        Ok(DockerConfig {
            path: path.into(),
            root,
            helper_path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The helper responsible for `domain`, if any.
    pub fn helper_for(&self, domain: &str) -> Option<String> {
        if let Some(helpers) = self.root.get("credHelpers").and_then(Value::as_object) {
            for (key, helper) in helpers {
                if same_registry(key, domain) {
                    if let Some(h) = helper.as_str().filter(|h| !h.is_empty()) {
                        return Some(h.to_string());
                    }
                }
            }
        }
        self.root
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
    }

    /// The credentials for `domain` (a reference's domain, e.g. `docker.io` or `localhost:5000`).
    pub fn get(&self, domain: &str) -> Result<Option<Credentials>, CredentialsError> {
        if let Some(helper) = self.helper_for(domain) {
            if let Some(c) = self.helper_get(&helper, domain)? {
                return Ok(Some(c));
            }
        }
        let Some(auths) = self.root.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        // An exact key wins over a normalised match ("https://host/v1/").
        let key = server_key(domain);
        let entry = auths.get(&key).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| same_registry(k, domain))
                .map(|(_, v)| v)
        });
        let Some(entry) = entry.and_then(Value::as_object) else {
            return Ok(None);
        };
        let field = |n: &str| {
            entry
                .get(n)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let mut creds = Credentials {
            username: field("username"),
            password: field("password"),
            identity_token: None,
        };
        let auth = field("auth");
        if !auth.is_empty() {
            let bad = || CredentialsError::BadAuth {
                path: self.path.clone(),
                registry: domain.into(),
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (user, pass) = decoded.split_once(':').ok_or_else(bad)?;
            creds.username = user.to_string();
            creds.password = pass.to_string();
        }
        let token = field("identitytoken");
        if !token.is_empty() {
            creds.identity_token = Some(token);
        }
        if creds.username.is_empty() && creds.password.is_empty() && creds.identity_token.is_none()
        {
            return Ok(None);
        }
        Ok(Some(creds))
    }

    /// Saves credentials for `domain` (through its helper if one is
    /// configured) and writes the file. As docker's file store, an
    /// unchanged entry does not rewrite the file.
    pub fn store(&mut self, domain: &str, creds: &Credentials) -> Result<Stored, CredentialsError> {
        let key = server_key(domain);
        if let Some(helper) = self.helper_for(domain) {
            let (username, secret) = match &creds.identity_token {
                Some(t) => ("<token>".to_string(), t.clone()),
                None => (creds.username.clone(), creds.password.clone()),
            };
            let input =
                serde_json::json!({ "ServerURL": key, "Username": username, "Secret": secret });
            self.run_helper(&helper, "store", domain, input.to_string().as_bytes())?;
            // Leave an empty entry so that `docker info`-style listings still show the login.
            self.auths_mut().insert(key, Value::Object(Map::new()));
            self.save()?;
            return Ok(Stored::Helper(helper));
        }
        let mut entry = Map::new();
        if creds.identity_token.is_none() || !creds.password.is_empty() {
            let raw = format!("{}:{}", creds.username, creds.password);
            entry.insert(
                "auth".into(),
                base64::engine::general_purpose::STANDARD.encode(raw).into(),
            );
        }
        if let Some(t) = &creds.identity_token {
            entry.insert("identitytoken".into(), t.clone().into());
        }
        let entry = Value::Object(entry);
        let auths = self.auths_mut();
        let unchanged = auths.get(&key) == Some(&entry)
            && auths.keys().filter(|k| same_registry(k, domain)).count() == 1;
        if unchanged {
            return Ok(Stored::File { written: false });
        }
        auths.retain(|k, _| !same_registry(k, domain));
        auths.insert(key, entry);
        self.save()?;
        Ok(Stored::File { written: true })
    }

    /// Removes credentials for `domain`; returns whether there were any.
    pub fn erase(&mut self, domain: &str) -> Result<bool, CredentialsError> {
        let mut found = false;
        if let Some(helper) = self.helper_for(domain) {
            let key = server_key(domain);
            match self.run_helper(&helper, "erase", domain, key.as_bytes()) {
                Ok(_) => found = true,
                Err(CredentialsError::Helper { message, .. }) if is_not_found(&message) => {}
                Err(e) => return Err(e),
            }
        }
        let auths = self.auths_mut();
        let before = auths.len();
        auths.retain(|k, _| !same_registry(k, domain));
        found |= auths.len() != before;
        self.save()?;
        Ok(found)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let v = self
            .root
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !v.is_object() {
            *v = Value::Object(Map::new());
        }
        v.as_object_mut().expect("auths was just made an object")
    }

    /// Writes the file atomically with mode 0600, so a crash never leaves half a file
    /// and other users never see the secrets.
    fn save(&self) -> Result<(), CredentialsError> {
        let werr = |source| CredentialsError::Write {
            path: self.path.clone(),
            source,
        };
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(werr)?;
        // Tab-indented without a final newline, as docker writes it.
        let mut text = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut text, fmt);
        serde::Serialize::serialize(&self.root, &mut ser).expect("a JSON map always serialises");
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
        let result = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            std::fs::File::open(dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(werr)
    }

    fn helper_get(
        &self,
        helper: &str,
        domain: &str,
    ) -> Result<Option<Credentials>, CredentialsError> {
        let key = server_key(domain);
        let out = match self.run_helper(helper, "get", domain, key.as_bytes()) {
            Ok(out) => out,
            Err(CredentialsError::Helper { message, .. }) if is_not_found(&message) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let a: Answer = serde_json::from_slice(&out).map_err(|e| CredentialsError::Helper {
            helper: helper.into(),
            action: "get",
            registry: domain.into(),
            message: format!("unreadable answer: {e}"),
        })?;
        if a.username.is_empty() && a.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(if a.username == "<token>" {
            Credentials {
                username: String::new(),
                password: String::new(),
                identity_token: Some(a.secret),
            }
        } else {
            Credentials::basic(a.username, a.secret)
        }))
    }

    fn find_helper(&self, helper: &str) -> Option<PathBuf> {
        let name = format!("docker-credential-{helper}");
        if helper.contains('/') {
            return None; // a helper name never names a path
        }
        let path = self
            .helper_path
            .clone()
            .or_else(|| std::env::var_os("PATH"))?;
        std::env::split_paths(&path)
            .map(|d| d.join(&name))
            .find(|p| p.is_file())
    }

    /// Runs `docker-credential-<helper> <action>` with `input` on stdin; returns stdout.
    fn run_helper(
        &self,
        helper: &str,
        action: &'static str,
        domain: &str,
        input: &[u8],
    ) -> Result<Vec<u8>, CredentialsError> {
        let program = self
            .find_helper(helper)
            .ok_or_else(|| CredentialsError::HelperNotFound {
                helper: helper.into(),
                path: self.path.clone(),
            })?;
        let fail = |message: String| CredentialsError::Helper {
            helper: helper.into(),
            action,
            registry: domain.into(),
            message,
        };
        let mut child = Command::new(&program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot run {}: {e}", program.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading stdin is judged by its exit status below.
            let _ = stdin.write_all(input);
        }
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let out_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = (&mut stdout).take(MAX_CONFIG_SIZE).read_to_end(&mut buf);
            buf
        });
        let err_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = (&mut stderr).take(64 << 10).read_to_end(&mut buf);
            buf
        });
        let deadline = Instant::now() + HELPER_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!(
                        "no answer within {}s",
                        HELPER_TIMEOUT.as_secs()
                    )));
                }
                Err(e) => return Err(fail(format!("waiting for it failed: {e}"))),
            }
        };
        let out = out_reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        if !status.success() {
            // Helpers print their error on stdout (docker-credential-helpers convention).
            let mut message = String::from_utf8_lossy(&out).trim().to_string();
            if message.is_empty() {
                message = String::from_utf8_lossy(&err).trim().to_string();
            }
            if message.is_empty() {
                message = format!("exited with {status}");
            }
            return Err(fail(message));
        }
        Ok(out)
    }
}

fn is_not_found(message: &str) -> bool {
    message.contains("credentials not found")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn reads_auth_username_password_and_identity_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3:cret");
        write(
            &path,
            &format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},
                "http://localhost:5000/v2/":{{"username":"bob","password":"pw"}},
                "reg.example.com":{{"identitytoken":"tok"}},
                "broken.example.com":{{"auth":"!!!"}} }}, "other": 1}}"#
            ),
        );
        let cfg = DockerConfig::load(&path, None).unwrap();
        assert_eq!(
            cfg.get("docker.io").unwrap(),
            Some(Credentials::basic("alice", "s3:cret"))
        );
        assert_eq!(
            cfg.get("localhost:5000").unwrap(),
            Some(Credentials::basic("bob", "pw"))
        );
        let t = cfg.get("reg.example.com").unwrap().unwrap();
        assert_eq!(t.identity_token.as_deref(), Some("tok"));
        assert_eq!(cfg.get("nothing.example.com").unwrap(), None);
        assert!(matches!(
            cfg.get("broken.example.com"),
            Err(CredentialsError::BadAuth { .. })
        ));
    }

    #[test]
    fn missing_file_is_empty_and_bad_json_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        assert_eq!(
            DockerConfig::load(&path, None)
                .unwrap()
                .get("docker.io")
                .unwrap(),
            None
        );
        write(&path, "{not json");
        let err = DockerConfig::load(&path, None).unwrap_err();
        assert!(matches!(err, CredentialsError::Parse { .. }));
        assert!(err.to_string().contains("config.json"));
    }

    #[test]
    fn store_and_erase_keep_other_fields_and_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.json");
        let mut cfg = DockerConfig::load(&path, None).unwrap();
        cfg.root.insert("psFormat".into(), "table {{.ID}}".into());
        cfg.store("localhost:5000", &Credentials::basic("u", "p"))
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = DockerConfig::load(&path, None).unwrap();
        assert_eq!(
            again.get("localhost:5000").unwrap(),
            Some(Credentials::basic("u", "p"))
        );
        assert_eq!(again.root["psFormat"], "table {{.ID}}");
        let mut again = again;
        assert!(again.erase("localhost:5000").unwrap());
        assert!(!again.erase("localhost:5000").unwrap());
        let last = DockerConfig::load(&path, None).unwrap();
        assert_eq!(last.get("localhost:5000").unwrap(), None);
        assert_eq!(last.root["psFormat"], "table {{.ID}}");
        // No temp files are left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    /// A real helper program speaking the docker-credential-helpers protocol,
    /// keeping its store in a file next to it.
    #[test]
    fn credential_helper_store_get_erase() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let store = dir.path().join("store");
        let helper = bin.join("docker-credential-berthtest");
        write(
            &helper,
            &format!(
                "#!/bin/sh\ncase \"$1\" in\n\
                 store) cat > {s} ;;\n\
                 get) read -r url || true; if [ -s {s} ] && grep -q \"\\\"$url\\\"\" {s}; then cat {s}; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n\
                 erase) if [ -s {s} ]; then rm {s}; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n\
                 esac\n",
                s = store.display()
            ),
        );
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("config.json");
        write(&path, r#"{"credHelpers":{"localhost:5000":"berthtest"}}"#);
        let mut cfg = DockerConfig::load(&path, Some(bin.clone().into_os_string())).unwrap();
        assert_eq!(cfg.get("localhost:5000").unwrap(), None);
        cfg.store("localhost:5000", &Credentials::basic("carol", "pw"))
            .unwrap();
        assert!(store.exists());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("pw"),
            "the secret went to the helper, not the file: {text}"
        );
        assert_eq!(
            cfg.get("localhost:5000").unwrap(),
            Some(Credentials::basic("carol", "pw"))
        );
        assert!(cfg.erase("localhost:5000").unwrap());
        assert_eq!(cfg.get("localhost:5000").unwrap(), None);

        // A configured helper that does not exist is a clear error.
        write(&path, r#"{"credsStore":"absent"}"#);
        let cfg = DockerConfig::load(&path, Some(bin.into_os_string())).unwrap();
        let err = cfg.get("docker.io").unwrap_err();
        assert!(
            err.to_string().contains("docker-credential-absent"),
            "{err}"
        );
    }
}
