//! Network destinations a policy names: domain patterns, their validation, and the decision
//! for one host (deny beats allow; anything not listed is refused).

use std::fmt;
use std::net::IpAddr;

/// One allow or deny entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainPattern {
    /// `example.com`: that name only.
    Exact(String),
    /// `*.example.com`: every name below it, not the name itself.
    Subdomains(String),
    /// An address given literally: IP destinations are refused unless named like this.
    Address(IpAddr),
}

/// Why a pattern was rejected; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("`{0}` would allow every destination; name the domains the command needs")]
    Everything(String),
    #[error("`{0}` would allow a whole top-level domain; name a registrable domain such as `*.example.com`")]
    TopLevel(String),
    #[error("`{0}`: `*` may only stand alone as the first label (`*.example.com`)")]
    MisplacedWildcard(String),
    #[error("`{0}` is not a domain name (letters, digits, `-` and `_` in labels of 1 to 63 characters, 253 in all){1}")]
    NotAName(String, &'static str),
}

const NON_ASCII_HINT: &str = "; write internationalised names in their xn-- form";

impl DomainPattern {
    /// What an entry may be, for hints next to a rejected one.
    pub const SYNTAX: &'static str = "an exact name (crates.io), `*.example.com` for its \
subdomains only, or an IP address (matches only that address written literally)";

    /// Parses one entry, case-insensitively; a trailing dot is ignored.
    pub fn parse(text: &str) -> Result<DomainPattern, PatternError> {
        let raw = text.trim();
        let bare = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
        if let Ok(ip) = bare.unwrap_or(raw).parse::<IpAddr>() {
            return Ok(DomainPattern::Address(ip));
        }
        let name = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
        if name == "*" || name.is_empty() && raw.contains('*') {
            return Err(PatternError::Everything(raw.to_string()));
        }
        if let Some(suffix) = name.strip_prefix("*.") {
            if suffix.contains('*') {
                return Err(PatternError::MisplacedWildcard(raw.to_string()));
            }
            check_name(suffix, raw)?;
            if !suffix.contains('.') {
                return Err(PatternError::TopLevel(raw.to_string()));
            }
            return Ok(DomainPattern::Subdomains(suffix.to_string()));
        }
        if name.contains('*') {
            return Err(PatternError::MisplacedWildcard(raw.to_string()));
        }
        check_name(&name, raw)?;
        Ok(DomainPattern::Exact(name))
    }

    /// Whether `host` (as a client sent it: any case, maybe a trailing dot) is covered.
    pub fn matches(&self, host: &str) -> bool {
        match (self, Host::parse(host)) {
            (DomainPattern::Exact(d), Some(Host::Name(h))) => *d == h,
            (DomainPattern::Subdomains(d), Some(Host::Name(h))) => h
                .strip_suffix(d.as_str())
                .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
            (DomainPattern::Address(a), Some(Host::Address(h))) => *a == h,
            _ => false,
        }
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainPattern::Exact(d) => f.write_str(d),
            DomainPattern::Subdomains(d) => write!(f, "*.{d}"),
            DomainPattern::Address(a) => write!(f, "{a}"),
        }
    }
}

/// A destination host, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Address(IpAddr),
}

impl Host {
    /// Normalises a host from a request (Host header, CONNECT target, SNI); `None` if it is
    /// neither an address nor a well-formed name.
    pub fn parse(text: &str) -> Option<Host> {
        let bare = text.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
        if let Ok(ip) = bare.unwrap_or(text).parse::<IpAddr>() {
            return Some(Host::Address(ip));
        }
        let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
        check_name(&name, text).ok()?;
        Some(Host::Name(name))
    }
}

fn check_name(name: &str, raw: &str) -> Result<(), PatternError> {
    let bad = |hint| Err(PatternError::NotAName(raw.to_string(), hint));
    if !name.is_ascii() {
        return bad(NON_ASCII_HINT);
    }
    if name.is_empty() || name.len() > 253 {
        return bad("");
    }
    for label in name.split('.') {
        let ok_chars = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if label.is_empty() || label.len() > 63 || !ok_chars {
            return bad("");
        }
    }
    Ok(())
}

/// What the policy says about one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'a> {
    Allowed(&'a DomainPattern),
    /// A deny entry matched (deny beats allow).
    Denied(&'a DomainPattern),
    /// Nothing matched: refused.
    NotListed,
}

/// Deny entries first, then allow entries; unlisted hosts are refused.
pub fn decide<'a>(
    allow: &'a [DomainPattern],
    deny: &'a [DomainPattern],
    host: &str,
) -> Verdict<'a> {
    if let Some(p) = deny.iter().find(|p| p.matches(host)) {
        return Verdict::Denied(p);
    }
    match allow.iter().find(|p| p.matches(host)) {
        Some(p) => Verdict::Allowed(p),
        None => Verdict::NotListed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> DomainPattern {
        DomainPattern::parse(s).unwrap()
    }

    #[test]
    fn exact_matches_only_itself() {
        let d = p("Example.COM.");
        assert!(d.matches("example.com"));
        assert!(d.matches("EXAMPLE.com."));
        assert!(!d.matches("www.example.com"));
        assert!(!d.matches("badexample.com"));
        assert!(!d.matches("example.com.evil.net"));
    }

    #[test]
    fn wildcard_matches_only_subdomains() {
        let d = p("*.example.com");
        assert!(d.matches("a.example.com"));
        assert!(d.matches("a.b.EXAMPLE.com"));
        assert!(!d.matches("example.com"));
        assert!(!d.matches("badexample.com"));
        assert!(!d.matches(".example.com"));
    }

    #[test]
    fn patterns_that_open_everything_are_rejected() {
        for s in [
            "*",
            "*.",
            "*.com",
            "*.*.com",
            "a*.com",
            "foo.*.com",
            "ex ample.com",
            "",
            "exämple.com",
        ] {
            assert!(DomainPattern::parse(s).is_err(), "{s:?} accepted");
        }
        let msg = DomainPattern::parse("*.com").unwrap_err().to_string();
        assert!(msg.contains("top-level"), "{msg}");
    }

    #[test]
    fn addresses_only_when_named() {
        let a = p("10.0.0.5");
        assert!(a.matches("10.0.0.5"));
        assert!(!a.matches("10.0.0.6"));
        assert!(p("[::1]").matches("[::1]"));
        // A name pattern never matches an address, whatever it resolves to.
        assert!(!p("*.example.com").matches("93.184.216.34"));
    }

    #[test]
    fn deny_beats_allow_and_unlisted_is_refused() {
        let allow = [p("*.github.com"), p("github.com")];
        let deny = [p("gist.github.com")];
        assert_eq!(
            decide(&allow, &deny, "api.github.com"),
            Verdict::Allowed(&allow[0])
        );
        assert_eq!(
            decide(&allow, &deny, "GIST.github.com"),
            Verdict::Denied(&deny[0])
        );
        assert_eq!(decide(&allow, &deny, "pypi.org"), Verdict::NotListed);
        assert_eq!(decide(&allow, &deny, "not a host"), Verdict::NotListed);
    }
}
