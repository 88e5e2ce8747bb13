//! Query strings: repeated keys kept, Docker's booleans (`1`, `true`, `True`).

#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn bool(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true" | "True" | "TRUE"))
    }

    /// `platform=os/arch[/variant]` (None when absent or empty).
    pub fn platform(&self) -> Result<Option<berth_image::Platform>, berth_image::Error> {
        self.get("platform")
            .filter(|p| !p.is_empty())
            .map(berth_image::Platform::parse)
            .transpose()
    }

    /// `platform=` as a JSON-encoded OCI platform (API 1.46+'s push, 1.48+'s history, as
    /// moby's DecodePlatform): None when absent or empty; OS and architecture both required.
    pub fn json_platform(&self) -> super::error::ApiResult<Option<berth_image::Platform>> {
        self.get("platform")
            .filter(|p| !p.is_empty())
            .map(decode_platform)
            .transpose()
    }

    /// Every `key=` platform (API 1.48+'s save and load take several `platform`, 1.50+'s
    /// image delete `platforms`), as [`Self::json_platform`].
    pub fn json_platforms(&self, key: &str) -> super::error::ApiResult<Vec<berth_image::Platform>> {
        self.all(key)
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| decode_platform(p))
            .collect()
    }
}

/// moby's DecodePlatform: a JSON OCI platform with its OS and architecture.
fn decode_platform(raw: &str) -> super::error::ApiResult<berth_image::Platform> {
    let bad = |why: String| super::error::ApiError::bad_request(why);
    let p: berth_image::Platform =
        serde_json::from_str(raw).map_err(|e| bad(format!("failed to parse platform: {e}")))?;
    if p.os.is_empty() || p.architecture.is_empty() {
        return Err(bad("both OS and Architecture must be provided".into()));
    }
    Ok(p)
}

/// A time bound (`since`, `until`): unix seconds (with a fraction) or an RFC 3339 time.
pub fn time_bound(v: Option<&str>) -> super::error::ApiResult<Option<f64>> {
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(secs) = v.parse::<f64>() {
        return Ok(Some(secs));
    }
    humantime::parse_rfc3339_weak(v.trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| Some(d.as_secs_f64()))
        .ok_or_else(|| super::error::ApiError::bad_request(format!("invalid time {v:?}")))
}
