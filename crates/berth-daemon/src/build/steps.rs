//! Running a Dockerfile's instructions, one image per step.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_build::{Args, Instruction, Lexer, Vars};
use berth_image::commit::Parent;
use berth_image::config::RunConfig;
use berth_image::{CommitOptions, Digest, ImageConfig};

use super::{BuildError, Context, Options, Output, MAX_CONTEXT};
use crate::containers::lifecycle::WaitCondition;
use crate::engine::Engine;

/// The image a stage has made so far.
struct Stage {
    name: Option<String>,
    parent: Parent,
    config: RunConfig,
    /// ARGs declared in this stage, with their values.
    args: BTreeMap<String, Option<String>>,
    /// Whether CMD was set in this stage (ENTRYPOINT resets an inherited one).
    cmd_set: bool,
    author: Option<String>,
}

/// The build-args every build takes without an ARG (docker's proxy
/// variables): RUN sees them, the history does not, and they are never
/// reported as unused.
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

pub(crate) struct Build<'a> {
    engine: &'a Arc<Engine>,
    rt: &'a tokio::runtime::Handle,
    opts: Options,
    ctx: Context,
    escape: char,
    out: &'a mut Output,
    /// ARGs declared before the first FROM (usable in FROM lines).
    global_args: BTreeMap<String, Option<String>>,
    /// Every ARG name the build declared: a build-arg none of them takes
    /// gets docker's "not consumed" warning.
    declared_args: BTreeSet<String>,
    /// Finished stages' images, by name and by index.
    stages: Vec<(Option<String>, Digest)>,
    /// Images the cache may use (with `cachefrom`), else any.
    cache_allowed: Option<BTreeSet<Digest>>,
    staging_seq: usize,
}

impl<'a> Build<'a> {
    pub(crate) fn run(
        engine: &'a Arc<Engine>,
        rt: &'a tokio::runtime::Handle,
        opts: Options,
        input: impl Read,
        out: &'a mut Output,
    ) -> Result<(), BuildError> {
        let data_root = engine.config().data_root;
        let ctx = Context::unpack(&data_root, input, MAX_CONTEXT)?;
        let text = ctx.dockerfile(&opts.dockerfile)?;
        ctx.apply_dockerignore()?;
        let df = berth_build::parse(&text).map_err(|e| BuildError::new(e.to_string()))?;
        check_instructions(&df.instructions)?;
        let cache_allowed = opts
            .cache_from
            .as_ref()
            .map(|names| cache_sources(engine, names));
        let mut b = Build {
            engine,
            rt,
            opts,
            ctx,
            escape: df.escape,
            out,
            global_args: BTreeMap::new(),
            declared_args: BTreeSet::new(),
            stages: Vec::new(),
            cache_allowed,
            staging_seq: 0,
        };
        b.instructions(&df.instructions)
    }

    fn instructions(&mut self, all: &[Instruction]) -> Result<(), BuildError> {
        // With a target, the stages after it are not built (their steps
        // are not counted either).
        let end = match &self.opts.target {
            None => all.len(),
            Some(t) => {
                let start = all
                    .iter()
                    .position(|i| i.keyword == "FROM" && stage_name(i).as_deref() == Some(t))
                    .ok_or_else(|| {
                        BuildError::new(format!("failed to reach build target {t} in Dockerfile"))
                    })?;
                all[start + 1..]
                    .iter()
                    .position(|i| i.keyword == "FROM")
                    .map_or(all.len(), |p| start + 1 + p)
            }
        };
        let steps = &all[..end];
        let mut stage: Option<Stage> = None;
        for (n, ins) in steps.iter().enumerate() {
            self.out.stream(&format!(
                "Step {}/{} : {}\n",
                n + 1,
                steps.len(),
                ins.original
            ));
            match (ins.keyword.as_str(), stage.as_mut()) {
                ("FROM", _) => {
                    if let Some(done) = stage.take() {
                        self.finish_stage(done)?;
                    }
                    stage = Some(self.from(ins)?);
                }
                ("ARG", None) => {
                    let globals = self.global_args.clone();
                    let vars = |k: &str| globals.get(k).cloned().flatten();
                    for (k, v) in self.arg_pairs(ins, &vars)? {
                        let v = self.opts.build_args.get(&k).cloned().flatten().or(v);
                        self.declared_args.insert(k.clone());
                        self.global_args.insert(k, v);
                    }
                }
                (_, None) => {
                    return Err(BuildError::new(format!(
                        "Dockerfile line {}: {} before the first FROM: a build starts with FROM",
                        ins.line, ins.keyword
                    )))
                }
                (_, Some(s)) => self.step(s, ins)?,
            }
        }
        let last = stage.ok_or_else(|| BuildError::new("the Dockerfile has no FROM"))?;
        let id = self.finish_stage(last)?;
        self.finish(&id)
    }

    /// Records a stage's final image; returns its id.
    fn finish_stage(&mut self, s: Stage) -> Result<Digest, BuildError> {
        let id = match &s.parent.id {
            Some(id) => id.clone(),
            // `FROM scratch` and nothing else: an image with no layers.
            None => self.commit_config(&s, "")?,
        };
        self.stages.push((s.name, id.clone()));
        Ok(id)
    }

    /// Labels from the query, the tags, the success lines.
    fn finish(&mut self, id: &Digest) -> Result<(), BuildError> {
        let mut id = id.clone();
        if !self.opts.labels.is_empty() {
            let parent = self.parent(&id)?;
            let mut run = parent.config.config.clone().unwrap_or_default();
            let labels = run.labels.get_or_insert_with(Default::default);
            labels.extend(self.opts.labels.clone());
            let s = Stage {
                name: None,
                config: run,
                args: BTreeMap::new(),
                cmd_set: true,
                author: parent.config.author.clone(),
                parent,
            };
            id = self.commit_config(&s, "LABEL")?;
        }
        let unused: Vec<&str> = self
            .opts
            .build_args
            .keys()
            .map(String::as_str)
            .filter(|k| !self.declared_args.contains(*k) && !PREDEFINED_ARGS.contains(k))
            .collect();
        if !unused.is_empty() {
            self.out.stream(&format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                unused.join(" ")
            ));
        }
        let short = short_id(&id);
        self.out.aux_id(&id.to_string());
        match self.out.quiet {
            true => self.out.always(&format!("{id}\n")),
            false => self.out.stream(&format!("Successfully built {short}\n")),
        }
        for t in self.opts.tags.clone() {
            self.engine.store.set_reference(&t, &id).map_err(api)?;
            self.engine
                .events
                .emit("image", "tag", &id.to_string(), Some(&t.familiar()));
            self.out
                .stream(&format!("Successfully tagged {}\n", t.familiar()));
        }
        Ok(())
    }

    fn from(&mut self, ins: &Instruction) -> Result<Stage, BuildError> {
        let globals = self.global_args.clone();
        let vars = |k: &str| globals.get(k).cloned().flatten();
        let words = match &ins.args {
            Args::Words(w) => self.expand_each(ins, w, &vars)?,
            _ => Vec::new(),
        };
        let (image, name) = match words.as_slice() {
            [image] => (image.clone(), None),
            [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
                (image.clone(), Some(name.to_ascii_lowercase()))
            }
            _ => {
                return Err(BuildError::new(format!(
                    "Dockerfile line {}: FROM takes an image and an optional `AS name`",
                    ins.line
                )))
            }
        };
        let stage = |parent: Parent, mut config: RunConfig| {
            // docker's builder gives a stage whose base sets no PATH the
            // default one (its `setDefaultPath`): `ENV PATH=/x:$PATH` and
            // the built image's Env see it.
            if env_value(&config, "PATH").is_none() {
                config
                    .env
                    .get_or_insert_with(Vec::new)
                    .push(format!("PATH={}", crate::spec::env::DEFAULT_PATH));
            }
            Stage {
                name: name.clone(),
                parent,
                config,
                args: BTreeMap::new(),
                cmd_set: false,
                author: None,
            }
        };
        if image == "scratch" {
            let config = ImageConfig {
                architecture: crate::system::go_arch().to_string(),
                os: "linux".into(),
                ..Default::default()
            };
            self.out.stream(" ---> \n");
            return Ok(stage(
                Parent {
                    id: None,
                    config,
                    layers: Vec::new(),
                },
                RunConfig::default(),
            ));
        }
        let earlier = self
            .stages
            .iter()
            .find(|(n, _)| n.as_deref() == Some(image.to_ascii_lowercase().as_str()))
            .map(|(_, id)| id.to_string());
        let image_ref = earlier.unwrap_or(image.clone());
        let record = self.engine.store.resolve_image(&image_ref).map_err(|_| {
            BuildError::new(format!(
                "pull access denied or image not found: {image:?} is not stored locally; pull it with \"docker pull {image}\" (berthd builds from local images)"
            ))
        })?;
        let config = crate::images::parse_image_config(&record)?;
        let run = config.config.clone().unwrap_or_default();
        let parent = self.engine.parent_of(&record, config)?;
        self.out
            .stream(&format!(" ---> {}\n", short_id(&record.id)));
        let mut s = stage(parent, run);
        // The base image's ONBUILD triggers run now, as docker's do.
        if let Some(triggers) = s.config.on_build.take().filter(|t| !t.is_empty()) {
            for t in triggers {
                self.out.stream("# Executing 1 build trigger\n");
                let parsed = berth_build::parse(&t).map_err(|e| BuildError::new(e.to_string()))?;
                check_instructions(&parsed.instructions)?;
                for ins in parsed.instructions {
                    self.step(&mut s, &ins)?;
                }
            }
        }
        Ok(s)
    }

    /// The variables a stage's instructions see: its ARGs, then ENV.
    fn vars(s: &Stage) -> impl Fn(&str) -> Option<String> + '_ {
        move |k: &str| env_value(&s.config, k).or_else(|| s.args.get(k).cloned().flatten())
    }

    /// Each word expanded on its own (BuildKit's parser has split them).
    fn expand_each(
        &self,
        ins: &Instruction,
        words: &[String],
        vars: &dyn Vars,
    ) -> Result<Vec<String>, BuildError> {
        let lx = Lexer::new(self.escape);
        words
            .iter()
            .map(|w| lx.process_word(w, vars).map_err(|e| line_error(ins, e)))
            .collect()
    }

    /// ARG's `NAME[=default]` words, the defaults expanded.
    fn arg_pairs(
        &self,
        ins: &Instruction,
        vars: &dyn Vars,
    ) -> Result<Vec<(String, Option<String>)>, BuildError> {
        let Args::Words(words) = &ins.args else {
            return Err(line_error(ins, "ARG requires at least one argument"));
        };
        let lx = Lexer::new(self.escape);
        let ex = |t: &str| lx.process_word(t, vars).map_err(|e| line_error(ins, e));
        words
            .iter()
            .map(|w| match w.split_once('=') {
                Some(("", _)) => Err(line_error(ins, "ARG names can not be blank")),
                Some((k, v)) => Ok((ex(k)?, Some(ex(v)?))),
                None => Ok((ex(w)?, None)),
            })
            .collect()
    }

    /// ENV's and LABEL's pairs, keys and values expanded.
    fn pairs(
        &self,
        ins: &Instruction,
        vars: &dyn Vars,
    ) -> Result<Vec<(String, String)>, BuildError> {
        let Args::Pairs(pairs) = &ins.args else {
            return Err(line_error(
                ins,
                format!("{} requires at least one argument", ins.keyword),
            ));
        };
        let lx = Lexer::new(self.escape);
        let ex = |t: &str| lx.process_word(t, vars).map_err(|e| line_error(ins, e));
        pairs
            .iter()
            .map(|p| {
                let key = ex(&p.key)?;
                if key.is_empty() {
                    return Err(line_error(
                        ins,
                        format!("{} names can not be blank", ins.keyword),
                    ));
                }
                Ok((key, ex(&p.value)?))
            })
            .collect()
    }

    fn step(&mut self, s: &mut Stage, ins: &Instruction) -> Result<(), BuildError> {
        // One string (USER, WORKDIR, ...), expanded.
        let one = |b: &Self, s: &Stage| -> Result<String, BuildError> {
            match &ins.args {
                Args::Text(t) => Lexer::new(b.escape)
                    .process_word(t, &Self::vars(s))
                    .map_err(|e| line_error(ins, e)),
                _ => Err(line_error(
                    ins,
                    format!("{} requires exactly one argument", ins.keyword),
                )),
            }
        };
        // A list (EXPOSE, VOLUME), each entry expanded.
        let list = |b: &Self, s: &Stage| -> Result<Vec<String>, BuildError> {
            match &ins.args {
                Args::Json(v) | Args::Words(v) => b.expand_each(ins, v, &Self::vars(s)),
                _ => Err(line_error(
                    ins,
                    format!("{} requires at least one argument", ins.keyword),
                )),
            }
        };
        // RUN, CMD, ENTRYPOINT: the exec form as is, the shell form through
        // the stage's shell.
        let command = |s: &Stage| -> Vec<String> {
            match &ins.args {
                Args::Json(v) => v.clone(),
                Args::Text(t) => {
                    let mut c = shell(s);
                    c.push(t.clone());
                    c
                }
                _ => Vec::new(),
            }
        };
        if !matches!(ins.keyword.as_str(), "COPY" | "ADD" | "HEALTHCHECK") {
            check_flags(ins, &[])?;
        }
        match ins.keyword.as_str() {
            "RUN" => {
                if matches!(ins.args, Args::None) {
                    return Err(line_error(ins, "RUN requires at least one argument"));
                }
                return self.run_step(s, command(s));
            }
            "COPY" | "ADD" => return self.copy_step(s, ins),
            "ARG" => {
                let pairs = self.arg_pairs(ins, &Self::vars(s))?;
                for (k, v) in pairs {
                    self.declared_args.insert(k.clone());
                    let v = self
                        .opts
                        .build_args
                        .get(&k)
                        .cloned()
                        .flatten()
                        .or(v)
                        .or_else(|| self.global_args.get(&k).cloned().flatten());
                    s.args.insert(k, v);
                }
                // ARG changes no image: docker prints the same id.
                return Ok(());
            }
            "ENV" => {
                // All values see the variables as they were before this
                // instruction (`ENV A=1 B=$A` takes the old A), as docker's.
                let pairs = self.pairs(ins, &Self::vars(s))?;
                for (k, v) in pairs {
                    set_env(&mut s.config, &k, &v);
                }
            }
            "LABEL" => {
                // All values see the variables as they were before this
                // instruction (`ENV A=1 B=$A` takes the old A), as docker's.
                let pairs = self.pairs(ins, &Self::vars(s))?;
                for (k, v) in pairs {
                    s.config
                        .labels
                        .get_or_insert_with(Default::default)
                        .insert(k, v);
                }
            }
            "MAINTAINER" => s.author = Some(one(self, s)?),
            "WORKDIR" => {
                let dir = one(self, s)?;
                let base = s.config.working_dir.clone().unwrap_or_else(|| "/".into());
                s.config.working_dir = Some(join_path(&base, &dir));
            }
            "USER" => s.config.user = Some(one(self, s)?),
            "STOPSIGNAL" => s.config.stop_signal = Some(one(self, s)?),
            "EXPOSE" => {
                // An expansion may hold several ports.
                for p in list(self, s)?.iter().flat_map(|p| p.split_whitespace()) {
                    let key = match p.contains('/') {
                        true => p.to_string(),
                        false => format!("{p}/tcp"),
                    };
                    s.config
                        .exposed_ports
                        .get_or_insert_with(Default::default)
                        .insert(key, serde_json::json!({}));
                }
            }
            "VOLUME" => {
                for v in list(self, s)? {
                    if v.trim().is_empty() {
                        return Err(line_error(
                            ins,
                            "VOLUME specified can not be an empty string",
                        ));
                    }
                    s.config
                        .volumes
                        .get_or_insert_with(Default::default)
                        .insert(v, serde_json::json!({}));
                }
            }
            "CMD" => {
                s.config.cmd = Some(command(s));
                s.cmd_set = true;
            }
            "ENTRYPOINT" => {
                s.config.entrypoint = Some(command(s));
                if !s.cmd_set {
                    s.config.cmd = None;
                }
            }
            "SHELL" => match &ins.args {
                Args::Json(v) if !v.is_empty() => s.config.shell = Some(v.clone()),
                _ => {
                    return Err(line_error(
                        ins,
                        "SHELL requires the arguments to be a JSON array of strings",
                    ))
                }
            },
            "ONBUILD" => {
                let Args::Sub(trigger) = &ins.args else {
                    return Err(line_error(ins, "ONBUILD requires at least one argument"));
                };
                if matches!(trigger.keyword.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                    return Err(line_error(
                        ins,
                        format!("{} isn't allowed as an ONBUILD trigger", trigger.keyword),
                    ));
                }
                s.config
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(trigger.original.clone());
            }
            "HEALTHCHECK" => s.config.healthcheck = Some(healthcheck(ins)?),
            other => {
                return Err(BuildError::new(format!(
                    "Dockerfile line {}: {other} is not supported by berthd's builder",
                    ins.line
                )))
            }
        }
        let created_by = format!("/bin/sh -c #(nop) {} {}", ins.keyword, ins.text());
        if let Some(hit) = self.cached(s, &created_by) {
            return self.use_cache(s, hit);
        }
        let id = self.commit_config(s, &created_by)?;
        self.advance(s, &id)
    }

    /// Commits the stage's config with no new layer; returns the image id.
    fn commit_config(&mut self, s: &Stage, created_by: &str) -> Result<Digest, BuildError> {
        // An empty tar: two zero blocks.
        let empty = std::io::Cursor::new(vec![0u8; 1024]);
        let options = self.commit_options(s, created_by, String::new());
        let parts = berth_image::commit(
            &self.engine.content,
            &self.engine.layers,
            &s.parent,
            empty,
            &options,
        )
        .map_err(|e| BuildError::new(e.to_string()))?;
        self.engine.record_commit(&parts, None)?;
        Ok(parts.id)
    }

    fn commit_options(&self, s: &Stage, created_by: &str, container: String) -> CommitOptions {
        CommitOptions {
            config: s.config.clone(),
            container,
            container_config: None,
            author: s.author.clone(),
            comment: None,
            created_by: created_by.to_string(),
            apply: berth_archive::ApplyOptions::default(),
        }
    }

    /// Image `id` as the parent of the next step.
    fn parent(&self, id: &Digest) -> Result<Parent, BuildError> {
        let record = self
            .engine
            .store
            .resolve_image(&id.to_string())
            .map_err(api)?;
        let config = crate::images::parse_image_config(&record)?;
        Ok(self.engine.parent_of(&record, config)?)
    }

    /// Moves the stage onto image `id`.
    fn advance(&mut self, s: &mut Stage, id: &Digest) -> Result<(), BuildError> {
        s.parent = self.parent(id)?;
        self.out.stream(&format!(" ---> {}\n", short_id(id)));
        Ok(())
    }

    /// A child of the stage's image made by the same step, if the cache
    /// may be used.
    fn cached(&self, s: &Stage, created_by: &str) -> Option<Digest> {
        if self.opts.nocache {
            return None;
        }
        let images = self.engine.store.images().ok()?;
        images.into_iter().find_map(|img| {
            if let Some(allowed) = &self.cache_allowed {
                if !allowed.contains(&img.id) {
                    return None;
                }
            }
            let config = crate::images::parse_image_config(&img).ok()?;
            let same_parent = config.parent == s.parent.id;
            let step = config.history.last()?.created_by.as_deref() == Some(created_by);
            // The step leaves the stage's config as it is now (metadata
            // steps changed it before the lookup).
            let same_config = config.config.as_ref() == Some(&s.config);
            (same_parent && step && same_config).then_some(img.id)
        })
    }

    fn use_cache(&mut self, s: &mut Stage, id: Digest) -> Result<(), BuildError> {
        self.out.stream(" ---> Using cache\n");
        self.advance(s, &id)?;
        // The cached image's config is the stage's from here on (it is the
        // same as what this step would make).
        s.config = s.parent.config.config.clone().unwrap_or_default();
        Ok(())
    }

    fn run_step(&mut self, s: &mut Stage, cmd: Vec<String>) -> Result<(), BuildError> {
        // Build args reach RUN's environment (not the image's), and the
        // cache key names them as docker's does (`|N K=V ... cmd`).
        let arg_env: Vec<String> = s
            .args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .filter(|kv| env_value(&s.config, kv.split('=').next().unwrap_or("")).is_none())
            .collect();
        let created_by = match arg_env.is_empty() {
            true => cmd.join(" "),
            false => format!("|{} {} {}", arg_env.len(), arg_env.join(" "), cmd.join(" ")),
        };
        if let Some(hit) = self.cached(s, &created_by) {
            return self.use_cache(s, hit);
        }
        let parent_id = self.stage_image(s)?;
        let mut env = s.config.env.clone().unwrap_or_default();
        env.extend(arg_env);
        // The proxy variables docker predefines reach RUN from a build-arg
        // without an ARG, and stay out of the history and the cache key
        // (a proxy is the builder's business, not the image's).
        env.extend(
            self.opts
                .build_args
                .iter()
                .filter(|(k, _)| PREDEFINED_ARGS.contains(&k.as_str()) && !s.args.contains_key(*k))
                .filter(|(k, _)| env_value(&s.config, k).is_none())
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}"))),
        );
        let mut host = serde_json::json!({
            "NetworkMode": self.opts.network_mode.clone().unwrap_or_else(|| "default".into()),
            "ExtraHosts": self.opts.extra_hosts,
        });
        if let Some(shm) = self.opts.shm_size {
            host["ShmSize"] = shm.into();
        }
        let body = serde_json::json!({
            "Image": parent_id.to_string(),
            "Cmd": cmd,
            "Entrypoint": [""],
            "Env": env,
            "WorkingDir": s.config.working_dir.clone().unwrap_or_default(),
            "User": s.config.user.clone().unwrap_or_default(),
            "Labels": {"com.berth.build": "intermediate"},
            "HostConfig": host,
        });
        let id = self.create(body)?;
        self.out
            .stream(&format!(" ---> Running in {}\n", &id[..12]));
        let result = self.run_container(&id, &cmd);
        let committed = result.and_then(|()| self.commit_container(s, &id, &created_by));
        self.remove(&id);
        let image = committed?;
        self.advance(s, &image)
    }

    /// The stage's image id, committing it first if it has none yet (a
    /// `FROM scratch` stage before its first step).
    fn stage_image(&mut self, s: &mut Stage) -> Result<Digest, BuildError> {
        if let Some(id) = &s.parent.id {
            return Ok(id.clone());
        }
        let id = self.commit_config(s, "")?;
        s.parent = self.parent(&id)?;
        Ok(id)
    }

    fn create(&self, body: serde_json::Value) -> Result<String, BuildError> {
        let body = serde_json::from_value(body)
            .map_err(|e| BuildError::new(format!("the build's container config: {e}")))?;
        let (id, _) = self
            .engine
            .create_container(None, body, None, berth_api::ApiVersion::MAX)?;
        Ok(id)
    }

    /// Starts the step's container, streams its output, waits for it.
    fn run_container(&mut self, id: &str, cmd: &[String]) -> Result<(), BuildError> {
        self.engine.start_container(id)?;
        let opts = crate::containers::logs::LogOptions {
            stdout: true,
            stderr: true,
            follow: true,
            timestamps: false,
            since: None,
            until: None,
            tail: None,
        };
        let mut demux = Demux {
            out: &mut *self.out,
            buf: Vec::new(),
        };
        if let Err(e) = self.engine.write_logs(id, false, &opts, &mut demux) {
            tracing::debug!(container = id, error = %e, "build: following the step's output");
        }
        let (code, _) = self
            .rt
            .block_on(self.engine.wait_container(id, WaitCondition::NotRunning))?;
        if code != 0 {
            return Err(BuildError {
                message: format!(
                    "The command '{}' returned a non-zero code: {code}",
                    cmd.join(" ")
                ),
                code: Some(code),
            });
        }
        Ok(())
    }

    fn commit_container(
        &mut self,
        s: &Stage,
        id: &str,
        created_by: &str,
    ) -> Result<Digest, BuildError> {
        let c = self.engine.load_container(id)?;
        let options = self.commit_options(s, created_by, id.to_string());
        let parts = self.engine.commit_layer(&c, &s.parent, &options)?;
        self.engine.record_commit(&parts, None)?;
        Ok(parts.id)
    }

    /// Removes a step's container (always: a failed step's too).
    fn remove(&mut self, id: &str) {
        match self
            .rt
            .block_on(self.engine.remove_container(id, true, true))
        {
            Ok(()) => self
                .out
                .stream(&format!("Removing intermediate container {}\n", &id[..12])),
            Err(e) => {
                tracing::warn!(container = id, error = %e.message, "build: removing an intermediate container")
            }
        }
    }

    fn copy_step(&mut self, s: &mut Stage, ins: &Instruction) -> Result<(), BuildError> {
        let is_add = ins.keyword == "ADD";
        let mut words = match &ins.args {
            Args::Json(v) | Args::Words(v) => self.expand_each(ins, v, &Self::vars(s))?,
            _ => Vec::new(),
        };
        if words.len() < 2 {
            return Err(BuildError::new(format!(
                "Dockerfile line {}: {} requires at least two arguments: sources and a destination",
                ins.line, ins.keyword
            )));
        }
        let dest_raw = words.pop().expect("two words");
        let workdir = s.config.working_dir.clone().unwrap_or_else(|| "/".into());
        let dest_is_dir = dest_raw.ends_with('/')
            || dest_raw == "."
            || dest_raw.ends_with("/.")
            || words.len() > 1;
        let dest = join_path(&workdir, &dest_raw);
        let mut owner = (0u32, 0u32);
        let mut from = None;
        check_flags(ins, &["chown", "from"])?;
        for (flag, value) in ins.flag_pairs() {
            match flag.as_str() {
                "chown" => owner = numeric_owner(ins, &value)?,
                _ => from = Some(value),
            }
        }
        // The staging tree: the destination's path, then the files.
        self.staging_seq += 1;
        let stage_root = self.ctx.work.join(format!("stage-{}", self.staging_seq));
        let target = stage_root.join(dest.trim_start_matches('/'));
        let mut key = Vec::new();
        for src in &words {
            if is_add && (src.starts_with("http://") || src.starts_with("https://")) {
                return Err(BuildError::new(format!(
                    "Dockerfile line {}: ADD {src}: berthd's builder does not download URLs yet; fetch the file into the build context and ADD it from there",
                    ins.line
                )));
            }
            let matched = match &from {
                Some(stage) => vec![self.fetch_from_stage(stage, src)?],
                None => self.ctx_matches(src)?,
            };
            if matched.is_empty() {
                return Err(BuildError::new(format!(
                    "{} failed: file not found in build context or excluded by .dockerignore: stat {src}: file does not exist",
                    ins.keyword
                )));
            }
            for path in matched {
                let meta = std::fs::symlink_metadata(&path)
                    .map_err(|e| BuildError::new(format!("{}: {e}", path.display())))?;
                let name = path
                    .file_name()
                    .map(|n| n.to_os_string())
                    .unwrap_or_default();
                if meta.is_dir() {
                    copy_tree(&path, &target, owner)?;
                } else if is_add && is_archive(&path) {
                    extract_archive(&path, &target)?;
                } else if dest_is_dir {
                    copy_tree(&path, &target.join(&name), owner)?;
                } else {
                    copy_tree(&path, &target, owner)?;
                }
                // The step's history and cache key name the source as the
                // Dockerfile does (a context path, or the path in the stage
                // copied from), never where the builder staged it: that
                // directory is new for every build, so a COPY --from never
                // hit the cache, and it put a host path in the history.
                let shown = match &from {
                    Some(stage) => format!("{stage}:{}", join_path("/", src)),
                    None => path
                        .strip_prefix(&self.ctx.dir)
                        .unwrap_or(&path)
                        .display()
                        .to_string(),
                };
                key.push(format!("{shown}:{}", file_digest(&path)));
            }
        }
        let created_by = format!(
            "/bin/sh -c #(nop) {} {} in {dest} ",
            ins.keyword,
            key.join(",")
        );
        if let Some(hit) = self.cached(s, &created_by) {
            let _ = std::fs::remove_dir_all(&stage_root);
            return self.use_cache(s, hit);
        }
        let parent_id = self.stage_image(s)?;
        let id = self.create(serde_json::json!({
            "Image": parent_id.to_string(),
            "Cmd": ["/copy"],
            "Entrypoint": [""],
            "Labels": {"com.berth.build": "intermediate"},
            "HostConfig": {"NetworkMode": "none"},
        }))?;
        self.match_existing_dirs(&id, &stage_root, &dest);
        let result = self.put_tree(&id, &stage_root);
        let _ = std::fs::remove_dir_all(&stage_root);
        let committed = result.and_then(|()| self.commit_container(s, &id, &created_by));
        self.remove(&id);
        let image = committed?;
        self.advance(s, &image)
    }

    /// `COPY --from=STAGE SRC`: `src` of an earlier stage (by name or
    /// index) or of a local image, fetched into the build's work dir
    /// through a created container of it (paths resolved in its root).
    fn fetch_from_stage(&mut self, stage: &str, src: &str) -> Result<PathBuf, BuildError> {
        let by_name = self
            .stages
            .iter()
            .find(|(n, _)| n.as_deref() == Some(stage.to_ascii_lowercase().as_str()));
        let by_index = stage.parse::<usize>().ok().and_then(|i| self.stages.get(i));
        let image = match by_name.or(by_index) {
            Some((_, id)) => id.to_string(),
            None => stage.to_string(),
        };
        let id = self.create(serde_json::json!({
            "Image": image,
            "Cmd": ["/copy-from"],
            "Entrypoint": [""],
            "Labels": {"com.berth.build": "intermediate"},
            "HostConfig": {"NetworkMode": "none"},
        }))?;
        self.staging_seq += 1;
        let dir = self.ctx.work.join(format!("from-{}", self.staging_seq));
        let tar = self.ctx.work.join(format!("from-{}.tar", self.staging_seq));
        let fetched = std::fs::File::create(&tar)
            .map_err(|e| BuildError::new(format!("{}: {e}", tar.display())))
            .and_then(|f| {
                let path = join_path("/", src);
                Ok(self
                    .rt
                    .block_on(self.engine.copy_from_container(id.clone(), path, f))?)
            });
        let _ = self
            .rt
            .block_on(self.engine.remove_container(&id, true, true));
        fetched
            .map_err(|e| BuildError::new(format!("COPY --from={stage} {src}: {}", e.message)))?;
        extract_archive(&tar, &dir)?;
        let _ = std::fs::remove_file(&tar);
        let name = Path::new(&join_path("/", src))
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        Ok(dir.join(name))
    }

    /// Context paths matching `src` (wildcards in the last element).
    fn ctx_matches(&self, src: &str) -> Result<Vec<PathBuf>, BuildError> {
        let path = self.ctx.resolve(src);
        let last = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !last.contains(['*', '?', '[']) {
            return Ok(match std::fs::symlink_metadata(&path) {
                Ok(_) => vec![path],
                Err(_) => Vec::new(),
            });
        }
        let dir = path.parent().unwrap_or(&self.ctx.dir).to_path_buf();
        let pattern = berth_build::Ignore::parse(&last);
        let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|r| {
                r.flatten()
                    .filter(|e| pattern.excludes(&e.file_name().to_string_lossy()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        Ok(out)
    }

    /// Gives the staged copies of directories that already exist in the
    /// image their mode, so the layer does not change them (a COPY into
    /// /tmp must leave /tmp 1777).
    fn match_existing_dirs(&self, container: &str, stage_root: &Path, dest: &str) {
        let mut path = String::new();
        for part in dest.split('/').filter(|p| !p.is_empty()) {
            path.push('/');
            path.push_str(part);
            let staged = stage_root.join(path.trim_start_matches('/'));
            if !staged.is_dir() {
                break;
            }
            let stat = self.rt.block_on(
                self.engine
                    .container_path_stat(container.to_string(), path.clone()),
            );
            if let Some(st) = stat.ok().filter(|st| st.is_dir()) {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::Permissions::from_mode(unix_mode(st.mode));
                let _ = std::fs::set_permissions(&staged, mode);
            }
        }
    }

    /// Puts the staged tree into container `id` at `/`.
    fn put_tree(&self, id: &str, stage_root: &Path) -> Result<(), BuildError> {
        std::fs::create_dir_all(stage_root)
            .map_err(|e| BuildError::new(format!("{}: {e}", stage_root.display())))?;
        let (read_end, write_end) = rustix::pipe::pipe()
            .map_err(|e| BuildError::new(format!("creating a pipe for COPY: {e}")))?;
        let mut write_end = std::fs::File::from(write_end);
        let root = stage_root.to_path_buf();
        let writer = std::thread::spawn(move || berth_archive::write_tree(&root, &mut write_end));
        let opts = crate::containers::archive::ExtractOptions {
            no_overwrite_dir_non_dir: false,
            copy_uid_gid: false,
        };
        let put = self.rt.block_on(self.engine.extract_to_container(
            id.to_string(),
            "/".into(),
            opts,
            std::fs::File::from(read_end),
        ));
        let written = writer
            .join()
            .map_err(|_| BuildError::new("the COPY writer panicked"))?;
        put?;
        written.map_err(|e| BuildError::new(format!("writing the files to copy: {e}")))?;
        Ok(())
    }
}

/// Splits a container log stream's frames into build output lines; stderr
/// in red as docker's classic builder shows it.
struct Demux<'o> {
    out: &'o mut Output,
    buf: Vec<u8>,
}

impl Write for Demux<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        while self.buf.len() >= 8 {
            let size =
                u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
            if self.buf.len() < 8 + size {
                break;
            }
            let text = String::from_utf8_lossy(&self.buf[8..8 + size]).into_owned();
            match self.buf[0] {
                2 => self.out.stream(&format!("\u{1b}[91m{text}\u{1b}[0m")),
                _ => self.out.stream(&text),
            }
            self.buf.drain(..8 + size);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn api(e: impl Into<crate::error::ApiError>) -> BuildError {
    BuildError::from(e.into())
}

fn line_error(ins: &Instruction, e: impl std::fmt::Display) -> BuildError {
    BuildError::new(format!(
        "Dockerfile line {}: {}: {e}",
        ins.line, ins.keyword
    ))
}

fn stage_name(ins: &Instruction) -> Option<String> {
    match &ins.args {
        Args::Words(w) => match w.as_slice() {
            [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
            _ => None,
        },
        _ => None,
    }
}

/// Refuses what the builder cannot run before any step runs: keywords
/// docker does not know, and instructions without their arguments.
fn check_instructions(all: &[Instruction]) -> Result<(), BuildError> {
    for ins in all {
        let ins = match &ins.args {
            Args::Sub(trigger) => trigger.as_ref(),
            _ => ins,
        };
        if matches!(ins.args, Args::Unknown) {
            let word = ins.original.split(char::is_whitespace).next().unwrap_or("");
            return Err(BuildError::new(format!(
                "Dockerfile parse error line {}: unknown instruction: {}",
                ins.line.max(1),
                word.to_ascii_uppercase()
            )));
        }
    }
    Ok(())
}

/// Refuses the flags of `ins` not in `allowed`; those only BuildKit has
/// say so.
fn check_flags(ins: &Instruction, allowed: &[&str]) -> Result<(), BuildError> {
    for (flag, _) in ins.flag_pairs() {
        if allowed.contains(&flag.as_str()) {
            continue;
        }
        let buildkit_only = matches!(
            (ins.keyword.as_str(), flag.as_str()),
            ("RUN", "mount" | "network" | "security")
                | ("COPY" | "ADD", "chmod" | "link" | "exclude" | "parents")
                | ("ADD", "checksum" | "keep-git-dir")
        );
        return Err(line_error(
            ins,
            match buildkit_only {
                true => format!(
                    "the --{flag} option requires BuildKit; berthd's builder is docker's classic one"
                ),
                false => format!("unknown flag: --{flag}"),
            },
        ));
    }
    Ok(())
}

fn short_id(id: &Digest) -> String {
    id.to_string()
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect()
}

fn shell(s: &Stage) -> Vec<String> {
    s.config
        .shell
        .clone()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
}

fn env_value(config: &RunConfig, key: &str) -> Option<String> {
    config.env.as_ref()?.iter().find_map(|e| {
        e.strip_prefix(key)
            .and_then(|r| r.strip_prefix('='))
            .map(str::to_string)
    })
}

fn set_env(config: &mut RunConfig, key: &str, value: &str) {
    let env = config.env.get_or_insert_with(Vec::new);
    let entry = format!("{key}={value}");
    match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// `path` relative to `base` (absolute paths as they are), cleaned.
fn join_path(base: &str, path: &str) -> String {
    match path.starts_with('/') {
        true => crate::containers::archive::clean_abs(path),
        false => crate::containers::archive::clean_abs(&format!("{base}/{path}")),
    }
}

fn numeric_owner(ins: &Instruction, value: &str) -> Result<(u32, u32), BuildError> {
    let (u, g) = value.split_once(':').unwrap_or((value, value));
    match (u.parse(), g.parse()) {
        (Ok(u), Ok(g)) => Ok((u, g)),
        _ => Err(BuildError::new(format!(
            "Dockerfile line {}: --chown={value}: berthd's builder takes numeric ids (uid[:gid]) only",
            ins.line
        ))),
    }
}

/// Go's os.FileMode back to Unix permission bits (with the special bits).
fn unix_mode(go: u32) -> u32 {
    let mut m = go & 0o777;
    if go & (1 << 23) != 0 {
        m |= 0o4000;
    }
    if go & (1 << 22) != 0 {
        m |= 0o2000;
    }
    if go & (1 << 20) != 0 {
        m |= 0o1000;
    }
    m
}

/// Copies `src` (file, symlink or directory; links never followed) to
/// `dst`, owned by `owner`; a directory's contents go into `dst`.
fn copy_tree(src: &Path, dst: &Path, owner: (u32, u32)) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    let err =
        |p: &Path, e: std::io::Error| BuildError::new(format!("copying {}: {e}", p.display()));
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).map_err(|e| err(parent, e))?;
    }
    let meta = std::fs::symlink_metadata(src).map_err(|e| err(src, e))?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(src).map_err(|e| err(src, e))?;
        let _ = std::fs::remove_file(dst);
        std::os::unix::fs::symlink(target, dst).map_err(|e| err(dst, e))?;
    } else if ft.is_dir() {
        std::fs::create_dir_all(dst).map_err(|e| err(dst, e))?;
        std::fs::set_permissions(
            dst,
            std::fs::Permissions::from_mode(meta.permissions().mode()),
        )
        .map_err(|e| err(dst, e))?;
        for entry in std::fs::read_dir(src).map_err(|e| err(src, e))? {
            let entry = entry.map_err(|e| err(src, e))?;
            copy_tree(&entry.path(), &dst.join(entry.file_name()), owner)?;
        }
    } else if ft.is_file() {
        std::fs::copy(src, dst).map_err(|e| err(src, e))?;
    } else {
        // Devices, fifos and sockets in a context are not copied, as docker's.
        return Ok(());
    }
    rustix::fs::chownat(
        rustix::fs::CWD,
        dst,
        Some(rustix::fs::Uid::from_raw(owner.0)),
        Some(rustix::fs::Gid::from_raw(owner.1)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| err(dst, e.into()))?;
    Ok(())
}

/// Whether ADD should unpack `path`: a tar, plain or compressed.
fn is_archive(path: &Path) -> bool {
    // Only a regular file is read (a device or fifo could block forever).
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let Ok((_, mut r)) = berth_archive::auto_decompressor(f) else {
        return false;
    };
    let mut block = [0u8; 512];
    if r.read_exact(&mut block).is_err() {
        return false;
    }
    &block[257..262] == b"ustar"
}

fn extract_archive(path: &Path, dst: &Path) -> Result<(), BuildError> {
    std::fs::create_dir_all(dst).map_err(|e| BuildError::new(format!("{}: {e}", dst.display())))?;
    let f = std::fs::File::open(path)
        .map_err(|e| BuildError::new(format!("{}: {e}", path.display())))?;
    let (_, r) = berth_archive::auto_decompressor(f)
        .map_err(|e| BuildError::new(format!("{}: {e}", path.display())))?;
    let opts = berth_archive::ApplyOptions {
        whiteouts: false,
        ..Default::default()
    };
    berth_archive::apply_layer(r, dst, &opts)
        .map(|_| ())
        .map_err(|e| BuildError::new(format!("ADD {}: {e}", path.display())))
}

/// A content digest of a context file for the cache key (directories by
/// their listing's names, sizes and modes, recursively).
fn file_digest(path: &Path) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    fn feed(h: &mut sha2::Sha256, p: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            return;
        };
        h.update(meta.permissions().mode().to_le_bytes());
        if meta.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(p)
                .map(|r| r.flatten().collect())
                .unwrap_or_default();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                h.update(e.file_name().as_encoded_bytes());
                feed(h, &e.path());
            }
        } else if meta.file_type().is_symlink() {
            if let Ok(t) = std::fs::read_link(p) {
                h.update(t.as_os_str().as_encoded_bytes());
            }
        } else if meta.is_file() {
            if let Ok(mut f) = std::fs::File::open(p) {
                let _ = std::io::copy(&mut f, h);
            }
        } else {
            // A device node, fifo or socket: never opened (reading
            // /dev/console blocks, /dev/zero never ends); its number is
            // what it is.
            use std::os::unix::fs::MetadataExt;
            h.update(meta.rdev().to_le_bytes());
        }
    }
    feed(&mut h, path);
    let d = h.finalize();
    d.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The images the cache may use with `cachefrom`: the named ones and
/// their ancestors.
fn cache_sources(engine: &Engine, names: &[String]) -> BTreeSet<Digest> {
    let mut out = BTreeSet::new();
    for n in names {
        let mut next = engine.store.resolve_image(n).ok().map(|r| r.id);
        while let Some(id) = next.take() {
            if !out.insert(id.clone()) {
                break;
            }
            next = engine
                .store
                .resolve_image(&id.to_string())
                .ok()
                .and_then(|r| crate::images::parse_image_config(&r).ok())
                .and_then(|c| c.parent);
        }
    }
    out
}

fn healthcheck(ins: &Instruction) -> Result<serde_json::Value, BuildError> {
    let Args::Health { kind, command } = &ins.args else {
        return Err(line_error(ins, "HEALTHCHECK requires an argument"));
    };
    let test = match (kind.to_ascii_uppercase().as_str(), command.as_ref()) {
        ("NONE", Args::None) => return Ok(serde_json::json!({"Test": ["NONE"]})),
        ("NONE", _) => return Err(line_error(ins, "HEALTHCHECK NONE takes no arguments")),
        ("CMD", Args::Json(v)) => std::iter::once("CMD".to_string())
            .chain(v.clone())
            .collect::<Vec<_>>(),
        ("CMD", Args::Text(t)) => vec!["CMD-SHELL".to_string(), t.clone()],
        ("CMD", _) => return Err(line_error(ins, "HEALTHCHECK CMD requires a command")),
        (other, _) => {
            return Err(line_error(
                ins,
                format!("unknown type for HEALTHCHECK: {other:?} (CMD or NONE)"),
            ))
        }
    };
    check_flags(
        ins,
        &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
    )?;
    let mut hc = serde_json::json!({ "Test": test });
    for (flag, value) in ins.flag_pairs() {
        if flag == "retries" {
            let n: i64 = value
                .parse()
                .map_err(|_| line_error(ins, format!("--retries={value} is not a number")))?;
            hc["Retries"] = n.into();
            continue;
        }
        let field = match flag.as_str() {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            _ => "StartInterval",
        };
        // Empty is docker's "not set" (0); a negative one is no duration.
        let ns = match value.as_str() {
            "" => 0,
            v => match crate::go_duration::parse_nanos(v) {
                Ok(ns) if ns >= 0 => ns,
                Err(e @ crate::go_duration::DurationError::OutOfRange) => {
                    return Err(line_error(ins, format!("--{flag}={value} is {e}")))
                }
                _ => {
                    return Err(line_error(
                        ins,
                        format!("--{flag}={value} is not a duration"),
                    ))
                }
            },
        };
        hc[field] = ns.into();
    }
    Ok(hc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_durations() {
        assert_eq!(join_path("/app", "sub/../x"), "/app/x");
        assert_eq!(join_path("/app", "/abs"), "/abs");
        assert_eq!(join_path("/", "."), "/");
        assert_eq!(crate::go_duration::parse_nanos("1m30s"), Ok(90_000_000_000));
        assert_eq!(crate::go_duration::parse_nanos("500ms"), Ok(500_000_000));
        assert!(crate::go_duration::parse_nanos("5 parsecs").is_err());
        assert_eq!(unix_mode((1 << 31) | (1 << 20) | 0o777), 0o1777);
    }

    #[test]
    fn healthcheck_durations_beyond_go_are_refused() {
        let check = |line: &str| {
            let df = berth_build::parse(line).unwrap();
            healthcheck(&df.instructions[0])
        };
        let hc = check("HEALTHCHECK --interval=1m30s --timeout=2562047h CMD true").unwrap();
        assert_eq!(hc["Interval"], 90_000_000_000_i64);
        assert_eq!(hc["Timeout"], 9_223_369_200_000_000_000_i64);
        // Once truncated by `as i64` into some other interval.
        let e = check("HEALTHCHECK --interval=99999999999h CMD true").unwrap_err();
        assert!(
            e.message.ends_with(
                "--interval=99999999999h is out of range: a Go duration is at most 2562047h47m16.854775807s either way"
            ),
            "{}",
            e.message
        );
        let e = check("HEALTHCHECK --timeout=-1s CMD true").unwrap_err();
        assert!(
            e.message.ends_with("--timeout=-1s is not a duration"),
            "{}",
            e.message
        );
    }
}
