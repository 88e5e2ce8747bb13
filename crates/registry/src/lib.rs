//! berth's registry client: the OCI distribution API (manifests, blobs, uploads, tags),
//! authentication, and pull into / push from the image store.

mod auth;
pub mod blob;
mod client;
mod error;
pub mod hosts;
pub mod manifest;
pub mod mirrors;
pub mod progress;
pub mod pull;
pub mod push;
mod tags;
mod transfer;

pub use auth::Credentials;
pub use client::{Access, Client, Repository};
pub use error::{Error, Result};
pub use manifest::Platform;
pub use progress::{LayerState, Progress, Sink};
pub use pull::Pulled;
pub use push::Pushed;
pub use tags::tags;
pub use transfer::Transfer;
