//! Command rules and requests for one `cordon run`: every program executed in the sandbox,
//! the command line's own first, is judged while its exec waits (`cordon_linux::ExecRequest`);
//! an agent's `cordon request` arrives through the sandbox's request door. A `prompt` asks a
//! human through cordon's approval broker, answered on cordon's terminal (when it relays
//! one) or in `cordon console`; a `forbid` or a denial fails the exec with EACCES and puts
//! the reason on stderr. A forbidden command line is refused before the sandbox is even made.

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use cordon_approvals::{door, Broker, Channels, ExecOutcome, TerminalIo, Widenable, Witness};
use cordon_audit::Event;
use cordon_linux::{ExecRequest, UserTerminal};
use cordon_policy::{CommandRules, Decision, Policy};
use cordon_proxy::Ask;

use crate::approval::{
    ask_network, broker_for, serve, state_dir, where_to_answer, Context, RelayTerminal, UserKeys,
};
use crate::failure::Failure;

/// Whether the rules can say anything but `allow`: only then are execs inside supervised
/// (each one costs a round trip through cordon).
pub fn supervised(rules: &CommandRules) -> bool {
    rules.default != Decision::Allow || !rules.rules.is_empty()
}

/// The human side of one sandbox: judges its execs (command rules), answers its proxy's
/// asks (`network.unlisted = "ask"`, or a name an agent's request allowed) and serves its
/// request door, until it ends.
pub struct Supervision {
    stop: Arc<AtomicBool>,
    broker: Broker,
    /// Set when an exec was refused (so a refused command line is not reported as a
    /// file-permission fault).
    refused: Arc<AtomicBool>,
    /// The channels (control socket, terminal), closed when the sandbox is gone.
    channels: Arc<Channels>,
}

/// Where one sandbox's requests come from, and what a human sees beside them.
pub struct Sources {
    /// Every exec, with command rules.
    pub execs: Option<mpsc::Receiver<ExecRequest>>,
    /// Names off the allow-list, from the proxy.
    pub asks: Option<mpsc::Receiver<Ask>>,
    /// `cordon request`s.
    pub door: Option<UnixListener>,
    /// cordon's terminal, relayed to the command's pty: a channel, and the output tail.
    pub terminal: Option<UserTerminal>,
    /// The running transaction's diff.
    pub diff: Option<crate::transaction::DiffSource>,
}

impl Sources {
    pub fn is_empty(&self) -> bool {
        self.execs.is_none() && self.asks.is_none() && self.door.is_none()
    }
}

/// Starts a thread for each source there is. Audit events go to the returned receiver (the
/// run's recorder writes them).
pub fn supervise(
    policy: &Policy,
    sources: Sources,
    ctx: &Context,
) -> Result<(Supervision, mpsc::Receiver<Event>), Failure> {
    let (broker, events) = broker_for(policy, ctx);
    broker.set_witness(Arc::new(RunWitness {
        terminal: sources.terminal.clone(),
        diff: sources.diff,
    }));
    let terminal = sources
        .terminal
        .filter(UserTerminal::reads_keys)
        .map(|t| Box::new(RelayTerminal::new(t)) as Box<dyn TerminalIo>);
    let has_terminal = terminal.is_some();
    let channels = Arc::new(Channels::new(broker.clone(), Some(state_dir()?), terminal));
    // Rules that can prompt, and `ask`, need a human from the start: if none can be reached
    // the run is refused now (125). A request door starts them at its first request.
    if can_prompt(&policy.commands) || policy.egress.ask_unlisted {
        channels.ensure().map_err(Failure::setup)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicBool::new(false));
    let can = Widenable {
        network: sources.asks.is_some(),
        commands: sources.execs.is_some(),
    };
    if let Some(requests) = sources.execs {
        let (b, rules) = (broker.clone(), policy.commands.clone());
        let any_refused = refused.clone();
        serve(
            "cordon-rules",
            requests,
            stop.clone(),
            move |req: ExecRequest| {
                let allowed = judge_one(&b, &rules, &req, has_terminal);
                if !allowed {
                    any_refused.store(true, Ordering::Relaxed);
                }
                let _ = req.reply.send(allowed);
            },
        )?;
    }
    if let Some(asks) = sources.asks {
        let (b, ask_human) = (broker.clone(), policy.egress.ask_unlisted);
        serve("cordon-ask", asks, stop.clone(), move |ask: Ask| {
            let allowed = ask_network(&b, &ask, ask_human, has_terminal);
            let _ = ask.reply.send(allowed);
        })?;
    }
    if let Some(listener) = sources.door {
        door::serve_listener(channels.clone(), listener, can)
            .map_err(|e| Failure::setup(format!("request door thread: {e}")))?;
    }
    Ok((
        Supervision {
            stop,
            broker,
            refused,
            channels,
        },
        events,
    ))
}

/// What a human sees beside a request: the command's latest terminal output and the
/// transaction's diff so far.
struct RunWitness {
    terminal: Option<UserTerminal>,
    diff: Option<crate::transaction::DiffSource>,
}

/// Lines of terminal output a request carries.
const TAIL_LINES: usize = 40;

impl Witness for RunWitness {
    fn output_tail(&self) -> Option<String> {
        let tail = self.terminal.as_ref()?.tail(TAIL_LINES);
        (!tail.trim().is_empty()).then_some(tail)
    }

    fn diff(&self) -> Option<serde_json::Value> {
        self.diff.as_ref()?.text().map(serde_json::Value::String)
    }
}

/// The pty relay's terminal, as the terminal channel sees it.
impl UserKeys for UserTerminal {
    fn take_keys(&self) -> std::io::Result<mpsc::Receiver<Vec<u8>>> {
        Ok(UserTerminal::take_keys(self))
    }

    fn give_back_keys(&self) {
        UserTerminal::give_back_keys(self)
    }

    fn print(&self, text: &str) -> std::io::Result<()> {
        UserTerminal::print(self, text)
    }
}

fn can_prompt(rules: &CommandRules) -> bool {
    rules.default == Decision::Prompt || rules.rules.iter().any(|r| r.decision == Decision::Prompt)
}

fn judge_one(broker: &Broker, rules: &CommandRules, req: &ExecRequest, has_terminal: bool) -> bool {
    // A PATH search tries paths that do not exist: the kernel fails those (ENOENT) whatever
    // is answered, so they are not worth asking a human about.
    if !exists_for(req) {
        return true;
    }
    let verdict = rules.decide_exec(&req.path, &req.argv);
    // On a terminal the question itself is printed there.
    if !has_terminal && verdict.decision == Decision::Prompt {
        eprintln!(
            "cordon: `{}` needs a human's approval: answer {} (waiting up to {} s)",
            broker.scrub_words(&req.argv).join(" "),
            where_to_answer(has_terminal),
            broker.timeout().as_secs()
        );
    }
    match broker.judge_verdict(&verdict, &req.path, &req.argv, req.cwd.clone()) {
        ExecOutcome::Run { .. } => true,
        ExecOutcome::Refuse { message, .. } => {
            eprintln!("{message}");
            false
        }
    }
}

/// Whether the exec's path names something in the process's own view of the files.
fn exists_for(req: &ExecRequest) -> bool {
    let root = PathBuf::from(format!("/proc/{}/root", req.pid));
    let path = Path::new(&req.path);
    let full = match (path.is_absolute(), &req.cwd) {
        (true, _) => root.join(path.strip_prefix("/").unwrap_or(path)),
        (false, Some(cwd)) => root.join(cwd.strip_prefix("/").unwrap_or(cwd)).join(path),
        // Cannot tell: judge it.
        (false, None) => return true,
    };
    std::fs::symlink_metadata(full).is_ok()
}

impl Supervision {
    /// Whether the rules refused an exec in this run.
    pub fn refused_any(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
    }

    /// Once the sandbox is gone: closes the broker (anything still asked counts as denied)
    /// and lets the thread end.
    pub fn finish(self) {
        self.channels.close();
        self.broker.close();
        self.stop.store(true, Ordering::Relaxed);
    }
}
