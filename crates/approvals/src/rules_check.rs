//! `cordon rules check`: what the command rules say about one command line, for a human or a
//! script.

use cordon_policy::{CommandRule, CommandRules, CommandVerdict};
use serde_json::{json, Value};

/// The report on `argv`: text (decision first, then the rule and reason) or one JSON object
/// with at least `decision` and `rule` (`null` when the default decided).
pub fn render(rules: &CommandRules, argv: &[String], as_json: bool) -> String {
    render_verdict(rules, &rules.decide(argv), argv, as_json)
}

/// [`render`] of a verdict the caller reached (Windows judges a program by more than one
/// name).
pub fn render_verdict(
    rules: &CommandRules,
    verdict: &CommandVerdict<'_>,
    argv: &[String],
    as_json: bool,
) -> String {
    if as_json {
        let mut out = to_json(rules, verdict);
        out["argv"] = json!(argv);
        format!("{out}\n")
    } else {
        text(rules, verdict, argv)
    }
}

fn rule_json(rule: &CommandRule) -> Value {
    json!({
        "prefix": rule.pattern.words(),
        "decision": rule.decision.as_str(),
        "reason": rule.reason,
        "origin": rule.origin.to_string(),
    })
}

/// The verdict as JSON (also what the supervisor may log).
pub fn to_json(rules: &CommandRules, v: &CommandVerdict<'_>) -> Value {
    json!({
        "decision": v.decision.as_str(),
        "rule": v.rule.map(rule_json),
        "reason": v.reason(),
        "approved": v.approved.map(|a| json!({
            "prefix": a.pattern.words(),
            "note": a.note,
            "origin": a.origin.to_string(),
        })),
        "default": rules.default.as_str(),
        "scope": v.scope,
    })
}

fn text(rules: &CommandRules, v: &CommandVerdict<'_>, argv: &[String]) -> String {
    let mut out = format!("{}: {}\n", v.decision, argv.join(" "));
    match v.rule {
        Some(rule) => out.push_str(&format!("  rule: {rule}\n")),
        None => {
            let origin = rules
                .default_origin
                .as_ref()
                .map_or("built-in".to_string(), |o| o.to_string());
            out.push_str(&format!(
                "  rule: none matched; default {} ({origin})\n",
                rules.default
            ));
        }
    }
    if let Some(a) = v.approved {
        out.push_str(&format!(
            "  approved: {} ({}) answers this prompt\n",
            a.pattern, a.origin
        ));
    }
    out.push_str(&format!("  reason: {}\n", v.reason()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_policy::{Layer, LayerSource};
    use std::path::Path;

    fn rules() -> CommandRules {
        let text = "[commands]\ndefault = \"prompt\"\n[[commands.rules]]\nprefix = [\"npm\", [\"publish\", \"unpublish\"]]\ndecision = \"forbid\"\nreason = \"not from the agent\"\n";
        let layer = Layer::parse(
            LayerSource::User("u.toml".into()),
            Path::new("u.toml"),
            text,
        )
        .unwrap();
        CommandRules::from_layers(&[layer])
    }

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn json_names_decision_and_rule() {
        let out: Value =
            serde_json::from_str(&render(&rules(), &argv("npm publish"), true)).unwrap();
        assert_eq!(out["decision"], "forbid");
        assert_eq!(out["rule"]["decision"], "forbid");
        assert_eq!(out["rule"]["origin"], "u.toml:4");
        assert_eq!(
            out["rule"]["prefix"],
            json!([["npm"], ["publish", "unpublish"]])
        );
        assert_eq!(out["reason"], "not from the agent");
        let out: Value = serde_json::from_str(&render(&rules(), &argv("ls -l"), true)).unwrap();
        assert_eq!(out["decision"], "prompt");
        assert!(out["rule"].is_null());
        assert_eq!(out["argv"], json!(["ls", "-l"]));
    }

    #[test]
    fn text_leads_with_the_decision() {
        let out = render(&rules(), &argv("/usr/bin/npm unpublish x"), false);
        assert!(
            out.starts_with("forbid: /usr/bin/npm unpublish x\n"),
            "{out}"
        );
        assert!(out.contains("u.toml:4"), "{out}");
        let out = render(&rules(), &argv("make"), false);
        assert!(out.contains("default prompt (u.toml:2)"), "{out}");
    }
}
