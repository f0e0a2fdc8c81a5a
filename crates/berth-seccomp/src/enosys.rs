//! The ENOSYS prologue: syscalls newer than the profile get ENOSYS, not
//! the profile's default action.
//!
//! A deny-by-default profile written before a syscall existed denies it
//! with the default errno (EPERM for Docker's). libc wrappers probe new
//! syscalls and fall back only on ENOSYS (glibc's fchmodat2, clone3, ...),
//! so EPERM breaks programs that would run fine on an older kernel. Like
//! runc, berth takes the highest syscall number the profile names for each
//! architecture as the edge of what its author knew, and prepends a short
//! BPF prologue that answers ENOSYS above that edge and hands everything
//! else to libseccomp's program unchanged (classic BPF only jumps forward,
//! so the appended program's own offsets stay valid).

use std::collections::{BTreeMap, BTreeSet};

use berth_sys::seccomp::SockFilter;
use libseccomp::{ScmpAction, ScmpArch, ScmpSyscall};

use crate::plan::Plan;

const ENOSYS: u32 = 38;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// x32 syscalls run under AUDIT_ARCH_X86_64 with this bit in the number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// Offsets in `struct seccomp_data`.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;

const LD_W_ABS: u16 = 0x20;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGT_K: u16 = 0x25;
const JMP_JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

/// Which syscall numbers of an audit architecture one libseccomp arch covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Abi {
    /// Every number of the audit architecture.
    Whole,
    /// x86_64 numbers without the x32 bit.
    X86_64,
    /// x86_64 numbers with the x32 bit.
    X32,
}

/// The kernel's AUDIT_ARCH_* value for a libseccomp architecture (libseccomp's
/// SCMP_ARCH_X32 is a private token; x32 runs under AUDIT_ARCH_X86_64).
fn audit_arch(arch: ScmpArch) -> Option<(u32, Abi)> {
    Some(match arch {
        ScmpArch::X86 => (0x4000_0003, Abi::Whole),
        ScmpArch::X8664 => (0xc000_003e, Abi::X86_64),
        ScmpArch::X32 => (0xc000_003e, Abi::X32),
        ScmpArch::Arm => (0x4000_0028, Abi::Whole),
        ScmpArch::Aarch64 => (0xc000_00b7, Abi::Whole),
        ScmpArch::Mips => (0x0000_0008, Abi::Whole),
        ScmpArch::Mips64 => (0x8000_0008, Abi::Whole),
        ScmpArch::Mips64N32 => (0xa000_0008, Abi::Whole),
        ScmpArch::Mipsel => (0x4000_0008, Abi::Whole),
        ScmpArch::Mipsel64 => (0xc000_0008, Abi::Whole),
        ScmpArch::Mipsel64N32 => (0xe000_0008, Abi::Whole),
        ScmpArch::Ppc => (0x0000_0014, Abi::Whole),
        ScmpArch::Ppc64 => (0x8000_0015, Abi::Whole),
        ScmpArch::Ppc64Le => (0xc000_0015, Abi::Whole),
        ScmpArch::S390 => (0x0000_0016, Abi::Whole),
        ScmpArch::S390X => (0x8000_0016, Abi::Whole),
        ScmpArch::Riscv64 => (0xc000_00f3, Abi::Whole),
        _ => return None,
    })
}

/// Where a jump goes, before the layout is known.
#[derive(Debug, Clone, Copy)]
enum To {
    /// The shared `return ENOSYS`.
    Enosys,
    /// The first instruction of libseccomp's program.
    Filter,
    /// The section of the n-th audit architecture.
    Section(usize),
    /// This many instructions past the next one.
    Skip(u32),
}

#[derive(Debug, Clone, Copy)]
enum Ins {
    Load(u32),
    /// Jump to `To` if the accumulator compares true against k, else fall through.
    If(u16, u32, To),
    Jump(To),
    ReturnEnosys,
}

/// The prologue for `plan`, or an empty program when none is needed.
pub(crate) fn prologue(plan: &Plan) -> Vec<SockFilter> {
    let permissive = matches!(
        plan.default_action,
        ScmpAction::Allow | ScmpAction::Log | ScmpAction::Trace(_)
    ) || plan.default_action == ScmpAction::Errno(ENOSYS as i32);
    if permissive {
        return Vec::new();
    }
    let edges = newest_syscalls(plan);
    if edges.is_empty() {
        return Vec::new();
    }
    assemble(&edges).unwrap_or_else(|| {
        tracing::warn!("seccomp ENOSYS prologue does not fit classic-BPF jumps; unknown syscalls get the default action");
        Vec::new()
    })
}

/// Audit arch -> ABI -> highest syscall number the profile names there.
fn newest_syscalls(plan: &Plan) -> BTreeMap<u32, BTreeMap<Abi, u32>> {
    let mut seen: BTreeSet<(u32, Abi)> = BTreeSet::new();
    let mut scmp: Vec<ScmpArch> = plan.arches.iter().map(|(_, a)| *a).collect();
    scmp.push(ScmpArch::native());
    let names: BTreeSet<&str> = plan.all_names.iter().map(String::as_str).collect();
    let mut edges: BTreeMap<u32, BTreeMap<Abi, u32>> = BTreeMap::new();
    for arch in scmp {
        let arch = if arch == ScmpArch::Native {
            ScmpArch::native()
        } else {
            arch
        };
        let Some((audit, abi)) = audit_arch(arch) else {
            continue;
        };
        if !seen.insert((audit, abi)) {
            continue;
        }
        // Negative numbers are libseccomp's pseudo-syscalls: names that
        // exist on other architectures only.
        let newest = names
            .iter()
            .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
            .map(|s| s.as_raw_syscall())
            .filter(|&nr| nr >= 0)
            .max();
        if let Some(nr) = newest {
            edges.entry(audit).or_default().insert(abi, nr as u32);
        }
    }
    edges
}

fn assemble(edges: &BTreeMap<u32, BTreeMap<Abi, u32>>) -> Option<Vec<SockFilter>> {
    let mut head = vec![Ins::Load(OFFSET_ARCH)];
    for (i, audit) in edges.keys().enumerate() {
        head.push(Ins::If(JMP_JEQ_K, *audit, To::Section(i)));
    }
    // Architectures without a section are libseccomp's business.
    head.push(Ins::Jump(To::Filter));

    let sections: Vec<Vec<Ins>> = edges
        .iter()
        .map(|(audit, abis)| section(*audit, abis))
        .collect();

    let mut starts = Vec::new();
    let mut at = head.len();
    for s in &sections {
        starts.push(at);
        at += s.len();
    }
    let enosys = at;
    let filter = enosys + 1;

    let program: Vec<Ins> = head
        .into_iter()
        .chain(sections.into_iter().flatten())
        .chain(std::iter::once(Ins::ReturnEnosys))
        .collect();
    let target = |pos: usize, to: To| -> usize {
        match to {
            To::Enosys => enosys,
            To::Filter => filter,
            To::Section(i) => starts[i],
            To::Skip(n) => pos + 1 + n as usize,
        }
    };
    program
        .iter()
        .enumerate()
        .map(|(pos, ins)| {
            Some(match *ins {
                Ins::Load(offset) => SockFilter {
                    code: LD_W_ABS,
                    jt: 0,
                    jf: 0,
                    k: offset,
                },
                Ins::If(code, k, to) => SockFilter {
                    code,
                    jt: u8::try_from(target(pos, to) - pos - 1).ok()?,
                    jf: 0,
                    k,
                },
                Ins::Jump(to) => SockFilter {
                    code: JMP_JA,
                    jt: 0,
                    jf: 0,
                    k: u32::try_from(target(pos, to) - pos - 1).ok()?,
                },
                Ins::ReturnEnosys => SockFilter {
                    code: RET_K,
                    jt: 0,
                    jf: 0,
                    k: SECCOMP_RET_ERRNO | ENOSYS,
                },
            })
        })
        .collect()
}

/// The checks for one audit architecture: load the number, ENOSYS above the edge.
fn section(audit: u32, abis: &BTreeMap<Abi, u32>) -> Vec<Ins> {
    let mut out = vec![Ins::Load(OFFSET_NR)];
    let above = |edge: Option<&u32>| -> Vec<Ins> {
        let mut part: Vec<Ins> = edge
            .map(|&e| Ins::If(JMP_JGT_K, e, To::Enosys))
            .into_iter()
            .collect();
        part.push(Ins::Jump(To::Filter));
        part
    };
    if let Some(&edge) = abis.get(&Abi::Whole) {
        if matches!(audit, 0x0000_0016 | 0x8000_0016) {
            // s390 passes unknown large syscall numbers as 0 (the long-gone
            // setup(2)), so 0 means "unknown" there too.
            out.push(Ins::If(JMP_JEQ_K, 0, To::Enosys));
        }
        out.extend(above(Some(&edge)));
        return out;
    }
    // x86_64 and x32 share AUDIT_ARCH_X86_64; the x32 bit tells them apart.
    let native = above(abis.get(&Abi::X86_64));
    out.push(Ins::If(
        JMP_JSET_K,
        X32_SYSCALL_BIT,
        To::Skip(native.len() as u32),
    ));
    out.extend(native);
    out.extend(above(abis.get(&Abi::X32)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_land_on_the_right_instructions() {
        let mut edges = BTreeMap::new();
        edges.insert(
            0xc000_003e,
            BTreeMap::from([(Abi::X86_64, 456), (Abi::X32, 0x4000_01c8)]),
        );
        edges.insert(0x4000_0003, BTreeMap::from([(Abi::Whole, 450)]));
        let p = assemble(&edges).unwrap();
        let enosys = p.len() - 1;
        assert_eq!(p[enosys].code, RET_K);
        assert_eq!(p[enosys].k, SECCOMP_RET_ERRNO | ENOSYS);
        // Every conditional jump's true branch stays inside the prologue.
        for (pos, ins) in p.iter().enumerate() {
            if ins.code & 0x07 == 0x05 && ins.code != JMP_JA {
                assert!(
                    pos + 1 + usize::from(ins.jt) <= enosys,
                    "jump at {pos} leaves the prologue"
                );
            }
            if ins.code == JMP_JA {
                assert_eq!(
                    pos + 1 + ins.k as usize,
                    p.len(),
                    "ja at {pos} must land on the filter"
                );
            }
        }
    }
}
