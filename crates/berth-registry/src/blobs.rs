//! Blob HEAD, streaming download with Range resumption, and upload
//! (cross-repository mount, monolithic or chunked).

use berth_image::digest::{Digest, Digester};
use berth_image::reference::Reference;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Method, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use url::Url;

use crate::client::{error_chain, Client, Endpoint, Target};
use crate::error::RegistryError;

/// Where a download resumes: the bytes already stored and their hash state.
#[derive(Clone)]
pub struct Resume {
    pub offset: u64,
    /// A digester (of the blob's algorithm) fed with exactly the first `offset` bytes.
    pub digester: Digester,
}

/// What `push_blob` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushedBlob {
    /// The repository already had it ("Layer already exists").
    Exists,
    /// Mounted from another repository of the same registry without an upload.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// Who checks a download's digest.
// Passed once per download, by value: boxing the resume state would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Verify {
    /// The client hashes the stream and checks it before `fetch_blob`
    /// returns `Ok`; a download that resumes brings the hash state of the
    /// bytes it has.
    Here(Option<Resume>),
    /// The sink hashes what it receives and checks the digest itself, as
    /// the content store's ingest does on commit: the client does not hash
    /// the stream a second time. The download resumes at `offset`. The
    /// client still checks the size.
    BySink { offset: u64 },
}

/// The digest mismatch error unless `digester` (fed with a blob of
/// `repo`) arrives at `expected`.
pub(crate) fn check_digest(
    repo: &Reference,
    expected: &Digest,
    digester: &Digester,
) -> Result<(), RegistryError> {
    let actual = digester.clone().finish();
    if &actual == expected {
        return Ok(());
    }
    Err(RegistryError::DigestMismatch {
        registry: repo.domain().into(),
        repository: repo.repository().into(),
        expected: expected.clone(),
        actual,
    })
}

/// Progress of one download, kept across retries and mirrors.
struct Download {
    /// `None` when the sink verifies ([`Verify::BySink`]).
    digester: Option<Digester>,
    written: u64,
}

/// The start offset a 206 answer says it begins at (`Content-Range: bytes <start>-<end>/<total>`).
fn content_range_start(resp: &Response) -> Option<u64> {
    let v = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let range = v.trim().strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

impl Client {
    /// HEAD on a blob: its size, or `None` when the repository does not have it.
    pub async fn head_blob(
        &self,
        repo: &Reference,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let registry = repo.domain();
        let target = Target::pull(registry, repo.repository());
        let mut last = None;
        for candidate in self.pull_endpoints(registry).await {
            let ep = match self.resolve(registry, candidate).await {
                Ok(ep) => ep,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match self.head_blob_at(&target, &ep, digest).await {
                Ok(found) => return Ok(found),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("pull_endpoints returns at least one endpoint"))
    }

    async fn head_blob_at(
        &self,
        target: &Target<'_>,
        ep: &Endpoint,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let url = ep.url(&format!("v2/{}/blobs/{digest}", target.repository));
        let resp = self.send(target, ep, |http| http.head(url.clone())).await?;
        match resp.status() {
            StatusCode::OK => Ok(Some(
                resp.headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| {
                        target.error(format!("HEAD {digest} answered without a Content-Length"))
                    })?,
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self
                .status_error(target, &Method::HEAD, &format!("blob {digest}"), resp)
                .await),
        }
    }

    /// Streams a blob into `sink`, hashing as it goes unless the sink
    /// verifies ([`Verify`]). A connection that breaks mid-blob is resumed
    /// with a Range request (up to the retry policy's attempts); mirrors are
    /// tried before Docker Hub. Returns the blob's size once its size (and
    /// with [`Verify::Here`] its digest) is verified.
    ///
    /// `sink` receives bytes before the blob is verified: on `Err` the caller
    /// must discard what it wrote (the content store's ingest file does).
    pub async fn fetch_blob<W>(
        &self,
        repo: &Reference,
        digest: &Digest,
        expected_size: Option<u64>,
        verify: Verify,
        sink: &mut W,
    ) -> Result<u64, RegistryError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let registry = repo.domain();
        let target = Target::pull(registry, repo.repository());
        let mut state = match verify {
            Verify::Here(Some(r)) => Download {
                digester: Some(r.digester),
                written: r.offset,
            },
            Verify::Here(None) => Download {
                digester: Some(Digester::new(digest.algorithm())),
                written: 0,
            },
            Verify::BySink { offset } => Download {
                digester: None,
                written: offset,
            },
        };
        let size_error = |actual: u64| RegistryError::SizeMismatch {
            registry: registry.into(),
            repository: repo.repository().into(),
            digest: digest.to_string(),
            expected: expected_size.unwrap_or_default(),
            actual,
        };
        if expected_size.is_some_and(|s| state.written > s) {
            return Err(size_error(state.written));
        }
        let mut last = None;
        for candidate in self.pull_endpoints(registry).await {
            let ep = match self.resolve(registry, candidate).await {
                Ok(ep) => ep,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match self
                .fetch_from(&target, &ep, digest, expected_size, &mut state, sink)
                .await
            {
                Ok(()) => {
                    if let Some(expected) = expected_size {
                        if state.written != expected {
                            return Err(size_error(state.written));
                        }
                    }
                    if let Some(digester) = &state.digester {
                        check_digest(repo, digest, digester)?;
                    }
                    sink.flush().await.map_err(|source| RegistryError::Sink {
                        registry: registry.into(),
                        repository: repo.repository().into(),
                        digest: digest.to_string(),
                        source,
                    })?;
                    return Ok(state.written);
                }
                // Verification and local failures do not get better on a mirror.
                Err(e @ (RegistryError::SizeMismatch { .. } | RegistryError::Sink { .. })) => {
                    return Err(e)
                }
                Err(e) => {
                    tracing::debug!(host = %ep.host, error = %e, "blob fetch failed");
                    last = Some(e);
                }
            }
        }
        Err(last.expect("pull_endpoints returns at least one endpoint"))
    }

    /// Downloads from one endpoint into `state`, resuming after broken connections.
    async fn fetch_from<W>(
        &self,
        target: &Target<'_>,
        ep: &Endpoint,
        digest: &Digest,
        expected_size: Option<u64>,
        state: &mut Download,
        sink: &mut W,
    ) -> Result<(), RegistryError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let url = ep.url(&format!("v2/{}/blobs/{digest}", target.repository));
        let policy = self.retry_policy();
        let mut breaks = 0;
        loop {
            if expected_size.is_some_and(|s| state.written == s) && state.written > 0 {
                return Ok(()); // everything arrived before the connection broke
            }
            let offset = state.written;
            let resp = self
                .send(target, ep, |http| {
                    let r = http.get(url.clone());
                    if offset > 0 {
                        r.header(RANGE, format!("bytes={offset}-"))
                    } else {
                        r
                    }
                })
                .await?;
            // How many leading bytes of this answer we already have.
            let mut skip = match resp.status() {
                StatusCode::OK => offset,
                StatusCode::PARTIAL_CONTENT => match content_range_start(&resp) {
                    Some(start) if start == offset => 0,
                    other => {
                        return Err(target.error(format!(
                        "asked for {digest} from byte {offset}, got a range starting at {other:?}"
                    )))
                    }
                },
                StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => return Ok(()),
                _ => {
                    return Err(self
                        .status_error(target, &Method::GET, &format!("blob {digest}"), resp)
                        .await)
                }
            };
            if let (Some(expected), Some(len)) = (expected_size, resp.content_length()) {
                let total = if resp.status() == StatusCode::OK {
                    len
                } else {
                    len + offset
                };
                if total != expected {
                    return Err(RegistryError::SizeMismatch {
                        registry: target.registry.into(),
                        repository: target.repository.into(),
                        digest: digest.to_string(),
                        expected,
                        actual: total,
                    });
                }
            }
            let mut stream = resp.bytes_stream();
            let broke = loop {
                let chunk = match stream.next().await {
                    None => break None,
                    Some(Ok(c)) => c,
                    Some(Err(e)) => break Some(e),
                };
                let mut data: &[u8] = &chunk;
                if skip > 0 {
                    let n = (skip as usize).min(data.len());
                    data = &data[n..];
                    skip -= n as u64;
                }
                if data.is_empty() {
                    continue;
                }
                let new_total = state.written + data.len() as u64;
                if let Some(expected) = expected_size.filter(|e| new_total > *e) {
                    return Err(RegistryError::SizeMismatch {
                        registry: target.registry.into(),
                        repository: target.repository.into(),
                        digest: digest.to_string(),
                        expected,
                        actual: new_total,
                    });
                }
                sink.write_all(data)
                    .await
                    .map_err(|source| RegistryError::Sink {
                        registry: target.registry.into(),
                        repository: target.repository.into(),
                        digest: digest.to_string(),
                        source,
                    })?;
                if let Some(digester) = &mut state.digester {
                    digester.update(data);
                }
                state.written = new_total;
            };
            match broke {
                None => return Ok(()),
                Some(e) => {
                    breaks += 1;
                    if breaks >= policy.attempts {
                        return Err(RegistryError::Unreachable {
                            registry: target.registry.into(),
                            message: format!(
                                "downloading {digest} broke off {breaks} times, last at byte {}: {}",
                                state.written,
                                error_chain(&e)
                            ),
                        });
                    }
                    tracing::debug!(%digest, at = state.written, error = %error_chain(&e), "blob download broke; resuming");
                    tokio::time::sleep(policy.delay(breaks)).await;
                }
            }
        }
    }

    /// Downloads a small blob (e.g. an image config) into memory, verified.
    /// Nothing is returned unless the digest matches.
    pub async fn fetch_blob_bytes(
        &self,
        repo: &Reference,
        digest: &Digest,
        max_size: u64,
    ) -> Result<Bytes, RegistryError> {
        let mut buf = BoundedBuf {
            data: Vec::new(),
            limit: max_size,
        };
        match self
            .fetch_blob(repo, digest, None, Verify::Here(None), &mut buf)
            .await
        {
            Ok(_) => Ok(Bytes::from(buf.data)),
            Err(RegistryError::Sink { .. }) => Err(RegistryError::TooLarge {
                registry: repo.domain().into(),
                repository: repo.repository().into(),
                what: format!("blob {digest}"),
                limit: max_size,
            }),
            Err(e) => Err(e),
        }
    }

    /// Pushes a blob of `size` bytes read from `reader`: HEAD first, then a
    /// cross-repository mount from `mount_from` (same registry only), then an
    /// upload: one PUT for blobs up to the configured chunk size, PATCH
    /// chunks for larger ones. What is read is hashed and must match `digest`
    /// before the upload is committed.
    pub async fn push_blob<R>(
        &self,
        repo: &Reference,
        digest: &Digest,
        size: u64,
        mut reader: R,
        mount_from: Option<&Reference>,
    ) -> Result<PushedBlob, RegistryError>
    where
        R: AsyncRead + Unpin,
    {
        let registry = repo.domain();
        let mut target = Target::push(registry, repo.repository());
        let ep = self.endpoint(registry).await?;
        if let Some(existing) = self.head_blob_at(&target, &ep, digest).await? {
            if existing == size {
                return Ok(PushedBlob::Exists);
            }
            return Err(target.error(format!(
                "the registry has {digest} with {existing} bytes, but the local blob has {size}"
            )));
        }
        let mut start = ep.url(&format!("v2/{}/blobs/uploads/", target.repository));
        let mount =
            mount_from.filter(|m| m.domain() == registry && m.repository() != repo.repository());
        if let Some(from) = mount {
            target
                .scopes
                .push(format!("repository:{}:pull", from.repository()));
            start
                .query_pairs_mut()
                .append_pair("mount", &digest.to_string())
                .append_pair("from", from.repository());
        }
        let resp = self
            .send(&target, &ep, |http| {
                http.post(start.clone()).header(CONTENT_LENGTH, "0")
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED if mount.is_some() => return Ok(PushedBlob::Mounted),
            StatusCode::ACCEPTED => {}
            _ => {
                return Err(self
                    .status_error(&target, &Method::POST, "blob upload", resp)
                    .await)
            }
        }
        let mut location = self.location(&target, &ep, &resp)?;
        let chunk_size = self.config().upload.chunk_size.max(1);
        let mut digester = Digester::new(digest.algorithm());
        let src_err = |source: std::io::Error| RegistryError::Source {
            registry: registry.into(),
            repository: repo.repository().into(),
            digest: digest.to_string(),
            source,
        };
        let result: Result<(), RegistryError> = async {
            let mut sent: u64 = 0;
            let mut final_body = Bytes::new();
            if size <= chunk_size as u64 {
                final_body = read_chunk(&mut reader, size as usize)
                    .await
                    .map_err(src_err)?;
                digester.update(&final_body);
                sent = final_body.len() as u64;
            } else {
                while sent < size {
                    let want = (size - sent).min(chunk_size as u64) as usize;
                    let chunk = read_chunk(&mut reader, want).await.map_err(src_err)?;
                    if chunk.is_empty() {
                        break;
                    }
                    digester.update(&chunk);
                    location = self
                        .patch_chunk(&target, &ep, location.clone(), sent, chunk.clone())
                        .await?;
                    sent += chunk.len() as u64;
                }
            }
            // The reader must hold exactly `size` bytes that hash to `digest`.
            let mut probe = [0u8; 1];
            let extra = reader.read(&mut probe).await.map_err(src_err)?;
            if sent != size || extra != 0 {
                return Err(RegistryError::SizeMismatch {
                    registry: registry.into(),
                    repository: repo.repository().into(),
                    digest: digest.to_string(),
                    expected: size,
                    actual: sent + extra as u64,
                });
            }
            check_digest(repo, digest, &digester)?;
            let mut put = location.clone();
            put.query_pairs_mut()
                .append_pair("digest", &digest.to_string());
            let resp = self
                .send(&target, &ep, |http| {
                    http.put(put.clone())
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, final_body.len())
                        .body(final_body.clone())
                })
                .await?;
            if resp.status() == StatusCode::CREATED {
                return Ok(());
            }
            // A PUT whose answer was lost may have committed the blob already.
            if resp.status() == StatusCode::NOT_FOUND
                && self.head_blob_at(&target, &ep, digest).await? == Some(size)
            {
                return Ok(());
            }
            Err(self
                .status_error(&target, &Method::PUT, &format!("blob {digest}"), resp)
                .await)
        }
        .await;
        match result {
            Ok(()) => Ok(PushedBlob::Uploaded),
            Err(e) => {
                // Cancel the upload session so the registry can free its space.
                let _ = self
                    .send(&target, &ep, |http| http.delete(location.clone()))
                    .await;
                Err(e)
            }
        }
    }

    /// Sends one PATCH of a chunked upload and returns the next upload URL.
    /// When a retried PATCH is refused because the first try did arrive,
    /// the upload's status says so and the chunk counts as sent.
    async fn patch_chunk(
        &self,
        target: &Target<'_>,
        ep: &Endpoint,
        location: Url,
        start: u64,
        chunk: Bytes,
    ) -> Result<Url, RegistryError> {
        let end = start + chunk.len() as u64 - 1;
        let resp = self
            .send(target, ep, |http| {
                http.patch(location.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_RANGE, format!("{start}-{end}"))
                    .header(CONTENT_LENGTH, chunk.len())
                    .body(chunk.clone())
            })
            .await?;
        match resp.status() {
            StatusCode::ACCEPTED => self.location(target, ep, &resp),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let status = self
                    .send(target, ep, |http| http.get(location.clone()))
                    .await?;
                let upto = status
                    .headers()
                    .get(RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|r| r.rsplit('-').next())
                    .and_then(|n| n.trim().parse::<u64>().ok());
                if status.status() == StatusCode::NO_CONTENT && upto == Some(end) {
                    return self.location(target, ep, &status);
                }
                Err(target.error(format!(
                    "the registry refused bytes {start}-{end} of the upload and holds up to {upto:?}"
                )))
            }
            _ => Err(self
                .status_error(target, &Method::PATCH, "blob upload chunk", resp)
                .await),
        }
    }

    /// The upload URL from a `Location` header (absolute or relative).
    fn location(
        &self,
        target: &Target<'_>,
        ep: &Endpoint,
        resp: &Response,
    ) -> Result<Url, RegistryError> {
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| target.error("an upload answer has no Location header"))?;
        ep.base
            .join(loc)
            .map_err(|e| target.error(format!("bad upload Location {loc:?}: {e}")))
    }
}

/// Reads exactly `len` bytes unless the reader ends first.
async fn read_chunk<R: AsyncRead + Unpin>(reader: &mut R, len: usize) -> std::io::Result<Bytes> {
    let mut buf = Vec::with_capacity(len);
    (&mut *reader)
        .take(len as u64)
        .read_to_end(&mut buf)
        .await?;
    Ok(Bytes::from(buf))
}

/// An in-memory sink that refuses to grow past a limit.
struct BoundedBuf {
    data: Vec<u8>,
    limit: u64,
}

impl AsyncWrite for BoundedBuf {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.data.len() as u64 + buf.len() as u64 > self.limit {
            return std::task::Poll::Ready(Err(std::io::Error::other(
                "blob exceeds the size limit",
            )));
        }
        self.data.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
