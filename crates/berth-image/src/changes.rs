//! docker's `--change` instructions (the Dockerfile subset that `docker
//! import` and `docker commit` accept), applied to an image's run config.
//!
//! Supported: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL,
//! USER, VOLUME, WORKDIR (docker's list for both). Exec form (`CMD ["a", "b"]`) is taken as JSON; shell
//! form becomes `["/bin/sh", "-c", "..."]` as in a Dockerfile.

use std::collections::BTreeMap;

use berth_errdefs::{ErrorKind, HasKind};

use crate::config::RunConfig;

/// Why a `--change` value was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("{instruction:?} is not a valid change command; --change accepts CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME and WORKDIR")]
    Unsupported { instruction: String },
    #[error("invalid --change {change:?}: {reason}")]
    Invalid { change: String, reason: String },
}

impl HasKind for ChangeError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// Applies `changes` in order to `config`.
pub fn apply_changes(config: &mut RunConfig, changes: &[String]) -> Result<(), ChangeError> {
    for change in changes {
        apply_one(config, change)?;
    }
    Ok(())
}

fn apply_one(config: &mut RunConfig, change: &str) -> Result<(), ChangeError> {
    let invalid = |reason: &str| ChangeError::Invalid {
        change: change.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = change.trim();
    let (word, rest) = match trimmed.find(char::is_whitespace) {
        Some(i) => (&trimmed[..i], trimmed[i..].trim()),
        None => (trimmed, ""),
    };
    let instruction = word.to_ascii_uppercase();
    let known = [
        "CMD",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "LABEL",
        "ONBUILD",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    ];
    if !known.contains(&instruction.as_str()) {
        return Err(ChangeError::Unsupported {
            instruction: word.to_owned(),
        });
    }
    if rest.is_empty() && instruction != "CMD" && instruction != "ENTRYPOINT" {
        return Err(invalid(&format!(
            "{instruction} requires at least one argument"
        )));
    }
    match instruction.as_str() {
        "CMD" => config.cmd = Some(command(rest).map_err(|r| invalid(&r))?),
        "ENTRYPOINT" => {
            config.entrypoint = Some(command(rest).map_err(|r| invalid(&r))?);
            // As in a Dockerfile: a new ENTRYPOINT resets an inherited CMD.
            config.cmd = None;
        }
        "ENV" => {
            let env = config.env.get_or_insert_with(Vec::new);
            for (k, v) in key_values(rest, true).map_err(|r| invalid(&r))? {
                let prefix = format!("{k}=");
                env.retain(|e| !e.starts_with(&prefix));
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = config.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in key_values(rest, false).map_err(|r| invalid(&r))? {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = config.exposed_ports.get_or_insert_with(BTreeMap::new);
            for spec in words(rest).map_err(|r| invalid(&r))? {
                for p in expand_port(&spec).map_err(|r| invalid(&r))? {
                    ports.insert(p, serde_json::json!({}));
                }
            }
        }
        "VOLUME" => {
            let list = if rest.starts_with('[') {
                json_array(rest).map_err(|r| invalid(&r))?
            } else {
                words(rest).map_err(|r| invalid(&r))?
            };
            let volumes = config.volumes.get_or_insert_with(BTreeMap::new);
            for v in list {
                if v.is_empty() {
                    return Err(invalid("VOLUME paths cannot be empty"));
                }
                volumes.insert(v, serde_json::json!({}));
            }
        }
        "ONBUILD" => {
            // Stored as a Dockerfile line for a later build, its
            // instruction upper-cased (docker's form).
            let (trigger, args) = match rest.find(char::is_whitespace) {
                Some(i) => (&rest[..i], rest[i..].trim()),
                None => (rest, ""),
            };
            let trigger = trigger.to_ascii_uppercase();
            if matches!(trigger.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(invalid(&format!(
                    "{trigger} isn't allowed as an ONBUILD trigger"
                )));
            }
            let line = if args.is_empty() {
                trigger
            } else {
                format!("{trigger} {args}")
            };
            config.on_build.get_or_insert_with(Vec::new).push(line);
        }
        "USER" => config.user = Some(single(rest).map_err(|r| invalid(&r))?),
        "STOPSIGNAL" => {
            let sig = single(rest).map_err(|r| invalid(&r))?;
            if !valid_signal(&sig) {
                return Err(invalid(&format!("{sig:?} is not a signal name or number")));
            }
            config.stop_signal = Some(sig);
        }
        "WORKDIR" => {
            let dir = single(rest).map_err(|r| invalid(&r))?;
            // A relative WORKDIR is relative to the previous one.
            let dir = if dir.starts_with('/') {
                dir
            } else {
                let base = config.working_dir.clone().unwrap_or_else(|| "/".to_owned());
                format!("{}/{dir}", base.trim_end_matches('/'))
            };
            config.working_dir = Some(dir);
        }
        _ => unreachable!("checked against the known list"),
    }
    Ok(())
}

/// CMD/ENTRYPOINT: a JSON array (exec form) or a shell command line.
fn command(rest: &str) -> Result<Vec<String>, String> {
    if rest.starts_with('[') {
        if let Ok(v) = json_array(rest) {
            return Ok(v);
        }
        // Like docker: text that is not a valid JSON array is shell form.
    }
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.to_owned()])
}

fn json_array(s: &str) -> Result<Vec<String>, String> {
    serde_json::from_str::<Vec<String>>(s).map_err(|e| format!("not a JSON array of strings: {e}"))
}

fn single(rest: &str) -> Result<String, String> {
    let w = words(rest)?;
    match w.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!("expected exactly one argument, got {}", w.len())),
    }
}

/// Splits on whitespace, honouring double and single quotes and backslash
/// escapes as the Dockerfile parser does for these instructions.
fn words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '"' | '\'' => {
                in_word = true;
                let quote = c;
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated {quote} quote")),
                        Some(q) if q == quote => break,
                        Some('\\') if quote == '"' => match chars.next() {
                            Some(e) => cur.push(e),
                            None => return Err("trailing backslash".to_owned()),
                        },
                        Some(other) => cur.push(other),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(e) => cur.push(e),
                    None => return Err("trailing backslash".to_owned()),
                }
            }
            other => {
                in_word = true;
                cur.push(other);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `k=v k2="v 2"`; for ENV also the legacy `KEY value with spaces`.
fn key_values(rest: &str, legacy_allowed: bool) -> Result<Vec<(String, String)>, String> {
    let first = rest.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        if !legacy_allowed {
            return Err("expected key=value pairs".to_owned());
        }
        let key = first.to_owned();
        let value = rest[first.len()..].trim();
        if value.is_empty() {
            return Err(format!("{key} needs a value"));
        }
        let value = words(value)?.join(" ");
        return Ok(vec![(key, value)]);
    }
    let mut out = Vec::new();
    for w in words(rest)? {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| format!("{w:?} is not key=value"))?;
        if k.is_empty() {
            return Err(format!("{w:?} has an empty key"));
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

/// `80`, `80/udp`, `8000-8002/tcp` to `["8000/tcp", "8001/tcp", ...]`.
fn expand_port(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_owned()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid protocol {proto:?} in {spec:?}"));
    }
    let parse = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("invalid port {p:?} in {spec:?}"))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let p = parse(ports)?;
            (p, p)
        }
    };
    if lo == 0 || hi < lo {
        return Err(format!("invalid port range {spec:?}"));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

fn valid_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
        "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP",
        "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    NAMES.contains(&name) || name.starts_with("RTMIN") || name.starts_with("RTMAX")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Result<RunConfig, ChangeError> {
        let mut c = RunConfig::default();
        apply_changes(
            &mut c,
            &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )?;
        Ok(c)
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cmd_and_entrypoint_forms() {
        let c = apply(&[r#"CMD ["/bin/echo", "hi there"]"#]).unwrap();
        assert_eq!(c.cmd, Some(v(&["/bin/echo", "hi there"])));
        let c = apply(&["cmd echo $HOME && ls"]).unwrap();
        assert_eq!(c.cmd, Some(v(&["/bin/sh", "-c", "echo $HOME && ls"])));
        let c = apply(&["CMD [\"a\"", "ENTRYPOINT [\"/init\"]"]).unwrap();
        assert_eq!(c.entrypoint, Some(v(&["/init"])));
        assert_eq!(c.cmd, None, "ENTRYPOINT resets CMD");
        let c = apply(&["ENTRYPOINT [\"/init\"]", "CMD [\"--verbose\"]"]).unwrap();
        assert_eq!(c.cmd, Some(v(&["--verbose"])));
    }

    #[test]
    fn env_and_labels() {
        let c = apply(&["ENV A=1 B=\"two words\"", "ENV C the rest of it", "ENV A=3"]).unwrap();
        assert_eq!(c.env, Some(v(&["B=two words", "C=the rest of it", "A=3"])));
        let c = apply(&["LABEL org.opencontainers.image.title=\"My app\" version=1"]).unwrap();
        let labels = c.labels.unwrap();
        assert_eq!(labels["org.opencontainers.image.title"], "My app");
        assert_eq!(labels["version"], "1");
        assert!(apply(&["LABEL novalue"]).is_err());
        assert!(apply(&["ENV =x"]).is_err());
        assert!(apply(&["ENV A=\"unterminated"]).is_err());
    }

    #[test]
    fn ports_volumes_user_workdir_stopsignal() {
        let c = apply(&[
            "EXPOSE 80 53/udp 8000-8002",
            "VOLUME [\"/data\", \"/logs\"]",
            "VOLUME /cache",
            "USER app:app",
            "WORKDIR /srv",
            "WORKDIR app",
            "STOPSIGNAL SIGQUIT",
        ])
        .unwrap();
        let ports: Vec<&String> = c.exposed_ports.as_ref().unwrap().keys().collect();
        assert_eq!(
            ports,
            ["53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp"]
        );
        let vols: Vec<&String> = c.volumes.as_ref().unwrap().keys().collect();
        assert_eq!(vols, ["/cache", "/data", "/logs"]);
        assert_eq!(c.user.as_deref(), Some("app:app"));
        assert_eq!(c.working_dir.as_deref(), Some("/srv/app"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
    }

    #[test]
    fn onbuild_keeps_a_trigger_for_later_builds() {
        let c = apply(&["ONBUILD run echo hi", "ONBUILD ADD . /app"]).unwrap();
        assert_eq!(c.on_build, Some(v(&["RUN echo hi", "ADD . /app"])));
        assert!(apply(&["ONBUILD ONBUILD RUN x"]).is_err());
        assert!(apply(&["ONBUILD FROM busybox"]).is_err());
        assert!(apply(&["ONBUILD"]).is_err());
    }

    #[test]
    fn rejected_changes() {
        let err = apply(&["RUN rm -rf /"]).unwrap_err();
        assert!(matches!(err, ChangeError::Unsupported { .. }));
        assert!(
            err.to_string()
                .contains("\"RUN\" is not a valid change command"),
            "{err}"
        );
        for bad in [
            "EXPOSE 0",
            "EXPOSE 70000",
            "EXPOSE 90-80",
            "EXPOSE 80/icmp",
            "STOPSIGNAL SIGNOPE",
            "USER a b",
            "WORKDIR",
            "VOLUME [1]",
        ] {
            assert!(
                matches!(apply(&[bad]), Err(ChangeError::Invalid { .. })),
                "{bad:?} should be rejected"
            );
        }
    }
}
