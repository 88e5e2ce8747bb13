//! The tag list of a repository (for `pull --all-tags`), following `Link` pages.

use std::sync::Arc;

use reqwest::{header, Method};

use crate::client::{check, Access, Client};
use crate::error::{Error, Result};
use crate::Credentials;

/// Pages followed at most; a registry that links on forever is cut off.
const MAX_PAGES: usize = 100;

#[derive(serde::Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// Every tag of `path` on `domain`.
pub async fn tags(
    client: &Arc<Client>,
    domain: &str,
    path: &str,
    credentials: Credentials,
) -> Result<Vec<String>> {
    let repo = client
        .repository(domain, path, credentials, Access::Pull)
        .await?;
    let mut url = repo.url("tags/list");
    let mut out = Vec::new();
    for _ in 0..MAX_PAGES {
        let resp = check(
            repo.send(&url, |r| r, Method::GET).await?,
            &format!("tags of {}", repo.name()),
        )
        .await?;
        let next = resp
            .headers()
            .get(header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let body = resp.bytes().await.map_err(|e| Error::http(&url, &e))?;
        let list: TagList = serde_json::from_slice(&body).map_err(|e| Error::InvalidManifest {
            what: format!("tag list of {}", repo.name()),
            why: e.to_string(),
        })?;
        out.extend(list.tags.unwrap_or_default());
        match next {
            Some(link) => url = repo.resolve(&link)?.to_string(),
            None => return Ok(out),
        }
    }
    Ok(out)
}

/// `</v2/x/tags/list?n=2&last=b>; rel="next"` -> the link.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (link, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            link.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn link_header() {
        assert_eq!(
            super::next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(super::next_link("</x>; rel=\"prev\""), None);
    }
}
