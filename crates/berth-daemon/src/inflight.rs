//! Work the daemon finishes before it exits although no request waits for
//! it: the tail of a container's exit or removal (unmounting its rootfs,
//! deleting its veths and network namespace) runs after `docker run --rm`
//! was told, on a monitor thread. A daemon stopped by SIGTERM right then
//! would leave those mounts and namespaces behind until its next start;
//! it waits for them instead ([`Inflight::wait_idle`]).

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Counts the pieces of such work under way.
#[derive(Debug, Default)]
pub(crate) struct Inflight {
    running: Mutex<usize>,
    idle: Condvar,
}

/// One piece of work under way; it ends when dropped.
pub(crate) struct InflightGuard<'a>(&'a Inflight);

impl Inflight {
    pub(crate) fn enter(&self) -> InflightGuard<'_> {
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        InflightGuard(self)
    }

    /// Waits until no work is under way, at most `timeout`; false if some
    /// still was then.
    pub(crate) fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        while *running > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            running = self
                .idle
                .wait_timeout(running, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

impl Drop for InflightGuard<'_> {
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
}
