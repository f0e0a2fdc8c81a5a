//! Validation: an OCI `linux.seccomp` section becomes a [`Plan`], the list of
//! libseccomp calls to make, or an error naming the field at fault.
//!
//! Names (actions, architectures, flags, operators) are matched on their
//! OCI wire spelling rather than on oci-spec's enum variants, so that a
//! newer oci-spec with more variants still compiles and its new names are
//! refused here with a clear message until berth learns them.

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompArg, LinuxSyscall};
use serde::Serialize;

use crate::Error;

/// The prefix of every field path in error messages.
const ROOT: &str = "linux.seccomp";
/// Linux system calls take at most six arguments.
const MAX_ARGS: usize = 6;
/// The default errno of `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` (OCI: EPERM).
const EPERM: u32 = 1;
/// Syscalls berth's child makes between loading the filter and handing the
/// listener fd over; a NOTIFY rule on them would block the child forever,
/// since no agent holds the listener yet.
const NOTIFY_FORBIDDEN: &[&str] = &["write", "sendmsg"];
/// Every OCI action name berth understands.
pub(crate) const ACTION_NAMES: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];
/// Every OCI filter flag name berth understands.
pub(crate) const FLAG_NAMES: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];
/// Every OCI comparison operator name.
pub(crate) const OPERATOR_NAMES: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// Filter-load flags the profile asked for, before kernel support is checked.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestedFlags {
    pub tsync: bool,
    pub log: bool,
    pub spec_allow: bool,
    pub wait_killable_recv: bool,
}

/// One libseccomp rule to add.
#[derive(Debug, Clone)]
pub(crate) struct PlannedRule {
    /// Index in `syscalls`, for error messages.
    pub index: usize,
    pub name: String,
    pub action: ScmpAction,
    pub conditions: Vec<ScmpArgCompare>,
}

/// A validated profile, ready for libseccomp.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub default_action: ScmpAction,
    pub arches: Vec<(String, ScmpArch)>,
    pub flags: RequestedFlags,
    pub rules: Vec<PlannedRule>,
    pub uses_notify: bool,
    /// Every syscall name the profile mentions, whatever its action: the
    /// newest of them tells which syscalls the profile's author knew.
    pub all_names: Vec<String>,
}

/// The OCI spelling of a serde enum value, e.g. `SCMP_ACT_ERRNO`.
fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(e) => format!("<unserializable: {e}>"),
    }
}

pub(crate) fn plan(profile: &LinuxSeccomp) -> Result<Plan, Error> {
    let default_name = wire_name(&profile.default_action());
    let default_action = action(
        &default_name,
        profile.default_errno_ret(),
        &format!("{ROOT}.defaultAction"),
        &format!("{ROOT}.defaultErrnoRet"),
    )?;
    if default_action == ScmpAction::Notify {
        return Err(Error::invalid(
            format!("{ROOT}.defaultAction"),
            default_name,
            "SCMP_ACT_NOTIFY cannot be the default action: it would trap the runtime's own \
             syscalls before any agent holds the listener; use it on named syscalls only",
        ));
    }

    let arches = profile
        .architectures()
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, a)| {
            let name = wire_name(a);
            arch(&name).map(|arch| (name.clone(), arch)).ok_or_else(|| {
                Error::invalid(
                    format!("{ROOT}.architectures[{i}]"),
                    &name,
                    "unknown architecture; use an SCMP_ARCH_* name such as SCMP_ARCH_X86_64",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut flags = RequestedFlags::default();
    for (i, f) in profile.flags().iter().flatten().enumerate() {
        let name = wire_name(f);
        match name.as_str() {
            "SECCOMP_FILTER_FLAG_TSYNC" => flags.tsync = true,
            "SECCOMP_FILTER_FLAG_LOG" => flags.log = true,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => flags.spec_allow = true,
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => flags.wait_killable_recv = true,
            _ => {
                return Err(Error::invalid(
                    format!("{ROOT}.flags[{i}]"),
                    name,
                    format!(
                        "unknown seccomp filter flag; use one of {}",
                        FLAG_NAMES.join(", ")
                    ),
                ))
            }
        }
    }

    let mut rules = Vec::new();
    let mut uses_notify = false;
    for (index, call) in profile.syscalls().iter().flatten().enumerate() {
        let planned = plan_syscall(index, call, default_action)?;
        uses_notify |= planned.iter().any(|r| r.action == ScmpAction::Notify);
        rules.extend(planned);
    }
    let rules = drop_conflicts(rules);
    let all_names = profile
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|call| call.names().iter().cloned())
        .collect();

    Ok(Plan {
        default_action,
        arches,
        flags,
        rules,
        uses_notify,
        all_names,
    })
}

/// Two unconditional rules giving one syscall different actions: the
/// first one wins, as it does in libseccomp and so in runc and crun. Real
/// profiles rely on it (podman's allows `setns` in its main list and later
/// denies it for containers without CAP_SYS_ADMIN), so berth keeps that
/// behaviour and warns about each rule it drops.
fn drop_conflicts(rules: Vec<PlannedRule>) -> Vec<PlannedRule> {
    let mut first: std::collections::HashMap<String, (usize, ScmpAction)> =
        std::collections::HashMap::new();
    let mut kept = Vec::with_capacity(rules.len());
    for rule in rules {
        if rule.conditions.is_empty() {
            match first.get(rule.name.as_str()) {
                Some((index, action)) if *action != rule.action => {
                    tracing::warn!(
                        "{ROOT}.syscalls[{}]: {:?} for {} is ignored: {ROOT}.syscalls[{index}] \
                         already gives it {:?} without conditions (the first rule wins)",
                        rule.index,
                        rule.action,
                        rule.name,
                        action
                    );
                    continue;
                }
                Some(_) => {}
                None => {
                    first.insert(rule.name.clone(), (rule.index, rule.action));
                }
            }
        }
        kept.push(rule);
    }
    kept
}

fn plan_syscall(
    index: usize,
    call: &LinuxSyscall,
    default_action: ScmpAction,
) -> Result<Vec<PlannedRule>, Error> {
    let field = format!("{ROOT}.syscalls[{index}]");
    if call.names().is_empty() {
        return Err(Error::invalid(
            format!("{field}.names"),
            "[]",
            "a syscall rule needs at least one name",
        ));
    }
    let action_name = wire_name(&call.action());
    let action = action(
        &action_name,
        call.errno_ret(),
        &format!("{field}.action"),
        &format!("{field}.errnoRet"),
    )?;

    let args = call.args().as_deref().unwrap_or_default();
    let conditions = args
        .iter()
        .enumerate()
        .map(|(j, a)| condition(a, &format!("{field}.args[{j}]")))
        .collect::<Result<Vec<_>, _>>()?;
    // runc's semantics: conditions on distinct arguments are ANDed in one
    // rule; if any argument index repeats, every condition becomes its own
    // rule (so they are ORed), because libseccomp cannot AND two
    // comparisons of the same argument.
    let mut per_index = [0usize; MAX_ARGS];
    for a in args {
        per_index[a.index()] += 1;
    }
    let condition_sets: Vec<Vec<ScmpArgCompare>> = if per_index.iter().any(|&n| n > 1) {
        conditions.into_iter().map(|c| vec![c]).collect()
    } else {
        vec![conditions]
    };

    let mut rules = Vec::new();
    for (k, name) in call.names().iter().enumerate() {
        if name.is_empty() {
            return Err(Error::invalid(
                format!("{field}.names[{k}]"),
                "\"\"",
                "a syscall name cannot be empty",
            ));
        }
        if action == ScmpAction::Notify && NOTIFY_FORBIDDEN.contains(&name.as_str()) {
            return Err(Error::invalid(
                format!("{field}.names[{k}]"),
                name,
                format!(
                    "SCMP_ACT_NOTIFY cannot be used for the {name} syscall: the runtime needs it \
                     to hand the listener to the agent, so the container would hang before it \
                     starts"
                ),
            ));
        }
        if action == default_action {
            // libseccomp refuses rules equal to the default action, and
            // they change nothing: skip, as runc does.
            tracing::debug!(syscall = %name, rule = index, "seccomp rule equals the default action; skipped");
            continue;
        }
        for conditions in &condition_sets {
            rules.push(PlannedRule {
                index,
                name: name.clone(),
                action,
                conditions: conditions.clone(),
            });
        }
    }
    Ok(rules)
}

/// Maps an OCI action name plus its optional errno to a libseccomp action.
fn action(
    name: &str,
    errno_ret: Option<u32>,
    field: &str,
    errno_field: &str,
) -> Result<ScmpAction, Error> {
    let errno = |default: u32| -> Result<u16, Error> {
        let value = errno_ret.unwrap_or(default);
        u16::try_from(value).map_err(|_| {
            Error::invalid(
                errno_field,
                value,
                "errno does not fit the 16 data bits of a seccomp return value; use a value below 65536",
            )
        })
    };
    let action = match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_ERRNO" => return Ok(ScmpAction::Errno(i32::from(errno(EPERM)?))),
        "SCMP_ACT_TRACE" => return Ok(ScmpAction::Trace(errno(EPERM)?)),
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_NOTIFY" => ScmpAction::Notify,
        _ => {
            return Err(Error::invalid(
                field,
                name,
                format!(
                    "unknown seccomp action; use one of {}",
                    ACTION_NAMES.join(", ")
                ),
            ))
        }
    };
    if let Some(value) = errno_ret {
        // OCI: "When the action doesn't support an errno, the runtime MUST
        // print an error and fail."
        return Err(Error::invalid(
            errno_field,
            value,
            format!("{name} takes no errno; errnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE"),
        ));
    }
    Ok(action)
}

/// Maps an OCI architecture name to libseccomp's; None when unknown.
pub(crate) fn arch(name: &str) -> Option<ScmpArch> {
    Some(match name {
        "SCMP_ARCH_NATIVE" => ScmpArch::Native,
        "SCMP_ARCH_X86" => ScmpArch::X86,
        "SCMP_ARCH_X86_64" => ScmpArch::X8664,
        "SCMP_ARCH_X32" => ScmpArch::X32,
        "SCMP_ARCH_ARM" => ScmpArch::Arm,
        "SCMP_ARCH_AARCH64" => ScmpArch::Aarch64,
        "SCMP_ARCH_LOONGARCH64" => ScmpArch::Loongarch64,
        "SCMP_ARCH_M68K" => ScmpArch::M68k,
        "SCMP_ARCH_MIPS" => ScmpArch::Mips,
        "SCMP_ARCH_MIPS64" => ScmpArch::Mips64,
        "SCMP_ARCH_MIPS64N32" => ScmpArch::Mips64N32,
        "SCMP_ARCH_MIPSEL" => ScmpArch::Mipsel,
        "SCMP_ARCH_MIPSEL64" => ScmpArch::Mipsel64,
        "SCMP_ARCH_MIPSEL64N32" => ScmpArch::Mipsel64N32,
        "SCMP_ARCH_PPC" => ScmpArch::Ppc,
        "SCMP_ARCH_PPC64" => ScmpArch::Ppc64,
        "SCMP_ARCH_PPC64LE" => ScmpArch::Ppc64Le,
        "SCMP_ARCH_S390" => ScmpArch::S390,
        "SCMP_ARCH_S390X" => ScmpArch::S390X,
        "SCMP_ARCH_PARISC" => ScmpArch::Parisc,
        "SCMP_ARCH_PARISC64" => ScmpArch::Parisc64,
        "SCMP_ARCH_RISCV64" => ScmpArch::Riscv64,
        "SCMP_ARCH_SH" => ScmpArch::Sh,
        "SCMP_ARCH_SHEB" => ScmpArch::Sheb,
        _ => return None,
    })
}

/// Maps one OCI argument condition to a libseccomp comparison.
fn condition(arg: &LinuxSeccompArg, field: &str) -> Result<ScmpArgCompare, Error> {
    let index = arg.index();
    if index >= MAX_ARGS {
        return Err(Error::invalid(
            format!("{field}.index"),
            index,
            "syscalls have at most 6 arguments; use an index from 0 to 5",
        ));
    }
    let op_name = wire_name(&arg.op());
    let op = operator(&op_name, arg.value()).ok_or_else(|| {
        Error::invalid(
            format!("{field}.op"),
            &op_name,
            format!(
                "unknown comparison; use one of {}",
                OPERATOR_NAMES.join(", ")
            ),
        )
    })?;
    // For MASKED_EQ, `value` is the mask and `valueTwo` the expected result
    // (runc and libseccomp agree); the other operators compare with `value`.
    let datum = match op {
        ScmpCompareOp::MaskedEqual(_) => arg.value_two().unwrap_or(0),
        _ => arg.value(),
    };
    Ok(ScmpArgCompare::new(index as u32, op, datum))
}

pub(crate) fn operator(name: &str, value: u64) -> Option<ScmpCompareOp> {
    Some(match name {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        "SCMP_CMP_MASKED_EQ" => ScmpCompareOp::MaskedEqual(value),
        _ => return None,
    })
}
