//! Unpack throughput on ~200 MB of mixed files, against GNU tar as a
//! reference. Ignored by default; run with
//! `cargo test --release -p berth-archive --test throughput -- --ignored --nocapture`.
//! `BERTH_ARCHIVE_BENCH_DIR` picks the file system to unpack on (default:
//! the system temp dir); a tmpfs there isolates berth's CPU cost.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_archive::{apply_layer, compressor, decompressor, write_tree, ApplyOptions, Compression};

/// Deterministic pseudo-random bytes (xorshift), half text-like so that
/// compression ratios resemble real layers.
fn fill(buf: &mut Vec<u8>, len: usize, seed: &mut u64) {
    const WORDS: &[&[u8]] = &[
        b"usr ", b"lib ", b"share ", b"config ", b"0x7f ", b"return ", b"\n", b"static ",
    ];
    let textual = *seed % 2 == 0;
    while buf.len() < len {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        if textual {
            buf.extend_from_slice(WORDS[(*seed % WORDS.len() as u64) as usize]);
        } else {
            buf.extend_from_slice(&seed.to_le_bytes());
        }
    }
    buf.truncate(len);
}

/// ~200 MB: 10,000 small files, 300 medium, 10 large, in 400 directories.
fn build(root: &Path) -> (u64, u64) {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut buf = Vec::new();
    let mut write = |rel: String, len: usize, seed: &mut u64| {
        buf.clear();
        fill(&mut buf, len, seed);
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, &buf).unwrap();
        files += 1;
        bytes += len as u64;
    };
    for i in 0..10_000 {
        write(
            format!("small/d{}/f{i}", i % 400),
            512 + (i * 7919) % 11_776,
            &mut seed,
        );
    }
    for i in 0..300 {
        write(
            format!("medium/d{}/m{i}", i % 20),
            100_000 + (i * 104_729) % 400_000,
            &mut seed,
        );
    }
    for i in 0..10 {
        write(format!("large/l{i}"), 5_000_000, &mut seed);
    }
    (files, bytes)
}

/// CPU time (user + system, all threads) of this process so far, seconds.
fn cpu_seconds() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn gnu_tar(args: &[&str], dest: &Path) -> Duration {
    let start = Instant::now();
    let status = Command::new("tar")
        .args(args)
        .arg("-C")
        .arg(dest)
        .status()
        .expect("run tar");
    assert!(status.success());
    start.elapsed()
}

#[test]
#[ignore = "benchmark: run explicitly with --ignored --nocapture"]
fn unpack_throughput() {
    let work = match std::env::var_os("BERTH_ARCHIVE_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let src = work.path().join("src");
    let (files, data) = build(&src);

    let start = Instant::now();
    let mut tar = Vec::new();
    let written = write_tree(&src, &mut tar).unwrap();
    let write_time = start.elapsed();
    let entries = written.entries;
    println!(
        "tree: {files} files, {entries} entries, {:.1} MB of data, tar {:.1} MB",
        data as f64 / 1e6,
        tar.len() as f64 / 1e6
    );
    println!(
        "write_tree: {:.0} MB/s, {:.0} entries/s",
        mbps(tar.len() as u64, write_time),
        entries as f64 / write_time.as_secs_f64()
    );

    let tar_path = work.path().join("layer.tar");
    fs::write(&tar_path, &tar).unwrap();
    let mut blobs = Vec::new();
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let mut enc = compressor(Vec::new(), c).unwrap();
        enc.write_all(&tar).unwrap();
        let blob = enc.finish().unwrap();
        println!("{c:?}: blob {:.1} MB", blob.len() as f64 / 1e6);
        blobs.push((c, blob));
    }
    let gz_path = work.path().join("layer.tar.gz");
    fs::write(&gz_path, &blobs[1].1).unwrap();

    // Each of ours is followed by GNU tar on the same input where there is
    // one. Nothing is deleted until the end: ext4's inode allocator slows
    // down for a while after large deletions, which would skew later runs.
    for (c, blob) in &blobs {
        for sync in [false, true] {
            let dest = work.path().join(format!("dest-{c:?}-{sync}"));
            fs::create_dir(&dest).unwrap();
            let opts = ApplyOptions {
                sync,
                ..Default::default()
            };
            // Everything written so far goes to the disk first: a synced
            // unpack's syncfs would otherwise write back the unsynced one
            // before it too, and time that.
            let synced = Command::new("sync").status().expect("run sync");
            assert!(synced.success());
            let (start, cpu) = (Instant::now(), cpu_seconds());
            let stats = apply_layer(decompressor(&blob[..], *c), &dest, &opts).unwrap();
            let t = start.elapsed();
            let cpu = cpu_seconds() - cpu;
            assert_eq!(stats.diff_id, written.diff_id);
            println!(
                "apply_layer {c:?}{}: {:.2} s ({cpu:.2} s CPU), {:.0} MB/s of tar, {:.0} files/s",
                if sync { " + syncfs" } else { "" },
                t.as_secs_f64(),
                mbps(tar.len() as u64, t),
                entries as f64 / t.as_secs_f64()
            );
        }
        let gnu = match c {
            Compression::None => ("tar -x", vec!["-xf", tar_path.to_str().unwrap()]),
            Compression::Gzip => ("tar -xz", vec!["-xzf", gz_path.to_str().unwrap()]),
            Compression::Zstd => continue,
        };
        let dest = work.path().join(format!("gnu-{c:?}"));
        fs::create_dir(&dest).unwrap();
        let t = gnu_tar(&gnu.1, &dest);
        println!(
            "  GNU {}: {:.2} s, {:.0} MB/s of tar, {:.0} files/s",
            gnu.0,
            t.as_secs_f64(),
            mbps(tar.len() as u64, t),
            entries as f64 / t.as_secs_f64()
        );
    }
}
