//! Warming the kernel's cgroup migration lock as a start begins, so the
//! grace period the shim's first cgroup.procs write would wait for runs
//! while the daemon mounts the rootfs and launches the shim (see
//! [`berth_cgroups::MigrationPrimer`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use berth_cgroups::MigrationPrimer;

/// Small: the thread makes one write.
const STACK: usize = 64 * 1024;

#[derive(Debug, Default)]
pub struct CgroupWarmup {
    primer: Option<Arc<MigrationPrimer>>,
    /// A warm-up in flight serves every start that begins meanwhile.
    busy: Arc<AtomicBool>,
}

impl CgroupWarmup {
    /// For this host's layout; does nothing where the layout cannot be
    /// read or needs no warming (pure cgroup v2).
    pub fn detect() -> CgroupWarmup {
        let primer = berth_cgroups::detect()
            .ok()
            .and_then(|layout| MigrationPrimer::new(&layout))
            .map(Arc::new);
        CgroupWarmup {
            primer,
            busy: Arc::default(),
        }
    }

    /// Starts a warm-up on a thread of its own unless one is running;
    /// returns at once.
    pub fn start(&self) {
        let Some(primer) = &self.primer else { return };
        if self.busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let primer = primer.clone();
        let busy = self.busy.clone();
        let spawned = std::thread::Builder::new()
            .name("cgroup-warmup".into())
            .stack_size(STACK)
            .spawn(move || {
                if let Err(e) = primer.prime() {
                    tracing::debug!(error = %e, "warming the cgroup migration lock");
                }
                busy.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.busy.store(false, Ordering::Release);
        }
    }
}
