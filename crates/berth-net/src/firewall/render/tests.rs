use std::net::IpAddr;

use berth_errdefs::{ErrorKind, HasKind};
use serde_json::Value;

use super::super::{FirewallState, FwNetwork, FwPort, Protocol};
use super::*;

fn net(bridge: &str, subnets: &[&str]) -> FwNetwork {
    FwNetwork {
        bridge: bridge.into(),
        subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
        internal: false,
        masquerade: true,
        icc: true,
    }
}

fn port(
    protocol: Protocol,
    host_ip: Option<&str>,
    host_port: u16,
    to: &str,
    bridge: &str,
) -> FwPort {
    let (ip, p) = to.rsplit_once(':').unwrap();
    FwPort {
        protocol,
        host_ip: host_ip.map(|h| h.parse().unwrap()),
        host_port,
        container_ip: ip.trim_matches(['[', ']']).parse::<IpAddr>().unwrap(),
        container_port: p.parse().unwrap(),
        bridge: bridge.into(),
    }
}

/// One expression in nft's own words, enough to read the tests.
fn text(e: &Value) -> String {
    match e {
        Value::String(s) => return s.clone(),
        Value::Number(n) => return n.to_string(),
        _ => {}
    }
    let (key, body) = e.as_object().unwrap().iter().next().unwrap();
    match key.as_str() {
        "match" => {
            let op = match body["op"].as_str().unwrap() {
                "==" | "in" => String::new(),
                op => format!("{op} "),
            };
            format!("{} {op}{}", text(&body["left"]), text(&body["right"]))
        }
        // nft leaves "meta" out before the interface names only.
        "meta" => match body["key"].as_str().unwrap() {
            k @ ("iifname" | "oifname") => k.into(),
            k => format!("meta {k}"),
        },
        "ct" => format!("ct {}", body["key"].as_str().unwrap()),
        "payload" => format!(
            "{} {}",
            body["protocol"].as_str().unwrap(),
            body["field"].as_str().unwrap()
        ),
        "fib" => format!(
            "fib {} {}",
            body["flags"][0].as_str().unwrap(),
            body["result"].as_str().unwrap()
        ),
        "prefix" => format!("{}/{}", body["addr"].as_str().unwrap(), body["len"]),
        "dnat" => {
            let addr = body["addr"].as_str().unwrap();
            let addr = if addr.contains(':') {
                format!("[{addr}]")
            } else {
                addr.to_string()
            };
            format!(
                "dnat {} to {addr}:{}",
                body["family"].as_str().unwrap(),
                body["port"]
            )
        }
        "jump" => format!("jump {}", body["target"].as_str().unwrap()),
        verdict => verdict.into(),
    }
}

/// The rules of `chain`, one line each.
fn rules(doc: &Value, chain: &str) -> Vec<String> {
    commands(doc)
        .filter_map(|c| c.get("add")?.get("rule"))
        .filter(|r| r["chain"] == chain)
        .map(|r| {
            let expr = r["expr"].as_array().unwrap();
            expr.iter().map(text).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

fn commands(doc: &Value) -> impl Iterator<Item = &Value> {
    doc["nftables"].as_array().unwrap().iter()
}

#[test]
fn the_table_is_replaced_whole_in_one_transaction() {
    let doc = render("t1", &FirewallState::default());
    let first: Vec<&Value> = commands(&doc).take(3).collect();
    let table = json!({ "table": { "family": "inet", "name": "t1" } });
    assert_eq!(first[0], &json!({ "add": table }));
    assert_eq!(first[1], &json!({ "delete": table }));
    assert_eq!(first[2], &json!({ "add": table }));
    // No other command deletes, flushes or touches another table.
    for c in commands(&doc).skip(3) {
        let (verb, obj) = c.as_object().unwrap().iter().next().unwrap();
        assert_eq!(verb, "add", "{c}");
        let (_, body) = obj.as_object().unwrap().iter().next().unwrap();
        assert_eq!(body["table"], "t1", "{c}");
        assert_eq!(body["family"], "inet", "{c}");
    }
}

#[test]
fn an_empty_state_has_the_chains_and_no_drops() {
    let doc = render("t", &FirewallState::default());
    let chains: Vec<(&str, Value)> = commands(&doc)
        .filter_map(|c| c.get("add")?.get("chain"))
        .map(|c| (c["name"].as_str().unwrap(), c["hook"].clone()))
        .collect();
    assert_eq!(
        chains,
        [
            ("forward", json!("forward")),
            ("prerouting", json!("prerouting")),
            ("output", json!("output")),
            ("published", Value::Null),
            ("postrouting", json!("postrouting")),
        ]
    );
    assert_eq!(rules(&doc, "forward"), ["ct status dnat accept"]);
    assert_eq!(
        rules(&doc, "prerouting"),
        ["fib daddr type local jump published"]
    );
    assert_eq!(
        rules(&doc, "output"),
        ["fib daddr type local jump published"]
    );
    assert!(rules(&doc, "published").is_empty());
    assert!(rules(&doc, "postrouting").is_empty());
    let set = commands(&doc)
        .find_map(|c| c.get("add")?.get("set"))
        .unwrap();
    assert_eq!(set["type"], "ifname");
    assert!(set.get("elem").is_none(), "an empty set has no elem: {set}");
}

#[test]
fn masquerade_isolation_and_icc() {
    let mut b = net("br-b", &["10.2.0.0/16", "fd00:2::/64"]);
    b.masquerade = false;
    b.icc = false;
    let state = FirewallState {
        networks: vec![net("br-a", &["10.1.0.5/24"]), b],
        ports: vec![],
    };
    let doc = render("t", &state);
    assert_eq!(
        rules(&doc, "forward"),
        [
            "ct status dnat accept",
            "iifname br-a oifname br-a accept",
            "iifname br-b oifname br-b drop",
            "iifname @bridges oifname @bridges drop",
        ]
    );
    assert_eq!(
        rules(&doc, "postrouting"),
        [
            // The subnet is truncated to its network address.
            "ip saddr 10.1.0.0/24 oifname != br-a masquerade",
            "oifname br-a ip saddr 127.0.0.0/8 masquerade",
            "oifname br-a ct status dnat ip saddr 10.1.0.0/24 masquerade",
            // No outbound masquerade for br-b, but loopback and hairpin still.
            "oifname br-b ip saddr 127.0.0.0/8 masquerade",
            "oifname br-b ct status dnat ip saddr 10.2.0.0/16 masquerade",
            "oifname br-b ct status dnat ip6 saddr fd00:2::/64 masquerade",
        ]
    );
    let set = commands(&doc)
        .find_map(|c| c.get("add")?.get("set"))
        .unwrap();
    assert_eq!(set["elem"], json!(["br-a", "br-b"]));
}

#[test]
fn an_internal_network_is_closed_and_publishes_nothing() {
    let mut i = net("br-i", &["10.3.0.0/24"]);
    i.internal = true;
    let state = FirewallState {
        networks: vec![net("br-a", &["10.1.0.0/24"]), i],
        ports: vec![
            port(Protocol::Tcp, None, 8080, "10.3.0.2:80", "br-i"),
            port(Protocol::Tcp, None, 8081, "10.1.0.2:80", "br-a"),
        ],
    };
    let doc = render("t", &state);
    assert_eq!(
        rules(&doc, "forward")[..3],
        [
            "iifname br-i oifname != br-i drop",
            "oifname br-i iifname != br-i drop",
            "ct status dnat accept",
        ]
    );
    assert!(!rules(&doc, "postrouting")
        .iter()
        .any(|r| r.contains("br-i")));
    assert_eq!(
        rules(&doc, "published"),
        ["meta nfproto ipv4 tcp dport 8081 dnat ip to 10.1.0.2:80"]
    );
}

#[test]
fn published_ports() {
    let state = FirewallState {
        networks: vec![net("br-a", &["10.1.0.0/24", "fd00:1::/64"])],
        ports: vec![
            port(Protocol::Tcp, None, 8080, "10.1.0.2:80", "br-a"),
            port(Protocol::Udp, Some("0.0.0.0"), 5353, "10.1.0.2:53", "br-a"),
            port(
                Protocol::Tcp,
                Some("127.0.0.1"),
                8080,
                "10.1.0.3:80",
                "br-a",
            ),
            port(Protocol::Sctp, Some("fd00::1"), 9, "[fd00:1::2]:9", "br-a"),
            port(Protocol::Tcp, None, 8443, "[fd00:1::2]:443", "br-a"),
        ],
    };
    let doc = render("t", &state);
    assert_eq!(
        rules(&doc, "published"),
        [
            // Bound to one address first, then the wildcards, each in order.
            "ip daddr 127.0.0.1 tcp dport 8080 dnat ip to 10.1.0.3:80",
            "ip6 daddr fd00::1 sctp dport 9 dnat ip6 to [fd00:1::2]:9",
            "meta nfproto ipv4 tcp dport 8080 dnat ip to 10.1.0.2:80",
            "meta nfproto ipv4 udp dport 5353 dnat ip to 10.1.0.2:53",
            "meta nfproto ipv6 tcp dport 8443 dnat ip6 to [fd00:1::2]:443",
        ]
    );
    assert_eq!(render("t", &state), doc, "rendering is deterministic");
}

#[test]
fn a_port_nat_cannot_express_is_left_out_and_refused() {
    let state = FirewallState {
        networks: vec![net("br-a", &["10.1.0.0/24"])],
        ports: vec![port(Protocol::Tcp, Some("::1"), 80, "10.1.0.2:80", "br-a")],
    };
    assert!(rules(&render("t", &state), "published").is_empty());
    let e = validate("t", &state).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("different IP families"), "{e}");
}

#[test]
fn validation_names_what_is_wrong() {
    let good = FirewallState {
        networks: vec![net("br-a", &["10.1.0.0/24"])],
        ports: vec![port(Protocol::Tcp, None, 80, "10.1.0.2:80", "br-a")],
    };
    validate("berth", &good).unwrap();
    validate("berth-test_1", &good).unwrap();
    for table in ["", "1abc", "a b", "a;b", "a\"b", &"x".repeat(65)] {
        let e = validate(table, &good).unwrap_err();
        assert!(e.to_string().contains("table name"), "{table:?}: {e}");
    }
    let bad_state = |f: &dyn Fn(&mut FirewallState)| {
        let mut s = good.clone();
        f(&mut s);
        validate("t", &s).unwrap_err().to_string()
    };
    for name in ["br*", "", "0123456789abcdef", "a b", "..", "br\"x"] {
        let e = bad_state(&|s| {
            s.networks[0].bridge = name.into();
            s.ports.clear();
        });
        assert!(e.contains("bridge name"), "{name:?}: {e}");
    }
    let e = bad_state(&|s| s.networks.push(net("br-a", &[])));
    assert!(e.contains("listed twice"), "{e}");
    let e = bad_state(&|s| s.ports[0].bridge = "br-z".into());
    assert!(
        e.contains("br-z") && e.contains("not one of the networks"),
        "{e}"
    );
    let e = bad_state(&|s| s.ports[0].host_port = 0);
    assert!(e.contains("port 0"), "{e}");
    let e = bad_state(&|s| s.ports[0].container_ip = "0.0.0.0".parse().unwrap());
    assert!(e.contains("no container address"), "{e}");
}

#[test]
fn remove_creates_then_deletes() {
    let doc = remove("t");
    let table = json!({ "table": { "family": "inet", "name": "t" } });
    assert_eq!(
        doc,
        json!({ "nftables": [{ "add": table }, { "delete": table }] })
    );
}
