//! Command rules for one `cordon run`: the command line itself is judged before the sandbox
//! is made; a `prompt` asks a human through cordon's approval broker (the terminal, and
//! `cordon console`), a `forbid` or a denial refuses it (exit 126, as for EACCES).
//!
//! Programs the command executes inside the sandbox are not judged yet (see docs/approvals.md).

use std::path::Path;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use cordon_approvals::{Approvals, Broker, BrokerConfig, ExecOutcome, Persist, Scrubber};
use cordon_audit::Event;
use cordon_policy::{CommandRules, Decision, Policy};

use crate::failure::Failure;

/// How long a prompt waits for a human before it counts as a denial.
const PROMPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Exit status of a command the rules refused (as a shell has it for a refused exec).
pub const EXIT_REFUSED: i32 = 126;

/// What a run needs to judge its command line.
pub struct Context<'a> {
    pub run_id: &'a str,
    pub workspace: &'a Path,
    pub cwd: &'a Path,
    /// Values of the variables removed from the sandbox's environment (masked when shown).
    pub secrets: Vec<String>,
}

/// Judges `argv` by the policy's command rules; Ok when it may run. Audit events (the
/// request and the human's answer) go to `events`.
pub fn judge(
    policy: &Policy,
    argv: &[String],
    ctx: Context<'_>,
    events: &mut dyn FnMut(Event),
) -> Result<(), Failure> {
    let rules: &CommandRules = &policy.commands;
    let program = argv.first().map(String::as_str).unwrap_or_default();
    let verdict = rules.decide_exec(program, argv);
    if verdict.decision == Decision::Allow {
        return Ok(());
    }
    let state = crate::dirs::state_dir().ok_or_else(|| {
        Failure::setup("approvals need cordon's state folder: set HOME or XDG_STATE_HOME")
    })?;
    // The broker's audit hook must be Sync and 'static: its events come back through a channel.
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let config = BrokerConfig {
        run: ctx.run_id.to_string(),
        timeout: PROMPT_TIMEOUT,
        persist: Persist {
            user_config: crate::dirs::user_config(),
            writable_roots: vec![ctx.workspace.to_path_buf()],
        },
        scrub: Scrubber {
            env_deny: policy.env_deny.clone(),
            env_keep: policy.env_keep.clone(),
            secrets: ctx.secrets,
        },
    };
    let broker = Broker::new(config, move |e| {
        if let Ok(tx) = tx.lock() {
            let _ = tx.send(e);
        }
    });
    let outcome = if verdict.decision == Decision::Prompt {
        let tty = Path::new("/dev/tty");
        let approvals = Approvals::start(broker.clone(), &state, Some(tty))
            .map_err(|e| Failure::setup(format!("approval broker: {e}")))?;
        eprintln!(
            "cordon: `{}` needs a human's approval: answer here, or open `cordon console` (waiting up to {} s)",
            argv.join(" "),
            PROMPT_TIMEOUT.as_secs()
        );
        let outcome =
            approvals
                .broker()
                .judge_exec(rules, program, argv, Some(ctx.cwd.to_path_buf()));
        drop(approvals);
        outcome
    } else {
        broker.judge_exec(rules, program, argv, Some(ctx.cwd.to_path_buf()))
    };
    broker.close();
    for e in rx.try_iter() {
        events(e);
    }
    match outcome {
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
