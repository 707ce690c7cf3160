//! Which process owns the client end of a loopback TCP connection, from the TCP table
//! (`GetExtendedTcpTable`): how the proxy of an elevated `--net allow` run tells its own
//! run's connections from those of every other process on the machine's shared loopback.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};

use windows_sys::Win32::NetworkManagement::IpHelper::{
    GetExtendedTcpTable, MIB_TCPROW_OWNER_PID, MIB_TCPTABLE_OWNER_PID,
    TCP_TABLE_OWNER_PID_CONNECTIONS,
};
use windows_sys::Win32::Networking::WinSock::AF_INET;

const ERROR_INSUFFICIENT_BUFFER: u32 = 122;

/// The process id owning the connection whose local end is `client` and remote end is
/// `server` (both IPv4: the proxy listens on 127.0.0.1), or `None` when the table has no
/// such connection (it closed meanwhile).
pub fn connection_owner(client: SocketAddr, server: SocketAddr) -> io::Result<Option<u32>> {
    let (SocketAddr::V4(client), SocketAddr::V4(server)) = (client, server) else {
        return Err(io::Error::other(format!(
            "{client} -> {server}: only IPv4 connections are looked up"
        )));
    };
    Ok(table()?
        .iter()
        .find(|r| is(r, client, server))
        .map(|r| r.dwOwningPid))
}

fn is(row: &MIB_TCPROW_OWNER_PID, local: SocketAddrV4, remote: SocketAddrV4) -> bool {
    // Addresses are in network byte order as stored; ports in the low 16 bits, also in
    // network byte order.
    let addr = |a: &SocketAddrV4| u32::from_ne_bytes(a.ip().octets());
    let port = |p: u32| u16::from_be(p as u16);
    row.dwLocalAddr == addr(&local)
        && port(row.dwLocalPort) == local.port()
        && row.dwRemoteAddr == addr(&remote)
        && port(row.dwRemotePort) == remote.port()
}

/// Every IPv4 connection (not listeners) with its owner's process id.
fn table() -> io::Result<Vec<MIB_TCPROW_OWNER_PID>> {
    let mut size = 16 * 1024u32;
    for _ in 0..8 {
        // u32s: the table is a DWORD count followed by rows of DWORDs.
        let mut buf = vec![0u32; (size as usize).div_ceil(4)];
        // SAFETY: `buf` holds `size` bytes, DWORD-aligned; no sorting, IPv4, connections.
        let r = unsafe {
            GetExtendedTcpTable(
                buf.as_mut_ptr().cast(),
                &mut size,
                0,
                u32::from(AF_INET),
                TCP_TABLE_OWNER_PID_CONNECTIONS,
                0,
            )
        };
        match r {
            0 => {
                let t = buf.as_ptr().cast::<MIB_TCPTABLE_OWNER_PID>();
                // SAFETY: the call filled a MIB_TCPTABLE_OWNER_PID into `buf`: a count,
                // then that many rows, all within the `size` bytes it reported.
                let rows = unsafe {
                    let n = (*t).dwNumEntries as usize;
                    std::slice::from_raw_parts((*t).table.as_ptr(), n)
                };
                return Ok(rows.to_vec());
            }
            // `size` now holds what is needed; connections may come meanwhile: some room.
            ERROR_INSUFFICIENT_BUFFER => size += 4 * 1024,
            e => return Err(io::Error::from_raw_os_error(e as i32)),
        }
    }
    Err(io::Error::other("the TCP table kept growing"))
}
