//! The broker's control socket: how the console (another process of the same user) sees
//! and answers a run's requests.
//!
//! For each run, cordon's state folder holds the endpoint, `approvals/RUN.sock` (mode 0600)
//! on Unix or a named pipe only cordon's user may open on Windows (`crate::transport`), and
//! `approvals/RUN.json` (private: the endpoint's address and a random token). The state
//! folder is deny-read inside every sandbox and pathname sockets out of it are refused, so a
//! sandboxed process can neither read the token nor reach the socket (on Windows the sandbox
//! account can open neither the user's profile nor the pipe); the broker checks the token on
//! every connection and, as a second lock, that the peer runs as cordon's own user.
//!
//! The protocol is one JSON object per line. The client's first line is `{"token": "..."}`;
//! then each line is a command and gets one reply: `{"op": "pending"}`,
//! `{"op": "decide", "id": "...", "choice": "allow_once"}`,
//! `{"op": "wait", "since": N, "timeout_ms": M}`.

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::broker::Broker;
use crate::request::{Channel, Choice};
use crate::token;
use crate::transport::{self, Stream};

/// What `RUN.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub run: String,
    /// The socket's path, or on Windows the pipe's name.
    pub socket: PathBuf,
    pub token: String,
    pub pid: u32,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Command {
    Pending,
    Decide { id: String, choice: String },
    Wait { since: u64, timeout_ms: u64 },
}

#[derive(Debug, Deserialize)]
struct Hello {
    token: String,
}

/// The running control socket; dropping it removes the socket and the token file.
pub struct Control {
    endpoint: Endpoint,
    info: PathBuf,
    stop: Arc<AtomicBool>,
    /// Says when the accept loop has ended (and with it the listener).
    ended: std::sync::mpsc::Receiver<()>,
}

impl Control {
    /// Serves `broker` on `DIR/RUN.sock` (a pipe on Windows); `dir` (cordon's
    /// `STATE/approvals`) is made private.
    pub fn start(broker: Broker, dir: &Path) -> io::Result<Control> {
        crate::private::create_dir(dir)?;
        // An existing folder with looser rights would let another user plant or read files.
        crate::private::restrict_dir(dir)?;
        let run = broker.run().to_string();
        let info = dir.join(format!("{run}.json"));
        let (mut listener, socket) = transport::bind(dir, &run)?;
        let endpoint = Endpoint {
            run,
            socket,
            token: token::random()?,
            pid: std::process::id(),
        };
        let text = serde_json::to_vec(&endpoint).map_err(io::Error::other)?;
        let tmp = dir.join(format!(".{}.json.tmp", endpoint.run));
        crate::private::create_file(&tmp)?.write_all(&text)?;
        fs::rename(&tmp, &info)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (token, stopping) = (endpoint.token.clone(), stop.clone());
        let (ended_tx, ended) = std::sync::mpsc::channel();
        let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        thread::Builder::new()
            .name("cordon-approvals".into())
            .spawn(move || {
                loop {
                    let conn = listener.accept();
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else {
                        // A failing accept is not retried in a tight loop.
                        thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    // Bounded: a peer that connects and stays silent holds a thread (on
                    // Windows without a read timeout), so past the bound it is closed unread;
                    // one that is plainly not cordon's user takes no slot at all.
                    if !transport::peer_may_be_own_user(&conn) {
                        continue;
                    }
                    let Some(slot) = Slot::take(&open) else {
                        continue;
                    };
                    let (broker, token) = (broker.clone(), token.clone());
                    let _ = thread::Builder::new()
                        .name("cordon-approvals-conn".into())
                        .spawn(move || {
                            serve(conn, &broker, &token);
                            drop(slot);
                        });
                }
                drop(listener);
                let _ = ended_tx.send(());
            })?;
        Ok(Control {
            endpoint,
            info,
            stop,
            ended,
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag, and let it close the listener (a pipe
        // lives while an instance is open); bounded, should the wake not arrive.
        // The wake stays connected until then: a pipe client gone before the server calls
        // ConnectNamedPipe would wake nothing.
        if let Ok(wake) = transport::connect(&self.endpoint.socket) {
            let _ = self.ended.recv_timeout(Duration::from_secs(1));
            drop(wake);
        }
        transport::remove(&self.endpoint.socket);
        let _ = fs::remove_file(&self.info);
    }
}

/// At most this many connections are served at once (the console holds one per request).
const MAX_CONNECTIONS: usize = 32;

/// One of the [`MAX_CONNECTIONS`], given back on drop.
struct Slot(Arc<std::sync::atomic::AtomicUsize>);

impl Slot {
    fn take(open: &Arc<std::sync::atomic::AtomicUsize>) -> Option<Slot> {
        let taken = open.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < MAX_CONNECTIONS).then_some(n + 1)
        });
        taken.ok().map(|_| Slot(open.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve(conn: Stream, broker: &Broker, token: &str) {
    let _ = transport::set_read_timeout(&conn, Duration::from_secs(300));
    let Ok(mut out) = transport::try_clone(&conn) else {
        return;
    };
    let mut reply = |value: serde_json::Value| -> bool {
        let mut line = value.to_string();
        line.push('\n');
        out.write_all(line.as_bytes()).is_ok()
    };
    // Bounded lines: a peer cannot make the broker buffer without end.
    let mut reader = BufReader::new(io::Read::take(conn, 1 << 20));
    let mut hello = String::new();
    let read = reader.read_line(&mut hello);
    // After the first read: a Windows pipe lends the client's token only from then on.
    if !transport::peer_is_own_user(reader.get_ref().get_ref()) {
        reply(serde_json::json!({"error": "another user"}));
        return;
    }
    let authorised = match read {
        Ok(n) if n > 0 => serde_json::from_str::<Hello>(&hello)
            .map(|h| token::equal(&h.token, token))
            .unwrap_or(false),
        _ => false,
    };
    if !authorised {
        reply(serde_json::json!({"error": "wrong token"}));
        return;
    }
    if !reply(serde_json::json!({"ok": true, "run": broker.run()})) {
        return;
    }
    for line in reader.lines() {
        let Ok(line) = line else { return };
        let answer = match serde_json::from_str::<Command>(&line) {
            Ok(Command::Pending) => serde_json::json!({"pending": broker.pending()}),
            Ok(Command::Decide { id, choice }) => match Choice::parse(&choice) {
                Some(choice) => match broker.decide(&id, choice, Channel::Console) {
                    Ok(a) => serde_json::json!({"answer": a}),
                    Err(e) => serde_json::json!({"error": error_chain(&e)}),
                },
                None => serde_json::json!({"error": format!("unknown choice `{choice}`")}),
            },
            Ok(Command::Wait { since, timeout_ms }) => {
                let timeout = Duration::from_millis(timeout_ms.min(30_000));
                serde_json::json!({"version": broker.wait_change(since, timeout)})
            }
            Err(e) => serde_json::json!({"error": format!("bad command: {e}")}),
        };
        if !reply(answer) {
            return;
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The runs with a control socket in `dir`, read from their `RUN.json` files.
pub fn endpoints(dir: &Path) -> Vec<Endpoint> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<Endpoint> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| fs::read(e.path()).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect();
    out.sort_by(|a, b| a.run.cmp(&b.run));
    out
}

/// A blocking client of one control socket (the console runs it on tokio's blocking pool).
pub struct Client {
    reader: BufReader<Stream>,
    writer: Stream,
}

impl Client {
    /// Connects to a run's endpoint, which must be served by the process `RUN.json` names
    /// (the token goes to nobody else).
    pub fn connect(endpoint: &Endpoint) -> io::Result<Client> {
        let writer = transport::connect(&endpoint.socket)?;
        if !transport::server_is(&writer, endpoint.pid) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is not served by the run's cordon (pid {})",
                    endpoint.socket.display(),
                    endpoint.pid
                ),
            ));
        }
        transport::set_read_timeout(&writer, Duration::from_secs(40))?;
        let mut client = Client {
            reader: BufReader::new(transport::try_clone(&writer)?),
            writer,
        };
        let hello = client.call(&serde_json::json!({"token": endpoint.token}))?;
        if hello.get("ok").is_none() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                hello.to_string(),
            ));
        }
        Ok(client)
    }

    /// Sends one line and reads one reply.
    pub fn call(&mut self, message: &serde_json::Value) -> io::Result<serde_json::Value> {
        let mut line = message.to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        let mut reply = String::new();
        if self.reader.read_line(&mut reply)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the broker closed the connection",
            ));
        }
        serde_json::from_str(&reply).map_err(io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::BrokerConfig;
    use crate::persist::Persist;
    use crate::request::{Request, Scrubber};

    fn broker(run: &str) -> Broker {
        Broker::new(
            BrokerConfig {
                run: run.into(),
                timeout: Duration::from_secs(10),
                persist: Persist::default(),
                scrub: Scrubber::default(),
            },
            |_| {},
        )
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cordon-ctl-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn raw(socket: &Path, first: &str, then: &str) -> String {
        let mut s = transport::connect(socket).unwrap();
        s.write_all(format!("{first}\n{then}\n").as_bytes())
            .unwrap();
        let mut out = String::new();
        let _ = io::Read::read_to_string(&mut s, &mut out);
        out
    }

    /// Run as a child by `another_user_can_read_nothing_and_reach_nothing`: tries to read
    /// the token file and talk to the socket, and prints what happened.
    #[cfg(unix)]
    #[test]
    fn helper_as_another_user() {
        let (Ok(info), Ok(socket)) = (
            std::env::var("CORDON_TEST_INFO"),
            std::env::var("CORDON_TEST_SOCKET"),
        ) else {
            return; // only meaningful as the child
        };
        let read = fs::read(&info).is_ok();
        let reached = std::os::unix::net::UnixStream::connect(&socket).is_ok();
        println!("HELPER read={read} reached={reached}");
    }

    #[cfg(unix)]
    #[test]
    fn another_user_can_read_nothing_and_reach_nothing() {
        use std::os::unix::process::CommandExt;
        if !nix::unistd::geteuid().is_root() {
            eprintln!(
                "SKIP another_user_can_read_nothing_and_reach_nothing: needs root to switch users"
            );
            return;
        }
        let d = dir("uid");
        let control = Control::start(broker("ru"), &d).unwrap();
        let ep = control.endpoint().clone();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "control::tests::helper_as_another_user",
                "--nocapture",
            ])
            .env("CORDON_TEST_INFO", d.join("ru.json"))
            .env("CORDON_TEST_SOCKET", &ep.socket)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("HELPER read=false reached=false"), "{text}");
        drop(control);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn silent_peers_hold_a_bounded_number_of_threads_and_the_rest_are_closed() {
        let d = dir("bound");
        let control = Control::start(broker("rb"), &d).unwrap();
        let ep = control.endpoint().clone();
        let silent: Vec<Stream> = (0..MAX_CONNECTIONS)
            .map(|_| transport::connect(&ep.socket).unwrap())
            .collect();
        // Each silent peer is being served (a thread waits for its first line)...
        thread::sleep(Duration::from_millis(200));
        // ...so one more is closed unread: it reads the end at once.
        let mut extra = transport::connect(&ep.socket).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(io::Read::read(&mut extra, &mut buf).unwrap_or(0), 0);
        // A slot given back serves the console again.
        drop(silent);
        let mut served = None;
        for _ in 0..50 {
            thread::sleep(Duration::from_millis(20));
            if let Ok(c) = Client::connect(&ep) {
                served = Some(c);
                break;
            }
        }
        assert!(
            served.is_some(),
            "no connection was served after the silent ones left"
        );
        drop(served);
        drop(control);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_token_is_required_and_a_wrong_one_refused() {
        let d = dir("token");
        let b = broker("rt");
        let control = Control::start(b.clone(), &d).unwrap();
        let ep = control.endpoint().clone();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&d), 0o700);
            assert_eq!(mode(&ep.socket), 0o600);
            assert_eq!(mode(&d.join("rt.json")), 0o600);
        }
        assert_eq!(endpoints(&d), vec![ep.clone()]);

        let asker = {
            let b = b.clone();
            thread::spawn(move || b.ask(Request::escalation(vec!["x".into()], "why")))
        };
        while b.pending().is_empty() {
            thread::sleep(Duration::from_millis(5));
        }
        let id = b.pending()[0].id.clone();
        let decide = format!(r#"{{"op":"decide","id":"{id}","choice":"allow_once"}}"#);
        // no token at all: the command itself is taken as the hello, and refused
        let out = raw(&ep.socket, &decide, &decide);
        assert!(
            out.contains("wrong token") && !out.contains("answer"),
            "{out}"
        );
        // a wrong token, and one differing only in the last character
        let mut near = ep.token.clone();
        near.pop();
        near.push(if ep.token.ends_with('0') { '1' } else { '0' });
        for bad in ["nope".to_string(), near, String::new()] {
            let out = raw(&ep.socket, &format!(r#"{{"token":"{bad}"}}"#), &decide);
            assert!(out.contains("wrong token"), "{out}");
        }
        assert_eq!(b.pending().len(), 1, "nothing was decided");

        let mut client = Client::connect(&ep).unwrap();
        let listed = client.call(&serde_json::json!({"op": "pending"})).unwrap();
        assert_eq!(listed["pending"][0]["id"], id.as_str());
        let reply = client
            .call(&serde_json::json!({"op":"decide","id": id,"choice":"allow_once"}))
            .unwrap();
        assert_eq!(reply["answer"]["channel"], "console", "{reply}");
        let answer = asker.join().unwrap();
        assert!(answer.allowed());
        let again = client
            .call(&serde_json::json!({"op":"decide","id": id,"choice":"allow_once"}))
            .unwrap();
        assert!(again["error"]
            .as_str()
            .unwrap_or("")
            .contains("no open request"));

        drop(client);
        drop(control);
        assert!(transport::connect(&ep.socket).is_err() && !d.join("rt.json").exists());
        assert!(Client::connect(&ep).is_err());
        fs::remove_dir_all(&d).unwrap();
    }
}
