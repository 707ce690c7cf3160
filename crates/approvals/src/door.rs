//! The request door: the only thing inside the sandbox can do with the broker is *ask*.
//!
//! `cordon request` (run by the agent, inside) writes one line
//! `{"what": ["network.allow", "pypi.org"], "justification": "pip install needs it"}` and reads
//! one line back: the `Answer`. The door has no token and no other command: asking is
//! harmless, since only a human on a channel outside can answer, and it never learns the
//! control socket or its token. One open request per connection and a bounded line keep an
//! agent from flooding the human or the broker.
//!
//! How the door reaches the sandbox is the caller's choice: a `socketpair` end inherited by
//! the command (`serve_stream`), or a listener bound where the sandbox can see it
//! (`serve_listener`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use serde::{Deserialize, Serialize};

use crate::request::{Answer, Choice, Request};
use crate::session::Channels;
use crate::widen::{Widenable, Widening};

/// What `cordon request` sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ask {
    pub what: Vec<String>,
    pub justification: String,
}

const MAX_LINE: u64 = 16 << 10;
/// Requests the door holds open at once; more are refused at once rather than queued.
const MAX_OPEN: usize = 4;

/// Serves one stream (e.g. an inherited socketpair end), one request at a time, until EOF.
pub fn serve_stream(channels: &Channels, stream: UnixStream, can: Widenable) {
    let open = Arc::new(AtomicUsize::new(0));
    serve(channels, stream, &open, can);
}

/// Serves every connection to `listener` on its own thread, until the broker closes.
pub fn serve_listener(
    channels: Arc<Channels>,
    listener: UnixListener,
    can: Widenable,
) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("cordon-request-door".into())
        .spawn(move || {
            let open = Arc::new(AtomicUsize::new(0));
            for conn in listener.incoming() {
                if channels.broker().is_closed() {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (c, open) = (channels.clone(), open.clone());
                let _ = thread::Builder::new()
                    .name("cordon-request".into())
                    .spawn(move || serve(&c, conn, &open, can));
            }
        })
}

fn serve(channels: &Channels, stream: UnixStream, open: &AtomicUsize, can: Widenable) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        // Each line is bounded on its own; one that does not end within the bound ends the
        // connection, since what follows could not be told apart from a new request.
        match (&mut reader).take(MAX_LINE).read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if !line.ends_with('\n') => {
                let _ = out.write_all(b"{\"error\":\"request too long\"}\n");
                return;
            }
            Ok(_) => {}
        }
        let reply = match serde_json::from_str::<Ask>(&line) {
            Err(e) => {
                serde_json::json!({"error": format!("expected {{\"what\": [...], \"justification\": \"...\"}}: {e}")})
            }
            Ok(ask) if ask.what.is_empty() || ask.justification.trim().is_empty() => {
                serde_json::json!({"error": "say what you need and why"})
            }
            Ok(ask) => match Widening::parse(&ask.what, can) {
                // Nothing a human could grant: said at once, nobody is bothered.
                Err(why) => serde_json::json!({"error": why}),
                Ok(widening) => match channels.ensure() {
                    Err(why) => {
                        serde_json::json!({"error": format!("no human can be asked: {why}")})
                    }
                    Ok(()) if open.fetch_add(1, Ordering::SeqCst) >= MAX_OPEN => {
                        open.fetch_sub(1, Ordering::SeqCst);
                        serde_json::json!({"error": "too many open requests; wait for the human's answers"})
                    }
                    Ok(()) => {
                        let answer = ask_human(channels, &widening, ask);
                        open.fetch_sub(1, Ordering::SeqCst);
                        serde_json::json!({"answer": answer})
                    }
                },
            },
        };
        let mut text = reply.to_string();
        text.push('\n');
        if out.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}

/// Puts one widening to a human; an allowed one becomes the broker's grant, so what it
/// covers is let through from now on (only the next time for "allow once").
fn ask_human(channels: &Channels, widening: &Widening, ask: Ask) -> Answer {
    let broker = channels.broker();
    let answer = broker.ask(Request::escalation(ask.what, ask.justification));
    if answer.allowed() {
        let (kind, words) = widening.grant();
        broker.grant(kind, words, answer.choice == Choice::AllowOnce);
    }
    answer
}

/// The body of `cordon request`: asks through the door at `socket` and waits for the answer.
pub fn request(socket: &Path, what: Vec<String>, justification: &str) -> io::Result<Answer> {
    request_on(UnixStream::connect(socket)?, what, justification)
}

/// As `request`, on a stream already open (an inherited socketpair end).
pub fn request_on(
    mut stream: UnixStream,
    what: Vec<String>,
    justification: &str,
) -> io::Result<Answer> {
    let ask = Ask {
        what,
        justification: justification.to_string(),
    };
    let mut line = serde_json::to_string(&ask).map_err(io::Error::other)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    let value: serde_json::Value = serde_json::from_str(&reply).map_err(io::Error::other)?;
    match value.get("answer") {
        Some(a) => serde_json::from_value(a.clone()).map_err(io::Error::other),
        None => Err(io::Error::other(
            value["error"]
                .as_str()
                .unwrap_or("the broker refused")
                .to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::{Broker, BrokerConfig};
    use crate::persist::Persist;
    use crate::request::{Channel, Choice, Kind, Scrubber};
    use std::time::Duration;

    fn channels(timeout_ms: u64) -> Arc<Channels> {
        let broker = Broker::new(
            BrokerConfig {
                run: "d".into(),
                timeout: Duration::from_millis(timeout_ms),
                persist: Persist::default(),
                scrub: Scrubber::default(),
            },
            |_| {},
        );
        Arc::new(Channels::new(broker, None, None))
    }

    const ALL: Widenable = Widenable {
        network: true,
        commands: true,
    };

    #[test]
    fn the_door_only_asks_and_cannot_decide() {
        let c = channels(10_000);
        let b = c.broker().clone();
        let (inside, outside) = UnixStream::pair().expect("pair");
        let served = {
            let c = c.clone();
            thread::spawn(move || serve_stream(&c, outside, ALL))
        };
        // a decide command through the door is not a request, and decides nothing
        let mut raw = inside.try_clone().expect("clone");
        raw.write_all(b"{\"op\":\"decide\",\"id\":\"d-1\",\"choice\":\"allow_once\"}\n")
            .expect("write");
        let mut reply = String::new();
        BufReader::new(raw.try_clone().expect("clone"))
            .read_line(&mut reply)
            .expect("read");
        assert!(reply.contains("error"), "{reply}");
        let human = {
            let b = b.clone();
            thread::spawn(move || loop {
                if let Some(p) = b.pending().first() {
                    assert_eq!(p.request.kind, Kind::Request);
                    assert_eq!(p.request.reason, "pip install needs it");
                    return b.decide(&p.id, Choice::AllowOnce, Channel::Console);
                }
                thread::sleep(Duration::from_millis(5));
            })
        };
        let answer = request_on(
            inside,
            vec!["network.allow".into(), "pypi.org".into()],
            "pip install needs it",
        )
        .expect("answered");
        assert!(answer.allowed());
        assert!(human.join().expect("joins").is_ok());
        // allowed once: the next connection to pypi.org is let through, the one after asks
        let to_pypi = || Request::network("PyPI.org", 443, "unlisted");
        assert!(b.covered(&to_pypi()));
        assert!(!b.covered(&to_pypi()));
        assert!(!b.covered(&Request::network("files.pythonhosted.org", 443, "unlisted")));
        drop(raw);
        served.join().expect("joins");
    }

    #[test]
    fn an_ungrantable_request_is_refused_without_asking_anyone() {
        let c = channels(10_000);
        let (inside, outside) = UnixStream::pair().expect("pair");
        let served = {
            let c = c.clone();
            thread::spawn(move || serve_stream(&c, outside, Widenable::default()))
        };
        let err = request_on(
            inside,
            vec!["network.allow".into(), "pypi.org".into()],
            "pip needs it",
        )
        .expect_err("no proxy in this run");
        assert!(err.to_string().contains("--net allow"), "{err}");
        assert!(c.broker().pending().is_empty());
        served.join().expect("joins");
    }

    #[test]
    fn a_session_grant_for_a_command_covers_its_longer_command_lines() {
        let c = channels(10_000);
        let b = c.broker().clone();
        let human = thread::spawn(move || loop {
            if let Some(p) = b.pending().first() {
                return b.decide(&p.id, Choice::AllowSession, Channel::Console);
            }
            thread::sleep(Duration::from_millis(5));
        });
        let (inside, outside) = UnixStream::pair().expect("pair");
        let served = {
            let c = c.clone();
            thread::spawn(move || serve_stream(&c, outside, ALL))
        };
        let answer = request_on(
            inside,
            vec!["command".into(), "git".into(), "push".into()],
            "publish the fix",
        )
        .expect("answered");
        assert_eq!(answer.choice, Choice::AllowSession);
        assert!(human.join().expect("joins").is_ok());
        let exec = |line: &str| Request {
            kind: crate::request::Kind::Command,
            subject: line.split(' ').map(String::from).collect(),
            scope: vec!["git".into()],
            ..Request::escalation(vec![], "")
        };
        let b = c.broker();
        assert!(b.covered(&exec("/usr/bin/git push origin main")));
        assert!(b.covered(&exec("git push")));
        assert!(!b.covered(&exec("git pull")));
        assert!(!b.covered(&exec("git")));
        served.join().expect("joins");
    }

    #[test]
    fn empty_or_oversized_asks_are_refused_and_silence_denies() {
        let c = channels(100);
        let dir = std::env::temp_dir().join(format!("cordon-door-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let sock = dir.join("door.sock");
        let _ = std::fs::remove_file(&sock);
        serve_listener(c, UnixListener::bind(&sock).expect("bind"), ALL).expect("serves");
        assert!(request(&sock, vec![], "x").is_err());
        assert!(request(&sock, vec!["x".into()], "  ").is_err());
        let huge = "x".repeat(64 << 10);
        assert!(request(&sock, vec![huge], "why").is_err());
        let answer =
            request(&sock, vec!["network.allow".into(), "x.test".into()], "why").expect("answered");
        assert_eq!(
            (answer.choice, answer.channel),
            (Choice::Deny, Channel::Timeout)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
