//! The shim's event loop: one thread, one epoll set holding the protocol
//! socket, a signalfd for SIGCHLD, every client connection and every fd of
//! the container's and its execs' stdio.
//!
//! Nothing in the loop blocks on a peer. Every fd is non-blocking:
//! - Bytes for a client (responses, stream output) that its socket does
//!   not take wait in the connection's queue (`Conn::out`), sent as the
//!   socket has room. While a client attached to a process has more than
//!   [`HIGH_WATER`] queued, that process's output is not read (the
//!   container then blocks on its own writes, as under docker) until the
//!   queue is back under [`LOW_WATER`]; a client that takes nothing for
//!   [`SEND_TIMEOUT`] is dropped, so it cannot stall the container.
//! - Input for a process that it does not read yet waits in
//!   `Proc::pending_in`, and the clients sending it are not read until it
//!   has gone in.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use berth_shim_proto::frame::{decode, encode, FrameBuf};
use berth_shim_proto::messages::valid_exec_id;
use berth_shim_proto::{
    stream, AttachOptions, ContainerStatus, ErrorCode, Exit, Request, Response, ShimStatus,
    PROTOCOL_VERSION,
};
use berth_sys::signalfd::SignalFd;
use oci_spec::runtime::Process;
use rustix::event::epoll::{self, EventFlags};

use crate::backend::{signal_process, Backend};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::logger::{now_ns, Logger};
use crate::stdio::{self, ShimEnds};

/// Queued output above which a process's output is no longer read.
const HIGH_WATER: usize = 1 << 20;
/// Queued output under which it is read again.
const LOW_WATER: usize = 256 << 10;
/// A client whose queue has not moved for this long is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// The most read from an output fd at once.
const READ_CHUNK: usize = 32 << 10;
/// How long the loop waits with nothing to do before it lets go of its
/// code's pages and malloc's free memory (see [`Shim::rest_if_idle`]).
const REST_AFTER: Duration = Duration::from_secs(1);

/// Which process an fd, a waiter or an attachment belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    Init,
    Exec(String),
}

enum Source {
    Listener,
    Signals,
    Conn,
    /// A process's stdout, stderr or pty master.
    Output {
        owner: Owner,
        stream: u8,
    },
    /// A process's stdin (or a dup of its pty master), watched for room
    /// while input waits for it.
    Input(Owner),
    /// A process's pidfd: readable once it exits. With CLONE_PARENT the
    /// runtime may leave the init without an exit signal until it is
    /// reparented, so SIGCHLD alone could miss it.
    Pidfd,
}

struct Watch {
    source: Source,
    interest: EventFlags,
    /// In the epoll set. Connections always are (the kernel reports a
    /// hang-up whatever the interest); other fds only while their
    /// interest is not empty (a pipe at its end would report one forever).
    registered: bool,
}

/// One supervised process: the container's init or an exec.
struct Proc {
    pid: i32,
    pidfd: Option<OwnedFd>,
    tty: bool,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    pty: Option<OwnedFd>,
    /// Where client input goes: the stdin pipe, or a dup of the pty
    /// master. `None` when the process has no open stdin.
    input: Option<OwnedFd>,
    pending_in: Vec<u8>,
    /// Close `input` once `pending_in` has gone in (a client's end of input).
    close_input: bool,
    /// Connections not read until `pending_in` has gone in.
    blocked_readers: Vec<RawFd>,
    /// Output fds not yet at their end.
    open_outputs: usize,
    outputs_paused: bool,
    started_at: u64,
    exit: Option<Exit>,
}

impl Proc {
    fn new(pid: i32, tty: bool, io: ShimEnds, input: Option<OwnedFd>, started_at: u64) -> Proc {
        Proc {
            pid,
            pidfd: open_pidfd(pid),
            tty,
            stdout: io.stdout,
            stderr: io.stderr,
            pty: io.pty,
            input,
            pending_in: Vec::new(),
            close_input: false,
            blocked_readers: Vec::new(),
            open_outputs: 0,
            outputs_paused: false,
            started_at,
            exit: None,
        }
    }

    fn fds(&self) -> impl Iterator<Item = &OwnedFd> {
        [
            &self.stdout,
            &self.stderr,
            &self.pty,
            &self.input,
            &self.pidfd,
        ]
        .into_iter()
        .flatten()
    }
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
    /// Bytes for the client not yet sent, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// Since when `out` has not moved.
    stalled_since: Option<Instant>,
    /// The client has not ended its input.
    reading: bool,
    /// Its input waits for room in a process's stdin.
    input_blocked: bool,
    /// Close once `out` is sent.
    closing: bool,
}

impl Conn {
    fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    fn interest(&self) -> EventFlags {
        let mut f = EventFlags::empty();
        if self.reading && !self.input_blocked && !self.closing {
            f |= EventFlags::IN;
        }
        if self.pending() > 0 {
            f |= EventFlags::OUT;
        }
        f
    }

    fn attached_to(&self, owner: &Owner) -> bool {
        matches!(&self.mode, Mode::Attached { owner: o, .. } if o == owner)
    }
}

pub struct Shim {
    cfg: Config,
    backend: Backend,
    epoll: OwnedFd,
    listener: UnixListener,
    signals: SignalFd,
    watches: HashMap<RawFd, Watch>,
    conns: HashMap<RawFd, Conn>,
    init: Proc,
    execs: BTreeMap<String, Proc>,
    /// `None`: the container keeps no log (docker's `none` driver).
    logger: Option<Logger>,
    started: bool,
    paused: bool,
    oom_base: u64,
    quit: bool,
    scratch: Vec<u8>,
    /// When the loop last had work, if it has not rested since.
    worked_at: Option<Instant>,
}

impl Shim {
    /// Creates the container, then binds the protocol socket (after, so
    /// the container's init, cloned meanwhile, holds no copy of it) and
    /// sets up the event loop. On failure nothing of the container remains.
    pub fn new(cfg: Config) -> Result<Shim> {
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
        let pty = match (&console, &created) {
            (Some(l), Ok(_)) => Some(stdio::receive_pty(l)),
            _ => None,
        };
        drop(console);
        let _ = std::fs::remove_file(&console_path);
        let (backend, created) = created?;
        let rest = (|| -> Result<_> {
            let mut io = io;
            if let Some(pty) = pty {
                io.pty = Some(pty?);
            }
            let input = container_input(&mut io, cfg.tty, cfg.stdin)?;
            let logger = cfg
                .log
                .as_deref()
                .map(|log| Logger::open(log, cfg.log_max_size, cfg.log_max_files))
                .transpose()?;
            let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
                .map_err(|e| Error::sys("creating the epoll set")(e.into()))?;
            let signals =
                SignalFd::new(&[libc::SIGCHLD]).map_err(Error::sys("creating the signalfd"))?;
            let listener = crate::bind(&cfg.socket)?;
            listener
                .set_nonblocking(true)
                .map_err(Error::sys("setting the socket non-blocking"))?;
            Ok((io, input, logger, epoll, signals, listener))
        })();
        let (io, input, logger, epoll, signals, listener) = match rest {
            Ok(r) => r,
            Err(e) => {
                let _ = backend.delete(true);
                backend.remove_root();
                return Err(e);
            }
        };
        let mut shim = Shim {
            init: Proc::new(created.pid, cfg.tty, io, input, 0),
            cfg,
            backend,
            epoll,
            listener,
            signals,
            watches: HashMap::new(),
            conns: HashMap::new(),
            execs: BTreeMap::new(),
            logger,
            started: false,
            paused: false,
            oom_base: created.oom_base,
            quit: false,
            scratch: Vec::new(),
            worked_at: Some(Instant::now()),
        };
        let setup = (|| {
            shim.watch(shim.listener.as_raw_fd(), Source::Listener, EventFlags::IN)?;
            shim.watch(
                shim.signals.as_fd().as_raw_fd(),
                Source::Signals,
                EventFlags::IN,
            )?;
            shim.watch_proc(Owner::Init)
        })();
        if let Err(e) = setup {
            let _ = shim.backend.delete(true);
            shim.cleanup();
            return Err(e);
        }
        Ok(shim)
    }

    // The epoll set.

    fn watch(&mut self, fd: RawFd, source: Source, interest: EventFlags) -> Result<()> {
        self.watches.insert(
            fd,
            Watch {
                source,
                interest: EventFlags::empty(),
                registered: false,
            },
        );
        self.set_interest(fd, interest)
    }

    /// Makes the epoll set watch `fd` for `interest` (see [`Watch`]).
    fn set_interest(&mut self, fd: RawFd, interest: EventFlags) -> Result<()> {
        let Some(w) = self.watches.get(&fd) else {
            return Ok(());
        };
        let always = matches!(w.source, Source::Conn);
        let register = always || !interest.is_empty();
        if w.registered == register && w.interest == interest {
            return Ok(());
        }
        let was_registered = w.registered;
        let Some(b) = self.borrow(fd) else {
            return Ok(());
        };
        let data = epoll::EventData::new_u64(fd as u64);
        let r = match (was_registered, register) {
            (false, true) => epoll::add(&self.epoll, b, data, interest),
            (true, true) => epoll::modify(&self.epoll, b, data, interest),
            (true, false) => epoll::delete(&self.epoll, b),
            (false, false) => Ok(()),
        };
        r.map_err(|e| Error::sys("changing the epoll set")(e.into()))?;
        if let Some(w) = self.watches.get_mut(&fd) {
            w.registered = register;
            w.interest = interest;
        }
        Ok(())
    }

    /// Stops watching `fd`; call before closing it.
    fn unwatch(&mut self, fd: RawFd) {
        if let Some(w) = self.watches.remove(&fd) {
            if w.registered {
                if let Some(b) = self.borrow(fd) {
                    let _ = epoll::delete(&self.epoll, b);
                }
            }
        }
    }

    /// The descriptor behind a watched fd number, among those the shim
    /// owns (fds are unwatched before they are closed).
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
            .flat_map(Proc::fds)
            .find(|f| f.as_raw_fd() == fd)
            .map(|f| f.as_fd())
    }

    fn proc_mut(&mut self, owner: &Owner) -> Option<&mut Proc> {
        match owner {
            Owner::Init => Some(&mut self.init),
            Owner::Exec(id) => self.execs.get_mut(id),
        }
    }

    fn proc_ref(&self, owner: &Owner) -> Option<&Proc> {
        match owner {
            Owner::Init => Some(&self.init),
            Owner::Exec(id) => self.execs.get(id),
        }
    }

    /// Watches a new process's outputs and pidfd.
    fn watch_proc(&mut self, owner: Owner) -> Result<()> {
        let Some(p) = self.proc_mut(&owner) else {
            return Ok(());
        };
        let outputs: Vec<(RawFd, u8)> = [
            (p.stdout.as_ref(), stream::STDOUT),
            (p.stderr.as_ref(), stream::STDERR),
            (p.pty.as_ref(), stream::STDOUT),
        ]
        .into_iter()
        .filter_map(|(fd, s)| fd.map(|fd| (fd.as_raw_fd(), s)))
        .collect();
        p.open_outputs = outputs.len();
        let pidfd = p.pidfd.as_ref().map(|f| f.as_raw_fd());
        let input = p.input.as_ref().map(|f| f.as_raw_fd());
        for (fd, s) in outputs {
            let source = Source::Output {
                owner: owner.clone(),
                stream: s,
            };
            self.watch(fd, source, EventFlags::IN)?;
        }
        if let Some(fd) = input {
            // Watched for room only while input waits.
            self.watch(fd, Source::Input(owner.clone()), EventFlags::empty())?;
        }
        if let Some(fd) = pidfd {
            self.watch(fd, Source::Pidfd, EventFlags::IN)?;
        }
        Ok(())
    }

    // The loop.

    /// Serves until `delete`.
    pub fn run(&mut self) -> Result<()> {
        // Children that exited before the signalfd existed.
        self.reap();
        let mut events = Vec::with_capacity(16);
        while !self.quit {
            events.clear();
            let timeout = self.next_timeout();
            match epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut events),
                timeout.as_ref(),
            ) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::sys("waiting for events")(e.into())),
            }
            if events.is_empty() {
                self.rest_if_idle();
            } else {
                self.worked_at = Some(Instant::now());
            }
            for ev in events.iter() {
                let fd = ev.data.u64() as RawFd;
                self.dispatch(fd, ev.flags);
                if self.quit {
                    break;
                }
            }
            self.drop_stalled();
        }
        self.flush_before_exit();
        Ok(())
    }

    /// Until the first stalled client's time is up or the loop is due to
    /// rest, whichever comes first; `None` (no timeout) when neither.
    fn next_timeout(&self) -> Option<rustix::event::Timespec> {
        let stalled = self.conns.values().filter_map(|c| c.stalled_since).min();
        let deadline = [
            stalled.map(|t| t + SEND_TIMEOUT),
            self.worked_at.map(|t| t + REST_AFTER),
        ]
        .into_iter()
        .flatten()
        .min()?;
        // A millisecond over, so that the wait does not end just before
        // the deadline (epoll_pwait counts whole milliseconds); nanoseconds
        // stay under a second, as epoll_pwait2 requires.
        let left = deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(1);
        Some(rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        })
    }

    /// Once the loop has had nothing to do for [`REST_AFTER`]: unmaps the
    /// shim's code (the start-up's and the last request's; the pages stay
    /// in the page cache, see `berth_sys::code_pages`) and gives its read
    /// buffer and malloc's free memory back. A shim spends its life
    /// waiting, and what it ran to start the container is most of what it
    /// has mapped; the next event maps what it needs again with minor
    /// faults.
    fn rest_if_idle(&mut self) {
        let Some(worked_at) = self.worked_at else {
            return;
        };
        if worked_at.elapsed() < REST_AFTER {
            return;
        }
        self.worked_at = None;
        // The read buffer comes back with the next output.
        self.scratch = Vec::new();
        berth_sys::malloc::trim();
        if let Err(e) = berth_sys::code_pages::release() {
            eprintln!("berth-shim: unmapping idle code pages: {e}");
        }
    }

    fn drop_stalled(&mut self) {
        let now = Instant::now();
        let stalled: Vec<RawFd> = self
            .conns
            .iter()
            .filter(|(_, c)| c.stalled_since.is_some_and(|t| now >= t + SEND_TIMEOUT))
            .map(|(fd, _)| *fd)
            .collect();
        for fd in stalled {
            eprintln!("berth-shim: dropping a client that took no data for {SEND_TIMEOUT:?}");
            self.close_conn(fd);
        }
    }

    fn dispatch(&mut self, fd: RawFd, flags: EventFlags) {
        let Some(w) = self.watches.get(&fd) else {
            return;
        };
        match &w.source {
            Source::Listener => self.accept(),
            Source::Signals => {
                while let Ok(Some(_)) = self.signals.read() {}
                self.reap();
            }
            Source::Pidfd => self.reap(),
            Source::Conn => self.conn_event(fd, flags),
            Source::Output { owner, stream } => {
                let (owner, stream) = (owner.clone(), *stream);
                self.output_readable(fd, owner, stream);
            }
            Source::Input(owner) => {
                let owner = owner.clone();
                self.input_writable(&owner);
            }
        }
    }

    // Connections.

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let fd = stream.as_raw_fd();
            self.conns.insert(
                fd,
                Conn {
                    stream,
                    buf: FrameBuf::new(),
                    hello: false,
                    mode: Mode::Framed,
                    out: Vec::new(),
                    out_pos: 0,
                    stalled_since: None,
                    reading: true,
                    input_blocked: false,
                    closing: false,
                },
            );
            if self.watch(fd, Source::Conn, EventFlags::IN).is_err() {
                self.watches.remove(&fd);
                self.conns.remove(&fd);
            }
        }
    }

    fn conn_event(&mut self, fd: RawFd, flags: EventFlags) {
        let pending = self.conns.get(&fd).is_some_and(|c| c.pending() > 0);
        if pending && flags.intersects(EventFlags::OUT | EventFlags::ERR | EventFlags::HUP) {
            self.flush_conn(fd);
        }
        let Some(c) = self.conns.get(&fd) else {
            return;
        };
        let reads = c.interest().contains(EventFlags::IN);
        if reads && flags.intersects(EventFlags::IN | EventFlags::HUP | EventFlags::ERR) {
            self.conn_readable(fd);
        } else if flags.intersects(EventFlags::HUP | EventFlags::ERR) {
            // Gone while we were not reading from it.
            self.close_conn(fd);
        }
    }

    /// Updates a connection's epoll interest; closes it when it is done.
    fn refresh_conn(&mut self, fd: RawFd) {
        let Some(c) = self.conns.get(&fd) else {
            return;
        };
        if c.closing && c.pending() == 0 {
            return self.close_conn(fd);
        }
        let interest = c.interest();
        if self.set_interest(fd, interest).is_err() {
            self.close_conn(fd);
        }
    }

    fn close_conn(&mut self, fd: RawFd) {
        self.unwatch(fd);
        let Some(c) = self.conns.remove(&fd) else {
            return;
        };
        // Unread input at close would make the peer's next read fail
        // with ECONNRESET instead of seeing the end of the stream.
        let mut buf = [0u8; 4096];
        while let Ok((n, _)) =
            rustix::net::recv(&c.stream, &mut buf[..], rustix::net::RecvFlags::DONTWAIT)
        {
            if n == 0 {
                break;
            }
        }
        drop(c);
        for p in std::iter::once(&mut self.init).chain(self.execs.values_mut()) {
            p.blocked_readers.retain(|r| *r != fd);
        }
        // A slow client that left may let its process's output flow again.
        for owner in self.all_owners() {
            self.update_output_flow(&owner);
        }
    }

    fn all_owners(&self) -> Vec<Owner> {
        std::iter::once(Owner::Init)
            .chain(self.execs.keys().map(|k| Owner::Exec(k.clone())))
            .collect()
    }

    fn conn_readable(&mut self, fd: RawFd) {
        let mut buf = [0u8; 16 * 1024];
        let r = match self.conns.get(&fd) {
            Some(c) => rustix::net::recv(&c.stream, &mut buf[..], rustix::net::RecvFlags::DONTWAIT),
            None => return,
        };
        let n = match r {
            Ok((n, _)) => n,
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => return,
            Err(_) => return self.close_conn(fd),
        };
        if n == 0 {
            return self.client_eof(fd);
        }
        let attached = match &self.conns[&fd].mode {
            Mode::Attached { owner, opts } => Some((owner.clone(), opts.clone())),
            _ => None,
        };
        match attached {
            Some((owner, opts)) => self.attached_input(fd, &owner, &opts, &buf[..n]),
            None => {
                if let Some(c) = self.conns.get_mut(&fd) {
                    c.buf.push(&buf[..n]);
                }
                self.process_frames(fd);
            }
        }
    }

    /// The client ended its input (shut down its write side or closed).
    fn client_eof(&mut self, fd: RawFd) {
        let Some(c) = self.conns.get_mut(&fd) else {
            return;
        };
        c.reading = false;
        let close_stdin = match &c.mode {
            Mode::Attached { owner, opts } if opts.stdin && opts.close_stdin => Some(owner.clone()),
            Mode::Attached { .. } | Mode::Waiting(_) => None,
            Mode::Framed => {
                c.closing = true;
                None
            }
        };
        if let Some(owner) = close_stdin {
            self.close_input(&owner);
        }
        self.refresh_conn(fd);
    }

    /// Handles every complete request buffered on a framed connection.
    fn process_frames(&mut self, fd: RawFd) {
        loop {
            let Some(c) = self.conns.get_mut(&fd) else {
                return;
            };
            if !matches!(c.mode, Mode::Framed) || c.closing {
                return;
            }
            let body = match c.buf.next_frame() {
                Ok(Some(b)) => b,
                Ok(None) => return,
                Err(_) => return self.close_conn(fd),
            };
            match decode::<Request>(&body, "request") {
                Ok(req) => self.request(fd, req),
                Err(e) => self.respond(
                    fd,
                    &Response::Error {
                        code: ErrorCode::InvalidArgument,
                        message: e.to_string(),
                    },
                ),
            }
            if self.quit {
                return;
            }
        }
    }

    /// Queues a response frame.
    fn respond(&mut self, fd: RawFd, resp: &Response) {
        match encode(resp, "response") {
            Ok(bytes) => self.send(fd, &bytes),
            Err(_) => self.close_conn(fd),
        }
    }

    /// Sends bytes to a client: as much as its socket takes now, the rest
    /// queued.
    fn send(&mut self, fd: RawFd, bytes: &[u8]) {
        let Some(c) = self.conns.get_mut(&fd) else {
            return;
        };
        let mut bytes = bytes;
        if c.pending() == 0 {
            c.out.clear();
            c.out_pos = 0;
            match send_some(&c.stream, bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(_) => return self.close_conn(fd),
            }
            if bytes.is_empty() {
                return;
            }
            c.stalled_since = Some(Instant::now());
        }
        c.out.extend_from_slice(bytes);
        self.refresh_conn(fd);
    }

    /// Sends what is queued for a client as far as its socket takes it.
    fn flush_conn(&mut self, fd: RawFd) {
        let Some(c) = self.conns.get_mut(&fd) else {
            return;
        };
        match send_some(&c.stream, &c.out[c.out_pos..]) {
            Ok(0) => {}
            Ok(n) => {
                c.out_pos += n;
                c.stalled_since = Some(Instant::now());
            }
            Err(_) => return self.close_conn(fd),
        }
        if c.pending() == 0 {
            // Give back what a burst took.
            c.out = Vec::new();
            c.out_pos = 0;
            c.stalled_since = None;
        } else if c.out_pos > c.out.len() / 2 {
            c.out.drain(..c.out_pos);
            c.out_pos = 0;
        }
        let owner = match &c.mode {
            Mode::Attached { owner, .. } => Some(owner.clone()),
            _ => None,
        };
        self.refresh_conn(fd);
        if let Some(owner) = owner {
            self.update_output_flow(&owner);
        }
    }

    /// Before exiting: what is queued goes out (briefly blocking).
    fn flush_before_exit(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        for c in self.conns.values_mut() {
            let left = deadline.saturating_duration_since(Instant::now());
            if c.pending() == 0 || left.is_zero() {
                continue;
            }
            let _ = c.stream.set_nonblocking(false);
            let _ = c.stream.set_write_timeout(Some(left));
            let _ = std::io::Write::write_all(&mut c.stream, &c.out[c.out_pos..]);
        }
    }

    // Requests.

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
            (false, Request::Hello { version }) => Err(Error::Version {
                client: version,
                shim: PROTOCOL_VERSION,
            }),
            (false, _) => Err(Error::NoHello),
            (true, req) => self.handle(fd, req),
        };
        match result {
            Ok(Some(resp)) => self.respond(fd, &resp),
            Ok(None) => {}
            Err(e) => {
                self.respond(
                    fd,
                    &Response::Error {
                        code: e.code(),
                        message: e.to_string(),
                    },
                );
                // Without a hello there is no conversation to continue.
                if !hello {
                    if let Some(c) = self.conns.get_mut(&fd) {
                        c.closing = true;
                    }
                    self.refresh_conn(fd);
                }
            }
        }
    }

    /// Carries out one request. `Ok(None)` means the answer comes later
    /// (a wait) or was already queued (attach, exec with attach, delete).
    fn handle(&mut self, fd: RawFd, req: Request) -> Result<Option<Response>> {
        Ok(Some(match req {
            Request::Hello { .. } => {
                return Err(Error::State("hello was already exchanged".into()))
            }
            Request::State => Response::State(self.status()),
            Request::Start => {
                if self.started {
                    return Err(Error::State("the container was already started".into()));
                }
                // Its init ended while it waited for the start: something
                // killed it, and what it wrote is in the container's log.
                if let Some(exit) = &self.init.exit {
                    return Err(Error::State(format!(
                        "the container's process ended before it was started ({}); see the container's log",
                        match exit.signal {
                            Some(sig) => format!("killed by signal {sig}"),
                            None => format!("exit code {}", exit.code),
                        }
                    )));
                }
                self.backend.start()?;
                self.started = true;
                self.init.started_at = now_ns();
                Response::Ok
            }
            Request::Wait => return Ok(self.wait(fd, Owner::Init)),
            Request::ExecWait { exec_id } => {
                if !self.execs.contains_key(&exec_id) {
                    return Err(Error::NoExec(exec_id));
                }
                return Ok(self.wait(fd, Owner::Exec(exec_id)));
            }
            Request::Kill { signal, all } => {
                // A paused container's kill-all is the runtime's, which
                // thaws the cgroup after it: a frozen init cannot die.
                let direct = self.init.exit.is_none() && !(all && self.paused);
                let live_init = direct.then_some(self.init.pid);
                self.backend.kill(signal, all, live_init)?;
                Response::Ok
            }
            Request::ExecKill { exec_id, signal } => {
                let p = self.execs.get(&exec_id).ok_or(Error::NoExec(exec_id))?;
                if p.exit.is_some() {
                    return Err(Error::State("the exec'd process has exited".into()));
                }
                signal_process(p.pid, signal, "signalling the exec'd process")?;
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
                if p.exit.is_some() {
                    return Err(Error::State("the process has exited".into()));
                }
                let pty = p
                    .pty
                    .as_ref()
                    .ok_or_else(|| Error::State("the process has no terminal to resize".into()))?;
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
                // The init's exit, for the answer and for the waiters.
                self.await_init(Duration::from_secs(10));
                let exit = if self.started {
                    self.init.exit.clone()
                } else {
                    None
                };
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

    fn wait(&mut self, fd: RawFd, owner: Owner) -> Option<Response> {
        let exit = self.proc_ref(&owner).and_then(|p| p.exit.clone());
        if let Some(exit) = exit {
            return Some(Response::Exit { exit: Some(exit) });
        }
        if let Some(c) = self.conns.get_mut(&fd) {
            c.mode = Mode::Waiting(owner);
        }
        None
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
        // Input only reaches a process someone is attached to.
        let stdin = stdin && attach;
        process.set_terminal(Some(tty));
        // One name serves every exec: they are created one at a time here
        // and the socket is gone before this returns. Named after the
        // exec's id (64 hex digits), the path outgrew a socket address
        // (108 bytes) under a longer exec root, and every tty exec failed.
        let console_path = self.cfg.state_dir.join("exec-console.sock");
        let (io, ends, console) = if tty {
            let l = stdio::console_listener(&console_path)?;
            (ShimEnds::default(), stdio::null_ends()?, Some(l))
        } else if attach {
            let (shim, child) = stdio::pipes(stdin)?;
            (shim, child, None)
        } else {
            // Docker discards a detached exec's output: it gets /dev/null.
            (ShimEnds::default(), stdio::null_ends()?, None)
        };
        let pid = self.backend.exec(
            &exec_id,
            &process,
            &ends,
            console.as_ref().map(|_| console_path.as_path()),
        );
        let started_at = now_ns();
        drop(ends);
        let pty = match (&console, &pid) {
            (Some(l), Ok(_)) => Some(stdio::receive_pty(l)),
            _ => None,
        };
        if console.is_some() {
            drop(console);
            let _ = std::fs::remove_file(&console_path);
        }
        // The process may have exited already, reparented to us.
        let reaped = self.reap_collect();
        let result = (|| {
            let pid = pid?;
            let mut io = io;
            if let Some(pty) = pty {
                io.pty = Some(pty?);
            }
            let input = container_input(&mut io, tty, stdin)?;
            Ok((pid, io, input))
        })();
        let (pid, io, input) = match result {
            Ok(r) => r,
            Err(e) => {
                self.apply_reaped(reaped);
                return Err(e);
            }
        };
        let mut p = Proc::new(pid, tty, io, input, started_at);
        if reaped.iter().any(|(r, _, _)| *r == pid) {
            p.pidfd = None; // reaped: its pid may be someone else's now
        }
        self.execs.insert(exec_id.clone(), p);
        let watched = self.watch_proc(Owner::Exec(exec_id.clone()));
        self.apply_reaped(reaped);
        watched?;
        if attach {
            self.respond(fd, &Response::ExecStarted { pid: pid as u32 });
            let opts = AttachOptions {
                stdin,
                stdout: true,
                stderr: true,
                close_stdin: true,
            };
            self.attach(fd, Owner::Exec(exec_id), opts);
            return Ok(None);
        }
        Ok(Some(Response::ExecStarted { pid: pid as u32 }))
    }

    // Streams.

    /// Turns a connection into an attachment of `owner`'s stdio.
    fn attach(&mut self, fd: RawFd, owner: Owner, opts: AttachOptions) {
        let done = self
            .proc_ref(&owner)
            .is_none_or(|p| p.exit.is_some() && p.open_outputs == 0);
        let Some(c) = self.conns.get_mut(&fd) else {
            return;
        };
        let rest = c.buf.take_rest();
        c.mode = Mode::Attached {
            owner: owner.clone(),
            opts: opts.clone(),
        };
        if done {
            c.closing = true;
        } else if !rest.is_empty() {
            self.attached_input(fd, &owner, &opts, &rest);
        }
        self.refresh_conn(fd);
    }

    /// Bytes from an attached client: input for the process, if it asked
    /// for stdin and the process's stdin is open (else dropped).
    fn attached_input(&mut self, fd: RawFd, owner: &Owner, opts: &AttachOptions, data: &[u8]) {
        if !opts.stdin {
            return;
        }
        let Some(p) = self.proc_mut(owner) else {
            return;
        };
        let Some(input) = &p.input else {
            return;
        };
        let input_fd = input.as_raw_fd();
        let mut data = data;
        if p.pending_in.is_empty() {
            match write_some(input, data) {
                Ok(n) => data = &data[n..],
                Err(_) => {
                    // The process closed its stdin: input has nowhere to go.
                    return self.drop_input(owner);
                }
            }
            if data.is_empty() {
                return;
            }
        }
        p.pending_in.extend_from_slice(data);
        p.blocked_readers.push(fd);
        if let Some(c) = self.conns.get_mut(&fd) {
            c.input_blocked = true;
        }
        self.refresh_conn(fd);
        if self.set_interest(input_fd, EventFlags::OUT).is_err() {
            self.drop_input(owner);
        }
    }

    /// Room in a process's stdin: in goes what waited for it.
    fn input_writable(&mut self, owner: &Owner) {
        let Some(p) = self.proc_mut(owner) else {
            return;
        };
        let Some(input) = &p.input else {
            return;
        };
        let input_fd = input.as_raw_fd();
        match write_some(input, &p.pending_in) {
            Ok(n) => {
                p.pending_in.drain(..n);
            }
            Err(_) => return self.drop_input(owner),
        }
        if !p.pending_in.is_empty() {
            return;
        }
        p.pending_in = Vec::new();
        let readers = std::mem::take(&mut p.blocked_readers);
        let close = p.close_input;
        let _ = self.set_interest(input_fd, EventFlags::empty());
        for fd in readers {
            if let Some(c) = self.conns.get_mut(&fd) {
                c.input_blocked = false;
            }
            self.refresh_conn(fd);
        }
        if close {
            self.drop_input(owner);
        }
    }

    /// Closes a process's stdin once what waits for it has gone in.
    fn close_input(&mut self, owner: &Owner) {
        let Some(p) = self.proc_mut(owner) else {
            return;
        };
        p.close_input = true;
        if p.pending_in.is_empty() {
            self.drop_input(owner);
        }
    }

    /// Closes a process's stdin now; clients waiting on it are read again.
    fn drop_input(&mut self, owner: &Owner) {
        let Some(fd) = self
            .proc_ref(owner)
            .and_then(|p| p.input.as_ref())
            .map(|f| f.as_raw_fd())
        else {
            return;
        };
        self.unwatch(fd);
        let Some(p) = self.proc_mut(owner) else {
            return;
        };
        p.input = None;
        p.pending_in = Vec::new();
        let readers = std::mem::take(&mut p.blocked_readers);
        for fd in readers {
            if let Some(c) = self.conns.get_mut(&fd) {
                c.input_blocked = false;
            }
            self.refresh_conn(fd);
        }
    }

    fn output_readable(&mut self, fd: RawFd, owner: Owner, stream_id: u8) {
        let mut buf = std::mem::take(&mut self.scratch);
        if buf.len() < READ_CHUNK {
            buf.resize(READ_CHUNK, 0);
        }
        let mut eof = false;
        // Bounded rounds so one chatty process cannot starve the loop.
        for _ in 0..16 {
            if self.proc_ref(&owner).is_none_or(|p| p.outputs_paused) {
                break;
            }
            let Some(b) = self.borrow(fd) else { break };
            match rustix::io::read(b, &mut buf[..]) {
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
        self.scratch = buf;
        if eof {
            self.unwatch(fd);
            if let (Owner::Init, Some(logger)) = (&owner, &mut self.logger) {
                if let Err(e) = logger.flush(stream_id) {
                    eprintln!("berth-shim: {e}");
                }
            }
            if let Some(p) = self.proc_mut(&owner) {
                for slot in [&mut p.stdout, &mut p.stderr, &mut p.pty] {
                    if slot.as_ref().is_some_and(|f| f.as_raw_fd() == fd) {
                        *slot = None;
                    }
                }
                p.open_outputs = p.open_outputs.saturating_sub(1);
            }
            self.maybe_finish_attachments(&owner);
        }
    }

    /// Output of `owner`: to the log (the init's only, as docker does) and
    /// to every attached client that asked for this stream.
    fn deliver(&mut self, owner: &Owner, stream_id: u8, data: &[u8]) {
        let Some(tty) = self.proc_ref(owner).map(|p| p.tty) else {
            return;
        };
        if let (Owner::Init, Some(logger)) = (owner, &mut self.logger) {
            if let Err(e) = logger.write(stream_id, data) {
                eprintln!("berth-shim: {e}");
            }
        }
        let clients: Vec<RawFd> = self
            .conns
            .iter()
            .filter(|(_, c)| match &c.mode {
                Mode::Attached { owner: o, opts } if o == owner && !c.closing => {
                    if stream_id == stream::STDERR {
                        opts.stderr
                    } else {
                        opts.stdout
                    }
                }
                _ => false,
            })
            .map(|(fd, _)| *fd)
            .collect();
        if clients.is_empty() {
            return;
        }
        let mut framed = Vec::new();
        let bytes = if tty {
            data
        } else {
            stream::frame_into(&mut framed, stream_id, data);
            &framed[..]
        };
        for fd in clients {
            self.send(fd, bytes);
        }
        self.update_output_flow(owner);
    }

    /// Stops reading `owner`'s output while a client of it has too much
    /// queued, and reads it again once every client has caught up.
    fn update_output_flow(&mut self, owner: &Owner) {
        let backlog = self
            .conns
            .values()
            .filter(|c| c.attached_to(owner))
            .map(Conn::pending)
            .max()
            .unwrap_or(0);
        let Some(p) = self.proc_mut(owner) else {
            return;
        };
        let pause = if !p.outputs_paused && backlog > HIGH_WATER {
            true
        } else if p.outputs_paused && backlog <= LOW_WATER {
            false
        } else {
            return;
        };
        p.outputs_paused = pause;
        let fds: Vec<RawFd> = self
            .watches
            .iter()
            .filter(|(_, w)| matches!(&w.source, Source::Output { owner: o, .. } if o == owner))
            .map(|(fd, _)| *fd)
            .collect();
        let interest = if pause {
            EventFlags::empty()
        } else {
            EventFlags::IN
        };
        for fd in fds {
            let _ = self.set_interest(fd, interest);
        }
    }

    /// Ends the attachments of a process that exited and whose output is
    /// drained: each client gets what is queued, then the end of the stream.
    fn maybe_finish_attachments(&mut self, owner: &Owner) {
        let done = self
            .proc_ref(owner)
            .is_some_and(|p| p.exit.is_some() && p.open_outputs == 0);
        if !done {
            return;
        }
        let fds: Vec<RawFd> = self
            .conns
            .iter()
            .filter(|(_, c)| c.attached_to(owner))
            .map(|(fd, _)| *fd)
            .collect();
        for fd in fds {
            if let Some(c) = self.conns.get_mut(&fd) {
                c.closing = true;
            }
            self.refresh_conn(fd);
        }
    }

    // Exits.

    /// Reaps every exited child and records the exits of known ones.
    fn reap(&mut self) {
        let reaped = self.reap_collect();
        self.apply_reaped(reaped);
    }

    /// Waits (up to `timeout`) until the init has been reaped.
    fn await_init(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        self.reap();
        while self.init.exit.is_none() && Instant::now() < deadline {
            if let Some(pidfd) = &self.init.pidfd {
                let mut fds = [rustix::event::PollFd::new(
                    pidfd,
                    rustix::event::PollFlags::IN,
                )];
                let ts = rustix::event::Timespec {
                    tv_sec: 0,
                    tv_nsec: 10_000_000,
                };
                let _ = rustix::event::poll(&mut fds, Some(&ts));
            } else {
                std::thread::sleep(Duration::from_millis(10));
            }
            self.reap();
        }
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
                at.max(p.started_at),
            );
            p.exit = Some(exit.clone());
            if let Some(fd) = p.pidfd.as_ref().map(|f| f.as_raw_fd()) {
                self.unwatch(fd);
            }
            if let Some(p) = self.proc_mut(&owner) {
                p.pidfd = None;
            }
            // Nobody reads its stdin any more.
            self.drop_input(&owner);
            if owner == Owner::Init {
                self.paused = false;
                self.write_exit_record(&exit);
            }
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
                // Requests that arrived during the wait.
                self.process_frames(fd);
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

    /// After delete: the socket, the exit record, the runtime's state root
    /// and the shim's log (when empty) go; the daemon owns the directories.
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

/// The fd client input goes to: the stdin pipe, or (with `stdin`) a dup
/// of the pty master, watched separately from the master's output.
fn container_input(io: &mut ShimEnds, tty: bool, stdin: bool) -> Result<Option<OwnedFd>> {
    let pipe = io.stdin.take();
    if !stdin {
        return Ok(None);
    }
    if tty {
        return io
            .pty
            .as_ref()
            .map(|p| {
                rustix::io::fcntl_dupfd_cloexec(p, 3)
                    .map_err(|e| Error::sys("duplicating the pty")(e.into()))
            })
            .transpose();
    }
    Ok(pipe)
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

/// Writes as much of `data` as a non-blocking fd takes now.
fn write_some(fd: &OwnedFd, data: &[u8]) -> rustix::io::Result<usize> {
    let mut done = 0;
    while done < data.len() {
        match rustix::io::write(fd, &data[done..]) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Sends as much of `data` as a non-blocking socket takes now (no SIGPIPE).
fn send_some(s: &UnixStream, data: &[u8]) -> rustix::io::Result<usize> {
    let mut done = 0;
    while done < data.len() {
        match rustix::net::send(
            s,
            &data[done..],
            rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL,
        ) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
