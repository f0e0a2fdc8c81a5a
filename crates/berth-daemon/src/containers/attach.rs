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
    /// The key sequence that detaches the client (a tty's input only).
    pub detach_keys: Option<Vec<u8>>,
    /// How the shim's stream reaches the client: as is, or unframed for
    /// the WebSocket variant.
    pub framing: Framing,
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
    /// Attaches `req` now if the container runs, or at its next start if
    /// it is created or has exited (docker's `start -a` attaches first,
    /// then starts: again and again for the same container). For one being
    /// removed the connection just ends, as it does for a waiting one when
    /// its container is removed (the request is dropped with its handle).
    pub fn attach_container(
        self: &Arc<Self>,
        name: &str,
        req: AttachRequest,
    ) -> Result<(), ApiError> {
        let c = self.load_container(name)?;
        let handle = self.container_handle(&c);
        let _op = handle.lock();
        self.container_event(&c, "attach", &[]);
        let state = handle.state();
        match state.status {
            Status::Running | Status::Paused => {
                let paths = self.container_paths(&c.id);
                self.connect_attach(&c.id, &paths, req);
            }
            Status::Created | Status::Restarting | Status::Exited => handle
                .pending_attach
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(req),
            Status::Dead | Status::Removing => {
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
    pub(crate) fn connect_attach(self: &Arc<Self>, id: &str, paths: &Paths, req: AttachRequest) {
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
        let engine = self.clone();
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
            let input = Input::new(req.options.stdin, req.detach_keys);
            if bridge(client, shim, input, req.framing, None).await == Ended::Detached {
                if let Ok(c) = engine.load_container(&id) {
                    engine.container_event(&c, "detach", &[]);
                }
            }
        });
    }
}

/// docker's default detach sequence, ctrl-p ctrl-q.
const DEFAULT_DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// docker's detach keys (`detachKeys`, an exec's `DetachKeys`): a comma
/// list of single characters and `ctrl-<c>` for `c` in `@`, `a`..`z`,
/// `[`, `\`, `]`, `^`, `_`; empty or absent is ctrl-p,ctrl-q. `None`: the
/// text names a key there is no code for.
pub(crate) fn parse_detach_keys(keys: Option<&str>) -> Option<Vec<u8>> {
    let keys = keys.unwrap_or("");
    if keys.is_empty() {
        return Some(DEFAULT_DETACH_KEYS.to_vec());
    }
    keys.split(',')
        .map(|key| match key.as_bytes() {
            [c] => Some(*c),
            _ if key == "DEL" => Some(127),
            _ => match key.strip_prefix("ctrl-")?.as_bytes() {
                // The ASCII control codes: ctrl-@ is 0, ctrl-a 1, ...
                // ctrl-z 26, ctrl-[ 27, ... ctrl-_ 31.
                [c @ (b'a'..=b'z')] => Some(c - b'a' + 1),
                [c @ (b'@' | b'[' | b'\\' | b']' | b'^' | b'_')] => Some(c - b'@'),
                _ => None,
            },
        })
        .collect()
}

/// What a bridge copies from the client to the shim.
pub(crate) struct Input {
    /// Whether the client's bytes go to the process's stdin.
    stdin: bool,
    /// The detach sequence to watch for in them.
    detach_keys: Option<Vec<u8>>,
}

impl Input {
    pub(crate) fn new(stdin: bool, detach_keys: Option<Vec<u8>>) -> Input {
        Input { stdin, detach_keys }
    }
}

/// How the process's output goes on the client's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// As the shim sends it: docker's frames without a tty, raw with one.
    AsIs,
    /// A terminal's bytes in stdout frames: an exec with a tty whose start
    /// did not ask for a raw stream (docker frames unless the start's Tty).
    Frame,
    /// The frames' payloads only: a start asking for a raw stream of an
    /// exec without a tty.
    Unframe,
}

impl Framing {
    /// For a process with or without a terminal (`process_tty`) and a
    /// stream asked raw or framed (`stream_tty`).
    pub(crate) fn between(process_tty: bool, stream_tty: bool) -> Framing {
        match (process_tty, stream_tty) {
            (true, false) => Framing::Frame,
            (false, true) => Framing::Unframe,
            _ => Framing::AsIs,
        }
    }
}

/// Copies the shim's output to the client, framed as `framing` says.
async fn copy_output<R, W>(shim: &mut R, client: &mut W, framing: Framing) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncReadExt;
    if framing == Framing::AsIs {
        return tokio::io::copy(shim, client).await.map(|_| ());
    }
    let mut decoder = berth_api::stream::FrameDecoder::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = shim.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let mut out = Vec::with_capacity(n + 8);
        if framing == Framing::Frame {
            berth_api::stream::encode_frames(berth_api::StreamKind::Stdout, &buf[..n], &mut out);
        } else {
            decoder.push(&buf[..n]);
            while let Some((_, payload)) = decoder.next_frame().map_err(std::io::Error::other)? {
                out.extend_from_slice(&payload);
            }
        }
        client.write_all(&out).await?;
        client.flush().await?;
    }
}

/// How a bridge ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The process's output ended (or either side went away).
    Output,
    /// The client typed the detach sequence: the process runs on.
    Detached,
}

/// docker's escape proxy: watches a client's input for the detach
/// sequence. As docker's, it only matches keys that arrive one per read
/// (keystrokes), so pasted or piped data that happens to hold the
/// sequence passes through; a partial match is held back and released if
/// the next key breaks it.
struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    /// What of one read goes on to the process; `None` when the read
    /// completes the sequence.
    fn feed(&mut self, read: &[u8]) -> Option<Vec<u8>> {
        let held = &self.keys[..self.matched];
        if read.len() != 1 || read[0] != self.keys[self.matched] {
            let mut out = Vec::with_capacity(held.len() + read.len());
            out.extend_from_slice(held);
            out.extend_from_slice(read);
            self.matched = 0;
            return Some(out);
        }
        self.matched += 1;
        if self.matched == self.keys.len() {
            return None;
        }
        Some(Vec::new())
    }
}

/// Copies the client's input to the shim, watching for `keys`. Returns
/// whether the client detached; else its input ended.
async fn copy_input<R, W>(client: &mut R, shim: &mut W, keys: Option<Vec<u8>>) -> bool
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut scanner = keys
        .filter(|k| !k.is_empty())
        .map(|keys| DetachScanner { keys, matched: 0 });
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = client.read(&mut buf).await.unwrap_or(0);
        let out = match &mut scanner {
            Some(s) => match s.feed(&buf[..n]) {
                Some(out) => out,
                None => return true,
            },
            None => buf[..n].to_vec(),
        };
        if !out.is_empty() && shim.write_all(&out).await.is_err() {
            return false;
        }
        if n == 0 {
            return false;
        }
    }
}

/// Copies shim -> client until the shim ends the stream, and client ->
/// shim (stdin) meanwhile; the client's end of input closes the shim
/// side's write half, the stream's end closes the client (after
/// `before_close` fires, if given: an exec's exit code must be recorded
/// before its client, which asks for it next, sees the end). The detach
/// sequence closes both at once and leaves the process running.
pub(crate) async fn bridge(
    client: Box<dyn Hijacked>,
    shim: tokio::net::UnixStream,
    input: Input,
    framing: Framing,
    before_close: Option<tokio::sync::oneshot::Receiver<()>>,
) -> Ended {
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut shim_r, mut shim_w) = shim.into_split();
    let mut input = tokio::spawn(async move {
        if input.stdin {
            if copy_input(&mut client_r, &mut shim_w, input.detach_keys).await {
                return Ended::Detached;
            }
        } else {
            // Still read (and drop) what the client sends, so its writes
            // never block; its end of input means nothing here.
            let _ = tokio::io::copy(&mut client_r, &mut tokio::io::sink()).await;
        }
        let _ = shim_w.shutdown().await;
        Ended::Output
    });
    let detached = async {
        match (&mut input).await {
            Ok(Ended::Detached) => {}
            // Input ended: the output goes on until the process's ends.
            _ => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        _ = copy_output(&mut shim_r, &mut client_w, framing) => Ended::Output,
        () = detached => Ended::Detached,
    };
    if ended == Ended::Output {
        if let Some(rx) = before_close {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), rx).await;
        }
    }
    let _ = client_w.shutdown().await;
    input.abort();
    ended
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_as_docker_reads_them() {
        assert_eq!(parse_detach_keys(None), Some(vec![0x10, 0x11]));
        assert_eq!(parse_detach_keys(Some("")), Some(vec![0x10, 0x11]));
        assert_eq!(parse_detach_keys(Some("ctrl-x")), Some(vec![0x18]));
        assert_eq!(parse_detach_keys(Some("ctrl-@,ctrl-_")), Some(vec![0, 31]));
        assert_eq!(
            parse_detach_keys(Some("ctrl-[,a,DEL")),
            Some(vec![27, b'a', 127])
        );
        assert_eq!(parse_detach_keys(Some("ctrl-A")), None);
        assert_eq!(parse_detach_keys(Some("ctrl-xx")), None);
        assert_eq!(parse_detach_keys(Some("shift-a")), None);
        assert_eq!(parse_detach_keys(Some("a,")), None);
    }

    #[test]
    fn the_sequence_only_in_single_keystrokes() {
        let mut s = DetachScanner {
            keys: vec![0x10, 0x11],
            matched: 0,
        };
        assert_eq!(s.feed(b"ab"), Some(b"ab".to_vec()));
        // Held back, then released when the next key breaks the sequence.
        assert_eq!(s.feed(&[0x10]), Some(vec![]));
        assert_eq!(s.feed(b"x"), Some(vec![0x10, b'x']));
        // Pasted in one read: passes through.
        assert_eq!(s.feed(&[0x10, 0x11]), Some(vec![0x10, 0x11]));
        assert_eq!(s.feed(&[0x10]), Some(vec![]));
        assert_eq!(s.feed(&[0x11]), None);
    }
}
