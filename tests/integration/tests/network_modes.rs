//! Networking through berthd beyond tests/networks.rs, driven by the real
//! docker CLI: the `host`, `none` and `container:<name>` modes; IPv6
//! (ULA) networks with addresses, names (AAAA) and inspect; published
//! udp ports, port ranges, `-P` with `--expose` and the image's EXPOSE,
//! `docker port`, ports bound to one host address and over IPv6; network
//! create's options (`--ip-range`, `--gateway`, `--label`, the bridge's
//! name), network inspect's shape, `network prune`, and that nothing of
//! a network (database rows, veths, namespace files, nft rules) is left
//! once its containers and itself are removed. Each test ends with
//! `Berthd::stop` and its leak check.

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_integration::daemon::{has_docker, Berthd, TestNet};
use berth_integration::netcheck::{curl, host_port, poll, web};
use berth_integration::{require_root, text};
use serde_json::Value;

// Commands that may hang run as `sh -c 'timeout N cmd || exit 1'` (see
// tests/networks.rs: a PID 1 ignores timeout's SIGTERM).

/// The container's one network's settings in `docker inspect`.
fn endpoint(d: &Berthd, name: &str, network: &str) -> Value {
    d.inspect(name)["NetworkSettings"]["Networks"][network].clone()
}

fn field(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// Interface names (`ip -o link`) as a container sees them.
fn links_in(d: &Berthd, name: &str) -> Vec<String> {
    let out = d.docker_ok(&["exec", name, "ip", "-o", "link"]);
    out.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// The host's links whose names start with `prefix`.
fn host_links(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// The host veths of a container (berth names them `vb` + 12 id digits).
fn veths_of(id: &str) -> Vec<String> {
    host_links(&format!("vb{}", &id[..12]))
}

fn netns_files(d: &Berthd) -> Vec<String> {
    std::fs::read_dir(d.exec_root.join("netns"))
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// One number from berth's database (`sqlite3`, read-only), or `None`
/// when the CLI is missing.
fn db_count(d: &Berthd, sql: &str) -> Option<u64> {
    let db = d.data_root.join("berth.db");
    let out = Command::new("sqlite3")
        .arg("-readonly")
        .arg(&db)
        .arg(sql)
        .output()
        .ok()?;
    assert!(out.status.success(), "sqlite3 {sql}: {}", text(&out.stderr));
    Some(text(&out.stdout).trim().parse().expect("a count"))
}

fn nft_table(d: &Berthd) -> String {
    text(
        &Command::new("nft")
            .args(["list", "table", "inet", &d.net.table])
            .output()
            .unwrap()
            .stdout,
    )
}

/// A /64 of fd00::/8 for one test network, unique per process and call.
fn ula_subnet() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("fd00:b7:{:x}:{:x}::/64", std::process::id() % 0xffff, n + 1)
}

/// A base for fixed host ports: three free in a row, away from the
/// ephemeral range and from other test processes' bases.
fn port_base() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = 20000 + (std::process::id() % 1000) as u16 * 10 + n * 3;
    assert!(
        (0..3).all(|i| std::net::TcpListener::bind(("0.0.0.0", base + i)).is_ok()),
        "host ports from {base} are taken"
    );
    base
}

/// A test daemon with busybox as `bb:1`; `None` (skipped, said on
/// stderr) without root or the docker CLI.
fn daemon() -> Option<Berthd> {
    (require_root() && has_docker()).then(|| Berthd::with_busybox(&[]))
}

#[test]
fn host_none_and_container_network_modes() {
    let Some(d) = daemon() else { return };

    // host: the host's interfaces (this daemon's bridge among them), no
    // namespace file and no veth of its own.
    let id = d
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "onhost",
            "--network",
            "host",
            "bb:1",
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    let links = links_in(&d, "onhost");
    assert!(links.contains(&d.net.bridge), "{links:?}");
    assert!(netns_files(&d).is_empty(), "{:?}", netns_files(&d));
    assert!(veths_of(&id).is_empty());
    let c = d.inspect("onhost");
    assert_eq!(c["HostConfig"]["NetworkMode"], "host");
    assert!(c["NetworkSettings"]["Networks"]["host"].is_object(), "{c}");
    assert_eq!(c["NetworkSettings"]["Networks"]["host"]["IPAddress"], "");
    // The host's own /etc/hosts, as docker's; with --add-host, the
    // container's own file with that line.
    let hosts = d.docker_ok(&["exec", "onhost", "cat", "/etc/hosts"]);
    assert_eq!(hosts, std::fs::read_to_string("/etc/hosts").unwrap());
    let hosts = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--add-host",
        "db:10.1.2.3",
        "bb:1",
        "cat",
        "/etc/hosts",
    ]);
    assert!(hosts.contains("10.1.2.3\tdb\n"), "{hosts}");
    // Without an address of its own the hostname gets no line (docker's).
    assert!(!hosts.contains("127.0.1.1"), "{hosts}");

    // none: loopback only, and up (docker's none has 127.0.0.1 and ::1).
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "ip -o link; ip -o addr",
    ]);
    let names: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("link/"))
        .filter_map(|l| l.split(": ").nth(1))
        .collect();
    assert_eq!(names, ["lo"], "{out}");
    assert!(
        out.contains("127.0.0.1/8") && out.contains("::1/128"),
        "{out}"
    );

    // container:<name>: the other's namespace, so its addresses.
    d.docker_ok(&["network", "create", "--subnet", &TestNet::subnet(), "modes"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "na",
        "--network",
        "modes",
        "bb:1",
        "sleep",
        "60",
    ]);
    let ip_a = field(&endpoint(&d, "na", "modes"), "IPAddress");
    let b = d
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "nb",
            "--network",
            "container:na",
            "bb:1",
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    let addrs = d.docker_ok(&["exec", "nb", "ip", "-o", "addr"]);
    assert!(addrs.contains(&format!("{ip_a}/")), "{addrs}");
    assert_eq!(
        links_in(&d, "nb"),
        links_in(&d, "na"),
        "one namespace, one set of links"
    );
    assert!(veths_of(&b).is_empty(), "b has no veth of its own");
    // docker 20.10 rewrites it to container:<na's full id> at start.
    let mode = d.inspect("nb")["HostConfig"]["NetworkMode"].clone();
    assert!(mode.as_str().unwrap().starts_with("container:"), "{mode}");
    // b reaches a's loopback: the same namespace.
    d.docker_ok(&[
        "exec",
        "-d",
        "na",
        "sh",
        "-c",
        "mkdir -p /w && echo on-a > /w/index.html && exec httpd -f -p 127.0.0.1:8080 -h /w",
    ]);
    let got = poll(10, "a's loopback server from b", || {
        let out = d.docker(&[
            "exec",
            "nb",
            "sh",
            "-c",
            "timeout 3 wget -qO- http://127.0.0.1:8080/ || exit 1",
        ]);
        out.status.success().then(|| text(&out.stdout))
    });
    assert_eq!(got, "on-a\n");

    // Refused clearly when the other does not run (docker: "cannot join
    // network of a non running container").
    d.docker_ok(&["create", "--name", "idle", "bb:1", "sleep", "60"]);
    let out = d.docker(&["run", "--rm", "--network", "container:idle", "bb:1", "true"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("non running container"),
        "{}",
        text(&out.stderr)
    );
    // A missing one: created (docker checks at start), then refused at
    // start without a pull (a 404 from create would make the CLI pull).
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:nosuch",
        "bb:1",
        "true",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("No such container: nosuch")
            && !text(&out.stderr).contains("Unable to find image"),
        "{}",
        text(&out.stderr)
    );

    // The other stops: as with docker, b keeps running in the namespace,
    // which loses the veth (loopback is left) and is not re-joined when a
    // starts again.
    d.docker_ok(&["stop", "-t", "1", "na"]);
    assert_eq!(d.inspect("nb")["State"]["Running"], true);
    let addrs = d.docker_ok(&["exec", "nb", "ip", "-o", "addr"]);
    assert!(
        !addrs.contains(&ip_a) && addrs.contains("127.0.0.1"),
        "{addrs}"
    );
    assert_eq!(links_in(&d, "nb"), ["lo"]);
    d.docker_ok(&["start", "na"]);
    assert_eq!(links_in(&d, "nb"), ["lo"]);

    d.docker_ok(&["rm", "-f", "onhost", "na", "nb", "idle"]);
    d.docker_ok(&["network", "rm", "modes"]);
    assert!(netns_files(&d).is_empty(), "{:?}", netns_files(&d));

    // A missing network fails the start, not the create (whose 404 makes
    // the docker CLI try to pull the image), with docker's words.
    let out = d.docker(&["run", "--rm", "--network", "nosuchnet", "bb:1", "true"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("network nosuchnet not found"), "{err}");
    assert!(!err.contains("Unable to find image"), "{err}");
    // none (or host) with another network is refused, not half-honoured.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--network",
        "host",
        "bb:1",
        "true",
    ]);
    let err = text(&out.stderr);
    assert!(
        err.contains("Container cannot be connected to network endpoints: host, none"),
        "{err}"
    );
    assert_eq!(d.docker_ok(&["ps", "-aq"]).trim(), "");
    d.stop();
}

#[test]
fn a_disabled_default_bridge_starts_default_containers_without_network() {
    if !(require_root() && has_docker()) {
        return;
    }
    let d = Berthd::with_busybox_bridge_disabled();
    // As dockerd's --bridge=none: no `bridge` network to list.
    let names = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(
        names.split_whitespace().collect::<Vec<_>>(),
        ["host", "none"]
    );
    // A container on the default network (or naming `bridge`) starts with
    // loopback only, as dockerd's does, instead of failing its start.
    for network in [None, Some("bridge")] {
        let mut args = vec!["run", "--rm"];
        args.extend(network.iter().flat_map(|n| ["--network", *n]));
        args.extend(["bb:1", "sh", "-c", "ip -o link; ip -o -4 addr"]);
        let out = d.docker_ok(&args);
        let links: Vec<&str> = out.lines().filter(|l| l.contains("link/")).collect();
        assert_eq!(links.len(), 1, "{network:?}: {out}");
        assert!(
            links[0].contains(": lo:") && links[0].contains(",UP"),
            "{out}"
        );
        assert!(out.contains("inet 127.0.0.1/8"), "{out}");
    }
    // A user network still joins beside it, the disabled bridge left out.
    d.docker_ok(&["network", "create", "--subnet", "10.241.7.0/24", "own"]);
    let out = d.docker_ok(&[
        "create",
        "--name",
        "both",
        "--network",
        "bridge",
        "bb:1",
        "ip",
        "-o",
        "-4",
        "addr",
    ]);
    assert!(!out.trim().is_empty());
    d.docker_ok(&["network", "connect", "own", "both"]);
    d.docker_ok(&["start", "both"]);
    d.docker_ok(&["wait", "both"]);
    let logs = d.docker_ok(&["logs", "both"]);
    assert!(logs.contains("inet 10.241.7."), "{logs}");
    d.docker_ok(&["rm", "both"]);
    d.docker_ok(&["network", "rm", "own"]);
    d.stop();
}

#[test]
fn ipv6_networks_give_addresses_names_and_inspect() {
    let Some(d) = daemon() else { return };
    let (v4, v6) = (TestNet::subnet(), ula_subnet());
    let prefix6 = v6.trim_end_matches("::/64");
    d.docker_ok(&[
        "network", "create", "--ipv6", "--subnet", &v4, "--subnet", &v6, "six",
    ]);
    let net: Value = serde_json::from_str(&d.docker_ok(&["network", "inspect", "six"])).unwrap();
    assert_eq!(net[0]["EnableIPv6"], true, "{net}");
    let configs = net[0]["IPAM"]["Config"].as_array().unwrap();
    assert!(
        configs.iter().any(|c| c["Subnet"] == v6.as_str()),
        "{configs:?}"
    );
    assert!(
        configs
            .iter()
            .any(|c| c["Gateway"] == format!("{prefix6}::1").as_str()),
        "{configs:?}"
    );

    web(&d, "w6", &["--network", "six"], "over-six");
    let e = endpoint(&d, "w6", "six");
    let addr6 = field(&e, "GlobalIPv6Address");
    assert!(addr6.starts_with(&format!("{prefix6}::")), "{e}");
    assert_eq!(field(&e, "IPv6Gateway"), format!("{prefix6}::1"), "{e}");
    assert_eq!(e["GlobalIPv6PrefixLen"], 64, "{e}");
    assert!(!field(&e, "IPAddress").is_empty(), "dual stack: {e}");
    // The top-level (default network) fields stay docker's: empty for a
    // user-defined network.
    let top = &d.inspect("w6")["NetworkSettings"];
    assert_eq!(top["GlobalIPv6Address"], "", "{top}");

    // --ip6: the address asked for.
    let fixed = format!("{prefix6}::99");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "c6",
        "--network",
        "six",
        "--ip6",
        &fixed,
        "bb:1",
        "sleep",
        "60",
    ]);
    assert_eq!(
        field(&endpoint(&d, "c6", "six"), "GlobalIPv6Address"),
        fixed
    );
    let addrs = d.docker_ok(&["exec", "c6", "ip", "-o", "-6", "addr"]);
    assert!(addrs.contains(&format!("{fixed}/64")), "{addrs}");
    let hosts = d.docker_ok(&["exec", "c6", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{fixed}\t")), "{hosts}");
    // docker turns IPv6 forwarding on for an IPv6 network.
    let forwarding = std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/forwarding").unwrap();
    assert_eq!(forwarding.trim(), "1");
    let routes = d.docker_ok(&["exec", "c6", "ip", "-6", "route"]);
    assert!(
        routes.contains(&format!("default via {prefix6}::1")),
        "{routes}"
    );

    // Reachable over IPv6 by address and by name (AAAA from berth-dns).
    d.docker_ok(&["exec", "c6", "ping", "-6", "-c", "1", "-W", "2", &addr6]);
    let got = poll(10, "fetch over IPv6", || {
        let out = d.docker(&[
            "exec",
            "c6",
            "sh",
            "-c",
            &format!("timeout 3 wget -qO- http://[{addr6}]/ || exit 1"),
        ]);
        out.status.success().then(|| text(&out.stdout))
    });
    assert_eq!(got, "over-six\n");
    let out = d.docker_ok(&[
        "exec",
        "c6",
        "sh",
        "-c",
        "timeout 5 nslookup -type=AAAA w6 || exit 1",
    ]);
    assert!(out.contains(&addr6), "{out}");
    d.docker_ok(&["exec", "c6", "ping", "-6", "-c", "1", "-W", "2", "w6"]);
    // The gateway (the host) answers on IPv6 too.
    d.docker_ok(&[
        "exec",
        "c6",
        "ping",
        "-6",
        "-c",
        "1",
        "-W",
        "2",
        &format!("{prefix6}::1"),
    ]);
    // A taken --ip6 is refused.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "six",
        "--ip6",
        &fixed,
        "bb:1",
        "true",
    ]);
    assert!(!out.status.success());

    d.docker_ok(&["rm", "-f", "w6", "c6"]);
    d.docker_ok(&["network", "rm", "six"]);
    d.stop();
}

/// A UDP server on port 53 answering each datagram with `pong ` and the
/// datagram. busybox's `nc` here has no `-u` and there is no other UDP
/// server in it, so the host's python3 runs in the container, from a
/// read-only bind of the host's /usr through its own dynamic loader.
fn udp_pong(d: &Berthd, name: &str, extra: &[&str]) {
    let loader = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
    assert!(
        Path::new(loader).exists() && Path::new("/usr/bin/python3").exists(),
        "the UDP server needs the host's python3 and {loader}"
    );
    let server = "import socket\n\
                  s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n\
                  s.bind(('::', 53))\n\
                  while True:\n    d, a = s.recvfrom(100)\n    s.sendto(b'pong ' + d, a)\n";
    let mut args = vec![
        "run",
        "-d",
        "--name",
        name,
        "-v",
        "/usr:/host/usr:ro",
        "-e",
        "PYTHONHOME=/host/usr",
    ];
    args.extend_from_slice(extra);
    let loader_in = format!("/host{loader}");
    args.extend_from_slice(&[
        "bb:1",
        &loader_in,
        "--library-path",
        "/host/usr/lib/x86_64-linux-gnu",
        "/host/usr/bin/python3",
        "-c",
        server,
    ]);
    d.docker_ok(&args);
}

/// Sends `ping` to `to` over UDP; the answer, if one comes within 1 s.
fn udp_ask(to: &str) -> Option<String> {
    let bind = if to.starts_with('[') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let s = UdpSocket::bind(bind).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    s.send_to(b"ping\n", to).ok()?;
    let mut buf = [0u8; 64];
    let n = s.recv(&mut buf).ok()?;
    Some(text(&buf[..n]))
}

#[test]
fn published_udp_ranges_publish_all_and_host_addresses() {
    let Some(d) = daemon() else { return };

    // udp: `-p HOST:53/udp`.
    let base = port_base();
    udp_pong(&d, "dns", &["-p", &format!("{base}:53/udp")]);
    let answer = poll(10, "the udp port", || udp_ask(&format!("127.0.0.1:{base}")));
    assert_eq!(answer, "pong ping\n");
    assert_eq!(
        d.docker_ok(&["port", "dns"]).trim(),
        format!("53/udp -> 0.0.0.0:{base}")
    );
    assert_eq!(
        d.docker_ok(&["port", "dns", "53/udp"]).trim(),
        format!("0.0.0.0:{base}")
    );
    // Not published as tcp.
    assert!(!d.docker(&["port", "dns", "53/tcp"]).status.success());

    // A range: `-p A-C:80-82`, one server per port.
    let range = port_base();
    let script = "for p in 80 81 82; do mkdir -p /w$p && echo port-$p > /w$p/index.html; \
                  httpd -p $p -h /w$p; done; exec sleep 600";
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "many",
        "-p",
        &format!("{range}-{}:80-82", range + 2),
        "bb:1",
        "sh",
        "-c",
        script,
    ]);
    let ports = d.docker_ok(&["port", "many"]);
    for i in 0..3u16 {
        let line = format!("{}/tcp -> 0.0.0.0:{}", 80 + i, range + i);
        assert!(ports.contains(&line), "{line} in {ports}");
        let url = format!("http://127.0.0.1:{}/", range + i);
        assert_eq!(poll(10, &url, || curl(&url)), format!("port-{}\n", 80 + i));
    }

    // -P: the image's EXPOSE and --expose, each on a random host port.
    let tar = berth_integration::peers::busybox_tar(d.dir.path());
    d.docker_ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "EXPOSE 81",
        tar.to_str().unwrap(),
        "bb:exposed",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "all",
        "-P",
        "--expose",
        "82",
        "bb:exposed",
        "sh",
        "-c",
        script,
    ]);
    let ports = d.docker_ok(&["port", "all"]);
    assert_eq!(ports.lines().count(), 2, "{ports}");
    for p in ["81", "82"] {
        let hp = host_port(&d, "all", &format!("{p}/tcp"));
        let url = format!("http://127.0.0.1:{hp}/");
        assert_eq!(poll(10, &url, || curl(&url)), format!("port-{p}\n"));
    }
    assert!(
        !d.docker(&["port", "all", "80/tcp"]).status.success(),
        "80 is neither exposed nor published: {ports}"
    );
    let ps = d.docker_ok(&["ps", "--filter", "name=all", "--format", "{{.Ports}}"]);
    assert!(ps.contains("->81/tcp") && ps.contains("->82/tcp"), "{ps}");

    // One host address: the daemon's bridge address (a host address), and
    // 127.0.0.2; neither port answers on another address.
    let gw = d.net.bip.trim_end_matches("/24").to_string();
    let (p1, p2) = (port_base(), port_base());
    web(
        &d,
        "bound",
        &[
            "-p",
            &format!("{gw}:{p1}:80"),
            "-p",
            &format!("127.0.0.2:{p2}:80"),
        ],
        "bound-web",
    );
    let url = format!("http://{gw}:{p1}/");
    assert_eq!(poll(10, &url, || curl(&url)), "bound-web\n");
    let url = format!("http://127.0.0.2:{p2}/");
    assert_eq!(poll(10, &url, || curl(&url)), "bound-web\n");
    assert!(curl(&format!("http://127.0.0.1:{p1}/")).is_none());
    assert!(curl(&format!("http://127.0.0.1:{p2}/")).is_none());
    let ports = d.docker_ok(&["port", "bound", "80/tcp"]);
    assert!(
        ports.contains(&format!("{gw}:{p1}")) && ports.contains(&format!("127.0.0.2:{p2}")),
        "{ports}"
    );
    // Another container may take the same port on another address.
    web(
        &d,
        "bound2",
        &["-p", &format!("127.0.0.3:{p2}:80")],
        "second",
    );
    let url = format!("http://127.0.0.3:{p2}/");
    assert_eq!(poll(10, &url, || curl(&url)), "second\n");

    // An IPv6 network: a published port answers on the host's IPv6
    // addresses (here the network's gateway) through DNAT to the
    // container's IPv6 address; [::1] does not (no route_localnet for
    // IPv6, no userland proxy: ARCHITECTURE.md).
    let v6 = ula_subnet();
    let gw6 = format!("{}::1", v6.trim_end_matches("::/64"));
    d.docker_ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &TestNet::subnet(),
        "--subnet",
        &v6,
        "six",
    ]);
    let p6 = port_base();
    web(
        &d,
        "web6",
        &["--network", "six", "-p", &format!("{p6}:80")],
        "six-web",
    );
    let url = format!("http://127.0.0.1:{p6}/");
    assert_eq!(poll(10, &url, || curl(&url)), "six-web\n");
    let url = format!("http://[{gw6}]:{p6}/");
    assert_eq!(poll(10, &url, || curl(&url)), "six-web\n");
    udp_pong(
        &d,
        "dns6",
        &["--network", "six", "-p", &format!("{}:53/udp", p6 + 1)],
    );
    let to = format!("[{gw6}]:{}", p6 + 1);
    assert_eq!(poll(10, "udp over IPv6", || udp_ask(&to)), "pong ping\n");

    d.docker_ok(&[
        "rm", "-f", "dns", "many", "all", "bound", "bound2", "web6", "dns6",
    ]);
    for p in [base, range, p1, p2, p6] {
        assert!(curl(&format!("http://127.0.0.1:{p}/")).is_none());
    }
    if let Some(n) = db_count(&d, "select count(*) from port_bindings") {
        assert_eq!(n, 0, "port rows left");
    }
    d.docker_ok(&["network", "rm", "six"]);
    d.stop();
}

#[test]
fn network_create_options_inspect_prune_and_nothing_left() {
    let Some(d) = daemon() else { return };
    let subnet = TestNet::subnet();
    let net3 = subnet.trim_end_matches(".0/24").to_string();
    let bridge = format!("{}o", d.net.bridge);
    d.docker_ok(&[
        "network",
        "create",
        "--subnet",
        &subnet,
        "--ip-range",
        &format!("{net3}.128/25"),
        "--gateway",
        &format!("{net3}.254"),
        "--label",
        "team=blue",
        "--label",
        "tier",
        "-o",
        &format!("com.docker.network.bridge.name={bridge}"),
        "opts",
    ]);
    // The bridge has the asked name and the gateway's address.
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", &bridge])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains(&format!("{net3}.254/24")),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // Containers' addresses come from the range, the gateway is the one
    // asked for.
    let ids: Vec<String> = ["o1", "o2"]
        .iter()
        .map(|n| {
            d.docker_ok(&[
                "run",
                "-d",
                "--name",
                n,
                "--network",
                "opts",
                "bb:1",
                "sleep",
                "60",
            ])
            .trim()
            .to_string()
        })
        .collect();
    for n in ["o1", "o2"] {
        let e = endpoint(&d, n, "opts");
        let ip: std::net::Ipv4Addr = field(&e, "IPAddress").parse().unwrap();
        assert!(ip.octets()[3] >= 128, "{n}: {ip} is outside the range");
        assert_eq!(field(&e, "Gateway"), format!("{net3}.254"));
        assert_eq!(e["IPPrefixLen"], 24);
    }
    let route = d.docker_ok(&["exec", "o1", "ip", "route"]);
    assert!(
        route.contains(&format!("default via {net3}.254")),
        "{route}"
    );
    let brif: Vec<String> =
        std::fs::read_dir(Path::new("/sys/class/net").join(&bridge).join("brif"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
    assert_eq!(brif.len(), 2, "{brif:?}");

    // docker's inspect shape.
    let v: Value = serde_json::from_str(&d.docker_ok(&["network", "inspect", "opts"])).unwrap();
    let n = &v[0];
    for key in [
        "Name",
        "Id",
        "Created",
        "Scope",
        "Driver",
        "EnableIPv6",
        "IPAM",
        "Internal",
        "Attachable",
        "Ingress",
        "ConfigFrom",
        "ConfigOnly",
        "Containers",
        "Options",
        "Labels",
    ] {
        assert!(n.get(key).is_some(), "{key} missing from {n}");
    }
    assert_eq!(n["Name"], "opts");
    assert_eq!(n["Scope"], "local");
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(n["EnableIPv6"], false);
    assert_eq!(n["Internal"], false);
    assert_eq!(n["IPAM"]["Driver"], "default");
    let pool = &n["IPAM"]["Config"][0];
    assert_eq!(pool["Subnet"], subnet.as_str(), "{pool}");
    assert_eq!(pool["IPRange"], format!("{net3}.128/25").as_str(), "{pool}");
    assert_eq!(pool["Gateway"], format!("{net3}.254").as_str(), "{pool}");
    assert_eq!(n["Labels"]["team"], "blue");
    assert_eq!(n["Labels"]["tier"], "");
    assert_eq!(
        n["Options"]["com.docker.network.bridge.name"],
        bridge.as_str()
    );
    let containers = n["Containers"].as_object().unwrap();
    assert_eq!(containers.len(), 2, "{n}");
    let c1 = &containers[&ids[0]];
    assert_eq!(c1["Name"], "o1");
    let ip1 = field(&endpoint(&d, "o1", "opts"), "IPAddress");
    assert_eq!(c1["IPv4Address"], format!("{ip1}/24").as_str(), "{c1}");
    assert_eq!(c1["IPv6Address"], "");
    assert_eq!(
        c1["MacAddress"],
        endpoint(&d, "o1", "opts")["MacAddress"],
        "{c1}"
    );
    assert_eq!(c1["EndpointID"].as_str().unwrap().len(), 64, "{c1}");
    // ls filters on the label.
    let ls = d.docker_ok(&[
        "network",
        "ls",
        "--filter",
        "label=team=blue",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(ls.trim(), "opts");

    // The rows and the kernel side while it runs.
    if let Some(n) = db_count(&d, "select count(*) from endpoints") {
        assert_eq!(n, 2);
    }
    assert!(!veths_of(&ids[0]).is_empty());

    // prune: the unused labelled network goes, the used one and the
    // predefined ones stay; a label filter limits it.
    d.docker_ok(&[
        "network",
        "create",
        "--label",
        "team=red",
        "--subnet",
        &TestNet::subnet(),
        "spare",
    ]);
    d.docker_ok(&[
        "network",
        "create",
        "--subnet",
        &TestNet::subnet(),
        "spare2",
    ]);
    let out = d.docker_ok(&["network", "prune", "-f", "--filter", "label=team=red"]);
    assert!(out.contains("spare") && !out.contains("spare2"), "{out}");
    // A network only a stopped container names has no endpoint: docker
    // prunes it, and the container then fails to start.
    d.docker_ok(&[
        "create",
        "--name",
        "idle",
        "--network",
        "spare2",
        "bb:1",
        "true",
    ]);
    let out = d.docker_ok(&["network", "prune", "-f"]);
    assert!(out.contains("spare2") && !out.contains("opts"), "{out}");
    let out = d.docker(&["start", "idle"]);
    assert!(
        text(&out.stderr).contains("network spare2 not found"),
        "{}",
        text(&out.stderr)
    );
    d.docker_ok(&["rm", "idle"]);
    let names = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["bridge", "host", "none", "opts"]);

    // All removed: no endpoint, port or network row, no veth, namespace
    // file, bridge or nft rule of it is left.
    d.docker_ok(&["rm", "-f", "o1", "o2"]);
    d.docker_ok(&["network", "rm", "opts"]);
    for id in &ids {
        assert!(veths_of(id).is_empty(), "veths of {id} left");
    }
    assert!(netns_files(&d).is_empty(), "{:?}", netns_files(&d));
    assert!(host_links(&bridge).is_empty(), "bridge {bridge} left");
    let table = nft_table(&d);
    assert!(
        !table.contains(&bridge) && !table.contains(&format!("{net3}.0")),
        "rules of the removed network left:\n{table}"
    );
    for (what, sql) in [
        ("endpoint", "select count(*) from endpoints"),
        ("port", "select count(*) from port_bindings"),
        (
            "network",
            "select count(*) from networks where name in ('opts', 'spare', 'spare2')",
        ),
    ] {
        if let Some(n) = db_count(&d, sql) {
            assert_eq!(n, 0, "{what} rows left");
        }
    }
    d.stop();
}

/// docker's legacy links on the default bridge (hosts line, variables,
/// inspect's form, `rm --link`), links on a user network (an alias only
/// the linking container resolves), disconnect from the only network and
/// connect again, `--mac-address`, auxiliary addresses and a name with a
/// space.
#[test]
fn links_macs_reconnect_aux_addresses_and_names() {
    let Some(d) = daemon() else { return };
    d.docker_ok(&[
        "run", "-d", "--name", "child", "-e", "FOO=1", "--expose", "5432", "bb:1", "sleep", "300",
    ]);
    let child_ip = field(&endpoint(&d, "child", "bridge"), "IPAddress");
    let out = d.docker_ok(&[
        "run",
        "--name",
        "parent",
        "--link",
        "child:db",
        "bb:1",
        "sh",
        "-c",
        "env; cat /etc/hosts",
    ]);
    for want in [
        "DB_NAME=/parent/db".to_string(),
        "DB_ENV_FOO=1".to_string(),
        format!("DB_PORT=tcp://{child_ip}:5432"),
        format!("DB_PORT_5432_TCP_ADDR={child_ip}"),
    ] {
        assert!(out.contains(&want), "{want} missing in:\n{out}");
    }
    let child_id = d.inspect("child")["Id"].as_str().unwrap().to_string();
    assert!(
        out.contains(&format!("{child_ip}\tdb {} child", &child_id[..12])),
        "no hosts line for the link:\n{out}"
    );
    assert_eq!(
        d.inspect("parent")["HostConfig"]["Links"],
        serde_json::json!(["/child:/parent/db"])
    );
    d.docker_ok(&["rm", "--link", "parent/db"]);
    assert!(d.inspect("parent")["HostConfig"]["Links"].is_null());
    let missing = d.docker(&["create", "--link", "nosuch:x", "bb:1"]);
    assert!(
        !missing.status.success()
            && text(&missing.stderr).contains("could not get container for nosuch")
    );

    // A MAC of one's own on the default bridge.
    // (Config.MacAddress through the API: the CLI talks to API 1.41 with
    // it only that way.)
    let body = br#"{"Image": "bb:1", "Cmd": ["sleep", "300"], "MacAddress": "02:42:ac:11:00:0a"}"#;
    let (status, out) = d.api("POST", "/containers/create?name=mac", Some(body));
    assert_eq!(status, 201, "{}", text(&out));
    d.docker_ok(&["start", "mac"]);
    assert_eq!(
        field(&d.inspect("mac")["NetworkSettings"], "MacAddress"),
        "02:42:ac:11:00:0a"
    );
    let link = d.docker_ok(&["exec", "mac", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(link.trim(), "02:42:ac:11:00:0a");

    // A user network: a link is an alias the linking container resolves.
    let subnet = TestNet::subnet();
    let base = subnet.trim_end_matches(".0/24");
    let aux = format!("{base}.2");
    d.docker_ok(&[
        "network",
        "create",
        "--subnet",
        &subnet,
        "--aux-address",
        &format!("dev={aux}"),
        "link net",
    ]);
    let ipam = d.inspect("link net")["IPAM"]["Config"][0].clone();
    assert_eq!(ipam["AuxiliaryAddresses"]["dev"], serde_json::json!(aux));
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "up",
        "--network",
        "link net",
        "bb:1",
        "sleep",
        "300",
    ]);
    let up_ip = field(&endpoint(&d, "up", "link net"), "IPAddress");
    assert_ne!(up_ip, aux, "an auxiliary address was leased");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "down",
        "--network",
        "link net",
        "--link",
        "up:bar",
        "bb:1",
        "sleep",
        "300",
    ]);
    let ans = d.docker_ok(&[
        "exec",
        "down",
        "sh",
        "-c",
        "timeout 10 nslookup bar || exit 1",
    ]);
    assert!(
        ans.contains(&up_ip),
        "bar did not resolve to {up_ip}:\n{ans}"
    );
    let other = d.docker(&["exec", "up", "sh", "-c", "timeout 10 nslookup bar"]);
    assert!(!text(&other.stdout).contains(&format!("Address: {up_ip}")) || !other.status.success());

    // Off its only network and back, with a chosen address.
    d.docker_ok(&["network", "disconnect", "link net", "down"]);
    assert_eq!(
        d.inspect("down")["HostConfig"]["NetworkMode"],
        serde_json::json!("link net")
    );
    let ip = format!("{base}.77");
    d.docker_ok(&["network", "connect", "--ip", &ip, "link net", "down"]);
    assert_eq!(field(&endpoint(&d, "down", "link net"), "IPAddress"), ip);

    d.docker_ok(&["rm", "-f", "child", "parent", "mac", "up", "down"]);
    d.docker_ok(&["network", "rm", "link net"]);
    d.stop();
}
