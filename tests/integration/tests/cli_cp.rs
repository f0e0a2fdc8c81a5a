//! `berth cp CONTAINER:PATH HOSTPATH` against docker's client on one
//! private dockerd (each case in two fresh, identical destination trees:
//! exit code, message and the resulting tree must be the same), and
//! against a fake daemon that serves hostile archives (nothing may land
//! outside the destination). Needs `cargo build --release -p berth
//! -p berth-runtime` first.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_integration::cli::Clients;
use berth_integration::peers::Dockerd;

/// Every entry under `root`: path, type, mode, owner, size, link target,
/// contents of small files and the mtime of non-directories (directory
/// times move with every entry made in them).
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        names.sort();
        for p in names {
            let m = std::fs::symlink_metadata(&p).expect("lstat");
            let rel = p.strip_prefix(root).expect("below root").display();
            let ft = m.file_type();
            let detail = if ft.is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else if ft.is_file() {
                format!(
                    "{:?} mtime {}",
                    String::from_utf8_lossy(&std::fs::read(&p).unwrap()),
                    m.mtime()
                )
            } else {
                String::new()
            };
            out.push(format!(
                "{rel} {:o} {}:{} {detail}",
                m.mode(),
                m.uid(),
                m.gid()
            ));
            if ft.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// What a destination looks like before each copy: a directory, a file,
/// a symlink to the directory, and a file where a copied directory has a
/// subdirectory.
fn prepare(dir: &Path) {
    std::fs::create_dir_all(dir.join("exist_dir")).unwrap();
    std::fs::write(dir.join("exist_file"), "old\n").unwrap();
    std::os::unix::fs::symlink("exist_dir", dir.join("lnk")).unwrap();
    std::fs::create_dir_all(dir.join("clash")).unwrap();
    std::fs::write(dir.join("clash/sub"), "a file\n").unwrap();
    // Both trees alike to the second.
    for f in ["exist_file", "clash/sub"] {
        std::fs::File::options()
            .write(true)
            .open(dir.join(f))
            .and_then(|f| {
                f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1 << 30))
            })
            .unwrap();
    }
}

/// An error line without the client's prefixes and with the case's own
/// directory replaced.
fn message(stderr: &str, dir: &Path) -> String {
    stderr
        .lines()
        .map(|l| {
            let l = l.strip_prefix("berth: ").unwrap_or(l);
            let l = l.strip_prefix("Error response from daemon: ").unwrap_or(l);
            l.strip_prefix("Error: ").unwrap_or(l).to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
        .replace(&dir.display().to_string(), "DEST")
}

#[test]
fn cp_out_of_a_container_as_docker() {
    let Some(daemon) = Dockerd::start("cli_cp") else {
        return;
    };
    let mut c = Clients::new(&daemon);
    // Owned by 1000 and mode 640: a copy out belongs to the caller, with
    // or without -a, as docker's client untars with NoLchown.
    let r = daemon.run(
        &["--name", "cpsrc"],
        &[
            "sh",
            "-c",
            "mkdir -p /d/sub && echo hello > /d/a && echo deep > /d/sub/b \
             && ln -s d /dl && ln -s /d/a /al && ln -s sub /d/rel \
             && chown 1000:1000 /d/a && chmod 640 /d/a && chmod 710 /d/sub",
        ],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let cases: &[(&[&str], &str, &str)] = &[
        (&[], "/d", ""),
        (&[], "/d", "new"),
        (&[], "/d/", "new_slash/"),
        (&[], "/d/.", "dot"),
        (&[], "/d/.", "exist_dir"),
        (&[], "/d/.", "exist_dir/."),
        (&[], "/d/a", "file1"),
        (&[], "/d/a", "exist_file"),
        (&[], "/d/a", "exist_dir"),
        (&[], "/d/a", "lnk"),
        (&[], "/d/a", "nodir/"),
        (&[], "/d/a", "nodir/."),
        (&[], "/d", "exist_file"),
        (&[], "/d/a", "missing/x"),
        (&[], "/d/a", "exist_file/x"),
        (&[], "/d/sub", "exist_dir"),
        (&[], "/d/.", "clash"),
        (&[], "/dl", "dl1"),
        (&["-L"], "/dl", "dl2"),
        (&["-L"], "/dl", "exist_dir"),
        (&["-L"], "/al", "al2"),
        (&[], "/al", "al1"),
        (&["-L"], "/d/rel", "rel"),
        (&["-a"], "/d/a", "arch"),
        (&["-a"], "/d", "arch_dir"),
    ];
    let scratch = tempfile::tempdir().expect("temp dir");
    for (i, (flags, src, dest)) in cases.iter().enumerate() {
        let run = |who: &str| {
            let dir = scratch.path().join(format!("{who}{i}"));
            prepare(&dir);
            let mut args = vec!["cp"];
            args.extend_from_slice(flags);
            let src = format!("cpsrc:{src}");
            args.push(&src);
            let dest = format!("{}/{dest}", dir.display());
            args.push(&dest);
            let r = if who == "docker" {
                c.docker(&args)
            } else {
                c.berth(&args)
            };
            (r.code, message(&r.stderr, &dir), tree(&dir), r.stdout)
        };
        let d = run("docker");
        let b = run("berth");
        c.compared += 1;
        if d != b {
            c.mismatch(format!(
                "cp {flags:?} {src} {dest}:\n--- docker:\n{d:#?}\n--- berth:\n{b:#?}"
            ));
        }
    }
    // A missing source: docker 20.10's client words the 404 itself, newer
    // ones print the daemon's message (berth does); both fail with 1.
    let out = scratch.path().join("missing");
    let out = out.display().to_string();
    for r in [
        c.docker(&["cp", "cpsrc:/nosuch", &out]),
        c.berth(&["cp", "cpsrc:/nosuch", &out]),
    ] {
        if r.code != 1 || !r.stderr.contains("/nosuch") {
            c.mismatch(format!("cp of a missing source: {r:?}"));
        }
    }
    let r = c.docker(&["rm", "-f", "cpsrc"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mismatches = c.mismatches().to_vec();
    let compared = c.compared;
    daemon.finish();
    berth_integration::cli::assert_agreed(&mismatches, compared);
}

/// One ustar header block plus the data, padded.
fn entry(out: &mut Vec<u8>, name: &str, kind: u8, link: &str, data: &[u8]) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let mode = if kind == b'5' { "0000755" } else { "0000644" };
    h[100..107].copy_from_slice(mode.as_bytes());
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"14000000000");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// A daemon that answers `/_ping` and serves `archive` for any archive
/// request, with a path stat saying "a directory".
struct FakeDaemon {
    socket: PathBuf,
}

impl FakeDaemon {
    fn start(dir: &Path, archive: Vec<u8>) -> FakeDaemon {
        let socket = dir.join("fake.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).expect("binding");
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                loop {
                    let mut l = String::new();
                    if reader.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                        break;
                    }
                }
                // {"name":"d","size":0,"mode":2147484141,...}: a directory.
                let stat = "eyJuYW1lIjoiZCIsInNpemUiOjAsIm1vZGUiOjIxNDc0ODQxNDEsIm10aW1lIjoiMjAyNi0wMS0wMVQwMDowMDowMFoiLCJsaW5rVGFyZ2V0IjoiIn0=";
                let (head, body): (String, &[u8]) = if first.contains("/_ping") {
                    (
                        "HTTP/1.1 200 OK\r\nAPI-Version: 1.43\r\nContent-Length: 2\r\n".into(),
                        b"OK",
                    )
                } else {
                    (
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nX-Docker-Container-Path-Stat: {stat}\r\nContent-Length: {}\r\n",
                            archive.len()
                        ),
                        if first.starts_with("HEAD") { b"" } else { &archive },
                    )
                };
                let _ = conn.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes());
                let _ = conn.write_all(body);
            }
        });
        FakeDaemon { socket }
    }

    fn berth(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(berth_integration::runtime::berth_binary("berth"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .env_remove("DOCKER_HOST")
            .env_remove("BERTH_HOST")
            .output()
            .expect("running berth")
    }
}

/// Archives no daemon would send: writes through symlinks planted by
/// earlier entries (absolute, relative climbing out, to the outside
/// directory itself), absolute names, `..` above the root and a hard link
/// to a host file. What is inside the destination may be copied; nothing
/// outside it may change, and no staging directory is left behind.
#[test]
fn cp_out_of_a_hostile_archive_stays_in_the_destination() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let outside = scratch.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("canary"), "untouched\n").unwrap();
    let outside_s = outside.display().to_string();

    let mut tar = Vec::new();
    entry(&mut tar, "d/", b'5', "", b"");
    entry(&mut tar, "d/root", b'2', "/", b"");
    entry(&mut tar, "d/root/abs-through", b'0', "", b"x\n");
    entry(&mut tar, "d/up", b'2', "../../../../../../..", b"");
    entry(&mut tar, "d/up/up-through", b'0', "", b"x\n");
    entry(&mut tar, "d/out", b'2', &outside_s, b"");
    entry(&mut tar, "/d/absolute-name", b'0', "", b"ok\n");
    entry(&mut tar, "d/.wh.kept", b'0', "", b"a plain file\n");
    tar.extend_from_slice(&[0u8; 1024]);
    let dest = scratch.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let fake = FakeDaemon::start(scratch.path(), tar);
    let out = fake.berth(&["cp", "x:/d", &dest.join("copy").display().to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cp failed: {err}");
    assert_eq!(
        std::fs::read_to_string(outside.join("canary")).unwrap(),
        "untouched\n"
    );
    assert!(!outside.join("new").exists(), "a file was planted outside");
    assert!(!Path::new("/abs-through").exists() && !Path::new("/up-through").exists());
    let copy = dest.join("copy");
    // Written through the planted links, which resolve inside the staging
    // root: somewhere below the destination, by name and contents.
    fn files(dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                files(&p, out);
            } else if m.is_file() {
                out.push((
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).unwrap(),
                ));
            }
        }
    }
    let mut found = Vec::new();
    files(&dest, &mut found);
    for (name, want) in [
        ("abs-through", "x\n"),
        ("up-through", "x\n"),
        ("absolute-name", "ok\n"),
        (".wh.kept", "a plain file\n"),
    ] {
        assert!(
            found.iter().any(|(n, c)| n == name && c == want),
            "{name} not inside the destination: {:#?}",
            tree(&dest)
        );
    }
    assert_eq!(
        std::fs::read_to_string(copy.join(".wh.kept")).unwrap(),
        "a plain file\n"
    );
    assert!(
        std::fs::symlink_metadata(copy.join("out"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link itself is copied as a link"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dest)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".berth-cp"))
        .collect();
    assert!(leftovers.is_empty(), "staging left: {leftovers:?}");
    drop(fake);

    // Refused archives: nothing is copied, nothing outside changes. (A
    // link to the outside directory resolves inside the staging root,
    // where it dangles.)
    for entries in [
        &[("d/../../escape", b'0', "")][..],
        &[("d/hard", b'1', "/etc/passwd")],
        &[
            ("d/out", b'2', outside_s.as_str()),
            ("d/out/canary", b'0', ""),
        ],
    ] {
        let name = entries.last().unwrap().0;
        let mut tar = Vec::new();
        entry(&mut tar, "d/", b'5', "", b"");
        for (n, kind, link) in entries {
            let data: &[u8] = if *kind == b'0' { b"overwritten\n" } else { b"" };
            entry(&mut tar, n, *kind, link, data);
        }
        tar.extend_from_slice(&[0u8; 1024]);
        let dir = tempfile::tempdir().expect("temp dir");
        let dest = dir.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let fake = FakeDaemon::start(dir.path(), tar);
        let out = fake.berth(&["cp", "x:/d", &dest.display().to_string()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains("extracting the archive"), "{name}: {err}");
        assert!(err.contains(&format!("\"{name}\"")), "{name}: {err}");
        assert!(!dir.path().join("escape").exists());
        assert!(
            std::fs::read_dir(&dest).unwrap().next().is_none(),
            "{name}: {:#?}",
            tree(&dest)
        );
    }
    assert_eq!(
        std::fs::read_to_string(outside.join("canary")).unwrap(),
        "untouched\n"
    );
}
