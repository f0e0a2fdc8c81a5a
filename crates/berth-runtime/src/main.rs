#![forbid(unsafe_code)]
//! `berth-runtime`: an OCI runtime with runc's command line, so containerd,
//! dockerd (`--add-runtime`) and podman (`--runtime`) can drive it.

mod commands;
mod exe_guard;
mod logging;
mod signals;
mod spec_template;
mod tty;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `--version` in runc's shape ("NAME version X" and "spec: Y" lines):
/// dockerd parses it for `docker info`, podman shows it in `podman info`.
const VERSION_TEXT: &str = concat!("version ", env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0");

#[derive(Parser, Debug)]
#[command(
    name = "berth-runtime",
    version = VERSION_TEXT,
    disable_version_flag = true,
    about = "An OCI container runtime with runc's command line"
)]
pub struct Cli {
    /// Print the version (runc accepts -v as well as --version).
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
    /// Directory for the containers' state.
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    root: PathBuf,
    /// Write logs to this file (errors are also printed to stderr).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Log debug messages too.
    #[arg(long, global = true)]
    debug: bool,
    /// Manage cgroups through systemd (not supported yet).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility (checkpointing is not supported).
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    /// Accepted for runc compatibility: true, false or auto.
    #[arg(long = "rootless", id = "global_rootless", hide = true)]
    rootless: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new spec file (config.json).
    Spec {
        /// Where to write config.json (default: the current directory).
        #[arg(short, long)]
        bundle: Option<PathBuf>,
        /// Make a spec for a rootless container.
        #[arg(long)]
        rootless: bool,
    },
    /// Create a container (its process waits for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Print the state of a container as JSON.
    State { id: String },
    /// Send a signal to a container's init (default SIGTERM).
    Kill {
        id: String,
        signal: Option<String>,
        /// Signal every process in the container.
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container.
    Delete {
        id: String,
        /// Kill the container first if it is still running.
        #[arg(short, long)]
        force: bool,
    },
    /// Create and start a container, then wait for it (unless --detach).
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Do not wait for the container; leave it running.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Run a new process inside a running container.
    Exec(ExecArgs),
    /// List the processes running inside a container.
    Ps {
        id: String,
        /// table or json.
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Options passed to ps(1) (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List containers.
    List {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Print only the ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Suspend every process in a container.
    Pause { id: String },
    /// Resume a paused container.
    Resume { id: String },
    /// Change a running container's resource limits.
    Update(UpdateArgs),
    /// Print container events and resource usage.
    Events {
        id: String,
        /// Print the statistics once and exit.
        #[arg(long)]
        stats: bool,
        /// Interval between statistics (e.g. 5s, 500ms).
        #[arg(long, default_value = "5s")]
        interval: String,
    },
    /// Print what this runtime supports, as JSON.
    Features,
    /// Checkpointing is not supported.
    Checkpoint {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Restoring from a checkpoint is not supported.
    Restore {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    pub id: String,
    /// The bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// A unix socket that receives the pty master when process.terminal is true.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Use chroot (MS_MOVE) instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (from 3 up) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility; systemd notify sockets are not supported.
    #[arg(long = "notify-socket", hide = true)]
    pub notify_socket: Option<PathBuf>,
    /// A unix socket that receives a pidfd of the container's init.
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Environment variables (KEY=VALUE), added to the container's.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// uid[:gid] to run as.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional gids.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// A JSON file with the OCI process to run (instead of the command).
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Do not wait for the process.
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Set no_new_privileges.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Add a capability.
    #[arg(short, long)]
    pub cap: Vec<String>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility (AppArmor and SELinux are not supported).
    #[arg(long, hide = true)]
    pub apparmor: Option<String>,
    #[arg(long = "process-label", hide = true)]
    pub process_label: Option<String>,
    /// Allow exec in a paused container.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// A unix socket that receives a pidfd of the new process.
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Run in a sub-cgroup of the container's: `[controller:]path`.
    #[arg(long)]
    pub cgroup: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct UpdateArgs {
    pub id: String,
    /// A JSON file (or - for stdin) with OCI linux.resources.
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "memory", allow_hyphen_values = true)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    #[arg(long = "kernel-memory", hide = true, allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp", hide = true, allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    #[arg(long = "l3-cache-schema", hide = true)]
    pub l3_cache_schema: Option<String>,
    #[arg(long = "mem-bw-schema", hide = true)]
    pub mem_bw_schema: Option<String>,
}

fn main() {
    // Commands that enter a container re-exec from a read-only copy: done
    // first, before the arguments are parsed, so that the process that is
    // replaced does as little as it can. A word that merely looks like one
    // of them (a container named "run") costs a needless re-exec, never a
    // missed one: clap takes subcommands only as whole arguments. A failure
    // is reported below, once the log is known.
    let guarded = std::env::args_os()
        .skip(1)
        .any(|a| a == "create" || a == "run" || a == "exec")
        .then(exe_guard::ensure_unwritable_exe);
    let cli = Cli::parse();
    let log = logging::Log {
        file: cli.log.clone(),
        json: cli.log_format == "json",
        debug: cli.debug,
    };
    let enters_container = matches!(
        cli.command,
        Command::Create(_) | Command::Run { .. } | Command::Exec(_)
    );
    if enters_container {
        // Guarded above (the scan cannot miss these commands); the check
        // is not repeated.
        if let Some(Err(e)) = guarded.or_else(|| Some(exe_guard::ensure_unwritable_exe())) {
            log.error(&format!("{e:#}"));
            std::process::exit(1);
        }
    }
    let code = match commands::run(&cli, &log) {
        Ok(code) => code,
        // A closed stdout (`berth-runtime list | head`) ends us quietly.
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            log.error(&format!("{e:#}"));
            if e.downcast_ref::<commands::ExecFailed>().is_some() {
                255
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_text_names_the_spec_version_berth_writes() {
        let spec_line = super::VERSION_TEXT.lines().last().unwrap();
        assert_eq!(
            spec_line,
            format!("spec: {}", berth_container::state::OCI_VERSION)
        );
    }
}
