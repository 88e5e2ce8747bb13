//! A build context the daemon fetches (`POST /build?remote=URL`), as dockerd's
//! remotecontext: an http(s) URL whose answer is `text/plain` is the Dockerfile of an
//! otherwise empty context; any other answer is the context's tar (plain or compressed).
//! Git URLs (dockerd clones them) are refused by name.

use crate::{Error, Result};

/// Whether `url` names a Git repository, as moby's urlutil.IsGitURL and IsGitTransport.
pub fn is_git_url(url: &str) -> bool {
    let http = url.starts_with("http://") || url.starts_with("https://");
    url.starts_with("git://")
        || url.starts_with("git@")
        || url.starts_with("github.com/")
        || (http && (url.split('#').next().unwrap_or(url).ends_with(".git")))
}

/// The context at `url` as a tar stream; `dockerfile`: the name a fetched Dockerfile takes.
pub fn fetch(url: &str, dockerfile: &str) -> Result<Vec<u8>> {
    if is_git_url(url) {
        return Err(Error::Invalid(format!(
            "remote build context {url}: Git repositories are not fetched by berth (clone it and build the directory, or give a tar or Dockerfile URL)"
        )));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::Invalid(format!(
            "remote build context {url}: only http:// and https:// URLs are supported"
        )));
    }
    let download = super::copy::http_get(url, &format!("remote build context {url}"))?;
    if download.content_type.starts_with("text/plain") {
        return dockerfile_context(dockerfile, &download.bytes);
    }
    Ok(download.bytes)
}

/// A tar holding only `name` with `content` (dockerd's newArchiveFromDockerfile).
fn dockerfile_context(name: &str, content: &[u8]) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    let name = if name.is_empty() { "Dockerfile" } else { name };
    tar.append_data(&mut header, name, content)
        .and_then(|()| tar.into_inner())
        .map_err(|e| Error::Invalid(format!("making the context of a fetched Dockerfile: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls_as_moby_tells_them() {
        for git in [
            "git://example.com/repo",
            "git@github.com:a/b.git",
            "github.com/a/b",
            "https://example.com/a/b.git",
            "https://example.com/a/b.git#main:dir",
        ] {
            assert!(is_git_url(git), "{git}");
        }
        for plain in [
            "https://example.com/ctx.tar.gz",
            "http://127.0.0.1:8000/Dockerfile.txt",
        ] {
            assert!(!is_git_url(plain), "{plain}");
        }
    }

    #[test]
    fn a_fetched_dockerfile_is_a_context_of_one_file() {
        let tar_bytes = dockerfile_context("Dockerfile", b"FROM scratch\n").expect("tar");
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["Dockerfile"]);
    }
}
