//! Reading a seccomp section from JSON with errors that name the field.
//!
//! oci-spec's serde derive reports an unknown action as "unknown variant at
//! line 1 column 873"; this checks every enumerated name first, so the user
//! reads `linux.seccomp.syscalls[12].action = SCMP_ACT_KILLL`.

use oci_spec::runtime::LinuxSeccomp;
use serde_json::Value;

use crate::plan::{arch, ACTION_NAMES, FLAG_NAMES, OPERATOR_NAMES};
use crate::Error;

const ROOT: &str = "linux.seccomp";

/// Parses a `linux.seccomp` JSON object into oci-spec's type, refusing
/// unknown names with the path of the field that holds them.
pub fn parse_profile(value: &Value) -> Result<LinuxSeccomp, Error> {
    let Some(obj) = value.as_object() else {
        return Err(Error::invalid(ROOT, short(value), "must be a JSON object"));
    };
    match obj.get("defaultAction") {
        None => {
            return Err(Error::invalid(
                format!("{ROOT}.defaultAction"),
                "<missing>",
                "is required",
            ))
        }
        Some(v) => check_name(v, &format!("{ROOT}.defaultAction"), ACTION_NAMES, "action")?,
    }
    for (i, a) in array(obj.get("architectures"), &format!("{ROOT}.architectures"))?
        .iter()
        .enumerate()
    {
        let field = format!("{ROOT}.architectures[{i}]");
        match a.as_str() {
            Some(name) if arch(name).is_some() => {}
            _ => {
                return Err(Error::invalid(
                    field,
                    short(a),
                    "unknown architecture; use an SCMP_ARCH_* name such as SCMP_ARCH_X86_64",
                ))
            }
        }
    }
    for (i, f) in array(obj.get("flags"), &format!("{ROOT}.flags"))?
        .iter()
        .enumerate()
    {
        check_name(
            f,
            &format!("{ROOT}.flags[{i}]"),
            FLAG_NAMES,
            "seccomp filter flag",
        )?;
    }
    for (i, call) in array(obj.get("syscalls"), &format!("{ROOT}.syscalls"))?
        .iter()
        .enumerate()
    {
        check_syscall(call, &format!("{ROOT}.syscalls[{i}]"))?;
    }
    serde_json::from_value(value.clone()).map_err(|e| {
        Error::invalid(
            ROOT,
            "<profile>",
            format!("does not match the OCI schema understood by berth's oci-spec: {e}"),
        )
    })
}

/// Checks the enumerated names of one syscall rule; `field` is its JSON path.
pub(crate) fn check_syscall(call: &Value, field: &str) -> Result<(), Error> {
    match call.get("action") {
        None => {
            return Err(Error::invalid(
                format!("{field}.action"),
                "<missing>",
                "is required",
            ))
        }
        Some(v) => check_name(v, &format!("{field}.action"), ACTION_NAMES, "action")?,
    }
    for (j, arg) in array(call.get("args"), &format!("{field}.args"))?
        .iter()
        .enumerate()
    {
        let afield = format!("{field}.args[{j}]");
        match arg.get("op") {
            None => {
                return Err(Error::invalid(
                    format!("{afield}.op"),
                    "<missing>",
                    "is required",
                ))
            }
            Some(v) => check_name(v, &format!("{afield}.op"), OPERATOR_NAMES, "comparison")?,
        }
        match arg.get("index").and_then(Value::as_u64) {
            Some(0..=5) => {}
            _ => {
                return Err(Error::invalid(
                    format!("{afield}.index"),
                    arg.get("index").map_or("<missing>".to_string(), short),
                    "syscalls have at most 6 arguments; use an index from 0 to 5",
                ))
            }
        }
    }
    Ok(())
}

fn array<'a>(value: Option<&'a Value>, field: &str) -> Result<&'a [Value], Error> {
    match value {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(Error::invalid(field, short(other), "must be an array")),
    }
}

fn check_name(value: &Value, field: &str, known: &[&str], what: &str) -> Result<(), Error> {
    match value.as_str() {
        Some(name) if known.contains(&name) => Ok(()),
        _ => Err(Error::invalid(
            field,
            short(value),
            format!("unknown {what}; use one of {}", known.join(", ")),
        )),
    }
}

/// A value for an error message, cut so a hostile profile cannot flood the log.
fn short(value: &Value) -> String {
    const MAX: usize = 80;
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.len() <= MAX {
        return text;
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}
