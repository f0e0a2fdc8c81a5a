//! OCI hooks: run each with the container state on stdin, in order, with
//! its timeout.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};
use crate::state::OciState;

/// Runs `hooks` one after another; the first failure stops the rest.
pub fn run_all(stage: &'static str, hooks: &[Hook], state: &OciState) -> Result<()> {
    run_all_with_env(stage, hooks, state, &[], None)
}

/// As [`run_all`]; a hook without an `env` of its own gets `default_env`
/// (runc gives startContainer hooks the container process's environment).
pub fn run_all_with_env(
    stage: &'static str,
    hooks: &[Hook],
    state: &OciState,
    default_env: &[String],
    cwd: Option<&std::path::Path>,
) -> Result<()> {
    if hooks.is_empty() {
        return Ok(());
    }
    let state_json = serde_json::to_vec(state).expect("state always serializes");
    for (index, hook) in hooks.iter().enumerate() {
        run_one(stage, index, hook, &state_json, default_env, cwd)?;
    }
    Ok(())
}

fn run_one(
    stage: &'static str,
    index: usize,
    hook: &Hook,
    state_json: &[u8],
    default_env: &[String],
    cwd: Option<&std::path::Path>,
) -> Result<()> {
    let fail = |message: String| Error::Hook {
        stage,
        index,
        path: hook.path().clone(),
        message,
    };
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((arg0, rest)) = args.split_first() {
            cmd.arg0(arg0).args(rest);
        }
    }
    cmd.env_clear();
    let env = hook.env().as_deref().unwrap_or(default_env);
    for kv in env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json);
    }
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    if hook.timeout().is_some_and(|t| t <= 0) {
        return Err(fail("timeout must be greater than zero".into()));
    }
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(fail(format!("waiting: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!(
                "timed out after {}s",
                hook.timeout().unwrap_or(0)
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if status.success() {
        Ok(())
    } else {
        Err(fail(format!("exited with {status}")))
    }
}
