//! The pathname Unix sockets bound on the host (from /proc/net/unix), so the mount view can
//! cover the ones it would otherwise show.
//!
//! A socket's file is reachable wherever its directory is visible, and connecting to it
//! crosses every namespace; Landlock on this kernel cannot refuse the connect. Listing them
//! at start-up closes sockets in ordinary directories (a workspace, /srv, a home folder).
//! Not covered, and documented: sockets bound with a relative path, bound in another network
//! namespace, or bound after the sandbox started.

use std::path::{Path, PathBuf};

/// Absolute socket paths from the text of /proc/net/unix (abstract names, `@…`, skipped).
pub fn parse(table: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for line in table.lines().skip(1) {
        // Num RefCount Protocol Flags Type St Inode Path: the path is all after field 7.
        let mut rest = line.trim_start();
        for _ in 0..7 {
            rest = match rest.split_once(char::is_whitespace) {
                Some((_, r)) => r.trim_start(),
                None => "",
            };
        }
        let path = Path::new(rest);
        if path.is_absolute() && !out.iter().any(|p| p == path) {
            out.push(path.to_path_buf());
        }
    }
    out
}

/// The host's bound pathname sockets; empty when /proc/net/unix cannot be read.
pub fn list() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/net/unix")
        .map(|t| parse(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_absolute_paths_only() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 20501 /run/docker.sock\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 20502 @/tmp/dbus-abc\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 20503 relative.sock\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 20504\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 20505 /srv/my app/s.sock\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 20506 /run/docker.sock\n";
        assert_eq!(
            parse(table),
            [
                PathBuf::from("/run/docker.sock"),
                PathBuf::from("/srv/my app/s.sock")
            ]
        );
    }
}
