//! The Docker Engine API over a unix socket: [`server`] is what berthd serves.
// /info is one large json! literal.
#![recursion_limit = "256"]

pub mod server;
pub mod version;
