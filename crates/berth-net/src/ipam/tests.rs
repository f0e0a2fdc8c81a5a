use super::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn set(addrs: &[&str]) -> BTreeSet<IpAddr> {
    addrs.iter().map(|a| ip(a)).collect()
}

fn problems(subnet: &str, gateway: Option<&str>, range: Option<&str>) -> Vec<String> {
    match validate(net(subnet), gateway.map(ip), range.map(net)) {
        Ok(()) => Vec::new(),
        Err(NetError::InvalidConfig { problems }) => problems,
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[test]
fn default_pools_are_dockers() {
    let pools: Vec<String> = default_pools().map(|p| p.to_string()).collect();
    assert_eq!(pools.len(), 15 + 16);
    assert_eq!(pools[0], "172.17.0.0/16");
    assert_eq!(pools[14], "172.31.0.0/16");
    assert_eq!(pools[15], "192.168.0.0/20");
    assert_eq!(pools[16], "192.168.16.0/20");
    assert_eq!(pools[30], "192.168.240.0/20");
}

#[test]
fn pick_takes_the_first_free_pool() {
    assert_eq!(pick_subnet(&[]).unwrap().to_string(), "172.17.0.0/16");
    // docker0 and a user network: the next /16.
    let taken = [net("172.17.0.0/16"), net("172.18.0.0/16")];
    assert_eq!(pick_subnet(&taken).unwrap().to_string(), "172.19.0.0/16");
    // A small host network inside a pool rules the whole pool out.
    let taken = [net("172.17.3.0/24")];
    assert_eq!(pick_subnet(&taken).unwrap().to_string(), "172.18.0.0/16");
    // A large one covering several pools rules them all out.
    let taken = [net("172.16.0.0/12")];
    assert_eq!(pick_subnet(&taken).unwrap().to_string(), "192.168.0.0/20");
    // IPv6 networks never collide with IPv4 pools.
    let taken = [net("fd00::/8"), net("::/0")];
    assert_eq!(pick_subnet(&taken).unwrap().to_string(), "172.17.0.0/16");
}

#[test]
fn pick_walks_into_192_168_and_runs_out() {
    let mut taken: Vec<IpNet> = (17..=31).map(|b| net(&format!("172.{b}.0.0/16"))).collect();
    taken.push(net("192.168.1.0/24"));
    assert_eq!(pick_subnet(&taken).unwrap().to_string(), "192.168.16.0/20");
    taken.push(net("192.168.0.0/16"));
    assert_eq!(pick_subnet(&taken), None);
}

#[test]
fn overlap_is_containment_either_way_and_per_family() {
    assert!(overlaps(&net("10.0.0.0/8"), &net("10.1.2.0/24")));
    assert!(overlaps(&net("10.1.2.0/24"), &net("10.0.0.0/8")));
    assert!(overlaps(&net("10.1.2.0/24"), &net("10.1.2.0/24")));
    assert!(!overlaps(&net("10.1.2.0/24"), &net("10.1.3.0/24")));
    assert!(!overlaps(&net("0.0.0.0/0"), &net("::/0")));
    assert!(overlaps(&net("fd00::/64"), &net("fd00::/8")));
}

#[test]
fn a_good_config_passes() {
    assert!(problems("172.20.0.0/16", Some("172.20.0.1"), Some("172.20.5.0/24")).is_empty());
    assert!(problems("172.20.0.0/16", None, None).is_empty());
    assert!(problems("fd00:1::/64", Some("fd00:1::1"), Some("fd00:1::/80")).is_empty());
    // The ip-range may be the whole subnet.
    assert!(problems("10.0.0.0/24", None, Some("10.0.0.0/24")).is_empty());
}

#[test]
fn host_bits_are_accepted() {
    assert!(problems("172.20.1.2/16", Some("172.20.0.1"), Some("172.20.5.7/24")).is_empty());
    // and mean the network, for the gateway and for allocation
    assert_eq!(default_gateway(net("172.20.1.2/16")), ip("172.20.0.1"));
    assert_eq!(
        allocate(
            net("10.9.8.7/24"),
            Some(net("10.9.8.200/30")),
            &set(&[]),
            &set(&[])
        ),
        Some(ip("10.9.8.200"))
    );
}

#[test]
fn a_gateway_outside_the_subnet_is_refused_in_dockers_words() {
    assert_eq!(
        problems("172.20.0.0/16", Some("10.0.0.1"), None),
        ["invalid gateway 10.0.0.1: parent subnet 172.20.0.0/16 doesn't contain this address"]
    );
    assert_eq!(
        problems("172.20.0.0/16", Some("fd00::1"), None),
        ["invalid gateway fd00::1: parent subnet is an IPv4 block"]
    );
    assert_eq!(
        problems("fd00::/64", Some("10.0.0.1"), None),
        ["invalid gateway 10.0.0.1: parent subnet is an IPv6 block"]
    );
}

#[test]
fn a_gateway_on_the_network_or_broadcast_address_is_refused() {
    assert_eq!(
        problems("172.20.0.0/16", Some("172.20.0.0"), None),
        ["invalid gateway 172.20.0.0: it is the network address of subnet 172.20.0.0/16"]
    );
    assert_eq!(
        problems("172.20.0.0/16", Some("172.20.255.255"), None),
        ["invalid gateway 172.20.255.255: it is the broadcast address of subnet 172.20.0.0/16"]
    );
    assert_eq!(
        problems("fd00::/64", Some("fd00::"), None),
        ["invalid gateway fd00::: it is the network address of subnet fd00::/64"]
    );
    // IPv6 has no broadcast address.
    assert!(problems("fd00::/64", Some("fd00::ffff:ffff:ffff:ffff"), None).is_empty());
}

#[test]
fn a_bad_ip_range_is_refused_in_dockers_words() {
    assert_eq!(
        problems("172.20.0.0/16", None, Some("172.0.0.0/8")),
        [
            "invalid ip-range 172.0.0.0/8: CIDR block is bigger than its parent subnet 172.20.0.0/16",
        ]
    );
    assert_eq!(
        problems("172.20.0.0/16", None, Some("10.0.0.0/24")),
        ["invalid ip-range 10.0.0.0/24: parent subnet 172.20.0.0/16 doesn't contain ip-range"]
    );
    assert_eq!(
        problems("172.20.0.0/16", None, Some("fd00::/64")),
        ["invalid ip-range fd00::/64: parent subnet is an IPv4 block"]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let p = problems("172.20.0.0/16", Some("10.0.0.1"), Some("10.0.0.0/8"));
    assert_eq!(p.len(), 3, "{p:?}");
    let e = validate(
        net("172.20.0.0/16"),
        Some(ip("10.0.0.1")),
        Some(net("10.0.0.0/8")),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("invalid network config:\n* invalid ip-range 10.0.0.0/8"),
        "{e}"
    );
    assert_eq!(
        berth_errdefs::HasKind::kind(&e),
        berth_errdefs::ErrorKind::InvalidArgument
    );
}

#[test]
fn default_gateway_is_the_first_host_address() {
    assert_eq!(default_gateway(net("172.17.0.0/16")), ip("172.17.0.1"));
    assert_eq!(default_gateway(net("192.168.16.0/20")), ip("192.168.16.1"));
    assert_eq!(
        default_gateway(net("fd12:3456:789a:1::/64")),
        ip("fd12:3456:789a:1::1")
    );
    assert_eq!(default_gateway(net("10.0.0.8/31")), ip("10.0.0.8"));
    assert_eq!(default_gateway(net("10.0.0.8/32")), ip("10.0.0.8"));
}

#[test]
fn allocate_takes_the_lowest_free_address() {
    let subnet = net("172.18.0.0/16");
    let gw = set(&["172.18.0.1"]);
    assert_eq!(
        allocate(subnet, None, &gw, &set(&[])),
        Some(ip("172.18.0.2"))
    );
    let used = set(&["172.18.0.2", "172.18.0.3", "172.18.0.5"]);
    assert_eq!(allocate(subnet, None, &gw, &used), Some(ip("172.18.0.4")));
    // A released address is handed out again, lowest first.
    let used = set(&["172.18.0.3", "172.18.0.4"]);
    assert_eq!(allocate(subnet, None, &gw, &used), Some(ip("172.18.0.2")));
    // A gateway elsewhere leaves .1 free.
    let gw = set(&["172.18.0.254"]);
    assert_eq!(
        allocate(subnet, None, &gw, &set(&[])),
        Some(ip("172.18.0.1"))
    );
}

#[test]
fn allocate_never_hands_out_network_broadcast_or_reserved() {
    let subnet = net("10.0.0.0/30"); // .0 network, .1 .2 hosts, .3 broadcast
    let gw = set(&["10.0.0.1"]);
    assert_eq!(allocate(subnet, None, &gw, &set(&[])), Some(ip("10.0.0.2")));
    assert_eq!(allocate(subnet, None, &gw, &set(&["10.0.0.2"])), None);
    // An ip-range that covers the whole subnet still skips both ends.
    let range = Some(net("10.0.0.0/30"));
    assert_eq!(
        allocate(subnet, range, &set(&[]), &set(&["10.0.0.1", "10.0.0.2"])),
        None
    );
    // IPv6: the network address (subnet-router anycast) is skipped, the last is not.
    let v6 = net("fd00::/126");
    let used = set(&["fd00::1", "fd00::2"]);
    assert_eq!(allocate(v6, None, &set(&[]), &used), Some(ip("fd00::3")));
}

#[test]
fn allocate_stays_inside_the_ip_range() {
    let subnet = net("172.20.0.0/16");
    let gw = set(&["172.20.0.1"]);
    let range = Some(net("172.20.5.0/24"));
    assert_eq!(
        allocate(subnet, range, &gw, &set(&[])),
        Some(ip("172.20.5.0"))
    );
    let used: BTreeSet<IpAddr> = (0..=255).map(|i| ip(&format!("172.20.5.{i}"))).collect();
    assert_eq!(allocate(subnet, range, &gw, &used), None);
    // Used addresses outside the range do not matter.
    assert_eq!(
        allocate(subnet, range, &gw, &set(&["172.20.0.2", "172.20.6.0"])),
        Some(ip("172.20.5.0"))
    );
    // A range outside the subnet, or of the other family, gives nothing.
    assert_eq!(
        allocate(subnet, Some(net("10.0.0.0/24")), &gw, &set(&[])),
        None
    );
    assert_eq!(
        allocate(subnet, Some(net("fd00::/64")), &gw, &set(&[])),
        None
    );
}

#[test]
fn allocate_ignores_addresses_of_the_other_family() {
    let used = set(&["fd00::2", "::ffff:172.18.0.2"]);
    assert_eq!(
        allocate(net("172.18.0.0/16"), None, &set(&["172.18.0.1"]), &used),
        Some(ip("172.18.0.2"))
    );
    let used = set(&["172.18.0.2"]);
    assert_eq!(
        allocate(net("fd00::/64"), None, &set(&["fd00::1"]), &used),
        Some(ip("fd00::2"))
    );
}

#[test]
fn allocate_is_fast_for_a_slash_8_with_many_used() {
    let subnet = net("10.0.0.0/8");
    let used: BTreeSet<IpAddr> = (1..=1_000_000u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
        .collect();
    let start = std::time::Instant::now();
    let got = allocate(subnet, None, &set(&[]), &used);
    let took = start.elapsed();
    assert_eq!(
        got,
        Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 1_000_001)))
    );
    assert!(
        took < std::time::Duration::from_millis(500),
        "took {took:?}"
    );
    // A hole near the end of the used run is found.
    let mut holed = used.clone();
    holed.remove(&IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 999_999)));
    assert_eq!(
        allocate(subnet, None, &set(&[]), &holed),
        Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 999_999)))
    );
    // A full /8 ends with None, not an overflow.
    let end = net("255.0.0.0/8");
    let used: BTreeSet<IpAddr> = (1..=10u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0xff00_0000 + i)))
        .collect();
    assert_eq!(
        allocate(end, None, &set(&[]), &used),
        Some(ip("255.0.0.11"))
    );
}

#[test]
fn allocate_at_the_top_of_the_ipv6_space_does_not_overflow() {
    let top = net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127");
    let used = set(&["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]);
    assert_eq!(allocate(top, None, &set(&[]), &used), None);
    let single = net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
    assert_eq!(
        allocate(single, None, &set(&[]), &set(&[])),
        Some(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
    );
    assert_eq!(allocate(single, None, &set(&[]), &used), None);
}

#[test]
fn mac_is_02_42_and_the_address() {
    assert_eq!(
        mac_for(Ipv4Addr::new(172, 17, 0, 2)),
        [0x02, 0x42, 172, 17, 0, 2]
    );
}

#[test]
fn ula_subnets_are_random_fd_slash_64s() {
    let a = ula_subnet();
    let b = ula_subnet();
    assert_eq!(a.prefix_len(), 64);
    assert_eq!(a.network(), a.addr(), "no host bits");
    assert_eq!(a.addr().octets()[0], 0xfd);
    assert!(net("fd00::/8").contains(&IpNet::V6(a)));
    assert_ne!(a, b, "56 random bits repeated");
}
