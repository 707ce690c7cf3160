//! cordon's egress proxy: an HTTP forward proxy (CONNECT for TLS) that decides every request
//! against the domain allow-list, resolves names itself, refuses local destinations unless
//! allowed, checks that a CONNECT host, a Host header and a TLS SNI name one destination, and
//! answers refusals in words an agent reads as policy. It serves a listener it is handed and
//! knows nothing of namespaces; every decision goes out as plain data on a channel.
#![forbid(unsafe_code)]

mod counted;
pub mod http;
pub mod refusal;
mod relay;
mod server;
pub mod sni;
// splice(2) is Linux's; so is the thread pool, which only the splice relay uses (its test
// runs where it is built). Other targets relay tunnels with tokio (`relay.rs`).
#[cfg(target_os = "linux")]
mod splice;
#[cfg(target_os = "linux")]
mod threads;

pub use server::{
    start, Ask, ClientCheck, Clients, Decision, OnRefusal, Outcome, Proxy, FOREIGN_CLIENT,
};
