//! `cordon run --transaction`: opens the named transaction, hands its overlay directories to
//! the sandbox, and after the command records what changed, prints the summary, and with
//! `--apply auto` applies it when nothing is refused and nothing conflicts.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cordon_audit::Event;
use cordon_transaction::audit as tx_audit;
use cordon_transaction::{Protection, Store, Transaction};

use crate::args::ApplyArg;
use crate::failure::Failure;

/// An open transaction for one run (its lock held until dropped).
pub struct Running {
    tx: Arc<Mutex<Transaction>>,
    protection: Arc<Protection>,
    apply: ApplyArg,
}

/// The diff of a running transaction, for a human deciding a request while the command runs.
#[derive(Clone)]
pub struct DiffSource {
    tx: Arc<Mutex<Transaction>>,
    protection: Arc<Protection>,
}

/// How much diff a request carries; the rest is one `cordon tx diff` away.
const DIFF_LIMIT: usize = 64 << 10;

impl DiffSource {
    /// The unified diff so far (bounded), or None when nothing changed or it cannot be read.
    pub fn text(&self) -> Option<String> {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let set = tx.changes(&self.protection).ok()?;
        let diff = tx.diff(&set).ok()?;
        if diff.files.is_empty() {
            return None;
        }
        let mut text = diff.render();
        if text.len() > DIFF_LIMIT {
            let mut cut = DIFF_LIMIT;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let rest = text.len() - cut;
            text.truncate(cut);
            text.push_str(&format!(
                "\n… {rest} more bytes: `cordon tx diff {}`\n",
                tx.name()
            ));
        }
        Some(text)
    }
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
            tx: Arc::new(Mutex::new(tx)),
            protection: Arc::new(protection),
            apply,
        },
        overlay,
    ))
}

impl Running {
    /// What a request shows of this transaction while the command runs.
    pub fn diff_source(&self) -> DiffSource {
        DiffSource {
            tx: self.tx.clone(),
            protection: self.protection.clone(),
        }
    }

    /// After the command: records base hashes of what it changed, prints the summary, applies
    /// with `--apply auto` when it may. Returns 0, or 125 when the transaction could not be
    /// read (the changes stay where they are; nothing is lost).
    pub fn end(self, events: &mut dyn FnMut(Event)) -> i32 {
        let auto = self.apply == ApplyArg::Auto;
        let mut tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        match crate::tx::finish_run(
            &mut tx,
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
