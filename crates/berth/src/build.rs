//! `berth build`: sends a directory (or a tar on stdin) as the build
//! context to the daemon's classic builder and prints its output.

use std::io::Read;
use std::path::{Path, PathBuf};

use berth_archive::Compression;
use berth_client::Query;
use clap::Args;

use crate::Ctx;

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the 'name:tag' format
    #[arg(short, long, action = crate::cli::many())]
    pub tag: Vec<String>,
    /// Name of the Dockerfile (default: 'PATH/Dockerfile')
    #[arg(short, long)]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg", action = crate::cli::many())]
    pub build_arg: Vec<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Set metadata for an image
    #[arg(long, action = crate::cli::many())]
    pub label: Vec<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long)]
    pub network: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", action = crate::cli::many())]
    pub add_host: Vec<String>,
    /// Images to consider as cache sources
    #[arg(long = "cache-from", action = crate::cli::many())]
    pub cache_from: Vec<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Always attempt to pull a newer version of the image (accepted; the
    /// builder uses local images)
    #[arg(long)]
    pub pull: bool,
    /// Remove intermediate containers after a successful build (always)
    #[arg(long, default_value_t = true)]
    pub rm: bool,
    /// PATH | -
    pub context: String,
}

pub fn build(ctx: &Ctx, a: BuildArgs) -> anyhow::Result<()> {
    let mut q = Query::new();
    for t in &a.tag {
        q = q.push("t", t.as_str());
    }
    let build_args: serde_json::Map<String, serde_json::Value> = a
        .build_arg
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.into()),
            // `--build-arg NAME` takes the value from the environment.
            None => (
                kv.clone(),
                std::env::var(kv).map(Into::into).unwrap_or_default(),
            ),
        })
        .collect();
    if !build_args.is_empty() {
        q = q.push(
            "buildargs",
            serde_json::Value::Object(build_args).to_string(),
        );
    }
    let labels = crate::network_create::kv_map(&a.label);
    if !labels.is_empty() {
        q = q.push("labels", serde_json::Value::Object(labels).to_string());
    }
    if !a.cache_from.is_empty() {
        q = q.push("cachefrom", serde_json::to_string(&a.cache_from)?);
    }
    for h in &a.add_host {
        q = q.push("extrahosts", h.as_str());
    }
    for (k, v) in [
        ("target", &a.target),
        ("networkmode", &a.network),
        ("platform", &a.platform),
    ] {
        if let Some(v) = v {
            q = q.push(k, v.as_str());
        }
    }
    q = q
        .flag("nocache", a.no_cache)
        .flag("q", a.quiet)
        .flag("rm", a.rm);

    let mut input: Box<dyn Read + Send> = if a.context == "-" {
        if let Some(f) = &a.file {
            q = q.push("dockerfile", f.as_str());
        }
        Box::new(std::io::stdin())
    } else {
        let dir = PathBuf::from(&a.context);
        if !dir.is_dir() {
            anyhow::bail!("unable to prepare context: path {:?} not found", a.context);
        }
        q = q.push(
            "dockerfile",
            dockerfile_in_context(&dir, a.file.as_deref())?,
        );
        Box::new(context_tar(dir, Compression::None, "build context")?)
    };
    crate::images::post_tar(ctx, &format!("/build{}", q.encode()), &mut input)
}

/// The Dockerfile's path relative to the context (`-f` is relative to the
/// current directory, as docker's).
fn dockerfile_in_context(dir: &Path, file: Option<&str>) -> anyhow::Result<String> {
    let Some(f) = file else {
        return Ok("Dockerfile".into());
    };
    let abs_dir = std::fs::canonicalize(dir)?;
    let abs_file = std::fs::canonicalize(f)
        .map_err(|e| anyhow::anyhow!("unable to prepare context: the Dockerfile {f:?}: {e}"))?;
    abs_file
        .strip_prefix(&abs_dir)
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|_| {
            anyhow::anyhow!(
                "the Dockerfile {f:?} must be inside the build context {:?}",
                dir.display()
            )
        })
}

/// A context directory (`what`: "build context", "plugin context") as a
/// tar, compressed as asked, written by a thread into a pipe.
pub(crate) fn context_tar(
    dir: PathBuf,
    compression: Compression,
    what: &'static str,
) -> anyhow::Result<impl Read + Send> {
    let (r, w) = std::io::pipe()?;
    std::thread::spawn(move || {
        let written = berth_archive::compressor(w, compression)
            .map_err(anyhow::Error::from)
            .and_then(|mut c| {
                berth_archive::write_tree(&dir, &mut c)?;
                c.finish()?;
                Ok(())
            });
        if let Err(e) = written {
            eprintln!("berth: reading the {what} {}: {e}", dir.display());
        }
    });
    Ok(r)
}
