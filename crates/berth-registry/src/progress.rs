//! Progress of pulls and pushes as a stream of events.
//!
//! The events are berth's own types: the daemon turns them into docker's
//! JSON progress messages (`{"status":"Downloading","id":"a1b2c3d4e5f6",
//! "progressDetail":{"current":..,"total":..}}`) and the CLI draws them.
//! Nothing here renders anything.
//!
//! Sending never blocks and never fails: a pull must not stall or abort
//! because nobody reads its progress, so the channel is unbounded and byte
//! counts are throttled at the source ([`Throttle`]).

use std::time::{Duration, Instant};

use berth_image::Digest;
use tokio::sync::mpsc;

/// What happens to one layer (or blob) of a pull or push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerStatus {
    /// Queued behind the concurrency limit.
    Waiting,
    /// Bytes of the compressed blob received so far.
    Downloading { current: u64, total: u64 },
    /// The whole blob arrived; its digest is being checked.
    Verifying,
    /// The blob arrived and its digest matched.
    DownloadComplete,
    /// Bytes of the compressed blob unpacked so far.
    Extracting { current: u64, total: u64 },
    /// The layer is stored and unpacked.
    PullComplete,
    /// Nothing to do: the blob or layer was already here (pull), or the
    /// repository already has it (push).
    AlreadyExists,
    /// Push: the blob is being looked at.
    Preparing,
    /// Push: bytes uploaded so far.
    Pushing { current: u64, total: u64 },
    /// Push: uploaded.
    Pushed,
    /// Push: mounted from another repository of the same registry.
    Mounted { from: String },
}

/// One progress event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// A pull starts: docker's "Pulling from library/busybox" (id: the tag
    /// or digest).
    PullingFrom { repository: String, tag: String },
    /// A push starts: docker's "The push refers to repository [...]".
    PushRefersTo { repository: String },
    /// A layer's status changed. `id` is the blob digest; docker shows its
    /// first 12 hex digits ([`short_id`]).
    Layer { id: Digest, status: LayerStatus },
    /// The pulled manifest (or index) digest: docker's "Digest: sha256:...".
    PullDigest { digest: Digest },
    /// A push finished: docker's "<tag>: digest: sha256:... size: N".
    PushDigest {
        tag: String,
        digest: Digest,
        size: u64,
    },
}

/// The 12 hex digits docker uses as a layer's id in progress output.
pub fn short_id(d: &Digest) -> &str {
    &d.hex()[..12.min(d.hex().len())]
}

/// Where a pull or push reports its progress. Cloning shares the channel.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    tx: Option<mpsc::UnboundedSender<ProgressEvent>>,
}

impl Progress {
    /// Progress that goes nowhere (`--quiet`, tests, internal pulls).
    pub fn none() -> Progress {
        Progress { tx: None }
    }

    /// Progress delivered to the returned receiver.
    pub fn channel() -> (Progress, mpsc::UnboundedReceiver<ProgressEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Progress { tx: Some(tx) }, rx)
    }

    /// Sends an event; a reader that went away is not an error.
    pub fn send(&self, event: ProgressEvent) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(event);
        }
    }

    /// Sends a layer event.
    pub fn layer(&self, id: &Digest, status: LayerStatus) {
        self.send(ProgressEvent::Layer {
            id: id.clone(),
            status,
        });
    }
}

/// Limits byte-count events to a few per second per layer: a 1 GB layer
/// would otherwise send tens of thousands.
#[derive(Debug)]
pub(crate) struct Throttle {
    last: Option<Instant>,
    every: Duration,
}

impl Throttle {
    pub(crate) fn new() -> Throttle {
        Throttle {
            last: None,
            every: Duration::from_millis(100),
        }
    }

    /// True when an event is due (the first one always is).
    pub(crate) fn due(&mut self) -> bool {
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < self.every => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_reach_the_receiver_and_none_goes_nowhere() {
        let (p, mut rx) = Progress::channel();
        let d = Digest::sha256_of(b"layer");
        p.layer(&d, LayerStatus::Waiting);
        p.clone().layer(&d, LayerStatus::PullComplete);
        assert_eq!(
            rx.try_recv().unwrap(),
            ProgressEvent::Layer {
                id: d.clone(),
                status: LayerStatus::Waiting
            }
        );
        assert!(matches!(
            rx.try_recv().unwrap(),
            ProgressEvent::Layer {
                status: LayerStatus::PullComplete,
                ..
            }
        ));
        drop(rx);
        // A receiver that went away does not make sending fail.
        p.layer(&d, LayerStatus::Verifying);
        Progress::none().layer(&d, LayerStatus::Verifying);
        assert_eq!(short_id(&d), &d.hex()[..12]);
    }

    #[test]
    fn throttle_lets_the_first_event_through_then_waits() {
        let mut t = Throttle::new();
        assert!(t.due());
        assert!(!t.due());
        t.every = Duration::ZERO;
        assert!(t.due());
    }
}
