//! A tree with everything a layer can hold, for round trips.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use rustix::fs::{
    chownat, lsetxattr, makedev, mknodat, utimensat, AtFlags, FileType, Gid, Mode, Timespec,
    Timestamps, Uid, XattrFlags, CWD,
};

use super::bpath;

pub fn chown(p: &Path, uid: u32, gid: u32) {
    chownat(
        CWD,
        p,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

pub fn set_mtime(p: &Path, sec: i64) {
    let t = Timespec {
        tv_sec: sec,
        tv_nsec: 0,
    };
    utimensat(
        CWD,
        p,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

pub fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Builds a tree with everything a layer can hold. Needs root (devices,
/// owners, trusted xattrs).
pub fn build_tree(root: &Path) {
    let p = |s: &str| root.join(s);
    fs::create_dir_all(p("usr/bin")).unwrap();
    fs::create_dir_all(p("tmp")).unwrap();
    fs::create_dir_all(p("home/user/.cache")).unwrap();
    fs::create_dir_all(p("dev")).unwrap();
    fs::create_dir_all(p("empty-dir")).unwrap();

    fs::write(p("usr/bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    chmod(&p("usr/bin/tool"), 0o4755);
    fs::write(p("usr/bin/sgid"), b"sgid").unwrap();
    chmod(&p("usr/bin/sgid"), 0o2711);
    // Modes the usual umask would cut.
    fs::write(p("usr/bin/world"), b"rwx for all").unwrap();
    chmod(&p("usr/bin/world"), 0o777);
    fs::write(p("shared"), b"rw for all").unwrap();
    chmod(&p("shared"), 0o666);
    chmod(&p("tmp"), 0o1777);
    chmod(&p("home/user"), 0o700);
    fs::write(p("empty"), b"").unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    fs::write(p("home/user/big.bin"), &big).unwrap();
    fs::write(p("home/user/.cache/note"), b"note").unwrap();
    chown(&p("home/user"), 1000, 1000);
    chown(&p("home/user/big.bin"), 1000, 100);
    chown(&p("home/user/.cache/note"), 12_345, 54_321);
    // An id above the ustar octal limit goes through PAX.
    fs::write(p("huge-id"), b"id").unwrap();
    chown(&p("huge-id"), 3_000_000, 4_000_000);

    // Hard links: a pair and a triple across directories.
    fs::write(p("usr/bin/busybox"), b"busybox binary").unwrap();
    fs::hard_link(p("usr/bin/busybox"), p("usr/bin/sh")).unwrap();
    fs::hard_link(p("usr/bin/busybox"), p("home/ls")).unwrap();
    fs::write(p("pair-a"), b"pair").unwrap();
    fs::hard_link(p("pair-a"), p("pair-b")).unwrap();

    // Symlinks, relative, absolute, dangling, owned, with a long target.
    symlink("busybox", p("usr/bin/cat")).unwrap();
    symlink("/etc/does-not-exist", p("dangling")).unwrap();
    symlink("../usr/bin", p("home/bin")).unwrap();
    chown(&p("home/bin"), 1000, 1000);
    let long_target = format!("/{}", "t".repeat(150));
    symlink(&long_target, p("long-link")).unwrap();

    // Devices and a FIFO.
    let dev = p("dev");
    mknodat(
        CWD,
        dev.join("null"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        makedev(1, 3),
    )
    .unwrap();
    mknodat(
        CWD,
        dev.join("loop0"),
        FileType::BlockDevice,
        Mode::from_raw_mode(0o660),
        makedev(7, 0),
    )
    .unwrap();
    mknodat(
        CWD,
        dev.join("fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    chmod(&dev.join("null"), 0o666);
    chmod(&dev.join("loop0"), 0o660);
    chmod(&dev.join("fifo"), 0o640);
    chown(&dev.join("loop0"), 0, 6);

    // xattrs, including binary values and one on a symlink.
    lsetxattr(
        p("usr/bin/tool"),
        "user.origin",
        b"berth",
        XattrFlags::empty(),
    )
    .unwrap();
    let cap = [
        1u8, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    lsetxattr(
        p("usr/bin/tool"),
        "security.capability",
        &cap,
        XattrFlags::empty(),
    )
    .unwrap();
    lsetxattr(
        p("home"),
        "trusted.berth.test",
        b"\0bin\xffary",
        XattrFlags::empty(),
    )
    .unwrap();
    lsetxattr(
        p("dangling"),
        "trusted.link",
        b"on a symlink",
        XattrFlags::empty(),
    )
    .unwrap();

    // Long names: over 100 bytes (ustar prefix) and over 256 (PAX path).
    let mid = p(&"m".repeat(90));
    fs::create_dir(&mid).unwrap();
    fs::write(mid.join("f".repeat(60)), b"prefix split").unwrap();
    let deep = p(&format!("{}/{}", "a".repeat(200), "b".repeat(200)));
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("c".repeat(200)), b"pax path").unwrap();
    // A hard link whose target needs a PAX linkpath.
    fs::hard_link(deep.join("c".repeat(200)), p("zz-link-to-deep")).unwrap();
    // A name that is not UTF-8.
    fs::write(root.join(bpath(b"latin1-\xe9t\xe9")), b"bytes").unwrap();

    // mtimes last, children before parents (creating a child bumps the
    // parent's mtime).
    let mut all = Vec::new();
    collect(root, &mut all);
    all.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for (i, path) in all.iter().enumerate() {
        set_mtime(path, 1_500_000_000 + i as i64 * 3_600);
    }
}

pub fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        out.push(e.path());
        if e.file_type().unwrap().is_dir() {
            collect(&e.path(), out);
        }
    }
}
