//! The engine's event stream (`GET /events`): a broadcast for live
//! subscribers and a bounded backlog for `since`.

use std::collections::VecDeque;
use std::num::IntErrorKind;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_api::Filters;

use crate::error::ApiError;
use crate::go_duration::DurationError;
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// Events kept for `since` queries: docker's 256 (its `eventsLimit`). A
/// container's run makes about eight events with its labels and names,
/// so 1024 of them held about 1.5 MiB more of berthd's memory once a busy
/// daemon had filled them, for no client that asks docker for less.
const BACKLOG: usize = 256;

/// One event, in docker's wire shape (with the legacy `status`/`id`/`from`
/// fields API 1.41 clients still read).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: &'static str,
    pub action: String,
    pub actor_id: String,
    pub attributes: Vec<(String, String)>,
    pub time_nano: i128,
}

impl Event {
    pub fn to_json(&self) -> Value {
        let attrs: serde_json::Map<String, Value> = self
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let mut v = json!({
            "Type": self.kind,
            "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": attrs},
            "scope": "local",
            "time": (self.time_nano / 1_000_000_000) as i64,
            "timeNano": self.time_nano as i64,
        });
        if self.kind == "image" || self.kind == "container" {
            v["status"] = json!(self.action);
            v["id"] = json!(self.actor_id);
        }
        if let Some(image) = self.attribute("image").filter(|_| self.kind == "container") {
            v["from"] = json!(image);
        }
        v
    }

    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// docker's event filters: type, event (action), image (id or name),
    /// container (id, id prefix or name), label (`key` or `key=value`).
    pub fn matches(&self, filters: &Filters) -> bool {
        let any =
            |key: &str, f: &dyn Fn(&str) -> bool| !filters.contains(key) || filters.get(key).any(f);
        // "exec_start: sh" is an exec_start event.
        let action = self.action.split(':').next().unwrap_or_default();
        any("type", &|t| t == self.kind)
            && any("event", &|a| a == self.action || a == action)
            && any("container", &|c| {
                self.kind == "container"
                    && (self.actor_id.starts_with(c) || self.attribute("name") == Some(c))
            })
            && filters.labels_match("label", || {
                self.attributes
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
            })
            && any("image", &|i| {
                self.actor_id == i
                    || (self.kind == "container" && self.attribute("image") == Some(i))
                    || self
                        .actor_id
                        .strip_prefix("sha256:")
                        .is_some_and(|h| h.starts_with(i))
                    || (self.kind == "image" && self.attribute("name") == Some(i))
            })
    }
}

pub fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

#[derive(Debug)]
/// Events are shared (`Arc`) between the backlog and the broadcast's ring,
/// which also keeps the last ones it sent.
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    backlog: Mutex<VecDeque<Arc<Event>>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(256).0,
            backlog: Mutex::new(VecDeque::with_capacity(BACKLOG)),
        }
    }
}

impl EventBus {
    pub fn emit(&self, kind: &'static str, action: &str, actor_id: &str, name: Option<&str>) {
        let attributes = name
            .map(|n| vec![("name".to_string(), n.to_string())])
            .unwrap_or_default();
        self.emit_with(kind, action, actor_id, attributes);
    }

    /// An event with docker's actor attributes (a container's `name`,
    /// `image`, labels, `exitCode`, ...).
    pub fn emit_with(
        &self,
        kind: &'static str,
        action: &str,
        actor_id: &str,
        attributes: Vec<(String, String)>,
    ) {
        let event = Arc::new(Event {
            kind,
            action: action.to_string(),
            actor_id: actor_id.to_string(),
            attributes,
            time_nano: now_nanos(),
        });
        let mut log = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() == BACKLOG {
            log.pop_front();
        }
        log.push_back(event.clone());
        // Sent under the lock so a subscriber sees each event once: either
        // in the backlog it copies or live, never both or neither.
        let _ = self.tx.send(event);
    }

    /// The backlog since `since_nano` and a receiver for what follows.
    pub fn subscribe(
        &self,
        since_nano: Option<i128>,
    ) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let log = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        let past = match since_nano {
            Some(s) => log.iter().filter(|e| e.time_nano >= s).cloned().collect(),
            None => Vec::new(),
        };
        (past, rx)
    }
}

/// `since`/`until`: unix seconds with an optional fraction, RFC 3339, or
/// a Go duration (`24h`, `1h30m`) back from now, as docker's
/// `GetTimestamp` reads them (`container prune --filter until=24h`);
/// nanoseconds since the epoch. Like docker's, seconds must fit a Go int64
/// and durations Go's `time.Duration`; the error says what is wrong.
pub fn parse_time(s: &str) -> Result<i128, String> {
    match crate::go_duration::parse_nanos(s) {
        Ok(ago) if s != "0" => return Ok(now_nanos() - i128::from(ago)),
        Err(e @ DurationError::OutOfRange) => return Err(e.to_string()),
        _ => {}
    }
    let invalid = || {
        "expected unix seconds (with an optional fraction), RFC 3339 or a Go duration".to_string()
    };
    if s.contains('T') {
        return parse_rfc3339_nanos(s).ok_or_else(invalid);
    }
    if let Some((secs, frac)) = s.split_once('.') {
        let secs = unix_seconds(secs)?.ok_or_else(invalid)?;
        let digits: String = frac.chars().take(9).collect();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let nanos: i128 = format!("{digits:0<9}").parse().map_err(|_| invalid())?;
        return Ok(secs + nanos);
    }
    if let Some(t) = unix_seconds(s)? {
        return Ok(t);
    }
    crate::images::parse_rfc3339(s)
        .map(|secs| i128::from(secs) * 1_000_000_000)
        .ok_or_else(invalid)
}

/// Whole unix seconds as nanoseconds, in docker's range (a Go int64);
/// `None` when `text` is no integer.
fn unix_seconds(text: &str) -> Result<Option<i128>, String> {
    match text.parse::<i64>() {
        Ok(secs) => Ok(Some(i128::from(secs) * 1_000_000_000)),
        Err(e)
            if matches!(
                e.kind(),
                IntErrorKind::PosOverflow | IntErrorKind::NegOverflow
            ) =>
        {
            Err(format!(
                "out of range: unix seconds are at most {} either way",
                i64::MAX
            ))
        }
        Err(_) => Ok(None),
    }
}

/// How long a stream with `until` (nanoseconds) has left at `now`: none
/// once it is past, and at most `u64::MAX` nanoseconds (584 years) for a
/// time further away.
pub fn until_wait(until: i128, now: i128) -> std::time::Duration {
    let left = until.saturating_sub(now).max(0);
    std::time::Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX))
}

/// `until`'s limit for a prune, or docker's error for a value that is
/// neither a time nor a duration.
pub(crate) fn until_limit(u: &str) -> Result<i128, ApiError> {
    parse_time(u).map_err(|reason| {
        ApiError::bad_request(format!(
            "failed to parse value as time or duration: {u:?}: {reason}"
        ))
    })
}

/// RFC 3339 with an optional fraction (`2024-01-02T03:04:05.123456789Z`),
/// as the json-file log and docker's clients write it.
fn parse_rfc3339_nanos(s: &str) -> Option<i128> {
    let Some((whole, rest)) = s.split_once('.') else {
        return crate::images::parse_rfc3339(s).map(|t| i128::from(t) * 1_000_000_000);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let zone = &rest[digits.len()..];
    let secs = crate::images::parse_rfc3339(&format!("{whole}{zone}"))?;
    let nanos: i128 = format!("{digits:0<9}").parse().ok()?;
    Some(i128::from(secs) * 1_000_000_000 + nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_back_from_now() {
        // "0" is unix time 0, not "now" (docker's GetTimestamp).
        assert_eq!(parse_time("0"), Ok(0));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i128;
        let day_ago = parse_time("24h").unwrap();
        assert!((now - day_ago - 86_400 * 1_000_000_000).abs() < 5_000_000_000);
    }

    #[test]
    fn times_in_every_shape() {
        assert_eq!(parse_time("12.5"), Ok(12_500_000_000));
        assert_eq!(parse_time("12"), Ok(12_000_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:10Z"), Ok(10_000_000_000));
        assert_eq!(
            parse_time("1970-01-01T00:00:10.000000001Z"),
            Ok(10_000_000_001)
        );
        assert_eq!(
            parse_time("1970-01-01T01:00:10.5+01:00"),
            Ok(10_500_000_000)
        );
        assert_eq!(
            parse_time("nope").unwrap_err(),
            "expected unix seconds (with an optional fraction), RFC 3339 or a Go duration"
        );
    }

    #[test]
    fn times_beyond_dockers_range_are_refused() {
        // Beside the events_query fuzz target's crash (far_untils_wait_long):
        // 39-digit seconds overflowed the i128 multiplication, and
        // durations far beyond Go's were subtracted from now unchecked.
        for s in [
            "170141183460469231731687303715884105727",
            "-9223372036854775809",
            "9223372036854775808.5",
        ] {
            let e = parse_time(s).unwrap_err();
            assert!(e.starts_with("out of range: unix seconds"), "{s}: {e}");
        }
        let e = parse_time(&format!("-{}h", "9".repeat(40))).unwrap_err();
        assert!(e.starts_with("out of range: a Go duration"), "{e}");
        assert_eq!(
            parse_time("9223372036854775807"),
            Ok(i128::from(i64::MAX) * 1_000_000_000)
        );
        let e = until_limit("99999999999999999999").unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("out of range"), "{}", e.message);
    }

    #[test]
    fn far_untils_wait_long_not_wrapped() {
        // events_query's crash: `until=70000000000` (year 4188) is more
        // nanoseconds away than a u64 holds, and the wait wrapped to a
        // shorter one.
        let now = 1_795_544_389_266_641_684;
        let until = parse_time("70000000000").unwrap();
        assert_eq!(
            until_wait(until, now),
            std::time::Duration::from_nanos(u64::MAX)
        );
        assert_eq!(until_wait(now - 1, now), std::time::Duration::ZERO);
        assert_eq!(until_wait(now + 5, now), std::time::Duration::from_nanos(5));
        assert_eq!(
            until_wait(i128::from(i64::MAX) * 1_000_000_000, i128::from(i64::MIN)),
            std::time::Duration::from_nanos(u64::MAX)
        );
    }

    #[test]
    fn backlog_and_live_each_once() {
        let bus = EventBus::default();
        bus.emit("image", "tag", "sha256:ab", Some("a:1"));
        let (past, mut rx) = bus.subscribe(Some(0));
        bus.emit("image", "delete", "sha256:ab", None);
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].action, "tag");
        assert_eq!(rx.try_recv().unwrap().action, "delete");
        assert!(rx.try_recv().is_err());
        let (none, _) = bus.subscribe(None);
        assert!(none.is_empty());
    }

    #[test]
    fn the_backlog_keeps_dockers_last_256() {
        let bus = EventBus::default();
        for i in 0..300 {
            bus.emit("container", "start", &format!("{i}"), None);
        }
        let (past, _) = bus.subscribe(Some(0));
        assert_eq!(past.len(), 256);
        assert_eq!(past[0].actor_id, "44");
        assert_eq!(past[255].actor_id, "299");
    }

    #[test]
    fn filters_and_shape() {
        let bus = EventBus::default();
        bus.emit("image", "tag", "sha256:abcdef", Some("a:1"));
        let (past, _) = bus.subscribe(Some(0));
        let e = &past[0];
        let f = |s: &str| Filters::parse(s).unwrap();
        assert!(e.matches(&f(r#"{"type":["image"]}"#)));
        assert!(!e.matches(&f(r#"{"type":["container"]}"#)));
        assert!(e.matches(&f(r#"{"event":["tag","untag"]}"#)));
        assert!(e.matches(&f(r#"{"image":["abc"]}"#)));
        assert!(e.matches(&f(r#"{"image":["a:1"]}"#)));
        assert!(!e.matches(&f(r#"{"image":["b"]}"#)));
        let v = e.to_json();
        assert_eq!(v["Type"], "image");
        assert_eq!(v["Actor"]["Attributes"]["name"], "a:1");
        assert_eq!(v["status"], "tag");
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000_000_000));
        assert_eq!(parse_time("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:10Z"), Ok(10_000_000_000));
        assert!(parse_time("soon").is_err());
        assert!(parse_time("1.x").is_err());
    }
}
