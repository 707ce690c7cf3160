//! cordon's egress proxy. So far the pure half: reading what a sandboxed client asks for
//! (an HTTP request head, a TLS ClientHello) and checking that it names one destination
//! consistently, so the allow-list decision cannot be dodged by a disagreeing Host header or
//! by domain fronting. The listener and the relay come with issue 3.
#![forbid(unsafe_code)]

pub mod http;
pub mod sni;
