//! `cordon rules check [--policy FILE] [--json] -- ARGV...`: prints what the command rules
//! decide for one command line, and which rule decided, judged as `cordon run` judges it on
//! this platform.

use cordon_policy::{CommandRules, CommandVerdict};
use serde_json::json;

/// Prints the verdict on `argv` to stdout. `names` are the names its program was judged by
/// (on Windows the name typed and the file it resolves to). Exit status 0: the decision is
/// in the output, not the status, so a script can tell "forbid" from "cordon failed".
pub fn rules_check(
    rules: &CommandRules,
    verdict: &CommandVerdict<'_>,
    names: &[String],
    argv: &[String],
    json: bool,
) -> i32 {
    if json {
        let mut out = cordon_approvals::rules_check::to_json(rules, verdict);
        out["argv"] = json!(argv);
        if cfg!(windows) {
            out["names"] = json!(names);
            out["judged"] = json!("command_line");
        }
        println!("{out}");
        return 0;
    }
    print!(
        "{}",
        cordon_approvals::rules_check::render_verdict(rules, verdict, argv, false)
    );
    if cfg!(windows) {
        println!("  judged as: {}", names.join(", "));
        println!("  note: on Windows only this command line is judged, not the programs it starts (no exec interception; docs/windows.md)");
    }
    0
}
