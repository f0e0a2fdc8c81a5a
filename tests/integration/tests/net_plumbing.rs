//! berth-net's plumbing on the real kernel: namespace files, a bridge, veth
//! pairs into the namespaces, pings across them, failures that leave
//! nothing behind, and a leak check after each test (no link with the
//! test's prefix, no mount under its directory).
//!
//! Every test has its own interface prefix ("bt" + 4 random hex digits:
//! the longest name, prefix + "h" + 2 digits, stays within IFNAMSIZ) and
//! its own /24 of 100.64.0.0/10 (shared address space, which nothing on a
//! test host routes), checked against the host's networks.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_errdefs::{ErrorKind, HasKind};
use berth_net::ipam;
use berth_net::link::{self, BridgeSpec, VethSpec};
use berth_net::netns;
use berth_net::{IpNet, NetError};

/// One test's names, addresses and files; dropping it takes everything
/// down, and [`Plumbing::finish`] also checks that nothing is left.
struct Plumbing {
    prefix: String,
    /// The /24's first three bytes.
    net: [u8; 3],
    dir: tempfile::TempDir,
}

impl Plumbing {
    fn new() -> Plumbing {
        let dir = tempfile::tempdir().unwrap();
        let host = link::host_networks().unwrap();
        loop {
            let r = random_u32();
            let net = [100, 64 + ((r >> 8) & 0x3f) as u8, r as u8];
            let subnet: IpNet = format!("{}.{}.{}.0/24", net[0], net[1], net[2])
                .parse()
                .unwrap();
            if host.iter().any(|h| ipam::overlaps(h, &subnet)) {
                continue;
            }
            let prefix = format!("bt{:04x}", r >> 16);
            if link::links_with_prefix(&prefix).unwrap().is_empty() {
                return Plumbing { prefix, net, dir };
            }
        }
    }

    fn bridge(&self) -> String {
        self.prefix.clone()
    }

    fn ip(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.net[0], self.net[1], self.net[2], host)
    }

    fn cidr(&self, host: u8) -> IpNet {
        format!("{}/24", self.ip(host)).parse().unwrap()
    }

    fn netns_path(&self, name: &str) -> PathBuf {
        self.dir.path().join("netns").join(name)
    }

    fn ensure_bridge(&self) {
        link::ensure_bridge(&BridgeSpec {
            name: self.bridge(),
            addresses: vec![self.cidr(1)],
            mtu: Some(1400),
        })
        .unwrap_or_else(|e| panic!("ensure_bridge: {e}"));
    }

    /// A veth spec for container `n` (address .n+1) on the test's bridge.
    fn veth(&self, n: u8, gateway: bool) -> VethSpec {
        VethSpec {
            bridge: self.bridge(),
            host_name: format!("{}h{n}", self.prefix),
            netns: self.netns_path(&format!("c{n}")),
            container_name: "eth0".into(),
            mac: ipam::mac_for(self.ip(n + 1)),
            addresses: vec![self.cidr(n + 1)],
            gateway4: gateway.then(|| self.ip(1)),
            gateway6: None,
            mtu: Some(1400),
        }
    }

    fn leaks(&self) -> Vec<String> {
        let mut leaks: Vec<String> = link::links_with_prefix(&self.prefix)
            .unwrap()
            .into_iter()
            .map(|l| format!("link {l} remains"))
            .collect();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        for line in info.lines() {
            if let Some(mp) = line.split(' ').nth(4) {
                if Path::new(mp).starts_with(self.dir.path()) {
                    leaks.push(format!("mount {mp} remains"));
                }
            }
        }
        leaks
    }

    fn teardown(&self) {
        for l in link::links_with_prefix(&self.prefix).unwrap_or_default() {
            let _ = link::delete_link(&l);
        }
        if let Ok(entries) = std::fs::read_dir(self.dir.path().join("netns")) {
            for e in entries.flatten() {
                let _ = netns::remove(&e.path());
            }
        }
        // The directory's own bind mount (netns::create makes it shared).
        let _ = rustix::mount::unmount(
            self.dir.path().join("netns"),
            rustix::mount::UnmountFlags::DETACH,
        );
    }

    fn finish(self) {
        self.teardown();
        let leaks = self.leaks();
        assert!(leaks.is_empty(), "leaks: {leaks:?}");
    }
}

impl Drop for Plumbing {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn random_u32() -> u32 {
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid").unwrap();
    u32::from_str_radix(&uuid[..8], 16).unwrap()
}

/// Runs a command inside the namespace file; its output, or an error with it.
fn nsenter(ns: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(args)
        .output()
        .map_err(|e| format!("nsenter: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// `ip` on the host (tests only; berth-net itself never shells out): its output.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ip {args:?}: {err}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ping(from: &Path, to: impl Into<IpAddr>) -> Result<String, String> {
    nsenter(
        from,
        &["busybox", "ping", "-c1", "-W1", &to.into().to_string()],
    )
}

#[test]
fn two_namespaces_on_a_bridge_ping_each_other_and_the_gateway() {
    let p = Plumbing::new();
    p.ensure_bridge();
    p.ensure_bridge(); // idempotent: nothing added twice, no error
    assert!(link::link_exists(&p.bridge()).unwrap());
    let sysctl = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", p.bridge());
    assert_eq!(std::fs::read_to_string(sysctl).unwrap().trim(), "1");
    let host = link::host_networks().unwrap();
    let subnet: IpNet = format!("{}/24", p.ip(0)).parse().unwrap();
    assert!(host.contains(&subnet), "{subnet} not in {host:?}");
    assert!(
        !host.iter().any(|n| n.prefix_len() == 0),
        "a default route counted: {host:?}"
    );
    let brief = ip(&["-br", "addr", "show", &p.bridge()]);
    assert_eq!(
        brief.matches(&format!("{}/24", p.ip(1))).count(),
        1,
        "{brief}"
    );

    let (a, b) = (p.veth(1, true), p.veth(2, false));
    for spec in [&a, &b] {
        netns::create(&spec.netns).unwrap_or_else(|e| panic!("netns::create: {e}"));
        // lo is up in a new namespace.
        ping(&spec.netns, Ipv4Addr::LOCALHOST).unwrap();
        let start = Instant::now();
        link::attach_veth(spec).unwrap_or_else(|e| panic!("attach_veth {}: {e}", spec.host_name));
        eprintln!("attach_veth {}: {:?}", spec.host_name, start.elapsed());
    }
    assert_eq!(
        link::links_with_prefix(&p.prefix).unwrap(),
        [p.bridge(), a.host_name.clone(), b.host_name.clone()]
    );

    // The container end: name, MAC, MTU, address, up.
    let eth0 = nsenter(&a.netns, &["ip", "-o", "addr", "show", "eth0"]).unwrap();
    assert!(eth0.contains(&format!("inet {}/24", p.ip(2))), "{eth0}");
    let l = nsenter(&a.netns, &["ip", "-o", "link", "show", "eth0"]).unwrap();
    assert!(l.contains("mtu 1400") && l.contains(",UP"), "{l}");
    assert!(
        l.contains(&format!(
            "link/ether 02:42:64:{:02x}:{:02x}:02",
            p.net[1], p.net[2]
        )),
        "{l}"
    );
    // A default route only where a gateway was given.
    let r = nsenter(&a.netns, &["ip", "route", "show", "default"]).unwrap();
    assert_eq!(r.trim(), format!("default via {} dev eth0", p.ip(1)));
    let r = nsenter(&b.netns, &["ip", "route", "show", "default"]).unwrap();
    assert_eq!(r.trim(), "");
    // The host end is a port of the bridge.
    let l = ip(&["-o", "link", "show", &a.host_name]);
    assert!(l.contains(&format!("master {}", p.bridge())), "{l}");
    let d = ip(&["-d", "-o", "link", "show", &a.host_name]);
    assert!(d.contains("hairpin on"), "{d}");

    ping(&a.netns, p.ip(3)).unwrap_or_else(|e| panic!("a -> b: {e}"));
    ping(&b.netns, p.ip(2)).unwrap_or_else(|e| panic!("b -> a: {e}"));
    ping(&a.netns, p.ip(1)).unwrap_or_else(|e| panic!("a -> gateway: {e}"));
    ping(&b.netns, p.ip(1)).unwrap_or_else(|e| panic!("b -> gateway: {e}"));

    // Deleting the host end takes the container end with it.
    link::delete_link(&a.host_name).unwrap();
    link::delete_link(&a.host_name).unwrap(); // absent: still Ok
    assert!(!link::link_exists(&a.host_name).unwrap());
    let gone = nsenter(&a.netns, &["ip", "-o", "link", "show", "eth0"]);
    assert!(gone.is_err(), "eth0 outlived its host end: {gone:?}");
    p.finish();
}

#[test]
fn a_failed_attach_leaves_no_veth_behind() {
    let p = Plumbing::new();
    let spec = p.veth(1, true);
    netns::create(&spec.netns).unwrap();

    // No bridge: refused before anything is made.
    let e = link::attach_veth(&spec).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("link {} does not exist", p.bridge())),
        "{e}"
    );
    assert!(link::links_with_prefix(&spec.host_name).unwrap().is_empty());

    // Fails half-way, inside the namespace (the same address twice): the
    // pair made a moment before is deleted.
    p.ensure_bridge();
    let mut twice = spec.clone();
    twice.addresses.push(twice.addresses[0]);
    let e = link::attach_veth(&twice).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "adding address {} to eth0 in network namespace",
            p.cidr(2)
        )),
        "{text}"
    );
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(
        !link::link_exists(&spec.host_name).unwrap(),
        "the host end remains"
    );
    let inside = nsenter(&spec.netns, &["ip", "-o", "link"]).unwrap();
    assert!(!inside.contains("eth0"), "{inside}");

    // The same spec works afterwards: nothing of the failed attempt is in the way.
    link::attach_veth(&spec).unwrap();

    // A host name that is taken: refused, and the link that was there stays.
    let mut clash = p.veth(2, false);
    clash.host_name = spec.host_name.clone();
    netns::create(&clash.netns).unwrap();
    let e = link::attach_veth(&clash).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(
        link::link_exists(&spec.host_name).unwrap(),
        "an existing link was deleted"
    );
    ping(&spec.netns, p.ip(1)).unwrap();

    // A namespace file that does not exist.
    let mut lost = p.veth(3, false);
    lost.netns = p.netns_path("never-made");
    let e = link::attach_veth(&lost).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(!link::link_exists(&lost.host_name).unwrap());

    // A gateway outside the interface's subnets is refused up front.
    let mut bad = p.veth(4, false);
    bad.gateway4 = Some(Ipv4Addr::new(192, 0, 2, 254));
    assert!(matches!(
        link::attach_veth(&bad),
        Err(NetError::Invalid { .. })
    ));
    p.finish();
}

#[test]
fn ensure_bridge_refuses_a_link_that_is_not_a_bridge() {
    let p = Plumbing::new();
    let name = format!("{}d", p.prefix);
    let peer = format!("{name}p");
    ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]);
    let e = link::ensure_bridge(&BridgeSpec {
        name: name.clone(),
        addresses: vec![],
        mtu: None,
    })
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(
        e.to_string(),
        format!("link {name} exists but is a veth, not a bridge: delete it or choose another name")
    );
    p.finish();
}

#[test]
fn netns_files_are_created_once_and_removed_idempotently() {
    let p = Plumbing::new();
    let path = p.netns_path("n1");
    netns::create(&path).unwrap();
    let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&dir_mode.permissions()) & 0o777,
        0o700
    );
    // A second create on a live namespace is refused, not stacked.
    let e = netns::create(&path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    // A separate namespace: its own lo, none of the host's links.
    let links = netns::in_netns(&path, || {
        let names = link::links_with_prefix("").unwrap();
        let forwarding = link::enable_ip_forward(true).unwrap();
        let again = link::enable_ip_forward(true).unwrap();
        (names, forwarding, again)
    })
    .unwrap();
    assert_eq!(links.0, ["lo"]);
    // Forwarding is per namespace. A new one copies IPv4's from the
    // initial namespace (net.core.devconf_inherit_init_net=0) but starts
    // IPv6's from the kernel's default, off.
    assert_eq!(links.1.ipv6, Some(false));
    assert_eq!((links.2.ipv4, links.2.ipv6), (true, Some(true)));

    netns::remove(&path).unwrap();
    netns::remove(&path).unwrap();
    assert!(!path.exists());
    netns::remove(&p.netns_path("never-made")).unwrap();
    let e = netns::in_netns(&path, || ()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

    // A plain file left by a crash between creating and mounting is reused.
    std::fs::write(&path, b"").unwrap();
    netns::create(&path).unwrap();
    netns::remove(&path).unwrap();
    p.finish();
}

#[test]
fn a_spare_namespace_is_handed_out_once_with_lo_up() {
    let p = Plumbing::new();
    let spare = std::sync::Arc::new(netns::Spare::default());
    // The first start finds none ready, makes its own and starts the spare.
    let first = p.netns_path("s1");
    netns::create_from_spare(&first, &spare).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !spare.is_ready() {
        assert!(Instant::now() < deadline, "no spare namespace was made");
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = p.netns_path("s2");
    netns::create_from_spare(&second, &spare).unwrap();
    // Each file holds a namespace of its own (nsfs inodes name them),
    // neither the host's, with only `lo`, up.
    let ns_inode =
        |path: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap());
    let host = ns_inode(Path::new("/proc/self/ns/net"));
    let inodes = [ns_inode(&first), ns_inode(&second)];
    assert!(
        inodes[0] != inodes[1] && !inodes.contains(&host),
        "{inodes:?} host {host}"
    );
    for path in [&first, &second] {
        let links = nsenter(path, &["ip", "-o", "link", "show"]).unwrap();
        assert_eq!(links.lines().count(), 1, "{links}");
        assert!(links.contains(": lo:") && links.contains(",UP"), "{links}");
    }
    // A spare is made again for the next start; it dies with its holder.
    while !spare.is_ready() {
        assert!(Instant::now() < deadline, "no second spare namespace");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(spare);
    p.finish();
}

#[test]
fn dual_stack_attach_routes_ipv6_too() {
    let p = Plumbing::new();
    let ula = ipam::ula_subnet();
    let v6 = |n: u16| -> IpAddr {
        let mut seg = ula.network().segments();
        seg[7] = n;
        IpAddr::V6(seg.into())
    };
    let cidr6 = |n: u16| IpNet::new(v6(n), 64).unwrap();
    link::ensure_bridge(&BridgeSpec {
        name: p.bridge(),
        addresses: vec![p.cidr(1), cidr6(1)],
        mtu: None,
    })
    .unwrap();
    assert!(link::host_networks().unwrap().contains(&IpNet::V6(ula)));
    let gw6 = match v6(1) {
        IpAddr::V6(g) => g,
        IpAddr::V4(_) => unreachable!(),
    };
    let mut specs = Vec::new();
    for n in 1..=2u8 {
        let mut s = p.veth(n, n == 1);
        s.addresses.push(cidr6(u16::from(n) + 1));
        s.gateway6 = (n == 1).then_some(gw6);
        s.mtu = None;
        netns::create(&s.netns).unwrap();
        link::attach_veth(&s).unwrap_or_else(|e| panic!("{e}"));
        specs.push(s);
    }
    let r = nsenter(&specs[0].netns, &["ip", "-6", "route", "show", "default"]).unwrap();
    assert!(r.starts_with(&format!("default via {gw6} dev eth0")), "{r}");
    let r = nsenter(&specs[1].netns, &["ip", "-6", "route", "show", "default"]).unwrap();
    assert_eq!(r.trim(), "");
    // No duplicate address detection: usable at once, never "tentative".
    let a = nsenter(&specs[0].netns, &["ip", "-6", "-o", "addr", "show", "eth0"]).unwrap();
    let global = a.lines().find(|l| l.contains(&cidr6(2).to_string()));
    assert!(global.is_some_and(|l| !l.contains("tentative")), "{a}");
    ping(&specs[0].netns, v6(3)).unwrap_or_else(|e| panic!("a -> b over IPv6: {e}"));
    ping(&specs[1].netns, v6(2)).unwrap_or_else(|e| panic!("b -> a over IPv6: {e}"));
    ping(&specs[0].netns, v6(1)).unwrap_or_else(|e| panic!("a -> gateway over IPv6: {e}"));
    ping(&specs[1].netns, p.ip(2)).unwrap_or_else(|e| panic!("b -> a over IPv4: {e}"));
    p.finish();
}

/// Whether `pid`'s mount namespace has a mount at `path`.
fn mounted_in(pid: u32, path: &Path) -> bool {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|mp| Path::new(mp) == path))
}

#[test]
fn remove_reaches_the_copies_in_mount_namespaces_made_later() {
    let p = Plumbing::new();
    let path = p.netns_path("n1");
    netns::create(&path).unwrap();
    // The directory is a mount of its own, shared, in a peer group that is
    // not its parent's.
    let dir = path.parent().unwrap();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4).is_some_and(|mp| Path::new(mp) == dir))
        .unwrap_or_else(|| panic!("{} is not a mount point", dir.display()));
    assert!(line.contains(" shared:"), "{line}");
    // Namespaces made after it, as systemd services and container runtimes
    // make theirs (shared copies, or slave ones), each hold a copy ...
    let mut children: Vec<std::process::Child> = ["unchanged", "slave"]
        .iter()
        .map(|prop| {
            Command::new("unshare")
                .args(["-m", "--propagation", prop, "sleep", "30"])
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    for c in &children {
        while !mounted_in(c.id(), &path) {
            assert!(
                Instant::now() < deadline,
                "no copy in {}'s namespace",
                c.id()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // ... which the unmount reaches: nothing keeps the namespace alive.
    netns::remove(&path).unwrap();
    let kept: Vec<u32> = children
        .iter()
        .map(|c| c.id())
        .filter(|pid| mounted_in(*pid, &path))
        .collect();
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(
        kept.is_empty(),
        "namespaces {kept:?} kept a copy of {}",
        path.display()
    );
    p.finish();
}

#[test]
fn attach_is_fast() {
    const N: u8 = 20;
    let p = Plumbing::new();
    p.ensure_bridge();
    let specs: Vec<VethSpec> = (1..=N).map(|n| p.veth(n, true)).collect();
    let mut creates = Vec::new();
    for s in &specs {
        let t = Instant::now();
        netns::create(&s.netns).unwrap();
        creates.push(t.elapsed());
    }
    let mut attaches = Vec::new();
    for s in &specs {
        let t = Instant::now();
        link::attach_veth(s).unwrap_or_else(|e| panic!("{e}"));
        attaches.push(t.elapsed());
    }
    creates.sort();
    attaches.sort();
    let median = |v: &[Duration]| v[v.len() / 2];
    eprintln!(
        "netns::create median {:?} (max {:?}); attach_veth median {:?} (max {:?}) over {N}",
        median(&creates),
        creates.last().unwrap(),
        median(&attaches),
        attaches.last().unwrap()
    );
    // Generous for a loaded 2-core machine; the numbers above are the measure.
    assert!(
        median(&attaches) < Duration::from_millis(50),
        "{attaches:?}"
    );
    let used: BTreeSet<IpAddr> = specs.iter().map(|s| s.addresses[0].addr()).collect();
    assert_eq!(used.len(), N as usize);
    p.finish();
}
