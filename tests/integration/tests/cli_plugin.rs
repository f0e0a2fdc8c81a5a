//! `berth plugin ...` against berthd, with docker's client as the oracle:
//! the same plugin directory made into a plugin by each client, then ls,
//! inspect, set, enable, disable and rm through both, compared on stdout,
//! exit code and the daemon's message. Needs `cargo build --workspace
//! --bins` first.

use std::path::Path;

use berth_integration::cli::{assert_agreed, Clients, Run};
use berth_integration::daemon::{has_docker, Berthd};
use berth_integration::require_root;

/// A plugin directory: config.json in docker's documented lower camel
/// case (a description long enough for `ls` to cut), a rootfs with a file.
fn plugin_dir(at: &Path) {
    std::fs::create_dir_all(at.join("rootfs/usr/bin")).unwrap();
    std::fs::write(at.join("rootfs/usr/bin/authz"), b"#!/bin/sh\nexit 0\n").unwrap();
    std::fs::write(
        at.join("config.json"),
        br#"{
            "description": "an authorization plugin for tests, described at some length",
            "entrypoint": ["/usr/bin/authz"],
            "interface": {"types": ["docker.authz/1.0"], "socket": "authz.sock"},
            "env": [{"name": "LEVEL", "settable": ["value"], "value": "low"},
                    {"name": "FIXED", "value": "1"}]
        }"#,
    )
    .unwrap();
}

/// A command that must succeed and print exactly `want`.
fn prints(r: Run, what: &str, want: &str) {
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, want),
        "{what}: {}",
        r.stderr
    );
}

#[test]
fn plugin_commands_against_berthd() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::start(&[]);
    let mut c = Clients::for_berthd(&d);
    let src = d.dir.path().join("plugin-src");
    plugin_dir(&src);
    let src = src.to_str().unwrap();

    // Each client makes a plugin from the same directory (berth also a
    // gzipped one) and prints the name it was given.
    let args = ["plugin", "create", "example/by-docker", src];
    prints(
        c.docker(&args),
        "docker plugin create",
        "example/by-docker\n",
    );
    let args = ["plugin", "create", "example/by-berth", src];
    prints(c.berth(&args), "berth plugin create", "example/by-berth\n");
    let args = ["plugin", "create", "--compress", "example/gz:1.0", src];
    prints(
        c.berth(&args),
        "berth plugin create --compress",
        "example/gz:1.0\n",
    );
    // The same config and root file system (its diff id) either way.
    let shape = "{{json .Config}} {{json .Settings}} {{.Enabled}}";
    let of = |name: &str| c.docker(&["plugin", "inspect", "-f", shape, name]).stdout;
    let made = of("example/by-docker");
    assert!(made.contains("sha256:"), "{made}");
    assert_eq!(of("example/by-berth"), made);
    assert_eq!(of("example/gz:1.0"), made);

    // Refusals before anything is sent, and the daemon's.
    let none = d.dir.path().join("nosuch");
    let file = format!("{src}/config.json");
    for args in [
        &["plugin", "create", "example/x", none.to_str().unwrap()][..],
        &["plugin", "create", "example/x", &file],
        &["plugin", "create", "example/by-docker", src],
    ] {
        c.same(args, true);
    }

    for args in [
        &["plugin", "ls"][..],
        &["plugin", "list", "-q"],
        &["plugin", "ls", "--no-trunc"],
        &["plugin", "ls", "--filter", "capability=authz"],
        &["plugin", "ls", "-q", "--filter", "capability=volumedriver"],
        &["plugin", "ls", "-f", "enabled=false", "-q", "--no-trunc"],
        &["plugin", "ls", "-f", "enabled=true"],
        &["plugin", "ls", "--format", "{{.Name}} {{.Enabled}}"],
        &[
            "plugin",
            "ls",
            "--format",
            "table {{.Name}}\t{{.PluginReference}}",
        ],
        &["plugin", "ls", "--format", "json"],
        &["plugin", "ls", "--format", "raw"],
        &["plugin", "ls", "-q", "--format", "table"],
        &["plugin", "inspect", "example/by-docker", "example/gz:1.0"],
        &["plugin", "inspect", "-f", "{{.Name}}", "example/by-berth"],
        &[
            "plugin",
            "inspect",
            "-f",
            "{{.Name}} {{.PluginReference}} {{.Config.Interface.Types}}",
            "example/by-docker",
            "example/gz:1.0",
        ],
        // The generic inspect finds plugins too, typed or not.
        &[
            "inspect",
            "--type",
            "plugin",
            "-f",
            "{{.Name}}",
            "example/by-docker",
        ],
        &["inspect", "-f", "{{.Name}} {{.Enabled}}", "example/gz:1.0"],
    ] {
        c.same(args, false);
    }
    // The daemon's errors, each printed; exit 1.
    for args in [
        &[
            "plugin",
            "inspect",
            "-f",
            "{{.Name}}",
            "example/by-docker",
            "nosuch",
        ][..],
        &["plugin", "inspect", "nosuch"],
        &["plugin", "set", "example/by-docker", "FIXED=2"],
        &["plugin", "set", "example/by-docker", "NOPE=1"],
        &["plugin", "enable", "example/by-docker"],
        &["plugin", "enable", "--timeout", "-1", "example/by-docker"],
        &["plugin", "disable", "example/by-docker"],
        &["plugin", "disable", "-f", "example/by-docker"],
        &["plugin", "rm", "nosuch"],
        &["inspect", "--type", "plugin", "nosuch"],
    ] {
        c.same(args, true);
    }
    let r = c.berth(&["plugin", "enable", "example/by-berth"]);
    assert!(
        r.code == 1 && r.stderr.contains("does not run them"),
        "{r:?}"
    );

    // A setting through each client lands alike.
    c.same(&["plugin", "set", "example/by-docker", "LEVEL=high"], true);
    c.same(&["plugin", "set", "example/by-berth", "LEVEL=high"], true);
    let env = |name: &str| {
        c.docker(&["plugin", "inspect", "-f", "{{json .Settings.Env}}", name])
            .stdout
    };
    assert_eq!(env("example/by-docker"), "[\"LEVEL=high\",\"FIXED=1\"]\n");
    assert_eq!(env("example/by-berth"), env("example/by-docker"));

    // What berthd cannot do says so.
    for args in [
        &[
            "plugin",
            "install",
            "--grant-all-permissions",
            "vieux/sshfs",
        ][..],
        &["plugin", "push", "example/by-berth"],
        &["plugin", "upgrade", "example/by-berth", "example/other"],
    ] {
        let r = c.berth(args);
        assert!(
            r.code == 1 && r.stderr.contains("not supported by berth"),
            "{args:?}: {r:?}"
        );
    }

    // rm prints each name removed, then the errors.
    prints(
        c.docker(&["plugin", "rm", "example/by-docker"]),
        "docker plugin rm",
        "example/by-docker\n",
    );
    let r = c.berth(&[
        "plugin",
        "rm",
        "example/by-berth",
        "nosuch",
        "example/gz:1.0",
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (1, "example/by-berth\nexample/gz:1.0\n"),
        "{r:?}"
    );
    assert!(r.stderr.contains("plugin \"nosuch\" not found"), "{r:?}");
    c.same(&["plugin", "ls"], false);
    let left = std::fs::read_dir(d.data_root.join("plugins"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "plugin directories remain");
    let (mismatches, compared) = (c.mismatches().to_vec(), c.compared);
    d.stop();
    assert_agreed(&mismatches, compared);
}
