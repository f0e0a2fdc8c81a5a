//! Device rules on cgroup v2: an eBPF program of type CGROUP_DEVICE,
//! generated from the rules, loaded while planning (so a verifier refusal
//! happens before any file is written) and attached when the plan runs.
//!
//! Semantics follow the rule list as v1 applies it to a fresh cgroup: the
//! last rule that matches a request decides; a request no rule matches is
//! allowed (a new cgroup restricts nothing). A rule matches when its type
//! ('a' = any), major and minor (None = any) match and it grants every
//! access bit the request asks for.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_sys::bpf::{self, BpfInsn};

use crate::devices::DeviceRule;
use crate::error::Error;

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
// access_type = (access << 16) | type
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

// The few eBPF opcodes the program uses.
const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const AND64_K: u8 = 0x57; // dst &= imm
const RSH64_K: u8 = 0x77; // dst >>= imm
const MOV64_K: u8 = 0xb7; // dst = imm
const JNE_K: u8 = 0x55; // if dst != imm goto +off
const JSET_K: u8 = 0x45; // if dst & imm goto +off
const JEQ_K: u8 = 0x15; // if dst == imm goto +off
const MOV64_X: u8 = 0xbf; // dst = src
const EXIT: u8 = 0x95;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |acc, c| {
        acc | match c {
            'm' => ACC_MKNOD,
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            _ => 0,
        }
    })
}

/// The program for `rules` (already validated).
pub(crate) fn program(rules: &[DeviceRule]) -> Vec<BpfInsn> {
    // r2 = device type, r3 = requested access, r4 = major, r5 = minor
    let mut out = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND64_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH64_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    // Last match wins, so test the rules from the last one back.
    for rule in rules.iter().rev() {
        // Each check jumps past the end of this rule's block on mismatch;
        // entries marked false are plain instructions between the checks.
        let mut block: Vec<(BpfInsn, bool)> = Vec::new();
        let check = |code, reg, imm| (insn(code, reg, 0, 0, imm), true);
        match rule.typ {
            'b' => block.push(check(JNE_K, 2, DEV_BLOCK)),
            'c' => block.push(check(JNE_K, 2, DEV_CHAR)),
            _ => {}
        }
        let granted = access_bits(&rule.access);
        let all = ACC_MKNOD | ACC_READ | ACC_WRITE;
        if rule.allow {
            // An allow matches only if it grants every bit asked for...
            if granted != all {
                block.push(check(JSET_K, 3, !granted & all));
            }
        } else if granted != all {
            // ...a deny matches if it covers any bit asked for (as v1 does).
            block.push((insn(MOV64_X, 1, 3, 0, 0), false));
            block.push((insn(AND64_K, 1, 0, 0, granted), false));
            block.push(check(JEQ_K, 1, 0));
        }
        if let Some(major) = rule.major {
            block.push(check(JNE_K, 4, major as i32));
        }
        if let Some(minor) = rule.minor {
            block.push(check(JNE_K, 5, minor as i32));
        }
        let unconditional = block.is_empty();
        let block_len = block.len() + 2;
        for (i, (mut ins, is_check)) in block.into_iter().enumerate() {
            if is_check {
                ins.off = (block_len - i - 1) as i16;
            }
            out.push(ins);
        }
        out.push(insn(MOV64_K, 0, 0, 0, i32::from(rule.allow)));
        out.push(insn(EXIT, 0, 0, 0, 0));
        if unconditional {
            // A catch-all decides every request that got this far; the
            // verifier refuses the unreachable code that would follow.
            return out;
        }
    }
    out.push(insn(MOV64_K, 0, 0, 0, 1));
    out.push(insn(EXIT, 0, 0, 0, 0));
    out
}

/// What to do to a cgroup's device programs when the plan runs.
#[derive(Debug)]
pub(crate) struct DeviceProgram {
    pub dir: PathBuf,
    /// The new program, or None when the rules allow everything (then any
    /// program a previous apply attached is removed and none is added).
    pub prog: Option<OwnedFd>,
}

const FIELD: &str = "linux.resources.devices";

fn bpf_error(op: &'static str, dir: &Path, source: std::io::Error) -> Error {
    Error::DeviceProgram {
        field: FIELD.into(),
        op,
        path: dir.to_path_buf(),
        detail: String::new(),
        source,
    }
}

/// Generates and loads (does not attach) the program for `rules`.
pub(crate) fn prepare(dir: &Path, rules: &[DeviceRule]) -> Result<DeviceProgram, Error> {
    if crate::devices::allows_everything(rules) {
        return Ok(DeviceProgram {
            dir: dir.to_path_buf(),
            prog: None,
        });
    }
    let insns = program(rules);
    let mut log = vec![0u8; 64 * 1024];
    let prog = bpf::prog_load(
        bpf::PROG_TYPE_CGROUP_DEVICE,
        bpf::ATTACH_CGROUP_DEVICE,
        &insns,
        c"Apache",
        "berth_devices",
        &mut log,
    )
    .map_err(|source| {
        let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
        let text = String::from_utf8_lossy(&log[..end]);
        let mut e = bpf_error("loading the device eBPF program", dir, source);
        if let Error::DeviceProgram { detail, .. } = &mut e {
            *detail = text.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
        }
        e
    })?;
    Ok(DeviceProgram {
        dir: dir.to_path_buf(),
        prog: Some(prog),
    })
}

impl DeviceProgram {
    /// Attaches the new program, then detaches the ones attached before, so
    /// there is no moment without device control.
    pub(crate) fn install(&self) -> Result<(), Error> {
        let dir = rustix::fs::open(
            &self.dir,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| Error::io("opening cgroup", &self.dir, e.into()))?;
        let old = match bpf::prog_query(dir.as_fd(), bpf::ATTACH_CGROUP_DEVICE) {
            Ok(ids) => ids,
            // Rules that allow everything need no BPF: where the kernel (or
            // our privileges) offer none, there is nothing to detach either.
            Err(_) if self.prog.is_none() => return Ok(()),
            Err(e) => return Err(bpf_error("listing device programs", &self.dir, e)),
        };
        if let Some(prog) = &self.prog {
            bpf::prog_attach(
                dir.as_fd(),
                prog.as_fd(),
                bpf::ATTACH_CGROUP_DEVICE,
                bpf::F_ALLOW_MULTI,
            )
            .map_err(|e| bpf_error("attaching the device program", &self.dir, e))?;
        }
        for id in old {
            let old_prog = match bpf::prog_get_fd_by_id(id) {
                Ok(fd) => fd,
                // Detached and freed meanwhile: nothing to do.
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOENT.raw_os_error()) => {
                    continue
                }
                Err(e) => return Err(bpf_error("opening an old device program", &self.dir, e)),
            };
            bpf::prog_detach(dir.as_fd(), old_prog.as_fd(), bpf::ATTACH_CGROUP_DEVICE)
                .map_err(|e| bpf_error("detaching an old device program", &self.dir, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::validate;

    /// Runs the generated program the way the kernel would, for the few
    /// opcodes it uses; true means "allowed".
    fn run(prog: &[BpfInsn], typ: i32, access: i32, major: u32, minor: u32) -> bool {
        let ctx = [((access as u32) << 16) | typ as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0x0f) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                MOV64_X => r[dst] = r[src],
                JEQ_K if r[dst] == i.imm as i64 as u64 => pc += i.off as usize,
                JEQ_K => {}
                LDX_W => {
                    assert_eq!(src, 1, "loads come from the context");
                    r[dst] = u64::from(ctx[i.off as usize / 4])
                }
                AND64_K => r[dst] &= i.imm as i64 as u64,
                RSH64_K => r[dst] >>= i.imm,
                MOV64_K => r[dst] = i.imm as i64 as u64,
                JNE_K if r[dst] != i.imm as i64 as u64 => pc += i.off as usize,
                JSET_K if r[dst] & (i.imm as i64 as u64) != 0 => pc += i.off as usize,
                JNE_K | JSET_K => {}
                EXIT => return r[0] == 1,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn prog(json: &str) -> Vec<BpfInsn> {
        program(&validate(&serde_json::from_str::<Vec<_>>(json).unwrap()).unwrap())
    }

    #[test]
    fn docker_defaults() {
        let p = prog(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
                {"allow":true,"type":"c","major":136,"access":"rw"},
                {"allow":true,"type":"c","major":5,"minor":1,"access":"r"}]"#,
        );
        let (r, w, m) = (ACC_READ, ACC_WRITE, ACC_MKNOD);
        assert!(run(&p, DEV_CHAR, r | w, 1, 3), "/dev/null rw");
        assert!(run(&p, DEV_CHAR, m, 1, 3), "mknod /dev/null");
        assert!(!run(&p, DEV_CHAR, r, 1, 5), "/dev/zero");
        assert!(!run(&p, DEV_BLOCK, r, 1, 3), "block 1:3 is not char 1:3");
        assert!(run(&p, DEV_CHAR, w, 136, 7), "any pty");
        assert!(!run(&p, DEV_CHAR, m, 136, 7), "no mknod of ptys");
        assert!(run(&p, DEV_CHAR, r, 5, 1));
        assert!(
            !run(&p, DEV_CHAR, r | w, 5, 1),
            "read-only rule does not grant write"
        );
    }

    #[test]
    fn nothing_follows_a_catch_all() {
        let p = prog(
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3}]"#,
        );
        // allow block (type, major, minor checks, r0, exit), then the deny-all block
        assert_eq!(p.len(), 6 + 5 + 2);
        assert_eq!(p.last().unwrap().code, EXIT);
        assert_eq!(p[p.len() - 2].imm, 0);
    }

    #[test]
    fn last_match_wins_and_unmatched_is_allowed() {
        let p = prog(r#"[{"allow":false,"type":"b","major":8,"access":"w"}]"#);
        assert!(!run(&p, DEV_BLOCK, ACC_WRITE, 8, 0));
        assert!(
            run(&p, DEV_BLOCK, ACC_READ, 8, 0),
            "the deny covers writes only"
        );
        assert!(
            !run(&p, DEV_BLOCK, ACC_READ | ACC_WRITE, 8, 0),
            "a deny of w catches rw"
        );
        assert!(run(&p, DEV_CHAR, ACC_WRITE, 8, 0));
        let p = prog(
            r#"[{"allow":false,"type":"c","major":1,"minor":5},{"allow":true,"type":"c","major":1,"minor":5}]"#,
        );
        assert!(run(&p, DEV_CHAR, ACC_READ, 1, 5));
        let p = prog(r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"a","access":"r"}]"#);
        assert!(run(&p, DEV_BLOCK, ACC_READ, 9, 9));
        assert!(!run(&p, DEV_BLOCK, ACC_WRITE, 9, 9));
    }
}
