//! `state` and `list`.

use crate::error::Result;
use crate::state::{Report, StateRoot};

pub fn state(root: &StateRoot, id: &str) -> Result<Report> {
    Ok(root.load(id)?.report())
}

pub fn list(root: &StateRoot) -> Result<Vec<Report>> {
    Ok(root.list()?.iter().map(|c| c.report()).collect())
}
