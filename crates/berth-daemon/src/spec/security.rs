//! HostConfig.SecurityOpt, parsed as docker's parseSecurityOpt does.

use super::SpecError;

/// What the security options ask for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SecurityOptions {
    pub no_new_privileges: bool,
    /// `seccomp=...`: "unconfined", "builtin", or a profile's JSON text.
    pub seccomp: Option<String>,
    pub writable_cgroups: Option<bool>,
    /// `apparmor=...`.
    pub apparmor: Option<String>,
    /// `label=...` (SELinux), including "disable".
    pub labels: Vec<String>,
}

fn parse_bool(v: &str) -> Option<bool> {
    // Go's strconv.ParseBool.
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

pub(crate) fn parse(opts: &[String]) -> Result<SecurityOptions, SpecError> {
    let mut out = SecurityOptions::default();
    for opt in opts {
        match opt.as_str() {
            "no-new-privileges" => {
                out.no_new_privileges = true;
                continue;
            }
            "writable-cgroups" => {
                out.writable_cgroups = Some(true);
                continue;
            }
            "disable" => {
                out.labels.push("disable".into());
                continue;
            }
            _ => {}
        }
        // docker splits at the first "=", else (deprecated) at the first ":".
        let split = if opt.contains('=') {
            opt.split_once('=')
        } else {
            opt.split_once(':')
        };
        let Some((k, v)) = split else {
            return Err(SpecError::invalid(format!(
                "invalid --security-opt 1: {opt:?}"
            )));
        };
        let bad = || SpecError::invalid(format!("invalid --security-opt 2: {opt:?}"));
        match k {
            "label" => out.labels.push(v.to_string()),
            "apparmor" => out.apparmor = Some(v.to_string()),
            "seccomp" => out.seccomp = Some(v.to_string()),
            "no-new-privileges" => out.no_new_privileges = parse_bool(v).ok_or_else(bad)?,
            "writable-cgroups" => out.writable_cgroups = Some(parse_bool(v).ok_or_else(bad)?),
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<SecurityOptions, SpecError> {
        parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_parse() {
        assert!(p(&["no-new-privileges"]).unwrap().no_new_privileges);
        assert!(p(&["no-new-privileges:true"]).unwrap().no_new_privileges);
        assert!(p(&["no-new-privileges=true"]).unwrap().no_new_privileges);
        assert!(
            !p(&["no-new-privileges", "no-new-privileges=false"])
                .unwrap()
                .no_new_privileges
        );
        assert_eq!(
            p(&["seccomp=unconfined"]).unwrap().seccomp.as_deref(),
            Some("unconfined")
        );
        // A profile's JSON holds ':' and maybe '=': the first '=' splits.
        let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","x":"a=b"}"#;
        assert_eq!(
            p(&[&format!("seccomp={json}")]).unwrap().seccomp.as_deref(),
            Some(json)
        );
        assert_eq!(
            p(&["writable-cgroups=false"]).unwrap().writable_cgroups,
            Some(false)
        );
        assert_eq!(p(&["label=disable"]).unwrap().labels, vec!["disable"]);
        assert_eq!(
            p(&["apparmor:unconfined"]).unwrap().apparmor.as_deref(),
            Some("unconfined")
        );
    }

    #[test]
    fn bad_options_use_dockers_words() {
        assert_eq!(
            p(&["nonsense"]).unwrap_err().to_string(),
            "invalid --security-opt 1: \"nonsense\""
        );
        assert_eq!(
            p(&["foo=bar"]).unwrap_err().to_string(),
            "invalid --security-opt 2: \"foo=bar\""
        );
        assert_eq!(
            p(&["no-new-privileges=maybe"]).unwrap_err().to_string(),
            "invalid --security-opt 2: \"no-new-privileges=maybe\""
        );
    }
}
