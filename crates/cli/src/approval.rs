//! What both backends' runs share of the approval broker: the broker of one run (its
//! configuration, where its audit events go), the thread that answers the proxy's asks for
//! names off the allow-list (`network.unlisted = "ask"`), and where a human answers.
//! Linux's command rules and request door are `commands.rs`; Windows' asks start in
//! `windows_net.rs`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use cordon_approvals::{
    Broker, BrokerConfig, Channels, ExecOutcome, Persist, Request, Scrubber, TerminalIo,
};
use cordon_audit::Event;
use cordon_policy::{CommandRules, CommandVerdict, Decision, Policy};
use cordon_proxy::Ask;

use crate::failure::Failure;

/// How long a prompt waits for a human before it counts as a denial, unless
/// `--approval-timeout` says otherwise.
pub const PROMPT_TIMEOUT: Duration = Duration::from_secs(300);

/// What a run's broker needs: whose run, where "always" may not write, what to mask, how
/// long a question waits.
#[derive(Clone)]
pub struct Context {
    pub run_id: String,
    pub workspace: PathBuf,
    /// Where the command line is judged from (shown to the human).
    pub cwd: PathBuf,
    /// Values of the variables removed from the sandbox's environment (masked when shown).
    pub secrets: Vec<String>,
    /// How long a question waits for a human.
    pub timeout: Duration,
}

/// The values of the variables `policy::scrub_env` removed, as the broker masks them: each
/// one's own value, except the rest of a `GIT_CONFIG_*` set that went along with a secret.
pub fn removed_secrets(removed: &[(String, String)]) -> Vec<String> {
    removed
        .iter()
        .filter(|(_, why)| why != cordon_policy::GIT_CONFIG_SET)
        .filter_map(|(k, _)| std::env::var(k).ok())
        .collect()
}

/// Exit status of a command line the rules refused (as a shell has it for a refused exec).
pub const EXIT_REFUSED: i32 = 126;

/// The command line judged by the rules before anything is made: a `forbid` is refused
/// (126, the rule's reason). A `prompt` is asked here only with `ask_here` (cordon's state
/// folder: Windows, where no exec inside is judged), answered on `terminal` (cordon's
/// console; this run's command does not exist yet) or in `cordon console`; on Linux
/// it is asked when the command's exec is judged, once the sandbox exists (asking here would
/// start the broker's threads, and the sandbox is made only single-threaded). Returns the
/// verdict and the broker's audit events (a question and its answer).
pub fn judge_command_line(
    policy: &Policy,
    argv: &[String],
    ctx: &Context,
    ask_here: Option<&Path>,
    also_named: Option<&str>,
    terminal: Option<Box<dyn TerminalIo>>,
) -> (Result<(), Failure>, Vec<Event>) {
    let rules = platform_rules(&policy.commands);
    let names = program_names(argv, also_named);
    let verdict = decide_command_line(&rules, &names, argv);
    let program = argv.first().map(String::as_str).unwrap_or_default();
    let ask_in = match (verdict.decision, ask_here) {
        (Decision::Allow, _) | (Decision::Prompt, None) => return (Ok(()), Vec::new()),
        (Decision::Forbid, _) => None,
        (Decision::Prompt, Some(state)) => Some(state),
    };
    let (broker, events) = broker_for(policy, ctx);
    // A forbid never reaches a human; the broker only words the refusal.
    let has_terminal = terminal.is_some();
    let channels = ask_in.map(|state| Channels::new(broker.clone(), Some(state.into()), terminal));
    if let Some(channels) = &channels {
        if let Err(e) = channels.ensure() {
            let f = Failure::setup(format!(
                "the command line needs a human's approval ([commands] prompt), and {e}; the command did not run"
            ));
            return (Err(f), events.try_iter().collect());
        }
        eprintln!(
            "cordon: `{}` needs a human's approval: answer {} (waiting up to {} s)",
            broker.scrub_words(argv).join(" "),
            where_to_answer(has_terminal),
            broker.timeout().as_secs()
        );
    }
    let outcome = broker.judge_verdict(&verdict, program, argv, Some(ctx.cwd.clone()));
    if let Some(channels) = channels {
        channels.close();
    }
    let result = match outcome {
        ExecOutcome::Run { .. } => Ok(()),
        ExecOutcome::Refuse { message, .. } => Err(Failure {
            code: EXIT_REFUSED,
            message: message
                .strip_prefix("cordon: ")
                .unwrap_or(&message)
                .to_string(),
            hint: None,
        }),
    };
    (result, events.try_iter().collect())
}

/// The command rules as this platform compares programs: on Windows every program word
/// spelled as `policy::windows_program` spells it (`Git.EXE`, `git.exe.` and `git` are one).
pub fn platform_rules(rules: &CommandRules) -> std::borrow::Cow<'_, CommandRules> {
    match cfg!(windows) {
        true => std::borrow::Cow::Owned(rules.for_windows()),
        false => std::borrow::Cow::Borrowed(rules),
    }
}

/// Every name the command line's program is judged by: the name typed and, on Windows, the
/// long name of the file it resolves to (`also_named`), both spelled for
/// [`platform_rules`]. Windows names one program many ways (`C:\Git\cmd\git.exe`, a short
/// `GIT~1`), and the command line is all that is judged there.
pub fn program_names(argv: &[String], also_named: Option<&str>) -> Vec<String> {
    let spell = |name: &str| match cfg!(windows) {
        true => cordon_policy::windows_program(name),
        false => name.to_string(),
    };
    let program = argv.first().map(String::as_str).unwrap_or_default();
    let mut names = vec![spell(program)];
    if let Some(other) = also_named.map(spell).filter(|o| !names.contains(o)) {
        names.push(other);
    }
    names
}

/// The rules' verdict on a command line whose program goes by `names`.
pub fn decide_command_line<'r>(
    rules: &'r CommandRules,
    names: &[String],
    argv: &[String],
) -> CommandVerdict<'r> {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    rules.decide_program(&names, argv.get(1..).unwrap_or(&[]))
}

/// A broker for this run; its audit events arrive on the receiver (its hook must be Sync
/// and 'static, so they cannot go to the sink directly).
pub fn broker_for(policy: &Policy, ctx: &Context) -> (Broker, mpsc::Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let config = BrokerConfig {
        run: ctx.run_id.clone(),
        timeout: ctx.timeout,
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

pub fn state_dir() -> Result<PathBuf, Failure> {
    crate::dirs::state_dir().ok_or_else(|| {
        Failure::setup(match cfg!(windows) {
            true => "approvals need cordon's state folder: set %LOCALAPPDATA%",
            false => "approvals need cordon's state folder: set HOME or XDG_STATE_HOME",
        })
    })
}

/// Runs `answer` on each item until the sender goes or `stop` is set (bounded waits: a
/// process left in the Landlock-only mode could keep the sender). What the closure holds
/// (the control socket) goes when both threads have ended.
pub fn serve<T: Send + 'static>(
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

/// A name off the allow-list: allowed when an agent's request was granted for it, or, with
/// `unlisted = "ask"`, when a human allows it now.
pub fn ask_network(broker: &Broker, ask: &Ask, ask_human: bool, has_terminal: bool) -> bool {
    let reason = format!("{} is not on the sandbox allow-list", ask.host);
    let request = Request::network(&ask.host, ask.port, reason);
    if !ask_human {
        return broker.covered(&request);
    }
    if !broker.would_cover(&request) {
        eprintln!(
            "cordon: network: {}:{} is not on the allow-list; held while a human decides {} (up to {} s)",
            ask.host,
            ask.port,
            where_to_answer(has_terminal),
            broker.timeout().as_secs()
        );
    }
    broker.ask(request).allowed()
}

/// What a relay of cordon's terminal offers the terminal channel (Linux's pty relay,
/// Windows' console keys): the user's keys, taken while a question is open, and printing
/// between the command's output.
pub trait UserKeys: Send {
    fn take_keys(&self) -> std::io::Result<mpsc::Receiver<Vec<u8>>>;
    fn give_back_keys(&self);
    fn print(&self, text: &str) -> std::io::Result<()>;
}

/// cordon's relayed terminal as the approvals' terminal channel: while a question is open
/// the keys come here and never reach the command. The terminal is raw, so the channel
/// echoes what is typed.
pub struct RelayTerminal<K> {
    user: K,
    keys: Option<mpsc::Receiver<Vec<u8>>>,
}

impl<K: UserKeys> RelayTerminal<K> {
    pub fn new(user: K) -> RelayTerminal<K> {
        RelayTerminal { user, keys: None }
    }
}

impl<K: UserKeys> TerminalIo for RelayTerminal<K> {
    fn show(&mut self, text: &str) -> std::io::Result<()> {
        self.user.print(text)
    }

    fn begin(&mut self) {
        // Without the keys the question is still shown, and answered in `cordon console`.
        self.keys = self.user.take_keys().ok();
    }

    fn keys(&mut self, wait: Duration) -> std::io::Result<Option<Vec<u8>>> {
        let Some(keys) = &self.keys else {
            std::thread::sleep(wait);
            return Ok(None);
        };
        match keys.recv_timeout(wait) {
            Ok(k) => Ok(Some(k)),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            }
        }
    }

    fn end(&mut self) {
        self.user.give_back_keys();
        self.keys = None;
    }

    fn cooked(&self) -> bool {
        false
    }
}

/// Windows' console keys, as the terminal channel sees them.
#[cfg(windows)]
impl UserKeys for cordon_windows::exec::console_keys::ConsoleQuestions {
    fn take_keys(&self) -> std::io::Result<mpsc::Receiver<Vec<u8>>> {
        cordon_windows::exec::console_keys::ConsoleQuestions::take_keys(self)
    }

    fn give_back_keys(&self) {
        cordon_windows::exec::console_keys::ConsoleQuestions::give_back_keys(self)
    }

    fn print(&self, text: &str) -> std::io::Result<()> {
        cordon_windows::exec::console_keys::ConsoleQuestions::print(self, text)
    }
}

/// The terminal channel on Windows: cordon's console, when its stdin and stdout are one.
/// The command never shares it (it gets a pseudo console of its own, or no console handle).
#[cfg(windows)]
pub fn console_terminal() -> Option<Box<dyn TerminalIo>> {
    cordon_windows::exec::console_keys::ConsoleQuestions::for_own_console()
        .map(|c| Box::new(RelayTerminal::new(c)) as Box<dyn TerminalIo>)
}

pub fn where_to_answer(has_terminal: bool) -> &'static str {
    match has_terminal {
        true => "here or in `cordon console`",
        false => "in `cordon console`",
    }
}
