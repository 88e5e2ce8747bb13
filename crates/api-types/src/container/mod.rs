//! (filled in by the typed-models work)

// The create and update requests (config.rs, with mount.rs for HostConfig.Mounts) and the
// rules they are decoded by (decode.rs, unsupported.rs).
mod config;
pub mod decode;
mod mount;
mod unsupported;

pub use config::*;
pub use decode::DecodeError;
pub use mount::*;
