//! docker's JSON progress messages (`jsonmessage.JSONMessage`): one JSON
//! object per line, streamed by pull, push, import and load.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: String,
}

/// One line of a progress stream. Empty fields are left out, as docker does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(
        rename = "progressDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub progress_detail: Option<ProgressDetail>,
    /// A pre-rendered bar for old clients; current ones draw from the detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(
        rename = "errorDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub error_detail: Option<ErrorDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Structured results (push's digest, load's image ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

impl JsonMessage {
    /// `{"status": ...}`, optionally about one layer or image id.
    pub fn status(status: impl Into<String>, id: Option<&str>) -> Self {
        JsonMessage {
            status: Some(status.into()),
            id: id.map(str::to_string),
            ..Self::default()
        }
    }

    /// A progress line for `id` (`Downloading`, `Extracting`, `Pushing`).
    pub fn progress(status: &str, id: &str, current: u64, total: Option<u64>) -> Self {
        JsonMessage {
            status: Some(status.to_string()),
            id: Some(id.to_string()),
            progress_detail: Some(ProgressDetail {
                current: Some(current),
                total,
            }),
            progress: Some(render_bar(current, total)),
            ..Self::default()
        }
    }

    /// The terminal error of a stream: docker clients stop and print it.
    pub fn error(message: impl Into<String>) -> Self {
        let message = message.into();
        JsonMessage {
            error_detail: Some(ErrorDetail {
                code: None,
                message: message.clone(),
            }),
            error: Some(message),
            ..Self::default()
        }
    }

    /// `{"stream": ...}` (load and build print their output this way).
    pub fn stream(text: impl Into<String>) -> Self {
        JsonMessage {
            stream: Some(text.into()),
            ..Self::default()
        }
    }

    pub fn aux(value: serde_json::Value) -> Self {
        JsonMessage {
            aux: Some(value),
            ..Self::default()
        }
    }

    /// The JSON line, newline-terminated.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// docker's `[=====>     ]  1.2MB/3.4MB` (sizes in SI units, as docker prints).
pub fn render_bar(current: u64, total: Option<u64>) -> String {
    const WIDTH: u64 = 50;
    match total {
        Some(total) if total > 0 => {
            let filled = (current.min(total) * WIDTH / total) as usize;
            let mut bar = "=".repeat(filled);
            if (filled as u64) < WIDTH {
                bar.push('>');
            }
            format!(
                "[{bar:<width$}] {:>8}/{}",
                human_size(current),
                human_size(total),
                width = WIDTH as usize
            )
        }
        _ => human_size(current),
    }
}

/// Sizes as docker's go-units `HumanSize`: decimal units, 3 significant digits.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    let digits = if size >= 100.0 {
        0
    } else if size >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{size:.digits$}");
    // %.3g drops trailing zeros.
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shape_matches_docker() {
        let line = JsonMessage::progress("Downloading", "abc", 5, Some(10)).to_line();
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["status"], "Downloading");
        assert_eq!(v["id"], "abc");
        assert_eq!(v["progressDetail"]["current"], 5);
        assert_eq!(v["progressDetail"]["total"], 10);
        assert!(line.ends_with(b"\n"));
        let e = JsonMessage::error("boom");
        let v: serde_json::Value = serde_json::from_slice(&e.to_line()).unwrap();
        assert_eq!(v["error"], "boom");
        assert_eq!(v["errorDetail"]["message"], "boom");
        assert!(v.get("status").is_none());
        let back: JsonMessage = serde_json::from_slice(&e.to_line()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn sizes_as_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1_234_567), "1.23MB");
        assert_eq!(human_size(4_400_000), "4.4MB");
        assert_eq!(human_size(123_456_789), "123MB");
    }

    #[test]
    fn bar_fills_with_progress() {
        let half = render_bar(50, Some(100));
        assert!(half.starts_with("[=========================>"), "{half}");
        assert!(render_bar(100, Some(100)).starts_with(&format!("[{}]", "=".repeat(50))));
        assert_eq!(render_bar(1000, None), "1kB");
    }
}
