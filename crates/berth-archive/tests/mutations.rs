//! Mutated layers: thousands of random header corruptions (with valid
//! checksums, so they get past the first check) must each end in `Ok` or a
//! clean error: no panic, no hang, nothing outside the destination.

mod common;

use berth_archive::{apply_layer, ApplyOptions};
use common::{passwd, RawTar, Sandbox};

/// xorshift64*: deterministic, so a failure can be replayed by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn sample() -> Vec<u8> {
    RawTar::new()
        .dir("etc/")
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        .symlink("up", "../../..")
        .symlink("abs", "/")
        .hardlink("etc/shadow", "etc/passwd")
        .dir("up/x/")
        .file("abs/y", b"y")
        .file(".wh.gone", b"")
        .file("etc/.wh..wh..opq", b"")
        .file("big", &[7u8; 3000])
        .finish()
}

/// Header blocks of `tar` (offsets), found by walking it.
fn header_offsets(tar: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 512 <= tar.len() && tar[off..off + 512].iter().any(|&b| b != 0) {
        out.push(off);
        let h = tar::Header::from_byte_slice(&tar[off..off + 512]);
        let size = h.entry_size().unwrap_or(0) as usize;
        let data = if matches!(h.entry_type(), tar::EntryType::Regular) {
            size.div_ceil(512) * 512
        } else {
            0
        };
        off += 512 + data;
    }
    out
}

fn fix_checksum(block: &mut [u8]) {
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(text.as_bytes());
}

/// Interesting values for the fields an attacker controls.
const NAMES: &[&[u8]] = &[
    b"../x",
    b"/",
    b"up/../../z",
    b"abs/etc/p",
    b".wh..",
    b".wh.etc",
    b"a\0b",
    b"",
    b"./",
    b"up/y",
];

#[test]
fn mutated_headers_never_escape_or_panic() {
    let before = passwd();
    let base = sample();
    let headers = header_offsets(&base);
    assert_eq!(headers.len(), 10);
    let small = ApplyOptions {
        max_entry_size: 1 << 20,
        max_total_size: 1 << 22,
        max_entries: 100,
        ..Default::default()
    };
    let mut outcomes = [0usize; 2];
    for seed in 1..=1000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut tar = base.clone();
        for _ in 0..1 + rng.below(3) {
            let h = headers[rng.below(headers.len() as u64) as usize];
            let block = &mut tar[h..h + 512];
            match rng.below(5) {
                // Name or link name from the interesting set.
                0 | 1 => {
                    let field = if rng.below(2) == 0 { 0..100 } else { 157..257 };
                    let v = NAMES[rng.below(NAMES.len() as u64) as usize];
                    block[field.clone()].fill(0);
                    block[field.start..field.start + v.len()].copy_from_slice(v);
                }
                // Entry type.
                2 => block[156] = b"0123456LKSxgV7"[rng.below(14) as usize],
                // Size, mode, uid: random digits or base-256.
                3 => {
                    let start = [124usize, 100, 108][rng.below(3) as usize];
                    for b in &mut block[start..start + 8] {
                        *b = if rng.below(4) == 0 {
                            rng.next() as u8
                        } else {
                            b'0' + rng.below(8) as u8
                        };
                    }
                }
                // Any byte.
                _ => {
                    let i = rng.below(512) as usize;
                    block[i] = rng.next() as u8;
                }
            }
            fix_checksum(block);
        }
        let sb = Sandbox::new();
        let result = apply_layer(&tar[..], &sb.dest, &small);
        outcomes[usize::from(result.is_err())] += 1;
        if let Err(e) = &result {
            // Every error renders (names what failed).
            assert!(!e.to_string().is_empty(), "seed {seed}");
        }
        sb.assert_contained(&before);
    }
    // Both outcomes happen, so the mutations reach past the parser.
    assert!(outcomes[0] > 10 && outcomes[1] > 10, "ok/err: {outcomes:?}");
}
