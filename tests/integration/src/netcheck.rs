//! Small checks shared by the networking tests that drive berthd with the
//! docker CLI: a busybox web server container, fetching from the host,
//! polling, and `docker port`'s answer.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::daemon::Berthd;
use crate::text;

/// A web server container (`bb:1`, busybox httpd on port 80) answering
/// `GET /` with `body`; its id.
pub fn web(d: &Berthd, name: &str, extra: &[&str], body: &str) -> String {
    let script =
        format!("mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www");
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["bb:1", "sh", "-c", &script]);
    d.docker_ok(&args).trim().to_string()
}

/// Polls `f` until it gives `Some` or `secs` pass.
pub fn poll<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET url` from the host (3 s at most); the body when it succeeds.
pub fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "3", url])
        .output()
        .ok()?;
    out.status.success().then(|| text(&out.stdout))
}

/// `docker port`'s host port for a container port (its first line).
pub fn host_port(d: &Berthd, name: &str, port: &str) -> String {
    let out = d.docker_ok(&["port", name, port]);
    let line = out.lines().next().unwrap_or_default().to_string();
    line.rsplit(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}
