//! What a proxied HTTP request asks for. A CONNECT names `host:port`; any other method must
//! use the absolute form (`http://host[:port]/path`), and its Host header, if present, must
//! name the same host and port: a proxy that checked one and connected to the other would let
//! a request reach a host the allow-list never saw.

use cordon_policy::Host;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub host: Host,
    /// The name as the client wrote it, lowercased (for messages and the audit log).
    pub name: String,
    pub port: u16,
}

/// A request head the proxy understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub destination: Destination,
    /// For plain HTTP, the origin-form path to send upstream (`/index.html?q`).
    pub path: Option<String>,
}

/// Why a request head is refused before any decision about its destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("the request line is not `METHOD TARGET HTTP/1.x`")]
    RequestLine,
    #[error("CONNECT needs `host:port`")]
    ConnectTarget,
    #[error("a proxied request must name its URL in full (`http://host/path`); only http:// is proxied in the clear, use CONNECT for https")]
    NotAbsolute,
    #[error("`{0}` is not a host name or address")]
    BadHost(String),
    #[error("the Host header ({header}) and the URL ({url}) name different destinations")]
    HostMismatch { header: String, url: String },
    #[error("more than one Host header")]
    DuplicateHost,
}

/// Parses a request head (everything before the blank line).
pub fn parse_head(head: &str) -> Result<Request, Malformed> {
    let mut lines = head.split("\r\n");
    let line = lines.next().ok_or(Malformed::RequestLine)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed::RequestLine);
    };
    if method.is_empty() || !version.starts_with("HTTP/1.") {
        return Err(Malformed::RequestLine);
    }
    let hosts: Vec<&str> = lines
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.trim())
        .collect();
    if method.eq_ignore_ascii_case("CONNECT") {
        return Ok(Request {
            method: "CONNECT".into(),
            destination: connect_target(target)?,
            path: None,
        });
    }
    let (destination, path) = forward_target(target, &hosts)?;
    Ok(Request {
        method: method.to_string(),
        destination,
        path: Some(path),
    })
}

/// The destination of a CONNECT: `host:port`, the port required.
pub fn connect_target(target: &str) -> Result<Destination, Malformed> {
    authority(target, None).ok_or(Malformed::ConnectTarget)?
}

/// The destination and origin-form path of a plain-HTTP request, from its request target
/// (which must be an absolute `http://` URL) and its Host headers (at most one, agreeing).
pub fn forward_target(target: &str, hosts: &[&str]) -> Result<(Destination, String), Malformed> {
    let rest = target
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("http://"))
        .map(|_| &target[7..])
        .ok_or(Malformed::NotAbsolute)?;
    let (auth, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path
    };
    let destination = authority(auth, Some(80)).ok_or(Malformed::NotAbsolute)??;
    match hosts {
        [] => {}
        [h] => {
            let named =
                authority(h, Some(80)).ok_or_else(|| Malformed::BadHost(h.to_string()))??;
            if named != destination {
                return Err(Malformed::HostMismatch {
                    header: h.to_string(),
                    url: auth.to_string(),
                });
            }
        }
        _ => return Err(Malformed::DuplicateHost),
    }
    Ok((destination, path))
}

/// `host[:port]` (IPv6 in brackets). `None` if the shape is wrong; `Some(Err)` for a bad host.
fn authority(text: &str, default_port: Option<u16>) -> Option<Result<Destination, Malformed>> {
    if text.is_empty() || text.contains('@') {
        return None; // userinfo in a proxy URL only confuses parsers
    }
    let (host, port) = match text.rfind(':') {
        Some(i) if !text[i..].contains(']') => (&text[..i], Some(&text[i + 1..])),
        _ => (text, None),
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
        None => default_port?,
    };
    let name = host.to_ascii_lowercase();
    Some(match Host::parse(host) {
        Some(h) => Ok(Destination {
            host: h,
            name: name.strip_suffix('.').unwrap_or(&name).to_string(),
            port,
        }),
        None => Err(Malformed::BadHost(host.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_names_host_and_port() {
        let r = parse_head("CONNECT crates.io:443 HTTP/1.1\r\nHost: crates.io:443").unwrap();
        assert_eq!(r.destination.name, "crates.io");
        assert_eq!(r.destination.port, 443);
        assert!(parse_head("CONNECT crates.io HTTP/1.1").is_err());
        assert!(parse_head("CONNECT crates.io:0 HTTP/1.1").is_err());
    }

    #[test]
    fn plain_http_needs_the_absolute_form_and_an_agreeing_host() {
        let r = parse_head("GET http://Example.com/a?b HTTP/1.1\r\nHost: example.com").unwrap();
        assert_eq!(r.destination.name, "example.com");
        assert_eq!(r.destination.port, 80);
        assert_eq!(r.path.as_deref(), Some("/a?b"));
        assert_eq!(
            parse_head("GET /a HTTP/1.1\r\nHost: example.com"),
            Err(Malformed::NotAbsolute)
        );
        assert!(matches!(
            parse_head("GET http://allowed.example/ HTTP/1.1\r\nHost: evil.example"),
            Err(Malformed::HostMismatch { .. })
        ));
        assert!(matches!(
            parse_head("GET http://example.com/ HTTP/1.1\r\nHost: example.com:8080"),
            Err(Malformed::HostMismatch { .. })
        ));
        assert_eq!(
            parse_head("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nhost: evil"),
            Err(Malformed::DuplicateHost)
        );
    }

    #[test]
    fn odd_targets_are_refused() {
        for head in [
            "GET https://example.com/ HTTP/1.1",
            "GET http://user@example.com/ HTTP/1.1",
            "GET http://exa mple.com/ HTTP/1.1",
            "GET http:// HTTP/1.1",
            "GET http://example.com/ HTTP/2",
            "",
        ] {
            assert!(parse_head(head).is_err(), "{head:?} accepted");
        }
    }

    #[test]
    fn ipv6_literals_keep_their_port() {
        let r = parse_head("CONNECT [::1]:8443 HTTP/1.1").unwrap();
        assert_eq!(r.destination.port, 8443);
        assert!(matches!(r.destination.host, Host::Address(_)));
    }
}
