//! The terminal channel: asks on cordon's own terminal when there is one.
//!
//! During `cordon run` the terminal is relayed by cordon to the command's own pty
//! ([`TerminalIo`] is then cordon's side of that relay): while a question is open the
//! user's keys go to cordon, not to the command, so the command never sees the answer.
//! It can still print a fake question and hope the human answers it by habit, so each
//! question shows a fresh 4-digit code that an allowing answer must repeat: the command
//! cannot read what cordon wrote to the terminal, so it cannot know the code. On a plain
//! terminal shared with the command ([`DevTty`]) the command could also read the input and
//! swallow an answer; that only leaves the request open until the console answers or it
//! times out.

use std::collections::HashSet;
#[cfg(unix)]
use std::fs::{File, OpenOptions};
use std::io;
#[cfg(unix)]
use std::io::{Read, Write};
#[cfg(unix)]
use std::os::fd::AsFd;
#[cfg(unix)]
use std::path::Path;
use std::thread;
use std::time::Duration;

#[cfg(unix)]
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::broker::{Broker, Pending};
use crate::request::{Channel, Choice};

/// A terminal the channel asks on.
pub trait TerminalIo: Send {
    /// Shows `text` to the human.
    fn show(&mut self, text: &str) -> io::Result<()>;
    /// A question starts: the human's keys come to [`TerminalIo::keys`] until `end`.
    fn begin(&mut self);
    /// The keys typed within `wait`, `Ok(None)` when none were; `Err` when the terminal is
    /// gone.
    fn keys(&mut self, wait: Duration) -> io::Result<Option<Vec<u8>>>;
    /// The question is over: keys go where they went before.
    fn end(&mut self);
    /// Whether the terminal echoes and edits lines itself (cooked), or is in raw mode and
    /// the channel must echo what is typed.
    fn cooked(&self) -> bool;
}

/// A terminal device opened for the channel alone (normally `/dev/tty`), in its own
/// (cooked) mode.
#[cfg(unix)]
pub struct DevTty(File);

#[cfg(unix)]
impl DevTty {
    pub fn open(path: &Path) -> io::Result<DevTty> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map(DevTty)
    }
}

#[cfg(unix)]
impl TerminalIo for DevTty {
    fn show(&mut self, text: &str) -> io::Result<()> {
        self.0.write_all(text.as_bytes())
    }

    fn begin(&mut self) {}

    fn keys(&mut self, wait: Duration) -> io::Result<Option<Vec<u8>>> {
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let mut buf = [0u8; 256];
        match self.0.read(&mut buf)? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            n => Ok(Some(buf[..n].to_vec())),
        }
    }

    fn end(&mut self) {}

    fn cooked(&self) -> bool {
        true
    }
}

/// Starts asking on `terminal` for every request `broker` gets, on a thread of its own.
pub fn spawn(broker: Broker, terminal: Box<dyn TerminalIo>) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("cordon-approvals-tty".into())
        .spawn(move || serve(&broker, terminal))
}

fn serve(broker: &Broker, mut tty: Box<dyn TerminalIo>) {
    let mut version = 0;
    let mut asked = HashSet::new();
    while !broker.is_closed() {
        version = broker.wait_change(version, Duration::from_secs(1));
        for p in broker.pending() {
            if asked.insert(p.id.clone()) {
                tty.begin();
                let usable = ask_one(broker, tty.as_mut(), &p);
                tty.end();
                if !usable {
                    return; // the terminal went away
                }
            }
        }
    }
}

/// A fresh code for one question.
fn code() -> String {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    format!("{:04}", u32::from_le_bytes(b) % 10_000)
}

/// One typed line, edited as a cooked terminal would (for a raw one).
#[derive(Default)]
struct Line {
    text: Vec<u8>,
}

/// What one key does to the line.
enum Edit {
    /// Echo this (nothing for a cooked terminal, which echoes itself).
    Echo(&'static str),
    EchoByte(u8),
    Done,
    /// ^C or ^D: the human wants out; taken as a deny.
    Cancel,
}

impl Line {
    fn key(&mut self, b: u8) -> Edit {
        match b {
            b'\r' | b'\n' => Edit::Done,
            0x03 | 0x04 => Edit::Cancel,
            0x7f | 0x08 => match self.text.pop() {
                Some(_) => Edit::Echo("\x08 \x08"),
                None => Edit::Echo(""),
            },
            0x15 => {
                self.text.clear();
                Edit::Echo("\r\x1b[Kcordon> ")
            }
            b if (0x20..0x7f).contains(&b) => {
                self.text.push(b);
                Edit::EchoByte(b)
            }
            _ => Edit::Echo(""),
        }
    }

    fn take(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.text)).to_string()
    }
}

/// Asks about one request until it is answered here or elsewhere; false if the terminal
/// cannot be used any more.
fn ask_one(broker: &Broker, tty: &mut dyn TerminalIo, p: &Pending) -> bool {
    let code = code();
    if tty.show(&prompt(p, &code)).is_err() {
        return false;
    }
    let cooked = tty.cooked();
    let mut line = Line::default();
    loop {
        if !broker.is_open(&p.id) {
            let _ = tty.show(&format!(
                "\ncordon: [{}] was answered elsewhere (or timed out)\n",
                p.id
            ));
            return true;
        }
        let keys = match tty.keys(Duration::from_millis(250)) {
            Ok(Some(k)) => k,
            Ok(None) => continue,
            Err(_) => return false,
        };
        for b in keys {
            let text = match line.key(b) {
                Edit::Echo(e) if !cooked => {
                    let _ = tty.show(e);
                    continue;
                }
                Edit::EchoByte(c) if !cooked => {
                    let _ = tty.show(&(c as char).to_string());
                    continue;
                }
                Edit::Echo(_) | Edit::EchoByte(_) => continue,
                Edit::Cancel => "d".to_string(),
                Edit::Done => line.take(),
            };
            if !cooked {
                let _ = tty.show("\n");
            }
            match parse_answer(&text, &code, &p.choices) {
                Ok(choice) => {
                    let said = match broker.decide(&p.id, choice, Channel::Terminal) {
                        Ok(a) => match &a.written_to {
                            Some(path) => {
                                format!("{} (written to {})", choice.as_str(), path.display())
                            }
                            None => choice.as_str().to_string(),
                        },
                        Err(e) => format!("not recorded: {e}"),
                    };
                    let _ = tty.show(&format!("cordon: [{}] {said}\n", p.id));
                    return true;
                }
                Err(why) => {
                    let _ = tty.show(&format!("cordon: {why}\ncordon> "));
                }
            }
        }
    }
}

/// The question as the terminal shows it.
pub fn prompt(p: &Pending, code: &str) -> String {
    let r = &p.request;
    let mut out = format!(
        "\ncordon: approval needed [{}] ({})\n  {}: {}\n",
        p.id,
        r.kind.as_str(),
        match r.kind {
            crate::request::Kind::Network => "destination",
            crate::request::Kind::Command => "command",
            crate::request::Kind::Request => "asks for",
        },
        r.subject.join(" ")
    );
    if let Some(cwd) = &r.cwd {
        out.push_str(&format!("  in: {}\n", cwd.display()));
    }
    out.push_str(&format!("  why: {}\n", r.reason));
    if let Some(rule) = &r.rule {
        out.push_str(&format!("  rule: {rule}\n"));
    }
    let keys: Vec<&str> = p
        .choices
        .iter()
        .map(|c| match c {
            Choice::AllowOnce => "o = allow once",
            Choice::AllowSession => "s = this session",
            Choice::AllowAlways => "a = always",
            Choice::Deny => "d = deny",
        })
        .collect();
    out.push_str(&format!(
        "  answer {} followed by the code {code} (e.g. \"o {code}\"; deny needs no code);\n  no answer in {} s denies\ncordon> ",
        keys.join(", "),
        p.seconds_left
    ));
    out
}

/// Reads one typed answer: a letter, then the code unless it denies.
pub fn parse_answer(line: &str, code: &str, choices: &[Choice]) -> Result<Choice, String> {
    let mut words = line.split_whitespace();
    let choice = match words.next() {
        Some("o") => Choice::AllowOnce,
        Some("s") => Choice::AllowSession,
        Some("a") => Choice::AllowAlways,
        Some("d") => Choice::Deny,
        _ => return Err("type o, s, a or d, then the code".into()),
    };
    if !choices.contains(&choice) {
        return Err(format!(
            "{} is not a choice for this request",
            choice.as_str()
        ));
    }
    if choice.allows() && words.next() != Some(code) {
        return Err("that is not this question's code: read the question again".into());
    }
    Ok(choice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Kind, Request};

    const ALL: &[Choice] = Kind::Command.choices();

    #[test]
    fn an_allow_needs_this_questions_code() {
        assert_eq!(parse_answer("o 1234", "1234", ALL), Ok(Choice::AllowOnce));
        assert_eq!(
            parse_answer("  a   1234 ", "1234", ALL),
            Ok(Choice::AllowAlways)
        );
        assert_eq!(parse_answer("d", "1234", ALL), Ok(Choice::Deny));
        assert!(parse_answer("o", "1234", ALL).is_err());
        assert!(parse_answer("o 4321", "1234", ALL).is_err());
        assert!(parse_answer("y", "1234", ALL).is_err());
        assert!(parse_answer("", "1234", ALL).is_err());
        assert!(parse_answer("a 1234", "1234", Kind::Request.choices()).is_err());
    }

    #[test]
    fn a_raw_terminal_line_is_edited_like_a_cooked_one() {
        let mut line = Line::default();
        for b in b"o 12x\x7f34" {
            let _ = line.key(*b);
        }
        assert!(matches!(line.key(b'\r'), Edit::Done));
        assert_eq!(line.take(), "o 1234");
        assert!(matches!(line.key(0x03), Edit::Cancel));
    }

    #[test]
    fn the_prompt_shows_what_and_why() {
        let p = Pending {
            id: "r-1".into(),
            run: "r".into(),
            request: Request {
                cwd: Some("/ws".into()),
                rule: Some("prompt [\"git\", \"push\"] (u.toml:3)".into()),
                ..Request::escalation(vec!["git".into(), "push".into()], "publishes")
            },
            asked_at: String::new(),
            seconds_left: 60,
            choices: ALL.to_vec(),
        };
        let text = prompt(&p, "0042");
        for part in [
            "[r-1]",
            "git push",
            "/ws",
            "publishes",
            "u.toml:3",
            "o 0042",
            "60 s",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
    }
}
