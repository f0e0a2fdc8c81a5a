//! A small DNS client for the tests (hickory-proto's codec over std
//! sockets), and the processes that serve a `berth-dns` config directory.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use hickory_proto::op::{Edns, Query};
use hickory_proto::rr::{Name, RecordType};

pub use hickory_proto::op::{Message, ResponseCode};
pub use hickory_proto::rr::RecordType as Type;

const TIMEOUT: Duration = Duration::from_secs(8);

fn query_message(name: &str, t: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii(name).expect("a valid name"),
        t,
    ));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m
}

/// Asks `server`:53 over UDP from `from` (any port), without EDNS unless
/// `edns` gives a payload size. Checks that the reply carries the query's id.
pub fn udp(
    server: IpAddr,
    from: IpAddr,
    name: &str,
    t: RecordType,
    edns: Option<u16>,
) -> std::io::Result<Message> {
    udp_within(server, from, name, t, edns, TIMEOUT)
}

/// [`udp`] with a timeout of its own (to see that a server is gone
/// without waiting as long as for an answer).
pub fn udp_within(
    server: IpAddr,
    from: IpAddr,
    name: &str,
    t: RecordType,
    edns: Option<u16>,
    timeout: Duration,
) -> std::io::Result<Message> {
    let q = query_message(name, t, edns);
    let sock = UdpSocket::bind(SocketAddr::new(from, 0))?;
    sock.set_read_timeout(Some(timeout))?;
    sock.connect(SocketAddr::new(server, 53))?;
    sock.send(&q.to_vec().map_err(std::io::Error::other)?)?;
    let mut buf = vec![0u8; 65535];
    let n = sock.recv(&mut buf)?;
    let reply = Message::from_vec(&buf[..n]).map_err(std::io::Error::other)?;
    assert_eq!(
        reply.metadata.id, q.metadata.id,
        "the reply's id is the query's"
    );
    Ok(reply)
}

/// Asks `server`:53 over TCP from `from`.
pub fn tcp(server: IpAddr, from: IpAddr, name: &str, t: RecordType) -> std::io::Result<Message> {
    let q = query_message(name, t, None);
    let sock = rustix::net::socket(
        if server.is_ipv4() {
            rustix::net::AddressFamily::INET
        } else {
            rustix::net::AddressFamily::INET6
        },
        rustix::net::SocketType::STREAM,
        None,
    )?;
    rustix::net::bind(&sock, &SocketAddr::new(from, 0))?;
    rustix::net::connect(&sock, &SocketAddr::new(server, 53))?;
    let mut s = TcpStream::from(sock);
    s.set_read_timeout(Some(TIMEOUT))?;
    let bytes = q.to_vec().map_err(std::io::Error::other)?;
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    s.write_all(&framed)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf)?;
    let reply = Message::from_vec(&buf).map_err(std::io::Error::other)?;
    assert_eq!(
        reply.metadata.id, q.metadata.id,
        "the reply's id is the query's"
    );
    Ok(reply)
}

/// The answers' data as text (addresses, PTR names), in order.
pub fn data(m: &Message) -> Vec<String> {
    m.answers.iter().map(|r| r.data.to_string()).collect()
}

/// The pids of the processes whose command line mentions `dir`.
pub fn servers_of(dir: &Path) -> Vec<i32> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let alive = crate::shim::alive(pid);
        if alive && cmdline.windows(needle.len()).any(|w| w == needle) {
            pids.push(pid);
        }
    }
    pids
}
