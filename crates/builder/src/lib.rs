//! berth's Dockerfile builder: the parser (BuildKit's frontend rules: directives,
//! continuations, heredocs, JSON and shell forms), variable substitution, the instructions
//! grouped in stages, `.dockerignore`, and the build itself (context, layer cache, steps).

mod error;
pub mod ignore;
pub mod instructions;
pub mod parser;
pub mod shell;

pub use error::{Error, Result};
