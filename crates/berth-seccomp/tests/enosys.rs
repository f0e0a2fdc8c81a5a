//! The compiled programs run through a small classic-BPF interpreter, to
//! check verdicts for syscalls no test process can make: numbers newer than
//! the profile, other ABIs (x86, x32) and foreign architectures.

use std::path::Path;

use berth_seccomp::{compile, docker_to_oci, parse_profile, CompiledFilter, DockerTarget};
use berth_sys::seccomp::SockFilter;
use serde_json::json;

const AUDIT_X86_64: u32 = 0xc000_003e;
const AUDIT_I386: u32 = 0x4000_0003;
const AUDIT_AARCH64: u32 = 0xc000_00b7;
const X32_BIT: u32 = 0x4000_0000;

const ALLOW: u32 = 0x7fff_0000;
const KILL_THREAD: u32 = 0;
const fn errno(e: u32) -> u32 {
    0x0005_0000 | e
}

/// Runs a seccomp program on one `struct seccomp_data` and returns its verdict.
fn run(program: &[SockFilter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    for _ in 0..program.len() {
        let ins = program[pc];
        pc += 1;
        let k = ins.k;
        let jump = |cond: bool| {
            if cond {
                usize::from(ins.jt)
            } else {
                usize::from(ins.jf)
            }
        };
        match ins.code {
            0x20 => a = u32::from_ne_bytes(data[k as usize..k as usize + 4].try_into().unwrap()),
            0x00 => a = k,
            0x01 => x = k,
            0x02 => mem[k as usize] = a,
            0x03 => mem[k as usize] = x,
            0x60 => a = mem[k as usize],
            0x61 => x = mem[k as usize],
            0x54 => a &= k,
            0x07 => x = a,
            0x87 => a = x,
            0x05 => pc += k as usize,
            0x15 => pc += jump(a == k),
            0x25 => pc += jump(a > k),
            0x35 => pc += jump(a >= k),
            0x45 => pc += jump(a & k != 0),
            0x1d => pc += jump(a == x),
            0x2d => pc += jump(a > x),
            0x3d => pc += jump(a >= x),
            0x4d => pc += jump(a & x != 0),
            0x06 => return k,
            0x16 => return a,
            other => panic!("opcode {other:#x} at {} not in the interpreter", pc - 1),
        }
    }
    panic!("program ran off its end or looped");
}

fn verdict(f: &CompiledFilter, arch: u32, nr: u32) -> u32 {
    run(f.program(), arch, nr, [0; 6])
}

fn docker_default() -> CompiledFilter {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/seccomp/docker-default.json");
    let bytes = std::fs::read("/work/shared/testdata/seccomp/docker-default.json")
        .or_else(|_| std::fs::read(shared))
        .unwrap();
    let target = DockerTarget {
        goarch: "amd64".into(),
        kernel: (6, 18),
    };
    compile(&docker_to_oci(&bytes, &[], &target).unwrap()).unwrap()
}

#[test]
#[cfg(target_arch = "x86_64")]
fn docker_default_verdicts_on_every_x86_abi() {
    let f = docker_default();
    // x86_64: read, unshare (needs CAP_SYS_ADMIN), clone3 (ENOSYS by rule),
    // futex_requeue (456, the newest name libseccomp 2.5.4 resolves).
    assert_eq!(verdict(&f, AUDIT_X86_64, 0), ALLOW);
    assert_eq!(verdict(&f, AUDIT_X86_64, 272), errno(1));
    assert_eq!(verdict(&f, AUDIT_X86_64, 435), errno(38));
    assert_eq!(verdict(&f, AUDIT_X86_64, 456), ALLOW);
    // Newer than anything the profile names: ENOSYS, so libc falls back.
    assert_eq!(verdict(&f, AUDIT_X86_64, 470), errno(38));
    assert_eq!(verdict(&f, AUDIT_X86_64, 5000), errno(38));
    // i386: read is 3, unshare 310.
    assert_eq!(verdict(&f, AUDIT_I386, 3), ALLOW);
    assert_eq!(verdict(&f, AUDIT_I386, 310), errno(1));
    assert_eq!(verdict(&f, AUDIT_I386, 5000), errno(38));
    // x32: numbers carry bit 30.
    assert_eq!(verdict(&f, AUDIT_X86_64, X32_BIT), ALLOW);
    assert_eq!(verdict(&f, AUDIT_X86_64, X32_BIT | 272), errno(1));
    assert_eq!(verdict(&f, AUDIT_X86_64, X32_BIT | 5000), errno(38));
    // An architecture the profile does not list is killed by libseccomp.
    assert_eq!(verdict(&f, AUDIT_AARCH64, 63) & 0xffff_0000, KILL_THREAD);
}

#[test]
fn permissive_defaults_get_no_prologue() {
    for default in ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG"] {
        let f = compile(
            &parse_profile(&json!({"defaultAction": default,
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]}))
            .unwrap(),
        )
        .unwrap();
        let allowed = if default == "SCMP_ACT_LOG" {
            0x7ffc_0000
        } else {
            ALLOW
        };
        assert_eq!(verdict(&f, AUDIT_X86_64, 5000), allowed, "{default}");
    }
    let enosys_default = compile(
        &parse_profile(
            &json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(verdict(&enosys_default, AUDIT_X86_64, 5000), errno(38));
}

#[test]
#[cfg(target_arch = "x86_64")]
fn deny_by_default_keeps_its_errno_below_the_newest_named_syscall() {
    // getpid is 39 on x86_64: 38 and below are denied on purpose, 40 and up are unknown to the author.
    let f = compile(
        &parse_profile(
            &json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(verdict(&f, AUDIT_X86_64, 39), ALLOW);
    assert_eq!(verdict(&f, AUDIT_X86_64, 0), errno(13));
    assert_eq!(verdict(&f, AUDIT_X86_64, 40), errno(38));
}

#[test]
#[cfg(target_arch = "x86_64")]
fn argument_conditions_in_the_interpreter_match_the_kernel_tests() {
    let f = compile(
        &parse_profile(&json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                          "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                                   {"index": 1, "value": 0xffff_ffff_0000_0000_u64, "valueTwo": 0x1_0000_0000_u64, "op": "SCMP_CMP_MASKED_EQ"}]}]}))
        .unwrap(),
    )
    .unwrap();
    const PERSONALITY: u32 = 135;
    assert_eq!(
        run(
            f.program(),
            AUDIT_X86_64,
            PERSONALITY,
            [8, 0x1_0000_0007, 0, 0, 0, 0]
        ),
        errno(13)
    );
    // Both conditions must hold: a mismatch on either argument passes.
    assert_eq!(
        run(
            f.program(),
            AUDIT_X86_64,
            PERSONALITY,
            [8, 0x2_0000_0007, 0, 0, 0, 0]
        ),
        ALLOW
    );
    assert_eq!(
        run(
            f.program(),
            AUDIT_X86_64,
            PERSONALITY,
            [0, 0x1_0000_0007, 0, 0, 0, 0]
        ),
        ALLOW
    );
}

#[test]
#[cfg(target_arch = "x86_64")]
fn docker_default_compiles_for_any_capability_set() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/seccomp/docker-default.json");
    let bytes = std::fs::read("/work/shared/testdata/seccomp/docker-default.json")
        .or_else(|_| std::fs::read(shared))
        .unwrap();
    let target = DockerTarget {
        goarch: "amd64".into(),
        kernel: (6, 18),
    };
    let all: Vec<String> = [
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_CHROOT",
        "CAP_SYS_MODULE",
        "CAP_SYS_PACCT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_SYS_NICE",
        "CAP_SYSLOG",
        "CAP_BPF",
        "CAP_PERFMON",
        "CAP_DAC_READ_SEARCH",
    ]
    .map(String::from)
    .to_vec();
    let admin = compile(&docker_to_oci(&bytes, &all, &target).unwrap()).unwrap();
    let plain = compile(&docker_to_oci(&bytes, &[], &target).unwrap()).unwrap();
    // unshare (272) and clone3 (435) follow CAP_SYS_ADMIN.
    assert_eq!(verdict(&admin, AUDIT_X86_64, 272), ALLOW);
    assert_eq!(verdict(&admin, AUDIT_X86_64, 435), ALLOW);
    assert_eq!(verdict(&plain, AUDIT_X86_64, 272), errno(1));
    assert_eq!(verdict(&plain, AUDIT_X86_64, 435), errno(38));
}
