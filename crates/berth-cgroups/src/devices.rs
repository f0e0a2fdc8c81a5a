//! Device cgroup rules (`linux.resources.devices`): validation, the v1
//! devices.allow/deny lines, and the "allows everything" check that decides
//! whether cgroup v2 (which needs an eBPF program for this) can go without.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceRule {
    pub allow: bool,
    /// 'a', 'b' or 'c'.
    pub typ: char,
    pub major: Option<u64>,
    pub minor: Option<u64>,
    /// A non-empty subset of "rwm", in that order.
    pub access: String,
}

fn number(field: &str, v: Option<i64>) -> Result<Option<u64>, Error> {
    match v {
        None | Some(-1) => Ok(None),
        Some(n) if n >= 0 => Ok(Some(n as u64)),
        Some(n) => Err(Error::invalid(
            field,
            format!("{n} is not a device number (use -1 or omit it for any)"),
        )),
    }
}

pub(crate) fn validate(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, Error> {
    let mut out = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let f = |name: &str| format!("linux.resources.devices[{i}].{name}");
        let typ = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => 'a',
            LinuxDeviceType::B => 'b',
            // "u" is an unbuffered character device: a character device to the kernel.
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            LinuxDeviceType::P => {
                return Err(Error::invalid(
                    f("type"),
                    "\"p\" (FIFO) cannot be used in a device cgroup rule; the kernel controls only block and character devices",
                ))
            }
        };
        let access_raw = r.access().as_deref().unwrap_or("rwm");
        let mut access = String::new();
        for c in ['r', 'w', 'm'] {
            if access_raw.contains(c) {
                access.push(c);
            }
        }
        // Other letters are ignored, as runc ignores them (its own tests
        // write "rwa"); a rule that grants or denies nothing is a mistake.
        if access.is_empty() {
            return Err(Error::invalid(
                f("access"),
                format!("{access_raw:?} must contain at least one of r, w and m"),
            ));
        }
        out.push(DeviceRule {
            allow: r.allow(),
            typ,
            major: number(&f("major"), r.major())?,
            minor: number(&f("minor"), r.minor())?,
            access,
        });
    }
    Ok(out)
}

impl DeviceRule {
    fn is_everything(&self) -> bool {
        self.typ == 'a' && self.major.is_none() && self.minor.is_none() && self.access == "rwm"
    }

    /// The lines to write to devices.allow or devices.deny. The v1 kernel
    /// reads any line starting with "a" as "every device, every access" and
    /// ignores the rest, so a narrower type-"a" rule is split into its block
    /// and character halves to keep its meaning.
    pub(crate) fn v1_lines(&self) -> Vec<String> {
        if self.is_everything() {
            return vec!["a *:* rwm".into()];
        }
        let num = |n: Option<u64>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        let types: &[char] = if self.typ == 'a' {
            &['b', 'c']
        } else {
            std::slice::from_ref(&self.typ)
        };
        types
            .iter()
            .map(|t| {
                format!(
                    "{t} {}:{} {}",
                    num(self.major),
                    num(self.minor),
                    self.access
                )
            })
            .collect()
    }

    pub(crate) fn v1_file(&self) -> &'static str {
        if self.allow {
            "devices.allow"
        } else {
            "devices.deny"
        }
    }
}

/// True when the rules, applied in order to a cgroup with no device
/// restriction, leave every device fully accessible. Conservative: a deny
/// that a later narrow allow re-opens still counts as a restriction.
pub(crate) fn allows_everything(rules: &[DeviceRule]) -> bool {
    let mut default_allow = true;
    let mut restricted = false;
    for r in rules {
        if r.is_everything() {
            default_allow = r.allow;
            restricted = false;
        } else if !r.allow && default_allow {
            restricted = true;
        }
    }
    default_allow && !restricted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn docker_default_rules_render_for_v1() {
        let r = validate(&rules(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
                {"allow":true,"type":"c","major":136,"access":"rwm"},
                {"allow":true,"type":"u","major":5,"minor":0,"access":"mr"}]"#,
        ))
        .unwrap();
        assert_eq!(r[0].v1_file(), "devices.deny");
        assert_eq!(r[0].v1_lines(), vec!["a *:* rwm"]);
        assert_eq!(r[1].v1_lines(), vec!["c 1:3 rwm"]);
        assert_eq!(r[2].v1_lines(), vec!["c 136:* rwm"]);
        assert_eq!(r[3].v1_lines(), vec!["c 5:0 rm"]);
        assert!(!allows_everything(&r));
    }

    #[test]
    fn narrow_type_a_rule_is_split() {
        let r = validate(&rules(
            r#"[{"allow":false,"type":"a","major":8,"minor":-1,"access":"w"}]"#,
        ))
        .unwrap();
        assert_eq!(r[0].v1_lines(), vec!["b 8:* w", "c 8:* w"]);
    }

    #[test]
    fn bad_rules_name_the_field() {
        let err = validate(&rules(r#"[{"allow":true},{"allow":true,"access":"xa"}]"#)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("linux.resources.devices[1].access:"),
            "{err}"
        );
        let err = validate(&rules(r#"[{"allow":true,"access":""}]"#)).unwrap_err();
        assert!(err.to_string().contains("devices[0].access"), "{err}");
        // Letters runc ignores (its tests write "rwa") are ignored here too.
        let r = validate(&rules(
            r#"[{"allow":false,"type":"c","major":1,"minor":11,"access":"rwa"}]"#,
        ))
        .unwrap();
        assert_eq!(r[0].access, "rw");
        let err = validate(&rules(r#"[{"allow":true,"type":"p"}]"#)).unwrap_err();
        assert!(err.to_string().contains("devices[0].type"), "{err}");
        let err = validate(&rules(r#"[{"allow":true,"type":"c","major":-5}]"#)).unwrap_err();
        assert!(err.to_string().contains("devices[0].major"), "{err}");
    }

    #[test]
    fn allow_all_detection() {
        let v = |j: &str| validate(&rules(j)).unwrap();
        assert!(allows_everything(&v("[]")));
        assert!(allows_everything(&v(r#"[{"allow":true,"access":"rwm"}]"#)));
        assert!(allows_everything(&v(
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3},{"allow":true}]"#
        )));
        assert!(!allows_everything(&v(
            r#"[{"allow":false,"access":"rwm"}]"#
        )));
        assert!(!allows_everything(&v(
            r#"[{"allow":true},{"allow":false,"type":"b","major":8}]"#
        )));
        assert!(!allows_everything(&v(
            r#"[{"allow":true,"access":"r"}, {"allow":false,"access":"w"}]"#
        )));
    }
}
