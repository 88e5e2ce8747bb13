//! One module per group of commands.

pub mod containers;
pub mod images;
pub mod registry;
pub mod system;

use std::collections::BTreeMap;

use anyhow::{bail, Result};

/// `--filter key=value` flags as the API's `filters` JSON.
pub fn filters_json(flags: &[String]) -> Result<Option<String>> {
    if flags.is_empty() {
        return Ok(None);
    }
    let mut map: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for f in flags {
        let Some((k, v)) = f.split_once('=') else {
            bail!("bad format of filter (expected name=value): {f}");
        };
        map.entry(k.to_string())
            .or_default()
            .insert(v.to_string(), true);
    }
    Ok(Some(serde_json::to_string(&map)?))
}
