//! The `cordon tx` subcommand bodies (crates/cli/src/tx.rs), compiled here because the cli
//! crate does not include them yet.

#[path = "../../../cli/src/tx.rs"]
#[allow(dead_code)]
mod tx;
