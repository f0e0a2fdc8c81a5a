//! docker's JSON message stream display (pull, push, load, import): on a
//! terminal, one line per layer id updated in place with cursor movement;
//! otherwise plain status lines without progress bars.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use serde_json::Value;

/// A message carried an `error`: the operation failed on the daemon.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StreamError(pub String);

/// Displays every message of `r`; returns the `aux` values (ids of built or
/// pushed images) and fails with the first `error` message.
pub fn display(
    r: &mut dyn std::io::Read,
    out: &mut dyn Write,
    quiet: bool,
) -> anyhow::Result<Vec<Value>> {
    let tty = std::io::stdout().is_terminal();
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
        let id = m.get("id").and_then(Value::as_str).unwrap_or("");
        let status = m.get("status").and_then(Value::as_str).unwrap_or("");
        let progress = m.get("progress").and_then(Value::as_str).unwrap_or("");
        let has_progress = m
            .get("progressDetail")
            .is_some_and(|p| p.as_object().is_some_and(|o| !o.is_empty()))
            || !progress.is_empty();
        let mut diff = 0;
        if !id.is_empty() && has_progress {
            let n = ids.len();
            let line = *ids.entry(id.to_string()).or_insert_with(|| {
                if tty {
                    let _ = writeln!(out);
                }
                n
            });
            diff = ids.len() - line;
            if tty {
                write!(out, "\x1b[{diff}A")?;
            }
        } else {
            ids.clear();
        }
        if !tty && has_progress {
            // docker drops progress bars when not on a terminal.
            return Ok(());
        }
        let mut endl = "\n";
        if tty && has_progress {
            write!(out, "\x1b[2K\r")?;
            endl = "\r";
        }
        if !id.is_empty() {
            write!(out, "{id}: ")?;
        }
        if let Some(stream) = m.get("stream").and_then(Value::as_str) {
            write!(out, "{stream}")?;
        } else if tty && !progress.is_empty() {
            write!(out, "{status} {progress}{endl}")?;
        } else {
            write!(out, "{status}{endl}")?;
        }
        if tty && diff > 0 {
            write!(out, "\x1b[{diff}B")?;
        }
        out.flush()
    })?;
    if let Some(e) = failure {
        return Err(StreamError(e).into());
    }
    Ok(aux)
}
