//! `docker import <URL>` (`POST /images/create?fromSrc=<URL>`): the
//! tarball is fetched over HTTP(S) by the daemon and streamed into the
//! same import as a body's, never held whole. As docker, a source without
//! a scheme is taken as `http://`; redirects are followed and the proxy
//! environment is honoured. The import's own bounds (entries, sizes)
//! limit what a URL can make the daemon write.

use std::io::{self, Read};
use std::time::Duration;

use berth_errdefs::ErrorKind;
use futures_util::StreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::error::ApiError;

/// How long connecting to the source may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts downloading `src` and returns its body as a blocking reader
/// (for a `spawn_blocking` task; call it inside the runtime). Fails if the
/// source is not an http(s) URL or does not answer with a success.
pub(crate) async fn download(src: &str) -> Result<impl Read + Send + 'static, ApiError> {
    let url = parse(src)?;
    let unavailable = |e: String| {
        ApiError::new(
            ErrorKind::Unavailable,
            format!("downloading {url} for the import failed: {e}"),
        )
    };
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|e| ApiError::internal(format!("making an HTTP client: {e}")))?;
    let resp = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| unavailable(berth_registry::error_chain(&e)))?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        // As docker's: the source's 404 is the answer's.
        return Err(ApiError::not_found(format!(
            "downloading {url} for the import failed: the server answered {status}"
        )));
    }
    if !status.is_success() {
        return Err(unavailable(format!("the server answered {status}")));
    }
    let stream = resp
        .bytes_stream()
        .map(move |r| r.map_err(|e| io::Error::other(format!("downloading {url} broke off: {e}"))));
    Ok(SyncIoBridge::new(StreamReader::new(stream)))
}

/// docker's reading of `fromSrc`: a URL, `http://` when it names no scheme.
fn parse(src: &str) -> Result<reqwest::Url, ApiError> {
    let with_scheme = if src.contains("://") {
        src.to_string()
    } else {
        format!("http://{src}")
    };
    let invalid = |why: String| {
        ApiError::bad_request(format!(
            "invalid fromSrc {src:?}: {why}; give \"-\" (the tarball in the request body) or an http(s) URL"
        ))
    };
    let url = reqwest::Url::parse(&with_scheme).map_err(|e| invalid(e.to_string()))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(invalid(format!(
            "the scheme {other:?} is not http or https"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_read_as_docker_reads_them() {
        assert_eq!(
            parse("example.com/rootfs.tar").unwrap().as_str(),
            "http://example.com/rootfs.tar"
        );
        assert_eq!(
            parse("https://example.com:8443/a.tar.gz").unwrap().as_str(),
            "https://example.com:8443/a.tar.gz"
        );
        for bad in ["file:///etc/passwd", "ftp://example.com/a.tar", "http://"] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
            assert!(e.message.contains(bad), "{}", e.message);
        }
    }
}
