//! The control channel on Unix: `STATE/approvals/RUN.sock`, mode 0600, the peer's uid read
//! with SO_PEERCRED.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub type Stream = UnixStream;

pub struct Listener(UnixListener);

/// Binds `DIR/RUN.sock` (a stale one is replaced); returns the listener and its address.
pub fn bind(dir: &Path, run: &str) -> io::Result<(Listener, PathBuf)> {
    let socket = dir.join(format!("{run}.sock"));
    match fs::remove_file(&socket) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&socket)?;
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o600))?;
    Ok((Listener(listener), socket))
}

impl Listener {
    pub fn accept(&mut self) -> io::Result<Stream> {
        self.0.accept().map(|(s, _)| s)
    }
}

/// Whether the peer runs as this process's user.
pub fn peer_is_own_user(conn: &Stream) -> bool {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    match getsockopt(conn, PeerCredentials) {
        Ok(cred) => cred.uid() == nix::unistd::geteuid().as_raw(),
        Err(_) => false,
    }
}

/// Before anything is read: the same check (SO_PEERCRED needs no read).
pub fn peer_may_be_own_user(conn: &Stream) -> bool {
    peer_is_own_user(conn)
}

/// A connection to `address`; a refused or absent socket is an error.
pub fn connect(address: &Path) -> io::Result<Stream> {
    UnixStream::connect(address)
}

/// Whether the server at the other end is process `pid` (a socket's peer credentials).
pub fn server_is(conn: &Stream, pid: u32) -> bool {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    getsockopt(conn, PeerCredentials).is_ok_and(|c| c.pid() as u32 == pid)
}

pub fn try_clone(conn: &Stream) -> io::Result<Stream> {
    conn.try_clone()
}

/// A silent peer does not hold its thread for ever.
pub fn set_read_timeout(conn: &Stream, timeout: Duration) -> io::Result<()> {
    conn.set_read_timeout(Some(timeout))
}

/// The address is gone once the server is (the socket file).
pub fn remove(address: &Path) {
    let _ = fs::remove_file(address);
}

/// An error that says a Unix socket's path may be too long for the kernel.
pub fn hint_for(e: &io::Error, state: &Path) -> String {
    match e.raw_os_error() {
        None | Some(nix::libc::ENAMETOOLONG) | Some(nix::libc::EINVAL) => format!(
            " (a Unix socket's path must fit in 107 bytes; cordon's state folder {} may be too deep: set XDG_STATE_HOME to a shorter one)",
            state.display()
        ),
        Some(_) => String::new(),
    }
}
