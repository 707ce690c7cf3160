//! Command rules for one `cordon run`: every program executed in the sandbox, the command
//! line's own first, is judged while its exec waits (`cordon_linux::ExecRequest`). A `prompt`
//! asks a human through cordon's approval broker, answered in `cordon console` (the terminal
//! belongs to the command); a `forbid` or a denial fails the exec with EACCES and puts the
//! reason on stderr. A forbidden command line is refused before the sandbox is even made.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use cordon_approvals::{Approvals, Broker, BrokerConfig, ExecOutcome, Persist, Request, Scrubber};
use cordon_audit::Event;
use cordon_linux::ExecRequest;
use cordon_policy::{CommandRules, Decision, Policy};
use cordon_proxy::Ask;

use crate::failure::Failure;

/// How long a prompt waits for a human before it counts as a denial.
const PROMPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Exit status of a command line the rules refused (as a shell has it for a refused exec).
pub const EXIT_REFUSED: i32 = 126;

/// What a run needs to judge commands.
#[derive(Clone)]
pub struct Context {
    pub run_id: String,
    pub workspace: PathBuf,
    pub cwd: PathBuf,
    /// Values of the variables removed from the sandbox's environment (masked when shown).
    pub secrets: Vec<String>,
}

/// Whether the rules can say anything but `allow`: only then are execs inside supervised
/// (each one costs a round trip through cordon).
pub fn supervised(rules: &CommandRules) -> bool {
    rules.default != Decision::Allow || !rules.rules.is_empty()
}

/// A broker for this run; its audit events arrive on the receiver (its hook must be Sync
/// and 'static, so they cannot go to the sink directly).
fn broker_for(policy: &Policy, ctx: &Context) -> (Broker, mpsc::Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let config = BrokerConfig {
        run: ctx.run_id.clone(),
        timeout: PROMPT_TIMEOUT,
        persist: Persist {
            user_config: crate::dirs::user_config(),
            writable_roots: vec![ctx.workspace.clone()],
        },
        scrub: Scrubber {
            env_deny: policy.env_deny.clone(),
            env_keep: policy.env_keep.clone(),
            secrets: ctx.secrets.clone(),
        },
    };
    let broker = Broker::new(config, move |e| {
        if let Ok(tx) = tx.lock() {
            let _ = tx.send(e);
        }
    });
    (broker, rx)
}

fn state_dir() -> Result<PathBuf, Failure> {
    crate::dirs::state_dir().ok_or_else(|| {
        Failure::setup("approvals need cordon's state folder: set HOME or XDG_STATE_HOME")
    })
}

/// Refuses a forbidden command line before anything is made (exit 126, the rule's reason).
/// A prompt is asked when the command's exec is judged, once the sandbox exists: asking
/// here would start the broker's threads, and the sandbox is made only single-threaded.
pub fn refuse_forbidden(policy: &Policy, argv: &[String], ctx: &Context) -> Result<(), Failure> {
    let rules = &policy.commands;
    let program = argv.first().map(String::as_str).unwrap_or_default();
    if rules.decide_exec(program, argv).decision != Decision::Forbid {
        return Ok(());
    }
    // A forbid never reaches a human; the broker only words the refusal.
    let (broker, _) = broker_for(policy, ctx);
    match broker.judge_exec(rules, program, argv, Some(ctx.cwd.clone())) {
        ExecOutcome::Run { .. } => Ok(()),
        ExecOutcome::Refuse { message, .. } => Err(Failure {
            code: EXIT_REFUSED,
            message: message
                .strip_prefix("cordon: ")
                .unwrap_or(&message)
                .to_string(),
            hint: None,
        }),
    }
}

/// The human side of one sandbox: judges its execs (command rules) and answers its proxy's
/// asks (`network.unlisted = "ask"`) until it ends.
pub struct Supervision {
    stop: Arc<AtomicBool>,
    broker: Broker,
    /// Set when an exec was refused (so a refused command line is not reported as a
    /// file-permission fault).
    refused: Arc<AtomicBool>,
}

/// Starts a thread for each source there is. Audit events go to the returned receiver (the
/// run's recorder writes them).
pub fn supervise(
    policy: &Policy,
    execs: Option<mpsc::Receiver<ExecRequest>>,
    asks: Option<mpsc::Receiver<Ask>>,
    ctx: &Context,
) -> Result<(Supervision, mpsc::Receiver<Event>), Failure> {
    let (broker, events) = broker_for(policy, ctx);
    // Only rules that can prompt, and asks, need a human's channel. The terminal belongs to
    // the command: prompts go to the console, through the run's control socket.
    let approvals = match can_prompt(&policy.commands) || asks.is_some() {
        true => Some(Arc::new(start_approvals(&broker)?)),
        false => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicBool::new(false));
    if let Some(requests) = execs {
        let (b, rules, keep) = (broker.clone(), policy.commands.clone(), approvals.clone());
        let any_refused = refused.clone();
        serve(
            "cordon-rules",
            requests,
            stop.clone(),
            move |req: ExecRequest| {
                let _held = &keep;
                let allowed = judge_one(&b, &rules, &req);
                if !allowed {
                    any_refused.store(true, Ordering::Relaxed);
                }
                let _ = req.reply.send(allowed);
            },
        )?;
    }
    if let Some(asks) = asks {
        let (b, keep) = (broker.clone(), approvals);
        serve("cordon-ask", asks, stop.clone(), move |ask: Ask| {
            let _held = &keep;
            let allowed = ask_network(&b, &ask);
            let _ = ask.reply.send(allowed);
        })?;
    }
    Ok((
        Supervision {
            stop,
            broker,
            refused,
        },
        events,
    ))
}

/// Runs `answer` on each item until the sender goes or `stop` is set (bounded waits: a
/// process left in the Landlock-only mode could keep the sender). What the closure holds
/// (the control socket) goes when both threads have ended.
fn serve<T: Send + 'static>(
    name: &str,
    items: mpsc::Receiver<T>,
    stop: Arc<AtomicBool>,
    answer: impl Fn(T) + Send + 'static,
) -> Result<(), Failure> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match items.recv_timeout(Duration::from_millis(100)) {
                    Ok(item) => answer(item),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        })
        .map(drop)
        .map_err(|e| Failure::setup(format!("{name} thread: {e}")))
}

fn ask_network(broker: &Broker, ask: &Ask) -> bool {
    eprintln!(
        "cordon: network: {}:{} is not on the allow-list; held while a human decides in `cordon console` (up to {} s)",
        ask.host,
        ask.port,
        PROMPT_TIMEOUT.as_secs()
    );
    let reason = format!("{} is not on the sandbox allow-list", ask.host);
    broker
        .ask(Request::network(&ask.host, ask.port, reason))
        .allowed()
}

fn can_prompt(rules: &CommandRules) -> bool {
    rules.default == Decision::Prompt || rules.rules.iter().any(|r| r.decision == Decision::Prompt)
}

fn start_approvals(broker: &Broker) -> Result<Approvals, Failure> {
    let state = state_dir()?;
    Approvals::start(broker.clone(), &state, None).map_err(|e| {
        let hint = match e.raw_os_error() {
            None | Some(libc::ENAMETOOLONG) | Some(libc::EINVAL) => format!(
                " (a Unix socket's path must fit in 107 bytes; cordon's state folder {} may be too deep: set XDG_STATE_HOME to a shorter one)",
                state.display()
            ),
            Some(_) => String::new(),
        };
        Failure::setup(format!("approval broker: {e}{hint}"))
    })
}

fn judge_one(broker: &Broker, rules: &CommandRules, req: &ExecRequest) -> bool {
    // A PATH search tries paths that do not exist: the kernel fails those (ENOENT) whatever
    // is answered, so they are not worth asking a human about.
    if !exists_for(req) {
        return true;
    }
    if rules.decide_exec(&req.path, &req.argv).decision == Decision::Prompt {
        eprintln!(
            "cordon: `{}` needs a human's approval: open `cordon console` (waiting up to {} s)",
            broker.scrub_words(&req.argv).join(" "),
            PROMPT_TIMEOUT.as_secs()
        );
    }
    match broker.judge_exec(rules, &req.path, &req.argv, req.cwd.clone()) {
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
        self.broker.close();
        self.stop.store(true, Ordering::Relaxed);
    }
}
