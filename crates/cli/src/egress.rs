//! `--net allow` for one run: the proxy variables the command sees, cordon's proxy serving
//! the listener the sandbox handed over, and how its decisions read in the audit log and on
//! stderr.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::sync::mpsc;

use cordon_audit::Event;
use cordon_policy::Egress;
use cordon_proxy::{Ask, Decision, OnRefusal, Outcome, Proxy};

/// The proxy's port on the sandbox's own loopback (its network namespace is private, so
/// the port cannot collide with anything on the host).
pub const PROXY_PORT: u16 = 3128;

/// Variables that point the usual tools at the proxy. Lowercase `http_proxy` is the one curl
/// reads for http://; the rest are what npm, yarn, pip, cargo and Node's fetch look for.
const PROXY_VARS: &[&str] = &[
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "npm_config_proxy",
    "npm_config_https_proxy",
    "YARN_HTTP_PROXY",
    "YARN_HTTPS_PROXY",
    "PIP_PROXY",
    "CARGO_HTTP_PROXY",
    "GLOBAL_AGENT_HTTP_PROXY",
];

/// Sandbox-local destinations go direct: the sandbox's loopback is its own.
const NO_PROXY: &str = "localhost,127.0.0.1,::1";

/// Replaces any proxy settings the caller had with cordon's proxy.
pub fn point_at_proxy(env: &mut Vec<(OsString, OsString)>) {
    let url = format!("http://127.0.0.1:{PROXY_PORT}");
    let ours = |k: &OsString| {
        let k = k.to_string_lossy();
        PROXY_VARS.contains(&k.as_ref())
            || k.eq_ignore_ascii_case("no_proxy")
            || k == "NODE_USE_ENV_PROXY"
    };
    env.retain(|(k, _)| !ours(k));
    for var in PROXY_VARS {
        env.push(((*var).into(), url.clone().into()));
    }
    for var in ["no_proxy", "NO_PROXY"] {
        env.push((var.into(), NO_PROXY.into()));
    }
    // Node 24+ honours the proxy variables in fetch() and http only when asked to.
    env.push(("NODE_USE_ENV_PROXY".into(), "1".into()));
}

/// Starts the proxy on the sandbox's listener; its decisions arrive on the receiver (see
/// [`crate::recorder`]). With `asks`, every name off the list is sent there and held for the
/// answer: a human's when the policy says `ask`, else whether an agent's request for it was
/// allowed (see [`crate::commands`]).
pub fn start(
    listener: OwnedFd,
    policy: &Egress,
    on_refusal: OnRefusal,
    asks: Option<mpsc::Sender<Ask>>,
) -> std::io::Result<(Proxy, mpsc::Receiver<Decision>)> {
    let (tx, rx) = mpsc::channel();
    let mut policy = policy.clone();
    policy.ask_unlisted = asks.is_some();
    let proxy = cordon_proxy::start(listener.into(), policy, tx, on_refusal, asks)?;
    Ok((proxy, rx))
}

/// Refusals and failures go to stderr too: the agent may read that rather than the body.
pub fn announce(d: &Decision) {
    let reason = d.reason.as_deref().unwrap_or("");
    // A request refused before it named a destination has no port to show.
    let target = match d.port {
        0 => d.host.clone(),
        port => format!("{}:{port}", d.host),
    };
    match d.verdict {
        Outcome::Allowed => {}
        Outcome::Refused => eprintln!(
            "cordon: network: refused {} {target} ({reason}); this is the sandbox's policy, not a fault to retry around",
            d.method
        ),
        Outcome::Failed => eprintln!(
            "cordon: network: {} {target} was allowed but failed: {reason}",
            d.method
        ),
    }
}

pub fn event(d: Decision) -> Event {
    Event::Network {
        method: d.method,
        host: d.host,
        port: d.port,
        decision: match d.verdict {
            Outcome::Allowed => "allowed",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
        .to_string(),
        rule: d.rule,
        reason: d.reason,
        address: d.address.map(|a| a.to_string()),
        bytes_up: d.bytes_up,
        bytes_down: d.bytes_down,
        duration_ms: d.duration.as_millis() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_proxy_settings_are_replaced() {
        let mut env = vec![
            ("HTTPS_PROXY".into(), "http://corp:8080".into()),
            ("no_proxy".into(), "*".into()),
            ("PATH".into(), "/bin".into()),
        ];
        point_at_proxy(&mut env);
        let get = |k: &str| {
            env.iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("HTTPS_PROXY"), ["http://127.0.0.1:3128"]);
        assert_eq!(get("http_proxy"), ["http://127.0.0.1:3128"]);
        assert_eq!(get("no_proxy"), [NO_PROXY]);
        assert_eq!(get("PATH"), ["/bin"]);
    }
}
