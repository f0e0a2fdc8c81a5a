//! Giving memory back when requests stop.
//!
//! A burst of requests (a pull, a hundred `run`s) grows glibc's arenas,
//! which keep freed memory for the next burst. berthd mostly sits idle
//! between bursts, so once a second passes without a request it asks
//! malloc to return its free pages (berth_sys::malloc::trim): an idle
//! daemon's resident size then stays near what it holds, not near its
//! busiest moment. The trim costs well under a millisecond and happens
//! once per quiet spell; an idle daemon has no timer running at all.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;

/// Counts requests, so a waiting trim can tell whether one came.
static REQUESTS: AtomicU64 = AtomicU64::new(0);
/// A trim is waiting for the current burst to end.
static TRIM_PENDING: AtomicBool = AtomicBool::new(false);

/// How long without a request counts as quiet.
const QUIET: Duration = Duration::from_secs(1);

/// `router`, with every request noted: the first of a burst schedules a
/// trim for when the burst is over.
pub fn noting_requests(router: Router) -> Router {
    router.layer(middleware::from_fn(note))
}

async fn note(request: Request, next: Next) -> Response {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    schedule_trim();
    next.run(request).await
}

/// Trims once the current burst is over, unless a trim already waits for
/// it. Also called after start-up, whose work is a burst of its own.
pub fn schedule_trim() {
    if !TRIM_PENDING.swap(true, Ordering::AcqRel) {
        tokio::spawn(trim_when_quiet());
    }
}

/// Waits until a whole [`QUIET`] passes without a request, then trims.
async fn trim_when_quiet() {
    loop {
        let seen = REQUESTS.load(Ordering::Relaxed);
        tokio::time::sleep(QUIET).await;
        if REQUESTS.load(Ordering::Relaxed) == seen {
            break;
        }
    }
    // A request from here on schedules the next trim.
    TRIM_PENDING.store(false, Ordering::Release);
    let _ = tokio::task::spawn_blocking(berth_sys::malloc::trim).await;
}
