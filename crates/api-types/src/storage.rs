//! What images and containers share about their storage (moby's api/types/storage).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The storage driver's name and facts about the image's or container's layers (for
/// overlay2: LowerDir, UpperDir, MergedDir, WorkDir).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriverData {
    pub data: BTreeMap<String, String>,
    pub name: String,
}
