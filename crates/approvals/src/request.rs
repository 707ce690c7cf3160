//! What a human is asked (a request) and what they answer (a choice, through a channel).

use std::path::PathBuf;

use cordon_policy::{env_name_matches, CommandVerdict};
use serde::{Deserialize, Serialize};

/// Where a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A `prompt` command rule (or a `prompt` default) met an exec.
    Command,
    /// The proxy holds a connection to a destination the policy says to ask about.
    Network,
    /// The agent ran `cordon request` to ask for a wider boundary, with a justification.
    Request,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Command => "command",
            Kind::Network => "network",
            Kind::Request => "request",
        }
    }

    /// The choices a human may make. "Always" is written to the user's configuration, which
    /// can say "approved" for commands and "allow" for destinations; an escalation the agent
    /// asked for is a one-off, so it has no "always".
    pub const fn choices(self) -> &'static [Choice] {
        match self {
            Kind::Command | Kind::Network => &[
                Choice::AllowOnce,
                Choice::AllowSession,
                Choice::AllowAlways,
                Choice::Deny,
            ],
            Kind::Request => &[Choice::AllowOnce, Choice::AllowSession, Choice::Deny],
        }
    }
}

/// One question for a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub kind: Kind,
    /// The command line; `[host:port]` for a destination; what the agent asks for.
    pub subject: Vec<String>,
    /// The words an "allow for this session" or "allow always" answer covers: the words that
    /// matched the rule, `[host]` for a destination.
    pub scope: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// The rule's reason, or the agent's justification.
    pub reason: String,
    /// The rule that asked for a human (`prompt ["git", "push"] (file:line)`).
    pub rule: Option<String>,
    /// The transaction diff, when there is one (any JSON the transaction layer makes).
    pub diff: Option<serde_json::Value>,
    /// The last lines of the command's terminal output.
    pub output_tail: Option<String>,
}

impl Request {
    /// A request for an exec a `prompt` verdict stopped.
    pub fn command(verdict: &CommandVerdict<'_>, argv: &[String], cwd: Option<PathBuf>) -> Self {
        Request {
            kind: Kind::Command,
            subject: argv.to_vec(),
            scope: verdict.scope.clone(),
            cwd,
            reason: verdict.reason(),
            rule: verdict.rule.map(|r| r.to_string()),
            diff: None,
            output_tail: None,
        }
    }

    /// A request for a destination the proxy holds.
    pub fn network(host: &str, port: u16, reason: impl Into<String>) -> Self {
        Request {
            kind: Kind::Network,
            subject: vec![format!("{host}:{port}")],
            scope: vec![host.to_string()],
            cwd: None,
            reason: reason.into(),
            rule: None,
            diff: None,
            output_tail: None,
        }
    }

    /// `cordon request`: the agent asks for `what` (e.g. `["network.allow", "pypi.org"]`).
    pub fn escalation(what: Vec<String>, justification: impl Into<String>) -> Self {
        Request {
            kind: Kind::Request,
            scope: what.clone(),
            subject: what,
            cwd: None,
            reason: justification.into(),
            rule: None,
            diff: None,
            output_tail: None,
        }
    }
}

/// A human's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    AllowOnce,
    AllowSession,
    AllowAlways,
    Deny,
}

impl Choice {
    pub fn as_str(self) -> &'static str {
        match self {
            Choice::AllowOnce => "allow_once",
            Choice::AllowSession => "allow_session",
            Choice::AllowAlways => "allow_always",
            Choice::Deny => "deny",
        }
    }

    pub fn parse(text: &str) -> Option<Choice> {
        [
            Choice::AllowOnce,
            Choice::AllowSession,
            Choice::AllowAlways,
            Choice::Deny,
        ]
        .into_iter()
        .find(|c| c.as_str() == text)
    }

    pub fn allows(self) -> bool {
        self != Choice::Deny
    }
}

/// How an answer reached the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A human at cordon's terminal.
    Terminal,
    /// A human in the web console (through the control socket).
    Console,
    /// An earlier "allow for this session" answer covered it.
    Session,
    /// Nobody answered in time: denied.
    Timeout,
    /// cordon stopped with the request open: denied.
    Broker,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Terminal => "terminal",
            Channel::Console => "console",
            Channel::Session => "session",
            Channel::Timeout => "timeout",
            Channel::Broker => "broker",
        }
    }
}

/// The broker's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub id: String,
    pub choice: Choice,
    pub channel: Channel,
    /// Who decided: `user`, `timeout`, `session` or `broker`.
    pub by: String,
    /// For `allow_always`: the file the rule went to.
    pub written_to: Option<PathBuf>,
}

impl Answer {
    pub fn allowed(&self) -> bool {
        self.choice.allows()
    }
}

/// Masks what the sandbox hides from anything a human is shown: `NAME=value` and
/// `--name=value` where NAME looks like a secret (the policy's env patterns, less the kept
/// names), and every known secret value wherever it appears.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    pub env_deny: Vec<String>,
    pub env_keep: Vec<String>,
    /// Values of the variables removed from the sandbox's environment.
    pub secrets: Vec<String>,
}

pub const MASK: &str = "•••";

impl Scrubber {
    pub fn word(&self, word: &str) -> String {
        let mut out = self.text(word);
        let (name, has_value) = match out.split_once('=') {
            Some((name, _)) => (name.to_string(), true),
            None => (out.clone(), false),
        };
        if has_value {
            let bare = name.trim_start_matches('-');
            let env_name = bare.replace('-', "_");
            if self.is_secret_name(&env_name) {
                out = format!("{name}={MASK}");
            }
        }
        out
    }

    /// A command line as a human may see it: each word as `word` masks it, and the word after
    /// a secret-looking long option without `=` (`--password hunter2`).
    pub fn words(&self, words: &[String]) -> Vec<String> {
        let mut out = Vec::with_capacity(words.len());
        let mut hide_next = false;
        for w in words {
            if hide_next {
                out.push(MASK.to_string());
                hide_next = false;
                continue;
            }
            out.push(self.word(w));
            if let Some(name) = w.strip_prefix("--").filter(|n| !n.contains('=')) {
                hide_next = self.is_secret_name(&name.replace('-', "_"));
            }
        }
        out
    }

    fn is_secret_name(&self, name: &str) -> bool {
        !name.is_empty()
            && !self.env_keep.iter().any(|k| k == name)
            && self.env_deny.iter().any(|p| env_name_matches(p, name))
    }

    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        // Short values would mask ordinary words; the sandbox hid them all the same, but
        // a 3-letter "secret" shown is no leak worth garbling every message for.
        for secret in self.secrets.iter().filter(|s| s.len() >= 4) {
            out = out.replace(secret.as_str(), MASK);
        }
        out
    }

    fn json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.json(v)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (self.text(k), self.json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// The request as a human may see it.
    pub fn request(&self, r: &Request) -> Request {
        let words = |w: &[String]| self.words(w);
        Request {
            kind: r.kind,
            subject: words(&r.subject),
            scope: words(&r.scope),
            cwd: r.cwd.clone(),
            reason: self.text(&r.reason),
            rule: r.rule.as_deref().map(|t| self.text(t)),
            diff: r.diff.as_ref().map(|d| self.json(d)),
            output_tail: r.output_tail.as_deref().map(|t| self.text(t)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_assignments_options_and_known_values() {
        let s = Scrubber {
            env_deny: cordon_policy::DEFAULT_ENV_DENY
                .iter()
                .map(|p| p.to_string())
                .collect(),
            env_keep: vec!["KEPT_TOKEN".into()],
            secrets: vec!["hunter2-very-secret".into(), "abc".into()],
        };
        assert_eq!(s.word("GITHUB_TOKEN=ghp_x"), format!("GITHUB_TOKEN={MASK}"));
        assert_eq!(s.word("--api-key=sk-1"), format!("--api-key={MASK}"));
        assert_eq!(s.word("KEPT_TOKEN=visible"), "KEPT_TOKEN=visible");
        assert_eq!(s.word("PATH=/usr/bin"), "PATH=/usr/bin");
        assert_eq!(s.word("x=hunter2-very-secret!"), format!("x={MASK}!"));
        assert_eq!(s.word("abc"), "abc", "too short to mask");
        let line = |l: &str| l.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            s.words(&line("login --api-key sk-live-1 --user me")),
            line(&format!("login --api-key {MASK} --user me"))
        );
        assert_eq!(s.words(&line("x --path p")), line("x --path p"));
        let r = Request {
            diff: Some(serde_json::json!({"file": ["+ key hunter2-very-secret"]})),
            output_tail: Some("token: hunter2-very-secret\n".into()),
            ..Request::escalation(vec!["x".into()], "because hunter2-very-secret")
        };
        let shown = serde_json::to_string(&s.request(&r)).unwrap_or_default();
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
