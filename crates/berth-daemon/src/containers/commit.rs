//! `POST /commit` (`docker commit`): a container's file system changes as
//! a new image on top of its own.
//!
//! The changes are the container's overlay upper directory, written as a
//! layer tar by berth-archive's `write_diff` (whiteouts and opaque
//! directories in their OCI form), less the mount points docker keeps in a
//! container's init layer (`/etc/hosts`, `/proc`, ...: see
//! [`super::archive::INIT_PATHS`]) and the init binary's. A thread writes
//! the tar into a pipe; berth-image's `commit` reads it once, storing the
//! blob and unpacking the layer at the same time. The upper directory is
//! read in place (no mount): a running container is paused meanwhile
//! unless `pause=false`, as docker does.
//!
//! The new image's Config is docker's: the request body's Config, then the
//! `changes` (Dockerfile instructions), then merged with the container's
//! Config ([`berth_image::commit::merge_config`]).

use std::sync::Arc;

use berth_api::query::CommitQuery;
use berth_image::commit::{merge_config, Parent};
use berth_image::config::RunConfig;
use berth_image::{CommitOptions, Descriptor, Digest, LayerParts};

use super::record::Status;
use super::Loaded;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::http::blocking;

fn internal(msg: impl Into<String>) -> ApiError {
    ApiError::new(berth_errdefs::ErrorKind::Internal, msg)
}

impl Engine {
    /// `POST /commit?container=...`; `body` is a (possibly empty) Config.
    pub async fn commit_container(
        self: &Arc<Self>,
        q: CommitQuery,
        body: Vec<u8>,
    ) -> Result<Digest, ApiError> {
        let engine = self.clone();
        blocking(move || engine.commit_blocking(&q, &body)).await
    }

    fn commit_blocking(&self, q: &CommitQuery, body: &[u8]) -> Result<Digest, ApiError> {
        let name = q
            .container
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ApiError::bad_request("POST /commit needs ?container=NAME"))?;
        // Everything the client got wrong fails before the container is
        // touched.
        let target = crate::images::target_reference(q.repo.as_deref(), q.tag.as_deref())?;
        let mut config: RunConfig = match body.iter().all(u8::is_ascii_whitespace) {
            true => RunConfig::default(),
            false => serde_json::from_slice::<Option<RunConfig>>(body)
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "invalid container config in the commit request: {e}"
                    ))
                })?
                .unwrap_or_default(),
        };
        berth_image::changes::apply_changes(&mut config, &q.changes)
            .map_err(|e| ApiError::new(berth_errdefs::HasKind::kind(&e), e.to_string()))?;

        let c = self.load_container(name)?;
        if matches!(c.state.status, Status::Removing | Status::Dead) {
            return Err(ApiError::new(
                berth_errdefs::ErrorKind::Conflict,
                format!("cannot commit container {}: it is being removed", c.id),
            ));
        }
        let image = self.store.image(&c.image_id)?;
        let image_config = crate::images::parse_image_config(&image)?;
        let container_config = super::inspect::merged_config(&c, &image_config);
        let container_run: RunConfig = serde_json::from_value(container_config.clone())
            .map_err(|e| internal(format!("reading container {}'s config: {e}", c.id)))?;
        merge_config(&mut config, &container_run);
        let parent = self.parent_of(&image, image_config)?;
        let options = CommitOptions {
            config,
            container: c.id.clone(),
            container_config: Some(container_config),
            author: q.author.clone(),
            comment: q.comment.clone(),
            created_by: container_run.cmd.unwrap_or_default().join(" "),
            apply: berth_archive::ApplyOptions::default(),
        };

        let mut paused = q.pause() && c.state.status == Status::Running;
        if paused {
            match self.pause_container(&c.id) {
                Ok(()) => {}
                // It stopped meanwhile (a short command's exit races the
                // commit): a stopped container's files do not change either.
                Err(e) if e.status == 409 => paused = false,
                Err(e) => return Err(e),
            }
        }
        let result = self.commit_layer(&c, &parent, &options);
        if paused {
            if let Err(e) = self.unpause_container(&c.id) {
                tracing::warn!(container = %c.id, error = %e.message, "unpausing after commit");
            }
        }
        let parts = result?;
        self.record_commit(&parts, target.as_ref())?;
        let image_ref = target.map(|t| t.familiar()).unwrap_or_default();
        self.container_event(
            &c,
            "commit",
            &[
                ("comment", q.comment.clone().unwrap_or_default()),
                ("imageID", parts.id.to_string()),
                ("imageRef", image_ref),
            ],
        );
        Ok(parts.id)
    }

    /// `image` as the parent of a new image: its config and stored layers.
    pub(crate) fn parent_of(
        &self,
        image: &berth_store::ImageRecord,
        config: berth_image::ImageConfig,
    ) -> Result<Parent, ApiError> {
        Ok(Parent {
            id: Some(image.id.clone()),
            config,
            layers: image
                .layers
                .iter()
                .map(|l| {
                    let blob = l.blob.as_ref().ok_or_else(|| {
                        internal(format!(
                            "cannot commit on image {}: its layer {} has no stored blob",
                            image.id, l.diff_id
                        ))
                    })?;
                    Ok(LayerParts {
                        diff_id: l.diff_id.clone(),
                        chain_id: l.chain_id.clone(),
                        blob: Descriptor::new(&blob.media_type, blob.digest.clone(), blob.size),
                        size: self.layers.meta(&l.chain_id).map(|m| m.size).unwrap_or(0),
                    })
                })
                .collect::<Result<_, ApiError>>()?,
        })
    }

    /// Streams the upper directory's diff into berth-image's commit.
    pub(crate) fn commit_layer(
        &self,
        c: &Loaded,
        parent: &Parent,
        options: &CommitOptions,
    ) -> Result<berth_image::ImageParts, ApiError> {
        let upper = self.container_paths(&c.id).dir.join("upper");
        // A container that never started has no upper dir: no changes.
        std::fs::create_dir_all(&upper)
            .map_err(|e| internal(format!("creating {}: {e}", upper.display())))?;
        let write = berth_archive::WriteOptions {
            exclude: excluded(&upper),
            ..Default::default()
        };
        let (read_end, write_end) = rustix::pipe::pipe()
            .map_err(|e| internal(format!("creating a pipe for the commit: {e}")))?;
        let mut write_end = std::fs::File::from(write_end);
        let writer = std::thread::Builder::new()
            .name("commit-diff".into())
            .spawn(move || berth_archive::write_diff_with(&upper, &mut write_end, &write))
            .map_err(|e| internal(format!("starting the commit's writer thread: {e}")))?;
        let _gc = self.store.hold_off_gc();
        let committed = berth_image::commit(
            &self.content,
            &self.layers,
            parent,
            std::fs::File::from(read_end),
            options,
        );
        let written = writer
            .join()
            .map_err(|_| internal("the commit's writer thread panicked"))?;
        let committed =
            committed.map_err(|e| ApiError::new(berth_errdefs::HasKind::kind(&e), e.to_string()));
        match written {
            Ok(_) => committed,
            // The reader stopped first (the pipe broke): its error says why.
            Err(berth_archive::Error::Write { .. }) if committed.is_err() => committed,
            // A failed walk truncates the tar: its error is the one that says why.
            Err(e) => Err(internal(format!(
                "reading the changes of container {}: {e}",
                c.id
            ))),
        }
    }
}

/// What the layer leaves out (relative to the upper dir): the mount points
/// docker keeps in a container's init layer and the init binary's, and
/// their parents (`/etc`, `/dev`) when the runtime's mount points are all
/// they hold: copied up only for those, they are no change of the
/// container's own (a commit without changes then adds no layer).
fn excluded(upper: &std::path::Path) -> Vec<String> {
    let points: Vec<&str> = super::archive::INIT_PATHS
        .iter()
        .copied()
        .chain([crate::spec::CONTAINER_INIT_PATH])
        .collect();
    let mut out: Vec<String> = points
        .iter()
        .map(|p| p.trim_start_matches('/').to_string())
        .collect();
    for dir in super::archive::INIT_DIRS {
        let Ok(fd) = rustix::fs::open(
            upper.join(dir.trim_start_matches('/')),
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::NOFOLLOW,
            rustix::fs::Mode::empty(),
        ) else {
            continue;
        };
        let only_mount_points = std::fs::read_dir(upper.join(dir.trim_start_matches('/')))
            .map(|entries| {
                entries.flatten().all(|e| {
                    let path = format!("{dir}/{}", e.file_name().to_string_lossy());
                    points.contains(&path.as_str())
                })
            })
            .unwrap_or(false);
        if only_mount_points && !super::archive::is_opaque(std::os::fd::AsFd::as_fd(&fd)) {
            out.push(dir.trim_start_matches('/').to_string());
        }
    }
    out
}
