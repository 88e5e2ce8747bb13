//! berth's images: references, the content store, layer unpacking, snapshots and the image
//! store with its archive formats.

pub mod archive;
pub mod config;
pub mod content;
pub mod digest;
pub mod dir_size;
mod error;
pub mod graft;
pub mod layer;
pub mod layer_from_dir;
pub mod manifest;
mod meta;
pub mod overlay;
pub mod platform;
pub mod reference;
pub mod store;
pub mod tarball;
pub mod unpack;

pub use config::{DockerOCIImage, DockerOCIImageConfig, HealthcheckConfig};
pub use digest::Digest;
pub use error::{Error, Result};
pub use meta::{ImageRecord, LayerRecord};
/// oci-spec's image types (manifests, indexes, descriptors, the OCI parts of configs).
pub use oci_spec::image as oci;
pub use platform::Platform;
pub use reference::Reference;
pub use store::{Image, ImageStore, Removal};
