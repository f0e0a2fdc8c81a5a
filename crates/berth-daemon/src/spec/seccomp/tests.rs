use std::path::Path;

use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompOperator};

use super::*;
use crate::spec::caps;

/// docker's own default.json (test data; not part of the repository).
fn docker_default_json() -> Vec<u8> {
    let relative = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/seccomp/docker-default.json");
    std::fs::read("/work/shared/testdata/seccomp/docker-default.json")
        .or_else(|_| std::fs::read(relative))
        .expect("docker's default seccomp profile in shared/testdata/seccomp")
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn names(p: &LinuxSeccomp) -> Vec<String> {
    p.syscalls()
        .iter()
        .flatten()
        .flat_map(|r| r.names().clone())
        .collect()
}

#[test]
fn the_builtin_table_is_dockers_default_profile() {
    let ours = default_profile();
    let theirs = parse(&docker_default_json()).unwrap();
    assert_eq!(ours.syscalls.len(), theirs.syscalls.len());
    for (i, (a, b)) in ours.syscalls.iter().zip(&theirs.syscalls).enumerate() {
        assert_eq!(a, b, "rule {i}");
    }
    assert_eq!(ours, theirs);
}

#[test]
fn the_builtin_table_resolves_as_dockers_json() {
    let ours = default_profile();
    let theirs = parse(&docker_default_json()).unwrap();
    let default_caps = s(caps::DEFAULT);
    let with = |extra: &[&str]| {
        let mut c = default_caps.clone();
        c.extend(s(extra));
        c
    };
    let variants: Vec<(&str, Vec<String>)> = vec![
        ("default", default_caps.clone()),
        ("+SYS_ADMIN", with(&["CAP_SYS_ADMIN"])),
        ("+SYS_PTRACE", with(&["CAP_SYS_PTRACE"])),
        (
            "+SYS_TIME +SYS_NICE +SYSLOG +BPF +PERFMON",
            with(&[
                "CAP_SYS_TIME",
                "CAP_SYS_NICE",
                "CAP_SYSLOG",
                "CAP_BPF",
                "CAP_PERFMON",
            ]),
        ),
        (
            "+SYS_MODULE +SYS_RAWIO +SYS_PACCT +SYS_BOOT +DAC_READ_SEARCH +SYS_TTY_CONFIG",
            with(&[
                "CAP_SYS_MODULE",
                "CAP_SYS_RAWIO",
                "CAP_SYS_PACCT",
                "CAP_SYS_BOOT",
                "CAP_DAC_READ_SEARCH",
                "CAP_SYS_TTY_CONFIG",
            ]),
        ),
        ("-SYS_CHROOT", {
            let mut c = default_caps.clone();
            c.retain(|x| x != "CAP_SYS_CHROOT");
            c
        }),
        ("all", caps::all((1 << 41) - 1)),
        ("none", Vec::new()),
    ];
    for arch in ["amd64", "arm64", "s390x", "ppc64le", "x86", "riscv64"] {
        for kernel in [(4, 4), (6, 1)] {
            for (what, c) in &variants {
                let a = resolve(&ours, c, arch, kernel).unwrap().unwrap();
                let b = resolve(&theirs, c, arch, kernel).unwrap().unwrap();
                assert_eq!(a, b, "{what} on {arch} kernel {kernel:?}");
                assert_eq!(
                    serde_json::to_string(&a).unwrap(),
                    serde_json::to_string(&b).unwrap()
                );
            }
        }
    }
}

#[test]
fn the_default_profile_on_x86_64() {
    let p = resolve(&default_profile(), &s(caps::DEFAULT), "amd64", (6, 1))
        .unwrap()
        .unwrap();
    assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(p.default_errno_ret(), Some(1));
    assert_eq!(
        p.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
    );
    let n = names(&p);
    for allowed in [
        "read",
        "arch_prctl",
        "modify_ldt",
        "ptrace",
        "chroot",
        "clone",
    ] {
        assert!(n.iter().any(|x| x == allowed), "{allowed}");
    }
    for denied in [
        "mount",
        "unshare",
        "reboot",
        "s390_runtime_instr",
        "iopl",
        "bpf",
    ] {
        assert!(!n.iter().any(|x| x == denied), "{denied}");
    }
    // clone without namespace flags only, clone3 answers ENOSYS.
    let syscalls = p.syscalls().clone().unwrap();
    let clone = syscalls
        .iter()
        .find(|r| r.names() == &s(&["clone"]))
        .unwrap();
    let arg = clone.args().as_ref().unwrap()[0];
    assert_eq!((arg.index(), arg.value()), (0, 0x7e02_0000));
    assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
    let clone3 = syscalls
        .iter()
        .find(|r| r.names() == &s(&["clone3"]))
        .unwrap();
    assert_eq!(clone3.action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(clone3.errno_ret(), Some(38));

    // With CAP_SYS_ADMIN: mount allowed, clone unrestricted, no clone3 ENOSYS.
    let admin = resolve(
        &default_profile(),
        &[s(caps::DEFAULT), s(&["CAP_SYS_ADMIN"])].concat(),
        "amd64",
        (6, 1),
    )
    .unwrap()
    .unwrap();
    let syscalls = admin.syscalls().clone().unwrap();
    assert!(names(&admin).iter().any(|x| x == "mount"));
    assert!(!syscalls.iter().any(|r| r.names() == &s(&["clone3"])));
    assert!(!syscalls
        .iter()
        .any(|r| r.names() == &s(&["clone"]) && r.args().is_some()));
    // An old kernel loses the minKernel 4.8 rule.
    let old = resolve(&default_profile(), &s(caps::DEFAULT), "amd64", (4, 4))
        .unwrap()
        .unwrap();
    assert!(!names(&old).iter().any(|x| x == "ptrace"));
}

#[test]
fn includes_and_excludes_follow_moby() {
    let profile = parse(
        br#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["a64"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}},
            {"names": ["noadmin"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["oldonly"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}},
            {"names": ["future"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "9.0"}},
            {"name": "write", "action": "SCMP_ACT_LOG", "comment": "old form"}
        ]
    }"#,
    )
    .unwrap();
    let p = resolve(&profile, &[], "amd64", (5, 4)).unwrap().unwrap();
    assert_eq!(names(&p), s(&["read", "noadmin", "oldonly", "write"]));
    assert_eq!(
        p.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86][..])
    );
    let p = resolve(&profile, &s(&["CAP_SYS_ADMIN"]), "arm64", (6, 1))
        .unwrap()
        .unwrap();
    assert_eq!(names(&p), s(&["read", "a64", "write"]));
    assert_eq!(
        p.architectures().as_deref(),
        Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
    );
    let p = resolve(
        &profile,
        &s(&["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]),
        "s390x",
        (6, 1),
    )
    .unwrap()
    .unwrap();
    assert_eq!(names(&p), s(&["read", "mount", "write"]));
    assert_eq!(p.architectures(), &None);
}

#[test]
fn profiles_without_action_or_rules_mean_no_filter() {
    assert_eq!(
        resolve(&parse(b"{}").unwrap(), &[], "amd64", (6, 1)).unwrap(),
        None
    );
    let err = resolve(
        &parse(br#"{"syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW"}]}"#).unwrap(),
        &[],
        "amd64",
        (6, 1),
    )
    .unwrap_err();
    assert!(err.to_string().contains("defaultAction"), "{err}");
    // Fixed architectures pass through.
    let p = resolve(
        &parse(br#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "flags": ["SECCOMP_FILTER_FLAG_LOG"]}"#)
            .unwrap(),
        &[],
        "amd64",
        (6, 1),
    )
    .unwrap()
    .unwrap();
    assert_eq!(p.architectures().as_deref(), Some(&[Arch::ScmpArchX86][..]));
    assert_eq!(p.flags().as_ref().map(Vec::len), Some(1));
    assert_eq!(p.syscalls(), &None);
}

#[test]
fn bad_profiles_are_invalid_arguments() {
    let cases: &[(&[u8], &str)] = &[
        (b"not json", "Decoding seccomp profile failed: "),
        (
            br#"{"defaultAction": "SCMP_ACT_EXPLODE"}"#,
            "Decoding seccomp profile failed: unknown action \"SCMP_ACT_EXPLODE\"",
        ),
        (
            br#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
            "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'",
        ),
        (
            br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ERRNO"}]}"#,
            "both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'",
        ),
        (
            br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["b"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4"}}]}"#,
            "Decoding seccomp profile failed: invalid kernel version: \"4\", expected \"<kernel>.<major>\"",
        ),
        (
            br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["b"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}]}"#,
            "Decoding seccomp profile failed: ",
        ),
    ];
    for (json, want) in cases {
        let err = parse(json).unwrap_err();
        assert!(err.to_string().starts_with(want), "{err} vs {want}");
        assert_eq!(
            berth_errdefs::HasKind::kind(&err),
            berth_errdefs::ErrorKind::InvalidArgument
        );
    }
}
