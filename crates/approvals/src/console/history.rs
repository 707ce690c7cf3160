//! The audit history the console shows: read leniently from the JSON-lines log and filtered.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::Value;

use crate::request::Scrubber;

/// Query parameters of `/api/history`; every one optional.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryFilter {
    /// Text the command line (or destination) must contain.
    pub command: Option<String>,
    /// `allow` (any allowing answer or decision), `deny` (deny, timeout, refused), or an
    /// exact decision such as `allow_session`.
    pub decision: Option<String>,
    /// RFC 3339 bounds on the event's time.
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<usize>,
}

/// The events a human supervises, as kept: approvals, commands, network decisions.
const SHOWN: &[&str] = &[
    "approval_requested",
    "approval_decided",
    "command_start",
    "command_exit",
    "network",
    "policy_ignored",
];

/// Only the tail of a long log is read: the console is for what happened lately.
const TAIL_BYTES: u64 = 8 << 20;

/// Newest first. Lines that are not JSON, or are events of kinds it does not know, are
/// skipped rather than failing the page: the log is written by other versions too.
pub fn history(log: &Path, filter: &HistoryFilter, scrub: &Scrubber) -> Vec<Value> {
    let Ok(mut file) = File::open(log) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let skip_partial = len > TAIL_BYTES;
    if skip_partial && file.seek(SeekFrom::Start(len - TAIL_BYTES)).is_err() {
        return Vec::new();
    }
    let time = |s: &Option<String>| {
        s.as_deref()
            .filter(|t| !t.is_empty())
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
    };
    let (since, until) = (time(&filter.since), time(&filter.until));
    let needle = filter.command.as_deref().filter(|c| !c.is_empty());
    let decision = filter.decision.as_deref().filter(|d| !d.is_empty());
    let limit = filter.limit.unwrap_or(200).min(2000);
    let mut out: Vec<Value> = BufReader::new(file)
        .lines()
        .skip(usize::from(skip_partial))
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
        .filter(|e| SHOWN.contains(&e["event"].as_str().unwrap_or("")))
        .map(|e| scrubbed(e, scrub))
        .filter(|e| {
            let at = e["ts"]
                .as_str()
                .and_then(|t| humantime::parse_rfc3339_weak(t).ok());
            in_time(at, since, until)
                && needle.is_none_or(|n| subject(e).contains(n))
                && decision.is_none_or(|d| decision_matches(e, d))
        })
        .collect();
    out.reverse();
    out.truncate(limit);
    out
}

fn in_time(at: Option<SystemTime>, since: Option<SystemTime>, until: Option<SystemTime>) -> bool {
    match at {
        Some(at) => since.is_none_or(|s| at >= s) && until.is_none_or(|u| at <= u),
        None => since.is_none() && until.is_none(),
    }
}

/// The command line (or destination) of an event as one string.
fn subject(e: &Value) -> String {
    let words = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    match e["event"].as_str() {
        Some("command_start") => words(&e["argv"]),
        Some("network") => format!(
            "{}:{}",
            e["host"].as_str().unwrap_or(""),
            e["port"].as_u64().unwrap_or(0)
        ),
        _ => words(&e["subject"]),
    }
}

fn decision_matches(e: &Value, wanted: &str) -> bool {
    let Some(d) = e["decision"].as_str() else {
        return false;
    };
    match wanted {
        "allow" => d.starts_with("allow"),
        "deny" => matches!(d, "deny" | "refused"),
        exact => d == exact,
    }
}

fn scrubbed(e: Value, scrub: &Scrubber) -> Value {
    match e {
        Value::String(s) => Value::String(scrub.word(&s)),
        Value::Array(a) => match a
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
        {
            // a command line: its words are judged together (`--token VALUE`)
            Some(words) => {
                Value::Array(scrub.words(&words).into_iter().map(Value::String).collect())
            }
            None => Value::Array(a.into_iter().map(|v| scrubbed(v, scrub)).collect()),
        },
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, scrubbed(v, scrub)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn filters_by_command_decision_and_time_and_skips_what_it_cannot_read() {
        let dir = std::env::temp_dir().join(format!("cordon-hist-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("audit.jsonl");
        let lines = [
            r#"{"ts":"2026-12-01T10:00:00.000Z","run":"a","event":"command_start","argv":["env","GITHUB_TOKEN=ghp_secret","make"],"cwd":"/w","workspace":"/w","policy_digest":"x","backend":"b","guarantees":[],"env_removed":[]}"#,
            "not json",
            r#"{"ts":"2026-12-01T11:00:00.000Z","run":"a","event":"some_future_event"}"#,
            r#"{"ts":"2026-12-01T12:00:00.000Z","run":"a","event":"approval_decided","id":"a-1","kind":"command","subject":["git","push"],"decision":"deny","by":"timeout","channel":"timeout"}"#,
            r#"{"ts":"2026-12-01T13:00:00.000Z","run":"a","event":"approval_decided","id":"a-2","kind":"command","subject":["git","push"],"decision":"allow_once","by":"user","channel":"console"}"#,
        ];
        fs::write(&log, lines.join("\n")).unwrap();
        let scrub = Scrubber {
            env_deny: vec!["*_TOKEN".into()],
            ..Scrubber::default()
        };
        let all = history(&log, &HistoryFilter::default(), &scrub);
        assert_eq!(all.len(), 3);
        assert_eq!(all[0]["id"], "a-2", "newest first");
        assert!(!all[2].to_string().contains("ghp_secret"));
        let f = |c: &str, d: &str, s: &str| HistoryFilter {
            command: Some(c.into()),
            decision: Some(d.into()),
            since: Some(s.into()),
            ..HistoryFilter::default()
        };
        assert_eq!(history(&log, &f("git push", "", ""), &scrub).len(), 2);
        assert_eq!(history(&log, &f("", "deny", ""), &scrub).len(), 1);
        assert_eq!(history(&log, &f("", "allow", ""), &scrub).len(), 1);
        assert_eq!(
            history(&log, &f("", "", "2026-12-01T12:30:00Z"), &scrub).len(),
            1
        );
        assert!(history(&dir.join("absent"), &HistoryFilter::default(), &scrub).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
