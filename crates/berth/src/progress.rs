//! docker's JSON message stream display (pull, push, load, import), with
//! docker's CLI rules: on a terminal, a message that carries
//! `progressDetail` (even an empty one) owns one line per layer id, redrawn
//! in place with cursor movement, and its bar is drawn here from the
//! numbers at the terminal's width; otherwise plain status lines, without
//! the messages that only move a bar.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use serde_json::Value;

use crate::units::human_size_prec;

/// A message carried an `error`: the operation failed on the daemon.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StreamError(pub String);

/// Displays every message of `r` on `out` as docker does when `out` is the
/// process's stdout; returns the `aux` values (ids of built or pushed
/// images) and fails with the first `error` message.
pub fn display(
    r: &mut dyn std::io::Read,
    out: &mut dyn Write,
    quiet: bool,
) -> anyhow::Result<Vec<Value>> {
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal().then(|| {
        // docker's CLI assumes 200 columns when it cannot ask.
        rustix::termios::tcgetwinsize(&stdout).map_or(200, |ws| ws.ws_col)
    });
    render(r, out, quiet, terminal)
}

/// `display` for a terminal `terminal` columns wide, or for a pipe or file.
fn render(
    r: &mut dyn std::io::Read,
    out: &mut dyn Write,
    quiet: bool,
    terminal: Option<u16>,
) -> anyhow::Result<Vec<Value>> {
    let tty = terminal.is_some();
    let width = terminal.unwrap_or(200);
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut aux = Vec::new();
    let mut failure: Option<String> = None;
    berth_client::stream::json_messages(r, |m| {
        if failure.is_some() {
            return Ok(());
        }
        if let Some(e) = m.get("error").and_then(Value::as_str) {
            failure = Some(e.to_string());
            return Ok(());
        }
        if let Some(a) = m.get("aux") {
            aux.push(a.clone());
            return Ok(());
        }
        if quiet {
            return Ok(());
        }
        let text = |key: &str| m.get(key).and_then(Value::as_str).unwrap_or("");
        let (id, status, stream) = (text("id"), text("status"), text("stream"));
        // The API's own rendering of the bar, from daemons that send one
        // without numbers (docker calls it deprecated and still shows it).
        let progress_message = text("progress");
        let progress = m
            .get("progressDetail")
            .filter(|p| p.is_object())
            .map(|p| Progress::from_json(p, crate::units::now()));
        let mut diff = 0;
        if !id.is_empty() && (progress.is_some() || !progress_message.is_empty()) {
            let n = ids.len();
            let line = *ids.entry(id.to_string()).or_insert_with(|| {
                if tty {
                    let _ = writeln!(out);
                }
                n
            });
            diff = ids.len() - line;
            if tty && diff > 0 {
                write!(out, "\x1b[{diff}A")?;
            }
        } else {
            // Anything else ends the layers' block: later progress starts
            // new lines instead of redrawing old ones.
            ids.clear();
        }
        let mut endl = "";
        if tty && stream.is_empty() && progress.is_some() {
            write!(out, "\x1b[2K\r")?;
            endl = "\r";
        } else if progress
            .as_ref()
            .is_some_and(|p| !p.render(width).is_empty())
        {
            // Not a terminal: a message that only moves a bar is dropped.
            return Ok(());
        }
        if !id.is_empty() {
            write!(out, "{id}: ")?;
        }
        if let Some(from) = m.get("from").and_then(Value::as_str) {
            write!(out, "(from {from}) ")?;
        }
        match &progress {
            Some(p) if tty => write!(out, "{status} {}{endl}", p.render(width))?,
            _ if !progress_message.is_empty() => write!(out, "{status} {progress_message}{endl}")?,
            _ if !stream.is_empty() => write!(out, "{stream}{endl}")?,
            _ => writeln!(out, "{status}{endl}")?,
        }
        if tty && !id.is_empty() && diff > 0 {
            write!(out, "\x1b[{diff}B")?;
        }
        out.flush()
    })?;
    if let Some(e) = failure {
        return Err(StreamError(e).into());
    }
    Ok(aux)
}

/// A message's `progressDetail`: how far one layer or file has come.
#[derive(Debug, Default, PartialEq)]
struct Progress {
    current: i64,
    total: i64,
    /// Seconds since the transfer started, when the daemon says when.
    elapsed: Option<f64>,
    units: String,
    hide_counts: bool,
}

impl Progress {
    fn from_json(p: &Value, now: f64) -> Progress {
        let int = |k: &str| p.get(k).and_then(Value::as_i64).unwrap_or(0);
        let start = int("start");
        Progress {
            current: int("current"),
            total: int("total"),
            elapsed: (start > 0).then_some(now - start as f64),
            units: p.get("units").and_then(Value::as_str).unwrap_or("").into(),
            hide_counts: p
                .get("hidecounts")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }

    /// docker's bar: `[====>     ]  1.2MB/2.4MB 3s`, the bar only on
    /// terminals wider than 110 columns, the time left wider than 50.
    fn render(&self, width: u16) -> String {
        let (current, total) = (self.current, self.total);
        if current <= 0 && total <= 0 {
            return String::new();
        }
        let size = |n: i64| human_size_prec(n as f64, 4);
        if total <= 0 {
            return match self.units.as_str() {
                "" => format!("{:>8}", size(current)),
                units => format!("{current} {units}"),
            };
        }
        let percentage = ((current as f64 / total as f64 * 100.0) as i64 / 2).min(50);
        let bar = if width > 110 {
            let done = percentage.max(0) as usize;
            format!("[{}>{}] ", "=".repeat(done), " ".repeat(50 - done))
        } else {
            String::new()
        };
        let numbers = match (self.hide_counts, self.units.as_str()) {
            (true, _) => String::new(),
            (false, "") if current > total => format!("{:>8}", size(current)),
            (false, "") => format!("{:>8}/{}", size(current), size(total)),
            (false, units) if current > total => format!("{current} {units}"),
            (false, units) => format!("{current}/{total} {units}"),
        };
        let mut time_left = String::new();
        if let Some(elapsed) = self.elapsed.filter(|_| width > 50) {
            if current > 0 && percentage < 50 {
                let left = (total - current) as f64 * elapsed / current as f64;
                time_left = format!(" {}", go_seconds(left.max(0.0) as u64));
            }
        }
        format!("{bar}{numbers}{time_left}")
    }
}

/// Go's `time.Duration.String()` of whole seconds: `0s`, `59s`, `1m0s`,
/// `1h2m3s`.
fn go_seconds(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(stream: &str, terminal: Option<u16>) -> String {
        let mut out = Vec::new();
        render(&mut stream.as_bytes(), &mut out, false, terminal).unwrap();
        String::from_utf8(out).unwrap()
    }

    const PUSH: &str = concat!(
        r#"{"status":"The push refers to repository [r/bb]"}"#,
        "\n",
        r#"{"status":"Preparing","progressDetail":{},"id":"47503de994f1"}"#,
        "\n",
        r#"{"status":"Pushing","progressDetail":{"current":512,"total":1024},"progress":"[==>  ]","id":"47503de994f1"}"#,
        "\n",
        r#"{"status":"Pushed","progressDetail":{},"id":"47503de994f1"}"#,
        "\n",
        r#"{"status":"1: digest: sha256:ab size: 527"}"#,
        "\n",
    );

    #[test]
    fn a_terminal_redraws_each_layers_line() {
        assert_eq!(
            shown(PUSH, Some(80)),
            concat!(
                "The push refers to repository [r/bb]\n",
                "\n\x1b[1A\x1b[2K\r47503de994f1: Preparing \r\x1b[1B",
                "\x1b[1A\x1b[2K\r47503de994f1: Pushing     512B/1.024kB\r\x1b[1B",
                "\x1b[1A\x1b[2K\r47503de994f1: Pushed \r\x1b[1B",
                "1: digest: sha256:ab size: 527\n",
            )
        );
    }

    #[test]
    fn a_pipe_gets_status_lines_without_bars() {
        assert_eq!(
            shown(PUSH, None),
            concat!(
                "The push refers to repository [r/bb]\n",
                "47503de994f1: Preparing\n",
                "47503de994f1: Pushed\n",
                "1: digest: sha256:ab size: 527\n",
            )
        );
    }

    #[test]
    fn bars_follow_the_terminals_width() {
        let p = Progress {
            current: 25_000_000,
            total: 100_000_000,
            elapsed: Some(10.0),
            ..Progress::default()
        };
        assert_eq!(
            p.render(120),
            format!("[{}>{}]     25MB/100MB 30s", "=".repeat(12), " ".repeat(38))
        );
        assert_eq!(p.render(80), "    25MB/100MB 30s");
        assert_eq!(p.render(40), "    25MB/100MB");
        let done = Progress {
            current: 7,
            total: 0,
            units: "files".into(),
            ..Progress::default()
        };
        assert_eq!(done.render(120), "7 files");
        assert_eq!(Progress::default().render(120), "");
        assert_eq!(go_seconds(3723), "1h2m3s");
        assert_eq!(go_seconds(60), "1m0s");
    }

    #[test]
    fn an_error_message_fails_the_stream() {
        let mut out = Vec::new();
        let err = render(
            &mut r#"{"errorDetail":{"message":"no"},"error":"no such image"}"#.as_bytes(),
            &mut out,
            false,
            None,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "no such image");
    }
}
