//! Zero-copy relay for a tunnel between two TCP sockets: splice(2) moves the bytes through a
//! pipe inside the kernel instead of copying them into cordon and back, which is what keeps
//! a bulk download through the proxy close to direct loopback speed.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{splice, OFlag, SpliceFFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// The most moved per splice call (also the pipe's capacity, which is raised to it when the
/// system allows).
const CHUNK: usize = 256 << 10;

/// Relays both directions until both have ended (or one fails); `up` counts bytes from
/// `client` to `upstream`, `down` the other way.
pub async fn relay(
    client: &TcpStream,
    upstream: &TcpStream,
    up: &AtomicU64,
    down: &AtomicU64,
) -> io::Result<()> {
    let to_upstream = one_way(client, upstream, up);
    let to_client = one_way(upstream, client, down);
    tokio::try_join!(to_upstream, to_client).map(drop)
}

async fn one_way(from: &TcpStream, to: &TcpStream, count: &AtomicU64) -> io::Result<()> {
    let (pipe_r, pipe_w) = pipe()?;
    loop {
        let n = io_when_ready(from, Interest::READABLE, || {
            splice(from, None, &pipe_w, None, CHUNK, flags()).map_err(io::Error::from)
        })
        .await?;
        if n == 0 {
            // End of this direction: pass the half-close on, as a TCP relay should.
            let _ = nix::sys::socket::shutdown(
                std::os::fd::AsRawFd::as_raw_fd(to),
                nix::sys::socket::Shutdown::Write,
            );
            return Ok(());
        }
        let mut left = n;
        while left > 0 {
            let m = io_when_ready(to, Interest::WRITABLE, || {
                splice(&pipe_r, None, to, None, left, flags()).map_err(io::Error::from)
            })
            .await?;
            left -= m;
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
}

fn flags() -> SpliceFFlags {
    SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK
}

/// Runs `op` once the socket is ready for `interest`, until it stops saying EAGAIN.
async fn io_when_ready(
    sock: &TcpStream,
    interest: Interest,
    mut op: impl FnMut() -> io::Result<usize>,
) -> io::Result<usize> {
    loop {
        sock.ready(interest).await?;
        match sock.try_io(interest, &mut op) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    // A larger pipe means fewer splice calls; the default (64 KiB) is fine if refused.
    let _ = nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(CHUNK as i32));
    Ok((r, w))
}
