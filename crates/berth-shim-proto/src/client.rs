//! A blocking client for one shim. The daemon calls it from blocking
//! threads; a long request ([`ShimClient::wait`]) occupies its connection,
//! so open another client for anything concurrent.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use oci_spec::runtime::{LinuxResources, Process};

use crate::error::{Error, Result};
use crate::frame::{read_frame, write_frame};
use crate::messages::{AttachOptions, Exit, Request, Response, ShimStatus, Stats};
use crate::PROTOCOL_VERSION;

/// One connection to a shim, past the hello exchange.
#[derive(Debug)]
pub struct ShimClient {
    stream: UnixStream,
    shim_pid: u32,
    shim_version: String,
    id: String,
}

impl ShimClient {
    /// Connects to the shim's socket and exchanges hellos.
    pub fn connect(path: impl AsRef<Path>) -> Result<ShimClient> {
        Self::connect_timeout(path, None)
    }

    /// As [`ShimClient::connect`], with `timeout` on every read and write
    /// from the hello on (see [`ShimClient::set_timeout`]), so a shim that
    /// is stopped or stuck cannot hold the caller. Set it back to `None`
    /// before a [`ShimClient::wait`] that may take long.
    pub fn connect_timeout(
        path: impl AsRef<Path>,
        timeout: Option<Duration>,
    ) -> Result<ShimClient> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path).map_err(|source| Error::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        let mut c = ShimClient {
            stream,
            shim_pid: 0,
            shim_version: String::new(),
            id: String::new(),
        };
        c.set_timeout(timeout)?;
        match c.call(&Request::Hello {
            version: PROTOCOL_VERSION,
        })? {
            Response::Hello {
                version,
                shim_version,
                shim_pid,
                id,
            } => {
                if version != PROTOCOL_VERSION {
                    return Err(Error::VersionMismatch {
                        shim: version,
                        client: PROTOCOL_VERSION,
                    });
                }
                c.shim_pid = shim_pid;
                c.shim_version = shim_version;
                c.id = id;
                Ok(c)
            }
            other => Err(unexpected("hello", other)),
        }
    }

    /// The shim's pid, from its hello.
    pub fn shim_pid(&self) -> u32 {
        self.shim_pid
    }

    /// The shim's build version, from its hello.
    pub fn shim_version(&self) -> &str {
        &self.shim_version
    }

    /// The container's id, from the shim's hello.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Bounds how long a single read or write may block (`None`: forever,
    /// the default; [`ShimClient::wait`] needs that).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        let io = |source| Error::Io {
            op: "setting a timeout",
            source,
        };
        self.stream.set_read_timeout(timeout).map_err(io)?;
        self.stream.set_write_timeout(timeout).map_err(io)
    }

    /// Sends one request and reads its response; a [`Response::Error`] is
    /// returned as [`Error::Shim`].
    pub fn call(&mut self, req: &Request) -> Result<Response> {
        write_frame(&mut self.stream, req, "request")?;
        match read_frame(&mut self.stream, "response")? {
            Response::Error { code, message } => Err(Error::Shim { code, message }),
            r => Ok(r),
        }
    }

    fn ok(&mut self, req: Request) -> Result<()> {
        let name = req.name();
        match self.call(&req)? {
            Response::Ok => Ok(()),
            other => Err(unexpected(name, other)),
        }
    }

    fn exit(&mut self, req: Request) -> Result<Option<Exit>> {
        let name = req.name();
        match self.call(&req)? {
            Response::Exit { exit } => Ok(exit),
            other => Err(unexpected(name, other)),
        }
    }

    pub fn state(&mut self) -> Result<ShimStatus> {
        match self.call(&Request::State)? {
            Response::State(s) => Ok(s),
            other => Err(unexpected("state", other)),
        }
    }

    pub fn start(&mut self) -> Result<()> {
        self.ok(Request::Start)
    }

    /// Blocks until the container has exited and returns its exit record.
    pub fn wait(&mut self) -> Result<Exit> {
        self.exit(Request::Wait)?.ok_or(Error::Unexpected {
            request: "wait",
            got: "an empty exit record".into(),
        })
    }

    pub fn kill(&mut self, signal: i32, all: bool) -> Result<()> {
        self.ok(Request::Kill { signal, all })
    }

    pub fn pause(&mut self) -> Result<()> {
        self.ok(Request::Pause)
    }

    pub fn resume(&mut self) -> Result<()> {
        self.ok(Request::Resume)
    }

    /// Starts a detached exec and returns its host pid.
    pub fn exec(&mut self, exec_id: &str, process: Process, tty: bool) -> Result<u32> {
        match self.call(&exec_request(exec_id, process, tty, false, false))? {
            Response::ExecStarted { pid } => Ok(pid),
            other => Err(unexpected("exec", other)),
        }
    }

    /// Starts an exec and turns this connection into its stream (see
    /// [`Request::Attach`]); returns the pid and the stream.
    pub fn exec_attached(
        mut self,
        exec_id: &str,
        process: Process,
        tty: bool,
        stdin: bool,
    ) -> Result<(u32, UnixStream)> {
        match self.call(&exec_request(exec_id, process, tty, stdin, true))? {
            Response::ExecStarted { pid } => Ok((pid, self.stream)),
            other => Err(unexpected("exec", other)),
        }
    }

    /// Blocks until the exec'd process has exited.
    pub fn exec_wait(&mut self, exec_id: &str) -> Result<Exit> {
        self.exit(Request::ExecWait {
            exec_id: exec_id.into(),
        })?
        .ok_or(Error::Unexpected {
            request: "exec wait",
            got: "an empty exit record".into(),
        })
    }

    pub fn exec_kill(&mut self, exec_id: &str, signal: i32) -> Result<()> {
        self.ok(Request::ExecKill {
            exec_id: exec_id.into(),
            signal,
        })
    }

    /// Attaches to the container's stdio and turns this connection into
    /// the stream; returns whether it is a tty (raw) and the stream.
    pub fn attach(mut self, opts: AttachOptions) -> Result<(bool, UnixStream)> {
        match self.call(&Request::Attach(opts))? {
            Response::Attached { tty } => Ok((tty, self.stream)),
            other => Err(unexpected("attach", other)),
        }
    }

    pub fn resize(&mut self, exec_id: Option<&str>, width: u16, height: u16) -> Result<()> {
        self.ok(Request::Resize {
            exec_id: exec_id.map(str::to_owned),
            width,
            height,
        })
    }

    pub fn stats(&mut self) -> Result<Stats> {
        match self.call(&Request::Stats)? {
            Response::Stats(s) => Ok(*s),
            other => Err(unexpected("stats", other)),
        }
    }

    pub fn update(&mut self, resources: LinuxResources) -> Result<()> {
        self.ok(Request::Update {
            resources: Box::new(resources),
        })
    }

    /// Deletes the container; the shim exits after answering. Returns the
    /// final exit record, if the container ever ran.
    pub fn delete(mut self, force: bool) -> Result<Option<Exit>> {
        self.exit(Request::Delete { force })
    }
}

fn exec_request(exec_id: &str, process: Process, tty: bool, stdin: bool, attach: bool) -> Request {
    Request::Exec {
        exec_id: exec_id.into(),
        process: Box::new(process),
        tty,
        stdin,
        attach,
    }
}

fn unexpected(request: &'static str, got: Response) -> Error {
    Error::Unexpected {
        request,
        got: got.describe(),
    }
}

/// Reads the exit record a shim left next to its socket (`exit.json` in
/// the socket's directory): `Ok(None)` when there is none.
pub fn read_exit_record(socket: &Path) -> Result<Option<Exit>> {
    let path = socket
        .parent()
        .unwrap_or(Path::new("."))
        .join(crate::EXIT_RECORD);
    match std::fs::read(&path) {
        Ok(bytes) => crate::frame::decode(&bytes, "exit record").map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            op: "reading the exit record",
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{read_frame, write_frame};
    use crate::messages::{ContainerStatus, ErrorCode};
    use std::os::unix::net::UnixListener;

    /// A one-connection stand-in shim speaking the protocol over a real
    /// socket, answering from a script.
    fn serve(
        dir: &Path,
        version: u32,
        answers: Vec<Response>,
    ) -> (std::path::PathBuf, std::thread::JoinHandle<Vec<Request>>) {
        let path = dir.join("shim.sock");
        let l = UnixListener::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut seen = Vec::new();
            let hello: Request = read_frame(&mut s, "request").unwrap();
            seen.push(hello);
            write_frame(
                &mut s,
                &Response::Hello {
                    version,
                    shim_version: "test".into(),
                    shim_pid: 1,
                    id: "c1".into(),
                },
                "response",
            )
            .unwrap();
            for a in answers {
                match read_frame::<Request, _>(&mut s, "request") {
                    Ok(r) => seen.push(r),
                    Err(_) => break,
                }
                write_frame(&mut s, &a, "response").unwrap();
            }
            seen
        });
        (path, h)
    }

    #[test]
    fn calls_map_to_requests_and_responses() {
        let dir = tempfile::tempdir().unwrap();
        let exit = Exit::from_status(Some(3), None, false, 1, 2);
        let (path, h) = serve(
            dir.path(),
            PROTOCOL_VERSION,
            vec![
                Response::Ok,
                Response::Exit {
                    exit: Some(exit.clone()),
                },
                Response::Error {
                    code: ErrorCode::NotFound,
                    message: "no exec e9".into(),
                },
                Response::State(ShimStatus {
                    id: "c1".into(),
                    status: ContainerStatus::Stopped,
                    pid: 0,
                    shim_pid: 1,
                    tty: false,
                    started_at: 1,
                    exit: Some(exit.clone()),
                    execs: vec![],
                }),
            ],
        );
        let mut c = ShimClient::connect(&path).unwrap();
        assert_eq!((c.id(), c.shim_pid(), c.shim_version()), ("c1", 1, "test"));
        c.kill(15, false).unwrap();
        assert_eq!(c.wait().unwrap(), exit);
        let err = c.exec_wait("e9").unwrap_err();
        assert_eq!(
            berth_errdefs::HasKind::kind(&err),
            berth_errdefs::ErrorKind::NotFound
        );
        assert_eq!(c.state().unwrap().exit, Some(exit));
        drop(c);
        let seen = h.join().unwrap();
        assert_eq!(
            seen,
            vec![
                Request::Hello {
                    version: PROTOCOL_VERSION
                },
                Request::Kill {
                    signal: 15,
                    all: false
                },
                Request::Wait,
                Request::ExecWait {
                    exec_id: "e9".into()
                },
                Request::State,
            ]
        );
    }

    #[test]
    fn version_mismatch_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, h) = serve(dir.path(), PROTOCOL_VERSION + 1, vec![]);
        let err = ShimClient::connect(&path).unwrap_err();
        assert!(matches!(err, Error::VersionMismatch { .. }), "{err}");
        h.join().unwrap();
    }

    #[test]
    fn unexpected_response_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let (path, h) = serve(dir.path(), PROTOCOL_VERSION, vec![Response::Ok]);
        let mut c = ShimClient::connect(&path).unwrap();
        let err = c.stats().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unexpected {
                    request: "stats",
                    ..
                }
            ),
            "{err}"
        );
        drop(c);
        h.join().unwrap();
    }

    #[test]
    fn a_shim_that_never_answers_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shim.sock");
        // Bound and listening, but nobody accepts or answers.
        let _l = UnixListener::bind(&path).unwrap();
        let t0 = std::time::Instant::now();
        let err = ShimClient::connect_timeout(&path, Some(Duration::from_millis(100))).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn missing_socket_is_a_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = ShimClient::connect(dir.path().join("nope.sock")).unwrap_err();
        assert!(matches!(err, Error::Connect { .. }), "{err}");
        assert!(read_exit_record(&dir.path().join("nope.sock"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn exit_record_is_read_from_beside_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let exit = Exit::from_status(None, Some(9), true, 5, 6);
        std::fs::write(
            dir.path().join(crate::EXIT_RECORD),
            serde_json::to_vec(&exit).unwrap(),
        )
        .unwrap();
        assert_eq!(
            read_exit_record(&dir.path().join("shim.sock")).unwrap(),
            Some(exit)
        );
    }
}
