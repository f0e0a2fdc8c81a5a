//! The server: sockets on each network's gateway addresses, one epoll
//! loop for UDP queries, new TCP connections and signals (SIGHUP reloads,
//! SIGTERM ends), and short-lived threads for the work that waits: a
//! forward to the upstreams, a TCP connection. Both are bounded.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};

use crate::answer::{encode, error, fit, respond, udp_limit, Network, Reply, Scope};
use crate::config::{config_files, read_networks};
use crate::control::{PidLock, EXIT_BUSY};
use crate::forward::{forward, read_framed, write_framed};
use crate::Error;

/// DNS's port.
pub const PORT: u16 = 53;
/// The largest UDP query read; anything longer is cut and then fails to parse.
const MAX_UDP_QUERY: usize = 4096;
/// The largest UDP reply sent, whatever a client's EDNS size says.
const MAX_UDP_REPLY: usize = 4096;
/// The largest query read from a TCP connection.
const MAX_TCP_QUERY: usize = 8192;
/// The largest DNS message (a TCP reply).
const MAX_TCP_REPLY: usize = 65535;
/// Forwards waiting on upstreams at once; more get SERVFAIL at once.
const MAX_FORWARDS: usize = 128;
/// TCP connections served at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 64;
/// Queries one TCP connection may ask before it is closed.
const MAX_QUERIES_PER_CONNECTION: usize = 100;
/// An idle TCP connection is closed after this.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Datagrams read per wakeup of one socket, so that one busy network
/// cannot starve the others or the signals.
const UDP_BATCH: usize = 64;
/// How often addresses that failed to bind are tried again.
const REBIND_EVERY: Duration = Duration::from_secs(5);
/// The most listen addresses served (two sockets each).
const MAX_LISTEN: usize = 4096;
/// Threads only parse, encode and wait on sockets.
const THREAD_STACK: usize = 256 << 10;

const SIGNALS: &[i32] = &[libc::SIGHUP, libc::SIGTERM, libc::SIGINT];
const SIGNAL_TOKEN: u64 = 0;

/// How a start went, for the launcher that waits on it.
#[derive(Debug)]
pub enum Start {
    /// Serving every network found.
    Serving,
    /// No network config in the directory: nothing to serve, exiting.
    Nothing,
    /// Another server holds the directory.
    Busy,
    /// Could not start; the message says why.
    Failed(String),
}

/// Blocks the signals the server takes as events. Call it first thing in
/// `main`, before any thread exists, so that every thread inherits the
/// mask and an early SIGHUP waits for the loop instead of killing us.
pub fn block_signals() -> std::io::Result<()> {
    berth_sys::signalfd::block(SIGNALS)
}

/// Serves `dir` until SIGTERM or until no network is left; `started` is
/// told how the start went. Returns the process's exit code.
pub fn run(dir: &Path, started: impl FnOnce(&Start)) -> i32 {
    let lock = match PidLock::acquire(dir) {
        Ok(l) => l,
        Err(Error::Busy(_)) => {
            started(&Start::Busy);
            return EXIT_BUSY;
        }
        Err(e) => {
            started(&Start::Failed(e.to_string()));
            return 1;
        }
    };
    let mut server = match Server::new(dir, lock) {
        Ok(s) => s,
        Err(e) => {
            started(&Start::Failed(e));
            return 1;
        }
    };
    if !server.reload() {
        server.lock.unlink();
        started(&Start::Nothing);
        return 0;
    }
    started(&Start::Serving);
    match server.serve() {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
            server.lock.unlink();
            1
        }
    }
}

struct Listener {
    id: u64,
    addr: IpAddr,
    udp: Arc<UdpSocket>,
    tcp: TcpListener,
    scope: Scope,
}

struct Server {
    dir: PathBuf,
    lock: PidLock,
    epoll: OwnedFd,
    signals: berth_sys::signalfd::SignalFd,
    listeners: Vec<Listener>,
    /// Addresses that failed to bind, tried again every [`REBIND_EVERY`].
    unbound: Vec<(IpAddr, Scope)>,
    next_id: u64,
    forwards: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    buf: Vec<u8>,
}

impl Server {
    fn new(dir: &Path, lock: PidLock) -> Result<Server, String> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
            .map_err(|e| format!("creating an epoll instance: {e}"))?;
        let signals = berth_sys::signalfd::SignalFd::new(SIGNALS)
            .map_err(|e| format!("creating a signalfd: {e}"))?;
        epoll::add(
            &epoll,
            &signals,
            EventData::new_u64(SIGNAL_TOKEN),
            EventFlags::IN,
        )
        .map_err(|e| format!("watching the signalfd: {e}"))?;
        Ok(Server {
            dir: dir.to_path_buf(),
            lock,
            epoll,
            signals,
            listeners: Vec::new(),
            unbound: Vec::new(),
            next_id: 1,
            forwards: Arc::new(AtomicUsize::new(0)),
            connections: Arc::new(AtomicUsize::new(0)),
            buf: vec![0u8; MAX_UDP_QUERY],
        })
    }

    /// Reads the directory and makes the sockets match it. Returns false
    /// when no network is left (every socket is closed by then).
    fn reload(&mut self) -> bool {
        let nets = match read_networks(&self.dir) {
            Ok((nets, errors)) => {
                for e in errors {
                    tracing::error!("{e}; that network is not served");
                }
                nets
            }
            Err(e) => {
                // Keep serving what we have rather than nothing.
                tracing::error!("{e}; keeping the previous networks");
                return !self.listeners.is_empty() || !self.unbound.is_empty();
            }
        };
        let ours: Vec<IpAddr> = nets.iter().flat_map(|n| n.listen.iter().copied()).collect();
        let all: Arc<Vec<Network>> = Arc::new(
            nets.iter()
                .map(|cfg| {
                    let mut net = Network::new(cfg);
                    drop_self(&mut net.upstreams, &ours);
                    net
                })
                .collect(),
        );
        let mut wanted: Vec<(IpAddr, Scope)> = Vec::new();
        for (at, cfg) in nets.iter().enumerate() {
            for &addr in &cfg.listen {
                if let Some((_, other)) = wanted.iter().find(|(a, _)| *a == addr) {
                    let other = other.net();
                    tracing::error!(
                        %addr, network = cfg.network_id, other = other.id,
                        "two networks listen on one address; the first keeps it"
                    );
                } else if wanted.len() >= MAX_LISTEN {
                    tracing::error!(%addr, "more than {MAX_LISTEN} listen addresses; not served");
                } else {
                    let nets = all.clone();
                    wanted.push((addr, Scope { nets, at }));
                }
            }
        }
        let epfd = &self.epoll;
        self.listeners.retain(|l| {
            let keep = wanted.iter().any(|(a, _)| *a == l.addr);
            if !keep {
                // Forward threads may hold the UDP socket a while longer:
                // take it out of the loop now, not when it closes.
                let _ = epoll::delete(epfd, &*l.udp);
                let _ = epoll::delete(epfd, &l.tcp);
                tracing::info!(addr = %l.addr, "closed");
            }
            keep
        });
        self.unbound.clear();
        for (addr, scope) in wanted {
            if let Some(l) = self.listeners.iter_mut().find(|l| l.addr == addr) {
                l.scope = scope;
            } else {
                self.listen(addr, scope, false);
            }
        }
        tracing::info!(
            networks = nets.len(),
            listening = self.listeners.len(),
            unbound = self.unbound.len(),
            "loaded {:?}",
            self.dir
        );
        !nets.is_empty()
    }

    /// Opens and watches `addr`'s sockets, or queues it for a retry (a
    /// retry's failure is not logged again: the log must not grow by a
    /// line every few seconds for as long as the address stays taken).
    fn listen(&mut self, addr: IpAddr, scope: Scope, retry: bool) {
        let (udp, tcp) = match bind(addr) {
            Ok(s) => s,
            Err(e) if retry => {
                tracing::debug!(%addr, "binding port {PORT} again: {e}");
                self.unbound.push((addr, scope));
                return;
            }
            Err(e) => {
                let every = REBIND_EVERY.as_secs();
                let network = &scope.net().id;
                tracing::error!(%addr, network, "binding port {PORT}: {e}; retrying every {every}s");
                self.unbound.push((addr, scope));
                return;
            }
        };
        let id = self.next_id;
        self.next_id += 1;
        let watched = epoll::add(
            &self.epoll,
            &udp,
            EventData::new_u64(id * 2),
            EventFlags::IN,
        )
        .and_then(|()| {
            epoll::add(
                &self.epoll,
                &tcp,
                EventData::new_u64(id * 2 + 1),
                EventFlags::IN,
            )
        });
        if let Err(e) = watched {
            tracing::error!(%addr, "watching the sockets: {e}");
            let _ = epoll::delete(&self.epoll, &udp);
            self.unbound.push((addr, scope));
            return;
        }
        tracing::info!(%addr, network = scope.net().id, "listening");
        self.listeners.push(Listener {
            id,
            addr,
            udp: Arc::new(udp),
            tcp,
            scope,
        });
    }

    /// The loop. Returns when asked to stop or when nothing is left to serve.
    fn serve(&mut self) -> Result<(), String> {
        let mut events = Vec::with_capacity(32);
        loop {
            events.clear();
            let timeout = (!self.unbound.is_empty()).then(|| rustix::event::Timespec {
                tv_sec: REBIND_EVERY.as_secs() as i64,
                tv_nsec: 0,
            });
            match epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut events),
                timeout.as_ref(),
            ) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(format!("waiting for events: {e}")),
            }
            if events.is_empty() {
                for (addr, scope) in std::mem::take(&mut self.unbound) {
                    self.listen(addr, scope, true);
                }
                continue;
            }
            for ev in events.iter() {
                match ev.data.u64() {
                    SIGNAL_TOKEN => {
                        if !self.on_signals() {
                            return Ok(());
                        }
                    }
                    t if t % 2 == 0 => self.on_udp(t / 2),
                    t => self.on_accept(t / 2),
                }
            }
        }
    }

    /// Handles pending signals; false when the server must stop.
    fn on_signals(&mut self) -> bool {
        let mut reload = false;
        loop {
            match self.signals.read() {
                Ok(Some(libc::SIGHUP)) => reload = true,
                Ok(Some(sig)) => {
                    tracing::info!(signal = sig, "stopping");
                    self.lock.unlink();
                    return false;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!("reading the signalfd: {e}");
                    break;
                }
            }
        }
        !reload || self.reload_or_leave()
    }

    /// A reload that may find nothing left to serve; then the server
    /// gives up its pid file and leaves, unless a config arrived while it
    /// did (see `control`'s rules). False when it must stop.
    fn reload_or_leave(&mut self) -> bool {
        if self.reload() {
            return true;
        }
        self.lock.unlink();
        if config_files(&self.dir).is_ok_and(|f| f.is_empty()) {
            tracing::info!("no network left; exiting");
            return false;
        }
        match PidLock::acquire(&self.dir) {
            Ok(lock) => {
                self.lock = lock;
                self.reload() || {
                    self.lock.unlink();
                    false
                }
            }
            Err(e) => {
                tracing::info!("{e}; exiting");
                false
            }
        }
    }

    fn listener(&self, id: u64) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.id == id)
    }

    fn on_udp(&mut self, id: u64) {
        let Some(l) = self.listener(id) else { return };
        let (udp, scope) = (l.udp.clone(), l.scope.clone());
        for _ in 0..UDP_BATCH {
            let (n, src) = match udp.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!("receiving: {e}");
                    return;
                }
            };
            let packet = &self.buf[..n];
            match respond(packet, src.ip(), &scope.nets, scope.at) {
                Reply::Local(reply) => {
                    let limit = parsed_limit(packet);
                    if let Some(b) = encode(&reply, limit) {
                        let _ = udp.send_to(&b, src);
                    }
                }
                Reply::Forward(query) => {
                    self.forward_udp(&udp, scope.net(), packet.to_vec(), *query, src)
                }
                Reply::Ignore => {}
            }
        }
    }

    fn forward_udp(
        &self,
        udp: &Arc<UdpSocket>,
        net: &Network,
        packet: Vec<u8>,
        query: Message,
        client: SocketAddr,
    ) {
        let limit = udp_limit(&query).min(MAX_UDP_REPLY);
        let Some(slot) = Slot::take(&self.forwards, MAX_FORWARDS) else {
            tracing::warn!("{MAX_FORWARDS} forwards in flight; SERVFAIL");
            if let Some(b) = encode(&error(&query, ResponseCode::ServFail), limit) {
                let _ = udp.send_to(&b, client);
            }
            return;
        };
        let udp = udp.clone();
        let upstreams = net.upstreams.clone();
        let spawned = std::thread::Builder::new()
            .name("forward".into())
            .stack_size(THREAD_STACK)
            .spawn(move || {
                let _slot = slot;
                let reply = forward(&packet, &query, &upstreams)
                    .and_then(|r| fit(r, limit))
                    .or_else(|| encode(&error(&query, ResponseCode::ServFail), limit));
                if let Some(b) = reply {
                    let _ = udp.send_to(&b, client);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("starting a forward thread: {e}");
        }
    }

    fn on_accept(&mut self, id: u64) {
        let Some(l) = self.listener(id) else { return };
        loop {
            let (stream, peer) = match l.tcp.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!(addr = %l.addr, "accepting: {e}");
                    return;
                }
            };
            let Some(slot) = Slot::take(&self.connections, MAX_CONNECTIONS) else {
                tracing::warn!(%peer, "{MAX_CONNECTIONS} TCP connections open; closed");
                continue;
            };
            let scope = l.scope.clone();
            let spawned = std::thread::Builder::new()
                .name("tcp".into())
                .stack_size(THREAD_STACK)
                .spawn(move || {
                    let _slot = slot;
                    serve_connection(stream, peer.ip(), &scope);
                });
            if let Err(e) = spawned {
                tracing::error!("starting a connection thread: {e}");
            }
        }
    }
}

/// The UDP size the sender of `packet` accepts (512 when it cannot be parsed).
fn parsed_limit(packet: &[u8]) -> usize {
    Message::from_vec(packet)
        .map(|m| udp_limit(&m))
        .unwrap_or(512)
        .min(MAX_UDP_REPLY)
}

/// Answers the queries of one TCP client, one at a time, until it
/// closes, idles, misbehaves or has asked its share.
fn serve_connection(mut s: TcpStream, client: IpAddr, scope: &Scope) {
    if s.set_nonblocking(false).is_err()
        || s.set_read_timeout(Some(TCP_IDLE)).is_err()
        || s.set_write_timeout(Some(TCP_IDLE)).is_err()
    {
        return;
    }
    for _ in 0..MAX_QUERIES_PER_CONNECTION {
        let Ok(packet) = read_framed(&mut s, MAX_TCP_QUERY) else {
            return;
        };
        let reply = match respond(&packet, client, &scope.nets, scope.at) {
            Reply::Local(reply) => encode(&reply, MAX_TCP_REPLY),
            Reply::Forward(query) => forward(&packet, &query, &scope.net().upstreams)
                .or_else(|| encode(&error(&query, ResponseCode::ServFail), MAX_TCP_REPLY)),
            Reply::Ignore => continue,
        };
        if let Some(b) = reply {
            if write_framed(&mut s, &b).is_err() {
                return;
            }
        }
    }
}

/// A UDP and a TCP socket on `addr`:53. `IP_FREEBIND` lets the bind
/// succeed before the bridge has the address (berthd writes the config
/// first); the sockets answer as soon as it has.
fn bind(addr: IpAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let sa = SocketAddr::new(addr, PORT);
    let flags = SocketFlags::CLOEXEC | SocketFlags::NONBLOCK;
    let opts = |fd: &OwnedFd| -> rustix::io::Result<()> {
        if addr.is_ipv4() {
            sockopt::set_ip_freebind(fd, true)
        } else {
            sockopt::set_ipv6_v6only(fd, true)?;
            sockopt::set_ipv6_freebind(fd, true)
        }
    };
    let udp = rustix::net::socket_with(family, SocketType::DGRAM, flags, None)?;
    opts(&udp)?;
    rustix::net::bind(&udp, &sa)?;
    let tcp = rustix::net::socket_with(family, SocketType::STREAM, flags, None)?;
    // A restarted server must not wait for its predecessor's TIME_WAITs.
    sockopt::set_socket_reuseaddr(&tcp, true)?;
    opts(&tcp)?;
    rustix::net::bind(&tcp, &sa)?;
    rustix::net::listen(&tcp, 128)?;
    Ok((UdpSocket::from(udp), TcpListener::from(tcp)))
}

/// Forwarding to ourselves would go round until the forward limit is hit
/// (a host resolv.conf naming a gateway, say): such upstreams go.
fn drop_self(upstreams: &mut Vec<SocketAddr>, ours: &[IpAddr]) {
    upstreams.retain(|u| !(u.port() == PORT && ours.contains(&u.ip())));
}

/// One of a bounded number of places (forwards, connections), given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(counter: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(counter.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_that_are_us_are_dropped() {
        let mut ups: Vec<SocketAddr> = [
            "10.0.0.1:53",
            "10.0.0.1:5353",
            "10.0.0.2:53",
            "[fd00::1]:53",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        drop_self(
            &mut ups,
            &["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()],
        );
        let want: Vec<SocketAddr> = vec![
            "10.0.0.1:5353".parse().unwrap(),
            "10.0.0.2:53".parse().unwrap(),
        ];
        assert_eq!(ups, want);
    }

    #[test]
    fn slots_are_bounded_and_given_back() {
        let c = Arc::new(AtomicUsize::new(0));
        let a = Slot::take(&c, 2).unwrap();
        let b = Slot::take(&c, 2).unwrap();
        assert!(Slot::take(&c, 2).is_none());
        drop(a);
        let _c2 = Slot::take(&c, 2).unwrap();
        drop(b);
        assert_eq!(c.load(Ordering::Acquire), 1);
    }
}
