//! `cordon rules check [--policy FILE] [--json] -- ARGV...`: prints what the command rules
//! decide for one command line, and which rule decided.

use cordon_policy::CommandRules;

/// Prints the verdict of `rules` (merged from the same layers `cordon run` would use) on
/// `argv` to stdout. Exit status 0: the decision is in the output, not the status, so a
/// script can tell "forbid" from "cordon failed".
pub fn rules_check(rules: &CommandRules, argv: &[String], json: bool) -> i32 {
    print!(
        "{}",
        cordon_approvals::rules_check::render(rules, argv, json)
    );
    0
}
