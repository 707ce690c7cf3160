//! A loopback TCP listener that no other account can take over: bound with
//! SO_EXCLUSIVEADDRUSE, so a sandboxed process cannot bind the proxy's port beside (or
//! instead of) cordon's and receive the run's connections.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::os::windows::io::{FromRawSocket, RawSocket};

use windows_sys::Win32::Networking::WinSock::{
    bind, closesocket, listen, setsockopt, WSAGetLastError, WSASocketW, WSAStartup, AF_INET,
    INVALID_SOCKET, IN_ADDR, IN_ADDR_0, IPPROTO_TCP, SOCKADDR, SOCKADDR_IN, SOCKET, SOCK_STREAM,
    SOL_SOCKET, SO_EXCLUSIVEADDRUSE, WSADATA, WSA_FLAG_NO_HANDLE_INHERIT, WSA_FLAG_OVERLAPPED,
};

/// Connections queued before the proxy accepts them (a `cargo fetch` opens dozens at once).
const BACKLOG: i32 = 512;

/// Listens on 127.0.0.1:`port`, exclusively. The socket is overlapped and not inheritable,
/// as std's own are, so tokio can serve it and no child inherits it.
pub fn exclusive_loopback(port: u16) -> io::Result<TcpListener> {
    let socket = tcp_socket()?;
    set_option(&socket, SO_EXCLUSIVEADDRUSE)?;
    bind_loopback(&socket, port)?;
    // SAFETY: a bound socket of ours.
    if unsafe { listen(socket.0, BACKLOG) } != 0 {
        return Err(last_error());
    }
    let raw = socket.into_raw();
    // SAFETY: `raw` is a listening socket nothing else owns; the listener closes it.
    Ok(unsafe { TcpListener::from_raw_socket(raw) })
}

/// A new IPv4 TCP socket, overlapped and not inheritable.
fn tcp_socket() -> io::Result<Socket> {
    let mut data = WSADATA::default();
    // SAFETY: `data` is a valid out place. Winsock counts start-ups; std may have started it
    // already, and this one is never undone (the process uses sockets until it exits).
    let r = unsafe { WSAStartup(0x0202, &mut data) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    // SAFETY: plain arguments; no protocol info, no group.
    let s = unsafe {
        WSASocketW(
            i32::from(AF_INET),
            SOCK_STREAM,
            IPPROTO_TCP,
            std::ptr::null(),
            0,
            WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT,
        )
    };
    if s == INVALID_SOCKET {
        return Err(last_error());
    }
    Ok(Socket(s))
}

/// Turns a boolean SOL_SOCKET option on.
fn set_option(socket: &Socket, option: i32) -> io::Result<()> {
    let on: i32 = 1;
    // SAFETY: `on` is an i32 the length says; the socket is ours.
    let r = unsafe {
        setsockopt(
            socket.0,
            SOL_SOCKET,
            option,
            (&on as *const i32).cast(),
            std::mem::size_of::<i32>() as i32,
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(last_error()),
    }
}

/// Binds to 127.0.0.1:`port`.
fn bind_loopback(socket: &Socket, port: u16) -> io::Result<()> {
    let address = SOCKADDR_IN {
        sin_family: AF_INET,
        sin_port: port.to_be(),
        sin_addr: IN_ADDR {
            S_un: IN_ADDR_0 {
                S_addr: u32::from_ne_bytes(Ipv4Addr::LOCALHOST.octets()),
            },
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `address` is a SOCKADDR_IN of the length given.
    let r = unsafe {
        bind(
            socket.0,
            (&address as *const SOCKADDR_IN).cast::<SOCKADDR>(),
            std::mem::size_of::<SOCKADDR_IN>() as i32,
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(last_error()),
    }
}

fn last_error() -> io::Error {
    // SAFETY: reads this thread's last Winsock error.
    io::Error::from_raw_os_error(unsafe { WSAGetLastError() })
}

/// A socket closed on drop, until handed to std.
struct Socket(SOCKET);

impl Socket {
    fn into_raw(self) -> RawSocket {
        let s = self.0;
        std::mem::forget(self);
        s as RawSocket
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: our socket, closed once.
        unsafe { closesocket(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use windows_sys::Win32::Networking::WinSock::SO_REUSEADDR;

    /// A second socket asking for the same address with SO_REUSEADDR, the way a squatter
    /// would take over a port bound without SO_EXCLUSIVEADDRUSE: only its bind may fail.
    fn squat(port: u16) -> io::Result<()> {
        let socket = tcp_socket().unwrap_or_else(|e| panic!("{e}"));
        set_option(&socket, SO_REUSEADDR).unwrap_or_else(|e| panic!("{e}"));
        bind_loopback(&socket, port)
    }

    #[test]
    fn the_proxys_port_cannot_be_taken_over() {
        let listener = exclusive_loopback(0).unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        assert!(addr.ip().is_loopback());
        assert!(
            squat(addr.port()).is_err(),
            "a second socket bound {addr} beside cordon's"
        );
        assert!(std::net::TcpListener::bind(addr).is_err());
        // Still ours: a client reaches it.
        let _c = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
        let (_s, peer) = listener.accept().unwrap_or_else(|e| panic!("{e}"));
        assert!(peer.ip().is_loopback());
    }
}
