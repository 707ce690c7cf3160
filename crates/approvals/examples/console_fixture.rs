//! A broker, its control socket and the console in one process, driven over stdin, for the
//! browser tests of scripts/console-e2e.sh (a stand-in for `cordon run` + `cordon console`).
//!
//! Usage: `console_fixture STATE_DIR`. Prints `URL <pairing url>`, then reads commands:
//! `ask WORDS...` (a command request, answered in the background: prints
//! `ANSWER <id> <choice> <channel>`), `pending` (prints `PENDING <n>`), `quit`.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use cordon_approvals::console::{Console, ConsoleOptions};
use cordon_approvals::{Broker, BrokerConfig, Control, Kind, Persist, Request, Scrubber};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let state = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: console_fixture STATE_DIR")?,
    );
    std::fs::create_dir_all(&state)?;
    let audit_path = state.join("audit.jsonl");
    let sink = Arc::new(Mutex::new(cordon_audit::Sink::open(&audit_path)?));
    let scrub = Scrubber {
        env_deny: cordon_policy::DEFAULT_ENV_DENY
            .iter()
            .map(|s| s.to_string())
            .collect(),
        env_keep: Vec::new(),
        secrets: vec!["fixture-secret-value".into()],
    };
    let broker = Broker::new(
        BrokerConfig {
            run: "e2e".into(),
            timeout: Duration::from_secs(90),
            persist: Persist {
                user_config: Some(state.join("home/.config/cordon/config.toml")),
                writable_roots: vec![state.join("ws")],
            },
            scrub: scrub.clone(),
        },
        move |event| {
            if let Ok(mut s) = sink.lock() {
                let _ = s.write(&cordon_audit::Record::now("e2e", event));
            }
        },
    );
    let _control = Control::start(broker.clone(), &state.join("approvals"))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let console = runtime.block_on(Console::bind(ConsoleOptions {
        bind: "127.0.0.1:0".parse()?,
        approvals_dir: state.join("approvals"),
        audit_log: Some(audit_path),
        tls_dir: state.join("console"),
        scrub,
        token: None,
    }))?;
    println!("URL {}", console.url);
    io::stdout().flush()?;
    runtime.spawn(console.serve());
    for line in io::stdin().lock().lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        match words.next() {
            Some("ask") => {
                let argv: Vec<String> = words.map(String::from).collect();
                let b = broker.clone();
                thread::spawn(move || {
                    let request = Request {
                        kind: Kind::Command,
                        scope: argv.iter().take(2).cloned().collect(),
                        subject: argv,
                        cwd: Some("/home/dev/project".into()),
                        reason: "pushing publishes the agent's work".into(),
                        rule: Some("prompt [\"git\", \"push\"] (~/.config/cordon/config.toml:4)".into()),
                        diff: Some(serde_json::json!("--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1 +1 @@\n-fn old() {}\n+fn new() {}\n")),
                        output_tail: Some("   Compiling demo v0.1.0\n    Finished `dev` profile\nrunning 12 tests\ntest result: ok. 12 passed\n".into()),
                    };
                    let a = b.ask(request);
                    println!(
                        "ANSWER {} {} {}",
                        a.id,
                        a.choice.as_str(),
                        a.channel.as_str()
                    );
                    let _ = io::stdout().flush();
                });
            }
            Some("pending") => {
                println!("PENDING {}", broker.pending().len());
                io::stdout().flush()?;
            }
            Some("quit") | None => break,
            Some(other) => eprintln!("unknown command {other}"),
        }
    }
    broker.close();
    Ok(())
}
