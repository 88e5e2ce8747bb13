//! What a pull or push reports as it goes, per layer, in the order Docker reports it; the
//! API turns these into its JSON progress messages and the berth CLI into bars.

use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A pull of `tag` from `repository` began (`Pulling from library/busybox`).
    Pulling { repository: String, tag: String },
    /// A push to `repository` began (`The push refers to repository [...]`).
    Pushing { repository: String },
    /// A layer's state; `id` is its blob digest shortened, as Docker shows it.
    Layer { id: String, state: LayerState },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerState {
    /// Pull: queued.
    Waiting,
    AlreadyExists,
    Downloading {
        current: u64,
        total: u64,
    },
    DownloadComplete,
    PullComplete,
    /// Push: about to look at the registry.
    Preparing,
    Uploading {
        current: u64,
        total: u64,
    },
    Pushed,
    MountedFrom(String),
    /// Push: the registry had it.
    Exists,
}

/// Where progress goes; called from the tasks that move the layers.
pub type Sink = Arc<dyn Fn(Progress) + Send + Sync>;

/// Report byte counts at most every this many bytes (and at the end).
pub(crate) const STEP: u64 = 512 * 1024;

/// A byte counter that reports through `sink` in steps.
pub(crate) fn byte_reporter(
    sink: Sink,
    id: String,
    total: u64,
    state: fn(u64, u64) -> LayerState,
) -> impl FnMut(u64) + Send {
    let mut last = 0u64;
    move |current| {
        if current == total || current >= last + STEP {
            last = current;
            sink(Progress::Layer {
                id: id.clone(),
                state: state(current, total),
            });
        }
    }
}
