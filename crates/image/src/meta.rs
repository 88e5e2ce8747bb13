//! The image store's metadata, in one redb database (ACID: a load, tag or delete commits
//! whole or not at all).
//!
//! Tables (keys and values are UTF-8 / JSON):
//! - `images`:    image id (`sha256:<config digest>`) -> [`ImageRecord`]
//! - `tags`:      `docker.io/library/busybox:latest`  -> image id
//! - `snapshots`: chain id                            -> [`SnapshotRecord`]

use redb::{Database, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};

pub(crate) const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
pub(crate) const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
pub(crate) const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");

/// One layer of an image as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRecord {
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// The blob as stored in the content store (maybe compressed).
    pub blob: Digest,
    pub media_type: String,
    pub blob_size: u64,
    /// ChainID: identifies the snapshot holding this layer on top of its parents.
    pub chain_id: Digest,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    pub id: Digest,
    /// The OCI manifest berth wrote for it (for save and push).
    pub manifest: Digest,
    pub layers: Vec<LayerRecord>,
    /// Unpacked size of all layers.
    pub size: u64,
    /// `repository@digest` of registries it came from.
    pub repo_digests: Vec<String>,
    /// Unix seconds of the last tag change (Docker's Metadata.LastTagTime).
    pub last_tag_time: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub parent: Option<Digest>,
    pub diff_id: Digest,
    pub size: u64,
    /// Images whose chain includes this snapshot. Zero for a layer an unfinished pull
    /// kept so that its retry need not fetch it again (`blob` is then its blob).
    pub refs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<Digest>,
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Meta(format!("corrupt {what} record: {e}")))
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::Meta(e.to_string()))
}

/// Open (or create) the database and its tables.
pub(crate) fn open(path: &std::path::Path) -> Result<Database> {
    let db = Database::create(path)?;
    let txn = db.begin_write()?;
    txn.open_table(IMAGES)?;
    txn.open_table(TAGS)?;
    txn.open_table(SNAPSHOTS)?;
    txn.commit()?;
    Ok(db)
}

/// Every (key, value) of a JSON table.
pub(crate) fn all<T: DeserializeOwned>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    what: &str,
) -> Result<Vec<(String, T)>> {
    let txn = db.begin_read()?;
    let t = txn.open_table(table)?;
    let mut out = Vec::new();
    for item in t.iter()? {
        let (k, v) = item?;
        out.push((k.value().to_string(), decode(v.value(), what)?));
    }
    Ok(out)
}

pub(crate) fn all_tags(db: &Database) -> Result<Vec<(String, String)>> {
    let txn = db.begin_read()?;
    let t = txn.open_table(TAGS)?;
    let mut out = Vec::new();
    for item in t.iter()? {
        let (k, v) = item?;
        out.push((k.value().to_string(), v.value().to_string()));
    }
    Ok(out)
}
