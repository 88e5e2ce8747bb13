//! The Docker Engine API over a unix socket: [`server`] (what berthd serves) and [`client`]
//! (what the berth CLI speaks).
// /info is one large json! literal.
#![recursion_limit = "256"]

pub mod client;
pub mod detach;
pub mod humanize;
pub mod server;
pub mod version;
