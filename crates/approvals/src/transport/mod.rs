//! The control channel's transport, one per OS: a Unix socket in the state folder, or a
//! Windows named pipe whose DACL admits only cordon's user. Each gives a listener, a
//! stream that reads and writes, the check that the peer is cordon's own user, and the
//! client's connect.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;
