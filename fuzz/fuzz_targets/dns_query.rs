//! A DNS packet from a container (untrusted, UDP or TCP) to berth-dns:
//! deciding the reply, encoding it within the client's size, and relaying
//! the same bytes as an upstream's answer never panic. The client address
//! is picked by the first byte: inside the network, outside it, or IPv6.
#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;

use berth_dns::answer::{self, Network, Reply};
use berth_dns::{NetworkDns, Record};
use hickory_proto::op::ResponseCode;
use libfuzzer_sys::fuzz_target;

fn networks() -> &'static [Network] {
    static NETS: OnceLock<Vec<Network>> = OnceLock::new();
    NETS.get_or_init(|| {
        let rec = |names: &[&str], v4: &[&str], v6: &[&str], links: &[(&str, &str)]| Record {
            names: names.iter().map(|s| s.to_string()).collect(),
            ipv4: v4.iter().map(|s| s.parse().unwrap()).collect(),
            ipv6: v6.iter().map(|s| s.parse().unwrap()).collect(),
            links: links
                .iter()
                .map(|(a, t)| (a.to_string(), t.to_string()))
                .collect(),
        };
        let front = NetworkDns {
            network_id: "n1".into(),
            network_name: "front".into(),
            listen: vec!["10.89.0.1".parse().unwrap()],
            subnets: vec![
                "10.89.0.0/24".parse().unwrap(),
                "fd89::/64".parse().unwrap(),
            ],
            records: vec![
                rec(
                    &["web", "svc", "0123456789ab"],
                    &["10.89.0.2"],
                    &["fd89::2"],
                    &[],
                ),
                rec(&["api", "svc"], &["10.89.0.3"], &[], &[]),
                rec(&["cli"], &["10.89.0.4"], &[], &[("db", "api")]),
            ],
            upstreams: vec!["127.0.0.1:53".parse().unwrap()],
        };
        let back = NetworkDns {
            network_id: "n2".into(),
            network_name: "back".into(),
            listen: vec!["10.90.0.1".parse().unwrap()],
            subnets: vec!["10.90.0.0/24".parse().unwrap()],
            records: vec![rec(&["db", "0123456789ab"], &["10.90.0.2"], &[], &[])],
            upstreams: vec![],
        };
        vec![Network::new(&front), Network::new(&back)]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, packet)) = data.split_first() else {
        return;
    };
    let client: IpAddr = match pick % 4 {
        0 => "10.89.0.2".parse().unwrap(),
        1 => "10.89.0.4".parse().unwrap(),
        2 => "fd89::7".parse().unwrap(),
        _ => "192.0.2.1".parse().unwrap(),
    };
    let nets = networks();
    let at = usize::from(pick >> 7);
    match answer::respond(packet, client, nets, at) {
        Reply::Local(reply) => {
            for limit in [512, 4096, 65535] {
                if let Some(b) = answer::encode(&reply, limit) {
                    assert!(b.len() <= limit);
                }
            }
        }
        Reply::Forward(query) => {
            let limit = answer::udp_limit(&query);
            let _ = answer::encode(&answer::error(&query, ResponseCode::ServFail), limit);
            // The same bytes as an upstream's reply.
            let _ = answer::answers(&query, packet);
            let _ = answer::fit(packet.to_vec(), limit);
        }
        Reply::Ignore => {}
    }
});
