//! One-time tokens for the streaming URLs, as the kubelet's request cache hands them out:
//! 8 random bytes in unpadded URL-safe base64, valid for a minute, good for one request,
//! at most 1000 outstanding (the oldest expired ones are swept first).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;

pub const TOKEN_TTL: Duration = Duration::from_secs(60);
pub const MAX_IN_FLIGHT: usize = 1000;
const TOKEN_BYTES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("maximum number of in-flight requests exceeded")]
    TooMany,
    #[error("reading random bytes for a token: {0}")]
    Random(std::io::Error),
}

struct Cached<T> {
    request: T,
    expires: Instant,
}

/// Requests waiting for their client, by token.
pub struct RequestCache<T> {
    ttl: Duration,
    max: usize,
    entries: Mutex<HashMap<String, Cached<T>>>,
}

impl<T> RequestCache<T> {
    pub fn new(ttl: Duration, max: usize) -> Self {
        RequestCache {
            ttl,
            max,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Stores `request` under a new token.
    pub fn insert(&self, request: T) -> Result<String, TokenError> {
        let token = new_token()?;
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, c| c.expires > now);
        if entries.len() >= self.max {
            return Err(TokenError::TooMany);
        }
        entries.insert(
            token.clone(),
            Cached {
                request,
                expires: now + self.ttl,
            },
        );
        Ok(token)
    }

    /// Takes the request of `token` out, if it is there and not expired.
    pub fn consume(&self, token: &str) -> Option<T> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let cached = entries.remove(token)?;
        (cached.expires > Instant::now()).then_some(cached.request)
    }
}

fn new_token() -> Result<String, TokenError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(TokenError::Random)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_good_once() -> Result<(), TokenError> {
        let cache = RequestCache::new(TOKEN_TTL, MAX_IN_FLIGHT);
        let a = cache.insert("a")?;
        let b = cache.insert("b")?;
        assert_ne!(a, b);
        assert_eq!(a.len(), 11, "8 bytes of unpadded base64");
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(cache.consume(&b), Some("b"));
        assert_eq!(cache.consume(&b), None);
        assert_eq!(cache.consume("nonsense"), None);
        assert_eq!(cache.consume(&a), Some("a"));
        Ok(())
    }

    #[test]
    fn an_expired_token_is_refused() -> Result<(), TokenError> {
        let cache = RequestCache::new(Duration::ZERO, MAX_IN_FLIGHT);
        let a = cache.insert(1)?;
        assert_eq!(cache.consume(&a), None);
        Ok(())
    }

    #[test]
    fn in_flight_requests_are_bounded_and_expired_ones_make_room() -> Result<(), TokenError> {
        let cache = RequestCache::new(TOKEN_TTL, 2);
        cache.insert(1)?;
        cache.insert(2)?;
        assert!(matches!(cache.insert(3), Err(TokenError::TooMany)));
        let expiring = RequestCache::new(Duration::ZERO, 1);
        expiring.insert(1)?;
        expiring.insert(2)?;
        Ok(())
    }
}
