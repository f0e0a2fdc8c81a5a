//! Networking through berthd, driven by the real docker CLI: user networks
//! with names and aliases, isolation between networks, outbound NAT to a
//! server in another network namespace (no traffic leaves the machine),
//! published ports from the host and from outside, port conflicts,
//! `--internal`, and live restore of ports and DNS after `kill -9` of the
//! daemon. Each test ends with `Berthd::stop`, whose leak check covers
//! netns files, veths on the daemon's bridge and the DNS server.

use berth_integration::daemon::{has_docker, Berthd, TestNet};
use berth_integration::netcheck::{curl, host_port, poll as eventually, web};
use berth_integration::{require_root, text};
use serde_json::Value;
use std::process::Command;

fn sh(script: &str) -> std::process::Output {
    Command::new("sh")
        .args(["-c", script])
        .output()
        .expect("sh")
}

// Commands that may hang run under `sh -c 'timeout N ... || exit 1'`: as the
// container's PID 1, busybox's timeout execs the command itself, and a
// PID 1 ignores the SIGTERM meant to end it (and sh execs a lone last
// command, so the `|| exit 1` keeps sh as PID 1).

#[test]
fn user_networks_resolve_names_and_aliases_and_stay_apart() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let (s1, s2) = (TestNet::subnet(), TestNet::subnet());
    d.docker_ok(&["network", "create", "--subnet", &s1, "front"]);
    d.docker_ok(&["network", "create", "--subnet", &s2, "back"]);
    web(
        &d,
        "web",
        &["--network", "front", "--network-alias", "www"],
        "hello-web",
    );
    web(
        &d,
        "web2",
        &["--network", "front", "--network-alias", "www"],
        "hello-web",
    );

    // By name, by alias, by short id; ping and fetch.
    for host in ["web", "www", "web.front"] {
        let out = eventually(10, "fetching by name", || {
            let out = d.docker(&[
                "run",
                "--rm",
                "--network",
                "front",
                "bb:1",
                "sh",
                "-c",
                &format!("timeout 3 wget -qO- http://{host}/ || exit 1"),
            ]);
            out.status.success().then(|| text(&out.stdout))
        });
        assert_eq!(out, "hello-web\n", "{host}");
    }
    d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        "bb:1",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "web",
    ]);
    // The shared alias answers with both containers.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        "bb:1",
        "nslookup",
        "www",
    ]);
    let ip1 = d.inspect("web")["NetworkSettings"]["Networks"]["front"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let ip2 = d.inspect("web2")["NetworkSettings"]["Networks"]["front"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(out.contains(&ip1) && out.contains(&ip2), "{out}");
    assert_ne!(ip1, ip2);
    // resolv.conf points at berth's DNS on the gateway.
    let resolv = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        "bb:1",
        "cat",
        "/etc/resolv.conf",
    ]);
    let gateway = s1.replace(".0/24", ".1");
    assert!(
        resolv.contains(&format!("nameserver {gateway}")),
        "{resolv}"
    );

    // Another network: no route to the first, no names from it.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "back",
        "bb:1",
        "sh",
        "-c",
        &format!("timeout 3 wget -qO- http://{ip1}/ || exit 1"),
    ]);
    assert!(
        !out.status.success(),
        "back reached front: {}",
        text(&out.stdout)
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "back",
        "bb:1",
        "sh",
        "-c",
        "timeout 5 nslookup web || exit 1",
    ]);
    assert!(!out.status.success() || !text(&out.stdout).contains(&ip1));

    // The network's inspect lists its containers; a used network stays.
    let net: Value = serde_json::from_str(&d.docker_ok(&["network", "inspect", "front"])).unwrap();
    assert_eq!(net[0]["Containers"].as_object().unwrap().len(), 2, "{net}");
    assert_eq!(net[0]["IPAM"]["Config"][0]["Subnet"], s1.as_str());
    let out = d.docker(&["network", "rm", "front"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("active endpoints"),
        "{}",
        text(&out.stderr)
    );

    d.docker_ok(&["rm", "-f", "web", "web2"]);
    d.docker_ok(&["network", "rm", "front", "back"]);
    d.stop();
}

/// A network namespace standing for another host: a veth to this host
/// (`host_ip` here, `peer_ip` there, a /30) and a busybox httpd whose CGI
/// answers with the client's address.
struct OutsideHost {
    name: String,
    host_ip: String,
    peer_ip: String,
    dir: tempfile::TempDir,
}

impl OutsideHost {
    fn start() -> OutsideHost {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        // A /30 no route on the host uses yet (a leftover of a killed run
        // would take the traffic meant for this one).
        let routes = text(&sh("ip -4 route show").stdout);
        let (n, third) = loop {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let third = ((std::process::id() % 60) * 4 + n) % 250;
            if n >= 250 || !routes.contains(&format!("198.18.{third}.0/30")) {
                break (n, third);
            }
        };
        let tag = format!("{:03}{n}", std::process::id() % 1000);
        let host_ip = format!("198.18.{third}.1");
        let peer_ip = format!("198.18.{third}.2");
        let name = format!("bo{tag}");
        let dir = tempfile::tempdir().unwrap();
        let cgi = dir.path().join("cgi-bin");
        std::fs::create_dir_all(&cgi).unwrap();
        std::fs::write(
            cgi.join("who"),
            "#!/bin/busybox sh\necho 'Content-Type: text/plain'\necho\necho \"$REMOTE_ADDR\"\n",
        )
        .unwrap();
        sh(&format!("chmod 755 {}/who", cgi.display()));
        let script = format!(
            "set -e; ip netns add {name}; ip link add {name}h type veth peer name {name}p; \
             ip link set {name}p netns {name}; ip addr add {host_ip}/30 dev {name}h; ip link set {name}h up; \
             ip netns exec {name} ip addr add {peer_ip}/30 dev {name}p; ip netns exec {name} ip link set {name}p up; \
             ip netns exec {name} ip link set lo up; \
             ip netns exec {name} ip route add default via {host_ip}; \
             ip netns exec {name} busybox httpd -p 8080 -h {dir}",
            dir = dir.path().display()
        );
        let out = sh(&script);
        assert!(out.status.success(), "outside host: {}", text(&out.stderr));
        OutsideHost {
            name,
            host_ip,
            peer_ip,
            dir,
        }
    }
}

impl Drop for OutsideHost {
    fn drop(&mut self) {
        // `[h]ttpd`: the pattern must not match this `sh -c` itself, or
        // pkill kills the shell before it deletes the namespace (which
        // left a netns and a veth behind after every run).
        sh(&format!(
            "pkill -f '[h]ttpd -p 8080 -h {}'; ip netns del {name}; ip link del {name}h 2>/dev/null; true",
            self.dir.path().display(),
            name = self.name
        ));
    }
}

#[test]
fn outbound_nat_published_ports_conflicts_and_internal() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let outside = OutsideHost::start();
    let who = format!("http://{}:8080/cgi-bin/who", outside.peer_ip);

    // Outbound: the outside host sees this host's address, not the
    // container's (masquerade).
    let seen = eventually(10, "outbound fetch", || {
        let out = d.docker(&[
            "run",
            "--rm",
            "bb:1",
            "sh",
            "-c",
            &format!("timeout 3 wget -qO- {who} || exit 1"),
        ]);
        out.status.success().then(|| text(&out.stdout))
    });
    // busybox httpd gives IPv4 peers as [::ffff:a.b.c.d].
    let seen = seen.trim().trim_start_matches('[').trim_end_matches(']');
    assert_eq!(
        seen.trim_start_matches("::ffff:"),
        outside.host_ip,
        "masqueraded to the host's address"
    );

    // --internal: no way out.
    d.docker_ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        &TestNet::subnet(),
        "inner",
    ]);
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "inner",
        "bb:1",
        "sh",
        "-c",
        &format!("timeout 3 wget -qO- {who} || exit 1"),
    ]);
    assert!(
        !out.status.success(),
        "an internal network reached out: {}",
        text(&out.stdout)
    );

    // Published ports: random on every address, and one on loopback only.
    web(
        &d,
        "pub",
        &["-p", "80", "-p", "127.0.0.1::80/tcp"],
        "published",
    );
    let ports = d.docker_ok(&["port", "pub"]);
    assert!(ports.lines().count() >= 2, "{ports}");
    let any_port = ports
        .lines()
        .find(|l| l.contains("0.0.0.0:"))
        .and_then(|l| l.rsplit(':').next())
        .unwrap()
        .trim()
        .to_string();
    let lo_port = ports
        .lines()
        .find(|l| l.contains("127.0.0.1:"))
        .and_then(|l| l.rsplit(':').next())
        .unwrap()
        .trim()
        .to_string();
    for url in [
        format!("http://127.0.0.1:{any_port}/"),
        format!("http://127.0.0.1:{lo_port}/"),
        format!("http://{}:{any_port}/", outside.host_ip),
    ] {
        let body = eventually(10, &url, || curl(&url));
        assert_eq!(body, "published\n", "{url}");
    }
    // From the other host: the all-addresses port answers, the loopback
    // one does not.
    let from_outside = |port: &str| {
        sh(&format!(
            "ip netns exec {} busybox timeout 3 busybox wget -qO- http://{}:{port}/",
            outside.name, outside.host_ip
        ))
    };
    let out = from_outside(&any_port);
    assert_eq!(text(&out.stdout), "published\n", "{}", text(&out.stderr));
    assert!(!from_outside(&lo_port).status.success());
    // Hairpin: a container reaches a published port through the host.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "bb:1",
        "sh",
        "-c",
        &format!(
            "timeout 3 wget -qO- http://{}:{any_port}/ || exit 1",
            outside.host_ip
        ),
    ]);
    assert_eq!(out, "published\n");

    // The same host port twice: docker's conflict.
    let fixed = host_port(&d, "pub", "80/tcp");
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("{fixed}:80"),
        "bb:1",
        "sleep",
        "60",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("port is already allocated"),
        "{}",
        text(&out.stderr)
    );
    let _ = d.docker(&["rm", "-f", "clash"]);

    d.docker_ok(&["rm", "-f", "pub"]);
    // Released: the port no longer answers.
    assert!(curl(&format!("http://127.0.0.1:{any_port}/")).is_none());
    d.docker_ok(&["network", "rm", "inner"]);
    d.stop();
    drop(outside);
}

#[test]
fn ports_and_names_survive_a_daemon_kill_and_restart() {
    if !require_root() || !has_docker() {
        return;
    }
    let mut d = Berthd::with_busybox(&[]);
    let subnet = TestNet::subnet();
    let gateway = subnet.replace(".0/24", ".1");
    d.docker_ok(&["network", "create", "--subnet", &subnet, "keep"]);
    let id = web(&d, "kept", &["--network", "keep", "-p", "80"], "still-here");
    let port = host_port(&d, "kept", "80/tcp");
    let url = format!("http://127.0.0.1:{port}/");
    eventually(10, "the published port", || curl(&url));
    let table_before = text(
        &Command::new("nft")
            .args(["list", "table", "inet", &d.net.table])
            .output()
            .unwrap()
            .stdout,
    );
    let netns = d.exec_root.join("netns").join(&id);
    let lookup = || {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", netns.display()))
            .args(["busybox", "nslookup", "kept", &gateway])
            .output()
            .unwrap();
        text(&out.stdout)
    };
    let ip = d.inspect("kept")["NetworkSettings"]["Networks"]["keep"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(lookup().contains(&ip), "{}", lookup());

    d.crash();
    // berthd is down: the port and the names still answer.
    assert_eq!(curl(&url).as_deref(), Some("still-here\n"));
    assert!(
        lookup().contains(&ip),
        "DNS while berthd is down: {}",
        lookup()
    );

    d.restart();
    assert_eq!(curl(&url).as_deref(), Some("still-here\n"));
    assert!(lookup().contains(&ip));
    let table_after = text(
        &Command::new("nft")
            .args(["list", "table", "inet", &d.net.table])
            .output()
            .unwrap()
            .stdout,
    );
    assert_eq!(
        table_before, table_after,
        "the rebuilt table is the same, once"
    );

    d.docker_ok(&["rm", "-f", "kept"]);
    d.docker_ok(&["network", "rm", "keep"]);
    d.stop();
}

/// As dockerd with an existing docker0: a default bridge that already has
/// an address (made by hand, or left by an earlier daemon on another data
/// root) keeps it when no `--bip` is given, rather than gaining another
/// 172.x range at every start.
#[test]
fn an_existing_default_bridge_keeps_its_address() {
    if !require_root() {
        return;
    }
    let net = TestNet::new();
    let made = sh(&format!(
        "ip link add {b} type bridge && ip addr add {a} dev {b}",
        b = net.bridge,
        a = net.bip
    ));
    assert!(made.status.success(), "{}", text(&made.stderr));
    let d = Berthd::start_without_bip(net.clone());
    let (status, body) = d.api("GET", "/networks/bridge", None);
    assert_eq!(status, 200, "{}", text(&body));
    let ipam: Value = serde_json::from_slice(&body).unwrap();
    let gateway = net.bip.split('/').next().unwrap();
    assert_eq!(ipam["IPAM"]["Config"][0]["Gateway"], gateway, "{ipam}");
    let subnet = format!("{}.0/24", gateway.rsplit_once('.').unwrap().0);
    assert_eq!(
        ipam["IPAM"]["Config"][0]["Subnet"],
        subnet.as_str(),
        "{ipam}"
    );
    let addrs = text(&sh(&format!("ip -4 -o addr show dev {}", net.bridge)).stdout);
    assert_eq!(
        addrs.lines().count(),
        1,
        "one address on the bridge: {addrs}"
    );
    d.stop();
}

/// `run --rm` returns before the kernel has deleted the container's veth
/// (berthd tears it down after telling the client), so the next start must
/// not be handed that address early, and one asking for it by `--ip` gets
/// it once the old veth is gone: back-to-back `run --rm --ip A` all succeed
/// with A on eth0, and automatic addresses never collide with it.
#[test]
fn a_fixed_address_is_reused_right_after_run_rm() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let subnet = TestNet::subnet();
    let fixed = subnet.replace(".0/24", ".50");
    d.docker_ok(&["network", "create", "--subnet", &subnet, "fixed"]);
    let check = format!("ip -4 addr show eth0 | grep -q 'inet {fixed}/24'");
    for _ in 0..5 {
        d.docker_ok(&[
            "run",
            "--rm",
            "--network",
            "fixed",
            "--ip",
            &fixed,
            "bb:1",
            "sh",
            "-c",
            &check,
        ]);
        // An automatic address meanwhile: never the fixed one, and its own.
        let auto = d.docker_ok(&[
            "run",
            "--rm",
            "--network",
            "fixed",
            "bb:1",
            "sh",
            "-c",
            "ip -4 -o addr show eth0",
        ]);
        assert!(!auto.contains(&format!("inet {fixed}/")), "{auto}");
    }
    d.docker_ok(&["network", "rm", "fixed"]);
    d.stop();
}
