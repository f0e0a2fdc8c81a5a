//! The whole conversion: request + image -> spec, on a fixed host and a
//! temporary rootfs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use berth_api::models::{
    ContainerCreateBody, DeviceMapping, EndpointSettings, HostConfig, NetworkingConfig,
    ResourcesUlimits,
};
use berth_errdefs::{ErrorKind, HasKind};
use berth_image::config::RunConfig;
use oci_spec::runtime::{Capability, LinuxNamespaceType, Mount, PosixRlimitType, Spec};

use super::*;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

struct Fixture {
    dir: tempfile::TempDir,
    etc: EtcFiles,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\nwww:x:33:\nlog:x:4:www\n",
        )
        .unwrap();
        let etc = EtcFiles {
            hosts: dir.path().join("hosts"),
            hostname: dir.path().join("hostname"),
            resolv_conf: dir.path().join("resolv.conf"),
        };
        Fixture { dir, etc }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn generate(&self, body: &ContainerCreateBody, image: &ImageConfig) -> Result<Spec, SpecError> {
        self.generate_with_init(body, image, None)
    }

    fn generate_with_init(
        &self,
        body: &ContainerCreateBody,
        image: &ImageConfig,
        init: Option<&Path>,
    ) -> Result<Spec, SpecError> {
        self.generate_as(body, image, init, false)
    }

    /// With `recursive_read_only`: a container created at API 1.44 or later.
    fn generate_as(
        &self,
        body: &ContainerCreateBody,
        image: &ImageConfig,
        init: Option<&Path>,
        recursive_read_only: bool,
    ) -> Result<Spec, SpecError> {
        let rootfs = self.rootfs();
        let path = cgroups_path(body, ID);
        generate_on(
            &SpecInput {
                id: ID,
                body,
                image,
                rootfs: &rootfs,
                etc: &self.etc,
                cgroups_path: &path,
                network_namespace: None,
                joined: &Joined::default(),
                shm: None,
                init,
                recursive_read_only,
            },
            &Host::fixed(),
            &[],
        )
    }
}

fn image() -> ImageConfig {
    ImageConfig {
        config: Some(RunConfig {
            env: Some(s(&["PATH=/usr/bin:/bin", "LANG=C.UTF-8"])),
            cmd: Some(s(&["sh"])),
            working_dir: Some("/srv/app".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn body(hc: HostConfig) -> ContainerCreateBody {
    ContainerCreateBody {
        cmd: Some(s(&["echo", "hi"])),
        env: Some(s(&["LANG=en", "X=1"])),
        host_config: Some(hc),
        ..Default::default()
    }
}

fn mount<'a>(spec: &'a Spec, dest: &str) -> Option<&'a Mount> {
    spec.mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new(dest))
}

fn options(spec: &Spec, dest: &str) -> Vec<String> {
    mount(spec, dest)
        .unwrap_or_else(|| panic!("no mount at {dest}"))
        .options()
        .clone()
        .unwrap_or_default()
}

fn namespaces(spec: &Spec) -> Vec<LinuxNamespaceType> {
    spec.linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .iter()
        .flatten()
        .map(|n| n.typ())
        .collect()
}

#[test]
fn a_typical_container() {
    let f = Fixture::new();
    let spec = f
        .generate(
            &ContainerCreateBody {
                tty: Some(true),
                user: Some("www".into()),
                ..body(HostConfig {
                    network_mode: Some("default".into()),
                    binds: Some(s(&["/var/log:/logs:ro"])),
                    tmpfs: Some([("/run".to_string(), "size=1m".to_string())].into()),
                    memory: Some(64 << 20),
                    nano_cpus: Some(500_000_000),
                    pids_limit: Some(50),
                    ulimits: Some(vec![ResourcesUlimits {
                        name: Some("nofile".into()),
                        soft: Some(100),
                        hard: Some(200),
                    }]),
                    group_add: Some(s(&["root"])),
                    console_size: Some(vec![24, 80]),
                    ..Default::default()
                })
            },
            &image(),
        )
        .unwrap();
    assert_eq!(spec.version(), OCI_VERSION);
    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.args().as_deref(), Some(&s(&["echo", "hi"])[..]));
    assert_eq!(
        p.env().as_deref(),
        Some(
            &s(&[
                "PATH=/usr/bin:/bin",
                "HOSTNAME=0123456789ab",
                "TERM=xterm",
                "LANG=en",
                "X=1",
            ])[..]
        )
    );
    assert_eq!(p.cwd(), Path::new("/srv/app"));
    assert!(
        f.rootfs().join("srv/app").is_dir(),
        "the working directory is created"
    );
    assert_eq!(p.terminal(), Some(true));
    let cs = p.console_size().unwrap();
    assert_eq!((cs.height(), cs.width()), (24, 80));
    assert_eq!((p.user().uid(), p.user().gid()), (33, 33));
    assert_eq!(p.user().additional_gids().as_deref(), Some(&[33, 4, 0][..]));
    let caps = p.capabilities().as_ref().unwrap();
    let bounding = caps.bounding().as_ref().unwrap();
    assert_eq!(bounding.len(), 14);
    assert!(bounding.contains(&Capability::NetBindService));
    assert!(!bounding.contains(&Capability::SysAdmin));
    assert_eq!(caps.effective(), caps.bounding());
    assert_eq!(caps.permitted(), caps.bounding());
    assert!(caps.inheritable().is_none() && caps.ambient().is_none());
    let rl = &p.rlimits().as_ref().unwrap()[0];
    assert_eq!(
        (rl.typ(), rl.soft(), rl.hard()),
        (PosixRlimitType::RlimitNofile, 100, 200)
    );
    assert_eq!(p.no_new_privileges(), None);
    assert_eq!(p.oom_score_adj(), Some(0));

    let root = spec.root().as_ref().unwrap();
    assert_eq!(root.path(), &f.rootfs());
    assert_eq!(root.readonly(), Some(false));
    assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));

    assert_eq!(
        namespaces(&spec),
        [
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Cgroup,
        ]
    );

    let dests: Vec<String> = spec
        .mounts()
        .iter()
        .flatten()
        .map(|m| m.destination().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        dests,
        s(&[
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm",
            "/logs",
            "/run",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/etc/hosts",
        ])
    );
    assert_eq!(options(&spec, "/dev/shm").last().unwrap(), "size=67108864");
    assert_eq!(options(&spec, "/logs"), s(&["rbind", "ro", "rprivate"]));
    assert_eq!(
        mount(&spec, "/logs").unwrap().source().as_deref(),
        Some(Path::new("/var/log"))
    );
    assert_eq!(
        options(&spec, "/run"),
        s(&["noexec", "nosuid", "nodev", "rprivate", "size=1m"])
    );
    assert_eq!(options(&spec, "/etc/hosts"), s(&["rbind", "rprivate"]));
    assert_eq!(
        mount(&spec, "/etc/hosts").unwrap().source().as_deref(),
        Some(f.etc.hosts.as_path())
    );
    assert!(options(&spec, "/sys").contains(&"ro".to_string()));

    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new(&format!("/berth/{ID}")))
    );
    assert!(linux
        .masked_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/kcore".to_string()));
    assert!(linux
        .readonly_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/sys".to_string()));
    let sysctl = linux.sysctl().as_ref().unwrap();
    assert_eq!(sysctl["net.ipv4.ip_unprivileged_port_start"], "0");
    let res = linux.resources().as_ref().unwrap();
    let mem = res.memory().as_ref().unwrap();
    assert_eq!((mem.limit(), mem.swap()), (Some(64 << 20), Some(128 << 20)));
    let cpu = res.cpu().as_ref().unwrap();
    assert_eq!((cpu.quota(), cpu.period()), (Some(50_000), Some(100_000)));
    assert_eq!(res.pids().unwrap().limit(), 50);
    let rules = res.devices().as_ref().unwrap();
    assert!(!rules[0].allow() && rules[0].typ().is_none());
    assert!(rules
        .iter()
        .any(|r| r.allow() && r.major() == Some(1) && r.minor() == Some(3)));
    let seccomp = linux.seccomp().as_ref().unwrap();
    assert!(seccomp
        .syscalls()
        .iter()
        .flatten()
        .any(|r| r.names().contains(&"arch_prctl".to_string())));

    // Round trip through config.json.
    let json = serde_json::to_string(&spec).unwrap();
    assert!(json.contains("\"ociVersion\":\"1.0.2-dev\""));
    let back: Spec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn validate_warns_about_networking_and_image_volumes() {
    let mut img = image();
    img.config.as_mut().unwrap().volumes =
        Some([("/data".to_string(), serde_json::json!({}))].into());
    let bridge = HostConfig {
        network_mode: Some("bridge".into()),
        ..Default::default()
    };
    let warnings = Plan::new(&body(bridge.clone()), &img, &Host::fixed())
        .unwrap()
        .warnings;
    // Bridge networking and the image's volumes are the daemon's:
    // nothing to warn about.
    assert!(warnings.is_empty(), "{warnings:?}");
    let none = Plan::new(
        &body(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        &image(),
        &Host::fixed(),
    )
    .unwrap();
    assert!(none.warnings.is_empty());
    // The public function, on this host.
    assert!(validate(&body(bridge), &image()).unwrap().is_empty());
    assert!(validate(&body(HostConfig::default()), &image())
        .unwrap()
        .is_empty());
}

#[test]
fn what_the_docker_cli_sends_is_accepted() {
    // `docker create -t -e A=1 -v /tmp:/mnt:ro --tmpfs /run:size=1m busybox echo hi`
    // as docker 28's CLI sends it.
    let wire = serde_json::json!({
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
        "AttachStdout": true, "AttachStderr": true, "Tty": true, "OpenStdin": false,
        "StdinOnce": false, "Env": ["A=1"], "Cmd": ["echo", "hi"], "Image": "busybox",
        "Volumes": {}, "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": {},
        "HostConfig": {
            "Binds": ["/tmp:/mnt:ro"], "ContainerIDFile": "",
            "LogConfig": {"Type": "", "Config": {}}, "NetworkMode": "default",
            "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "AutoRemove": false, "VolumeDriver": "", "VolumesFrom": null, "ConsoleSize": [0, 0],
            "CapAdd": null, "CapDrop": null, "CgroupnsMode": "", "Dns": [], "DnsOptions": [],
            "DnsSearch": [], "ExtraHosts": null, "GroupAdd": null, "IpcMode": "", "Cgroup": "",
            "Links": null, "OomScoreAdj": 0, "PidMode": "", "Privileged": false,
            "PublishAllPorts": false, "ReadonlyRootfs": false, "SecurityOpt": null,
            "Tmpfs": {"/run": "size=1m"}, "UTSMode": "", "UsernsMode": "", "ShmSize": 0,
            "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "",
            "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [],
            "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [],
            "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
            "CpusetCpus": "", "CpusetMems": "", "Devices": [], "DeviceCgroupRules": null,
            "DeviceRequests": null, "MemoryReservation": 0, "MemorySwap": 0,
            "MemorySwappiness": -1, "OomKillDisable": false, "PidsLimit": 0, "Ulimits": [],
            "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
            "MaskedPaths": null, "ReadonlyPaths": null
        },
        "NetworkingConfig": {"EndpointsConfig": {"default": {
            "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
            "DriverOpts": null, "GwPriority": 0, "NetworkID": "", "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null
        }}}
    });
    let body: ContainerCreateBody = serde_json::from_value(wire).unwrap();
    let f = Fixture::new();
    let spec = f.generate(&body, &ImageConfig::default()).unwrap();
    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.cwd(), Path::new("/"));
    assert!(p.console_size().is_none());
    let res = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
    // No limits (OomKillDisable=false is dropped on cgroup v2).
    assert!(res.memory().is_none() && res.pids().is_none() && res.cpu().is_none());
    assert_eq!(options(&spec, "/mnt"), s(&["rbind", "ro", "rprivate"]));
}

#[test]
fn read_only_binds_are_recursive_for_containers_of_api_1_44() {
    let body: ContainerCreateBody = serde_json::from_value(serde_json::json!({
        "Cmd": ["true"],
        "HostConfig": {
            "Binds": ["/var/log:/logs:ro"],
            "Mounts": [
                {"Type": "bind", "Source": "/var", "Target": "/var-default", "ReadOnly": true},
                {"Type": "bind", "Source": "/var", "Target": "/var-top", "ReadOnly": true,
                 "BindOptions": {"ReadOnlyNonRecursive": true}},
                {"Type": "bind", "Source": "/var", "Target": "/var-forced", "ReadOnly": true,
                 "BindOptions": {"ReadOnlyForceRecursive": true}},
                {"Type": "bind", "Source": "/var", "Target": "/var-rw"}
            ]
        }
    }))
    .unwrap();
    let f = Fixture::new();
    let read_only = |recursive| {
        let spec = f
            .generate_as(&body, &ImageConfig::default(), None, recursive)
            .unwrap();
        [
            "/logs",
            "/var-default",
            "/var-top",
            "/var-forced",
            "/var-rw",
        ]
        .map(|d| options(&spec, d)[1].clone())
    };
    // Created before 1.44: the top mount only, unless forced.
    assert_eq!(read_only(false), ["ro", "ro", "ro", "rro", "rprivate"]);
    assert_eq!(read_only(true), ["rro", "rro", "ro", "rro", "rprivate"]);
}

fn refused(hc: HostConfig) -> SpecError {
    Plan::new(&body(hc), &image(), &Host::fixed()).unwrap_err()
}

#[test]
fn not_implemented_names_the_field() {
    let endpoint = |aliases: Option<Vec<String>>| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            "default".to_string(),
            EndpointSettings {
                aliases,
                ..Default::default()
            },
        )])),
    };
    let cases: Vec<(HostConfig, Option<NetworkingConfig>, &str)> = vec![
        (
            HostConfig {
                userns_mode: Some("private".into()),
                ..Default::default()
            },
            None,
            "HostConfig.UsernsMode: ",
        ),
        (
            HostConfig {
                security_opt: Some(s(&["apparmor=docker-default"])),
                ..Default::default()
            },
            None,
            "HostConfig.SecurityOpt: AppArmor profiles (apparmor=docker-default) are not implemented by berthd yet",
        ),
    ];
    for (hc, net, want) in cases {
        let b = ContainerCreateBody {
            networking_config: net,
            ..body(hc)
        };
        let e = Plan::new(&b, &image(), &Host::fixed()).unwrap_err();
        assert!(e.to_string().starts_with(want), "{e} vs {want}");
        assert_eq!(e.kind(), ErrorKind::NotImplemented, "{e}");
        assert_eq!(crate::ApiError::from(e).status, 501);
    }
    // Another container's PID namespace is joined (the daemon resolves it
    // at start).
    let b = body(HostConfig {
        pid_mode: Some("container:abc".into()),
        ..Default::default()
    });
    assert!(Plan::new(&b, &image(), &Host::fixed()).unwrap().pid_private);
    // So is another's IPC namespace; `shareable` is a mode of its own.
    for (mode, want) in [
        ("container:abc", IpcMode::Joined),
        ("shareable", IpcMode::Shareable),
        ("private", IpcMode::Private),
        ("", IpcMode::Private),
    ] {
        let b = body(HostConfig {
            ipc_mode: Some(mode.into()),
            ..Default::default()
        });
        assert_eq!(Plan::new(&b, &image(), &Host::fixed()).unwrap().ipc, want);
    }
    let b = body(HostConfig {
        ipc_mode: Some("container:".into()),
        ..Default::default()
    });
    let e = Plan::new(&b, &image(), &Host::fixed()).unwrap_err();
    assert!(e.to_string().contains("invalid IPC mode"), "{e}");
    // Config.Volumes (`docker run -v /data`) and volumes are the
    // daemon's: the plan accepts them.
    let b = ContainerCreateBody {
        volumes: Some(s(&["/data"])),
        ..body(HostConfig {
            binds: Some(s(&["vol:/x"])),
            volumes_from: Some(s(&["other:ro"])),
            ..Default::default()
        })
    };
    Plan::new(&b, &image(), &Host::fixed()).unwrap();
    // Endpoint settings (aliases, addresses) are the daemon's; host
    // networking's port bindings are ignored with a warning.
    let b = ContainerCreateBody {
        networking_config: Some(endpoint(Some(s(&["web"])))),
        ..body(HostConfig::default())
    };
    Plan::new(&b, &image(), &Host::fixed()).unwrap();
    let plan = Plan::new(
        &body(HostConfig {
            network_mode: Some("host".into()),
            port_bindings: Some(HashMap::from([("80/tcp".to_string(), None)])),
            ..Default::default()
        }),
        &image(),
        &Host::fixed(),
    )
    .unwrap();
    assert_eq!(
        plan.warnings,
        ["Published ports are discarded when using host network mode"]
    );
}

#[test]
fn invalid_arguments_use_dockers_words() {
    let cases: Vec<(HostConfig, &str)> = vec![
        (
            HostConfig {
                memory: Some(1 << 20),
                ..Default::default()
            },
            "Minimum memory limit allowed is 6MB",
        ),
        (
            HostConfig {
                nano_cpus: Some(1_000_000_000),
                cpu_period: Some(100_000),
                ..Default::default()
            },
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ),
        (
            HostConfig {
                cap_add: Some(s(&["CAP_FOO"])),
                ..Default::default()
            },
            "invalid CapAdd: unknown capability: \"CAP_FOO\"",
        ),
        (
            HostConfig {
                ipc_mode: Some("weird".into()),
                ..Default::default()
            },
            "invalid IPC mode: weird",
        ),
        (
            HostConfig {
                pid_mode: Some("weird".into()),
                ..Default::default()
            },
            "invalid PID mode: weird",
        ),
        (
            HostConfig {
                uts_mode: Some("weird".into()),
                ..Default::default()
            },
            "invalid UTS mode: weird",
        ),
        (
            HostConfig {
                shm_size: Some(-1),
                ..Default::default()
            },
            "SHM size can not be less than 0",
        ),
        (
            HostConfig {
                oom_score_adj: Some(1001),
                ..Default::default()
            },
            "Invalid value 1001, range for oom score adj is [-1000, 1000]",
        ),
        (
            HostConfig {
                auto_remove: Some(true),
                restart_policy: Some(berth_api::models::RestartPolicy {
                    name: Some(berth_api::models::RestartPolicyNameEnum::ALWAYS),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            },
            "can't create 'AutoRemove' container with restart policy",
        ),
        (
            HostConfig {
                network_mode: Some("container".into()),
                ..Default::default()
            },
            "invalid network mode: invalid container format container:<name|id>",
        ),
        (
            HostConfig {
                security_opt: Some(s(&["seccomp=not json"])),
                ..Default::default()
            },
            "Decoding seccomp profile failed: ",
        ),
        (
            HostConfig {
                tmpfs: Some([("/".to_string(), String::new())].into()),
                ..Default::default()
            },
            "invalid specification: destination can't be '/'",
        ),
        (
            HostConfig {
                devices: Some(vec![DeviceMapping {
                    path_on_host: Some("/dev/null".into()),
                    path_in_container: Some("/dev/null".into()),
                    cgroup_permissions: Some("rwz".into()),
                }]),
                ..Default::default()
            },
            "bad mode specified: rwz",
        ),
        (
            HostConfig {
                sysctls: Some([("kernel.panic".to_string(), "1".to_string())].into()),
                ..Default::default()
            },
            "sysctl 'kernel.panic' is not allowed",
        ),
    ];
    for (hc, want) in cases {
        let e = refused(hc);
        assert!(e.to_string().starts_with(want), "{e} vs {want}");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        assert_eq!(crate::ApiError::from(e).status, 400);
    }
    let bad_body = |b: ContainerCreateBody, want: &str| {
        let e = Plan::new(&b, &image(), &Host::fixed()).unwrap_err();
        assert_eq!(e.to_string(), want);
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    };
    bad_body(
        ContainerCreateBody {
            working_dir: Some("relative".into()),
            ..body(HostConfig::default())
        },
        "the working directory 'relative' is invalid, it needs to be an absolute path",
    );
    bad_body(
        ContainerCreateBody {
            env: Some(s(&["=x"])),
            ..body(HostConfig::default())
        },
        "invalid environment variable: =x",
    );
    bad_body(
        ContainerCreateBody {
            stop_signal: Some("SIGNOPE".into()),
            ..body(HostConfig::default())
        },
        "Invalid signal: SIGNOPE",
    );
    bad_body(
        ContainerCreateBody {
            hostname: Some("h".repeat(65)),
            ..body(HostConfig::default())
        },
        &format!(
            "hostname \"{}\" is too long (maximum 64 bytes)",
            "h".repeat(65)
        ),
    );
    bad_body(
        ContainerCreateBody {
            hostname: Some("h".into()),
            ..body(HostConfig {
                uts_mode: Some("host".into()),
                ..Default::default()
            })
        },
        "conflicting options: hostname and the UTS mode",
    );
}

#[test]
fn no_command_is_an_error() {
    let b = ContainerCreateBody::default();
    let e = validate(&b, &ImageConfig::default()).unwrap_err();
    assert_eq!(e.to_string(), "No command specified");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        command(&body(HostConfig::default()), &image()).unwrap(),
        ("echo".to_string(), s(&["hi"]))
    );
}

#[test]
fn an_unknown_user_fails_at_start() {
    let f = Fixture::new();
    let e = f
        .generate(
            &ContainerCreateBody {
                user: Some("foo".into()),
                ..body(HostConfig::default())
            },
            &image(),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "unable to find user foo: no matching entries in passwd file"
    );
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn privileged_containers() {
    let f = Fixture::new();
    let spec = f
        .generate(
            &body(HostConfig {
                privileged: Some(true),
                ..Default::default()
            }),
            &image(),
        )
        .unwrap();
    let p = spec.process().as_ref().unwrap();
    assert_eq!(
        p.capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .as_ref()
            .unwrap()
            .len(),
        41
    );
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert_eq!(linux.masked_paths().as_deref(), Some(&[][..]));
    assert_eq!(linux.readonly_paths().as_deref(), Some(&[][..]));
    assert!(!options(&spec, "/sys").contains(&"ro".to_string()));
    assert!(!options(&spec, "/sys/fs/cgroup").contains(&"ro".to_string()));
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0].allow() && rules[0].typ().is_none());
    assert!(linux
        .devices()
        .iter()
        .flatten()
        .any(|d| d.path() == Path::new("/dev/null")));
}

#[test]
fn readonly_rootfs_and_shared_namespaces() {
    let f = Fixture::new();
    let spec = f
        .generate(
            &body(HostConfig {
                readonly_rootfs: Some(true),
                network_mode: Some("host".into()),
                ipc_mode: Some("host".into()),
                pid_mode: Some("host".into()),
                uts_mode: Some("host".into()),
                cgroupns_mode: Some(berth_api::models::HostConfigCgroupnsModeEnum::HOST),
                security_opt: Some(s(&["no-new-privileges", "seccomp=unconfined"])),
                cap_drop: Some(s(&["ALL"])),
                cap_add: Some(s(&["net_admin"])),
                ..Default::default()
            }),
            &image(),
        )
        .unwrap();
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    assert_eq!(namespaces(&spec), [LinuxNamespaceType::Mount]);
    assert_eq!(spec.hostname(), &None);
    assert_eq!(
        options(&spec, "/etc/hosts"),
        s(&["rbind", "ro", "rprivate"])
    );
    assert_eq!(options(&spec, "/dev/shm"), s(&["rbind", "rprivate"]));
    assert_eq!(
        mount(&spec, "/dev/shm").unwrap().typ().as_deref(),
        Some("bind")
    );
    assert!(options(&spec, "/sys/fs/cgroup").contains(&"ro".to_string()));
    assert!(!options(&spec, "/dev/mqueue").contains(&"ro".to_string()));
    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.no_new_privileges(), Some(true));
    let caps = p
        .capabilities()
        .as_ref()
        .unwrap()
        .bounding()
        .clone()
        .unwrap();
    assert_eq!(caps.into_iter().collect::<Vec<_>>(), [Capability::NetAdmin]);
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    // No network sysctls without a network namespace of the container's own.
    assert!(linux.sysctl().is_none());

    // --ipc none: a namespace and no /dev/shm.
    let spec = f
        .generate(
            &body(HostConfig {
                ipc_mode: Some("none".into()),
                ..Default::default()
            }),
            &image(),
        )
        .unwrap();
    assert!(mount(&spec, "/dev/shm").is_none());
    assert!(namespaces(&spec).contains(&LinuxNamespaceType::Ipc));
}

#[test]
fn a_custom_seccomp_profile_and_cap_add() {
    let f = Fixture::new();
    let profile = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["chmod"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
        {"names":["mount"],"action":"SCMP_ACT_ERRNO","excludes":{"caps":["CAP_SYS_ADMIN"]}}]}"#;
    let spec = f
        .generate(
            &body(HostConfig {
                security_opt: Some(vec![format!("seccomp={profile}")]),
                cap_add: Some(s(&["SYS_ADMIN"])),
                ..Default::default()
            }),
            &image(),
        )
        .unwrap();
    let sc = spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
    let names: Vec<String> = sc
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|r| r.names().clone())
        .collect();
    assert_eq!(names, s(&["chmod"]));
}

#[test]
fn user_devices_and_masked_paths() {
    let f = Fixture::new();
    let spec = f
        .generate(
            &body(HostConfig {
                devices: Some(vec![DeviceMapping {
                    path_on_host: Some("/dev/null".into()),
                    path_in_container: Some("/dev/mynull".into()),
                    cgroup_permissions: Some("rw".into()),
                }]),
                device_cgroup_rules: Some(s(&["c 42:* rmw"])),
                masked_paths: Some(s(&["/proc/x"])),
                readonly_paths: Some(vec![]),
                ..Default::default()
            }),
            &image(),
        )
        .unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let dev = &linux.devices().as_ref().unwrap()[0];
    assert_eq!(dev.path(), Path::new("/dev/mynull"));
    assert_eq!((dev.major(), dev.minor()), (1, 3));
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    let n = rules.len();
    assert_eq!(rules[n - 2].access().as_deref(), Some("rw"));
    assert_eq!(rules[n - 1].major(), Some(42));
    assert_eq!(linux.masked_paths().as_deref(), Some(&s(&["/proc/x"])[..]));
    assert_eq!(linux.readonly_paths().as_deref(), Some(&[][..]));
}

#[test]
fn hostname_and_cgroups_path() {
    assert_eq!(
        hostname(&ContainerCreateBody::default(), ID),
        "0123456789ab"
    );
    let b = ContainerCreateBody {
        hostname: Some("web".into()),
        ..Default::default()
    };
    assert_eq!(hostname(&b, ID), "web");
    let host = ContainerCreateBody {
        host_config: Some(HostConfig {
            network_mode: Some("host".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        hostname(&host, ID),
        rustix::system::uname().nodename().to_string_lossy()
    );
    assert_eq!(cgroups_path(&b, "abc"), "/berth/abc");
    let parent = ContainerCreateBody {
        host_config: Some(HostConfig {
            cgroup_parent: Some("mine/".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(cgroups_path(&parent, "abc"), "/mine/abc");
}

#[test]
fn exec_processes() {
    let f = Fixture::new();
    let spec = f
        .generate(
            &ContainerCreateBody {
                tty: Some(true),
                ..body(HostConfig::default())
            },
            &image(),
        )
        .unwrap();
    let container = spec.process().clone().unwrap();
    let exec = berth_api::models::ExecConfig {
        cmd: Some(s(&["ls", "-l"])),
        env: Some(s(&["X=2", "NEW=1"])),
        user: Some("www".into()),
        working_dir: Some("/tmp".into()),
        privileged: Some(true),
        ..Default::default()
    };
    let p = exec_process_with_groups(&exec, &container, &f.rootfs(), &s(&["log"])).unwrap();
    assert_eq!(p.args().as_deref(), Some(&s(&["ls", "-l"])[..]));
    assert_eq!(
        p.env().as_deref(),
        Some(
            &s(&[
                "PATH=/usr/bin:/bin",
                "HOSTNAME=0123456789ab",
                "LANG=en",
                "X=2",
                "NEW=1",
            ])[..]
        )
    );
    assert_eq!(p.terminal(), Some(false));
    assert_eq!(p.cwd(), Path::new("/tmp"));
    assert_eq!((p.user().uid(), p.user().gid()), (33, 33));
    assert_eq!(p.user().additional_gids().as_deref(), Some(&[33, 4][..]));
    assert!(
        p.capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .as_ref()
            .unwrap()
            .len()
            > 14
    );
    assert_eq!(p.rlimits(), container.rlimits());

    // Defaults: the container's user, cwd and capabilities.
    let plain = berth_api::models::ExecConfig {
        cmd: Some(s(&["sh"])),
        tty: Some(true),
        console_size: Some(vec![30, 100]),
        ..Default::default()
    };
    let p = exec_process(&plain, &container, &f.rootfs()).unwrap();
    assert_eq!(p.user(), container.user());
    assert_eq!(p.cwd(), container.cwd());
    assert_eq!(p.capabilities(), container.capabilities());
    assert!(p
        .env()
        .as_ref()
        .unwrap()
        .contains(&"TERM=xterm".to_string()));
    assert_eq!(p.console_size().unwrap().width(), 100);

    let e = exec_process(&Default::default(), &container, &f.rootfs()).unwrap_err();
    assert_eq!(e.to_string(), "No exec command specified");
    let bad = berth_api::models::ExecConfig {
        cmd: Some(s(&["sh"])),
        user: Some("nobody".into()),
        ..Default::default()
    };
    let e = exec_process(&bad, &container, &f.rootfs()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unable to find user nobody: no matching entries in passwd file"
    );
}

#[test]
fn an_init_runs_the_command_as_its_child() {
    let f = Fixture::new();
    let init = Path::new("/usr/libexec/berth-init");
    let spec = f
        .generate_with_init(&body(HostConfig::default()), &image(), Some(init))
        .unwrap();
    let p = spec.process().as_ref().unwrap();
    assert_eq!(
        p.args().as_deref(),
        Some(&s(&["/sbin/docker-init", "--", "echo", "hi"])[..])
    );
    let m = mount(&spec, CONTAINER_INIT_PATH).expect("the init is mounted");
    assert_eq!(m.source().as_deref(), Some(init));
    assert_eq!(m.typ().as_deref(), Some("bind"));
    assert_eq!(options(&spec, CONTAINER_INIT_PATH), s(&["bind", "ro"]));
    assert_eq!(
        spec.mounts()
            .as_ref()
            .unwrap()
            .last()
            .unwrap()
            .destination(),
        Path::new(CONTAINER_INIT_PATH),
        "docker adds it last"
    );

    // HostConfig.Init wins over the daemon's default; no init without a
    // PID namespace of the container's own.
    let with = |init: Option<bool>, pid: Option<&str>| {
        body(HostConfig {
            init,
            pid_mode: pid.map(String::from),
            ..Default::default()
        })
    };
    assert!(uses_init(&with(Some(true), None), false));
    assert!(!uses_init(&with(Some(false), None), true));
    assert!(uses_init(&with(None, None), true));
    assert!(uses_init(&with(None, Some("")), true));
    assert!(!uses_init(&with(None, None), false));
    assert!(!uses_init(&with(Some(true), Some("host")), false));
    assert!(!uses_init(&with(Some(true), Some("container:abc")), true));
}
