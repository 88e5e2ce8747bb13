//! The lifecycle operations, one module each, as runc's command line exposes them.

mod cleanup;
mod create;
mod delete;
mod events;
mod exec;
pub(crate) mod host_mounts;
mod init;
mod kill;
mod pause;
mod ps;
mod query;
mod run;
mod start;
mod update;

pub use create::{create, CreateOptions, Created};
pub use delete::delete;
pub use events::{events, stats, Event};
pub use exec::{exec, ExecOptions};
pub use kill::kill;
pub use pause::{pause, resume};
pub use ps::{ps, ProcessInfo};
pub use query::{list, state};
pub use run::{run, RunOptions};
pub use start::start;
pub use update::update;

/// Connect to a --console-socket (done by the runtime process, before anything is forked).
pub fn connect_console_socket(
    path: &std::path::Path,
) -> crate::Result<std::os::unix::net::UnixStream> {
    crate::console::connect(path)
}

/// Receive the pty master that init sends on a console socket.
pub use crate::console::receive_master;
