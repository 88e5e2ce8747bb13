//! `state` and `list`.

use crate::error::Result;
use crate::state::{Report, StateRoot};

pub fn state(root: &StateRoot, id: &str) -> Result<Report> {
    // runc leaves the owner empty in `state` and fills it in `list`.
    let mut report = root.load(id)?.report();
    report.owner.clear();
    Ok(report)
}

pub fn list(root: &StateRoot) -> Result<Vec<Report>> {
    Ok(root.list()?.iter().map(|c| c.report()).collect())
}
