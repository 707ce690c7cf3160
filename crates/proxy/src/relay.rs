//! The relay of a CONNECT tunnel's two sockets, one interface for every target: splice(2)
//! threads on Linux (`splice.rs`, zero-copy, benchmarked), tokio's buffered copy elsewhere.
//!
//! Either way `relay` moves bytes both ways until both directions have ended (passing each
//! half-close on) or one fails (which ends both), counts them in `traffic` (`up` from client
//! to upstream, `down` the other way), and stops when its future is dropped (the runtime
//! stopping cuts both sockets).

#[cfg(target_os = "linux")]
pub use crate::splice::relay;

#[cfg(not(target_os = "linux"))]
pub use portable::relay;

#[cfg(not(target_os = "linux"))]
mod portable {
    use std::io;
    use std::sync::Arc;

    use tokio::net::TcpStream;

    use crate::counted::{Counted, Traffic};
    use crate::server::RELAY_BUFFER;

    /// Without splice(2) the bytes pass through cordon: tokio copies each direction through
    /// a large buffer (its default of 8 KiB would cost a syscall pair per 8 KiB), and the
    /// upstream side counts what crosses it.
    pub async fn relay(
        mut client: TcpStream,
        upstream: TcpStream,
        traffic: Arc<Traffic>,
    ) -> io::Result<()> {
        let mut upstream = Counted::new(upstream, traffic);
        tokio::io::copy_bidirectional_with_sizes(
            &mut client,
            &mut upstream,
            RELAY_BUFFER,
            RELAY_BUFFER,
        )
        .await
        .map(drop)
    }
}
