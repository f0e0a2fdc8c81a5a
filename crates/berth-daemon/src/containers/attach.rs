//! Attaching a hijacked client connection to a container's stdio: the
//! shim's attach stream (docker's multiplexed frames, or raw pty bytes)
//! is copied to the client as is, and the client's bytes to stdin.

use std::sync::Arc;

use berth_shim_proto::AttachOptions;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::shim::{self, Paths};
use super::Status;
use crate::engine::Engine;
use crate::error::ApiError;

/// A connection's byte stream once hijacked.
pub trait Hijacked: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Hijacked for T {}

/// One client waiting to be (or being) attached. The connection arrives
/// through `io` once its upgrade completes: the request is registered
/// before the client hears 101, so a start that follows at once cannot
/// run ahead of it and lose the first output.
pub struct AttachRequest {
    pub options: AttachOptions,
    pub io: tokio::sync::oneshot::Receiver<Box<dyn Hijacked>>,
}

impl std::fmt::Debug for AttachRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachRequest")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Attaches `req` now if the container runs, or at its start if it is
    /// only created. For a stopped container the connection just ends.
    pub fn attach_container(
        self: &Arc<Self>,
        name: &str,
        req: AttachRequest,
    ) -> Result<(), ApiError> {
        let c = self.load_container(name)?;
        let handle = self.container_handle(&c);
        let _op = handle.lock();
        let state = handle.state();
        match state.status {
            Status::Running | Status::Paused => {
                let paths = self.container_paths(&c.id);
                self.connect_attach(&c.id, &paths, req);
            }
            Status::Created | Status::Restarting => handle
                .pending_attach
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(req),
            Status::Exited | Status::Dead | Status::Removing => {
                if let Some(rt) = self.runtime_handle() {
                    rt.spawn(async move {
                        if let Ok(mut io) = req.io.await {
                            let _ = io.shutdown().await;
                        }
                    });
                }
            }
        }
        Ok(())
    }

    /// Connects `req` to the shim's attach stream and copies both ways on
    /// the runtime until the container's output ends.
    pub(crate) fn connect_attach(&self, id: &str, paths: &Paths, req: AttachRequest) {
        let stream = shim::connect(paths, id)
            .map_err(|e| e.to_string())
            .and_then(|c| c.attach(req.options.clone()).map_err(|e| e.to_string()))
            .and_then(|(_, s)| {
                s.set_nonblocking(true).map_err(|e| e.to_string())?;
                Ok(s)
            });
        let Some(rt) = self.runtime_handle() else {
            tracing::warn!(container = id, "attach without an async runtime");
            return;
        };
        let id = id.to_string();
        rt.spawn(async move {
            // The shim already queues output for this attachment; the
            // client's connection may still be on its way.
            let Ok(mut client) = req.io.await else { return };
            let shim = match stream
                .and_then(|s| tokio::net::UnixStream::from_std(s).map_err(|e| e.to_string()))
            {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "attaching");
                    let _ = client.shutdown().await;
                    return;
                }
            };
            bridge(client, shim, req.options.stdin, None).await;
        });
    }
}

/// Copies shim -> client until the shim ends the stream, and client ->
/// shim (stdin) meanwhile; the client's end of input closes the shim
/// side's write half, the stream's end closes the client (after
/// `before_close` fires, if given: an exec's exit code must be recorded
/// before its client, which asks for it next, sees the end).
pub(crate) async fn bridge(
    client: Box<dyn Hijacked>,
    shim: tokio::net::UnixStream,
    stdin: bool,
    before_close: Option<tokio::sync::oneshot::Receiver<()>>,
) {
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut shim_r, mut shim_w) = shim.into_split();
    let input = tokio::spawn(async move {
        if stdin {
            let _ = tokio::io::copy(&mut client_r, &mut shim_w).await;
        } else {
            // Still read (and drop) what the client sends, so its writes
            // never block; its end of input means nothing here.
            let _ = tokio::io::copy(&mut client_r, &mut tokio::io::sink()).await;
        }
        let _ = shim_w.shutdown().await;
    });
    let _ = tokio::io::copy(&mut shim_r, &mut client_w).await;
    if let Some(rx) = before_close {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), rx).await;
    }
    let _ = client_w.shutdown().await;
    input.abort();
}
