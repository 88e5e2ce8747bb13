//! Image archives: docker-archive (`docker save`) and OCI image layout tars.

mod import;
mod load;
mod save;
mod spool;

pub use import::import;
pub use load::{load, Progress};
pub use save::save;
