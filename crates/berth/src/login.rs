//! `login` and `logout`, and the `X-Registry-Auth` header `pull`, `push`
//! and `run` send: docker's credential store (`config.json`, `credsStore`,
//! `credHelpers`) through berth-credentials, checked with the daemon's
//! `POST /auth`, as docker's CLI does it.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;

use base64::Engine;
use berth_credentials::{key_host, server_key, Credentials, DockerConfig};
use clap::Args;
use serde_json::{json, Map, Value};

use crate::{Ctx, StatusError};

/// Docker Hub's server address, as logins name it.
const INDEX_SERVER: &str = berth_credentials::DOCKER_HUB_AUTH_KEY;

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long, default_value = "")]
    pub username: String,
    /// Password
    #[arg(short, long, default_value = "")]
    pub password: String,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// The registry (default Docker Hub)
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// The registry (default Docker Hub)
    pub server: Option<String>,
}

/// `--config DIR`, else `$DOCKER_CONFIG`, else `~/.docker`: config.json there.
fn config_path(dir: Option<&str>) -> anyhow::Result<PathBuf> {
    if let Some(d) = dir.filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("config.json"));
    }
    berth_credentials::default_config_path().ok_or_else(|| {
        anyhow::anyhow!(
            "neither DOCKER_CONFIG nor HOME is set: give the config directory with --config DIR"
        )
    })
}

fn load(dir: Option<&str>) -> anyhow::Result<DockerConfig> {
    Ok(DockerConfig::load(&config_path(dir)?, None)?)
}

/// The server a login names and the registry domain it stores under:
/// Docker Hub unless SERVER is given (docker.io means Hub too), else the
/// server's host (`http://h:5000/v2/` is `h:5000`).
fn server_of(arg: Option<&str>) -> (String, String) {
    match arg {
        Some(s) if !s.is_empty() && s != "docker.io" => (s.to_string(), key_host(s).to_string()),
        _ => (INDEX_SERVER.to_string(), "docker.io".to_string()),
    }
}

fn fail(msg: impl Into<String>) -> anyhow::Error {
    StatusError {
        code: 1,
        msg: msg.into(),
    }
    .into()
}

pub fn login(ctx: &Ctx, mut a: LoginArgs) -> anyhow::Result<()> {
    let config_dir = ctx.config_dir.as_deref();
    let mut err = std::io::stderr();
    if !a.password.is_empty() {
        writeln!(
            err,
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin."
        )?;
        if a.password_stdin {
            return Err(fail(
                "--password and --password-stdin are mutually exclusive",
            ));
        }
    }
    if a.password_stdin {
        if a.username.is_empty() {
            return Err(fail("Must provide --username with --password-stdin"));
        }
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| fail(format!("reading the password from stdin: {e}")))?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        a.password = text.strip_suffix('\r').unwrap_or(text).to_string();
    }
    let (server, domain) = server_of(a.server.as_deref());
    let key = server_key(&domain);
    let mut config = load(config_dir)?;

    // Without -u/-p, the stored credentials are tried first.
    let mut stored_user = String::new();
    if a.username.is_empty() && a.password.is_empty() {
        if let Some(c) = config.get(&domain)? {
            stored_user = c.username.clone();
            if !c.username.is_empty() && !c.password.is_empty() {
                writeln!(ctx.out(), "Authenticating with existing credentials...")?;
                match authenticate(ctx, &c, &key) {
                    Ok((status, token)) => {
                        save(&mut config, &domain, c, token)?;
                        return print_status(ctx, &status);
                    }
                    Err(e) if e.status() == Some(401) => {
                        writeln!(err, "Stored credentials invalid or expired")?
                    }
                    Err(e) => writeln!(err, "Login did not succeed, error: {e}")?,
                }
            }
        }
    }

    let creds = prompt(ctx, &a, &stored_user, &server)?;
    let (status, token) = authenticate(ctx, &creds, &key)?;
    save(&mut config, &domain, creds, token)?;
    print_status(ctx, &status)
}

fn print_status(ctx: &Ctx, status: &str) -> anyhow::Result<()> {
    if !status.is_empty() {
        writeln!(ctx.out(), "{status}")?;
    }
    Ok(())
}

/// The username and password from the flags, or asked on the terminal.
fn prompt(
    ctx: &Ctx,
    a: &LoginArgs,
    default_user: &str,
    server: &str,
) -> anyhow::Result<Credentials> {
    let stdin = std::io::stdin();
    if (a.username.is_empty() || a.password.is_empty()) && !stdin.is_terminal() {
        return Err(fail(
            "Error: Cannot perform an interactive login from a non TTY device",
        ));
    }
    let mut out = ctx.out();
    let mut user = a.username.trim().to_string();
    if user.is_empty() {
        if server == INDEX_SERVER {
            writeln!(out, "Login with your Docker ID to push and pull images from Docker Hub. If you don't have a Docker ID, head over to https://hub.docker.com to create one.")?;
        }
        let default_user = default_user.trim();
        if default_user.is_empty() {
            write!(out, "Username: ")?;
        } else {
            write!(out, "Username ({default_user}): ")?;
        }
        out.flush()?;
        user = read_line()?.trim().to_string();
        if user.is_empty() {
            user = default_user.to_string();
        }
        if user.is_empty() {
            return Err(fail("Error: Non-null Username Required"));
        }
    }
    let mut password = a.password.clone();
    if password.is_empty() {
        write!(out, "Password: ")?;
        out.flush()?;
        password = {
            let _echo = NoEcho::new();
            read_line()?
        };
        writeln!(out)?;
        if password.is_empty() {
            return Err(fail("Error: Password Required"));
        }
    }
    Ok(Credentials::basic(user, password))
}

fn read_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Turns the terminal's echo off while the password is typed; back on
/// when dropped, however the read ends.
struct NoEcho {
    saved: Option<rustix::termios::Termios>,
}

impl NoEcho {
    fn new() -> NoEcho {
        use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok();
        if let Some(t) = &saved {
            let mut quiet = t.clone();
            quiet.local_modes.remove(LocalModes::ECHO);
            let _ = tcsetattr(&stdin, OptionalActions::Now, &quiet);
        }
        NoEcho { saved }
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
    }
}

/// docker's AuthConfig JSON (the `/auth` body and, base64url, the
/// `X-Registry-Auth` header): empty fields left out.
fn auth_config(c: &Credentials, server: &str) -> Value {
    let mut m = Map::new();
    for (k, v) in [
        ("username", c.username.as_str()),
        ("password", c.password.as_str()),
        ("serveraddress", server),
        ("identitytoken", c.identity_token.as_deref().unwrap_or("")),
    ] {
        if !v.is_empty() {
            m.insert(k.into(), v.into());
        }
    }
    Value::Object(m)
}

/// `POST /auth`: the daemon checks the credentials with the registry.
/// Returns its status line and identity token.
fn authenticate(
    ctx: &Ctx,
    c: &Credentials,
    server: &str,
) -> Result<(String, String), berth_client::Error> {
    let body = auth_config(c, server);
    let v = ctx.client.post_json("/auth", Some(&body))?;
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    Ok((text("Status"), text("IdentityToken")))
}

/// Stores the checked credentials (a token instead of the password when
/// the registry gave one), with docker's warning (before, as docker's
/// 20.10 client) when the password goes into the file itself.
fn save(
    config: &mut DockerConfig,
    domain: &str,
    mut c: Credentials,
    token: String,
) -> anyhow::Result<()> {
    if !token.is_empty() {
        c.password.clear();
        c.identity_token = Some(token);
    }
    if config.helper_for(domain).is_none() && !c.password.is_empty() {
        eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/engine/reference/commandline/login/#credentials-store\n",
            config.path().display()
        );
    }
    config
        .store(domain, &c)
        .map_err(|e| fail(format!("Error saving credentials: {e}")))?;
    Ok(())
}

pub fn logout(ctx: &Ctx, a: LogoutArgs) -> anyhow::Result<()> {
    let config_dir = ctx.config_dir.as_deref();
    let (server, domain) = server_of(a.server.as_deref());
    let shown = if server == INDEX_SERVER {
        server.as_str()
    } else {
        domain.as_str()
    };
    writeln!(ctx.out(), "Removing login credentials for {shown}")?;
    let mut config = load(config_dir)?;
    if let Err(e) = config.erase(&domain) {
        // As docker: a failed erase is a warning, not a failed logout.
        eprintln!("WARNING: could not erase credentials:\n{shown}: {e}");
    }
    Ok(())
}

/// The registry domain of an image reference: its first component when
/// that looks like a host (has a dot or port, or is localhost), else
/// Docker Hub.
pub fn registry_domain(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first
        }
        _ => "docker.io",
    }
}

/// The `X-Registry-Auth` header for IMAGE's registry: the stored
/// credentials as docker's AuthConfig JSON, base64url; `{}` without any.
/// An unreadable config file is warned about and pulls go anonymous, as
/// docker's CLI does; a failing credential helper is an error.
pub fn registry_auth(config_dir: Option<&str>, image: &str) -> anyhow::Result<String> {
    let domain = registry_domain(image);
    let creds = match load(config_dir) {
        Ok(config) => config.get(domain)?,
        Err(e) => {
            eprintln!("WARNING: Error loading config file: {e}");
            None
        }
    };
    let body = match creds {
        Some(c) => auth_config(&c, &server_key(domain)),
        None => json!({}),
    };
    Ok(base64::engine::general_purpose::URL_SAFE.encode(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_and_domains() {
        assert_eq!(
            server_of(None),
            (INDEX_SERVER.to_string(), "docker.io".to_string())
        );
        assert_eq!(server_of(Some("docker.io")).0, INDEX_SERVER);
        assert_eq!(
            server_of(Some("http://127.0.0.1:5000/v2/")).1,
            "127.0.0.1:5000"
        );
        assert_eq!(registry_domain("busybox"), "docker.io");
        assert_eq!(registry_domain("team/app:1"), "docker.io");
        assert_eq!(registry_domain("localhost/app"), "localhost");
        assert_eq!(registry_domain("127.0.0.1:5000/bb:1"), "127.0.0.1:5000");
    }

    #[test]
    fn auth_header_is_docker_auth_config() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        assert_eq!(
            registry_auth(Some(d), "reg.example:5000/a").unwrap(),
            "e30="
        );
        let mut cfg = load(Some(d)).unwrap();
        cfg.store("reg.example:5000", &Credentials::basic("u", "p:w"))
            .unwrap();
        let h = registry_auth(Some(d), "reg.example:5000/a:1").unwrap();
        let v: Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE.decode(h).unwrap())
                .unwrap();
        assert_eq!(
            v,
            json!({"username": "u", "password": "p:w", "serveraddress": "reg.example:5000"})
        );
        assert_eq!(registry_auth(Some(d), "busybox").unwrap(), "e30=");
    }
}
