//! API versions: what /_ping advertises and which `/v1.NN/` prefixes are accepted.

/// The newest API version berth implements; the docker CLI negotiates down to it.
pub const MAX: ApiVersion = ApiVersion(1, 50);
/// The oldest accepted, as moby's.
pub const MIN: ApiVersion = ApiVersion(1, 24);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (major, minor) = s.split_once('.')?;
        Some(ApiVersion(major.parse().ok()?, minor.parse().ok()?))
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Split `/v1.41/images/json` into the version and the route.
pub fn split_path(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(slash) = rest.find('/') {
            let v = &rest[..slash];
            if v.contains('.') && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return (Some(v), &rest[slash..]);
            }
        }
    }
    (None, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(
            split_path("/v1.41/images/json"),
            (Some("1.41"), "/images/json")
        );
        assert_eq!(split_path("/images/json"), (None, "/images/json"));
        assert_eq!(split_path("/version"), (None, "/version"));
        assert!(ApiVersion::parse("1.40").expect("v") < MAX);
    }
}
