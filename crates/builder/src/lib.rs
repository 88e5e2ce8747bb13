//! berth's Dockerfile builder: the parser (BuildKit's frontend rules: directives,
//! continuations, heredocs, JSON and shell forms), variable substitution, the instructions
//! grouped in stages, `.dockerignore`, and the build itself (context, layer cache, steps).

pub mod build;
mod error;
pub mod ignore;
pub mod instructions;
pub mod parser;
pub mod shell;

pub use build::prune::PruneOptions;
pub use build::{Builder, Message, Options, RunEvent, RunSpec, Runner};
pub use error::{Error, Result};
