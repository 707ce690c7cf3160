//! `cordon rules check [--policy FILE] [--json] -- ARGV...`: prints what the command rules
//! decide for one command line, and which rule decided.

use cordon_policy::{CommandRules, Layer};

/// Prints the verdict of the merged `layers` (the same layers `cordon run` would use) on
/// `argv` to stdout. Exit status 0: the decision is in the output, not the status, so a
/// script can tell "forbid" from "cordon failed".
pub fn rules_check(layers: &[Layer], argv: &[String], json: bool) -> i32 {
    let rules = CommandRules::from_layers(layers);
    print!(
        "{}",
        cordon_approvals::rules_check::render(&rules, argv, json)
    );
    0
}
