//! Work the daemon finishes before it exits although no request waits for
//! it: the tail of a container's exit or removal (unmounting its rootfs,
//! deleting its veths and network namespace, deleting its files) runs
//! after the client was told, on a monitor thread or one of its own. A
//! daemon stopped by SIGTERM right then would leave those mounts,
//! namespaces and files behind until its next start; it waits for them
//! instead ([`Inflight::wait_idle`]).

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Counts the pieces of such work under way.
#[derive(Debug, Default)]
pub(crate) struct Inflight(Arc<Counter>);

#[derive(Debug, Default)]
struct Counter {
    running: Mutex<usize>,
    idle: Condvar,
}

/// One piece of work under way; it ends when dropped. It may move to
/// another thread.
pub(crate) struct InflightGuard(Arc<Counter>);

impl Inflight {
    pub(crate) fn enter(&self) -> InflightGuard {
        *self.0.running.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        InflightGuard(self.0.clone())
    }

    /// Runs `work` on a thread of its own, counted from now (not from
    /// when the thread starts), so a daemon told to stop right after this
    /// call still waits for it. Without a thread (none can be made), the
    /// work runs here and now.
    pub(crate) fn run_later(&self, name: &str, work: impl FnOnce() + Send + 'static) {
        let guard = self.enter();
        let slot = Arc::new(Mutex::new(Some(work)));
        let theirs = slot.clone();
        let take = |s: &Mutex<Option<_>>| s.lock().unwrap_or_else(|p| p.into_inner()).take();
        let spawned = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                if let Some(work) = take(&theirs) {
                    work();
                }
                drop(guard);
            });
        if let Err(e) = spawned {
            tracing::warn!(work = name, error = %e, "no thread for work after the reply: doing it now");
            // The failed spawn dropped the thread's guard with its closure.
            let _guard = self.enter();
            if let Some(work) = take(&slot) {
                work();
            }
        }
    }

    /// Waits until no work is under way, at most `timeout`; false if some
    /// still was then.
    pub(crate) fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut running = self.0.running.lock().unwrap_or_else(|p| p.into_inner());
        while *running > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            running = self
                .0
                .idle
                .wait_timeout(running, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        let mut running = self.0.running.lock().unwrap_or_else(|p| p.into_inner());
        *running -= 1;
        if *running == 0 {
            self.0.idle.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn waits_for_work_under_way_and_no_longer() {
        let inflight = Arc::new(Inflight::default());
        assert!(inflight.wait_idle(Duration::ZERO));
        let worker = {
            let inflight = inflight.clone();
            let (tx, rx) = std::sync::mpsc::channel();
            let t = std::thread::spawn(move || {
                let _work = inflight.enter();
                tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(100));
            });
            rx.recv().unwrap();
            t
        };
        assert!(!inflight.wait_idle(Duration::from_millis(1)));
        assert!(inflight.wait_idle(Duration::from_secs(10)));
        worker.join().unwrap();
    }

    #[test]
    fn work_run_later_is_waited_for() {
        let inflight = Inflight::default();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        inflight.run_later("test-work", move || {
            // Holds until the test lets it go.
            let _ = rx.recv();
        });
        assert!(!inflight.wait_idle(Duration::from_millis(20)));
        tx.send(()).unwrap();
        assert!(inflight.wait_idle(Duration::from_secs(10)));
    }
}
