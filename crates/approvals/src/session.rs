//! One run's approvals, ready to use: the broker, its control socket, the terminal channel
//! (started at the first need), and the verdict on one exec as the supervisor needs it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cordon_policy::{CommandRules, CommandVerdict, Decision};

use crate::broker::Broker;
use crate::control::Control;
use crate::request::{Answer, Channel, Request};
use crate::terminal::TerminalIo;

/// The broker of one `cordon run` with its channels; dropping it denies what is still open
/// and removes the socket and token file.
pub struct Approvals {
    broker: Broker,
    control: Control,
}

impl Approvals {
    /// Serves `broker` on `STATE/approvals/RUN.sock`, and asks on `terminal` too when there
    /// is one.
    pub fn start(
        broker: Broker,
        state_dir: &Path,
        terminal: Option<Box<dyn TerminalIo>>,
    ) -> io::Result<Approvals> {
        let control = Control::start(broker.clone(), &state_dir.join("approvals"))?;
        if let Some(terminal) = terminal {
            crate::terminal::spawn(broker.clone(), terminal)?;
        }
        Ok(Approvals { broker, control })
    }

    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Where the console finds this run.
    pub fn socket(&self) -> &Path {
        &self.control.endpoint().socket
    }
}

impl Drop for Approvals {
    fn drop(&mut self) {
        self.broker.close();
    }
}

/// A run's broker and the way to its human channels, which start at the first request that
/// needs them: a run whose agent never asks makes no control socket and no thread.
pub struct Channels {
    broker: Broker,
    /// Where the control socket goes; None: no channel but the broker itself (tests).
    state_dir: Option<PathBuf>,
    started: Mutex<Started>,
}

enum Started {
    /// Not yet; the terminal waits here for its channel.
    No(Option<Box<dyn TerminalIo>>),
    Yes(Option<Approvals>),
    Failed(String),
    /// `close` ran: nothing starts any more.
    Closed,
}

impl Channels {
    pub fn new(
        broker: Broker,
        state_dir: Option<PathBuf>,
        terminal: Option<Box<dyn TerminalIo>>,
    ) -> Channels {
        Channels {
            broker,
            state_dir,
            started: Mutex::new(Started::No(terminal)),
        }
    }

    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Started> {
        self.started.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the control socket and the terminal channel unless they run; `Err` says why
    /// no human can be asked.
    pub fn ensure(&self) -> Result<(), String> {
        let mut st = self.state();
        if let Started::No(terminal) = &mut *st {
            let terminal = terminal.take();
            *st = match &self.state_dir {
                None => Started::Yes(None),
                Some(state) => match Approvals::start(self.broker.clone(), state, terminal) {
                    Ok(a) => Started::Yes(Some(a)),
                    Err(e) => Started::Failed(start_failure(&e, state)),
                },
            };
        }
        match &*st {
            Started::Yes(_) => Ok(()),
            Started::Failed(why) => Err(why.clone()),
            Started::Closed | Started::No(_) => Err("cordon is stopping".into()),
        }
    }

    /// Where the console finds this run, once started.
    pub fn socket(&self) -> Option<PathBuf> {
        match &*self.state() {
            Started::Yes(Some(a)) => Some(a.socket().to_path_buf()),
            _ => None,
        }
    }

    /// Denies what is open and removes the control socket and token file now, whoever
    /// still holds this.
    pub fn close(&self) {
        self.broker.close();
        let _gone = std::mem::replace(&mut *self.state(), Started::Closed);
    }
}

fn start_failure(e: &io::Error, state: &Path) -> String {
    format!(
        "approval broker: {e}{}",
        crate::transport::hint_for(e, state)
    )
}

impl Drop for Channels {
    fn drop(&mut self) {
        self.close();
    }
}

/// What the exec supervisor does with one `execve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutcome {
    /// Let it run (`answer` is set when a human allowed it).
    Run { answer: Option<Answer> },
    /// Refuse it (EACCES); `message` is what the agent should read on stderr.
    Refuse {
        message: String,
        answer: Option<Answer>,
    },
}

impl Broker {
    /// Judges `execve(path, argv)` by `rules`, asking a human when they say `prompt`; blocks
    /// until the answer. `cwd` is shown to the human.
    pub fn judge_exec(
        &self,
        rules: &CommandRules,
        path: &str,
        argv: &[String],
        cwd: Option<PathBuf>,
    ) -> ExecOutcome {
        self.judge_verdict(&rules.decide_exec(path, argv), path, argv, cwd)
    }

    /// `judge_exec` for a verdict the caller already has (it may have said something first).
    pub fn judge_verdict(
        &self,
        verdict: &CommandVerdict<'_>,
        path: &str,
        argv: &[String],
        cwd: Option<PathBuf>,
    ) -> ExecOutcome {
        let shown = {
            let words = self.scrub_words(argv);
            if words.is_empty() {
                path.to_string()
            } else {
                words.join(" ")
            }
        };
        match verdict.decision {
            Decision::Allow => ExecOutcome::Run { answer: None },
            Decision::Forbid => ExecOutcome::Refuse {
                message: format!(
                    "cordon: `{shown}` is forbidden by the sandbox's policy: {}. This is policy, \
                     not a fault: running it another way (another path, a wrapper, a script) is \
                     refused the same way; ask the human to change the rule if it is needed",
                    verdict.reason()
                ),
                answer: None,
            },
            Decision::Prompt => {
                let request = Request::command(verdict, argv, cwd);
                let answer = self.ask(request);
                if answer.allowed() {
                    ExecOutcome::Run {
                        answer: Some(answer),
                    }
                } else {
                    let who = match answer.channel {
                        Channel::Timeout => "nobody approved it in time".to_string(),
                        Channel::Broker => "cordon stopped before anyone answered".to_string(),
                        ch => format!("a human denied it (through the {})", ch.as_str()),
                    };
                    ExecOutcome::Refuse {
                        message: format!(
                            "cordon: `{shown}` needs a human's approval ({}) and {who}. This is \
                             policy, not a fault: do not retry it another way",
                            verdict.reason()
                        ),
                        answer: Some(answer),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::BrokerConfig;
    use crate::persist::Persist;
    use crate::request::{Choice, Scrubber};
    use cordon_policy::{Layer, LayerSource};
    use std::time::Duration;

    fn rules() -> CommandRules {
        let text = "[[commands.rules]]\nprefix = [\"git\", \"push\"]\ndecision = \"prompt\"\nreason = \"pushing publishes\"\n[[commands.rules]]\nprefix = [\"npm\", \"publish\"]\ndecision = \"forbid\"\nreason = \"never from the agent\"\n";
        let layer =
            Layer::parse(LayerSource::User("u".into()), Path::new("u"), text).expect("parses");
        CommandRules::from_layers(&[layer])
    }

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn allow_runs_forbid_refuses_with_the_reason_and_prompt_asks() {
        let dir = std::env::temp_dir().join(format!("cordon-session-{}", std::process::id()));
        let broker = Broker::new(
            BrokerConfig {
                run: "s".into(),
                timeout: Duration::from_millis(300),
                persist: Persist::default(),
                scrub: Scrubber::default(),
            },
            |_| {},
        );
        let approvals = Approvals::start(broker, &dir, None).expect("starts");
        assert!(crate::transport::connect(approvals.socket()).is_ok());
        let b = approvals.broker();
        let rules = rules();
        assert_eq!(
            b.judge_exec(&rules, "/usr/bin/ls", &argv("ls -l"), None),
            ExecOutcome::Run { answer: None }
        );
        let ExecOutcome::Refuse { message, .. } =
            b.judge_exec(&rules, "/usr/bin/npm", &argv("npm publish"), None)
        else {
            panic!("npm publish ran");
        };
        assert!(
            message.contains("never from the agent") && message.contains("policy"),
            "{message}"
        );
        // nobody answers: the prompt times out and refuses
        let ExecOutcome::Refuse { message, answer } = b.judge_exec(
            &rules,
            "/usr/bin/git",
            &argv("git push"),
            Some("/ws".into()),
        ) else {
            panic!("git push ran unapproved");
        };
        assert!(message.contains("in time"), "{message}");
        assert_eq!(answer.map(|a| a.choice), Some(Choice::Deny));
        // a human allows
        let human = {
            let b = b.clone();
            std::thread::spawn(move || loop {
                if let Some(p) = b.pending().first() {
                    return b.decide(&p.id, Choice::AllowOnce, Channel::Console);
                }
                std::thread::sleep(Duration::from_millis(5));
            })
        };
        let out = b.judge_exec(&rules, "/usr/bin/git", &argv("git push"), None);
        assert!(
            matches!(out, ExecOutcome::Run { answer: Some(_) }),
            "{out:?}"
        );
        assert!(human.join().expect("joins").is_ok());
        let socket = approvals.socket().to_path_buf();
        drop(approvals);
        assert!(!socket.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
