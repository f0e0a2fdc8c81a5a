//! `berth network ...` and run/create's networking flags: against
//! Debian's dockerd with docker's own client as the oracle, and against
//! berthd's `/networks` endpoints. Needs `cargo build -p berth -p berthd
//! -p berth-runtime` first.

use std::process::{Command, Output};

use berth_integration::cli::{assert_agreed, Clients};
use berth_integration::daemon::Berthd;
use berth_integration::peers::{busybox_tar, Dockerd};
use berth_integration::require_root;
use berth_integration::runtime::berth_binary;

/// A /24 of this test process, away from the ranges the test daemons'
/// default bridges use (10.100-199.x).
fn subnet(n: u32) -> (String, String) {
    let prefix = format!("10.{}.{n}", 200 + std::process::id() % 50);
    (format!("{prefix}.0/24"), prefix)
}

/// A field of `docker inspect` as docker's client prints it.
fn field(c: &Clients, format: &str, name: &str) -> String {
    c.docker(&["inspect", "-f", format, name])
        .stdout
        .trim_end()
        .to_string()
}

#[test]
fn network_golden_against_dockerd() {
    let Some(daemon) = Dockerd::start("cli_network") else {
        return;
    };
    let mut c = Clients::new(&daemon);
    let (s1, p1) = subnet(1);
    let (s2, p2) = subnet(2);

    // The same flags through each client make the same network.
    let made = |c: &Clients, client: &str, name: &str, sub: &str, prefix: &str| {
        let gw = format!("{prefix}.1");
        let range = format!("{prefix}.128/25");
        let aux = format!("r={prefix}.2");
        let args = [
            "network",
            "create",
            "--subnet",
            sub,
            "--gateway",
            &gw,
            "--ip-range",
            &range,
            "--aux-address",
            &aux,
            "--label",
            "a=b",
            "--label",
            "c",
            "-o",
            "com.docker.network.driver.mtu=1400",
            "--ipam-opt",
            "x=y",
            "--attachable",
            name,
        ];
        let r = if client == "docker" {
            c.docker(&args)
        } else {
            c.berth(&args)
        };
        assert_eq!(r.code, 0, "{client} network create {name}: {}", r.stderr);
        assert_eq!(r.stdout.trim().len(), 64, "an id: {:?}", r.stdout);
    };
    made(&c, "docker", "gn-d", &s1, &p1);
    made(&c, "berth", "gn-b", &s2, &p2);
    let same_shape = "{{.Driver}} {{.Scope}} {{.Internal}} {{.Attachable}} {{.EnableIPv6}} \
                      {{json .Labels}} {{json .Options}} {{.IPAM.Driver}} {{json .IPAM.Options}}";
    if field(&c, same_shape, "gn-d") != field(&c, same_shape, "gn-b") {
        c.mismatch(format!(
            "network create: docker's {} vs berth's {}",
            field(&c, same_shape, "gn-d"),
            field(&c, same_shape, "gn-b")
        ));
    }
    let ipam = "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}} {{.IPRange}} {{json .AuxiliaryAddresses}}{{end}}";
    assert_eq!(
        field(&c, ipam, "gn-b"),
        format!("{s2} {p2}.1 {p2}.128/25 {{\"r\":\"{p2}.2\"}}")
    );

    for (args, stderr) in [
        (&["network", "ls"][..], false),
        (&["network", "ls", "-q"], false),
        (&["network", "ls", "--no-trunc"], false),
        (&["network", "list", "-f", "name=gn-"], false),
        (&["network", "ls", "-f", "label=a=b", "-q"], false),
        (&["network", "ls", "-f", "driver=null"], false),
        (
            &[
                "network",
                "ls",
                "--format",
                "{{.Name}} {{.Driver}} {{.Label \"a\"}} {{.Label \"c\"}} {{.Internal}} {{.IPv6}}",
            ],
            false,
        ),
        (
            &[
                "network",
                "ls",
                "--format",
                "table {{.ID}}\t{{.Name}}\t{{.Scope}}",
            ],
            false,
        ),
        (&["network", "ls", "--format", "{{json .}}"], false),
        (&["network", "inspect", "gn-d"], false),
        (&["network", "inspect", "gn-d", "gn-b"], false),
        (
            &[
                "network",
                "inspect",
                "-f",
                "{{.Name}} {{.Internal}} {{json .Labels}}",
                "gn-d",
                "nosuch",
                "gn-b",
            ],
            true,
        ),
        (&["network", "inspect", "nosuch"], true),
        (
            &["inspect", "--type", "network", "-f", "{{.Name}}", "gn-d"],
            false,
        ),
        (&["inspect", "-f", "{{.Driver}}", "gn-b"], false),
        (&["network", "create", "gn-d"], true),
        (
            &["network", "create", "--gateway", "10.0.0.1", "gn-x"],
            false,
        ),
        (&["network", "rm", "nosuch"], false),
        (&["network", "rm", "host"], false),
        (&["network", "connect", "gn-d", "nosuch"], true),
        (&["network", "disconnect", "gn-d", "nosuch"], true),
    ] {
        c.same(args, stderr);
    }

    containers_on_networks(&mut c, &p1, &p2);
    flag_errors(&mut c);
    prune(&mut c);

    let mismatches = c.mismatches().to_vec();
    let compared = c.compared;
    daemon.finish();
    assert_agreed(&mismatches, compared);
}

/// run/create's networking flags through both clients give the same
/// container; `ps`, `port` and connect/disconnect print as docker's.
fn containers_on_networks(c: &mut Clients, p1: &str, p2: &str) {
    // Host ports differ by `base` between the two containers: both run.
    let flags = |net: &str, ip: &str, base: u16| -> Vec<String> {
        let (p1, p2, p3) = (base, base + 20, base + 100);
        let publish = [
            format!("127.0.0.1:{p1}:80"),
            format!("{p2}-{}:90-91/udp", p2 + 1),
            "127.0.0.1::443".to_string(),
            format!("{p3}-{}:8000", p3 + 10),
        ];
        let mut v: Vec<String> = [
            "--network",
            net,
            "--network-alias",
            "web",
            "--ip",
            ip,
            "--dns",
            "192.0.2.53",
            "--dns-search",
            "example.com",
            "--dns-option",
            "ndots:2",
            "--add-host",
            "db:192.0.2.7",
            "--add-host",
            "gw:host-gateway",
            "--expose",
            "7000-7002",
            "-e",
            "BERTH_IT=cli_network",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for p in publish {
            v.push("-p".into());
            v.push(p);
        }
        v
    };
    let run = |c: &Clients, client: &str, name: &str, net: &str, ip: String, base: u16| {
        let mut args: Vec<String> = vec!["create".into(), "--name".into(), name.into()];
        args.extend(flags(net, &ip, base));
        args.extend(["busybox", "sleep", "300"].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = if client == "docker" {
            c.docker(&args)
        } else {
            c.berth(&args)
        };
        assert_eq!(r.code, 0, "{client} {args:?}: {}", r.stderr);
    };
    run(c, "docker", "gp-d", "gn-d", format!("{p1}.50"), 18000);
    run(c, "berth", "gp-b", "gn-b", format!("{p2}.50"), 18000);
    for f in [
        "{{json .Config.ExposedPorts}}",
        "{{.HostConfig.PublishAllPorts}} {{json .HostConfig.Dns}} {{json .HostConfig.DnsSearch}} \
         {{json .HostConfig.DnsOptions}} {{json .HostConfig.ExtraHosts}}",
        "{{range $n, $e := .NetworkSettings.Networks}}{{json $e.Aliases}} {{end}}",
    ] {
        let (d, b) = (field(c, f, "gp-d"), field(c, f, "gp-b"));
        if d != b {
            c.mismatch(format!("create {f}: docker's {d}, berth's {b}"));
        }
    }
    assert_eq!(field(c, "{{.HostConfig.NetworkMode}}", "gp-b"), "gn-b");
    let (d, b) = (
        field(c, "{{json .HostConfig.PortBindings}}", "gp-d"),
        field(c, "{{json .HostConfig.PortBindings}}", "gp-b"),
    );
    if d != b {
        c.mismatch(format!("create's PortBindings: docker's {d}, berth's {b}"));
    }
    // Now a second one with other host ports, so both can run.
    let r = c.docker(&["rm", "gp-b"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    run(c, "berth", "gp-b", "gn-b", format!("{p2}.50"), 19000);
    assert_eq!(
        field(
            c,
            "{{range .NetworkSettings.Networks}}{{.IPAMConfig.IPv4Address}}{{end}}",
            "gp-b"
        ),
        format!("{p2}.50")
    );

    for name in ["gp-d", "gp-b"] {
        let r = c.docker(&["start", name]);
        assert_eq!(r.code, 0, "start {name}: {}", r.stderr);
    }
    // docker 20.10 prints `port`'s lines in Go's map order: compare sorted.
    for name in ["gp-d", "gp-b"] {
        let (d, b) = (c.docker(&["port", name]), c.berth(&["port", name]));
        let mut lines: Vec<&str> = d.stdout.lines().collect();
        lines.sort_by_key(|l| {
            let port = l.split('/').next().unwrap_or("");
            (port.parse::<u32>().unwrap_or(0), l.to_string())
        });
        c.compared += 1;
        if lines.join("\n") + "\n" != b.stdout || d.code != b.code {
            c.mismatch(format!(
                "port {name}: docker's\n{}berth's\n{}",
                d.stdout, b.stdout
            ));
        }
    }
    for args in [
        &["port", "gp-d", "80"][..],
        &["port", "gp-d", "90/udp"],
        &["port", "gp-d", "7000"],
        &[
            "ps",
            "-f",
            "name=gp-",
            "--format",
            "{{.Names}} {{.Networks}}",
        ],
    ] {
        c.same(args, false);
    }
    // The random host ports differ between containers, not between clients.
    for name in ["gp-d", "gp-b"] {
        let filter = format!("name={name}");
        c.same(&["ps", "-f", &filter, "--format", "{{.Ports}}"], false);
    }

    // connect and disconnect, then what each client sees.
    for args in [
        &["network", "connect", "--alias", "extra", "gn-d", "gp-b"][..],
        &["network", "disconnect", "gn-b", "gp-b"],
    ] {
        let r = c.berth(args);
        assert_eq!(r.code, 0, "berth {args:?}: {}", r.stderr);
    }
    assert_eq!(
        field(
            c,
            "{{range $n, $e := .NetworkSettings.Networks}}{{$n}} {{end}}",
            "gp-b"
        ),
        "gn-d"
    );
    let aliases = field(
        c,
        "{{json (index .NetworkSettings.Networks \"gn-d\").Aliases}}",
        "gp-b",
    );
    assert!(
        aliases.contains("\"extra\""),
        "aliases after connect: {aliases}"
    );
    let r = c.berth(&["network", "disconnect", "-f", "gn-d", "gp-b"]);
    assert_eq!(r.code, 0, "disconnect -f: {}", r.stderr);
    c.same(
        &["ps", "-f", "name=gp-b", "--format", "{{.Networks}}"],
        false,
    );

    let r = c.docker(&["rm", "-f", "gp-d", "gp-b"]);
    assert_eq!(r.code, 0, "removing the containers: {}", r.stderr);
}

/// Bad networking flags: the same exit code (125) and no output.
fn flag_errors(c: &mut Clients) {
    for bad in [
        &["--network", "gn-d", "--network", "gn-d"][..],
        &["-p", "80/foo"],
        &["-p", "abc"],
        &["-p", "8000-8002:80-81"],
        &["-p", "80:80:80:80"],
        &["--expose", "80-70"],
        &["--add-host", "foo"],
        &["--add-host", "foo:bar"],
        &["--mac-address", "zz"],
        &["--dns", "nope"],
    ] {
        let mut args = vec!["create"];
        args.extend_from_slice(bad);
        args.push("busybox");
        c.same(&args, false);
    }
}

/// `network prune`: the prompt, and the deleted networks listed as docker
/// lists them (the daemon's order is its own, so lines are compared sorted).
fn prune(c: &mut Clients) {
    let r = c.berth_with_stdin(&["network", "prune"], Some(b"n\n"));
    assert_eq!(r.code, 0);
    assert!(
        r.stderr.starts_with(
            "WARNING! This will remove all custom networks not used by at least one container.\n\
             Are you sure you want to continue? [y/N] "
        ),
        "prompt: {:?}",
        r.stderr
    );
    assert_eq!(r.stdout, "");
    let sorted = |s: &str| {
        let mut l: Vec<&str> = s.lines().collect();
        l.sort();
        l.join("\n")
    };
    let d = c.docker(&["network", "prune", "-f"]);
    assert_eq!(d.code, 0, "docker network prune: {}", d.stderr);
    assert!(
        d.stdout.starts_with("Deleted Networks:\n"),
        "{:?}",
        d.stdout
    );
    for n in ["gn-d", "gn-b"] {
        let r = c.docker(&["network", "create", n]);
        assert_eq!(r.code, 0, "re-creating {n}: {}", r.stderr);
    }
    let b = c.berth_with_stdin(&["network", "prune"], Some(b"y\n"));
    c.compared += 1;
    if sorted(&d.stdout) != sorted(&b.stdout) || b.code != 0 {
        c.mismatch(format!(
            "network prune: docker's\n{}berth's (exit {})\n{}{}",
            d.stdout, b.code, b.stdout, b.stderr
        ));
    }
}

/// The berth CLI against berthd: create, ls, inspect, rm, errors. Skipped
/// while berthd answers 501 for networks.
#[test]
fn network_commands_against_berthd() {
    if !require_root() {
        return;
    }
    let d = Berthd::start(&[]);
    let host = format!("unix://{}", d.socket.display());
    let berth = |args: &[&str]| -> Output {
        Command::new(berth_binary("berth"))
            .arg("-H")
            .arg(&host)
            .args(args)
            .output()
            .expect("running berth")
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let ls = berth(&["network", "ls"]);
    if !ls.status.success() && text(&ls.stderr).contains("not implemented") {
        eprintln!("skipped: berthd has no /networks yet: {}", text(&ls.stderr));
        d.stop();
        return;
    }
    let out = text(&ls.stdout);
    assert!(
        out.starts_with("NETWORK ID     NAME      DRIVER    SCOPE\n"),
        "{out}"
    );
    for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
        assert!(
            out.lines().any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() == 4 && cols[1] == name && cols[2] == driver && cols[3] == "local"
            }),
            "no {name} row in:\n{out}"
        );
    }

    let (sub, prefix) = subnet(9);
    let gw = format!("{prefix}.1");
    let created = berth(&[
        "network",
        "create",
        "--subnet",
        &sub,
        "--gateway",
        &gw,
        "--label",
        "a=b",
        "--internal",
        "bn-one",
    ]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let id = text(&created.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "an id: {id:?}");

    let q = text(&berth(&["network", "ls", "-q", "-f", "name=bn-one"]).stdout);
    assert_eq!(q, format!("{}\n", &id[..12]));
    let f = berth(&[
        "network",
        "inspect",
        "-f",
        "{{.Name}} {{.Driver}} {{.Internal}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{index .Labels \"a\"}}",
        "bn-one",
    ]);
    assert_eq!(
        text(&f.stdout),
        format!("bn-one bridge true {sub} {gw} b\n"),
        "{}",
        text(&f.stderr)
    );
    let json = berth(&["network", "inspect", "bn-one", "bridge"]);
    let list: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("network inspect prints a JSON array");
    assert_eq!(list[0]["Id"], id.as_str());
    assert_eq!(list[1]["Name"], "bridge");
    let by_type = berth(&["inspect", "--type", "network", "-f", "{{.Id}}", "bn-one"]);
    assert_eq!(text(&by_type.stdout).trim(), id);

    let dup = berth(&["network", "create", "bn-one"]);
    assert_eq!(dup.status.code(), Some(1));
    assert!(
        text(&dup.stderr).starts_with("berth: Error response from daemon: "),
        "{}",
        text(&dup.stderr)
    );
    let rm = berth(&["network", "rm", "bn-one", "nosuch"]);
    assert_eq!(text(&rm.stdout), "bn-one\n");
    assert_eq!(rm.status.code(), Some(1));
    assert_eq!(text(&rm.stderr).lines().count(), 1, "{}", text(&rm.stderr));
    let gone = berth(&["network", "ls", "-q", "-f", "name=bn-one"]);
    assert_eq!(text(&gone.stdout), "");

    let made = berth(&["network", "create", "bn-two"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let pruned = berth(&["network", "prune", "-f"]);
    assert_eq!(text(&pruned.stdout), "Deleted Networks:\nbn-two\n\n");

    containers_on_berthd(&d, &berth);
    d.stop();
}

/// A container run with networking flags on a berthd network: its
/// address, ports (`port`, `ps`), connect/disconnect, and rm refused
/// while it is attached.
fn containers_on_berthd(d: &Berthd, berth: &dyn Fn(&[&str]) -> Output) {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let ok = |args: &[&str]| -> String {
        let o = berth(args);
        assert!(o.status.success(), "berth {args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    };
    let tar = busybox_tar(d.dir.path());
    d.docker_ok(&["import", tar.to_str().expect("UTF-8 path"), "bb:1"]);
    let (sub, prefix) = subnet(10);
    let (sub2, _) = subnet(11);
    ok(&["network", "create", "--subnet", &sub, "bn-c"]);
    ok(&["network", "create", "--subnet", &sub2, "bn-d"]);
    let ip = format!("{prefix}.10");
    ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "bn-c",
        "--network-alias",
        "web",
        "--ip",
        &ip,
        "-p",
        "127.0.0.1::80",
        "--expose",
        "7000-7001",
        "--add-host",
        "db:192.0.2.7",
        "--dns-search",
        "example.com",
        "bb:1",
        "sleep",
        "300",
    ]);
    let addr = ok(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.Aliases}}{{end}}",
        "c1",
    ]);
    assert!(addr.starts_with(&format!("{ip} ")), "{addr}");
    assert!(addr.contains("web"), "aliases: {addr}");
    let port = ok(&["port", "c1"]);
    let host_port = port
        .strip_prefix("80/tcp -> 127.0.0.1:")
        .map(str::trim)
        .unwrap_or_else(|| panic!("port c1: {port:?}"));
    assert_eq!(
        ok(&["port", "c1", "80"]),
        format!("127.0.0.1:{host_port}\n")
    );
    assert_eq!(
        ok(&[
            "ps",
            "-f",
            "name=c1",
            "--format",
            "{{.Networks}} | {{.Ports}}"
        ]),
        format!("bn-c | 7000-7001/tcp, 127.0.0.1:{host_port}->80/tcp\n")
    );
    let hosts = ok(&["exec", "c1", "cat", "/etc/hosts", "/etc/resolv.conf"]);
    assert!(
        hosts.contains("192.0.2.7\tdb") || hosts.contains("192.0.2.7 db"),
        "{hosts}"
    );
    assert!(hosts.contains("example.com"), "{hosts}");

    ok(&["network", "connect", "--alias", "extra", "bn-d", "c1"]);
    assert_eq!(
        ok(&["ps", "-f", "name=c1", "--format", "{{.Networks}}"]),
        "bn-c,bn-d\n"
    );
    let members = ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}}{{end}}",
        "bn-d",
    ]);
    assert_eq!(members.trim(), "c1");
    let busy = berth(&["network", "rm", "bn-c"]);
    assert_eq!(busy.status.code(), Some(1), "rm of a network in use");
    assert!(
        text(&busy.stderr).starts_with("berth: Error response from daemon: "),
        "{}",
        text(&busy.stderr)
    );
    ok(&["network", "disconnect", "bn-d", "c1"]);
    assert_eq!(
        ok(&["ps", "-f", "name=c1", "--format", "{{.Networks}}"]),
        "bn-c\n"
    );
    ok(&["rm", "-f", "c1"]);
    assert_eq!(ok(&["network", "rm", "bn-c", "bn-d"]), "bn-c\nbn-d\n");
}
