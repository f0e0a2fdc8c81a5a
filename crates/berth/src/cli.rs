//! The command line: docker's commands and flags, and the dispatch.

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::manage::Prune;
use crate::{
    containers, images, login, manage, network, plugins, run, stats, system, volumes, Ctx,
};

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "A container engine with docker's command line",
    disable_help_subcommand = true,
    disable_version_flag = true,
    // pflag lets a flag come again (`--rm --rm=true`): the last one wins.
    args_override_self = true
)]
pub struct Cli {
    /// Print version information and quit (docker's -v)
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,
    /// Name of the context to use: berth has only "default" (-H and
    /// $BERTH_HOST/$DOCKER_HOST choose the daemon)
    #[arg(short = 'c', long)]
    pub context: Option<String>,
    /// Set the logging level (accepted for docker compatibility: berth
    /// logs nothing but errors)
    #[arg(short = 'l', long = "log-level", value_parser = ["debug", "info", "warn", "error", "fatal"])]
    pub log_level: Option<String>,
    /// TLS to the daemon (docker's --tls, --tlsverify and their files):
    /// not supported; berth speaks to unix sockets and plain tcp://
    #[arg(long, hide = true)]
    pub tls: bool,
    #[arg(long, hide = true)]
    pub tlsverify: bool,
    #[arg(long, hide = true)]
    pub tlscacert: Option<String>,
    #[arg(long, hide = true)]
    pub tlscert: Option<String>,
    #[arg(long, hide = true)]
    pub tlskey: Option<String>,
    /// Daemon socket to connect to (unix:///path or tcp://host:port);
    /// default $BERTH_HOST, $DOCKER_HOST, unix:///run/berth/berth.sock
    #[arg(short = 'H', long = "host", global = true)]
    pub host: Option<String>,
    /// Location of client config files (config.json: registry logins);
    /// default $DOCKER_CONFIG, ~/.docker
    #[arg(long, global = true)]
    pub config: Option<String>,
    /// Enable debug mode (accepted for docker compatibility)
    #[arg(short = 'D', long, global = true, hide = true)]
    pub debug: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
// Only the chosen subcommand's flags are built (clap builds the whole tree
// otherwise: 1.5 ms of every call); the nested enums defer theirs too.
#[command(defer = true)]
pub enum Command {
    /// Show the client and daemon versions
    Version(system::VersionArgs),
    /// Show system-wide information
    Info(system::InfoArgs),
    /// Manage the daemon
    #[command(subcommand)]
    System(SystemCmd),
    /// Get real time events from the server
    Events(system::EventsArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Pull an image from a registry
    Pull(images::PullArgs),
    /// Push an image to a registry
    Push(images::PushArgs),
    /// Log in to a registry
    Login(login::LoginArgs),
    /// Log out from a registry
    Logout(login::LogoutArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(images::TagArgs),
    /// Remove one or more images
    Rmi(images::RmiArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(images::SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(images::LoadArgs),
    /// Build an image from a Dockerfile
    Build(crate::build::BuildArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(images::ImportArgs),
    /// Create a new image from a container's changes
    Commit(containers::CommitArgs),
    /// Show the history of an image
    History(images::HistoryArgs),
    /// List containers
    Ps(containers::PsArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Return low-level information on Docker objects
    Inspect(containers::InspectArgs),
    /// Run a command in a new container
    #[command(disable_help_flag = true)]
    Run(run::RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(run::CreateArgs),
    /// Start one or more stopped containers
    Start(run::StartArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(run::AttachArgs),
    /// Run a command in a running container
    Exec(run::ExecArgs),
    /// Stop one or more running containers
    Stop(containers::StopArgs),
    /// Restart one or more containers
    Restart(containers::StopArgs),
    /// Kill one or more running containers
    Kill(containers::KillArgs),
    /// Remove one or more containers
    Rm(containers::RmArgs),
    /// Pause all processes within one or more containers
    Pause(containers::NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(containers::NamesArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(containers::NamesArgs),
    /// Rename a container
    Rename(containers::RenameArgs),
    /// Display the running processes of a container
    Top(containers::TopArgs),
    /// List port mappings or a specific mapping for the container
    Port(containers::PortArgs),
    /// Fetch the logs of a container
    Logs(containers::LogsArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(containers::NameArg),
    /// Export a container's filesystem as a tar archive
    Export(containers::ExportArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(manage::CpArgs),
    /// Update configuration of one or more containers
    Update(manage::UpdateArgs),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volumes::VolumeCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCmd),
    /// Manage plugins
    #[command(subcommand)]
    Plugin(plugins::PluginCmd),
    /// Manage builds
    #[command(subcommand)]
    Builder(BuilderCmd),
    /// Generate the shell completion script (bash, zsh, fish, elvish, powershell)
    Completion { shell: clap_complete::Shell },
    /// Write the man page (roff) to stdout
    #[command(hide = true)]
    Man,
    /// Commands of later releases: they say so
    #[command(external_subcommand)]
    Other(Vec<String>),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum SystemCmd {
    /// Show docker disk usage
    Df(system::DfArgs),
    /// Show system-wide information
    Info(system::InfoArgs),
    /// Get real time events from the server
    Events(system::EventsArgs),
    /// Remove unused data
    Prune(manage::PruneArgs),
    #[command(external_subcommand)]
    Other(Vec<String>),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum BuilderCmd {
    /// Build an image from a Dockerfile
    Build(crate::build::BuildArgs),
    /// Remove build cache
    Prune(manage::BuilderPruneArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ImageCmd {
    #[command(alias = "list")]
    Ls(images::ImagesArgs),
    Inspect(ImageInspectArgs),
    #[command(alias = "remove")]
    Rm(images::RmiArgs),
    Tag(images::TagArgs),
    Pull(images::PullArgs),
    Push(images::PushArgs),
    Save(images::SaveArgs),
    Load(images::LoadArgs),
    Import(images::ImportArgs),
    History(images::HistoryArgs),
    /// Build an image from a Dockerfile
    Build(crate::build::BuildArgs),
    /// Remove unused images
    Prune(manage::PruneArgs),
    #[command(external_subcommand)]
    Other(Vec<String>),
}

#[derive(Args, Debug)]
pub struct ImageInspectArgs {
    #[arg(short, long, default_value = "")]
    pub format: String,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ContainerInspectArgs {
    #[arg(short, long, default_value = "")]
    pub format: String,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ContainerCmd {
    #[command(alias = "list", alias = "ps")]
    Ls(containers::PsArgs),
    Inspect(ContainerInspectArgs),
    #[command(disable_help_flag = true)]
    Run(run::RunArgs),
    #[command(disable_help_flag = true)]
    Create(run::CreateArgs),
    Start(run::StartArgs),
    Attach(run::AttachArgs),
    Exec(run::ExecArgs),
    Stop(containers::StopArgs),
    Restart(containers::StopArgs),
    Kill(containers::KillArgs),
    #[command(alias = "remove")]
    Rm(containers::RmArgs),
    Pause(containers::NamesArgs),
    Unpause(containers::NamesArgs),
    Wait(containers::NamesArgs),
    Rename(containers::RenameArgs),
    Commit(containers::CommitArgs),
    Top(containers::TopArgs),
    Port(containers::PortArgs),
    Logs(containers::LogsArgs),
    Diff(containers::NameArg),
    Export(containers::ExportArgs),
    Stats(stats::StatsArgs),
    Cp(manage::CpArgs),
    Update(manage::UpdateArgs),
    /// Remove all stopped containers
    Prune(manage::PruneArgs),
    #[command(external_subcommand)]
    Other(Vec<String>),
}

/// Repeated `--flag a --flag b` values.
pub fn many() -> ArgAction {
    ArgAction::Append
}

fn not_yet(what: &[String]) -> anyhow::Result<()> {
    let name = what.first().map(String::as_str).unwrap_or("");
    let known = [
        "buildx",
        "compose",
        "search",
        "swarm",
        "service",
        "stack",
        "secret",
        "config",
        "node",
        "trust",
        "manifest",
        "context",
        "checkpoint",
    ];
    if known.contains(&name) {
        anyhow::bail!("'{name}' is not available yet in this version of berth");
    }
    anyhow::bail!("'{name}' is not a berth command.\nSee 'berth --help'")
}

pub fn dispatch(ctx: &Ctx, cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Version(a) => system::version(ctx, a),
        Command::Info(a) => system::info(ctx, a),
        Command::System(SystemCmd::Df(a)) => system::df(ctx, a),
        Command::System(SystemCmd::Info(a)) => system::info(ctx, a),
        Command::System(SystemCmd::Events(a)) | Command::Events(a) => system::events(ctx, a),
        Command::System(SystemCmd::Other(v)) => not_yet(&v),
        Command::Images(a) | Command::Image(ImageCmd::Ls(a)) => images::images(ctx, a),
        Command::Image(ImageCmd::Inspect(a)) => {
            containers::inspect_typed(ctx, Some("image"), &a.format, &a.names)
        }
        Command::Pull(a) | Command::Image(ImageCmd::Pull(a)) => images::pull(ctx, a),
        Command::Push(a) | Command::Image(ImageCmd::Push(a)) => images::push(ctx, a),
        Command::Login(a) => login::login(ctx, a),
        Command::Logout(a) => login::logout(ctx, a),
        Command::Tag(a) | Command::Image(ImageCmd::Tag(a)) => images::tag(ctx, a),
        Command::Rmi(a) | Command::Image(ImageCmd::Rm(a)) => images::rmi(ctx, a),
        Command::Save(a) | Command::Image(ImageCmd::Save(a)) => images::save(ctx, a),
        Command::Load(a) | Command::Image(ImageCmd::Load(a)) => images::load(ctx, a),
        Command::Build(a)
        | Command::Image(ImageCmd::Build(a))
        | Command::Builder(BuilderCmd::Build(a)) => crate::build::build(ctx, a),
        Command::Builder(BuilderCmd::Prune(a)) => manage::builder_prune(ctx, a),
        Command::Import(a) | Command::Image(ImageCmd::Import(a)) => images::import(ctx, a),
        Command::History(a) | Command::Image(ImageCmd::History(a)) => images::history(ctx, a),
        Command::Image(ImageCmd::Other(v)) => not_yet(&v),
        Command::Ps(a) | Command::Container(ContainerCmd::Ls(a)) => containers::ps(ctx, a),
        Command::Container(ContainerCmd::Inspect(a)) => {
            containers::inspect_typed_sized(ctx, Some("container"), &a.format, &a.names, a.size)
        }
        Command::Inspect(a) => containers::inspect(ctx, a),
        Command::Run(a) | Command::Container(ContainerCmd::Run(a)) => run::run(ctx, a),
        Command::Create(a) | Command::Container(ContainerCmd::Create(a)) => run::create(ctx, a),
        Command::Start(a) | Command::Container(ContainerCmd::Start(a)) => run::start(ctx, a),
        Command::Attach(a) | Command::Container(ContainerCmd::Attach(a)) => run::attach(ctx, a),
        Command::Exec(a) | Command::Container(ContainerCmd::Exec(a)) => run::exec(ctx, a),
        Command::Stop(a) | Command::Container(ContainerCmd::Stop(a)) => {
            containers::stop(ctx, a, "stop")
        }
        Command::Restart(a) | Command::Container(ContainerCmd::Restart(a)) => {
            containers::stop(ctx, a, "restart")
        }
        Command::Kill(a) | Command::Container(ContainerCmd::Kill(a)) => containers::kill(ctx, a),
        Command::Rm(a) | Command::Container(ContainerCmd::Rm(a)) => containers::rm(ctx, a),
        Command::Pause(a) | Command::Container(ContainerCmd::Pause(a)) => {
            containers::simple_post(ctx, a, "pause")
        }
        Command::Unpause(a) | Command::Container(ContainerCmd::Unpause(a)) => {
            containers::simple_post(ctx, a, "unpause")
        }
        Command::Wait(a) | Command::Container(ContainerCmd::Wait(a)) => containers::wait(ctx, a),
        Command::Commit(a) | Command::Container(ContainerCmd::Commit(a)) => {
            containers::commit(ctx, a)
        }
        Command::Rename(a) | Command::Container(ContainerCmd::Rename(a)) => {
            containers::rename(ctx, a)
        }
        Command::Top(a) | Command::Container(ContainerCmd::Top(a)) => containers::top(ctx, a),
        Command::Port(a) | Command::Container(ContainerCmd::Port(a)) => containers::port(ctx, a),
        Command::Logs(a) | Command::Container(ContainerCmd::Logs(a)) => containers::logs(ctx, a),
        Command::Diff(a) | Command::Container(ContainerCmd::Diff(a)) => containers::diff(ctx, a),
        Command::Export(a) | Command::Container(ContainerCmd::Export(a)) => {
            containers::export(ctx, a)
        }
        Command::Stats(a) | Command::Container(ContainerCmd::Stats(a)) => stats::stats(ctx, a),
        Command::Cp(a) | Command::Container(ContainerCmd::Cp(a)) => manage::cp(ctx, a),
        Command::Update(a) | Command::Container(ContainerCmd::Update(a)) => manage::update(ctx, a),
        Command::Container(ContainerCmd::Prune(a)) => manage::prune(ctx, Prune::Containers, a),
        Command::Volume(v) => volumes::dispatch(ctx, v),
        Command::Image(ImageCmd::Prune(a)) => manage::prune(ctx, Prune::Images, a),
        Command::System(SystemCmd::Prune(a)) => manage::prune(ctx, Prune::System, a),
        Command::Container(ContainerCmd::Other(v)) => not_yet(&v),
        Command::Network(c) => network::dispatch(ctx, c),
        Command::Plugin(c) => plugins::dispatch(ctx, c),
        Command::Completion { shell } => {
            let script = crate::completion::script(shell);
            std::io::Write::write_all(&mut ctx.out(), &script)?;
            Ok(())
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            std::io::Write::write_all(&mut ctx.out(), &page)?;
            Ok(())
        }
        Command::Other(v) => not_yet(&v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn completion_and_man_page_know_the_network_commands() {
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "berth",
            &mut script,
        );
        let script = String::from_utf8(script).unwrap();
        for sub in [
            "create",
            "ls",
            "inspect",
            "rm",
            "prune",
            "connect",
            "disconnect",
        ] {
            assert!(
                script.contains(&format!("berth__subcmd__network__subcmd__{sub}")),
                "no network {sub}"
            );
        }
        assert!(script.contains("--network-alias") && script.contains("--publish-all"));
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut page)
            .unwrap();
        assert!(String::from_utf8(page)
            .unwrap()
            .contains(r"berth\-network(1)"));
    }

    #[test]
    fn docker_style_flags_parse() {
        let c = Cli::try_parse_from(["berth", "-H", "unix:///x", "ps", "-aq", "-n", "2"]).unwrap();
        assert_eq!(c.host.as_deref(), Some("unix:///x"));
        assert!(matches!(c.command, Command::Ps(ref p) if p.all && p.quiet && p.last == 2));
        let c = Cli::try_parse_from(["berth", "run", "-h", "box", "--rm", "busybox", "ls", "-l"])
            .unwrap();
        match c.command {
            Command::Run(r) => assert_eq!(r.opts.image_and_cmd, ["busybox", "ls", "-l"]),
            other => panic!("parsed as {other:?}"),
        }
        let c = Cli::try_parse_from(["berth", "network", "ls", "-q"]).unwrap();
        assert!(matches!(c.command, Command::Network(network::NetworkCmd::Ls(ref l)) if l.quiet));
        let c = Cli::try_parse_from(["berth", "-l", "warn", "-c", "default", "ps"]).unwrap();
        assert_eq!(c.context.as_deref(), Some("default"));
        let e = Cli::try_parse_from(["berth", "-v"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion);
        let c = Cli::try_parse_from(["berth", "compose", "up"]).unwrap();
        assert!(matches!(c.command, Command::Other(ref v) if v[0] == "compose"));
    }

    /// `--sig-proxy` is a pflag boolean: bare means true, `=false` turns it
    /// off, and a following word is the image, never the flag's value.
    #[test]
    fn sig_proxy_takes_pflag_boolean_forms() {
        let sig_proxy = |argv: &[&str]| match Cli::try_parse_from(argv).unwrap().command {
            Command::Run(r) => (r.sig_proxy, r.opts.image_and_cmd),
            other => panic!("parsed as {other:?}"),
        };
        assert_eq!(
            sig_proxy(&["berth", "run", "img"]),
            (true, vec!["img".into()])
        );
        assert_eq!(
            sig_proxy(&["berth", "run", "--sig-proxy=false", "img"]),
            (false, vec!["img".into()])
        );
        assert_eq!(
            sig_proxy(&["berth", "run", "--sig-proxy", "img"]),
            (true, vec!["img".into()])
        );
    }
}
