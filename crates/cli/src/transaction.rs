//! `cordon run --transaction`: opens the named transaction, hands its overlay directories to
//! the sandbox, and after the command records what changed, prints the summary, and with
//! `--apply auto` applies it when nothing is refused and nothing conflicts.

use std::path::{Path, PathBuf};

use cordon_audit::Event;
use cordon_transaction::audit as tx_audit;
use cordon_transaction::{Protection, Store, Transaction};

use crate::args::ApplyArg;
use crate::failure::Failure;

/// An open transaction for one run (its lock held until dropped).
pub struct Running {
    tx: Transaction,
    protection: Protection,
    apply: ApplyArg,
}

/// Opens (or creates) the transaction before the sandbox is made; `events` gets the audit
/// events (created, a finished recovery).
pub fn begin(
    name: Option<&str>,
    workspace: &Path,
    protected: &[PathBuf],
    apply: ApplyArg,
    events: &mut dyn FnMut(Event),
) -> Result<(Running, cordon_linux::Overlay), Failure> {
    let state = crate::dirs::state_dir().ok_or_else(|| {
        Failure::setup("--transaction needs cordon's state folder: set HOME or XDG_STATE_HOME")
    })?;
    let (tx, created) = Store::new(&state)
        .open_or_create(name, workspace)
        .map_err(|e| Failure::setup(format!("transaction: {e}")))?;
    if created {
        events(tx_audit::created(&tx));
        eprintln!(
            "cordon: transaction {}: the command's writes to {} are kept apart until you apply them",
            tx.name(),
            workspace.display()
        );
    }
    if let Some(event) = tx.recovered().and_then(tx_audit::recovery) {
        events(event);
    }
    let overlay = cordon_linux::Overlay {
        upper: tx.upper(),
        work: tx.work(),
    };
    let protection = Protection::new(workspace, protected.to_vec(), [workspace.join(".git")]);
    Ok((
        Running {
            tx,
            protection,
            apply,
        },
        overlay,
    ))
}

impl Running {
    /// After the command: records base hashes of what it changed, prints the summary, applies
    /// with `--apply auto` when it may. Returns 0, or 125 when the transaction could not be
    /// read (the changes stay where they are; nothing is lost).
    pub fn end(mut self, events: &mut dyn FnMut(Event)) -> i32 {
        let auto = self.apply == ApplyArg::Auto;
        match crate::tx::finish_run(
            &mut self.tx,
            &self.protection,
            auto,
            events,
            &mut std::io::stderr(),
        ) {
            true => 0,
            false => crate::failure::EXIT_SETUP,
        }
    }
}
