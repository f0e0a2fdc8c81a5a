//! The messages. Every variant documents what the shim does with it and
//! which [`Response`] it answers; any request may instead be answered with
//! [`Response::Error`].

use berth_errdefs::ErrorKind;
use oci_spec::runtime::{LinuxResources, Process};
use serde::{Deserialize, Serialize};

/// Resource usage of the container's cgroup, shaped as runc's
/// `events --stats` data (the daemon converts it to Docker's stats JSON).
pub use berth_cgroups::Stats;

/// A request from the daemon to the shim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// First message on every connection. Answered by [`Response::Hello`],
    /// or by [`Response::Error`] with [`ErrorCode::VersionMismatch`] (after
    /// which the shim closes the connection).
    Hello { version: u32 },
    /// The container's current state. Answered by [`Response::State`].
    State,
    /// Starts the created container's process. Answered by [`Response::Ok`];
    /// an error if it is not in the `created` state.
    Start,
    /// Blocks until the container's init has exited and been reaped, then
    /// answers [`Response::Exit`] (at once if it already has).
    Wait,
    /// Sends `signal` to the container's init, or with `all` to every
    /// process in its cgroup. Answered by [`Response::Ok`].
    Kill { signal: i32, all: bool },
    /// Freezes the container's cgroup. Answered by [`Response::Ok`].
    Pause,
    /// Thaws the container's cgroup. Answered by [`Response::Ok`].
    Resume,
    /// Runs `process` inside the running container. `exec_id` is the
    /// daemon's name for it (unique per shim; `[A-Za-z0-9_.-]`, at most 64
    /// bytes). With `tty` the process gets a pty whose size comes from
    /// `process.console_size`. With `attach` this connection becomes the
    /// process's stream right after [`Response::ExecStarted`], as described
    /// for [`Request::Attach`] (stdin is forwarded only with `stdin`);
    /// without `attach` its output is discarded, as docker does for a
    /// detached exec (and it gets no stdin).
    ///
    /// A process that cannot be started is answered with
    /// [`Response::Error`]: [`ErrorCode::NotFound`] when its program does
    /// not exist (docker's exit code 127), [`ErrorCode::PermissionDenied`]
    /// when it exists but cannot be executed (126), another code for any
    /// other failure. The shim reads the runtime's message as dockerd
    /// does, so the daemon only maps the code. The exec id stays unused.
    Exec {
        exec_id: String,
        process: Box<Process>,
        tty: bool,
        stdin: bool,
        attach: bool,
    },
    /// Blocks until the exec'd process has exited, then answers
    /// [`Response::Exit`]. Exit records of execs are kept until `Delete`.
    ExecWait { exec_id: String },
    /// Sends `signal` to an exec'd process. Answered by [`Response::Ok`].
    ExecKill { exec_id: String, signal: i32 },
    /// Attaches to the container's stdio (see [`AttachOptions`]). Answered
    /// by [`Response::Attached`]; after that frame the connection carries
    /// raw bytes only:
    /// - shim to client: output. For a tty, the pty's bytes as they are.
    ///   Otherwise docker's multiplexed framing: an 8-byte header
    ///   `[stream, 0, 0, 0, len (u32, big-endian)]` (stream 1 = stdout,
    ///   2 = stderr) before each chunk (`crate::stream`).
    /// - client to shim: stdin bytes, raw, when `stdin` was asked for and
    ///   the container has stdin open. The client shutting down its write
    ///   side is stdin's end of file (closed for the container only with
    ///   `close_stdin`).
    ///
    /// The shim closes the connection once the process has exited and its
    /// output is drained. Output written while nobody is attached goes to
    /// the log only. A client that reads slowly holds back the process's
    /// output (the process then blocks on its writes, as under docker)
    /// while more than 1 MiB waits for it; one that reads nothing for
    /// 30 s is disconnected. Input the process does not read yet holds
    /// back the client that sent it, never the shim.
    Attach(AttachOptions),
    /// Resizes the container's pty (or the exec's, with `exec_id`).
    /// Answered by [`Response::Ok`]; an error when there is no pty.
    Resize {
        exec_id: Option<String>,
        width: u16,
        height: u16,
    },
    /// The container's resource usage. Answered by [`Response::Stats`].
    Stats,
    /// Changes the container's cgroup limits. Answered by [`Response::Ok`].
    Update { resources: Box<LinuxResources> },
    /// Deletes the container (with `force`, kills a running one first),
    /// waits until its init is reaped (waiters get the exit), answers
    /// [`Response::Exit`] with the final exit record (`None` if it was
    /// never started), removes everything it made (the socket, the exit
    /// record, the contents of its state dir) and exits. Without `force`,
    /// a running container is an error ([`ErrorCode::FailedPrecondition`])
    /// and the shim goes on serving.
    Delete { force: bool },
}

impl Request {
    /// A short name for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Hello { .. } => "hello",
            Request::State => "state",
            Request::Start => "start",
            Request::Wait => "wait",
            Request::Kill { .. } => "kill",
            Request::Pause => "pause",
            Request::Resume => "resume",
            Request::Exec { .. } => "exec",
            Request::ExecWait { .. } => "exec wait",
            Request::ExecKill { .. } => "exec kill",
            Request::Attach(_) => "attach",
            Request::Resize { .. } => "resize",
            Request::Stats => "stats",
            Request::Update { .. } => "update",
            Request::Delete { .. } => "delete",
        }
    }
}

/// What an attach connection wants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachOptions {
    /// Forward the client's bytes to the container's stdin.
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Close the container's stdin when this client's input ends (docker's
    /// `StdinOnce`).
    pub close_stdin: bool,
}

/// A response from the shim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// Answers [`Request::Hello`]: the shim's protocol version, its build's
    /// version string, its pid and the container's id.
    Hello {
        version: u32,
        shim_version: String,
        shim_pid: u32,
        id: String,
    },
    /// The request was carried out.
    Ok,
    /// Answers [`Request::State`].
    State(ShimStatus),
    /// Answers [`Request::Wait`], [`Request::ExecWait`] and
    /// [`Request::Delete`] (`None` from `Delete` when it never ran).
    Exit { exit: Option<Exit> },
    /// Answers [`Request::Exec`]: the process's host pid. With `attach`,
    /// the stream follows on the same connection.
    ExecStarted { pid: u32 },
    /// Answers [`Request::Attach`]; the stream follows. `tty` says whether
    /// the output is raw (pty) or multiplexed.
    Attached { tty: bool },
    /// Answers [`Request::Stats`].
    Stats(Box<Stats>),
    /// The request failed.
    Error { code: ErrorCode, message: String },
}

impl Response {
    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Response::Error { code, message } => format!("error ({code:?}): {message}"),
            other => {
                let s = serde_json::to_string(other).unwrap_or_default();
                s.chars().take(200).collect()
            }
        }
    }
}

/// How a process ended, as the shim recorded it when it reaped it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// Docker's exit code: the process's status, or 128 + the signal that
    /// killed it.
    pub code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// The kernel's OOM killer killed a process of the container (its
    /// cgroup's OOM-kill count went up while it ran).
    pub oom_killed: bool,
    /// When the process started and when the shim reaped it, in
    /// nanoseconds since the Unix epoch (0 when unknown).
    pub started_at: u64,
    pub finished_at: u64,
}

impl Exit {
    /// The exit record for a raw wait status pieces: `code` when the
    /// process exited, `signal` when a signal killed it.
    pub fn from_status(
        exited: Option<i32>,
        signal: Option<i32>,
        oom_killed: bool,
        started_at: u64,
        finished_at: u64,
    ) -> Exit {
        let code = match (exited, signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => 255,
        };
        Exit {
            code,
            signal: if exited.is_some() { None } else { signal },
            oom_killed,
            started_at,
            finished_at,
        }
    }
}

/// The container's state, as the shim sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimStatus {
    pub id: String,
    pub status: ContainerStatus,
    /// The container init's host pid (0 before create finished or after it
    /// was reaped).
    pub pid: u32,
    pub shim_pid: u32,
    /// Whether the container has a pty.
    pub tty: bool,
    /// When the container's process was started (ns since the epoch, 0 if
    /// not yet).
    pub started_at: u64,
    /// Set once the init was reaped.
    pub exit: Option<Exit>,
    /// Exec ids whose processes are still running.
    pub execs: Vec<String>,
}

/// The container's lifecycle state (the OCI states plus `paused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerStatus {
    Created,
    Running,
    Paused,
    Stopped,
}

/// The class of a failure the shim reports, so the daemon can map it to an
/// HTTP status without parsing the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotFound,
    InvalidArgument,
    Conflict,
    NotImplemented,
    PermissionDenied,
    FailedPrecondition,
    DataLoss,
    Unavailable,
    Internal,
    /// The client's protocol version differs from the shim's.
    VersionMismatch,
}

impl ErrorCode {
    pub fn kind(self) -> ErrorKind {
        match self {
            ErrorCode::NotFound => ErrorKind::NotFound,
            ErrorCode::InvalidArgument => ErrorKind::InvalidArgument,
            ErrorCode::Conflict => ErrorKind::Conflict,
            ErrorCode::NotImplemented => ErrorKind::NotImplemented,
            ErrorCode::PermissionDenied => ErrorKind::PermissionDenied,
            ErrorCode::FailedPrecondition | ErrorCode::VersionMismatch => {
                ErrorKind::FailedPrecondition
            }
            ErrorCode::DataLoss => ErrorKind::DataLoss,
            ErrorCode::Unavailable => ErrorKind::Unavailable,
            ErrorCode::Internal => ErrorKind::Internal,
        }
    }
}

impl From<ErrorKind> for ErrorCode {
    fn from(k: ErrorKind) -> ErrorCode {
        match k {
            ErrorKind::NotFound => ErrorCode::NotFound,
            ErrorKind::InvalidArgument => ErrorCode::InvalidArgument,
            ErrorKind::Conflict => ErrorCode::Conflict,
            ErrorKind::NotImplemented => ErrorCode::NotImplemented,
            ErrorKind::PermissionDenied => ErrorCode::PermissionDenied,
            ErrorKind::FailedPrecondition => ErrorCode::FailedPrecondition,
            ErrorKind::DataLoss => ErrorCode::DataLoss,
            ErrorKind::Unavailable => ErrorCode::Unavailable,
            ErrorKind::Internal => ErrorCode::Internal,
        }
    }
}

/// Checks an exec id: the shim uses it in file names and messages.
pub fn valid_exec_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && id != "."
        && id != ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(v: T) {
        let s = serde_json::to_string(&v).unwrap();
        let back: T = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v, "{s}");
    }

    #[test]
    fn every_request_round_trips() {
        let process: Process = serde_json::from_str(
            r#"{"args":["sh","-c","echo hi"],"cwd":"/","env":["A=b"],"user":{"uid":0,"gid":0}}"#,
        )
        .unwrap();
        for r in [
            Request::Hello { version: 1 },
            Request::State,
            Request::Start,
            Request::Wait,
            Request::Kill {
                signal: 15,
                all: false,
            },
            Request::Pause,
            Request::Resume,
            Request::Exec {
                exec_id: "e1".into(),
                process: Box::new(process),
                tty: true,
                stdin: false,
                attach: true,
            },
            Request::ExecWait {
                exec_id: "e1".into(),
            },
            Request::ExecKill {
                exec_id: "e1".into(),
                signal: 9,
            },
            Request::Attach(AttachOptions {
                stdin: true,
                stdout: true,
                stderr: false,
                close_stdin: true,
            }),
            Request::Resize {
                exec_id: None,
                width: 80,
                height: 24,
            },
            Request::Stats,
            Request::Update {
                resources: Box::default(),
            },
            Request::Delete { force: true },
        ] {
            round_trip(r);
        }
    }

    #[test]
    fn every_response_round_trips() {
        let exit = Exit::from_status(None, Some(9), true, 1, 2);
        for r in [
            Response::Hello {
                version: 1,
                shim_version: "0.1.0".into(),
                shim_pid: 42,
                id: "c1".into(),
            },
            Response::Ok,
            Response::State(ShimStatus {
                id: "c1".into(),
                status: ContainerStatus::Stopped,
                pid: 0,
                shim_pid: 42,
                tty: false,
                started_at: 1,
                exit: Some(exit.clone()),
                execs: vec!["e1".into()],
            }),
            Response::Exit { exit: Some(exit) },
            Response::Exit { exit: None },
            Response::ExecStarted { pid: 7 },
            Response::Attached { tty: false },
            Response::Stats(Box::default()),
            Response::Error {
                code: ErrorCode::NotFound,
                message: "no exec x".into(),
            },
        ] {
            round_trip(r);
        }
    }

    #[test]
    fn wire_names_are_stable() {
        // The daemon and the shim may come from different builds; the
        // field and tag names are the protocol, so pin a few.
        let s = serde_json::to_string(&Request::Kill {
            signal: 9,
            all: true,
        })
        .unwrap();
        assert_eq!(s, r#"{"type":"kill","signal":9,"all":true}"#);
        let s = serde_json::to_string(&Response::Exit { exit: None }).unwrap();
        assert_eq!(s, r#"{"type":"exit","exit":null}"#);
    }

    #[test]
    fn exit_codes_follow_docker() {
        assert_eq!(Exit::from_status(Some(3), None, false, 0, 0).code, 3);
        let e = Exit::from_status(None, Some(15), false, 0, 0);
        assert_eq!((e.code, e.signal), (143, Some(15)));
    }

    #[test]
    fn exec_ids_cannot_name_paths() {
        assert!(valid_exec_id("abc-1.2_3"));
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(65)] {
            assert!(!valid_exec_id(bad), "{bad}");
        }
    }
}
