//! berth-net's firewall on the real kernel: a lab of bridges, "container"
//! namespaces and an "outside" namespace (tests/integration/src/netlab.rs),
//! one nftables table per test, and a check that neither the table nor the
//! lab outlives the test.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use berth_errdefs::{ErrorKind, HasKind};
use berth_integration::netlab::{
    tcp_blocked, tcp_get, udp_ask, udp_get, Bridge, Lab, Netns, Outside,
};
use berth_net::firewall::{self, FirewallState, FwNetwork, FwPort, Protocol};

/// A table of the test's own that is removed, and checked gone, at the end
/// (also when the test fails).
struct Table(String);

impl Table {
    fn new(lab: &Lab) -> Table {
        Table(format!("berthtest_{}", lab.tag))
    }

    fn apply(&self, state: &FirewallState) {
        firewall::apply(&self.0, state).unwrap_or_else(|e| panic!("apply: {e}"));
    }

    fn finish(self) {
        firewall::remove(&self.0).unwrap();
        let tables = std::process::Command::new("nft")
            .args(["list", "tables"])
            .output()
            .unwrap();
        let tables = String::from_utf8_lossy(&tables.stdout).into_owned();
        assert!(
            !tables
                .lines()
                .any(|l| l.split_whitespace().last() == Some(self.0.as_str())),
            "table {} remains: {tables}",
            self.0
        );
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        let _ = firewall::remove(&self.0);
    }
}

/// A lab and a table for one test, or `None` (the test is skipped) without
/// root or nft. Forwarding is turned on (as berthd does) and left on:
/// parallel tests need it too.
fn setup() -> Option<(Lab, Table)> {
    if !berth_integration::require_root() {
        return None;
    }
    if std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: nft is not installed (apt-get install nftables)");
        return None;
    }
    berth_net::link::enable_ip_forward(false).unwrap();
    let lab = Lab::new();
    let table = Table::new(&lab);
    Some((lab, table))
}

fn network(b: &Bridge) -> FwNetwork {
    FwNetwork {
        bridge: b.name.clone(),
        subnets: vec![b.subnet.parse().unwrap()],
        internal: false,
        masquerade: true,
        icc: true,
    }
}

fn published(protocol: Protocol, host_port: u16, to: &Netns, port: u16, b: &Bridge) -> FwPort {
    FwPort {
        protocol,
        host_ip: None,
        host_port,
        container_ip: IpAddr::V4(to.ip),
        container_port: port,
        bridge: b.name.clone(),
    }
}

/// A bridge with container c1 (.2) serving TCP on 80 and UDP on 53, and
/// the outside.
fn one_serving_tcp_and_udp(lab: &mut Lab) -> (Bridge, Netns, Outside) {
    let br = lab.bridge(1);
    let c1 = lab.container("c1", &br, 2);
    let out = lab.outside();
    lab.tcp_server(Some(&c1), 80, "c1");
    lab.udp_server(Some(&c1), 53, "c1");
    (br, c1, out)
}

/// A bridge with containers c1 (.2) and c2 (.3), each with a TCP server
/// on port 80, and the outside.
fn two_on_one_bridge(lab: &mut Lab) -> (Bridge, Netns, Netns, Outside) {
    let br = lab.bridge(1);
    let c1 = lab.container("c1", &br, 2);
    let c2 = lab.container("c2", &br, 3);
    let out = lab.outside();
    lab.tcp_server(Some(&c1), 80, "c1");
    lab.tcp_server(Some(&c2), 80, "c2");
    (br, c1, c2, out)
}

fn at(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

#[test]
fn published_tcp_and_udp_ports_answer_from_loopback_host_and_outside() {
    let Some((mut lab, table)) = setup() else {
        return;
    };
    let (br, c1, out) = one_serving_tcp_and_udp(&mut lab);
    let (tcp, udp) = (lab.port(0), lab.port(1));
    // Without the table, nothing answers on the host's ports.
    assert!(tcp_blocked(None, at(LOOPBACK, tcp)));

    table.apply(&FirewallState {
        networks: vec![network(&br)],
        ports: vec![
            published(Protocol::Tcp, tcp, &c1, 80, &br),
            published(Protocol::Udp, udp, &c1, 53, &br),
        ],
    });
    // From the host's loopback: route_localnet plus masquerade, so the
    // container sees the bridge's address.
    let gw = br.gateway;
    assert_eq!(tcp_get(None, at(LOOPBACK, tcp)), Ok(format!("c1 {gw}")));
    assert_eq!(udp_get(None, at(LOOPBACK, udp)), Ok(format!("c1 {gw}")));
    // From the host's own (non-loopback) address: the source is kept.
    let host = out.host_ip;
    assert_eq!(tcp_get(None, at(host, tcp)), Ok(format!("c1 {host}")));
    assert_eq!(udp_get(None, at(host, udp)), Ok(format!("c1 {host}")));
    // From outside: DNAT in prerouting, forwarded, the client's address kept.
    let client = out.ns.ip;
    assert_eq!(
        tcp_get(Some(&out.ns), at(host, tcp)),
        Ok(format!("c1 {client}"))
    );
    assert_eq!(
        udp_get(Some(&out.ns), at(host, udp)),
        Ok(format!("c1 {client}"))
    );

    table.finish();
    assert!(
        tcp_blocked(None, at(LOOPBACK, tcp)),
        "the port outlived the table"
    );
    lab.finish();
}

#[test]
fn a_host_ip_restricts_the_port_to_that_address() {
    let Some((mut lab, table)) = setup() else {
        return;
    };
    let (br, c1, out) = one_serving_tcp_and_udp(&mut lab);
    let (tcp, udp) = (lab.port(0), lab.port(1));
    let mut on_loopback = published(Protocol::Tcp, tcp, &c1, 80, &br);
    on_loopback.host_ip = Some(LOOPBACK.into());
    let mut on_host = published(Protocol::Udp, udp, &c1, 53, &br);
    on_host.host_ip = Some(out.host_ip.into());
    table.apply(&FirewallState {
        networks: vec![network(&br)],
        ports: vec![on_loopback, on_host],
    });
    let host = out.host_ip;
    assert!(tcp_get(None, at(LOOPBACK, tcp)).is_ok());
    assert!(tcp_blocked(None, at(host, tcp)));
    assert!(tcp_blocked(Some(&out.ns), at(host, tcp)));
    let short = Duration::from_millis(600);
    assert!(udp_get(Some(&out.ns), at(host, udp)).is_ok());
    assert!(udp_ask(None, at(LOOPBACK, udp), short).is_err());
    table.finish();
    lab.finish();
}

#[test]
fn outbound_traffic_is_masqueraded_and_only_when_asked() {
    let Some((mut lab, table)) = setup() else {
        return;
    };
    let br = lab.bridge(1);
    let c1 = lab.container("c1", &br, 2);
    let out = lab.outside();
    lab.tcp_server(Some(&out.ns), 9000, "out");
    let server = at(out.ns.ip, 9000);
    // The outside has no route back to the bridge's subnet: without
    // masquerade the answer cannot come.
    assert!(tcp_blocked(Some(&c1), server));

    table.apply(&FirewallState {
        networks: vec![network(&br)],
        ports: vec![],
    });
    assert_eq!(
        tcp_get(Some(&c1), server),
        Ok(format!("out {}", out.host_ip))
    );

    let mut no_masq = network(&br);
    no_masq.masquerade = false;
    table.apply(&FirewallState {
        networks: vec![no_masq],
        ports: vec![],
    });
    assert!(tcp_blocked(Some(&c1), server));
    table.finish();
    lab.finish();
}

#[test]
fn two_networks_are_isolated_but_reach_each_others_published_ports() {
    let Some((mut lab, table)) = setup() else {
        return;
    };
    let (b1, b2) = (lab.bridge(1), lab.bridge(2));
    let c1 = lab.container("c1", &b1, 2);
    let c2 = lab.container("c2", &b2, 2);
    let out = lab.outside();
    lab.tcp_server(Some(&c1), 80, "c1");
    lab.tcp_server(Some(&c2), 80, "c2");
    lab.tcp_server(Some(&out.ns), 9000, "out");
    // Routed through the host, each reaches the other without the table.
    assert!(tcp_get(Some(&c1), at(c2.ip, 80)).is_ok());

    let port = lab.port(0);
    table.apply(&FirewallState {
        networks: vec![network(&b1), network(&b2)],
        ports: vec![published(Protocol::Tcp, port, &c2, 80, &b2)],
    });
    assert!(tcp_blocked(Some(&c1), at(c2.ip, 80)));
    assert!(tcp_blocked(Some(&c2), at(c1.ip, 80)));
    // Both still go out, and a published port is open to every network.
    assert!(tcp_get(Some(&c1), at(out.ns.ip, 9000)).is_ok());
    assert!(tcp_get(Some(&c2), at(out.ns.ip, 9000)).is_ok());
    assert!(tcp_get(Some(&c1), at(out.host_ip, port)).is_ok());
    table.finish();
    lab.finish();
}

#[test]
fn an_internal_network_forwards_nothing_in_or_out() {
    let Some((mut lab, table)) = setup() else {
        return;
    };
    let (br, c1, c2, out) = two_on_one_bridge(&mut lab);
    lab.tcp_server(Some(&out.ns), 9000, "out");
    // Give the outside a route to the bridge, so that only the table can
    // stand in the way, and check it does not before the table.
    let via = out.host_ip.to_string();
    let cmd = ["-n", &out.ns.name, "route", "add", &br.subnet, "via", &via];
    assert!(std::process::Command::new("ip")
        .args(cmd)
        .status()
        .unwrap()
        .success());
    assert!(tcp_get(Some(&c1), at(out.ns.ip, 9000)).is_ok());
    assert!(tcp_get(Some(&out.ns), at(c1.ip, 80)).is_ok());

    let mut internal = network(&br);
    internal.internal = true;
    let port = lab.port(0);
    table.apply(&FirewallState {
        networks: vec![internal],
        ports: vec![published(Protocol::Tcp, port, &c1, 80, &br)],
    });
    assert!(
        tcp_blocked(Some(&c1), at(out.ns.ip, 9000)),
        "out of an internal network"
    );
    assert!(
        tcp_blocked(Some(&out.ns), at(c1.ip, 80)),
        "into an internal network"
    );
    assert!(
        tcp_blocked(Some(&out.ns), at(out.host_ip, port)),
        "an internal port published"
    );
    // Inside the bridge, and from the host itself, all is as before.
    assert_eq!(
        tcp_get(Some(&c1), at(c2.ip, 80)),
        Ok(format!("c2 {}", c1.ip))
    );
    assert!(tcp_get(None, at(c1.ip, 80)).is_ok());
    table.finish();
    lab.finish();
}

#[test]
fn icc_off_keeps_containers_on_one_bridge_apart_under_br_netfilter() {
    // Bridged traffic reaches the ip hooks only through br_netfilter.
    let brnf = std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables");
    if brnf.map(|v| v.trim() != "1").unwrap_or(true) {
        eprintln!("skipped: br_netfilter is not loaded (bridge-nf-call-iptables is not 1)");
        return;
    }
    let Some((mut lab, table)) = setup() else {
        return;
    };
    let br = lab.bridge(1);
    let c1 = lab.container("c1", &br, 2);
    let c2 = lab.container("c2", &br, 3);
    lab.tcp_server(Some(&c2), 80, "c2");
    let mut net = network(&br);
    net.icc = false;
    table.apply(&FirewallState {
        networks: vec![net.clone()],
        ports: vec![],
    });
    assert!(tcp_blocked(Some(&c1), at(c2.ip, 80)));
    net.icc = true;
    table.apply(&FirewallState {
        networks: vec![net],
        ports: vec![],
    });
    assert!(tcp_get(Some(&c1), at(c2.ip, 80)).is_ok());
    table.finish();
    lab.finish();
}

#[test]
fn hairpin_a_container_reaches_its_own_and_its_neighbours_published_ports() {
    let Some((mut lab, table)) = setup() else {
        return;
    };
    let (br, c1, c2, out) = two_on_one_bridge(&mut lab);
    lab.udp_server(Some(&c2), 53, "c2");
    let (p1, p2, p3) = (lab.port(0), lab.port(1), lab.port(2));
    table.apply(&FirewallState {
        networks: vec![network(&br)],
        ports: vec![
            published(Protocol::Tcp, p1, &c1, 80, &br),
            published(Protocol::Tcp, p2, &c2, 80, &br),
            published(Protocol::Udp, p3, &c2, 53, &br),
        ],
    });
    // Through the host's address, back out the bridge it came in on:
    // masqueraded to the bridge's address, so the answer comes back the
    // same way.
    let (host, gw) = (out.host_ip, br.gateway);
    assert_eq!(tcp_get(Some(&c1), at(host, p1)), Ok(format!("c1 {gw}")));
    assert_eq!(tcp_get(Some(&c1), at(host, p2)), Ok(format!("c2 {gw}")));
    assert_eq!(udp_get(Some(&c1), at(host, p3)), Ok(format!("c2 {gw}")));
    // The bridge's own address is a host address too.
    assert_eq!(tcp_get(Some(&c1), at(gw, p2)), Ok(format!("c2 {gw}")));
    table.finish();
    lab.finish();
}

#[test]
fn apply_twice_gives_the_same_table_and_remove_leaves_none() {
    let Some((mut lab, table)) = setup() else {
        return;
    };
    let (b1, b2) = (lab.bridge(1), lab.bridge(2));
    let c1 = lab.container("c1", &b1, 2);
    let mut b2net = network(&b2);
    b2net.internal = true;
    let state = FirewallState {
        networks: vec![network(&b1), b2net],
        ports: vec![
            published(Protocol::Tcp, lab.port(0), &c1, 80, &b1),
            published(Protocol::Udp, lab.port(1), &c1, 53, &b1),
        ],
    };
    table.apply(&state);
    let first = firewall::list(&table.0).unwrap();
    table.apply(&state);
    let second = firewall::list(&table.0).unwrap();
    assert_eq!(first, second);
    assert!(
        first.contains(&format!("table inet {}", table.0)),
        "{first}"
    );
    assert_eq!(first.matches("dnat ip to").count(), 2, "{first}");
    assert_eq!(first.matches("masquerade").count(), 3, "{first}");

    firewall::remove(&table.0).unwrap();
    let e = firewall::list(&table.0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains(&table.0), "{e}");
    firewall::remove(&table.0).expect("removing an absent table is Ok");
    table.finish();
    lab.finish();
}

#[test]
fn an_invalid_state_is_refused_before_nft_runs() {
    let Some((lab, table)) = setup() else {
        return;
    };
    let state = FirewallState {
        networks: vec![FwNetwork {
            bridge: "br*".into(),
            subnets: vec![],
            internal: false,
            masquerade: true,
            icc: true,
        }],
        ports: vec![],
    };
    let e = firewall::apply(&table.0, &state).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(
        e.to_string().contains("br*") && e.to_string().contains(&table.0),
        "{e}"
    );
    assert_eq!(
        firewall::list(&table.0).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    table.finish();
    lab.finish();
}

/// Not a check but a measurement for the container start path: the time of
/// one apply with 0, 10 and 100 published ports (median of 15), printed.
#[test]
fn apply_time_with_0_10_and_100_ports() {
    let Some((mut lab, table)) = setup() else {
        return;
    };
    let br = lab.bridge(1);
    let c1 = lab.container("c1", &br, 2);
    for n in [0u16, 10, 100] {
        let state = FirewallState {
            networks: vec![network(&br)],
            ports: (0..n)
                .map(|k| {
                    let mut p = published(Protocol::Tcp, 40000 + k, &c1, 1000 + k, &br);
                    // An address nothing listens on, so no one else's port is caught.
                    p.host_ip = Some(Ipv4Addr::new(127, 0, 0, 2).into());
                    p
                })
                .collect(),
        };
        let mut times: Vec<Duration> = (0..15)
            .map(|_| {
                let t = Instant::now();
                table.apply(&state);
                t.elapsed()
            })
            .collect();
        times.sort();
        let median = times[times.len() / 2];
        eprintln!(
            "firewall apply with {n} ports: median {:.2} ms (min {:.2}, max {:.2})",
            median.as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3
        );
        assert!(median < Duration::from_secs(2), "{n} ports: {median:?}");
        let listed = firewall::list(&table.0).unwrap();
        assert_eq!(listed.matches("dnat ip to").count(), n as usize);
    }
    table.finish();
    lab.finish();
}
