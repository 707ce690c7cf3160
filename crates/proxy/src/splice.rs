//! Zero-copy relay for a tunnel between two TCP sockets: splice(2) moves the bytes through a
//! pipe inside the kernel instead of copying them into cordon and back, which is what keeps
//! a bulk download through the proxy close to direct loopback speed.
//!
//! Each direction runs in a thread of its own (from `threads`) on blocking sockets: the thread sleeps in
//! splice until bytes arrive and wakes straight into the next splice, with no readiness
//! round trip through the runtime's reactor (an epoll_wait, a wake-up of a worker and a
//! splice that says EAGAIN per chunk). The async side only waits for both threads, and
//! whoever drops it (the runtime stopping, above all) cuts both sockets so the threads end.

use std::io;
use std::net::{Shutdown, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use nix::fcntl::{splice, FcntlArg, OFlag, SpliceFFlags};

use crate::counted::Traffic;

/// The most moved per splice call, and the pipe's capacity (raised to it when the system
/// allows; the default of 64 KiB is used otherwise).
const CHUNK: usize = 1 << 20;

/// Relays both directions until both have ended (or one fails); `traffic.up` counts bytes
/// from `client` to `upstream`, `traffic.down` the other way.
pub async fn relay(
    client: tokio::net::TcpStream,
    upstream: tokio::net::TcpStream,
    traffic: Arc<Traffic>,
) -> io::Result<()> {
    let client = Arc::new(blocking(client)?);
    let upstream = Arc::new(blocking(upstream)?);
    let cut = Cut([client.clone(), upstream.clone()]);
    let up = direction(client.clone(), upstream.clone(), traffic.clone(), Dir::Up)?;
    // Should the second thread not start, dropping `cut` ends the first.
    let down = direction(upstream, client, traffic, Dir::Down)?;
    let (up, down) = tokio::join!(up, down);
    drop(cut);
    let ended = |r: Result<io::Result<()>, _>| {
        r.unwrap_or_else(|_| Err(io::Error::other("relay thread ended without a word")))
    };
    ended(up).and(ended(down))
}

#[derive(Clone, Copy)]
enum Dir {
    Up,
    Down,
}

/// Starts one direction's thread; the receiver gets its result when it ends.
fn direction(
    from: Arc<TcpStream>,
    to: Arc<TcpStream>,
    traffic: Arc<Traffic>,
    dir: Dir,
) -> io::Result<tokio::sync::oneshot::Receiver<io::Result<()>>> {
    let (done, ended) = tokio::sync::oneshot::channel();
    crate::threads::run(move || {
        let count = match dir {
            Dir::Up => &traffic.up,
            Dir::Down => &traffic.down,
        };
        let result = one_way(&from, &to, count);
        if result.is_err() {
            // The other direction may be waiting on a peer that will never speak again.
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        }
        let _ = done.send(result);
    })?;
    Ok(ended)
}

/// Moves bytes from `from` to `to` until `from` ends, then passes the half-close on, as a
/// TCP relay should.
fn one_way(from: &TcpStream, to: &TcpStream, count: &AtomicU64) -> io::Result<()> {
    let (pipe_r, pipe_w) = pipe()?;
    loop {
        let n = retry(|| {
            splice(
                from,
                None,
                &pipe_w,
                None,
                CHUNK,
                SpliceFFlags::SPLICE_F_MOVE,
            )
        })?;
        if n == 0 {
            let _ = to.shutdown(Shutdown::Write);
            return Ok(());
        }
        let mut left = n;
        while left > 0 {
            let m = retry(|| splice(&pipe_r, None, to, None, left, SpliceFFlags::SPLICE_F_MOVE))?;
            if m == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            left -= m;
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Runs a blocking call again when a signal interrupted it.
fn retry(mut op: impl FnMut() -> nix::Result<usize>) -> io::Result<usize> {
    loop {
        match op() {
            Err(nix::errno::Errno::EINTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

/// Takes a socket out of the runtime's reactor and makes it blocking.
fn blocking(s: tokio::net::TcpStream) -> io::Result<TcpStream> {
    let s = s.into_std()?;
    s.set_nonblocking(false)?;
    Ok(s)
}

/// Shuts both sockets down when dropped, which ends any splice blocked on them.
struct Cut([Arc<TcpStream>; 2]);

impl Drop for Cut {
    fn drop(&mut self) {
        for s in &self.0 {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    // A larger pipe means fewer splice calls; the default (64 KiB) is fine if refused.
    let size = i32::try_from(CHUNK).unwrap_or(i32::MAX);
    let _ = nix::fcntl::fcntl(&w, FcntlArg::F_SETPIPE_SZ(size));
    Ok((r, w))
}
