//! What `cordon request` may ask for, and what an allowed request changes in the running
//! sandbox.
//!
//! Only what cordon itself decides while the command runs can be widened live: a name for
//! the allow-list proxy, and a command the rules would otherwise stop. The file boundary
//! (mount view and Landlock) and the network mode are fixed when the sandbox starts: the
//! kernel offers no way to loosen them, so such a request is refused at once with the flag a
//! human would re-run with, rather than put to a human who could not grant it.

use cordon_policy::Host;

use crate::request::Kind;

/// What this run can widen while it runs (plain data from `cordon run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Widenable {
    /// The allow-list proxy runs (`--net allow`): it can let one more name through.
    pub network: bool,
    /// Every exec is judged by command rules: an approved command line can be let through.
    pub commands: bool,
}

/// One widening an agent asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Widening {
    /// `network.allow HOST`: connections to exactly this name through the proxy.
    NetworkAllow(String),
    /// `command PROGRAM ARG...`: command lines starting with these words run without the
    /// rules' prompt (a `forbid` rule still refuses them).
    Command(Vec<String>),
}

/// What the agent can ask for, for its error messages and `cordon request --help`.
pub const FORMS: &str = "`network.allow HOST` (one exact name, through the allow-list proxy) or `command PROGRAM [ARG...]` (a command line the rules would prompt for)";

impl Widening {
    /// Reads `what`; `Err` is the message for the agent (nothing went to a human).
    pub fn parse(what: &[String], can: Widenable) -> Result<Widening, String> {
        let (verb, rest) = what
            .split_first()
            .ok_or_else(|| format!("say what you need: {FORMS}"))?;
        match verb.as_str() {
            "network.allow" => {
                let [host] = rest else {
                    return Err("network.allow takes exactly one host name".into());
                };
                let name = match Host::parse(host) {
                    Some(Host::Name(name)) if !host.contains('*') => name,
                    Some(Host::Address(_)) => {
                        return Err(format!(
                            "{host} is an address: ask for the host name; addresses are allowed only by the human's own policy"
                        ))
                    }
                    _ => return Err(format!("{host} is not a host name")),
                };
                if !can.network {
                    return Err(format!(
                        "this sandbox has no allow-list proxy (its network is off or full), and a running sandbox cannot gain a network; ask the human to re-run the command with `--net allow --allow-domain {name}`"
                    ));
                }
                Ok(Widening::NetworkAllow(name))
            }
            "command" => {
                if rest.is_empty() {
                    return Err("command needs the command line it is for".into());
                }
                if !can.commands {
                    return Err("no command rules are in force in this run: commands already run without asking (within the sandbox's boundary)".into());
                }
                Ok(Widening::Command(rest.to_vec()))
            }
            "write" | "allow-write" | "filesystem.write" | "read" | "filesystem.read" => Err(
                "the file boundary of a running sandbox cannot be widened (the mount view and Landlock are fixed when it starts); ask the human to re-run the command with `--allow-write PATH` (or change `deny_read` in their policy)".into()
            ),
            other => Err(format!("cordon cannot grant `{other}`: ask for {FORMS}")),
        }
    }

    /// The grant an allowed request becomes (see `Broker::grant`).
    pub fn grant(&self) -> (Kind, Vec<String>) {
        match self {
            Widening::NetworkAllow(host) => (Kind::Network, vec![host.clone()]),
            Widening::Command(words) => (Kind::Command, words.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    const ALL: Widenable = Widenable {
        network: true,
        commands: true,
    };

    #[test]
    fn network_and_command_requests_parse() {
        assert_eq!(
            Widening::parse(&words("network.allow PyPI.org."), ALL),
            Ok(Widening::NetworkAllow("pypi.org".into()))
        );
        assert_eq!(
            Widening::parse(&words("command git push origin"), ALL),
            Ok(Widening::Command(words("git push origin")))
        );
    }

    #[test]
    fn what_cannot_be_granted_is_refused_with_the_way_out() {
        for (what, can, says) in [
            ("network.allow *.example.com", ALL, "not a host name"),
            ("network.allow 10.0.0.1", ALL, "address"),
            ("network.allow a.test b.test", ALL, "exactly one"),
            (
                "network.allow pypi.org",
                Widenable::default(),
                "--net allow",
            ),
            ("command", ALL, "command line"),
            ("command git push", Widenable::default(), "no command rules"),
            ("write /etc", ALL, "--allow-write"),
            ("sudo", ALL, "cannot grant"),
            ("", ALL, "say what"),
        ] {
            let err = Widening::parse(&words(what), can).expect_err(what);
            assert!(err.contains(says), "{what}: {err}");
        }
    }
}
