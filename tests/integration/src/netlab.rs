//! A network lab made of real kernel parts for firewall tests: bridges on
//! the host, "container" network namespaces on them through veths, and an
//! "outside" namespace reached through a second veth to the host (it plays
//! the internet: no traffic leaves this machine). Servers and clients run
//! on threads that have entered a namespace, and say who they saw.
//!
//! Names and addresses are the lab's own: interfaces start with
//! `bf<pid><n>` (15 bytes at most), namespaces with `berthfw-`, and
//! subnets are /24s of 198.18.0.0/15 (RFC 2544's benchmark range, which no
//! real network or other test uses), picked per process and per lab, so
//! labs of parallel tests and of parallel test runs never meet.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a client waits for an answer that should come.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

static LABS: AtomicU32 = AtomicU32::new(0);

/// One test's topology; [`Lab::finish`] (or drop) takes it all down.
pub struct Lab {
    /// The prefix of every interface name of this lab.
    pub tag: String,
    slot: u32,
    subnets: u32,
    links: Vec<String>,
    netns: Vec<String>,
    servers: Vec<Server>,
}

/// A network namespace of the lab and its address.
#[derive(Debug, Clone)]
pub struct Netns {
    pub name: String,
    pub ip: Ipv4Addr,
}

/// A bridge on the host.
#[derive(Debug, Clone)]
pub struct Bridge {
    pub name: String,
    /// The bridge's own address (the containers' gateway).
    pub gateway: Ipv4Addr,
    /// Its /24.
    pub subnet: String,
}

/// The outside world: a namespace and the host's address on its link.
#[derive(Debug, Clone)]
pub struct Outside {
    pub ns: Netns,
    /// The host's end of the link: a local, non-loopback host address.
    pub host_ip: Ipv4Addr,
}

impl Lab {
    pub fn new() -> Lab {
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        Lab {
            tag: format!("bf{:x}{n}", pid % 0x10000),
            // 64 slots of 8 /24s fill 198.18.0.0/15.
            slot: ((pid % 4) * 16 + n % 16) % 64,
            subnets: 0,
            links: Vec::new(),
            netns: Vec::new(),
            servers: Vec::new(),
        }
    }

    /// A host port for this lab (distinct across labs and runs like the subnets).
    pub fn port(&self, k: u16) -> u16 {
        30000 + self.slot as u16 * 32 + k
    }

    /// The next /24 of the lab: `198.(18|19).X` (8 per lab).
    fn next_subnet(&mut self) -> [u8; 3] {
        assert!(self.subnets < 8, "a lab has 8 subnets");
        let n = self.slot * 8 + self.subnets;
        self.subnets += 1;
        [198, 18 + (n / 256) as u8, (n % 256) as u8]
    }

    /// A bridge `<tag>b<k>` with .1 of a fresh /24, up, with route_localnet
    /// on (as berth's bridge set-up does) so loopback DNAT can use it.
    pub fn bridge(&mut self, k: u32) -> Bridge {
        let [a, b, c] = self.next_subnet();
        let name = format!("{}b{k}", self.tag);
        ip(&["link", "add", &name, "type", "bridge"]);
        self.links.push(name.clone());
        ip(&["addr", "add", &format!("{a}.{b}.{c}.1/24"), "dev", &name]);
        ip(&["link", "set", &name, "up"]);
        sysctl(&format!("net/ipv4/conf/{name}/route_localnet"), "1");
        Bridge {
            name,
            gateway: Ipv4Addr::new(a, b, c, 1),
            subnet: format!("{a}.{b}.{c}.0/24"),
        }
    }

    /// A "container": namespace `berthfw-<tag>-<name>` with eth0 on `bridge`
    /// at `.host` of its subnet, default route through the bridge. Its port
    /// is in hairpin mode, as berth's veths are, so it can reach itself
    /// through a published port.
    pub fn container(&mut self, name: &str, bridge: &Bridge, host: u8) -> Netns {
        let ns = self.netns(name);
        let veth = format!("{}{name}", self.tag);
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        self.links.push(veth.clone());
        ip(&["link", "set", &veth, "master", &bridge.name, "up"]);
        ip(&[
            "link",
            "set",
            &veth,
            "type",
            "bridge_slave",
            "hairpin",
            "on",
        ]);
        let [a, b, c, _] = bridge.gateway.octets();
        let addr = Ipv4Addr::new(a, b, c, host);
        ip_in(&ns, &["addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
        ip_in(&ns, &["link", "set", "eth0", "up"]);
        ip_in(&ns, &["link", "set", "lo", "up"]);
        ip_in(
            &ns,
            &[
                "route",
                "add",
                "default",
                "via",
                &bridge.gateway.to_string(),
            ],
        );
        Netns { name: ns, ip: addr }
    }

    /// The outside: namespace `berthfw-<tag>-out` linked to the host by
    /// `<tag>o`, on a /24 of its own, with no route to anything else (it can
    /// only answer the host's own address: traffic from a container reaches
    /// it only when masqueraded).
    pub fn outside(&mut self) -> Outside {
        let ns = self.netns("out");
        let [a, b, c] = self.next_subnet();
        let veth = format!("{}o", self.tag);
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        self.links.push(veth.clone());
        ip(&["addr", "add", &format!("{a}.{b}.{c}.1/24"), "dev", &veth]);
        ip(&["link", "set", &veth, "up"]);
        ip_in(
            &ns,
            &["addr", "add", &format!("{a}.{b}.{c}.2/24"), "dev", "eth0"],
        );
        ip_in(&ns, &["link", "set", "eth0", "up"]);
        ip_in(&ns, &["link", "set", "lo", "up"]);
        Outside {
            ns: Netns {
                name: ns,
                ip: Ipv4Addr::new(a, b, c, 2),
            },
            host_ip: Ipv4Addr::new(a, b, c, 1),
        }
    }

    fn netns(&mut self, name: &str) -> String {
        let ns = format!("berthfw-{}-{name}", self.tag);
        ip(&["netns", "add", &ns]);
        self.netns.push(ns.clone());
        ns
    }

    /// A TCP server on `port` in `ns` (the host's when `None`) that answers
    /// every connection with "`name` `peer-address`" and closes it.
    pub fn tcp_server(&mut self, ns: Option<&Netns>, port: u16, name: &str) {
        let server = Server::start(ns, port, name, Proto::Tcp);
        self.servers.push(server);
    }

    /// The same over UDP: one answer datagram per datagram.
    pub fn udp_server(&mut self, ns: Option<&Netns>, port: u16, name: &str) {
        let server = Server::start(ns, port, name, Proto::Udp);
        self.servers.push(server);
    }

    /// What is left of the lab on the host, as sentences.
    pub fn leaks(&self) -> Vec<String> {
        let mut out = Vec::new();
        let links = run("ip", &["-o", "link", "show"]);
        for line in links.lines() {
            let name = line.split(": ").nth(1).unwrap_or("");
            let name = name.split('@').next().unwrap_or("");
            if name.starts_with(&self.tag) {
                out.push(format!("link {name} remains"));
            }
        }
        let prefix = format!("berthfw-{}-", self.tag);
        for ns in run("ip", &["netns", "list"]).lines() {
            if ns.starts_with(&prefix) {
                out.push(format!("netns {ns} remains"));
            }
        }
        out
    }

    /// Stops the servers, deletes the links (a veth's host end takes its
    /// peer with it at once; a netns alone would go only when the kernel
    /// gets to it) and the namespaces, then checks nothing is left.
    pub fn finish(mut self) {
        self.teardown();
        let leaks = self.leaks();
        assert!(leaks.is_empty(), "the lab leaked: {leaks:?}");
    }

    fn teardown(&mut self) {
        for s in self.servers.drain(..) {
            s.stop();
        }
        for l in self.links.drain(..).rev() {
            let _ = Command::new("ip").args(["link", "del", &l]).status();
        }
        for ns in self.netns.drain(..) {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.teardown();
    }
}

#[derive(Clone, Copy)]
enum Proto {
    Tcp,
    Udp,
}

struct Server {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Server {
    /// Returns once the socket is bound, so a client may connect at once.
    fn start(ns: Option<&Netns>, port: u16, name: &str, proto: Proto) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, bound) = mpsc::channel();
        let ns = ns.map(|n| n.name.clone());
        let (name, flag) = (name.to_string(), stop.clone());
        let thread = std::thread::spawn(move || {
            enter(ns.as_deref());
            let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
            match proto {
                Proto::Tcp => {
                    let l = TcpListener::bind(any).expect("bind the test's tcp server");
                    l.set_nonblocking(true).unwrap();
                    ready.send(()).unwrap();
                    while !flag.load(Ordering::Relaxed) {
                        match l.accept() {
                            Ok((mut s, peer)) => {
                                let _ = writeln!(s, "{name} {}", peer.ip());
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(10)),
                        }
                    }
                }
                Proto::Udp => {
                    let s = UdpSocket::bind(any).expect("bind the test's udp server");
                    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                    ready.send(()).unwrap();
                    let mut buf = [0u8; 512];
                    while !flag.load(Ordering::Relaxed) {
                        if let Ok((_, peer)) = s.recv_from(&mut buf) {
                            let _ = s.send_to(format!("{name} {}\n", peer.ip()).as_bytes(), peer);
                        }
                    }
                }
            }
        });
        bound.recv().expect("the test server failed to start");
        Server { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Moves the calling thread into `/run/netns/<ns>` (stays put for `None`).
fn enter(ns: Option<&str>) {
    if let Some(ns) = ns {
        let f = File::open(format!("/run/netns/{ns}")).expect("open the netns file");
        rustix::thread::move_into_link_name_space(
            f.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns into the test's netns");
    }
}

/// Runs `f` on a thread in `ns` (the host's namespace when `None`).
pub fn in_netns<T: Send + 'static>(
    ns: Option<&Netns>,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let ns = ns.map(|n| n.name.clone());
    std::thread::spawn(move || {
        enter(ns.as_deref());
        f()
    })
    .join()
    .expect("the netns thread panicked")
}

/// A TCP client from `ns`: the server's answer, trimmed, or why none came
/// within `timeout`.
pub fn tcp_ask(ns: Option<&Netns>, to: SocketAddr, timeout: Duration) -> Result<String, String> {
    in_netns(ns, move || {
        let mut s =
            TcpStream::connect_timeout(&to, timeout).map_err(|e| format!("connect {to}: {e}"))?;
        s.set_read_timeout(Some(timeout)).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text)
            .map_err(|e| format!("read from {to}: {e}"))?;
        Ok(text.trim().to_string())
    })
}

/// A UDP client from `ns`: one datagram out (three tries), the answer back.
pub fn udp_ask(ns: Option<&Netns>, to: SocketAddr, timeout: Duration) -> Result<String, String> {
    in_netns(ns, move || {
        let local: IpAddr = if to.ip().is_loopback() {
            Ipv4Addr::LOCALHOST.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        let s = UdpSocket::bind((local, 0)).unwrap();
        s.set_read_timeout(Some(timeout / 3)).unwrap();
        let mut buf = [0u8; 512];
        let mut last = String::new();
        for _ in 0..3 {
            s.send_to(b"hi", to)
                .map_err(|e| format!("send to {to}: {e}"))?;
            match s.recv_from(&mut buf) {
                Ok((n, _)) => return Ok(String::from_utf8_lossy(&buf[..n]).trim().to_string()),
                Err(e) => last = format!("no answer from {to}: {e}"),
            }
        }
        Err(last)
    })
}

/// `tcp_ask` with the timeout for an answer that should come.
pub fn tcp_get(ns: Option<&Netns>, to: impl Into<SocketAddr>) -> Result<String, String> {
    tcp_ask(ns, to.into(), ANSWER_TIMEOUT)
}

/// `udp_ask` with the timeout for an answer that should come.
pub fn udp_get(ns: Option<&Netns>, to: impl Into<SocketAddr>) -> Result<String, String> {
    udp_ask(ns, to.into(), ANSWER_TIMEOUT)
}

/// True when a TCP connection to `to` from `ns` gets no answer within a
/// second (dropped or refused).
pub fn tcp_blocked(ns: Option<&Netns>, to: impl Into<SocketAddr>) -> bool {
    tcp_ask(ns, to.into(), Duration::from_secs(1)).is_err()
}

/// Writes a sysctl (`path` under /proc/sys).
pub fn sysctl(path: &str, value: &str) {
    std::fs::write(format!("/proc/sys/{path}"), value)
        .unwrap_or_else(|e| panic!("sysctl {path}={value}: {e}"));
}

fn ip(args: &[&str]) {
    run("ip", args);
}

fn ip_in(ns: &str, args: &[&str]) {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    run("ip", &all);
}

/// Runs a command that must succeed; its stdout.
fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
