//! `--net allow` for one run: the proxy variables the command sees, cordon's proxy serving
//! the listener the sandbox handed over, and how its decisions read in the audit log and on
//! stderr. The variables, the stderr lines and the audit events serve the Windows run too
//! (`windows_net`); only the listener hand-over is Linux's.

#[cfg(target_os = "linux")]
use std::ffi::OsString;
#[cfg(target_os = "linux")]
use std::os::fd::OwnedFd;
#[cfg(target_os = "linux")]
use std::sync::mpsc;

use cordon_audit::Event;
#[cfg(target_os = "linux")]
use cordon_policy::Egress;
#[cfg(target_os = "linux")]
use cordon_proxy::{Ask, OnRefusal, Proxy};
use cordon_proxy::{Decision, Outcome};

/// The proxy's port on the sandbox's own loopback (its network namespace is private, so
/// the port cannot collide with anything on the host).
#[cfg(target_os = "linux")]
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
#[cfg(target_os = "linux")]
const NO_PROXY: &str = "localhost,127.0.0.1,::1";

/// Replaces any proxy settings the caller had with cordon's proxy.
#[cfg(target_os = "linux")]
pub fn point_at_proxy(env: &mut Vec<(OsString, OsString)>) {
    let url = format!("http://127.0.0.1:{PROXY_PORT}");
    env.retain(|(k, _)| !replaced(&k.to_string_lossy()));
    env.extend(
        proxy_vars(&url, NO_PROXY)
            .into_iter()
            .map(|(k, v)| (k.into(), v.into())),
    );
}

/// Whether the caller's variable `name` is one cordon sets (so the caller's value goes):
/// a proxy variable, `no_proxy` in any case, or Node's switch.
#[cfg(target_os = "linux")]
pub fn replaced(name: &str) -> bool {
    PROXY_VARS.contains(&name)
        || name.eq_ignore_ascii_case("no_proxy")
        || name == "NODE_USE_ENV_PROXY"
}

/// The variables that point the command at the proxy at `url`, with `no_proxy` as the
/// destinations that go direct, in the order they are set.
pub fn proxy_vars(url: &str, no_proxy: &str) -> Vec<(&'static str, String)> {
    let mut vars: Vec<(&'static str, String)> =
        PROXY_VARS.iter().map(|v| (*v, url.to_string())).collect();
    for var in ["no_proxy", "NO_PROXY"] {
        vars.push((var, no_proxy.to_string()));
    }
    // Node 24+ honours the proxy variables in fetch() and http only when asked to.
    vars.push(("NODE_USE_ENV_PROXY", "1".to_string()));
    vars
}

/// Starts the proxy on the sandbox's listener; its decisions arrive on the receiver (see
/// [`crate::recorder`]). With `asks`, every name off the list is sent there and held for the
/// answer: a human's when the policy says `ask`, else whether an agent's request for it was
/// allowed (see [`crate::commands`]).
#[cfg(target_os = "linux")]
pub fn start(
    listener: OwnedFd,
    policy: &Egress,
    on_refusal: OnRefusal,
    asks: Option<mpsc::Sender<Ask>>,
) -> std::io::Result<(Proxy, mpsc::Receiver<Decision>)> {
    let (tx, rx) = mpsc::channel();
    let mut policy = policy.clone();
    policy.ask_unlisted = asks.is_some();
    // The listener lives in the sandbox's network namespace: every client is the sandbox's.
    let clients = cordon_proxy::Clients::Any;
    let proxy = cordon_proxy::start(listener.into(), policy, tx, on_refusal, asks, clients)?;
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

/// What a refusal says when `terminate_on_violation = ["network"]` kills the run for it;
/// `None` for a decision that is no violation of the run's own: an allowed or failed
/// request, or a connection turned away for coming from outside the run (Windows' shared
/// loopback: someone else's request must not end this run).
pub fn violation(d: &Decision) -> Option<String> {
    let reason = d.reason.as_deref().unwrap_or("");
    let foreign = reason
        .strip_prefix(cordon_proxy::FOREIGN_CLIENT)
        .is_some_and(|rest| rest.starts_with(':'));
    match d.verdict {
        Outcome::Refused if !foreign => Some(format!("{} {} refused: {reason}", d.method, d.host)),
        _ => None,
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

#[cfg(all(test, target_os = "linux"))]
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
