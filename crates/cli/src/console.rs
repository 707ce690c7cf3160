//! `cordon console [--bind ADDR:PORT]`: serves the approval console until interrupted.

use std::net::SocketAddr;
use std::path::PathBuf;

use cordon_approvals::console::{self, ConsoleOptions};
use cordon_approvals::Scrubber;
use cordon_policy::Policy;

/// Runs the console for the runs whose control sockets are in `STATE/approvals`, reading
/// the history from `audit_log`. `bind` defaults to loopback; anything else is served over
/// TLS. `policy` supplies the env patterns whose values are masked in what is shown.
/// Returns cordon's exit status (125 when it cannot bind or set up TLS).
pub fn console(
    bind: Option<SocketAddr>,
    state_dir: PathBuf,
    audit_log: Option<PathBuf>,
    policy: &Policy,
) -> i32 {
    let bind = match bind {
        Some(b) => b,
        None => match console::DEFAULT_BIND.parse() {
            Ok(b) => b,
            Err(_) => return 125,
        },
    };
    let opts = ConsoleOptions {
        bind,
        approvals_dir: state_dir.join("approvals"),
        audit_log,
        tls_dir: state_dir.join("console"),
        scrub: Scrubber {
            env_deny: policy.env_deny.clone(),
            env_keep: policy.env_keep.clone(),
            // The console never sees the removed values; each run's broker masks those.
            secrets: Vec::new(),
        },
        token: None,
    };
    match console::run(opts) {
        Ok(()) => 0,
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            eprintln!("cordon: console: {msg}");
            125
        }
    }
}
