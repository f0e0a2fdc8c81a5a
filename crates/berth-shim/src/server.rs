//! The shim's event loop: one thread, one epoll set holding the protocol
//! socket, a signalfd for SIGCHLD, every client connection and every
//! output fd of the container and its execs.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use berth_shim_proto::frame::{decode, encode, FrameBuf};
use berth_shim_proto::messages::valid_exec_id;
use berth_shim_proto::{
    stream, AttachOptions, ContainerStatus, Exit, Request, Response, ShimStatus, PROTOCOL_VERSION,
};
use berth_sys::signalfd::SignalFd;
use oci_spec::runtime::Process;
use rustix::event::epoll;

use crate::backend::Backend;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::logger::{now_ns, Logger};
use crate::stdio::{self, ShimEnds};

/// A client that does not read its stream for this long is dropped, so
/// one stuck client cannot stall the container's other clients.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Which process an output fd, a waiter or an attachment belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    Init,
    Exec(String),
}

enum Source {
    Listener,
    Signals,
    Conn,
    Output {
        owner: Owner,
        stream: u8,
    },
    /// A process's pidfd: readable once it exits. The runtime creates the
    /// init with CLONE_PARENT from a helper, which leaves it without an
    /// exit signal, so SIGCHLD alone would miss it.
    Pidfd,
}

/// One supervised process: the container's init or an exec.
struct Proc {
    pid: i32,
    pidfd: Option<OwnedFd>,
    tty: bool,
    io: ShimEnds,
    /// Output fds still registered (not yet at end of file).
    open_outputs: usize,
    started_at: u64,
    exit: Option<Exit>,
}

enum Mode {
    Framed,
    Waiting(Owner),
    Attached { owner: Owner, opts: AttachOptions },
}

struct Conn {
    stream: UnixStream,
    buf: FrameBuf,
    hello: bool,
    mode: Mode,
}

pub struct Shim {
    cfg: Config,
    backend: Backend,
    epoll: OwnedFd,
    listener: UnixListener,
    signals: SignalFd,
    sources: HashMap<RawFd, Source>,
    conns: HashMap<RawFd, Conn>,
    init: Proc,
    execs: BTreeMap<String, Proc>,
    logger: Logger,
    started: bool,
    paused: bool,
    oom_base: u64,
    quit: bool,
}

impl Shim {
    /// Creates the container and the event loop around it; the protocol
    /// socket is already bound (`listener`).
    pub fn new(cfg: Config, listener: UnixListener) -> Result<Shim> {
        let logger = Logger::open(&cfg.log, cfg.log_max_size, cfg.log_max_files)?;
        let console_path = cfg.state_dir.join("console.sock");
        let (io, ends, console) = if cfg.tty {
            let l = stdio::console_listener(&console_path)?;
            (ShimEnds::default(), stdio::null_ends()?, Some(l))
        } else {
            let (shim, child) = stdio::pipes(cfg.stdin)?;
            (shim, child, None)
        };
        let created = Backend::create(
            &cfg,
            &ends,
            console.as_ref().map(|_| console_path.as_path()),
        );
        drop(ends);
        let mut io = io;
        if let Some(l) = &console {
            let pty = created.as_ref().ok().map(|_| stdio::receive_pty(l));
            let _ = std::fs::remove_file(&console_path);
            if let Some(pty) = pty {
                io.pty = Some(pty?);
            }
        }
        let (backend, pid) = created?;
        let oom_base = backend.oom_kill_count();
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
            .map_err(|e| Error::sys("creating the epoll set")(e.into()))?;
        let signals =
            SignalFd::new(&[libc::SIGCHLD]).map_err(Error::sys("creating the signalfd"))?;
        listener
            .set_nonblocking(true)
            .map_err(Error::sys("setting the socket non-blocking"))?;
        let mut shim = Shim {
            init: Proc {
                pid,
                pidfd: open_pidfd(pid),
                tty: cfg.tty,
                io,
                open_outputs: 0,
                started_at: 0,
                exit: None,
            },
            cfg,
            backend,
            epoll,
            listener,
            signals,
            sources: HashMap::new(),
            conns: HashMap::new(),
            execs: BTreeMap::new(),
            logger,
            started: false,
            paused: false,
            oom_base,
            quit: false,
        };
        shim.watch(shim.listener.as_raw_fd(), Source::Listener)?;
        shim.watch(shim.signals.as_fd().as_raw_fd(), Source::Signals)?;
        shim.watch_outputs(Owner::Init)?;
        Ok(shim)
    }

    fn watch(&mut self, fd: RawFd, source: Source) -> Result<()> {
        let Some(borrowed) = self.borrow(fd) else {
            return Ok(());
        };
        epoll::add(
            &self.epoll,
            borrowed,
            epoll::EventData::new_u64(fd as u64),
            epoll::EventFlags::IN,
        )
        .map_err(|e| Error::sys("adding to the epoll set")(e.into()))?;
        self.sources.insert(fd, source);
        Ok(())
    }

    fn unwatch(&mut self, fd: RawFd) {
        if self.sources.remove(&fd).is_some() {
            if let Some(b) = self.borrow(fd) {
                let _ = epoll::delete(&self.epoll, b);
            }
        }
    }

    /// Finds the descriptor behind a registered fd number among the ones
    /// the shim owns (fds are unregistered before they are closed).
    fn borrow(&self, fd: RawFd) -> Option<BorrowedFd<'_>> {
        if self.listener.as_raw_fd() == fd {
            return Some(self.listener.as_fd());
        }
        if self.signals.as_fd().as_raw_fd() == fd {
            return Some(self.signals.as_fd());
        }
        if let Some(c) = self.conns.get(&fd) {
            return Some(c.stream.as_fd());
        }
        std::iter::once(&self.init)
            .chain(self.execs.values())
            .flat_map(|p| [&p.io.stdout, &p.io.stderr, &p.io.pty, &p.pidfd])
            .flatten()
            .find(|f| f.as_raw_fd() == fd)
            .map(|f| f.as_fd())
    }

    fn proc_mut(&mut self, owner: &Owner) -> Option<&mut Proc> {
        match owner {
            Owner::Init => Some(&mut self.init),
            Owner::Exec(id) => self.execs.get_mut(id),
        }
    }

    fn watch_outputs(&mut self, owner: Owner) -> Result<()> {
        let Some(p) = self.proc_mut(&owner) else {
            return Ok(());
        };
        let fds: Vec<(RawFd, u8)> = [
            (p.io.stdout.as_ref(), stream::STDOUT),
            (p.io.stderr.as_ref(), stream::STDERR),
            (p.io.pty.as_ref(), stream::STDOUT),
        ]
        .into_iter()
        .filter_map(|(fd, s)| fd.map(|fd| (fd.as_raw_fd(), s)))
        .collect();
        p.open_outputs = fds.len();
        let pidfd = p.pidfd.as_ref().map(|f| f.as_raw_fd());
        for (fd, s) in fds {
            self.watch(
                fd,
                Source::Output {
                    owner: owner.clone(),
                    stream: s,
                },
            )?;
        }
        if let Some(fd) = pidfd {
            self.watch(fd, Source::Pidfd)?;
        }
        Ok(())
    }

    /// Serves until `delete`.
    pub fn run(&mut self) -> Result<()> {
        // Children that exited before the signalfd existed.
        self.reap();
        let mut events = Vec::with_capacity(32);
        while !self.quit {
            events.clear();
            match epoll::wait(&self.epoll, spare(&mut events), None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::sys("waiting for events")(e.into())),
            }
            for ev in events.iter() {
                let fd = ev.data.u64() as RawFd;
                self.dispatch(fd, ev.flags);
                if self.quit {
                    break;
                }
            }
        }
        Ok(())
    }

    fn dispatch(&mut self, fd: RawFd, flags: epoll::EventFlags) {
        match self.sources.get(&fd) {
            Some(Source::Listener) => self.accept(),
            Some(Source::Signals) => {
                while let Ok(Some(_)) = self.signals.read() {}
                self.reap();
            }
            Some(Source::Pidfd) => self.reap(),
            Some(Source::Conn) => self.conn_readable(fd),
            Some(Source::Output { owner, stream }) => {
                let (owner, stream) = (owner.clone(), *stream);
                self.output_readable(fd, owner, stream, flags);
            }
            None => {}
        }
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = stream.set_write_timeout(Some(SEND_TIMEOUT));
            let fd = stream.as_raw_fd();
            self.conns.insert(
                fd,
                Conn {
                    stream,
                    buf: FrameBuf::new(),
                    hello: false,
                    mode: Mode::Framed,
                },
            );
            if self.watch(fd, Source::Conn).is_err() {
                self.conns.remove(&fd);
            }
        }
    }

    fn close_conn(&mut self, fd: RawFd) {
        self.unwatch(fd);
        self.conns.remove(&fd);
    }

    /// Sends a response frame; a client that cannot take it is dropped.
    fn respond(&mut self, fd: RawFd, resp: &Response) {
        let ok = match (encode(resp, "response"), self.conns.get_mut(&fd)) {
            (Ok(bytes), Some(c)) => c.stream.write_all(&bytes).is_ok(),
            _ => false,
        };
        if !ok {
            self.close_conn(fd);
        }
    }

    fn conn_readable(&mut self, fd: RawFd) {
        let mut buf = [0u8; 16 * 1024];
        let n = {
            let Some(c) = self.conns.get(&fd) else { return };
            rustix::net::recv(&c.stream, &mut buf[..], rustix::net::RecvFlags::DONTWAIT)
        };
        let n = match n {
            Ok((n, _)) => n,
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => return,
            Err(_) => return self.close_conn(fd),
        };
        let attached = match &self.conns[&fd].mode {
            Mode::Attached { owner, opts } => Some((owner.clone(), opts.clone())),
            _ => None,
        };
        if let Some((owner, opts)) = attached {
            return self.attached_input(fd, owner, opts, &buf[..n]);
        }
        if n == 0 {
            return self.close_conn(fd);
        }
        let Some(c) = self.conns.get_mut(&fd) else {
            return;
        };
        c.buf.push(&buf[..n]);
        loop {
            let Some(c) = self.conns.get_mut(&fd) else {
                return;
            };
            if !matches!(c.mode, Mode::Framed) {
                return;
            }
            let body = match c.buf.next_frame() {
                Ok(Some(b)) => b,
                Ok(None) => return,
                Err(_) => return self.close_conn(fd),
            };
            let req: Request = match decode(&body, "request") {
                Ok(r) => r,
                Err(e) => {
                    let resp = Response::Error {
                        code: berth_shim_proto::ErrorCode::InvalidArgument,
                        message: e.to_string(),
                    };
                    self.respond(fd, &resp);
                    continue;
                }
            };
            self.request(fd, req);
            if self.quit {
                return;
            }
        }
    }

    fn request(&mut self, fd: RawFd, req: Request) {
        let hello = self.conns.get(&fd).is_some_and(|c| c.hello);
        let result = match (hello, req) {
            (false, Request::Hello { version }) if version == PROTOCOL_VERSION => {
                if let Some(c) = self.conns.get_mut(&fd) {
                    c.hello = true;
                }
                Ok(Some(Response::Hello {
                    version: PROTOCOL_VERSION,
                    shim_version: env!("CARGO_PKG_VERSION").into(),
                    shim_pid: std::process::id(),
                    id: self.cfg.id.clone(),
                }))
            }
            (false, Request::Hello { version }) => {
                let e = Error::Version {
                    client: version,
                    shim: PROTOCOL_VERSION,
                };
                self.respond(fd, &error_response(&e));
                return self.close_conn(fd);
            }
            (false, _) => {
                self.respond(fd, &error_response(&Error::NoHello));
                return self.close_conn(fd);
            }
            (true, req) => self.handle(fd, req),
        };
        match result {
            Ok(Some(resp)) => self.respond(fd, &resp),
            Ok(None) => {}
            Err(e) => self.respond(fd, &error_response(&e)),
        }
    }

    /// Carries out one request. `Ok(None)` means the answer comes later
    /// (a wait) or was already sent (attach, delete).
    fn handle(&mut self, fd: RawFd, req: Request) -> Result<Option<Response>> {
        Ok(Some(match req {
            Request::Hello { .. } => {
                return Err(Error::State("hello was already exchanged".into()))
            }
            Request::State => Response::State(self.status()),
            Request::Start => {
                if self.started || self.init.exit.is_some() {
                    return Err(Error::State("the container was already started".into()));
                }
                self.backend.start()?;
                self.started = true;
                self.init.started_at = now_ns();
                Response::Ok
            }
            Request::Wait => return self.wait(fd, Owner::Init),
            Request::ExecWait { exec_id } => {
                if !self.execs.contains_key(&exec_id) {
                    return Err(Error::NoExec(exec_id));
                }
                return self.wait(fd, Owner::Exec(exec_id));
            }
            Request::Kill { signal, all } => {
                self.backend.kill(signal, all)?;
                Response::Ok
            }
            Request::ExecKill { exec_id, signal } => {
                let p = self.execs.get(&exec_id).ok_or(Error::NoExec(exec_id))?;
                if p.exit.is_some() {
                    return Err(Error::State("the exec'd process has exited".into()));
                }
                let pid = rustix::process::Pid::from_raw(p.pid).expect("exec pids are positive");
                let sig = rustix::process::Signal::from_named_raw(signal)
                    .ok_or_else(|| Error::State(format!("invalid signal {signal}")))?;
                rustix::process::kill_process(pid, sig)
                    .map_err(|e| Error::sys("signalling the exec'd process")(e.into()))?;
                Response::Ok
            }
            Request::Pause => {
                self.backend.pause()?;
                self.paused = true;
                Response::Ok
            }
            Request::Resume => {
                self.backend.resume()?;
                self.paused = false;
                Response::Ok
            }
            Request::Exec {
                exec_id,
                process,
                tty,
                stdin,
                attach,
            } => return self.exec(fd, exec_id, *process, tty, stdin, attach),
            Request::Attach(opts) => {
                let tty = self.init.tty;
                self.respond(fd, &Response::Attached { tty });
                self.attach(fd, Owner::Init, opts);
                return Ok(None);
            }
            Request::Resize {
                exec_id,
                width,
                height,
            } => {
                let p = match &exec_id {
                    None => &self.init,
                    Some(id) => self
                        .execs
                        .get(id)
                        .ok_or_else(|| Error::NoExec(id.clone()))?,
                };
                let pty =
                    p.io.pty.as_ref().ok_or_else(|| {
                        Error::State("the process has no terminal to resize".into())
                    })?;
                berth_sys::process::set_window_size(pty.as_fd(), height, width)
                    .map_err(Error::sys("resizing the terminal"))?;
                Response::Ok
            }
            Request::Stats => Response::Stats(Box::new(self.backend.stats()?)),
            Request::Update { resources } => {
                self.backend.update(&resources)?;
                Response::Ok
            }
            Request::Delete { force } => {
                self.backend.delete(force)?;
                self.reap();
                let exit = self.init.exit.clone();
                self.respond(fd, &Response::Exit { exit });
                self.cleanup();
                self.quit = true;
                return Ok(None);
            }
        }))
    }

    fn status(&self) -> ShimStatus {
        let status = if self.init.exit.is_some() {
            ContainerStatus::Stopped
        } else if self.paused {
            ContainerStatus::Paused
        } else if self.started {
            ContainerStatus::Running
        } else {
            ContainerStatus::Created
        };
        ShimStatus {
            id: self.cfg.id.clone(),
            status,
            pid: if self.init.exit.is_some() {
                0
            } else {
                self.init.pid as u32
            },
            shim_pid: std::process::id(),
            tty: self.init.tty,
            started_at: self.init.started_at,
            exit: self.init.exit.clone(),
            execs: self
                .execs
                .iter()
                .filter(|(_, p)| p.exit.is_none())
                .map(|(id, _)| id.clone())
                .collect(),
        }
    }

    fn wait(&mut self, fd: RawFd, owner: Owner) -> Result<Option<Response>> {
        let exit = self.proc_mut(&owner).and_then(|p| p.exit.clone());
        if let Some(exit) = exit {
            return Ok(Some(Response::Exit { exit: Some(exit) }));
        }
        if let Some(c) = self.conns.get_mut(&fd) {
            c.mode = Mode::Waiting(owner);
        }
        Ok(None)
    }

    fn exec(
        &mut self,
        fd: RawFd,
        exec_id: String,
        mut process: Process,
        tty: bool,
        stdin: bool,
        attach: bool,
    ) -> Result<Option<Response>> {
        if !valid_exec_id(&exec_id) || self.execs.contains_key(&exec_id) {
            return Err(Error::BadExecId(exec_id));
        }
        if self.init.exit.is_some() || !self.started {
            return Err(Error::State(
                "cannot exec in a container that is not running".into(),
            ));
        }
        process.set_terminal(Some(tty));
        let console_path = self.cfg.state_dir.join(format!("exec-{exec_id}.sock"));
        let (mut io, ends, console) = if tty {
            let l = stdio::console_listener(&console_path)?;
            (ShimEnds::default(), stdio::null_ends()?, Some(l))
        } else {
            let (shim, child) = stdio::pipes(stdin)?;
            (shim, child, None)
        };
        let pid = self.backend.exec(
            &exec_id,
            &process,
            &ends,
            console.as_ref().map(|_| console_path.as_path()),
        );
        drop(ends);
        let pty = match (&console, &pid) {
            (Some(l), Ok(_)) => Some(stdio::receive_pty(l)),
            _ => None,
        };
        if console.is_some() {
            let _ = std::fs::remove_file(&console_path);
        }
        // Sweep: SIGCHLD was unblocked while the runtime forked.
        let reap_later = self.reap_collect();
        let pid = pid?;
        if let Some(pty) = pty {
            io.pty = Some(pty?);
        }
        if !stdin {
            io.stdin = None;
        }
        self.execs.insert(
            exec_id.clone(),
            Proc {
                pid,
                pidfd: open_pidfd(pid),
                tty,
                io,
                open_outputs: 0,
                started_at: now_ns(),
                exit: None,
            },
        );
        self.watch_outputs(Owner::Exec(exec_id.clone()))?;
        self.apply_reaped(reap_later);
        if attach {
            self.respond(fd, &Response::ExecStarted { pid: pid as u32 });
            self.attach(
                fd,
                Owner::Exec(exec_id),
                AttachOptions {
                    stdin,
                    stdout: true,
                    stderr: true,
                    close_stdin: true,
                },
            );
            return Ok(None);
        }
        Ok(Some(Response::ExecStarted { pid: pid as u32 }))
    }

    /// Turns a connection into an attachment of `owner`'s stdio.
    fn attach(&mut self, fd: RawFd, owner: Owner, opts: AttachOptions) {
        let done = self
            .proc_mut(&owner)
            .is_none_or(|p| p.exit.is_some() && p.open_outputs == 0);
        let Some(c) = self.conns.get_mut(&fd) else {
            return;
        };
        let rest = c.buf.take_rest();
        c.mode = Mode::Attached {
            owner: owner.clone(),
            opts: opts.clone(),
        };
        if !rest.is_empty() {
            self.attached_input(fd, owner, opts, &rest);
        }
        if done {
            self.close_conn(fd);
        }
    }

    /// Bytes from an attached client: stdin for the process; end of file
    /// closes the process's stdin when asked to.
    fn attached_input(&mut self, fd: RawFd, owner: Owner, opts: AttachOptions, data: &[u8]) {
        let Some(p) = self.proc_mut(&owner) else {
            return self.close_conn(fd);
        };
        if data.is_empty() {
            if opts.close_stdin && !p.tty {
                p.io.stdin = None;
            }
            // Output may still flow to this client; stop reading from it.
            self.unwatch(fd);
            return;
        }
        if !opts.stdin {
            return;
        }
        let target = if p.tty {
            p.io.pty.as_ref()
        } else {
            p.io.stdin.as_ref()
        };
        if let Some(t) = target {
            if write_all_fd(t, data).is_err() && !p.tty {
                p.io.stdin = None;
            }
        }
    }

    fn output_readable(
        &mut self,
        fd: RawFd,
        owner: Owner,
        stream_id: u8,
        flags: epoll::EventFlags,
    ) {
        let mut buf = vec![0u8; 32 * 1024];
        let mut eof = false;
        // Bounded rounds so one chatty process cannot starve the loop.
        for _ in 0..16 {
            let Some(b) = self.borrow(fd) else { return };
            let r = rustix::io::read(b, &mut buf[..]);
            match r {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => self.deliver(&owner, stream_id, &buf[..n]),
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => continue,
                // A pty master reads EIO once every slave fd is closed.
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        let _ = flags;
        if eof {
            self.unwatch(fd);
            if owner == Owner::Init {
                let _ = self.logger.flush(stream_id);
            }
            if let Some(p) = self.proc_mut(&owner) {
                p.open_outputs = p.open_outputs.saturating_sub(1);
            }
            self.maybe_finish_attachments(&owner);
        }
    }

    /// Output of `owner`: to the log (the init's only, as docker does) and
    /// to every attached client that asked for this stream.
    fn deliver(&mut self, owner: &Owner, stream_id: u8, data: &[u8]) {
        let tty = match self.proc_mut(owner) {
            Some(p) => p.tty,
            None => return,
        };
        if *owner == Owner::Init {
            if let Err(e) = self.logger.write(stream_id, data) {
                eprintln!("berth-shim: {e}");
            }
        }
        let mut framed = Vec::new();
        if !tty {
            stream::frame_into(&mut framed, stream_id, data);
        }
        let mut dead = Vec::new();
        for (fd, c) in self.conns.iter_mut() {
            if let Mode::Attached { owner: o, opts } = &c.mode {
                let wants = if stream_id == stream::STDERR {
                    opts.stderr
                } else {
                    opts.stdout
                };
                if o == owner && wants {
                    let bytes = if tty { data } else { &framed[..] };
                    if c.stream.write_all(bytes).is_err() {
                        dead.push(*fd);
                    }
                }
            }
        }
        for fd in dead {
            self.close_conn(fd);
        }
    }

    /// Closes the attachments of a process that exited and whose output
    /// is drained: the client sees the end of the stream.
    fn maybe_finish_attachments(&mut self, owner: &Owner) {
        let done = self
            .proc_mut(owner)
            .is_some_and(|p| p.exit.is_some() && p.open_outputs == 0);
        if !done {
            return;
        }
        let fds: Vec<RawFd> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(&c.mode, Mode::Attached { owner: o, .. } if o == owner))
            .map(|(fd, _)| *fd)
            .collect();
        for fd in fds {
            if let Some(c) = self.conns.get(&fd) {
                let _ = c.stream.shutdown(std::net::Shutdown::Both);
            }
            self.close_conn(fd);
        }
    }

    /// Reaps every exited child and records the exits of known ones.
    fn reap(&mut self) {
        let reaped = self.reap_collect();
        self.apply_reaped(reaped);
    }

    fn reap_collect(&mut self) -> Vec<(i32, rustix::process::WaitStatus, u64)> {
        let mut out = Vec::new();
        // __WALL: also children without an exit signal (see Source::Pidfd).
        let opts = rustix::process::WaitOptions::NOHANG
            | rustix::process::WaitOptions::from_bits_retain(libc::__WALL as u32);
        while let Ok(Some((pid, status))) = rustix::process::wait(opts) {
            out.push((pid.as_raw_nonzero().get(), status, now_ns()));
        }
        out
    }

    fn apply_reaped(&mut self, reaped: Vec<(i32, rustix::process::WaitStatus, u64)>) {
        for (pid, status, at) in reaped {
            let owner = if pid == self.init.pid && self.init.exit.is_none() {
                Owner::Init
            } else if let Some((id, _)) = self
                .execs
                .iter()
                .find(|(_, p)| p.pid == pid && p.exit.is_none())
            {
                Owner::Exec(id.clone())
            } else {
                continue; // an orphan the shim reaped as subreaper
            };
            let oom = owner == Owner::Init && self.backend.oom_kill_count() > self.oom_base;
            let Some(p) = self.proc_mut(&owner) else {
                continue;
            };
            let exit = Exit::from_status(
                status.exit_status(),
                status.terminating_signal(),
                oom,
                p.started_at,
                at,
            );
            p.exit = Some(exit.clone());
            if let Some(fd) = p.pidfd.as_ref().map(|f| f.as_raw_fd()) {
                self.unwatch(fd);
            }
            if let Some(p) = self.proc_mut(&owner) {
                p.pidfd = None;
            }
            if owner == Owner::Init {
                self.paused = false;
                self.write_exit_record(&exit);
            }
            // Answer the waiters.
            let waiters: Vec<RawFd> = self
                .conns
                .iter()
                .filter(|(_, c)| matches!(&c.mode, Mode::Waiting(o) if *o == owner))
                .map(|(fd, _)| *fd)
                .collect();
            for fd in waiters {
                if let Some(c) = self.conns.get_mut(&fd) {
                    c.mode = Mode::Framed;
                }
                self.respond(
                    fd,
                    &Response::Exit {
                        exit: Some(exit.clone()),
                    },
                );
            }
            self.maybe_finish_attachments(&owner);
        }
    }

    /// `exit.json` beside the socket, atomically, so a daemon that finds
    /// this shim gone still learns how the container ended.
    fn write_exit_record(&self, exit: &Exit) {
        let path = exit_record_path(&self.cfg.socket);
        let bytes = serde_json::to_vec(exit).expect("an exit record encodes");
        if let Err(e) = berth_container::state::write_atomic(&path, &bytes, 0o644) {
            eprintln!("berth-shim: writing the exit record {path:?}: {e}");
        }
    }

    /// After delete: the socket, the exit record and the runtime's state
    /// root go; the daemon owns the rest of the state dir.
    fn cleanup(&mut self) {
        let _ = std::fs::remove_file(&self.cfg.socket);
        let _ = std::fs::remove_file(exit_record_path(&self.cfg.socket));
        self.backend.remove_root();
        let log = self.cfg.state_dir.join("shim.log");
        if std::fs::metadata(&log).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(&log);
        }
    }
}

/// A pidfd for `pid`; `None` when it is already gone (and reaped, so the
/// sweep that follows a fork records it).
fn open_pidfd(pid: i32) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
}

pub fn exit_record_path(socket: &Path) -> std::path::PathBuf {
    socket
        .parent()
        .unwrap_or(Path::new("."))
        .join(berth_shim_proto::EXIT_RECORD)
}

fn error_response(e: &Error) -> Response {
    Response::Error {
        code: e.code(),
        message: e.to_string(),
    }
}

/// Writes all of `data` to a possibly non-blocking fd, waiting (bounded)
/// for room when it is full.
fn write_all_fd(fd: &OwnedFd, mut data: &[u8]) -> std::io::Result<()> {
    let mut stalls = 0;
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                stalls += 1;
                if stalls > 500 {
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn spare(v: &mut Vec<epoll::Event>) -> rustix::buffer::SpareCapacity<'_, epoll::Event> {
    rustix::buffer::spare_capacity(v)
}
