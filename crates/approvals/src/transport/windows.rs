//! The control channel on Windows: a named pipe `\\.\pipe\cordon-approvals-RUN-RANDOM` whose
//! DACL admits only cordon's user and SYSTEM (`cordon_windows::exec::pipe`); the client's
//! token is read by impersonation (identification level) and must be that user's, not
//! restricted. The name is random, so nobody can take it first; if somebody did, creating it
//! fails (first instance only) rather than joining their pipe.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cordon_windows::exec::pipe::{self, PipeServer};

pub type Stream = File;

pub struct Listener(PipeServer);

/// Creates the run's pipe; returns the listener and its name (as the endpoint's address).
pub fn bind(_dir: &Path, run: &str) -> io::Result<(Listener, PathBuf)> {
    let name = format!(
        r"\\.\pipe\cordon-approvals-{run}-{}",
        &crate::token::random()?[..16]
    );
    let server = PipeServer::bind_own_user(&name)?;
    Ok((Listener(server), PathBuf::from(name)))
}

impl Listener {
    pub fn accept(&mut self) -> io::Result<Stream> {
        self.0.accept()
    }
}

/// Whether the client is this process's user with an unrestricted token. Only after the
/// first read from `conn` (Windows lends the client's token from then on).
pub fn peer_is_own_user(conn: &Stream) -> bool {
    match (pipe::client_identity(conn), pipe::own_user()) {
        (Ok((user, restricted)), Ok(me)) => user == me && !restricted,
        _ => false,
    }
}

/// Before anything is read: whether the client's process runs as this user, unrestricted
/// (a restricted or another user's process is closed unread, so it cannot hold one of the
/// bounded connections by staying silent).
pub fn peer_may_be_own_user(conn: &Stream) -> bool {
    match (pipe::client_process_identity(conn), pipe::own_user()) {
        (Ok((user, restricted)), Ok(me)) => user == me && !restricted,
        _ => false,
    }
}

/// A connection to the pipe `address`; an absent one is an error.
pub fn connect(address: &Path) -> io::Result<Stream> {
    let name = address.to_string_lossy();
    pipe::connect(&name, Duration::from_secs(5))?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no pipe {name}")))
}

/// Whether the server at the other end is process `pid`.
pub fn server_is(conn: &Stream, pid: u32) -> bool {
    pipe::server_pid(conn).is_ok_and(|p| p == pid)
}

pub fn try_clone(conn: &Stream) -> io::Result<Stream> {
    conn.try_clone()
}

/// Synchronous pipes have no read timeout: a process of this user that may read the pipe (a
/// restricted or low-integrity one can) could hold a thread by staying silent, so
/// `Control` serves a bounded number of connections at once.
pub fn set_read_timeout(_conn: &Stream, _timeout: Duration) -> io::Result<()> {
    Ok(())
}

/// A pipe's name goes with its last handle.
pub fn remove(_address: &Path) {}

pub fn hint_for(_e: &io::Error, _state: &Path) -> String {
    String::new()
}
