//! Image references normalized as Docker does: `busybox` is
//! `docker.io/library/busybox:latest`, `localhost:5000/x/y:tag` keeps its registry, and a
//! reference may carry a digest (`name@sha256:...`).

use std::fmt;

use crate::digest::Digest;
use crate::error::{Error, Result};

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
const MAX_NAME: usize = 255;

/// A normalized reference: a repository and a tag, a digest, or both.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// Fully qualified: `docker.io/library/busybox`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

fn invalid(reference: &str, why: &'static str) -> Error {
    Error::InvalidReference {
        reference: reference.into(),
        why,
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

/// host[:port], host being DNS labels or a bracketed IPv6 address.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => {
            if h.starts_with('[') && !h.ends_with(']') {
                (d, None)
            } else {
                (h, Some(p))
            }
        }
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|c| word(*c) || *c == b'.' || *c == b'-')
}

impl Reference {
    /// Parse and normalize; a missing tag stays missing (see [`Reference::with_default_tag`]).
    pub fn parse(s: &str) -> Result<Reference> {
        if s.is_empty() {
            return Err(invalid(s, "empty"));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (
                n,
                Some(Digest::parse(d).map_err(|_| invalid(s, "invalid digest"))?),
            ),
            None => (s, None),
        };
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].find(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(invalid(s, "invalid tag"));
            }
        }
        if name.len() > MAX_NAME {
            return Err(invalid(
                s,
                "repository name must not be more than 255 characters",
            ));
        }
        let (domain, path) = split_domain(name);
        if !valid_domain(&domain) {
            return Err(invalid(s, "invalid registry host"));
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid(s, "repository name must be lowercase"));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(invalid(s, "invalid repository name"));
        }
        if domain == DEFAULT_DOMAIN
            && path.len() == 64 + "library/".len()
            && path.starts_with("library/")
            && path[8..].bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(invalid(s, "cannot specify 64-byte hexadecimal strings"));
        }
        Ok(Reference {
            repository: format!("{domain}/{path}"),
            tag: tag.map(String::from),
            digest,
        })
    }

    /// With `latest` when neither a tag nor a digest was given.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.into());
        }
        self
    }

    /// `repository:tag`, fully qualified (the key tags are stored under).
    pub fn tagged(&self) -> Option<String> {
        self.tag
            .as_ref()
            .map(|t| format!("{}:{t}", self.repository))
    }

    /// `repository@digest`, fully qualified.
    pub fn digested(&self) -> Option<String> {
        self.digest
            .as_ref()
            .map(|d| format!("{}@{d}", self.repository))
    }

    /// The registry the repository lives on: `docker.io`, `localhost:5000`.
    pub fn domain(&self) -> &str {
        self.repository
            .split_once('/')
            .map_or(DEFAULT_DOMAIN, |(d, _)| d)
    }

    /// The repository's path on its registry: `library/busybox`.
    pub fn path(&self) -> &str {
        self.repository
            .split_once('/')
            .map_or(self.repository.as_str(), |(_, p)| p)
    }

    /// The repository as Docker shows it: `busybox`, `user/app`, `localhost:5000/x`.
    pub fn familiar_repository(&self) -> String {
        familiar(&self.repository)
    }

    /// The whole reference as Docker shows it (distribution's FamiliarString):
    /// `busybox:1`, `localhost:5000/x@sha256:...`.
    pub fn familiar_string(&self) -> String {
        let mut out = self.familiar_repository();
        if let Some(t) = &self.tag {
            out.push(':');
            out.push_str(t);
        }
        if let Some(d) = &self.digest {
            out.push('@');
            out.push_str(&d.to_string());
        }
        out
    }
}

/// A fully qualified repository in Docker's short form.
pub fn familiar(repository: &str) -> String {
    let rest = match repository.strip_prefix("docker.io/") {
        Some(r) => r,
        None => return repository.to_string(),
    };
    rest.strip_prefix("library/")
        .filter(|r| !r.contains('/'))
        .unwrap_or(rest)
        .to_string()
}

/// Docker's rule: the first component is a registry if it has a '.' or ':' or is localhost.
fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        DEFAULT_DOMAIN.to_string()
    } else {
        domain
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    (domain, path)
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        for (input, want) in [
            ("busybox", "docker.io/library/busybox:latest"),
            ("user/app:0.0.1", "docker.io/user/app:0.0.1"),
            ("localhost:5000/x/y:tag", "localhost:5000/x/y:tag"),
            ("localhost/app", "localhost/app:latest"),
            (
                "index.docker.io/library/alpine:3",
                "docker.io/library/alpine:3",
            ),
            ("127.0.0.1:5000/a", "127.0.0.1:5000/a:latest"),
            ("[::1]:5000/a:v1", "[::1]:5000/a:v1"),
            (
                "my.registry/a__b/c-d.e_f:v1.2-x",
                "my.registry/a__b/c-d.e_f:v1.2-x",
            ),
        ] {
            let r = Reference::parse(input).expect(input).with_default_tag();
            assert_eq!(r.to_string(), want, "{input}");
        }
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = Reference::parse(&format!("busybox@{d}"))
            .expect("digest")
            .with_default_tag();
        assert_eq!(r.tag, None);
        assert_eq!(
            r.digested().as_deref(),
            Some(format!("docker.io/library/busybox@{d}").as_str())
        );
        assert_eq!(familiar("docker.io/library/busybox"), "busybox");
        assert_eq!(familiar("docker.io/user/app"), "user/app");
        assert_eq!(familiar("localhost:5000/x"), "localhost:5000/x");
        for (input, want) in [
            ("docker.io/library/bb:2", "bb:2"),
            ("user/app", "user/app:latest"),
            ("localhost:5000/x/y:v", "localhost:5000/x/y:v"),
        ] {
            let r = Reference::parse(input).expect(input).with_default_tag();
            assert_eq!(r.familiar_string(), want, "{input}");
        }
        let pinned = Reference::parse(&format!("busybox@{d}")).expect("digest");
        assert_eq!(pinned.familiar_string(), format!("busybox@{d}"));
    }

    #[test]
    fn refuses_what_docker_refuses() {
        for bad in [
            "UPPER:case",
            "a::b",
            "",
            "a/",
            "/a",
            "a//b",
            "a:",
            "a@sha256:12",
            "-a",
            "a-",
            "a..b",
            "host:port/a",
            &"a".repeat(256),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
