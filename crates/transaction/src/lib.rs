//! Transactions: an agent's writes kept in an overlayfs upper layer in cordon's state folder,
//! reviewed as a change set, then applied to the real workspace crash-safely, or discarded.
//!
//! The sandbox side mounts `Transaction::upper()`/`work()` over the workspace and calls
//! `Transaction::record_bases` when the command ends; the CLI lists, diffs, applies and
//! discards. See docs/transactions.md for the how-to and the on-disk format.
#![forbid(unsafe_code)]

mod apply;
mod change;
mod diff;
mod entry;
mod error;
pub mod fault;
pub mod name;
mod protect;
mod scan;
mod store;
mod trash;
mod wire;

pub use apply::{ApplyReport, Conflict, Recovery, Refusal};
pub use change::{Change, ChangeSet, Kind, Status, Summary};
pub use diff::{Diff, FileDiff, MAX_TEXT_DIFF};
pub use entry::Entry;
pub use error::{Error, Result};
pub use protect::Protection;
pub use store::{Listing, Meta, Store, Transaction};
pub use wire::RelPath;

use cordon_audit::Event;

impl Transaction {
    /// Applies the selected changes (every change when `paths` is empty): refused and
    /// conflicting ones are reported and left in the transaction.
    pub fn apply(&mut self, protection: &Protection, paths: &[RelPath]) -> Result<ApplyReport> {
        apply::apply(self, protection, paths)
    }

    /// Whether old versions replaced or removed by an apply are still being removed in the
    /// background (or were left by an interrupted removal, which the next apply finishes).
    pub fn trash_pending(&self) -> bool {
        trash::pending(self.dir())
    }
}

/// Audit events for what the engine did; the caller writes them to its sink.
pub mod audit {
    use super::*;

    fn strings<'a>(paths: impl IntoIterator<Item = &'a RelPath>) -> Vec<String> {
        paths.into_iter().map(ToString::to_string).collect()
    }

    pub fn created(tx: &Transaction) -> Event {
        Event::TransactionCreated {
            name: tx.name().to_string(),
            workspace: tx.workspace().to_path_buf(),
        }
    }

    pub fn recorded(set: &ChangeSet) -> Event {
        let s = set.summary();
        Event::TransactionRecorded {
            name: set.name.clone(),
            added: s.added,
            modified: s.modified,
            deleted: s.deleted,
            renamed: s.renamed,
            bytes: s.bytes,
            refused: strings(set.refused().map(|c| &c.path)),
        }
    }

    pub fn applied(report: &ApplyReport, recovered: bool) -> Event {
        Event::TransactionApplied {
            name: report.name.clone(),
            applied: strings(&report.applied),
            conflicts: strings(report.conflicts.iter().map(|c| &c.path)),
            refused: strings(report.refused.iter().map(|r| &r.path)),
            failed: strings(report.failed.iter().map(|r| &r.path)),
            recovered,
        }
    }

    /// The event for what opening a transaction finished, if anything was applied.
    pub fn recovery(recovery: &Recovery) -> Option<Event> {
        match recovery {
            Recovery::Finished { report } => Some(applied(report, true)),
            Recovery::RolledBack => None,
        }
    }

    pub fn discarded(name: &str) -> Event {
        Event::TransactionDiscarded {
            name: name.to_string(),
        }
    }
}
