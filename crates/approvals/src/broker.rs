//! The broker: holds open requests until a human answers one (or the timeout denies it).
//!
//! It lives in the `cordon run` process, outside the sandbox. `ask` blocks the calling thread
//! (the exec supervisor's), `ask_async` parks a tokio task (the proxy's); answers come from
//! any channel through `decide`. Every request and answer is an audit event.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use cordon_audit::Event;
use serde::{Deserialize, Serialize};

use crate::persist::{Persist, PersistError};
use crate::request::{Answer, Channel, Choice, Kind, Request, Scrubber};

/// How the broker is set up for one run.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The run's id (as in the audit log); request ids start with it.
    pub run: String,
    /// How long a request waits for a human before it counts as denied.
    pub timeout: Duration,
    pub persist: Persist,
    pub scrub: Scrubber,
}

/// An open request as a channel shows it (already scrubbed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    pub run: String,
    #[serde(flatten)]
    pub request: Request,
    /// RFC 3339.
    pub asked_at: String,
    pub seconds_left: u64,
    pub choices: Vec<Choice>,
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no open request {0} (answered already, or timed out)")]
    Unknown(String),
    #[error("{kind} requests cannot be answered with {choice}")]
    NotAChoice {
        kind: &'static str,
        choice: &'static str,
    },
    #[error("could not allow always")]
    Persist(#[from] PersistError),
}

type AuditFn = dyn Fn(Event) + Send + Sync;

/// What a human sees beside a request, taken at the moment one is asked (not for requests a
/// grant or session answer covers): the command's latest terminal output, the transaction's
/// diff so far.
pub trait Witness: Send + Sync {
    fn output_tail(&self) -> Option<String>;
    fn diff(&self) -> Option<serde_json::Value>;
}

/// A widening a human allowed through `cordon request`: later requests it covers are
/// allowed without asking again (`once`: only the next one).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    kind: Kind,
    words: Vec<String>,
    once: bool,
}

impl Grant {
    /// A grant covers a request of its kind whose command line (or destination host) starts
    /// with its words; a program is named by its file name, as rules name it.
    fn covers(&self, r: &Request) -> bool {
        if self.kind != r.kind || self.words.is_empty() {
            return false;
        }
        let base = |w: &String| w.rsplit('/').next().unwrap_or(w).to_string();
        let starts = |words: &[String]| {
            words.len() >= self.words.len()
                && words
                    .iter()
                    .zip(&self.words)
                    .enumerate()
                    .all(|(i, (a, b))| match i {
                        0 => base(a) == base(b),
                        _ => a == b,
                    })
        };
        match r.kind {
            Kind::Network => {
                let host = |w: Option<&String>| w.and_then(|w| cordon_policy::Host::parse(w));
                host(r.scope.first()).is_some_and(|h| Some(h) == host(self.words.first()))
            }
            _ => starts(&r.subject),
        }
    }
}

/// A cheap handle: clones share one broker.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    config: BrokerConfig,
    state: Mutex<State>,
    changed: Condvar,
    audit: Box<AuditFn>,
    witness: OnceLock<Arc<dyn Witness>>,
}

struct State {
    next: u64,
    /// Bumped on every change, so watchers can wait for "something new".
    version: u64,
    open: BTreeMap<u64, Open>,
    /// "Allow for this session" answers: (kind, scope).
    session: Vec<(Kind, Vec<String>)>,
    /// What allowed `cordon request`s widened.
    grants: Vec<Grant>,
    closed: bool,
}

struct Open {
    shown: Request,
    asked_at: SystemTime,
    deadline: Instant,
    reply: mpsc::SyncSender<Answer>,
}

impl Broker {
    /// `audit` receives every `approval_requested` and `approval_decided` event.
    pub fn new(config: BrokerConfig, audit: impl Fn(Event) + Send + Sync + 'static) -> Broker {
        Broker {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(State {
                    next: 1,
                    version: 0,
                    open: BTreeMap::new(),
                    session: Vec::new(),
                    grants: Vec::new(),
                    closed: false,
                }),
                changed: Condvar::new(),
                audit: Box::new(audit),
                witness: OnceLock::new(),
            }),
        }
    }

    pub fn run(&self) -> &str {
        &self.inner.config.run
    }

    /// How long a request waits for a human.
    pub fn timeout(&self) -> Duration {
        self.inner.config.timeout
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep serving.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where requests get what a human sees beside them (set once; later calls are ignored).
    pub fn set_witness(&self, witness: Arc<dyn Witness>) {
        let _ = self.inner.witness.set(witness);
    }

    /// Records what an allowed `cordon request` widens: later requests of `kind` starting
    /// with `words` are allowed without asking (only the next one when `once`).
    pub fn grant(&self, kind: Kind, words: Vec<String>, once: bool) {
        let mut st = self.lock();
        st.grants.push(Grant { kind, words, once });
        st.version += 1;
        self.inner.changed.notify_all();
    }

    /// Whether a grant or a session answer already allows `request` (a once grant is used
    /// up). For requests that never go to a human (a name off the allow-list when the
    /// policy does not ask).
    pub fn covered(&self, request: &Request) -> bool {
        self.covering(&mut self.lock(), request, true).is_some()
    }

    /// Whether `covered` would say yes, without using up a once grant.
    pub fn would_cover(&self, request: &Request) -> bool {
        self.covering(&mut self.lock(), request, false).is_some()
    }

    /// The answer a grant or session answer gives `r` without a human, using up a once
    /// grant.
    fn covering(
        &self,
        st: &mut State,
        r: &Request,
        use_up: bool,
    ) -> Option<(Choice, &'static str)> {
        if let Some(i) = st.grants.iter().position(|g| g.covers(r)) {
            let once = st.grants[i].once;
            if once && use_up {
                st.grants.remove(i);
            }
            let choice = match once {
                true => Choice::AllowOnce,
                false => Choice::AllowSession,
            };
            return Some((choice, "grant"));
        }
        st.session
            .iter()
            .any(|(k, scope)| *k == r.kind && r.scope.starts_with(scope))
            .then_some((Choice::AllowSession, "session"))
    }

    /// Asks a human and blocks until an answer, the timeout (deny) or `close` (deny).
    pub fn ask(&self, mut request: Request) -> Answer {
        let (tx, rx) = mpsc::sync_channel(1);
        let covered = {
            let mut st = self.lock();
            self.covering(&mut st, &request, true)
        };
        // Only a request a human will see is worth the terminal tail and the diff (taken
        // outside the lock: a diff can take a while).
        if covered.is_none() {
            if let Some(w) = self.inner.witness.get() {
                request.output_tail = request.output_tail.or_else(|| w.output_tail());
                request.diff = request.diff.or_else(|| w.diff());
            }
        }
        let shown = self.inner.config.scrub.request(&request);
        let (id, n) = {
            let mut st = self.lock();
            let n = st.next;
            st.next += 1;
            let id = self.id(n);
            self.audit_requested(&id, &shown);
            if covered.is_some() || st.closed {
                let (choice, channel, by) = match covered {
                    Some((choice, by)) => (choice, Channel::Session, by),
                    None => (Choice::Deny, Channel::Broker, "broker"),
                };
                let answer = Answer {
                    id: id.clone(),
                    choice,
                    channel,
                    by: by.into(),
                    written_to: None,
                };
                self.audit_decided(&shown, &answer);
                return answer;
            }
            st.open.insert(
                n,
                Open {
                    shown,
                    asked_at: SystemTime::now(),
                    deadline: Instant::now() + self.inner.config.timeout,
                    reply: tx,
                },
            );
            st.version += 1;
            self.inner.changed.notify_all();
            (id, n)
        };
        match rx.recv_timeout(self.inner.config.timeout) {
            Ok(answer) => answer,
            Err(_) => {
                let mut st = self.lock();
                match st.open.remove(&n) {
                    Some(open) => {
                        st.version += 1;
                        self.inner.changed.notify_all();
                        let answer = Answer {
                            id,
                            choice: Choice::Deny,
                            channel: Channel::Timeout,
                            by: "timeout".into(),
                            written_to: None,
                        };
                        self.audit_decided(&open.shown, &answer);
                        answer
                    }
                    // Answered just as the time ran out: the answer is in the channel.
                    None => rx.try_recv().unwrap_or(Answer {
                        id,
                        choice: Choice::Deny,
                        channel: Channel::Broker,
                        by: "broker".into(),
                        written_to: None,
                    }),
                }
            }
        }
    }

    /// `ask` for async callers (the proxy): the wait runs on tokio's blocking pool.
    pub async fn ask_async(&self, request: Request) -> Answer {
        let broker = self.clone();
        let id_hint = self.run().to_string();
        tokio::task::spawn_blocking(move || broker.ask(request))
            .await
            .unwrap_or(Answer {
                id: id_hint,
                choice: Choice::Deny,
                channel: Channel::Broker,
                by: "broker".into(),
                written_to: None,
            })
    }

    /// A human's answer to request `id` through `channel`.
    pub fn decide(
        &self,
        id: &str,
        choice: Choice,
        channel: Channel,
    ) -> Result<Answer, DecideError> {
        let mut st = self.lock();
        let n = self
            .number(id)
            .filter(|n| st.open.contains_key(n))
            .ok_or_else(|| DecideError::Unknown(id.to_string()))?;
        let kind = st.open[&n].shown.kind;
        if !kind.choices().contains(&choice) {
            return Err(DecideError::NotAChoice {
                kind: kind.as_str(),
                choice: choice.as_str(),
            });
        }
        let written_to = if choice == Choice::AllowAlways {
            let open = &st.open[&n];
            let note = format!(
                "allowed always through the {} on {}",
                channel.as_str(),
                humantime::format_rfc3339_seconds(SystemTime::now())
            );
            // Written before the request is answered: if the write fails the request stays
            // open and the human can choose again.
            Some(
                self.inner
                    .config
                    .persist
                    .write(kind, &open.shown.scope, &note)?,
            )
        } else {
            None
        };
        let Some(open) = st.open.remove(&n) else {
            return Err(DecideError::Unknown(id.to_string()));
        };
        if matches!(choice, Choice::AllowSession | Choice::AllowAlways) {
            st.session.push((kind, open.shown.scope.clone()));
        }
        st.version += 1;
        self.inner.changed.notify_all();
        let answer = Answer {
            id: id.to_string(),
            choice,
            channel,
            by: "user".into(),
            written_to,
        };
        self.audit_decided(&open.shown, &answer);
        // The asker may have timed out a moment ago; then nobody listens, and the timeout
        // (already audited) stands.
        let _ = open.reply.try_send(answer.clone());
        Ok(answer)
    }

    /// The open requests, oldest first.
    pub fn pending(&self) -> Vec<Pending> {
        let st = self.lock();
        let now = Instant::now();
        st.open
            .iter()
            .map(|(n, open)| Pending {
                id: self.id(*n),
                run: self.run().to_string(),
                request: open.shown.clone(),
                asked_at: humantime::format_rfc3339_seconds(open.asked_at).to_string(),
                seconds_left: open.deadline.saturating_duration_since(now).as_secs(),
                choices: open.shown.kind.choices().to_vec(),
            })
            .collect()
    }

    /// Is request `id` still waiting for an answer?
    pub fn is_open(&self, id: &str) -> bool {
        let st = self.lock();
        self.number(id).is_some_and(|n| st.open.contains_key(&n))
    }

    /// Has `close` been called?
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Waits until the state changes from `since` (or `timeout`); returns the new version.
    pub fn wait_change(&self, since: u64, timeout: Duration) -> u64 {
        let st = self.lock();
        let (st, _) = self
            .inner
            .changed
            .wait_timeout_while(st, timeout, |st| st.version == since && !st.closed)
            .unwrap_or_else(|e| e.into_inner());
        st.version
    }

    /// Denies every open request and every later one: cordon is stopping.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        let open = std::mem::take(&mut st.open);
        st.version += 1;
        self.inner.changed.notify_all();
        for (n, open) in open {
            let answer = Answer {
                id: self.id(n),
                choice: Choice::Deny,
                channel: Channel::Broker,
                by: "broker".into(),
                written_to: None,
            };
            self.audit_decided(&open.shown, &answer);
            let _ = open.reply.try_send(answer);
        }
    }

    /// A command line as a human may see it.
    pub fn scrub_words(&self, words: &[String]) -> Vec<String> {
        self.inner.config.scrub.words(words)
    }

    fn id(&self, n: u64) -> String {
        format!("{}-{n}", self.run())
    }

    fn number(&self, id: &str) -> Option<u64> {
        id.strip_prefix(self.run())?.strip_prefix('-')?.parse().ok()
    }

    fn audit_requested(&self, id: &str, shown: &Request) {
        (self.inner.audit)(Event::ApprovalRequested {
            id: id.to_string(),
            kind: shown.kind.as_str().into(),
            subject: shown.subject.clone(),
            cwd: shown.cwd.clone(),
            reason: shown.reason.clone(),
            rule: shown.rule.clone(),
        });
    }

    fn audit_decided(&self, shown: &Request, answer: &Answer) {
        (self.inner.audit)(Event::ApprovalDecided {
            id: answer.id.clone(),
            kind: shown.kind.as_str().into(),
            subject: shown.subject.clone(),
            decision: answer.choice.as_str().into(),
            by: answer.by.clone(),
            channel: answer.channel.as_str().into(),
            written_to: answer.written_to.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::thread;

    fn config(timeout_ms: u64) -> BrokerConfig {
        BrokerConfig {
            run: "r1".into(),
            timeout: Duration::from_millis(timeout_ms),
            persist: Persist::default(),
            scrub: Scrubber::default(),
        }
    }

    fn recorded() -> (
        Arc<Mutex<Vec<Event>>>,
        impl Fn(Event) + Send + Sync + 'static,
    ) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        (events, move |e| sink.lock().unwrap().push(e))
    }

    fn cmd(s: &str) -> Request {
        let words: Vec<String> = s.split_whitespace().map(String::from).collect();
        Request {
            kind: Kind::Command,
            subject: words.clone(),
            scope: words,
            cwd: Some("/ws".into()),
            reason: "r".into(),
            rule: None,
            diff: None,
            output_tail: None,
        }
    }

    fn answer_when_pending(broker: &Broker, choice: Choice) -> thread::JoinHandle<Answer> {
        let b = broker.clone();
        thread::spawn(move || loop {
            if let Some(p) = b.pending().first() {
                return b.decide(&p.id, choice, Channel::Console).unwrap();
            }
            b.wait_change(0, Duration::from_millis(20));
        })
    }

    #[test]
    fn a_timeout_denies_and_is_audited() {
        let (events, audit) = recorded();
        let broker = Broker::new(config(100), audit);
        let started = Instant::now();
        let answer = broker.ask(cmd("git push"));
        assert_eq!(answer.choice, Choice::Deny);
        assert_eq!(answer.channel, Channel::Timeout);
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert!(broker.pending().is_empty());
        assert!(broker
            .decide(&answer.id, Choice::AllowOnce, Channel::Console)
            .is_err());
        let events = events.lock().unwrap();
        assert!(
            matches!(&events[1], Event::ApprovalDecided { by, channel, decision, .. }
            if by == "timeout" && channel == "timeout" && decision == "deny")
        );
    }

    #[test]
    fn a_human_answers_once_and_the_asker_gets_it() {
        let (events, audit) = recorded();
        let broker = Broker::new(config(10_000), audit);
        let human = answer_when_pending(&broker, Choice::AllowOnce);
        let answer = broker.ask(cmd("git push"));
        assert!(answer.allowed());
        assert_eq!(answer.channel, Channel::Console);
        assert_eq!(human.join().unwrap(), answer);
        // once means once
        let again = Broker::clone(&broker);
        let denier = answer_when_pending(&again, Choice::Deny);
        assert!(!broker.ask(cmd("git push")).allowed());
        denier.join().unwrap();
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 4);
        assert!(
            matches!(&events[1], Event::ApprovalDecided { by, channel, .. }
            if by == "user" && channel == "console")
        );
    }

    #[test]
    fn session_answers_cover_later_requests_of_the_same_scope() {
        let (_events, audit) = recorded();
        let broker = Broker::new(config(200), audit);
        let human = answer_when_pending(&broker, Choice::AllowSession);
        assert!(broker.ask(cmd("make test")).allowed());
        human.join().unwrap();
        let later = broker.ask(cmd("make test -v"));
        assert_eq!(later.channel, Channel::Session);
        assert!(later.allowed());
        let other = broker.ask(cmd("make install"));
        assert_eq!(
            other.channel,
            Channel::Timeout,
            "another scope is asked again"
        );
        let net = broker.ask(Request::network("make", 443, "x"));
        assert!(!net.allowed(), "session answers are per kind");
    }

    #[test]
    fn allow_always_writes_the_user_file_only() {
        let dir = std::env::temp_dir().join(format!("cordon-broker-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let ws = dir.join("ws");
        fs::create_dir_all(&ws).unwrap();
        let user = dir.join("home/.config/cordon/config.toml");
        let mut cfg = config(10_000);
        cfg.persist = Persist {
            user_config: Some(user.clone()),
            writable_roots: vec![ws.clone()],
        };
        let (events, audit) = recorded();
        let broker = Broker::new(cfg, audit);
        let human = answer_when_pending(&broker, Choice::AllowAlways);
        let answer = broker.ask(cmd("git push"));
        assert_eq!(answer.written_to.as_ref(), Some(&user));
        human.join().unwrap();
        let text = fs::read_to_string(&user).unwrap();
        assert!(
            text.contains("[[commands.approved]]") && text.contains("\"push\""),
            "{text}"
        );
        assert_eq!(
            fs::read_dir(&ws).unwrap().count(),
            0,
            "the workspace is untouched"
        );
        assert!(events.lock().unwrap().iter().any(|e| matches!(e,
            Event::ApprovalDecided { written_to: Some(p), .. } if *p == user)));

        // a "user config" inside the workspace is refused, and the request stays open
        let mut cfg = config(300);
        cfg.persist = Persist {
            user_config: Some(ws.join("config.toml")),
            writable_roots: vec![ws.clone()],
        };
        let broker = Broker::new(cfg, |_| {});
        let b = broker.clone();
        let trier = thread::spawn(move || loop {
            if let Some(p) = b.pending().first() {
                return b.decide(&p.id, Choice::AllowAlways, Channel::Console);
            }
            thread::sleep(Duration::from_millis(5));
        });
        let answer = broker.ask(cmd("git push"));
        assert!(matches!(
            trier.join().unwrap(),
            Err(DecideError::Persist(PersistError::InsideWritable(_)))
        ));
        assert_eq!(answer.channel, Channel::Timeout);
        assert_eq!(fs::read_dir(&ws).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn agent_requests_have_no_always_and_close_denies_everything() {
        let broker = Broker::new(config(10_000), |_| {});
        let b = broker.clone();
        let closer = thread::spawn(move || loop {
            if let Some(p) = b.pending().first() {
                let refused = b.decide(&p.id, Choice::AllowAlways, Channel::Console);
                b.close();
                return refused.is_err();
            }
            thread::sleep(Duration::from_millis(5));
        });
        let answer = broker.ask(Request::escalation(
            vec!["network.allow".into(), "pypi.org".into()],
            "pip install",
        ));
        assert!(closer.join().unwrap());
        assert_eq!(answer.channel, Channel::Broker);
        assert!(!answer.allowed());
        assert!(!broker.ask(cmd("ls")).allowed(), "closed: no new questions");
    }

    #[test]
    fn shown_requests_are_scrubbed_and_the_audit_too() {
        let mut cfg = config(50);
        cfg.scrub = Scrubber {
            env_deny: vec!["*_TOKEN".into()],
            env_keep: vec![],
            secrets: vec!["s3cr3t-value".into()],
        };
        let (events, audit) = recorded();
        let broker = Broker::new(cfg, audit);
        broker.ask(cmd("env GH_TOKEN=abc deploy s3cr3t-value"));
        let text = format!("{:?}", events.lock().unwrap());
        assert!(!text.contains("abc") && !text.contains("s3cr3t"), "{text}");
    }

    #[tokio::test]
    async fn ask_async_parks_a_task_not_the_runtime() {
        let broker = Broker::new(config(10_000), |_| {});
        let human = answer_when_pending(&broker, Choice::AllowOnce);
        let answer = broker
            .ask_async(Request::network("pypi.org", 443, "ask"))
            .await;
        assert!(answer.allowed());
        human.join().unwrap();
    }
}
