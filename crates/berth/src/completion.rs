//! `berth completion SHELL`: clap's scripts from the command definitions,
//! plus what clap cannot know: the daemon's names. Where an argument takes
//! containers, images, networks, volumes or plugins, the script asks the
//! daemon (`berth ps`, `images`, `network ls`, `volume ls`, `plugin ls`)
//! while completing.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// The script for `shell`, ready to be sourced.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    // Into memory first: clap_complete panics on a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "berth", &mut script);
    match shell {
        Shell::Bash => script.extend_from_slice(BASH_NAMES.as_bytes()),
        Shell::Zsh => script = zsh_with_names(&String::from_utf8_lossy(&script)).into_bytes(),
        Shell::Fish => {
            script.extend_from_slice(FISH_NAMES.as_bytes());
            script.extend_from_slice(fish_rules(&cmd).as_bytes());
        }
        _ => {}
    }
    script
}

/// Which of the daemon's names a positional argument takes, by its id in
/// the command definitions; "all" where it may be any object (`inspect`).
fn names_kind(arg_id: &str) -> Option<&'static str> {
    Some(match arg_id {
        "container" | "containers" => "containers",
        "image" | "images" | "image_and_cmd" => "images",
        "network" | "networks" => "networks",
        "volume" | "volumes" => "volumes",
        "plugin" | "plugins" => "plugins",
        "names" => "all",
        _ => return None,
    })
}

/// Bash: where clap's static completion offers nothing for a positional
/// argument, offer all of the daemon's names.
const BASH_NAMES: &str = r#"
_berth_names() {
    berth ps -a --format '{{.Names}}' 2>/dev/null
    berth images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -v '<none>'
    berth network ls --format '{{.Name}}' 2>/dev/null
    berth volume ls --format '{{.Name}}' 2>/dev/null
    berth plugin ls --format '{{.Name}}' 2>/dev/null
}
_berth_dynamic() {
    _berth "$@"
    local cur="${COMP_WORDS[COMP_CWORD]}"
    [[ "$cur" == -* ]] && return
    local w keep=()
    for w in "${COMPREPLY[@]}"; do [[ "$w" != -* ]] && keep+=("$w"); done
    if [[ ${#keep[@]} -eq 0 ]]; then
        COMPREPLY=( $(compgen -W "$(_berth_names)" -- "$cur") )
    fi
}
complete -F _berth_dynamic -o bashdefault -o default berth
"#;

const ZSH_NAMES: &str = r#"
# The daemon's names of one kind (containers, images, networks, volumes,
# plugins, all).
_berth_daemon_names() {
    local -a names
    case $1 in
        containers) names=(${(f)"$(berth ps -a --format '{{.Names}}' 2>/dev/null)"}) ;;
        images) names=(${(f)"$(berth images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -v '<none>')"}) ;;
        networks) names=(${(f)"$(berth network ls --format '{{.Name}}' 2>/dev/null)"}) ;;
        volumes) names=(${(f)"$(berth volume ls --format '{{.Name}}' 2>/dev/null)"}) ;;
        plugins) names=(${(f)"$(berth plugin ls --format '{{.Name}}' 2>/dev/null)"}) ;;
        *) local kind
           for kind in containers images networks volumes; do _berth_daemon_names $kind; done
           return ;;
    esac
    compadd -a names
}
"#;

/// clap's zsh script completes positional arguments with `_default`
/// (files); those that take names ask the daemon instead. The function goes
/// right after `#compdef`, so it exists both when the file is autoloaded
/// and when it is sourced.
fn zsh_with_names(script: &str) -> String {
    let mut out = String::with_capacity(script.len() + ZSH_NAMES.len());
    for (i, line) in script.lines().enumerate() {
        match zsh_positional_id(line).and_then(names_kind) {
            Some(kind) => {
                let at = line.rfind(":_default'").expect("matched below");
                out.push_str(&line[..at]);
                out.push_str(&format!(":{{_berth_daemon_names {kind}}}'"));
                out.push_str(&line[at + ":_default'".len()..]);
            }
            None => out.push_str(line),
        }
        out.push('\n');
        if i == 0 {
            out.push_str(ZSH_NAMES);
        }
    }
    out
}

/// The id of a positional argument's `_arguments` spec completed with
/// `_default`, such as `'*::containers -- Containers:_default' \`.
fn zsh_positional_id(line: &str) -> Option<&str> {
    if !line.contains(":_default'") {
        return None;
    }
    let spec = line.strip_prefix('\'')?;
    let spec = spec.strip_prefix('*').unwrap_or(spec);
    let spec = spec.strip_prefix("::").or_else(|| spec.strip_prefix(':'))?;
    let end = spec.find([' ', ':']).unwrap_or(spec.len());
    let id = &spec[..end];
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')).then_some(id)
}

const FISH_NAMES: &str = r#"
# The daemon's names of one kind (containers, images, networks, volumes,
# plugins, all).
function __berth_daemon_names
    switch $argv[1]
        case containers
            berth ps -a --format '{{.Names}}' 2>/dev/null
        case images
            berth images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | string match -v '*<none>*'
        case networks
            berth network ls --format '{{.Name}}' 2>/dev/null
        case volumes
            berth volume ls --format '{{.Name}}' 2>/dev/null
        case plugins
            berth plugin ls --format '{{.Name}}' 2>/dev/null
        case '*'
            for kind in containers images networks volumes
                __berth_daemon_names $kind
            end
    end
end
"#;

/// One `complete` rule per command whose positional argument takes names,
/// with the conditions clap's fish script uses for that command.
fn fish_rules(root: &clap::Command) -> String {
    let mut rules = String::new();
    let mut walk = vec![(Vec::<String>::new(), root)];
    while let Some((path, cmd)) = walk.pop() {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut sub_path = path.clone();
            sub_path.push(sub.get_name().to_string());
            let kind = sub
                .get_positionals()
                .find_map(|a| names_kind(a.get_id().as_str()));
            if let Some(kind) = kind {
                let condition = match sub_path.as_slice() {
                    [top] => format!("__fish_berth_using_subcommand {top}"),
                    [top, rest @ ..] => format!(
                        "__fish_berth_using_subcommand {top}; and __fish_seen_subcommand_from {}",
                        rest.join(" ")
                    ),
                    [] => unreachable!("a subcommand has a name"),
                };
                rules.push_str(&format!(
                    "complete -c berth -n \"{condition}\" -f -a \"(__berth_daemon_names {kind})\"\n"
                ));
            }
            walk.push((sub_path, sub));
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(shell: Shell) -> String {
        String::from_utf8(script(shell)).unwrap()
    }

    #[test]
    fn zsh_asks_the_daemon_for_positional_names() {
        let zsh = text(Shell::Zsh);
        assert!(zsh.starts_with("#compdef berth\n\n# The daemon's names"));
        for kind in [
            "containers",
            "images",
            "networks",
            "volumes",
            "plugins",
            "all",
        ] {
            assert!(
                zsh.contains(&format!(":{{_berth_daemon_names {kind}}}'")),
                "no {kind}"
            );
        }
        // Flags' values and other positionals keep clap's completion.
        assert!(zsh.contains(
            "'--format=[Format the output using the given Go template]:FORMAT:_default'"
        ));
        assert_eq!(
            zsh_positional_id("'*::containers -- Containers:_default' \\"),
            Some("containers")
        );
        assert_eq!(
            zsh_positional_id("':container:_default' \\"),
            Some("container")
        );
        assert_eq!(zsh_positional_id("'-f+[x]:FORMAT:_default' \\"), None);
    }

    #[test]
    fn fish_asks_the_daemon_for_names_per_command() {
        let fish = text(Shell::Fish);
        for rule in [
            "-n \"__fish_berth_using_subcommand rm\" -f -a \"(__berth_daemon_names containers)\"",
            "-n \"__fish_berth_using_subcommand rmi\" -f -a \"(__berth_daemon_names images)\"",
            "-n \"__fish_berth_using_subcommand container; and __fish_seen_subcommand_from rm\" -f -a \"(__berth_daemon_names containers)\"",
            "-n \"__fish_berth_using_subcommand network; and __fish_seen_subcommand_from rm\" -f -a \"(__berth_daemon_names networks)\"",
            "-n \"__fish_berth_using_subcommand inspect\" -f -a \"(__berth_daemon_names all)\"",
            "-n \"__fish_berth_using_subcommand plugin; and __fish_seen_subcommand_from rm\" -f -a \"(__berth_daemon_names plugins)\"",
        ] {
            assert!(fish.contains(rule), "no rule {rule}");
        }
        assert!(!fish.contains("using_subcommand ps\" -f -a"));
    }
}
