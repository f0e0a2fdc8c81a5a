//! berth-dns as berthd drives it: config files written with the library,
//! `notify` starting or reloading the real `berth-dns` binary, queries
//! from real sockets on loopback addresses (each test has its own
//! 127.53.N.0/24, so the tests run in parallel), busybox's nslookup as a
//! stock client. Every test ends with no berth-dns of its own left.
//!
//! Needs `cargo build [--release] -p berth-dns` first (the same profile
//! as the test run).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_dns::{NetworkDns, Record};
use berth_integration::dns::{self, ResponseCode, Type};
use berth_integration::require_root;
use berth_integration::runtime::berth_binary;
use berth_integration::shim::{eventually, kill, wait_gone};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn record(names: &[&str], v4: &[&str], v6: &[&str]) -> Record {
    Record {
        names: names.iter().map(|s| s.to_string()).collect(),
        ipv4: v4.iter().map(|s| s.parse().unwrap()).collect(),
        ipv6: v6.iter().map(|s| s.parse().unwrap()).collect(),
        links: Default::default(),
    }
}

/// A network listening on 127.53.`n`.1, open to 127.53.`n`.0/24.
fn network(id: &str, n: u8, records: Vec<Record>) -> NetworkDns {
    NetworkDns {
        network_id: id.to_string(),
        network_name: format!("net{n}"),
        listen: vec![ip(&format!("127.53.{n}.1"))],
        subnets: vec![format!("127.53.{n}.0/24").parse().unwrap()],
        records,
        upstreams: vec![],
    }
}

/// One test's config directory, and the check that its server is gone.
struct Dir {
    tmp: tempfile::TempDir,
    binary: PathBuf,
}

impl Dir {
    fn new(name: &str) -> Dir {
        Dir {
            tmp: tempfile::Builder::new()
                .prefix(&format!("berth-it-dns-{name}-"))
                .tempdir()
                .unwrap(),
            binary: berth_binary("berth-dns"),
        }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn write(&self, net: &NetworkDns) {
        berth_dns::write_network(self.path(), net).unwrap();
        self.notify();
    }

    fn remove(&self, id: &str) {
        berth_dns::remove_network(self.path(), id).unwrap();
        self.notify();
    }

    fn notify(&self) {
        berth_dns::notify(self.path(), &self.binary).unwrap_or_else(|e| {
            panic!("notify: {e}\nlog:\n{}", self.log());
        });
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path().join(berth_dns::LOG_FILE)).unwrap_or_default()
    }

    /// The one live server of this dir. A server that lost the race for
    /// the lock reports "busy" to its launcher and then exits; notify may
    /// return while that process is still on its way out, so a second
    /// process gets a moment to go (one that stays is a second server).
    fn server(&self) -> i32 {
        let pids = eventually("a losing server to leave", || {
            let pids = dns::servers_of(self.path());
            (pids.len() <= 1).then_some(pids)
        });
        assert_eq!(pids.len(), 1, "one server, not {pids:?}");
        let file = std::fs::read_to_string(self.path().join(berth_dns::PID_FILE)).unwrap();
        assert_eq!(
            file.trim(),
            pids[0].to_string(),
            "the pid file names the server"
        );
        pids[0]
    }

    /// Asserts that no process of this dir is left (and kills any that is).
    fn finish(self) {
        let left = dns::servers_of(self.path());
        for &pid in &left {
            kill(pid, SIGKILL);
        }
        assert!(
            left.is_empty(),
            "berth-dns processes left: {left:?}\nlog:\n{}",
            self.log()
        );
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // A failed test must not leave its server running.
        for pid in dns::servers_of(self.path()) {
            kill(pid, SIGKILL);
        }
    }
}

/// How long a query waits to see that nothing serves an address.
const PROBE: Duration = Duration::from_millis(500);
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

fn a(server: &str, from: &str, name: &str) -> dns::Message {
    dns::udp(ip(server), ip(from), name, Type::A, None).unwrap()
}

#[test]
fn names_aliases_reverse_and_refusal() {
    if !require_root() {
        return;
    }
    let d = Dir::new("names");
    let mut net = network(
        "names1",
        1,
        vec![
            record(&["web", "0123456789ab"], &["10.53.1.2"], &["fd53::2"]),
            record(&["api", "svc"], &["10.53.1.3"], &[]),
            record(&["worker", "svc"], &["10.53.1.4"], &[]),
        ],
    );
    // busybox's nslookup asks from 127.0.0.1 (the route's source).
    net.subnets.push("127.0.0.1/32".parse().unwrap());
    d.write(&net);
    let pid = d.server();
    let (srv, me) = ("127.53.1.1", "127.53.1.100");

    for name in ["web", "WEB.", "web.net1", "Web.NET1.", "0123456789ab"] {
        let m = a(srv, me, name);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        assert_eq!(dns::data(&m), ["10.53.1.2"], "{name}");
        assert_eq!(m.answers[0].ttl, 600);
    }
    let m = dns::udp(ip(srv), ip(me), "web", Type::AAAA, Some(1232)).unwrap();
    assert_eq!(dns::data(&m), ["fd53::2"]);
    // A known name without the type: NOERROR, nothing.
    let m = dns::udp(ip(srv), ip(me), "api", Type::AAAA, None).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    // A shared alias: both containers, the first in turn.
    let mut firsts = Vec::new();
    for _ in 0..4 {
        let got = dns::data(&a(srv, me, "svc"));
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, ["10.53.1.3", "10.53.1.4"]);
        firsts.push(got[0].clone());
    }
    assert_ne!(firsts[0], firsts[1], "round robin: {firsts:?}");
    assert_eq!(firsts[0], firsts[2], "round robin: {firsts:?}");
    // Reverse.
    let m = dns::udp(ip(srv), ip(me), "4.1.53.10.in-addr.arpa.", Type::PTR, None).unwrap();
    assert_eq!(dns::data(&m), ["worker.net1."]);
    // TCP answers the same.
    let m = dns::tcp(ip(srv), ip(me), "web.", Type::A).unwrap();
    assert_eq!(dns::data(&m), ["10.53.1.2"]);
    // A client outside the network's subnets: REFUSED, over both transports.
    let m = a(srv, "127.54.1.100", "web");
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.answers.is_empty());
    let m = dns::tcp(ip(srv), ip("127.54.1.100"), "web", Type::A).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // A stock client.
    let out = Command::new("busybox")
        .args(["nslookup", "api", srv])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("10.53.1.3"), "busybox nslookup: {text}");
    // Garbage does not kill it.
    let s = std::net::UdpSocket::bind("127.53.1.100:0").unwrap();
    for junk in [&b""[..], b"\x00", &[0xffu8; 600][..], &[0u8; 12][..]] {
        s.send_to(junk, "127.53.1.1:53").unwrap();
    }
    assert_eq!(dns::data(&a(srv, me, "web")), ["10.53.1.2"]);

    // Removing the last network ends the server and its pid file.
    d.remove("names1");
    assert!(
        wait_gone(pid, Duration::from_secs(5)),
        "the server exits with no network left"
    );
    assert!(!d.path().join(berth_dns::PID_FILE).exists());
    d.finish();
}

#[test]
fn forwarding_to_upstreams() {
    if !require_root() {
        return;
    }
    // The "upstream": another berth-dns with names of its own. Our
    // forwarder asks it from 127.0.0.1 (loopback's source address).
    let up = Dir::new("upstream");
    let mut upnet = network(
        "up",
        3,
        vec![record(&["outside.example"], &["10.53.3.9"], &[])],
    );
    upnet.listen = vec![ip("127.53.3.2")];
    upnet.subnets = vec!["127.0.0.1/32".parse().unwrap()];
    // Enough addresses that a UDP answer without EDNS is truncated.
    for i in 0..100u8 {
        upnet.records.push(record(
            &[&format!("c{i}"), "big.example"],
            &[&format!("10.53.4.{i}")],
            &[],
        ));
    }
    up.write(&upnet);

    let d = Dir::new("forward");
    let mut net = network("fwd", 3, vec![record(&["local"], &["10.53.3.2"], &[])]);
    // The first upstream does not exist: the second must answer.
    net.upstreams = vec![
        "127.53.3.9:53".parse().unwrap(),
        "127.53.3.2:53".parse().unwrap(),
    ];
    d.write(&net);
    let (srv, me) = ("127.53.3.1", "127.53.3.100");

    assert_eq!(dns::data(&a(srv, me, "local")), ["10.53.3.2"]);
    let m = a(srv, me, "outside.example");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(dns::data(&m), ["10.53.3.9"]);
    let m = dns::tcp(ip(srv), ip(me), "outside.example", Type::A).unwrap();
    assert_eq!(dns::data(&m), ["10.53.3.9"]);
    // The upstream's error is relayed.
    let m = a(srv, me, "nowhere.example");
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    // Too large for 512 bytes: the client is told to use TCP, and over
    // TCP gets all of it (the forwarder itself fell back to TCP after the
    // upstream's truncated UDP answer).
    let m = a(srv, me, "big.example");
    assert!(m.metadata.truncation, "truncated over UDP");
    let m = dns::tcp(ip(srv), ip(me), "big.example", Type::A).unwrap();
    assert_eq!(m.answers.len(), 100);
    // With EDNS the whole answer fits in one datagram.
    let m = dns::udp(ip(srv), ip(me), "big.example", Type::A, Some(4096)).unwrap();
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 100);

    // No upstream answers at all: SERVFAIL.
    net.upstreams = vec!["127.53.3.9:53".parse().unwrap()];
    d.write(&net);
    let m = a(srv, me, "outside.example");
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);

    for (dir, id) in [(&d, "fwd"), (&up, "up")] {
        let pid = dir.server();
        dir.remove(id);
        assert!(wait_gone(pid, Duration::from_secs(5)));
    }
    d.finish();
    up.finish();
}

#[test]
fn reloads_add_and_remove_names_and_addresses() {
    if !require_root() {
        return;
    }
    let d = Dir::new("reload");
    let (me5, me6) = ("127.53.5.100", "127.53.6.100");
    let mut n5 = network("n5", 5, vec![record(&["first"], &["10.53.5.2"], &[])]);
    d.write(&n5);
    let pid = d.server();
    assert_eq!(dns::data(&a("127.53.5.1", me5, "first")), ["10.53.5.2"]);
    // Not a name yet: forwarded, and with no upstream, SERVFAIL.
    let m = a("127.53.5.1", me5, "second");
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);

    n5.records.push(record(&["second"], &["10.53.5.3"], &[]));
    n5.records.remove(0);
    d.write(&n5);
    eventually("the reload", || {
        (dns::data(&a("127.53.5.1", me5, "second")) == ["10.53.5.3"]).then_some(())
    });
    let m = a("127.53.5.1", me5, "first");
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(d.server(), pid, "a reload, not a new server");

    // A second network on another address; the first one's names are
    // not answered there, and the first's clients are refused there.
    d.write(&network(
        "n6",
        6,
        vec![record(&["other"], &["10.53.6.2"], &[])],
    ));
    eventually("the second network", || {
        dns::udp(ip("127.53.6.1"), ip(me6), "other", Type::A, None)
            .ok()
            .filter(|m| dns::data(m) == ["10.53.6.2"])
    });
    let m = a("127.53.6.1", me5, "other");
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // A container on both networks (one short id in both records) sees
    // the second's names through the first's server; others on the first
    // do not.
    let multi = "127.53.5.50";
    n5.records
        .push(record(&["multi", "abcdefabcdef"], &[multi], &[]));
    berth_dns::write_network(d.path(), &n5).unwrap();
    d.write(&network(
        "n6",
        6,
        vec![
            record(&["other"], &["10.53.6.2"], &[]),
            record(&["multi", "abcdefabcdef"], &["127.53.6.50"], &[]),
        ],
    ));
    eventually("the shared container's view", || {
        (dns::data(&a("127.53.5.1", multi, "other")) == ["10.53.6.2"]).then_some(())
    });
    let m = a("127.53.5.1", me5, "other");
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::ServFail,
        "not on n6: forwarded"
    );
    // A notify with nothing new starts nothing.
    d.notify();
    d.notify();
    assert_eq!(d.server(), pid);

    // Removing the first network closes its address.
    d.remove("n5");
    eventually("127.53.5.1 to close", || {
        // A query caught in the closing socket's queue gets no answer at all.
        dns::udp_within(ip("127.53.5.1"), ip(me5), "second", Type::A, None, PROBE)
            .is_err()
            .then_some(())
    });
    assert_eq!(dns::data(&a("127.53.6.1", me6, "other")), ["10.53.6.2"]);
    assert_eq!(d.server(), pid);

    d.remove("n6");
    assert!(
        wait_gone(pid, Duration::from_secs(5)),
        "no network left: the server exits"
    );
    assert!(dns::servers_of(d.path()).is_empty());
    // And nothing starts for an empty directory.
    d.notify();
    assert!(dns::servers_of(d.path()).is_empty());
    d.finish();
}

#[test]
fn killed_server_comes_back_once() {
    if !require_root() {
        return;
    }
    let d = Dir::new("kill");
    let me = "127.53.7.100";
    d.write(&network(
        "n7",
        7,
        vec![record(&["svc"], &["10.53.7.2"], &[])],
    ));
    let pid = d.server();
    // The server left the caller's session and is not its child.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    assert_eq!(fields[3], pid.to_string(), "its own session");
    assert_ne!(fields[1], std::process::id().to_string(), "reparented away");

    kill(pid, SIGKILL);
    assert!(wait_gone(pid, Duration::from_secs(5)));
    assert!(dns::udp_within(ip("127.53.7.1"), ip(me), "svc", Type::A, None, PROBE).is_err());
    // Several notifies at once, as racing berthd threads would: one server.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let dir = d.path().to_path_buf();
            let bin = d.binary.clone();
            std::thread::spawn(move || berth_dns::notify(&dir, &bin))
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    let again = d.server();
    assert_ne!(again, pid);
    assert_eq!(dns::data(&a("127.53.7.1", me, "svc")), ["10.53.7.2"]);

    // SIGTERM ends it and its pid file.
    kill(again, SIGTERM);
    assert!(wait_gone(again, Duration::from_secs(5)));
    assert!(!d.path().join(berth_dns::PID_FILE).exists());
    berth_dns::remove_network(d.path(), "n7").unwrap();
    d.finish();
}
