//! A small synchronous rtnetlink client over netlink-sys and
//! netlink-packet-route: requests with acks (one at a time or several in
//! one datagram) and dumps. A socket talks to the network namespace it was
//! created in, so one `Netlink` serves one namespace.

use std::io;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};

/// Enough for any reply datagram: the kernel caps a dump's datagram at 32 KiB.
const RECV_BUF: usize = 64 * 1024;
/// `NLM_F_CAPPED`: the error reply carries only the request's header.
const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS`: extended-ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: the kernel's error string.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// How often an interrupted dump (the table changed meanwhile) is retried.
const DUMP_RETRIES: usize = 5;

/// A failed request: the errno and, when the kernel said more, its words.
#[derive(Debug)]
pub(crate) struct NlError {
    pub errno: io::Error,
    pub message: Option<String>,
}

impl NlError {
    pub fn raw(&self) -> Option<i32> {
        self.errno.raw_os_error()
    }

    pub fn is(&self, errno: i32) -> bool {
        self.raw() == Some(errno)
    }
}

impl From<io::Error> for NlError {
    fn from(errno: io::Error) -> Self {
        NlError {
            errno,
            message: None,
        }
    }
}

pub(crate) struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        let socket = Socket::new(NETLINK_ROUTE)?;
        // Best effort: older kernels lack them and only lose error detail.
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        Ok(Netlink {
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// Sends one request and waits for its ack.
    pub fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<(), NlError> {
        self.batch(vec![(msg, flags)]).map_err(|(_, e)| e)
    }

    /// Sends every request in one datagram and waits for all the acks; the
    /// kernel runs them in order. On failure, the index of the first
    /// request that failed and its error.
    pub fn batch(&mut self, msgs: Vec<(RouteNetlinkMessage, u16)>) -> Result<(), (usize, NlError)> {
        let first = self.seq.wrapping_add(1);
        let mut out = Vec::new();
        for (msg, flags) in msgs {
            let seq = self.next_seq();
            append(&mut out, msg, NLM_F_REQUEST | NLM_F_ACK | flags, seq);
        }
        let count = self.seq.wrapping_sub(first).wrapping_add(1) as usize;
        self.socket.send(&out, 0).map_err(|e| (0, e.into()))?;
        let mut acked = 0;
        let mut failed: Option<(usize, NlError)> = None;
        while acked < count {
            let replies = self.recv().map_err(|e| (acked, e.into()))?;
            for (header, payload) in replies {
                let index = header.sequence_number.wrapping_sub(first) as usize;
                if index >= count {
                    continue; // a stale reply to an earlier, abandoned request
                }
                if let NetlinkPayload::Error(err) = payload {
                    acked += 1;
                    if err.code.is_some() && failed.as_ref().is_none_or(|(i, _)| index < *i) {
                        failed = Some((index, error_of(&header, &err)));
                    }
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// A dump request: every message of the kind asked for.
    pub fn dump(&mut self, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>, NlError> {
        for _ in 0..DUMP_RETRIES {
            if let Some(all) = self.dump_once(msg.clone())? {
                return Ok(all);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::Interrupted,
            "the kernel's table kept changing during the dump",
        )
        .into())
    }

    /// One `GET` of a single object (a link by name, for instance).
    pub fn get(&mut self, msg: RouteNetlinkMessage) -> Result<RouteNetlinkMessage, NlError> {
        let seq = self.next_seq();
        let mut out = Vec::new();
        append(&mut out, msg, NLM_F_REQUEST, seq);
        self.socket.send(&out, 0)?;
        loop {
            for (header, payload) in self.recv()? {
                if header.sequence_number != seq {
                    continue;
                }
                match payload {
                    NetlinkPayload::InnerMessage(m) => return Ok(m),
                    NetlinkPayload::Error(err) if err.code.is_some() => {
                        return Err(error_of(&header, &err))
                    }
                    _ => {}
                }
            }
        }
    }

    /// `None` when the kernel flagged the dump as interrupted.
    fn dump_once(
        &mut self,
        msg: RouteNetlinkMessage,
    ) -> Result<Option<Vec<RouteNetlinkMessage>>, NlError> {
        let seq = self.next_seq();
        let mut out = Vec::new();
        append(&mut out, msg, NLM_F_REQUEST | NLM_F_DUMP, seq);
        self.socket.send(&out, 0)?;
        let mut all = Vec::new();
        let mut interrupted = false;
        loop {
            for (header, payload) in self.recv()? {
                if header.sequence_number != seq {
                    continue;
                }
                interrupted |= header.flags & NLM_F_DUMP_INTR != 0;
                match payload {
                    NetlinkPayload::InnerMessage(m) => all.push(m),
                    NetlinkPayload::Done(_) => return Ok((!interrupted).then_some(all)),
                    NetlinkPayload::Error(err) if err.code.is_some() => {
                        return Err(error_of(&header, &err))
                    }
                    _ => {}
                }
            }
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// One datagram, split into its messages.
    fn recv(&mut self) -> io::Result<Vec<(NetlinkHeader, NetlinkPayload<RouteNetlinkMessage>)>> {
        self.buf.clear();
        let n = loop {
            match self.socket.recv(&mut self.buf, libc::MSG_TRUNC) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n > self.buf.len() {
            return Err(io::Error::other(format!(
                "a netlink reply of {n} bytes did not fit the {RECV_BUF}-byte buffer"
            )));
        }
        let mut out = Vec::new();
        let mut at = 0;
        while at < n {
            let len = NetlinkBuffer::new_checked(&self.buf[at..n])
                .map_err(|e| invalid(format!("a malformed netlink header: {e}")))?
                .length() as usize;
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[at..at + len])
                .map_err(|e| {
                invalid(format!("an rtnetlink message berth cannot parse: {e}"))
            })?;
            let (header, payload) = msg.into_parts();
            out.push((header, payload));
            at += (len + 3) & !3;
        }
        Ok(out)
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Serialises one request onto the end of `out`, 4-byte aligned.
fn append(out: &mut Vec<u8>, msg: RouteNetlinkMessage, flags: u16, seq: u32) {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    packet.finalize();
    let start = out.len();
    out.resize(start + packet.buffer_len(), 0);
    packet.serialize(&mut out[start..]);
    out.resize((out.len() + 3) & !3, 0);
}

fn error_of(header: &NetlinkHeader, err: &netlink_packet_core::ErrorMessage) -> NlError {
    NlError {
        errno: err.to_io(),
        message: ext_ack_message(header.flags, &err.header),
    }
}

/// The kernel's error string from an error reply's extended-ack attributes.
/// `rest` is what follows the errno: the request (or only its header, when
/// capped), then the attributes.
fn ext_ack_message(flags: u16, rest: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || rest.len() < 4 {
        return None;
    }
    let request_len = if flags & NLM_F_CAPPED != 0 {
        16
    } else {
        u32::from_ne_bytes(rest[..4].try_into().ok()?) as usize
    };
    let mut at = (request_len + 3) & !3;
    while at + 4 <= rest.len() {
        let len = u16::from_ne_bytes([rest[at], rest[at + 1]]) as usize;
        let kind = u16::from_ne_bytes([rest[at + 2], rest[at + 3]]) & 0x3fff;
        if len < 4 || at + len > rest.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &rest[at + 4..at + len];
            let text = text.split(|b| *b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        at += (len + 3) & !3;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_message_is_found_after_a_capped_header() {
        let mut rest = vec![0u8; 16];
        let text = b"Unknown device type\0";
        let len = (4 + text.len()) as u16;
        rest.extend_from_slice(&len.to_ne_bytes());
        rest.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        rest.extend_from_slice(text);
        assert_eq!(
            ext_ack_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, &rest).as_deref(),
            Some("Unknown device type")
        );
        assert_eq!(ext_ack_message(NLM_F_CAPPED, &rest), None);
        assert_eq!(
            ext_ack_message(NLM_F_ACK_TLVS | NLM_F_CAPPED, &rest[..18]),
            None
        );
    }
}
