//! Compilation: a validated [`Plan`] goes through libseccomp and comes out
//! as a classic-BPF program plus the flags to load it with.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};

use berth_sys::seccomp::{self as sys, SockFilter};
use libseccomp::{ScmpFilterContext, ScmpSyscall};

use crate::plan::{Plan, RequestedFlags};
use crate::{CompiledFilter, Error};

/// The kernel's limit on one classic-BPF program (BPF_MAXINSNS).
pub(crate) const MAX_INSTRUCTIONS: usize = 4096;
/// Size of one `struct sock_filter`.
pub(crate) const INSTRUCTION_BYTES: usize = 8;

/// libseccomp's binary-tree syscall lookup: O(log n) per syscall instead of a
/// linear scan, which matters with Docker's ~370 rules on every syscall.
const OPTIMIZE_BINARY_TREE: u32 = 2;

pub(crate) fn compile_plan(plan: &Plan) -> Result<CompiledFilter, Error> {
    let flags = load_flags(plan.flags, plan.uses_notify)?;
    let mut program = crate::enosys::prologue(plan);
    program.extend(build_program(plan)?);
    if program.len() > MAX_INSTRUCTIONS {
        return Err(Error::TooLarge {
            instructions: program.len(),
            limit: MAX_INSTRUCTIONS,
        });
    }
    Ok(CompiledFilter::new(program, flags))
}

/// The seccomp(2) flags for loading, checked against the running kernel.
pub(crate) fn load_flags(requested: RequestedFlags, uses_notify: bool) -> Result<u32, Error> {
    let mut flags = 0;
    if requested.tsync {
        flags |= supported(sys::FLAG_TSYNC, "SECCOMP_FILTER_FLAG_TSYNC")?;
        // With TSYNC_ESRCH a thread that cannot be synchronized is reported
        // as ESRCH rather than by its id, which is the only form that can
        // be combined with NEW_LISTENER.
        if sys::filter_flags_supported(sys::FLAG_TSYNC | sys::FLAG_TSYNC_ESRCH) {
            flags |= sys::FLAG_TSYNC_ESRCH;
        }
    }
    if requested.log {
        flags |= supported(sys::FLAG_LOG, "SECCOMP_FILTER_FLAG_LOG")?;
    }
    if requested.spec_allow {
        flags |= supported(sys::FLAG_SPEC_ALLOW, "SECCOMP_FILTER_FLAG_SPEC_ALLOW")?;
    }
    if uses_notify {
        flags |= supported(
            sys::FLAG_NEW_LISTENER,
            "SECCOMP_FILTER_FLAG_NEW_LISTENER (needed by SCMP_ACT_NOTIFY)",
        )?;
        if flags & sys::FLAG_TSYNC != 0 && flags & sys::FLAG_TSYNC_ESRCH == 0 {
            return Err(Error::FlagUnsupported {
                flag: "SECCOMP_FILTER_FLAG_TSYNC_ESRCH (needed by TSYNC together with SCMP_ACT_NOTIFY)",
                kernel: kernel_release(),
            });
        }
        if requested.wait_killable_recv {
            flags |= supported(
                sys::FLAG_WAIT_KILLABLE_RECV,
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            )?;
        }
    } else if requested.wait_killable_recv {
        // The flag only changes how notified tasks wait; without a
        // SCMP_ACT_NOTIFY rule there is nothing to wait for, and the
        // kernel would refuse it without a listener.
        tracing::debug!(
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored: the profile uses no SCMP_ACT_NOTIFY"
        );
    }
    Ok(flags)
}

/// `flag` if the running kernel knows it, else an error naming it.
fn supported(flag: u32, name: &'static str) -> Result<u32, Error> {
    let probe = if flag == sys::FLAG_WAIT_KILLABLE_RECV {
        // The kernel accepts this flag only together with a listener.
        flag | sys::FLAG_NEW_LISTENER
    } else {
        flag
    };
    if sys::filter_flags_supported(probe) {
        Ok(flag)
    } else {
        Err(Error::FlagUnsupported {
            flag: name,
            kernel: kernel_release(),
        })
    }
}

pub(crate) fn kernel_release() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

fn lib(what: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> Error {
    let what = what.into();
    move |source| Error::Libseccomp { what, source }
}

fn build_program(plan: &Plan) -> Result<Vec<SockFilter>, Error> {
    let mut ctx =
        ScmpFilterContext::new(plan.default_action).map_err(lib("create a filter context"))?;
    for (name, arch) in &plan.arches {
        ctx.add_arch(*arch).map_err(lib(format!(
            "add architecture {name} (unsupported by this libseccomp?)"
        )))?;
    }
    ctx.set_ctl_optimize(OPTIMIZE_BINARY_TREE)
        .map_err(lib("enable the binary-tree optimization"))?;

    let mut unknown = BTreeSet::new();
    for rule in &plan.rules {
        let Ok(syscall) = ScmpSyscall::from_name(&rule.name) else {
            // Profiles list syscalls of kernels newer than this libseccomp;
            // skip them as runc does, once per name.
            if unknown.insert(rule.name.as_str()) {
                tracing::warn!(syscall = %rule.name, rule = rule.index, "unknown syscall in seccomp profile; rule skipped");
            }
            continue;
        };
        let added = if rule.conditions.is_empty() {
            ctx.add_rule(rule.action, syscall)
        } else {
            ctx.add_rule_conditional(rule.action, syscall, &rule.conditions)
        };
        added.map_err(|source| Error::Rule {
            index: rule.index,
            syscall: rule.name.clone(),
            source,
        })?;
    }
    export(&ctx)
}

/// Exports the program through a memfd: libseccomp 2.5 can only write BPF to an fd.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<SockFilter>, Error> {
    let export_err = |what| move |source| Error::Export { what, source };
    let fd = rustix::fs::memfd_create("berth-seccomp-bpf", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| export_err("creating a memfd")(e.into()))?;
    ctx.export_bpf(&fd).map_err(lib("export the BPF program"))?;
    let mut file = std::fs::File::from(fd);
    file.seek(SeekFrom::Start(0))
        .map_err(export_err("rewinding the memfd"))?;
    let limit = (MAX_INSTRUCTIONS * INSTRUCTION_BYTES) as u64;
    let mut bytes = Vec::new();
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(export_err("reading the memfd"))?;
    if bytes.len() as u64 > limit {
        let total = file.metadata().map(|m| m.len()).unwrap_or(limit + 1);
        return Err(Error::TooLarge {
            instructions: (total as usize).div_ceil(INSTRUCTION_BYTES),
            limit: MAX_INSTRUCTIONS,
        });
    }
    decode_native(&bytes).ok_or_else(|| Error::Export {
        what: "decoding the program",
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} bytes is not a whole number of instructions",
                bytes.len()
            ),
        ),
    })
}

/// Splits libseccomp's output (native-endian `struct sock_filter`s) into instructions.
fn decode_native(bytes: &[u8]) -> Option<Vec<SockFilter>> {
    if !bytes.chunks_exact(INSTRUCTION_BYTES).remainder().is_empty() {
        return None;
    }
    Some(
        bytes
            .chunks_exact(INSTRUCTION_BYTES)
            .map(|c| SockFilter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}
