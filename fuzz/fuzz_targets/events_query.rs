//! `GET /events`'s query string: filters, `since` and `until` (unix time,
//! RFC 3339 or Go durations) end in a window or an error, never a panic;
//! the window's filters run against a few events, times stay within
//! docker's range (int64 seconds), and the wait an `until` gives is its
//! distance from now, never negative or wrapped.
#![no_main]

use berth_daemon::events::Event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|query: &str| {
    let Ok(w) = berth_daemon::fuzzing::events_query(query) else {
        return;
    };
    let attrs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let events = [
        Event {
            kind: "container",
            action: "exec_start: sh -c true".into(),
            actor_id: "0123456789abcdef".repeat(4),
            attributes: attrs(&[("name", "web"), ("image", "busybox"), ("app", "x")]),
            time_nano: 1_700_000_000_000_000_000,
        },
        Event {
            kind: "image",
            action: "pull".into(),
            actor_id: format!("sha256:{}", "ab".repeat(32)),
            attributes: attrs(&[("name", "busybox:latest")]),
            time_nano: 0,
        },
    ];
    // docker's int64 seconds (a duration back from now is less than that).
    let bound = (i64::MAX as u128 + 2) * 1_000_000_000;
    for t in [w.since, w.until].into_iter().flatten() {
        assert!(t.unsigned_abs() < bound, "{query:?} -> {t}");
    }
    for e in &events {
        let _ = e.matches(&w.filters);
    }
    if let Some(until) = w.until {
        let now = berth_daemon::events::now_nanos();
        let wait = berth_daemon::fuzzing::events_wait(until, now);
        let left = until.saturating_sub(now).clamp(0, u64::MAX as i128) as u128;
        assert_eq!(wait.as_nanos(), left, "until {until} at {now}");
    }
});
