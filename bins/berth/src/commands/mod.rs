//! One module per group of commands.

pub mod build;
pub mod containers;
pub mod events;
pub mod images;
pub mod networks;
pub mod registry;
pub mod system;
pub mod volumes;

use std::collections::BTreeMap;

use anyhow::{bail, Result};

/// `key=value` flags as a map (a key alone has an empty value, as the docker CLI's).
pub fn key_value_map(flags: &[String]) -> BTreeMap<String, String> {
    flags
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (f.clone(), String::new()),
        })
        .collect()
}

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

/// Hand each line of a response's JSON message stream (load, import, pull, push) to
/// `handle` as it arrives; the first error stops the handling (the rest is read and dropped)
/// and is returned.
pub async fn for_each_message(
    resp: hyper::Response<hyper::body::Incoming>,
    mut handle: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut pending = Vec::new();
    let mut failure = None;
    berth_api::client::for_each_chunk(resp, |chunk| {
        pending.extend_from_slice(chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = &line[..line.len() - 1];
            if failure.is_none() && !line.is_empty() {
                failure = handle(line).err();
            }
        }
        Ok(())
    })
    .await?;
    if failure.is_none() && !pending.is_empty() {
        failure = handle(&pending).err();
    }
    failure.map_or(Ok(()), Err)
}
