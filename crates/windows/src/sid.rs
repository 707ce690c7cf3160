//! Security identifiers as plain data, and the per-workspace sandbox-write SID.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::winpath::WinPath;

/// A SID in its parts: `S-1-<authority>-<sub>-<sub>…`. Built and compared here; turned into a
/// binary SID only by the executor (`ConvertStringSidToSidW`), so the planner needs no OS.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sid {
    authority: u64,
    subs: Vec<u32>,
}

/// Why a string is not a SID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a SID (S-1-AUTHORITY-SUB…, 1 to 15 sub-authorities)")]
pub struct SidError(pub String);

/// The most sub-authorities a SID can have (SID_MAX_SUB_AUTHORITIES).
const MAX_SUBS: usize = 15;

impl Sid {
    pub fn new(authority: u64, subs: &[u32]) -> Sid {
        Sid {
            authority,
            subs: subs.to_vec(),
        }
    }

    pub fn parse(text: &str) -> Result<Sid, SidError> {
        let err = || SidError(text.to_string());
        let mut it = text.split('-');
        if !it.next().is_some_and(|s| s.eq_ignore_ascii_case("S")) || it.next() != Some("1") {
            return Err(err());
        }
        let authority = it.next().ok_or_else(err)?;
        // Authorities of 2^32 and more are written in hex (0x…), as Win32 does.
        let authority = match authority.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).map_err(|_| err())?,
            None => authority.parse::<u64>().map_err(|_| err())?,
        };
        if authority >= 1 << 48 {
            return Err(err());
        }
        let subs = it
            .map(|s| s.parse::<u32>().map_err(|_| err()))
            .collect::<Result<Vec<_>, _>>()?;
        if subs.is_empty() || subs.len() > MAX_SUBS {
            return Err(err());
        }
        Ok(Sid { authority, subs })
    }

    pub fn authority(&self) -> u64 {
        self.authority
    }

    pub fn subs(&self) -> &[u32] {
        &self.subs
    }

    /// `S-1-1-0`, Everyone (the World SID).
    pub fn everyone() -> Sid {
        Sid::new(1, &[0])
    }

    /// `S-1-5-18`, LocalSystem.
    pub fn local_system() -> Sid {
        Sid::new(5, &[18])
    }

    /// `S-1-5-32-544`, the local Administrators group.
    pub fn administrators() -> Sid {
        Sid::new(5, &[32, 544])
    }

    /// The sandbox-write SID of a workspace: `S-1-5-21-A-B-C-R`, where A, B, C and R come from
    /// SHA-256 of the workspace's case-folded, normalised path.
    ///
    /// Derived, not random: the same workspace always gets the same SID, so there is no
    /// mapping to persist, lose or race on, a second run finds its ACEs already present, and
    /// a token carries exactly one write SID however many writable roots the policy names
    /// (a peer's per-root SIDs grew to 158 and token creation failed with error 1344).
    /// The domain shape (S-1-5-21 and three sub-authorities) is what restricting SIDs and
    /// ACEs are known to accept; 96 bits of hash make a clash with a real machine or domain
    /// SID (themselves random) negligible. A SID is not a secret: knowing it grants nothing,
    /// since only the token's creator decides which SIDs a token holds.
    pub fn sandbox_write(workspace: &WinPath) -> Sid {
        let mut h = Sha256::new();
        h.update(b"cordon sandbox-write v1\0");
        h.update(workspace.key().as_bytes());
        let d = h.finalize();
        let word = |i: usize| u32::from_le_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
        // RIDs below 1000 are the well-known accounts and groups of a domain.
        let rid = 1000 + word(12) % (u32::MAX - 1000);
        Sid::new(5, &[21, word(0), word(4), word(8), rid])
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.authority >= 1 << 32 {
            write!(f, "S-1-0x{:012X}", self.authority)?;
        } else {
            write!(f, "S-1-{}", self.authority)?;
        }
        for s in &self.subs {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_back() {
        for s in [
            "S-1-1-0",
            "S-1-5-18",
            "S-1-5-32-544",
            "S-1-5-21-1-2-3-1001",
            "S-1-0x0001FFFFFFFF-1",
        ] {
            assert_eq!(Sid::parse(s).map(|x| x.to_string()), Ok(s.to_string()));
        }
        for bad in [
            "",
            "S-1",
            "S-1-5",
            "S-2-5-18",
            "X-1-5-18",
            "S-1-5-x",
            "S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16",
        ] {
            assert!(Sid::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sandbox_write_sid_is_stable_per_workspace_and_ignores_spelling() {
        let a = |s: &str| Sid::sandbox_write(&WinPath::parse(s).unwrap_or_else(|e| panic!("{e}")));
        let sid = a(r"C:\Users\dev\proj");
        assert_eq!(sid, a(r"c:/users/DEV/proj/"));
        assert_eq!(sid, a(r"\\?\C:\Users\dev\proj"));
        assert_ne!(sid, a(r"C:\Users\dev\proj2"));
        assert_eq!(&sid.subs()[..1], &[21]);
        assert_eq!(sid.subs().len(), 5);
        assert!(sid.subs()[4] >= 1000);
        assert_eq!(Sid::parse(&sid.to_string()), Ok(sid));
    }
}
