//! Docker's default profile through the compiler and the on-disk cache.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_errdefs::{ErrorKind, HasKind};
use berth_seccomp::{compile, compile_cached, docker_to_oci, parse_profile, DockerTarget, Error};
use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;

fn docker_default() -> LinuxSeccomp {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/seccomp/docker-default.json");
    let bytes = std::fs::read("/work/shared/testdata/seccomp/docker-default.json")
        .or_else(|_| std::fs::read(&shared))
        .expect("Docker's default profile in shared/testdata/seccomp");
    docker_to_oci(&bytes, &[], &DockerTarget::host()).unwrap()
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-seccomp-cache-")
        .tempdir()
        .unwrap()
}

/// The files in `dir`, sorted.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn mean(runs: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..runs {
        f();
    }
    start.elapsed() / runs
}

#[test]
fn docker_default_compiles_and_the_cache_is_faster() {
    let profile = docker_default();
    let tmp = scratch();
    let cache = tmp.path().join("cache");

    let fresh = compile(&profile).unwrap();
    assert!(
        fresh.program().len() > 100,
        "suspiciously small program: {}",
        fresh.program().len()
    );
    assert!(fresh.program().len() <= 4096);
    assert!(!fresh.needs_listener());

    let compile_time = mean(5, || {
        compile(&profile).unwrap();
    });
    let miss_start = Instant::now();
    let first = compile_cached(&profile, &cache).unwrap();
    let miss_time = miss_start.elapsed();
    let hit_time = mean(50, || {
        compile_cached(&profile, &cache).unwrap();
    });
    assert_eq!(first, fresh);
    assert_eq!(compile_cached(&profile, &cache).unwrap(), fresh);
    println!(
        "docker default profile: {} BPF instructions; compile {compile_time:?}, \
         first compile_cached (miss + write) {miss_time:?}, cached load {hit_time:?}",
        fresh.program().len()
    );
    assert!(
        hit_time < compile_time,
        "cache hit {hit_time:?} not faster than compiling {compile_time:?}"
    );
}

#[test]
fn cache_round_trip_leaves_one_entry_and_no_temporaries() {
    let tmp = scratch();
    let cache = tmp.path().join("nested/cache");
    let profile = docker_default();
    let a = compile_cached(&profile, &cache).unwrap();
    let b = compile_cached(&profile, &cache).unwrap();
    assert_eq!(a, b);
    let files = entries(&cache);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap();
    assert!(name.ends_with(".bpf") && name.len() == 64 + 4, "{name}");
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn corrupt_entries_are_recompiled_and_rewritten() {
    let tmp = scratch();
    let cache = tmp.path().join("cache");
    let profile = docker_default();
    let good = compile_cached(&profile, &cache).unwrap();
    let path = entries(&cache).remove(0);
    let pristine = std::fs::read(&path).unwrap();

    let mut flipped = pristine.clone();
    flipped[100] ^= 0x01; // inside the program
    let mut wrong_size = pristine.clone();
    wrong_size.truncate(pristine.len() - 9);
    for (what, bytes) in [
        ("a flipped bit", flipped),
        ("a truncated entry", wrong_size),
        ("an empty file", Vec::new()),
        ("garbage", vec![0xAB; 4000]),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        let again = compile_cached(&profile, &cache).unwrap();
        assert_eq!(again, good, "after {what}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            pristine,
            "entry not rewritten after {what}"
        );
    }
    assert_eq!(entries(&cache).len(), 1);
}

#[test]
fn key_follows_the_program_not_the_spelling() {
    let tmp = scratch();
    let cache = tmp.path().join("cache");
    let a = parse_profile(&json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}))
    .unwrap();
    // Same profile, other key order, plus listener fields that do not change the program.
    let b: LinuxSeccomp = serde_json::from_str(
        r#"{ "syscalls": [ { "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "names": ["getpid"] } ],
             "listenerPath": "/run/agent.sock", "listenerMetadata": "x",
             "defaultAction": "SCMP_ACT_ALLOW" }"#,
    )
    .unwrap();
    compile_cached(&a, &cache).unwrap();
    compile_cached(&b, &cache).unwrap();
    assert_eq!(entries(&cache).len(), 1);

    let c = parse_profile(&json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2}]}))
    .unwrap();
    let filter_c = compile_cached(&c, &cache).unwrap();
    assert_eq!(entries(&cache).len(), 2);
    assert_ne!(filter_c, compile(&a).unwrap());
}

#[test]
fn a_cache_others_can_write_is_refused() {
    let tmp = scratch();
    let cache = tmp.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = compile_cached(&docker_default(), &cache).unwrap_err();
    assert!(matches!(err, Error::Cache { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert!(err.to_string().contains("chmod 700"), "{err}");
    assert!(entries(&cache).is_empty());
}
