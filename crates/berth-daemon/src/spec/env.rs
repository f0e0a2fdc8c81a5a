//! The process's command line, environment and working directory, merged
//! from the request and the image as docker merges them.

use berth_api::models::ContainerCreateBody;
use berth_image::ImageConfig;

use super::SpecError;

/// docker's default PATH for Linux containers.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The argv docker runs: Entrypoint and Cmd merged with the image's.
/// A request Entrypoint (non-empty) keeps the image's Cmd out; an explicit
/// empty one keeps the image's Entrypoint out; `[""]` resets it.
pub(crate) fn command_line(
    body: &ContainerCreateBody,
    image: &ImageConfig,
) -> Result<Vec<String>, SpecError> {
    let run = image.config.as_ref();
    let image_cmd = run.and_then(|r| r.cmd.clone()).unwrap_or_default();
    let image_entrypoint = run.and_then(|r| r.entrypoint.clone());
    let mut cmd = body.cmd.clone().unwrap_or_default();
    let mut entrypoint = body.entrypoint.clone();
    if entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if cmd.is_empty() {
            cmd = image_cmd;
        }
        if entrypoint.is_none() {
            entrypoint = image_entrypoint;
        }
    }
    let mut entrypoint = entrypoint.unwrap_or_default();
    if entrypoint.len() == 1 && entrypoint[0].is_empty() {
        entrypoint.clear();
    }
    if entrypoint.is_empty() && cmd.is_empty() {
        return Err(SpecError::invalid("No command specified"));
    }
    entrypoint.extend(cmd);
    Ok(entrypoint)
}

/// docker's `merge`: the request's Env, then every image variable whose
/// name the request does not set.
pub(crate) fn merge_env(request: &[String], image: &[String]) -> Vec<String> {
    if request.is_empty() {
        return image.to_vec();
    }
    let mut out = request.to_vec();
    for e in image {
        let key = name(e);
        if !request.iter().any(|r| name(r) == key) {
            out.push(e.clone());
        }
    }
    out
}

/// The container's environment: PATH, HOSTNAME (and TERM=xterm with a
/// terminal), replaced or extended by the merged Env.
pub(crate) fn daemon_env(merged: &[String], hostname: &str, tty: bool) -> Vec<String> {
    let mut base = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        base.push("TERM=xterm".to_string());
    }
    replace_or_append(base, merged)
}

/// The base of an exec's environment, from the container's process env:
/// docker rebuilds it with the exec's Tty deciding TERM=xterm.
pub(crate) fn exec_base_env(
    container: &[String],
    container_tty: bool,
    exec_tty: bool,
) -> Vec<String> {
    let mut env: Vec<String> = container.to_vec();
    if container_tty && !exec_tty {
        if let Some(i) = env.iter().position(|e| e == "TERM=xterm") {
            env.remove(i);
        }
    }
    if exec_tty && !env.iter().any(|e| name(e) == "TERM") {
        let at = env
            .iter()
            .position(|e| name(e) == "HOSTNAME")
            .map_or(env.len(), |i| i + 1);
        env.insert(at, "TERM=xterm".to_string());
    }
    env
}

/// docker's ReplaceOrAppendEnvValues: `K=V` replaces K or is appended;
/// a bare `K` removes K.
pub(crate) fn replace_or_append(mut base: Vec<String>, overrides: &[String]) -> Vec<String> {
    let mut removed = vec![false; base.len()];
    for o in overrides {
        match o.split_once('=') {
            Some((k, _)) => match base.iter().position(|b| name(b) == k) {
                Some(i) => {
                    base[i] = o.clone();
                    removed[i] = false;
                }
                None => {
                    base.push(o.clone());
                    removed.push(false);
                }
            },
            None => {
                if let Some(i) = base.iter().position(|b| name(b) == o) {
                    removed[i] = true;
                }
            }
        }
    }
    base.into_iter()
        .zip(removed)
        .filter(|(_, r)| !r)
        .map(|(e, _)| e)
        .collect()
}

fn name(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

/// docker's ValidateEnv: the name before `=` must not be empty.
pub(crate) fn check_env(e: &str) -> Result<(), SpecError> {
    if name(e).is_empty() {
        return Err(SpecError::invalid(format!(
            "invalid environment variable: {e}"
        )));
    }
    Ok(())
}

/// A WorkingDir made absolute-and-clean, or docker's error.
pub(crate) fn clean_workdir(dir: &str) -> Result<String, SpecError> {
    if !dir.starts_with('/') {
        return Err(SpecError::invalid(format!(
            "the working directory '{dir}' is invalid, it needs to be an absolute path"
        )));
    }
    Ok(clean(dir))
}

/// Lexical cleaning as Go's path.Clean for absolute paths: no empty or `.`
/// components, `..` removes its parent and stops at the root.
pub(crate) fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::config::RunConfig;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        ImageConfig {
            config: Some(RunConfig {
                entrypoint: entrypoint.map(s),
                cmd: cmd.map(s),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn body(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ContainerCreateBody {
        ContainerCreateBody {
            entrypoint: entrypoint.map(s),
            cmd: cmd.map(s),
            ..Default::default()
        }
    }

    #[test]
    fn entrypoint_and_cmd_follow_docker() {
        let img = image(Some(&["/entry", "-x"]), Some(&["default"]));
        // Nothing asked: the image's both.
        assert_eq!(
            command_line(&body(None, None), &img).unwrap(),
            s(&["/entry", "-x", "default"])
        );
        // A Cmd replaces the image's Cmd only.
        assert_eq!(
            command_line(&body(None, Some(&["mine"])), &img).unwrap(),
            s(&["/entry", "-x", "mine"])
        );
        // An Entrypoint drops the image's Cmd.
        assert_eq!(
            command_line(&body(Some(&["/other"]), None), &img).unwrap(),
            s(&["/other"])
        );
        assert_eq!(
            command_line(&body(Some(&["/other"]), Some(&["a"])), &img).unwrap(),
            s(&["/other", "a"])
        );
        // [""] resets the entrypoint; the image's Cmd is not used either.
        assert_eq!(
            command_line(&body(Some(&[""]), Some(&["sh"])), &img).unwrap(),
            s(&["sh"])
        );
        let err = command_line(&body(Some(&[""]), None), &img).unwrap_err();
        assert_eq!(err.to_string(), "No command specified");
        // An explicit empty Entrypoint keeps the image's out but takes its Cmd.
        assert_eq!(
            command_line(&body(Some(&[]), None), &img).unwrap(),
            s(&["default"])
        );
        let err = command_line(&body(None, None), &ImageConfig::default()).unwrap_err();
        assert_eq!(err.to_string(), "No command specified");
        assert_eq!(
            berth_errdefs::HasKind::kind(&err),
            berth_errdefs::ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn env_merges_like_docker() {
        let merged = merge_env(&s(&["B=2", "C=3"]), &s(&["PATH=/img", "B=1"]));
        assert_eq!(merged, s(&["B=2", "C=3", "PATH=/img"]));
        assert_eq!(merge_env(&[], &s(&["A=1"])), s(&["A=1"]));
        let env = daemon_env(&merged, "abc", true);
        assert_eq!(
            env,
            s(&["PATH=/img", "HOSTNAME=abc", "TERM=xterm", "B=2", "C=3"])
        );
        let env = daemon_env(&s(&["X=1"]), "h", false);
        assert_eq!(
            env,
            s(&[&format!("PATH={DEFAULT_PATH}"), "HOSTNAME=h", "X=1"])
        );
        // A bare name unsets.
        assert_eq!(
            replace_or_append(s(&["A=1", "B=2"]), &s(&["A", "C=3"])),
            s(&["B=2", "C=3"])
        );
    }

    #[test]
    fn exec_env_follows_the_exec_tty() {
        let c = s(&["PATH=/p", "HOSTNAME=h", "TERM=xterm", "A=1"]);
        assert_eq!(
            exec_base_env(&c, true, false),
            s(&["PATH=/p", "HOSTNAME=h", "A=1"])
        );
        let c = s(&["PATH=/p", "HOSTNAME=h", "A=1"]);
        assert_eq!(
            exec_base_env(&c, false, true),
            s(&["PATH=/p", "HOSTNAME=h", "TERM=xterm", "A=1"])
        );
    }

    #[test]
    fn env_names_must_not_be_empty() {
        check_env("A=1").unwrap();
        check_env("A").unwrap();
        assert_eq!(
            check_env("=x").unwrap_err().to_string(),
            "invalid environment variable: =x"
        );
        assert!(check_env("").is_err());
    }

    #[test]
    fn workdirs_are_absolute_and_clean() {
        assert_eq!(clean_workdir("/a//b/./c/").unwrap(), "/a/b/c");
        assert_eq!(clean_workdir("/a/../../b").unwrap(), "/b");
        assert_eq!(
            clean_workdir("rel").unwrap_err().to_string(),
            "the working directory 'rel' is invalid, it needs to be an absolute path"
        );
    }
}
