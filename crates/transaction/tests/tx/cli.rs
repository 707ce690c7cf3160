//! The `cordon tx` subcommand bodies (crates/cli/src/tx.rs), compiled here because the cli
//! crate does not include them yet: output, exit statuses and audit events.

#[path = "../../../cli/src/tx.rs"]
#[allow(dead_code)]
mod tx;

use std::fs;
use std::path::PathBuf;

use cordon_audit::Event;
use cordon_transaction::Protection;

use crate::support::Fixture;

struct Out {
    out: Vec<u8>,
    err: Vec<u8>,
    events: Vec<Event>,
}

impl Out {
    fn new() -> Out {
        Out {
            out: Vec::new(),
            err: Vec::new(),
            events: Vec::new(),
        }
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }
    fn errors(&self) -> String {
        String::from_utf8_lossy(&self.err).into_owned()
    }
}

#[test]
fn list_diff_apply_discard() {
    let f = Fixture::new("cli", "echo old > a; echo keep > k");
    let mut txn = f.open("work");
    if !f.run_in(
        &mut txn,
        "echo new > a; echo hook > .cordon.toml; echo b > b",
    ) {
        return;
    }
    let summary = tx::summary(&txn.changes(&Protection::git_default()).unwrap());
    assert!(summary.contains("2 added, 1 modified"), "{summary}");
    assert!(
        summary.contains("refused by the sandbox's policy"),
        "{summary}"
    );
    drop(txn);
    let p = Protection::git_default();

    let mut o = Out::new();
    let mut sink = |e| o.events.push(e);
    assert_eq!(
        tx::list(&f.state, false, &mut sink, &mut o.out, &mut o.err),
        tx::OK
    );
    assert!(o.text().starts_with("work  "), "{}", o.text());

    let mut o = Out::new();
    let mut events = Vec::new();
    let mut sink = |e| events.push(e);
    assert_eq!(
        tx::diff(&f.state, "work", &p, true, &mut sink, &mut o.out, &mut o.err),
        tx::OK
    );
    let json: serde_json::Value = serde_json::from_slice(&o.out).unwrap();
    assert_eq!(json["summary"]["refused"], 1);

    let mut o = Out::new();
    let mut events = Vec::new();
    let mut sink = |e| events.push(e);
    let code = tx::apply(&f.state, "work", &[], &p, &mut sink, &mut o.out, &mut o.err);
    assert_eq!(code, tx::PARTIAL, "a refusal remains: {}", o.errors());
    assert!(o
        .errors()
        .contains("refused by the sandbox's policy, not applied: .cordon.toml"));
    assert_eq!(fs::read_to_string(f.ws.join("a")).unwrap(), "new\n");
    assert!(!f.ws.join(".cordon.toml").exists());
    match &events[..] {
        [Event::TransactionApplied {
            applied, refused, ..
        }] => {
            assert_eq!(applied, &["a", "b"]);
            assert_eq!(refused, &[".cordon.toml"]);
        }
        other => panic!("events: {other:?}"),
    }

    let mut o = Out::new();
    let mut events = Vec::new();
    let mut sink = |e| events.push(e);
    assert_eq!(
        tx::apply(
            &f.state,
            "work",
            &[PathBuf::from("/elsewhere/x")],
            &p,
            &mut sink,
            &mut o.out,
            &mut o.err
        ),
        tx::FAILED
    );

    let mut o = Out::new();
    let mut events = Vec::new();
    let mut sink = |e| events.push(e);
    assert_eq!(
        tx::discard(&f.state, "work", &mut sink, &mut o.out, &mut o.err),
        tx::OK
    );
    assert!(matches!(&events[..], [Event::TransactionDiscarded { name }] if name == "work"));
    let mut o = Out::new();
    let mut sink = |_| {};
    assert_eq!(
        tx::discard(&f.state, "work", &mut sink, &mut o.out, &mut o.err),
        tx::FAILED
    );
    assert!(o.errors().contains("no transaction named"));
}

#[test]
fn finish_run_applies_automatically_only_when_clean() {
    let p = Protection::git_default();
    let f = Fixture::new("auto", "echo old > a");
    let mut txn = f.open("auto");
    if !f.run_in(&mut txn, "echo new > a") {
        return;
    }
    let mut events = Vec::new();
    let mut err = Vec::new();
    let mut sink = |e| events.push(e);
    assert!(tx::finish_run(&mut txn, &p, true, &mut sink, &mut err));
    assert_eq!(fs::read_to_string(f.ws.join("a")).unwrap(), "new\n");
    assert!(matches!(
        &events[..],
        [
            Event::TransactionRecorded { .. },
            Event::TransactionApplied { .. }
        ]
    ));

    let mut txn = f.open("auto2");
    assert!(f.run_in(&mut txn, "echo newer > a; echo x > .cordon.toml"));
    let mut events = Vec::new();
    let mut err = Vec::new();
    let mut sink = |e| events.push(e);
    assert!(tx::finish_run(&mut txn, &p, true, &mut sink, &mut err));
    let text = String::from_utf8_lossy(&err);
    assert!(text.contains("--apply auto: not applied"), "{text}");
    assert_eq!(fs::read_to_string(f.ws.join("a")).unwrap(), "new\n");
    assert!(matches!(&events[..], [Event::TransactionRecorded { .. }]));
}
