//! Profiles berth must refuse, and what the error says; plus the flags and
//! shapes of what it accepts.

use berth_errdefs::{ErrorKind, HasKind};
use berth_seccomp::{compile, parse_profile, Error};
use berth_sys::seccomp as sys;
use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

/// Builds the typed profile directly, bypassing parse_profile's checks, so
/// that compile's own validation is what is tested.
fn typed(value: Value) -> LinuxSeccomp {
    serde_json::from_value(value).unwrap()
}

fn parse_err(value: Value) -> String {
    let err = parse_profile(&value).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    err.to_string()
}

fn compile_err(value: Value) -> Error {
    compile(&typed(value)).unwrap_err()
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for p in parts {
        assert!(message.contains(p), "{message:?} does not mention {p:?}");
    }
}

#[test]
fn unknown_names_are_refused_with_field_and_value() {
    let msg = parse_err(json!({"defaultAction": "SCMP_ACT_NOPE"}));
    assert_mentions(
        &msg,
        &[
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOPE",
            "SCMP_ACT_ERRNO",
        ],
    );

    let msg = parse_err(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW"}, {"names": ["b"], "action": "KILL"}]}));
    assert_mentions(&msg, &["linux.seccomp.syscalls[1].action", "KILL"]);

    let msg = parse_err(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 1, "op": "SCMP_CMP_APPROX"}]}]}));
    assert_mentions(
        &msg,
        &[
            "linux.seccomp.syscalls[0].args[1].op",
            "SCMP_CMP_APPROX",
            "SCMP_CMP_MASKED_EQ",
        ],
    );

    let msg = parse_err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]}),
    );
    assert_mentions(&msg, &["linux.seccomp.architectures[1]", "SCMP_ARCH_Z80"]);

    let msg = parse_err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}),
    );
    assert_mentions(
        &msg,
        &[
            "linux.seccomp.flags[0]",
            "SECCOMP_FILTER_FLAG_BOGUS",
            "SECCOMP_FILTER_FLAG_TSYNC",
        ],
    );
}

#[test]
fn argument_index_above_five_is_refused_by_both_layers() {
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]});
    assert_mentions(
        &parse_err(profile.clone()),
        &["linux.seccomp.syscalls[0].args[0].index", "= 6"],
    );
    let err = compile_err(profile);
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_mentions(
        &err.to_string(),
        &["linux.seccomp.syscalls[0].args[0].index = 6", "0 to 5"],
    );
}

#[test]
fn malformed_shapes_are_refused() {
    assert_mentions(&parse_err(json!([])), &["linux.seccomp", "object"]);
    assert_mentions(
        &parse_err(json!({})),
        &["linux.seccomp.defaultAction", "required"],
    );
    assert_mentions(
        &parse_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {"names": []}})),
        &["linux.seccomp.syscalls", "array"],
    );
    // Schema errors past the name checks still come back as our error.
    assert_mentions(
        &parse_err(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "read", "action": "SCMP_ACT_ALLOW"}]}),
        ),
        &["linux.seccomp", "OCI schema"],
    );
}

#[test]
fn errno_is_refused_where_the_action_takes_none() {
    let err = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL", "errnoRet": 5}]}));
    assert_mentions(
        &err.to_string(),
        &[
            "linux.seccomp.syscalls[0].errnoRet = 5",
            "SCMP_ACT_KILL takes no errno",
        ],
    );

    let err = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}));
    assert_mentions(&err.to_string(), &["linux.seccomp.defaultErrnoRet = 1"]);

    let err = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}));
    assert_mentions(
        &err.to_string(),
        &["linux.seccomp.syscalls[0].errnoRet = 70000", "65536"],
    );
}

#[test]
fn notify_is_refused_where_it_would_hang_the_runtime() {
    let err = compile_err(json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
    assert_mentions(
        &err.to_string(),
        &["linux.seccomp.defaultAction = SCMP_ACT_NOTIFY"],
    );
    let err = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert_mentions(
        &err.to_string(),
        &[
            "linux.seccomp.syscalls[0].names[1] = write",
            // runc's wording, which its tests look for
            "SCMP_ACT_NOTIFY cannot be used for the write syscall",
        ],
    );
}

#[test]
fn empty_names_are_refused() {
    let err = compile_err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}),
    );
    assert_mentions(
        &err.to_string(),
        &["linux.seccomp.syscalls[0].names", "at least one"],
    );
    let err = compile_err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read", ""], "action": "SCMP_ACT_ERRNO"}]}),
    );
    assert_mentions(&err.to_string(), &["linux.seccomp.syscalls[0].names[1]"]);
}

#[test]
fn unknown_syscalls_are_skipped_not_fatal() {
    let with_unknown = compile(&typed(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid", "no_such_syscall_in_any_kernel"], "action": "SCMP_ACT_ERRNO"}]})))
    .unwrap();
    let without = compile(&typed(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]})))
    .unwrap();
    assert_eq!(with_unknown, without);
}

#[test]
fn rules_equal_to_the_default_action_change_nothing() {
    // write (1) is the newest syscall named in all three, so the ENOSYS
    // prologue is the same and only the rules can differ.
    let base = compile(&typed(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["write"], "action": "SCMP_ACT_ALLOW"}]})))
    .unwrap();
    let redundant = compile(&typed(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["write"], "action": "SCMP_ACT_ALLOW"}, {"names": ["read"], "action": "SCMP_ACT_ERRNO"}]})))
    .unwrap();
    assert_eq!(base, redundant);
    // A different errno is a different action, so that rule stays.
    let distinct = compile(&typed(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["write"], "action": "SCMP_ACT_ALLOW"}, {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]})))
    .unwrap();
    assert_ne!(base, distinct);
}

#[test]
fn flags_map_to_seccomp_load_flags() {
    let f = compile(&typed(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]})))
    .unwrap();
    assert_eq!(
        f.flags(),
        sys::FLAG_LOG | sys::FLAG_SPEC_ALLOW | sys::FLAG_TSYNC | sys::FLAG_TSYNC_ESRCH
    );
    assert!(!f.needs_listener());

    let n = compile(&typed(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mknodat"], "action": "SCMP_ACT_NOTIFY"}]})))
    .unwrap();
    assert!(n.needs_listener());
    assert_eq!(n.flags(), sys::FLAG_NEW_LISTENER);
}

#[test]
fn multi_arch_filters_check_every_architecture() {
    let rules = json!([{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]);
    let native = compile(&typed(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}),
    ))
    .unwrap();
    let multi = compile(&typed(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": rules})))
    .unwrap();
    assert!(
        multi.program().len() > native.program().len(),
        "3-arch program ({}) is not larger than the native one ({})",
        multi.program().len(),
        native.program().len()
    );
    // The first instruction of every libseccomp filter loads seccomp_data.arch (offset 4).
    assert_eq!(multi.program()[0].k, 4);
}

#[test]
fn trace_and_errno_default_to_eperm() {
    let explicit = compile(&typed(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                     {"names": ["getppid"], "action": "SCMP_ACT_TRACE", "errnoRet": 1}]})))
    .unwrap();
    let implicit = compile(&typed(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
                     {"names": ["getppid"], "action": "SCMP_ACT_TRACE"}]})))
    .unwrap();
    assert_eq!(explicit, implicit);
}

#[test]
fn wait_killable_recv_needs_a_listener_and_an_oci_spec_that_knows_it() {
    let notify = json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mknodat"], "action": "SCMP_ACT_NOTIFY"}]});
    match parse_profile(&notify) {
        // oci-spec >= 0.10 has the flag (kernel >= 5.19 supports it).
        Ok(profile) => {
            let f = compile(&profile).unwrap();
            assert_eq!(
                f.flags(),
                sys::FLAG_NEW_LISTENER | sys::FLAG_WAIT_KILLABLE_RECV
            );
            // Without a NOTIFY rule the flag means nothing and is dropped.
            let mut plain = notify.clone();
            plain["syscalls"] = json!([]);
            let f = compile(&parse_profile(&plain).unwrap()).unwrap();
            assert_eq!(f.flags(), 0);
        }
        // oci-spec 0.8 cannot even represent it: the error says so.
        Err(e) => assert_mentions(
            &e.to_string(),
            &["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "oci-spec"],
        ),
    }
}

#[test]
fn conflicting_unconditional_rules_keep_the_first() {
    // As libseccomp (and so runc and crun): the first rule wins, later
    // conflicting ones are dropped with a warning, and the profile compiles.
    compile(&typed(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
                     {"names": ["getppid"], "action": "SCMP_ACT_LOG"},
                     {"names": ["gettid", "getpid"], "action": "SCMP_ACT_KILL"}]})))
    .unwrap();
    // The same action twice, or a conditional rule beside an unconditional one, is fine.
    compile(&typed(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
                     {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
                     {"names": ["getpid"], "action": "SCMP_ACT_KILL", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]})))
    .unwrap();
}
