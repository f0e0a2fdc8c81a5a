//! Exec instances: created by `POST /containers/{id}/exec`, run by
//! `POST /exec/{id}/start` through the container's shim, attached or
//! detached; a thread per running exec records its exit code.

use std::sync::Arc;

use berth_api::models::ExecConfig;
use berth_errdefs::ErrorKind;

use super::attach::{bridge, Ended, Framing, Hijacked, Input};
use super::record::ExecRecord;
use super::shim;
use crate::engine::Engine;
use crate::error::ApiError;

/// How `exec start` runs: attached to a hijacked connection or detached.
pub enum ExecStart {
    Detached,
    Attached(Box<dyn Hijacked>),
}

fn no_such_exec(id: &str) -> ApiError {
    ApiError::not_found(format!("No such exec instance: {id}"))
}

impl Engine {
    /// `POST /containers/{id}/exec`: records the exec; returns its id.
    pub fn create_exec(&self, name: &str, config: ExecConfig) -> Result<String, ApiError> {
        let c = self.load_container(name)?;
        match c.state.status {
            super::Status::Running => {}
            super::Status::Paused => {
                return Err(ApiError::new(
                    ErrorKind::Conflict,
                    // As docker words it: the name the client gave.
                    format!("Container {name} is paused, unpause the container before exec"),
                ));
            }
            _ => return Err(super::lifecycle::not_running(&c.id)),
        }
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(ApiError::bad_request("No exec command specified"));
        }
        if let Some(keys) = config.detach_keys.as_deref() {
            if super::attach::parse_detach_keys(Some(keys)).is_none() {
                return Err(ApiError::bad_request(format!(
                    "Invalid escape keys ({keys}) provided"
                )));
            }
        }
        let id = super::names::new_id();
        let args = config.cmd.clone().unwrap_or_default().join(" ");
        self.containers.execs().insert(
            id.clone(),
            ExecRecord {
                id: id.clone(),
                container_id: c.id.clone(),
                config,
                process: None,
                running: false,
                pid: 0,
                exit_code: None,
            },
        );
        self.container_event(
            &c,
            &format!("exec_create: {args}"),
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    pub fn exec_record(&self, id: &str) -> Result<ExecRecord, ApiError> {
        self.containers
            .execs()
            .get(id)
            .cloned()
            .ok_or_else(|| no_such_exec(id))
    }

    /// `POST /exec/{id}/start`. A failure after the client's connection
    /// was taken over is told on it and recorded as the exec's exit code
    /// (126 when the process could not be set up, as docker's), so that
    /// the client does not read an empty stream and no exit code.
    pub fn start_exec(
        self: &Arc<Self>,
        exec_id: &str,
        how: ExecStart,
        tty: Option<bool>,
    ) -> Result<(), ApiError> {
        let mut rec = self.exec_record(exec_id)?;
        if rec.running || rec.exit_code.is_some() {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!("Error: Exec command {exec_id} has already run"),
            ));
        }
        // docker gives the process a terminal as its config says; the
        // start's Tty only says whether the stream is raw or framed.
        let process_tty = rec.config.tty.unwrap_or(false);
        let stream_tty = tty.unwrap_or(process_tty);
        let tty = process_tty;
        let (c, process, client) = match self.prepare_exec(&rec) {
            Ok(prepared) => prepared,
            Err(e) => return Err(self.exec_failed(exec_id, how, stream_tty, e, 126)),
        };
        let stdin = rec.config.attach_stdin.unwrap_or(false);
        let (recorded_tx, recorded_rx) = tokio::sync::oneshot::channel();
        let failed = |e: berth_shim_proto::Error| {
            let message = format!("OCI runtime exec failed: {e}");
            let (code, status) = super::lifecycle::start_failure(&message);
            (ApiError { status, message }, code)
        };
        let pid = match how {
            ExecStart::Detached => {
                let mut client = client;
                match client.exec(exec_id, process.clone(), tty) {
                    Ok(pid) => pid,
                    Err(e) => {
                        let (err, code) = failed(e);
                        return Err(self.exec_failed(
                            exec_id,
                            ExecStart::Detached,
                            false,
                            err,
                            code,
                        ));
                    }
                }
            }
            ExecStart::Attached(io) => {
                let (pid, stream) = match client.exec_attached(exec_id, process.clone(), tty, stdin)
                {
                    Ok(started) => started,
                    Err(e) => {
                        let (err, code) = failed(e);
                        let how = ExecStart::Attached(io);
                        return Err(self.exec_failed(exec_id, how, stream_tty, err, code));
                    }
                };
                stream
                    .set_nonblocking(true)
                    .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
                let rt = self.runtime_handle().ok_or_else(|| {
                    ApiError::new(ErrorKind::Internal, "exec without an async runtime")
                })?;
                // docker watches for the detach keys on a tty's input only.
                let keys = tty
                    .then(|| super::attach::parse_detach_keys(rec.config.detach_keys.as_deref()))
                    .flatten();
                let engine = self.clone();
                let (c, exec) = (c.clone(), exec_id.to_string());
                rt.spawn(async move {
                    let shim = match tokio::net::UnixStream::from_std(stream) {
                        Ok(s) => s,
                        Err(e) => return tracing::warn!(error = %e, "exec stream"),
                    };
                    let input = Input::new(stdin, keys);
                    let framing = Framing::between(process_tty, stream_tty);
                    let ended = bridge(io, shim, input, framing, Some(recorded_rx)).await;
                    if ended == Ended::Detached {
                        engine.container_event(&c, "exec_detach", &[("execID", exec)]);
                    }
                });
                pid
            }
        };
        rec.running = true;
        rec.pid = pid;
        rec.process = Some(process);
        self.containers
            .execs()
            .insert(exec_id.to_string(), rec.clone());
        let args = rec.config.cmd.clone().unwrap_or_default().join(" ");
        self.container_event(
            &c,
            &format!("exec_start: {args}"),
            &[("execID", exec_id.to_string())],
        );
        self.watch_exec(&c, exec_id, recorded_tx);
        Ok(())
    }

    /// What starting `rec` needs: its container (running), the process
    /// (user, cwd and env resolved in the container's rootfs) and a
    /// connection to the container's shim.
    fn prepare_exec(
        &self,
        rec: &ExecRecord,
    ) -> Result<
        (
            super::Loaded,
            oci_spec::runtime::Process,
            berth_shim_proto::ShimClient,
        ),
        ApiError,
    > {
        let c = self.load_container(&rec.container_id)?;
        let paths = self.container_paths(&c.id);
        let spec: oci_spec::runtime::Spec = {
            let bytes = std::fs::read(paths.dir.join("config.json")).map_err(|e| {
                ApiError::new(
                    ErrorKind::Conflict,
                    format!("Container {} is not running: {e}", c.id),
                )
            })?;
            serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::new(
                    ErrorKind::Internal,
                    format!("reading the container's config.json: {e}"),
                )
            })?
        };
        let base = spec.process().clone().unwrap_or_default();
        let process = crate::spec::exec_process(&rec.config, &base, &paths.rootfs())?;
        let client = shim::connect(&paths, &c.id)?;
        Ok((c, process, client))
    }

    /// Records `code` as the exec's exit code and, on an attached start,
    /// tells the client why on its stream (docker writes it to stdout,
    /// framed unless the stream is a tty's), then ends the stream. The
    /// client reads the exit code from the exec's inspect.
    fn exec_failed(
        &self,
        exec_id: &str,
        how: ExecStart,
        stream_tty: bool,
        err: ApiError,
        code: i32,
    ) -> ApiError {
        if let Some(rec) = self.containers.execs().get_mut(exec_id) {
            rec.exit_code = Some(code);
        }
        if let ExecStart::Attached(mut io) = how {
            let text = format!("{}\r\n", berth_errdefs::go_os_errors(&err.message));
            let mut line = Vec::new();
            if stream_tty {
                line.extend_from_slice(text.as_bytes());
            } else {
                berth_api::stream::encode_frames(
                    berth_api::StreamKind::Stdout,
                    text.as_bytes(),
                    &mut line,
                );
            }
            if let Some(rt) = self.runtime_handle() {
                rt.spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let _ = io.write_all(&line).await;
                    let _ = io.shutdown().await;
                });
            }
        }
        err
    }

    /// A thread that records the exec's exit code, then says so.
    fn watch_exec(
        self: &Arc<Self>,
        c: &super::Loaded,
        exec_id: &str,
        recorded: tokio::sync::oneshot::Sender<()>,
    ) {
        let engine = self.clone();
        let c = c.clone();
        let exec_id = exec_id.to_string();
        let spawned = std::thread::Builder::new()
            .name(format!("exec-{}", &exec_id[..12]))
            .stack_size(128 * 1024)
            .spawn(move || {
                let paths = engine.container_paths(&c.id);
                let code = shim::connect(&paths, &c.id)
                    .ok()
                    .and_then(|mut client| client.exec_wait(&exec_id).ok())
                    .map_or(-1, |e| e.code);
                if let Some(rec) = engine.containers.execs().get_mut(&exec_id) {
                    rec.running = false;
                    rec.exit_code = Some(code);
                }
                let _ = recorded.send(());
                engine.container_event(
                    &c,
                    "exec_die",
                    &[("execID", exec_id.clone()), ("exitCode", code.to_string())],
                );
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start an exec watcher");
        }
    }

    /// `POST /exec/{id}/resize`. A started process without a terminal
    /// has nothing to resize: a no-op, as dockerd's (clients such as
    /// dockerode resize whatever they attach to).
    pub fn resize_exec(&self, exec_id: &str, width: u16, height: u16) -> Result<(), ApiError> {
        let rec = self.exec_record(exec_id)?;
        if rec
            .process
            .as_ref()
            .is_some_and(|p| !p.terminal().unwrap_or(false))
        {
            return Ok(());
        }
        let paths = self.container_paths(&rec.container_id);
        let mut client = shim::connect(&paths, &rec.container_id)?;
        client.resize(Some(exec_id), width, height)?;
        Ok(())
    }

    /// `POST /containers/{id}/resize`: a no-op without a tty, as
    /// dockerd's.
    pub fn resize_container(&self, name: &str, width: u16, height: u16) -> Result<(), ApiError> {
        let c = self.load_container(name)?;
        if !c.state.status.is_live() {
            return Err(super::lifecycle::not_running(&c.id));
        }
        if !c.config.create.tty.unwrap_or(false) {
            return Ok(());
        }
        let paths = self.container_paths(&c.id);
        let mut client = shim::connect(&paths, &c.id)?;
        client.resize(None, width, height)?;
        Ok(())
    }
}
