//! Why the proxy refused or could not serve a request, and the answer an agent reads: a
//! status, an `X-Cordon-Refused` header, and a body that says it is policy, that going around
//! the proxy will not work, and how a human allows the destination.

use std::net::IpAddr;

use crate::http::Malformed;

/// A request the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No allow entry matches the name.
    NotListed,
    /// A deny entry matches (deny beats allow).
    Denied(String),
    /// An IP-literal destination that no allow entry names as an address.
    AddressNotListed,
    /// Every address the name resolves to is local (loopback, private, metadata, …).
    Local {
        address: IpAddr,
        class: &'static str,
    },
    /// The request itself does not name one destination consistently.
    Malformed(Malformed),
    /// After CONNECT, the client sent something other than a TLS ClientHello.
    NotTls,
    /// The ClientHello names no server (SNI), so the tunnel's real destination is unknown.
    NoServerName,
    /// The ClientHello's SNI differs from the CONNECT host (domain fronting).
    ServerNameMismatch(String),
}

impl Refusal {
    /// The `X-Cordon-Refused` header value (also the audit event's `reason` prefix).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotListed => "not-on-allow-list",
            Refusal::Denied(_) => "denied",
            Refusal::AddressNotListed => "address-not-on-allow-list",
            Refusal::Local { .. } => "local-destination",
            Refusal::Malformed(_) => "malformed-request",
            Refusal::NotTls => "not-tls",
            Refusal::NoServerName => "no-server-name",
            Refusal::ServerNameMismatch(_) => "server-name-mismatch",
        }
    }

    /// 400 for a request that is not well-formed, 403 for everything the policy refuses.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Malformed(_) => 400,
            _ => 403,
        }
    }

    /// One line: what was wrong with the destination.
    pub fn why(&self, host: &str) -> String {
        match self {
            Refusal::NotListed => format!("{host} is not on the sandbox allow-list"),
            Refusal::Denied(rule) => format!(
                "{host} matches the deny rule `{rule}`, and deny rules win over the allow-list"
            ),
            Refusal::AddressNotListed => format!(
                "{host} is an IP address; addresses are refused unless the allow-list names them literally"
            ),
            Refusal::Local { address, class } => format!(
                "{host} resolves to {address}, a {class} address; the allow-list does not open local destinations unless --allow-local-destinations is given"
            ),
            Refusal::Malformed(m) => format!("the request is refused: {m}"),
            Refusal::NotTls => format!(
                "the tunnel to {host} did not start with a TLS ClientHello, so its destination cannot be checked against the allow-list"
            ),
            Refusal::NoServerName => format!(
                "the TLS ClientHello for {host} names no server (SNI), so the tunnel's real destination cannot be checked against the allow-list"
            ),
            Refusal::ServerNameMismatch(sni) => format!(
                "the tunnel was opened for {host} but its TLS ClientHello asks for {sni}; a tunnel may only carry the host the allow-list checked"
            ),
        }
    }

    /// The whole text an agent reads in the response body.
    pub fn body(&self, method: &str, host: &str, port: u16) -> String {
        let fix = match self {
            Refusal::Local { .. } => format!(
                "A human can allow it: `cordon run --allow-domain {host} --allow-local-destinations ...`, or `allow_local_destinations = true` under [network] in ~/.config/cordon/config.toml."
            ),
            Refusal::Denied(rule) => format!(
                "A human can allow it by removing the deny rule `{rule}` from the policy and running with `--allow-domain {host}`."
            ),
            Refusal::Malformed(_) => "Send absolute-form requests (`GET http://host/path`) whose Host header names the same host, or CONNECT for https; the allow-list is checked against that one host. A human can allow more destinations with `cordon run --allow-domain HOST ...`.".to_string(),
            _ => format!(
                "A human can allow it: `cordon run --allow-domain {host} ...`, or `allow = [\"{host}\"]` under [network] in ~/.config/cordon/config.toml."
            ),
        };
        format!(
            "cordon: the sandbox's network policy refused {method} {host}:{port}: {}.\n\
This is the sandbox's policy, not a network fault: retrying will not work, and neither will going around the proxy (the sandbox has no other route out).\n\
{fix}\n",
            self.why(host)
        )
    }
}

/// An allowed request that still could not be served (502).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreachable {
    NameNotFound(String),
    Connect(String),
    Upstream(String),
}

impl Unreachable {
    pub fn why(&self) -> String {
        match self {
            Unreachable::NameNotFound(e) => format!("the name did not resolve ({e})"),
            Unreachable::Connect(e) => format!("no connection to it could be made ({e})"),
            Unreachable::Upstream(e) => format!("the server's answer broke off ({e})"),
        }
    }

    pub fn body(&self, method: &str, host: &str, port: u16) -> String {
        format!(
            "cordon: the sandbox's proxy allowed {method} {host}:{port}, but {}.\n\
This is a network problem outside the sandbox, not the sandbox's policy.\n",
            self.why()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_says_policy_no_bypass_and_the_fix() {
        let all = [
            Refusal::NotListed,
            Refusal::Denied("*.evil.example".into()),
            Refusal::AddressNotListed,
            Refusal::Local {
                address: "127.0.0.1".parse().unwrap(),
                class: "loopback",
            },
            Refusal::Malformed(Malformed::NotAbsolute),
            Refusal::NotTls,
            Refusal::NoServerName,
            Refusal::ServerNameMismatch("evil.example".into()),
        ];
        for r in all {
            let body = r.body("CONNECT", "evil.example", 443);
            assert!(body.starts_with("cordon: "), "{body}");
            for needle in ["policy", "will not work", "--allow-domain", "allow-list"] {
                assert!(body.contains(needle), "{r:?}: {needle:?} missing in {body}");
            }
        }
    }

    #[test]
    fn malformed_is_400_the_rest_403() {
        assert_eq!(Refusal::Malformed(Malformed::DuplicateHost).status(), 400);
        assert_eq!(Refusal::NotListed.status(), 403);
    }
}
