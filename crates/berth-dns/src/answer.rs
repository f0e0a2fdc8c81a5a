//! One query in, one decision out: answer from the network's names, refuse,
//! or forward. No I/O here, so every rule is unit-tested.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use ipnet::IpNet;

use crate::config::NetworkDns;
use crate::zone::{key, Zone};

/// Docker's TTL for container names.
pub const TTL: u32 = 600;
/// The UDP payload we offer clients that speak EDNS (the DNS flag day's size).
const EDNS_PAYLOAD: u16 = 1232;

/// One network as the server uses it.
#[derive(Debug)]
pub struct Network {
    pub id: String,
    pub subnets: Vec<IpNet>,
    pub upstreams: Vec<SocketAddr>,
    pub zone: Zone,
}

impl Network {
    pub fn new(cfg: &NetworkDns) -> Network {
        Network {
            id: cfg.network_id.clone(),
            subnets: cfg.subnets.clone(),
            upstreams: cfg.upstreams.clone(),
            zone: Zone::build(cfg),
        }
    }

    /// Whether `client` is on this network (only its own containers may
    /// ask it for names).
    pub fn allows(&self, client: IpAddr) -> bool {
        let client = client.to_canonical();
        self.subnets.iter().any(|n| n.contains(&client))
    }
}

/// A listen address's view: every network of the reload (a container on
/// several networks resolves the names of each, as with docker) and which
/// one the address belongs to.
#[derive(Debug, Clone)]
pub struct Scope {
    pub nets: Arc<Vec<Network>>,
    pub at: usize,
}

impl Scope {
    pub fn net(&self) -> &Network {
        &self.nets[self.at]
    }
}

/// The zone that has what `hit` looks for, among those `client` on
/// `nets[at]` may see: its own network's first, then those of the other
/// networks its container is on (known by the short id the records share).
fn zone_for(
    nets: &[Network],
    at: usize,
    client: IpAddr,
    hit: impl Fn(&Zone) -> bool,
) -> Option<&Zone> {
    let own = &nets[at].zone;
    if hit(own) {
        return Some(own);
    }
    let ids = own.ids_of(client.to_canonical());
    if ids.is_empty() {
        return None;
    }
    nets.iter()
        .enumerate()
        .filter(|(i, n)| *i != at && ids.iter().any(|id| n.zone.has_id(id)))
        .map(|(_, n)| &n.zone)
        .find(|z| hit(z))
}

/// What to do with a packet.
#[derive(Debug)]
pub enum Reply {
    /// Send this message back.
    Local(Box<Message>),
    /// Not one of the network's names: relay the packet to the upstreams.
    /// The parsed query is kept for the client's UDP size and, when no
    /// upstream answers, for the SERVFAIL.
    Forward(Box<Message>),
    /// Say nothing: a response, or too short to carry an id.
    Ignore,
}

/// Decides what `packet`, from `client`, gets on `nets[at]`.
pub fn respond(packet: &[u8], client: IpAddr, nets: &[Network], at: usize) -> Reply {
    let net = &nets[at];
    if packet.len() < 12 || packet[2] & 0x80 != 0 {
        // No header to answer to, or a response: answering responses is
        // how two servers end up in a loop.
        return Reply::Ignore;
    }
    let query = match Message::from_vec(packet) {
        Ok(m) => m,
        Err(_) => {
            let id = u16::from_be_bytes([packet[0], packet[1]]);
            let op = OpCode::from_u8((packet[2] >> 3) & 0x0f);
            return Reply::Local(Box::new(Message::error_msg(id, op, ResponseCode::FormErr)));
        }
    };
    if !net.allows(client) {
        return Reply::Local(Box::new(error(&query, ResponseCode::Refused)));
    }
    if query.metadata.op_code != OpCode::Query {
        return Reply::Local(Box::new(error(&query, ResponseCode::NotImp)));
    }
    let [q] = query.queries.as_slice() else {
        return Reply::Local(Box::new(error(&query, ResponseCode::FormErr)));
    };
    if q.query_class() != DNSClass::IN {
        return Reply::Forward(Box::new(query));
    }
    let name = key(&q.name().to_ascii());
    let answers: Vec<RData> = match q.query_type() {
        RecordType::PTR => {
            let found = zone_for(nets, at, client, |z| {
                z.ptr(&name).is_some() || z.knows(&name)
            });
            let Some(zone) = found else {
                return Reply::Forward(Box::new(query));
            };
            zone.ptr(&name)
                .map(|owner| RData::PTR(PTR(owner.clone())))
                .into_iter()
                .collect()
        }
        t => {
            // A link's alias answers with its target's addresses, for the
            // linking container only (docker's links on user networks).
            let name = net.zone.linked(client.to_canonical(), &name).to_string();
            let Some(zone) = zone_for(nets, at, client, |z| z.knows(&name)) else {
                return Reply::Forward(Box::new(query));
            };
            let mut out = Vec::new();
            if matches!(t, RecordType::A | RecordType::ANY) {
                let v4 = zone.ipv4(&name).unwrap_or_default();
                out.extend(v4.into_iter().map(|a| RData::A(A(a))));
            }
            if matches!(t, RecordType::AAAA | RecordType::ANY) {
                let v6 = zone.ipv6(&name).unwrap_or_default();
                out.extend(v6.into_iter().map(|a| RData::AAAA(AAAA(a))));
            }
            out
        }
    };
    let mut reply = response(&query, ResponseCode::NoError);
    reply.metadata.authoritative = true;
    let owner = q.name().clone();
    for rdata in answers {
        reply.add_answer(Record::from_rdata(owner.clone(), TTL, rdata));
    }
    Reply::Local(Box::new(reply))
}

/// The reply to `query` that carries `code` and nothing else.
pub fn error(query: &Message, code: ResponseCode) -> Message {
    response(query, code)
}

fn response(query: &Message, code: ResponseCode) -> Message {
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.response_code = code;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_queries(query.queries.iter().cloned());
    if query.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        reply.set_edns(edns);
    }
    reply
}

/// The UDP payload size `query`'s sender accepts.
pub fn udp_limit(query: &Message) -> usize {
    usize::from(query.max_payload())
}

/// `msg` encoded in at most `limit` bytes: whole, or (too large) only its
/// header and question with the truncation bit, so the client asks again
/// over TCP. `None` when even that cannot be encoded.
pub fn encode(msg: &Message, limit: usize) -> Option<Vec<u8>> {
    match msg.to_vec() {
        Ok(bytes) if bytes.len() <= limit => Some(bytes),
        Ok(_) => msg.truncate().to_vec().ok().filter(|b| b.len() <= limit),
        Err(e) => {
            tracing::warn!(error = %e, "encoding a reply");
            None
        }
    }
}

/// An upstream's reply, as received, made to fit in `limit` bytes.
pub fn fit(reply: Vec<u8>, limit: usize) -> Option<Vec<u8>> {
    if reply.len() <= limit {
        return Some(reply);
    }
    let msg = Message::from_vec(&reply).ok()?;
    encode(&msg, limit)
}

/// Whether `reply` answers `query`: same id, a response, same question.
pub fn answers(query: &Message, reply: &[u8]) -> bool {
    let Ok(r) = Message::from_vec(reply) else {
        return false;
    };
    r.metadata.id == query.metadata.id
        && r.metadata.message_type == MessageType::Response
        && same_questions(&r.queries, &query.queries)
}

fn same_questions(a: &[Query], b: &[Query]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.query_type() == y.query_type()
                && x.query_class() == y.query_class()
                && key(&x.name().to_ascii()) == key(&y.name().to_ascii())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Record as Rec;
    use hickory_proto::rr::Name;

    fn network() -> Network {
        Network::new(&NetworkDns {
            network_id: "n1".into(),
            network_name: "front".into(),
            listen: vec!["10.89.0.1".parse().unwrap()],
            subnets: vec![
                "10.89.0.0/24".parse().unwrap(),
                "fd89::/64".parse().unwrap(),
            ],
            records: vec![
                Rec {
                    names: vec!["web".into(), "svc".into()],
                    ipv4: vec!["10.89.0.2".parse().unwrap()],
                    ipv6: vec!["fd89::2".parse().unwrap()],
                    links: Default::default(),
                },
                Rec {
                    names: vec!["api".into(), "svc".into()],
                    ipv4: vec!["10.89.0.3".parse().unwrap()],
                    ipv6: vec![],
                    links: Default::default(),
                },
                Rec {
                    names: vec!["cli".into()],
                    ipv4: vec!["10.89.0.4".parse().unwrap()],
                    ipv6: vec![],
                    links: [("Db".to_string(), "api".to_string())].into(),
                },
            ],
            upstreams: vec![],
        })
    }

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 4242;
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m.to_vec().unwrap()
    }

    const INSIDE: &str = "10.89.0.7";

    fn local(packet: &[u8], from: &str) -> Message {
        match respond(packet, from.parse().unwrap(), &[network()], 0) {
            Reply::Local(m) => *m,
            other => panic!("not answered locally: {other:?}"),
        }
    }

    fn ips(m: &Message) -> Vec<String> {
        m.answers.iter().map(|r| r.data.to_string()).collect()
    }

    #[test]
    fn a_and_aaaa_for_names() {
        let m = local(&query("Web.", RecordType::A), INSIDE);
        assert_eq!(m.metadata.id, 4242);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.recursion_desired && m.metadata.authoritative);
        assert_eq!(ips(&m), ["10.89.0.2"]);
        assert_eq!(m.answers[0].ttl, TTL);
        let m = local(&query("web.front", RecordType::AAAA), "fd89::9");
        assert_eq!(ips(&m), ["fd89::2"]);
        let m = local(&query("web", RecordType::ANY), INSIDE);
        assert_eq!(ips(&m), ["10.89.0.2", "fd89::2"]);
    }

    #[test]
    fn link_aliases_answer_only_the_linking_container() {
        let m = local(&query("db.", RecordType::A), "10.89.0.4");
        assert_eq!(ips(&m), ["10.89.0.3"]);
        assert_eq!(m.answers[0].name.to_ascii(), "db.");
        assert!(matches!(
            respond(&query("db.", RecordType::A), ip(INSIDE), &[network()], 0),
            Reply::Forward(_)
        ));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn known_name_without_type_is_noerror_and_empty() {
        for t in [RecordType::AAAA, RecordType::MX, RecordType::TXT] {
            let m = local(&query("api", t), INSIDE);
            assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{t}");
            assert!(m.answers.is_empty(), "{t}");
        }
    }

    #[test]
    fn shared_alias_gives_all_rotated() {
        let net = network();
        let mut firsts = Vec::new();
        for _ in 0..4 {
            let Reply::Local(m) = respond(
                &query("svc", RecordType::A),
                INSIDE.parse().unwrap(),
                std::slice::from_ref(&net),
                0,
            ) else {
                panic!()
            };
            assert_eq!(m.answers.len(), 2);
            firsts.push(ips(&m)[0].clone());
        }
        assert_eq!(firsts, ["10.89.0.2", "10.89.0.3", "10.89.0.2", "10.89.0.3"]);
    }

    #[test]
    fn ptr_for_record_addresses() {
        let m = local(&query("3.0.89.10.in-addr.arpa.", RecordType::PTR), INSIDE);
        assert_eq!(ips(&m), ["api.front."]);
    }

    #[test]
    fn foreign_clients_are_refused() {
        for from in ["10.90.0.7", "127.0.0.1", "fd90::1", "::ffff:10.90.0.7"] {
            let m = local(&query("web", RecordType::A), from);
            assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{from}");
            assert!(m.answers.is_empty());
        }
        // The IPv4-mapped form of a client on the network is the client.
        let m = local(&query("web", RecordType::A), "::ffff:10.89.0.7");
        assert_eq!(ips(&m), ["10.89.0.2"]);
    }

    #[test]
    fn other_names_are_forwarded() {
        let net = network();
        let from = INSIDE.parse().unwrap();
        for (n, t) in [
            ("example.com", RecordType::A),
            ("webx", RecordType::A),
            ("9.0.89.10.in-addr.arpa", RecordType::PTR),
        ] {
            assert!(
                matches!(
                    respond(&query(n, t), from, std::slice::from_ref(&net), 0),
                    Reply::Forward(_)
                ),
                "{n}"
            );
        }
    }

    #[test]
    fn garbage_and_responses() {
        let net = network();
        let from = INSIDE.parse().unwrap();
        let net = std::slice::from_ref(&net);
        assert!(matches!(respond(b"short", from, net, 0), Reply::Ignore));
        let mut resp = query("web", RecordType::A);
        resp[2] |= 0x80;
        assert!(matches!(respond(&resp, from, net, 0), Reply::Ignore));
        let mut junk = vec![0x12, 0x34, 0x01, 0x00, 0x00, 0x01];
        junk.extend_from_slice(&[0xff; 20]);
        let m = local(&junk, INSIDE);
        assert_eq!(m.metadata.id, 0x1234);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        // Two questions in one query.
        let mut two = Message::query();
        two.add_query(Query::query(Name::from_ascii("a.").unwrap(), RecordType::A));
        two.add_query(Query::query(Name::from_ascii("b.").unwrap(), RecordType::A));
        let m = local(&two.to_vec().unwrap(), INSIDE);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn containers_on_several_networks_see_each_networks_names() {
        let mk = |id: &str, name: &str, n: u8, records: Vec<Rec>| {
            Network::new(&NetworkDns {
                network_id: id.into(),
                network_name: name.into(),
                listen: vec![format!("10.{n}.0.1").parse().unwrap()],
                subnets: vec![format!("10.{n}.0.0/24").parse().unwrap()],
                records,
                upstreams: vec![],
            })
        };
        let rec = |names: &[&str], ip: &str| Rec {
            names: names.iter().map(|s| s.to_string()).collect(),
            ipv4: vec![ip.parse().unwrap()],
            ipv6: vec![],
            links: Default::default(),
        };
        // "both" (short id aaaaaaaaaaaa) is on front and back; "lone" only on front.
        let nets = vec![
            mk(
                "f",
                "front",
                1,
                vec![
                    rec(&["both", "aaaaaaaaaaaa"], "10.1.0.2"),
                    rec(&["lone", "bbbbbbbbbbbb"], "10.1.0.3"),
                ],
            ),
            mk(
                "b",
                "back",
                2,
                vec![
                    rec(&["both", "aaaaaaaaaaaa"], "10.2.0.2"),
                    rec(&["db", "cccccccccccc"], "10.2.0.3"),
                ],
            ),
        ];
        let ask = |name: &str, t: RecordType, from: &str| {
            respond(&query(name, t), from.parse().unwrap(), &nets, 0)
        };
        let Reply::Local(m) = ask("db", RecordType::A, "10.1.0.2") else {
            panic!()
        };
        assert_eq!(ips(&m), ["10.2.0.3"]);
        let Reply::Local(m) = ask("3.0.2.10.in-addr.arpa", RecordType::PTR, "10.1.0.2") else {
            panic!()
        };
        assert_eq!(ips(&m), ["db.back."]);
        // The own network's answer wins for a name on both.
        let Reply::Local(m) = ask("both", RecordType::A, "10.1.0.3") else {
            panic!()
        };
        assert_eq!(ips(&m), ["10.1.0.2"]);
        // A container that is not on back does not see back's names.
        assert!(matches!(
            ask("db", RecordType::A, "10.1.0.3"),
            Reply::Forward(_)
        ));
        assert!(matches!(
            ask("db", RecordType::A, "10.1.0.99"),
            Reply::Forward(_)
        ));
    }

    #[test]
    fn large_answers_truncate() {
        let mut m = Message::response(1, OpCode::Query);
        let name = Name::from_ascii("many.").unwrap();
        m.add_query(Query::query(name.clone(), RecordType::A));
        for i in 0..100u8 {
            m.add_answer(Record::from_rdata(
                name.clone(),
                TTL,
                RData::A(A([10, 0, 0, i].into())),
            ));
        }
        let full = encode(&m, 65535).unwrap();
        assert!(full.len() > 512);
        let cut = encode(&m, 512).unwrap();
        let back = Message::from_vec(&cut).unwrap();
        assert!(back.metadata.truncation && back.answers.is_empty());
        assert_eq!(back.queries.len(), 1);
        let relayed = fit(full.clone(), 512).unwrap();
        assert_eq!(relayed, cut);
        assert_eq!(fit(full.clone(), 4096).unwrap(), full);
    }

    #[test]
    fn answers_checks_id_and_question() {
        let q = Message::from_vec(&query("example.com", RecordType::A)).unwrap();
        let mut r = error(&q, ResponseCode::NoError);
        assert!(answers(&q, &r.to_vec().unwrap()));
        r.metadata.id = 1;
        assert!(!answers(&q, &r.to_vec().unwrap()));
        let other = Message::from_vec(&query("example.org", RecordType::A)).unwrap();
        assert!(!answers(
            &q,
            &error(&other, ResponseCode::NoError).to_vec().unwrap()
        ));
        assert!(!answers(&q, &q.to_vec().unwrap()));
    }
}
