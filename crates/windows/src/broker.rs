//! The long-lived broker of elevated runs (`cordon __broker`, `exec::broker`): its pipe's
//! name, the frames of its start and of each connection's handshake, and the checks both
//! ends make, pure so they are tested on every platform.
//!
//! A connection, in order (frames of `handoff`'s encoding; each is one `write_frame`):
//! 1. client → broker: [`Connect`] (the client's version). The client speaks first because a
//!    pipe server can impersonate its client only after reading from it.
//! 2. broker → client: [`Greeting`]: `Hello` (the broker's version, process id and the
//!    secret the starting cordon gave it) once the client's token is the developer's, else
//!    `Refused` naming why.
//! 3. client → broker: [`ClientOp`]: `Quit` (a broker of another version is replaced) or
//!    `Run`, then one `handoff::Request`; the broker answers one `handoff::Response` and
//!    holds the command's handles until the client closes the pipe (it has duplicated them
//!    out by then).
//!
//! Frames 1 and 2 and `Quit` are the part every cordon version must keep as they are, so
//! that any version can tell another's broker to go.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::handoff::{bad, fields, num, HandoffError, Writer};
use crate::sid::Sid;

/// What a broker and a client must agree on to work together: the crate's version and the
/// protocol's. A broker of any other version is told to quit and replaced.
pub const VERSION: &str = concat!(
    "cordon-windows ",
    env!("CARGO_PKG_VERSION"),
    " broker protocol 1"
);

/// How long a broker waits for the next command before it exits.
pub const IDLE_EXIT: Duration = Duration::from_secs(10 * 60);

/// The pipe of the broker for one developer, logon session and account, and the names of the
/// developer's files about it (in cordon's state folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerName {
    /// 32 hex digits: the first 128 bits of SHA-256 over what the broker is for.
    pub id: String,
}

impl BrokerName {
    /// Derived, not stored: any cordon of this developer in this logon session finds the same
    /// broker, and two developers, two sessions or two accounts never share one. `session`
    /// names the developer's logon session (its logon SID); `account` is compared without
    /// case, as Windows compares account names.
    pub fn new(developer: &Sid, session: &str, account: &str) -> BrokerName {
        let mut h = Sha256::new();
        h.update(b"cordon broker pipe v1\0");
        h.update(developer.to_string().as_bytes());
        h.update(b"\0");
        h.update(session.as_bytes());
        h.update(b"\0");
        h.update(account.to_lowercase().as_bytes());
        let digest = h.finalize();
        BrokerName {
            id: digest[..16].iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// `\\.\pipe\cordon-broker-<id>`.
    pub fn pipe(&self) -> String {
        format!(r"\\.\pipe\cordon-broker-{}", self.id)
    }

    /// The file holding the running broker's secret (readable by the developer only: the
    /// state folder is denied to the sandbox group).
    pub fn key_file(&self) -> String {
        format!("broker-{}.key", self.id)
    }

    /// The file held open exclusively while a broker is being started, so two runs at once
    /// start one broker between them.
    pub fn lock_file(&self) -> String {
        format!("broker-{}.lock", self.id)
    }
}

/// What the starting cordon writes on the new broker's standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The only user the broker serves (its pipe's DACL and its check of each client).
    pub developer: Sid,
    /// The account every request must name (`None` only in tests run as the same user).
    pub account: Option<String>,
    pub pipe: String,
    /// The broker shows it in its `Hello`, proving it is the one this developer started.
    pub secret: String,
    pub idle_ms: u64,
}

impl Start {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.field("developer", &self.developer.to_string());
        w.opt("account", self.account.as_deref());
        w.field("pipe", &self.pipe);
        w.field("secret", &self.secret);
        w.field("idle-ms", &self.idle_ms.to_string());
        w.0
    }

    pub fn decode(payload: &[u8]) -> Result<Start, HandoffError> {
        let (mut developer, mut account, mut pipe, mut secret, mut idle_ms) =
            (None, None, None, None, None);
        for (name, v) in fields(payload)? {
            match name {
                "developer" => {
                    developer =
                        Some(Sid::parse(v).map_err(|e| bad(format!("developer `{v}`: {e}")))?)
                }
                "account" => account = Some(v.to_string()),
                "pipe" => pipe = Some(v.to_string()),
                "secret" => secret = Some(v.to_string()),
                "idle-ms" => idle_ms = Some(num(name, v)?),
                other => return Err(bad(format!("unknown field {other}"))),
            }
        }
        let pipe: String = pipe.ok_or_else(|| bad("no pipe"))?;
        if !pipe.starts_with(r"\\.\pipe\cordon-broker-") {
            return Err(bad(format!("`{pipe}` is not a broker's pipe")));
        }
        let secret: String = secret.ok_or_else(|| bad("no secret"))?;
        if secret.len() < 16 {
            return Err(bad("a secret shorter than 16 characters"));
        }
        Ok(Start {
            developer: developer.ok_or_else(|| bad("no developer"))?,
            account,
            pipe,
            secret,
            idle_ms: idle_ms.ok_or_else(|| bad("no idle-ms"))?,
        })
    }
}

/// The new broker's answer on its standard output, once it serves (or why it cannot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAnswer {
    Ready { pid: u32 },
    Failed { message: String },
}

impl StartAnswer {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        match self {
            StartAnswer::Ready { pid } => w.field("ready", &pid.to_string()),
            StartAnswer::Failed { message } => w.field("failed", message),
        }
        w.0
    }

    pub fn decode(payload: &[u8]) -> Result<StartAnswer, HandoffError> {
        match fields(payload)?.as_slice() {
            [("ready", pid)] => Ok(StartAnswer::Ready {
                pid: num("ready", pid)?,
            }),
            [("failed", message)] => Ok(StartAnswer::Failed {
                message: message.to_string(),
            }),
            _ => Err(bad("a start answer that is neither ready nor failed")),
        }
    }
}

/// The client's first frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub version: String,
}

impl Connect {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.field("client-version", &self.version);
        w.0
    }

    pub fn decode(payload: &[u8]) -> Result<Connect, HandoffError> {
        // Fields a later version adds are ignored here: this frame must stay readable.
        fields(payload)?
            .into_iter()
            .find(|(n, _)| *n == "client-version")
            .map(|(_, v)| Connect {
                version: v.to_string(),
            })
            .ok_or_else(|| bad("no client-version"))
    }
}

/// The broker's answer to [`Connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Greeting {
    Hello {
        version: String,
        pid: u32,
        secret: String,
    },
    Refused {
        message: String,
    },
}

impl Greeting {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        match self {
            Greeting::Hello {
                version,
                pid,
                secret,
            } => {
                w.field("broker-version", version);
                w.field("pid", &pid.to_string());
                w.field("secret", secret);
            }
            Greeting::Refused { message } => w.field("refused", message),
        }
        w.0
    }

    pub fn decode(payload: &[u8]) -> Result<Greeting, HandoffError> {
        let (mut version, mut pid, mut secret, mut refused) = (None, None, None, None);
        for (name, v) in fields(payload)? {
            match name {
                "broker-version" => version = Some(v.to_string()),
                "pid" => pid = Some(num(name, v)?),
                "secret" => secret = Some(v.to_string()),
                "refused" => refused = Some(v.to_string()),
                _ => {} // a later version's addition
            }
        }
        match (refused, version, pid, secret) {
            (Some(message), ..) => Ok(Greeting::Refused { message }),
            (None, Some(version), Some(pid), Some(secret)) => Ok(Greeting::Hello {
                version,
                pid,
                secret,
            }),
            _ => Err(bad("a greeting that is neither hello nor refused")),
        }
    }
}

/// What the client asks once greeted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientOp {
    /// A `handoff::Request` follows.
    Run,
    /// Exit now: the client runs another version and starts its own broker.
    Quit,
}

impl ClientOp {
    pub fn encode(self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.field(
            "op",
            match self {
                ClientOp::Run => "run",
                ClientOp::Quit => "quit",
            },
        );
        w.0
    }

    pub fn decode(payload: &[u8]) -> Result<ClientOp, HandoffError> {
        match fields(payload)?.as_slice() {
            [("op", "run")] => Ok(ClientOp::Run),
            [("op", "quit")] => Ok(ClientOp::Quit),
            _ => Err(bad("an op that is neither run nor quit")),
        }
    }
}

/// What the client makes of a greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The broker this developer started, of this version.
    Serve { pid: u32 },
    /// The broker this developer started, of another version: tell it to quit, start anew.
    Replace { pid: u32, version: String },
    /// Not to be used; the message says why (cordon exits 125 with it).
    Refuse(String),
}

/// Judges a greeting against the secret in the developer's key file (`None`: there is
/// none) and the client's own version. The secret comes first: whoever holds the pipe's name
/// without it is not the broker this developer started, whatever version it claims, and is
/// told nothing (not even to quit).
pub fn judge_greeting(greeting: &Greeting, key: Option<&str>, version: &str) -> Verdict {
    let (their_version, pid, secret) = match greeting {
        Greeting::Refused { message } => {
            return Verdict::Refuse(format!("cordon's broker refused this client: {message}"))
        }
        Greeting::Hello {
            version,
            pid,
            secret,
        } => (version, *pid, secret),
    };
    match key {
        Some(key) if same_secret(key, secret) => {}
        Some(_) => {
            return Verdict::Refuse(format!(
                "the process serving cordon's broker pipe (pid {pid}) does not know the secret of the broker cordon started; it is not cordon's broker"
            ))
        }
        None => {
            return Verdict::Refuse(format!(
                "a process (pid {pid}) serves cordon's broker pipe, but cordon's state folder has no key for it; it is not a broker cordon started"
            ))
        }
    }
    if their_version != version {
        return Verdict::Replace {
            pid,
            version: their_version.clone(),
        };
    }
    Verdict::Serve { pid }
}

/// Compares without stopping at the first difference.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The broker's check of a connected client: its token's user must be the developer it was
/// started for, and not restricted (a sandboxed command of unelevated mode runs as the
/// developer with a restricted token; it must not reach the account through the broker).
pub fn judge_client(developer: &Sid, user: &Sid, restricted: bool, pid: u32) -> Result<(), String> {
    if user != developer {
        return Err(format!(
            "the client (pid {pid}) runs as {user}; this broker serves only {developer}"
        ));
    }
    if restricted {
        return Err(format!(
            "the client (pid {pid}) has a restricted token: a sandboxed command may not ask for another"
        ));
    }
    Ok(())
}

/// Whether a broker with `active` connections, the last of which ended `since_last` ago,
/// has been idle for `idle` and exits.
pub fn idle_expired(active: usize, since_last: Duration, idle: Duration) -> bool {
    active == 0 && since_last >= idle
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(s: &str) -> Sid {
        Sid::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    const DEV: &str = "S-1-5-21-1-2-3-1001";
    const LOGON: &str = "S-1-5-5-0-123456";

    #[test]
    fn the_pipe_name_is_derived_from_developer_session_and_account() {
        let a = BrokerName::new(&sid(DEV), LOGON, "CordonSandboxOffline");
        assert_eq!(a, BrokerName::new(&sid(DEV), LOGON, "CordonSandboxOffline"));
        assert_eq!(a, BrokerName::new(&sid(DEV), LOGON, "cordonsandboxoffline"));
        assert_eq!(a.id.len(), 32);
        assert!(a.id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a.pipe(), format!(r"\\.\pipe\cordon-broker-{}", a.id));
        assert_eq!(a.key_file(), format!("broker-{}.key", a.id));
        let others = [
            BrokerName::new(&sid("S-1-5-21-1-2-3-1002"), LOGON, "CordonSandboxOffline"),
            BrokerName::new(&sid(DEV), "S-1-5-5-0-123457", "CordonSandboxOffline"),
            BrokerName::new(&sid(DEV), LOGON, "CordonSandboxOnline"),
        ];
        for o in &others {
            assert_ne!(o.id, a.id, "{o:?}");
        }
        // A field boundary cannot be moved to make two inputs one.
        assert_ne!(
            BrokerName::new(&sid(DEV), "ab", "c").id,
            BrokerName::new(&sid(DEV), "a", "bc").id
        );
    }

    #[test]
    fn start_and_its_answer_round_trip() {
        let s = Start {
            developer: sid(DEV),
            account: Some("CordonSandboxOffline".into()),
            pipe: BrokerName::new(&sid(DEV), LOGON, "x").pipe(),
            secret: "0123456789abcdef0123".into(),
            idle_ms: 600_000,
        };
        assert_eq!(Start::decode(&s.encode()), Ok(s.clone()));
        let same_user = Start {
            account: None,
            ..s.clone()
        };
        assert_eq!(Start::decode(&same_user.encode()), Ok(same_user));
        for a in [
            StartAnswer::Ready { pid: 4242 },
            StartAnswer::Failed {
                message: "pipe\nin use".into(),
            },
        ] {
            assert_eq!(StartAnswer::decode(&a.encode()), Ok(a.clone()));
        }
    }

    #[test]
    fn a_start_for_another_pipe_or_without_a_secret_is_refused() {
        let s = Start {
            developer: sid(DEV),
            account: None,
            pipe: r"\\.\pipe\someone-elses".into(),
            secret: "0123456789abcdef0123".into(),
            idle_ms: 1,
        };
        assert!(Start::decode(&s.encode()).is_err());
        let short = Start {
            pipe: BrokerName::new(&sid(DEV), LOGON, "x").pipe(),
            secret: "short".into(),
            ..s
        };
        assert!(Start::decode(&short.encode()).is_err());
        assert!(StartAnswer::decode(b"").is_err());
    }

    #[test]
    fn the_handshake_frames_round_trip() {
        let c = Connect {
            version: VERSION.into(),
        };
        assert_eq!(Connect::decode(&c.encode()), Ok(c));
        for g in [
            Greeting::Hello {
                version: VERSION.into(),
                pid: 7,
                secret: "s3cret".into(),
            },
            Greeting::Refused {
                message: "not you".into(),
            },
        ] {
            assert_eq!(Greeting::decode(&g.encode()), Ok(g.clone()));
        }
        for op in [ClientOp::Run, ClientOp::Quit] {
            assert_eq!(ClientOp::decode(&op.encode()), Ok(op));
        }
        assert!(ClientOp::decode(b"op 4\nstop\n").is_err());
    }

    #[test]
    fn the_frozen_frames_ignore_fields_a_later_version_adds() {
        let mut connect = Connect {
            version: "cordon-windows 9.0.0 broker protocol 7".into(),
        }
        .encode();
        connect.extend_from_slice(b"features 3\nabc\n");
        assert_eq!(
            Connect::decode(&connect).map(|c| c.version),
            Ok("cordon-windows 9.0.0 broker protocol 7".into())
        );
        let mut hello = Greeting::Hello {
            version: "later".into(),
            pid: 9,
            secret: "k".into(),
        }
        .encode();
        hello.extend_from_slice(b"features 3\nabc\n");
        assert!(matches!(
            Greeting::decode(&hello),
            Ok(Greeting::Hello { pid: 9, .. })
        ));
    }

    #[test]
    fn a_greeting_is_served_replaced_or_refused() {
        let hello = |version: &str, secret: &str| Greeting::Hello {
            version: version.into(),
            pid: 42,
            secret: secret.into(),
        };
        assert_eq!(
            judge_greeting(&hello(VERSION, "key"), Some("key"), VERSION),
            Verdict::Serve { pid: 42 }
        );
        assert_eq!(
            judge_greeting(
                &hello("cordon-windows 0.0.1 broker protocol 0", "key"),
                Some("key"),
                VERSION
            ),
            Verdict::Replace {
                pid: 42,
                version: "cordon-windows 0.0.1 broker protocol 0".into()
            }
        );
        // A squatter on the name: no secret, or the wrong one, whatever version it claims.
        for (g, key) in [
            (hello(VERSION, "guess"), Some("key")),
            (hello("old", "guess"), Some("key")),
            (hello(VERSION, "key"), None),
            (hello(VERSION, "ke"), Some("key")),
        ] {
            match judge_greeting(&g, key, VERSION) {
                Verdict::Refuse(m) => assert!(m.contains("pid 42"), "{m}"),
                other => panic!("{g:?} with {key:?}: {other:?}"),
            }
        }
        match judge_greeting(
            &Greeting::Refused {
                message: "the client runs as S-1-1-0".into(),
            },
            Some("key"),
            VERSION,
        ) {
            Verdict::Refuse(m) => assert!(m.contains("refused this client"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_the_developer_unrestricted_is_served() {
        let dev = sid(DEV);
        assert_eq!(judge_client(&dev, &dev, false, 1), Ok(()));
        let other = judge_client(&dev, &sid("S-1-5-21-1-2-3-1002"), false, 5);
        assert!(
            matches!(&other, Err(m) if m.contains("S-1-5-21-1-2-3-1002") && m.contains(DEV) && m.contains("pid 5")),
            "{other:?}"
        );
        let account = judge_client(&dev, &sid("S-1-5-21-9-9-9-1005"), false, 6);
        assert!(account.is_err());
        let restricted = judge_client(&dev, &dev, true, 7);
        assert!(
            matches!(&restricted, Err(m) if m.contains("restricted")),
            "{restricted:?}"
        );
    }

    #[test]
    fn idle_means_no_connection_for_the_whole_period() {
        let idle = Duration::from_secs(600);
        assert!(!idle_expired(0, Duration::from_secs(599), idle));
        assert!(idle_expired(0, Duration::from_secs(600), idle));
        assert!(!idle_expired(1, Duration::from_secs(6000), idle));
        assert_eq!(IDLE_EXIT, Duration::from_secs(600));
    }
}
