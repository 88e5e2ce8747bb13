//! berth's images: references, the content store, layer unpacking, snapshots and the image
//! store with its archive formats.

pub mod content;
pub mod digest;
mod error;
pub mod reference;
pub mod unpack;

pub use digest::Digest;
pub use error::{Error, Result};
pub use reference::Reference;
