//! Asking the upstream resolvers, blocking (each forward runs on a thread
//! of its own, bounded by the server).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;

use crate::answer::answers;

/// How long one upstream gets before the next is asked.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a forward may take in all (resolvers give up after 5 s).
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest DNS message.
const MAX_MESSAGE: usize = 65535;

/// Relays `packet` (the client's query, parsed as `query`) to the
/// upstreams in turn until one answers; returns the answer with the
/// client's id. UDP first, TCP when the answer is truncated. The query
/// leaves with a fresh random id from a fresh socket, so an off-path
/// guess must match both; replies that do not answer the question are
/// dropped.
pub fn forward(packet: &[u8], query: &Message, upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let deadline = Instant::now() + TOTAL_TIMEOUT;
    let mut ours = query.clone();
    ours.metadata.id = Message::query().metadata.id; // hickory's random id
    let mut out = packet.to_vec();
    out[..2].copy_from_slice(&ours.metadata.id.to_be_bytes());
    for up in upstreams {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let limit = ATTEMPT_TIMEOUT.min(deadline - now);
        let reply = match udp(&out, &ours, *up, limit) {
            Ok(r) if r.len() > 2 && r[2] & 0x02 != 0 => {
                // Truncated: the whole answer comes over TCP.
                tcp(
                    &out,
                    &ours,
                    *up,
                    ATTEMPT_TIMEOUT.min(deadline - Instant::now()),
                )
            }
            r => r,
        };
        match reply {
            Ok(mut r) => {
                r[..2].copy_from_slice(&query.metadata.id.to_be_bytes());
                return Some(r);
            }
            Err(e) => tracing::debug!(upstream = %up, error = %e, "upstream did not answer"),
        }
    }
    None
}

fn udp(
    packet: &[u8],
    query: &Message,
    up: SocketAddr,
    limit: Duration,
) -> std::io::Result<Vec<u8>> {
    let deadline = Instant::now() + limit;
    let local: SocketAddr = if up.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local)?;
    sock.connect(up)?;
    sock.send(packet)?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        sock.set_read_timeout(Some(left))?;
        let n = sock.recv(&mut buf)?;
        if answers(query, &buf[..n]) {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

fn tcp(
    packet: &[u8],
    query: &Message,
    up: SocketAddr,
    limit: Duration,
) -> std::io::Result<Vec<u8>> {
    if limit.is_zero() {
        return Err(std::io::ErrorKind::TimedOut.into());
    }
    let deadline = Instant::now() + limit;
    let mut s = TcpStream::connect_timeout(&up, limit)?;
    let left = || {
        let d = deadline.saturating_duration_since(Instant::now());
        Some(d.max(Duration::from_millis(1)))
    };
    s.set_write_timeout(left())?;
    write_framed(&mut s, packet)?;
    s.set_read_timeout(left())?;
    let reply = read_framed(&mut s, MAX_MESSAGE)?;
    if answers(query, &reply) {
        Ok(reply)
    } else {
        Err(std::io::Error::other("the reply does not answer the query"))
    }
}

/// One length-prefixed DNS message from a TCP stream, at most `max` bytes
/// (a clean end of stream is `UnexpectedEof`).
pub fn read_framed(s: &mut impl Read, max: usize) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let len = usize::from(u16::from_be_bytes(len));
    if len == 0 || len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a DNS message of {len} bytes (at most {max})"),
        ));
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// Writes one length-prefixed DNS message.
pub fn write_framed(s: &mut impl Write, msg: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| std::io::Error::other("message too long"))?;
    let mut framed = Vec::with_capacity(msg.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(msg);
    s.write_all(&framed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_bounded() {
        let mut out = Vec::new();
        write_framed(&mut out, b"hello").unwrap();
        assert_eq!(out, b"\x00\x05hello");
        assert_eq!(read_framed(&mut &out[..], 16).unwrap(), b"hello");
        let err = read_framed(&mut &out[..], 4).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(read_framed(&mut &b"\x00\x00"[..], 16).is_err());
        assert!(read_framed(&mut &b"\x00\x09abc"[..], 16).is_err());
    }

    #[test]
    fn no_upstream_no_answer() {
        let mut q = Message::query();
        q.add_query(hickory_proto::op::Query::query(
            hickory_proto::rr::Name::from_ascii("example.com.").unwrap(),
            hickory_proto::rr::RecordType::A,
        ));
        let bytes = q.to_vec().unwrap();
        assert!(forward(&bytes, &q, &[]).is_none());
    }
}
