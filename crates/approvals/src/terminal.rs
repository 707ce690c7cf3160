//! The terminal channel: asks on cordon's own terminal (`/dev/tty`) when there is one.
//!
//! The sandboxed command shares that terminal, so it can print a fake question and hope the
//! human's answer lands on a real one. Each question therefore shows a fresh 4-digit code
//! that an allowing answer must repeat: the command cannot read what cordon wrote to the
//! terminal, so it cannot know the code. (It can read the terminal's input and swallow an
//! answer; that only leaves the request open until the console answers or it times out.)

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::thread;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::broker::{Broker, Pending};
use crate::request::{Channel, Choice};

/// Starts asking on `tty` (normally `/dev/tty`) for every request `broker` gets; `Err` when
/// there is no terminal, in which case the console is the only channel.
pub fn spawn(broker: Broker, tty: &Path) -> io::Result<thread::JoinHandle<()>> {
    let file = OpenOptions::new().read(true).write(true).open(tty)?;
    thread::Builder::new()
        .name("cordon-approvals-tty".into())
        .spawn(move || serve(&broker, file))
}

fn serve(broker: &Broker, mut tty: File) {
    let mut version = 0;
    let mut asked = HashSet::new();
    while !broker.is_closed() {
        version = broker.wait_change(version, Duration::from_secs(1));
        for p in broker.pending() {
            if asked.insert(p.id.clone()) && !ask_one(broker, &mut tty, &p) {
                return; // the terminal went away
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

/// Asks about one request until it is answered here or elsewhere; false if the terminal
/// cannot be used any more.
fn ask_one(broker: &Broker, tty: &mut File, p: &Pending) -> bool {
    let code = code();
    if tty.write_all(prompt(p, &code).as_bytes()).is_err() {
        return false;
    }
    let mut line = Vec::new();
    loop {
        if !broker.is_open(&p.id) {
            let _ = writeln!(
                tty,
                "\ncordon: [{}] was answered elsewhere (or timed out)",
                p.id
            );
            return true;
        }
        let mut fds = [PollFd::new(tty.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(250u16)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
        let mut buf = [0u8; 256];
        let n = match tty.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        line.extend_from_slice(&buf[..n]);
        let Some(end) = line.iter().position(|b| *b == b'\n') else {
            continue;
        };
        let text = String::from_utf8_lossy(&line[..end]).to_string();
        line.clear();
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
                let _ = writeln!(tty, "cordon: [{}] {said}", p.id);
                return true;
            }
            Err(why) => {
                let _ = write!(tty, "cordon: {why}\ncordon> ");
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
