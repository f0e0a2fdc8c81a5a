//! Registry progress events as docker's JSON progress lines.

use berth_api::JsonMessage;
use berth_registry::progress::short_id;
use berth_registry::{LayerStatus, ProgressEvent};

/// The line docker writes for one event.
pub fn to_message(event: &ProgressEvent) -> JsonMessage {
    match event {
        ProgressEvent::PullingFrom { repository, tag } => JsonMessage::status(
            format!("Pulling from {}", without_domain(repository)),
            Some(tag),
        ),
        ProgressEvent::PushRefersTo { repository } => JsonMessage::status(
            format!("The push refers to repository [{repository}]"),
            None,
        ),
        ProgressEvent::PullDigest { digest } => {
            JsonMessage::status(format!("Digest: {digest}"), None)
        }
        ProgressEvent::PushDigest { tag, digest, size } => {
            JsonMessage::status(format!("{tag}: digest: {digest} size: {size}"), None)
        }
        ProgressEvent::Layer { id, status } => {
            let id = short_id(id);
            match status {
                LayerStatus::Waiting => JsonMessage::status("Waiting", Some(id)),
                LayerStatus::Downloading { current, total } => {
                    JsonMessage::progress("Downloading", id, *current, Some(*total))
                }
                LayerStatus::Verifying => JsonMessage::status("Verifying Checksum", Some(id)),
                LayerStatus::DownloadComplete => JsonMessage::status("Download complete", Some(id)),
                LayerStatus::Extracting { current, total } => {
                    JsonMessage::progress("Extracting", id, *current, Some(*total))
                }
                LayerStatus::PullComplete => JsonMessage::status("Pull complete", Some(id)),
                LayerStatus::AlreadyExists => JsonMessage::status("Already exists", Some(id)),
                LayerStatus::Preparing => JsonMessage::status("Preparing", Some(id)),
                LayerStatus::Pushing { current, total } => {
                    JsonMessage::progress("Pushing", id, *current, Some(*total))
                }
                LayerStatus::Pushed => JsonMessage::status("Pushed", Some(id)),
                LayerStatus::Mounted { from } => {
                    JsonMessage::status(format!("Mounted from {from}"), Some(id))
                }
            }
        }
    }
}

/// docker names the repository without its registry in "Pulling from"
/// (`test/bb`, not `localhost:5000/test/bb`); a first component is a
/// registry when it has a `.` or `:` or is `localhost`, as in docker's
/// reference grammar.
fn without_domain(repository: &str) -> &str {
    match repository.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => repository,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::Digest;

    #[test]
    fn pulling_from_drops_the_registry() {
        for (repo, shown) in [
            ("busybox", "busybox"),
            ("library/busybox", "library/busybox"),
            ("127.0.0.1:5000/test/bb", "test/bb"),
            ("example.com/a/b", "a/b"),
            ("localhost/x", "x"),
            ("team/app", "team/app"),
        ] {
            let m = to_message(&ProgressEvent::PullingFrom {
                repository: repo.into(),
                tag: "1".into(),
            });
            assert_eq!(m.status.unwrap(), format!("Pulling from {shown}"));
        }
    }

    #[test]
    fn layer_ids_are_short() {
        let d = Digest::sha256_of(b"x");
        let m = to_message(&ProgressEvent::Layer {
            id: d.clone(),
            status: LayerStatus::Downloading {
                current: 1,
                total: 2,
            },
        });
        assert_eq!(m.id.as_deref(), Some(&d.hex()[..12]));
        assert_eq!(m.status.as_deref(), Some("Downloading"));
        assert_eq!(m.progress_detail.unwrap().total, Some(2));
    }
}
