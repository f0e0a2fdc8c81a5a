//! Tag listing (`pull -a`), following the registry's pagination links.

use berth_image::reference::Reference;
use reqwest::header::LINK;
use reqwest::{Method, StatusCode};

use crate::client::{read_limited, Client, ReadError, Target};
use crate::error::RegistryError;

/// Bound on one page of the tag list.
const MAX_TAGS_PAGE: usize = 16 << 20;
/// Bound on the number of pages followed, against a registry that links in circles.
const MAX_PAGES: usize = 1000;

#[derive(serde::Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// The target of a `Link: <...>; rel="next"` header.
fn next_link(value: &str) -> Option<&str> {
    value.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then_some(url)
    })
}

impl Client {
    /// Every tag of `repo`'s repository, in the registry's order.
    pub async fn list_tags(&self, repo: &Reference) -> Result<Vec<String>, RegistryError> {
        let registry = repo.domain();
        let target = Target::pull(registry, repo.repository());
        let mut last = None;
        'endpoints: for candidate in self.pull_endpoints(registry).await {
            let ep = match self.resolve(registry, candidate).await {
                Ok(ep) => ep,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let mut url = ep.url(&format!("v2/{}/tags/list", target.repository));
            let mut tags = Vec::new();
            for _ in 0..MAX_PAGES {
                let resp = match self.send(&target, &ep, |http| http.get(url.clone())).await {
                    Ok(r) => r,
                    Err(e) => {
                        last = Some(e);
                        continue 'endpoints;
                    }
                };
                if resp.status() != StatusCode::OK {
                    last = Some(
                        self.status_error(&target, &Method::GET, "tag list", resp)
                            .await,
                    );
                    continue 'endpoints;
                }
                let next = resp
                    .headers()
                    .get(LINK)
                    .and_then(|v| v.to_str().ok())
                    .and_then(next_link)
                    .map(str::to_string);
                let body = read_limited(resp, MAX_TAGS_PAGE)
                    .await
                    .map_err(|e| match e {
                        ReadError::TooLarge => RegistryError::TooLarge {
                            registry: registry.into(),
                            repository: repo.repository().into(),
                            what: "tag list page".into(),
                            limit: MAX_TAGS_PAGE as u64,
                        },
                        ReadError::Body(m) => RegistryError::Unreachable {
                            registry: registry.into(),
                            message: m,
                        },
                    })?;
                let page: TagList = serde_json::from_slice(&body)
                    .map_err(|e| target.error(format!("unreadable tag list: {e}")))?;
                tags.extend(page.tags.unwrap_or_default());
                match next {
                    Some(n) => {
                        url = ep
                            .base
                            .join(&n)
                            .map_err(|e| target.error(format!("bad tag list link {n:?}: {e}")))?;
                    }
                    None => return Ok(tags),
                }
            }
            return Err(target.error(format!("the tag list has more than {MAX_PAGES} pages")));
        }
        Err(last.expect("pull_endpoints returns at least one endpoint"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/foo/tags/list?last=b&n=2>; rel="next""#),
            Some("/v2/foo/tags/list?last=b&n=2")
        );
        assert_eq!(next_link(r#"<a>; rel="prev", <b>; rel=next"#), Some("b"));
        assert_eq!(next_link("garbage"), None);
    }
}
