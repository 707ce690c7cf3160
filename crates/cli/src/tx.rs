//! The bodies of `cordon tx list|diff|apply|discard` and the summary line printed after a
//! command in a transaction; they use only cordon-transaction and std, and return exit codes.

use std::io::Write;
use std::path::{Path, PathBuf};

use cordon_transaction::audit as tx_audit;
use cordon_transaction::{ApplyReport, ChangeSet, Protection, RelPath, Store, Transaction};

/// Audit events go to the caller's sink (`cordon_audit::Sink::write` of a `Record`).
pub type Audit<'a> = &'a mut dyn FnMut(cordon_audit::Event);

/// Exit status when everything asked for was done.
pub const OK: i32 = 0;
/// Exit status when some changes stayed in the transaction (conflicts, refusals, failures).
pub const PARTIAL: i32 = 1;
/// Exit status when cordon could not do what was asked (DESIGN.md: cordon's own failure).
pub const FAILED: i32 = 125;

fn fail(err: &mut dyn Write, what: &str, e: &dyn std::fmt::Display) -> i32 {
    let _ = writeln!(err, "cordon: {what}: {e}");
    FAILED
}

/// Opens a transaction for a `tx` subcommand, reporting (and auditing) a finished recovery.
fn open(
    state_dir: &Path,
    name: &str,
    audit: Audit,
    err: &mut dyn Write,
) -> Result<Transaction, i32> {
    let tx = Store::new(state_dir)
        .open(name)
        .map_err(|e| fail(err, "transaction", &e))?;
    if let Some(r) = tx.recovered() {
        let _ = writeln!(err, "cordon: {}", recovery_line(name, r));
        if let Some(event) = tx_audit::recovery(r) {
            audit(event);
        }
    }
    Ok(tx)
}

fn recovery_line(name: &str, r: &cordon_transaction::Recovery) -> String {
    match r {
        cordon_transaction::Recovery::Finished { report } => format!(
            "transaction {name}: finished an interrupted apply ({} paths applied)",
            report.applied.len()
        ),
        cordon_transaction::Recovery::RolledBack => format!(
            "transaction {name}: an apply was interrupted before it changed anything; rolled back"
        ),
    }
}

/// `cordon tx list [--json]`.
pub fn list(
    state_dir: &Path,
    json: bool,
    audit: Audit,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let listing = match Store::new(state_dir).list() {
        Ok(l) => l,
        Err(e) => return fail(err, "transactions", &e),
    };
    for l in &listing {
        if let Some(r) = &l.recovered {
            let _ = writeln!(err, "cordon: {}", recovery_line(&l.name, r));
            if let Some(event) = tx_audit::recovery(r) {
                audit(event);
            }
        }
    }
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&listing).unwrap_or_default()
        );
        return OK;
    }
    if listing.is_empty() {
        let _ = writeln!(out, "no transactions");
    }
    for l in &listing {
        let mut line = l.name.clone();
        if let Some(m) = &l.meta {
            line.push_str(&format!(
                "  {}  created {}  {} command(s)",
                m.workspace.display(),
                m.created,
                m.commands
            ));
        }
        if l.busy {
            line.push_str("  [in use]");
        }
        if let Some(e) = &l.error {
            line.push_str(&format!("  [unreadable: {e}]"));
        }
        let _ = writeln!(out, "{line}");
    }
    OK
}

/// `cordon tx diff NAME [--json]`.
pub fn diff(
    state_dir: &Path,
    name: &str,
    protection: &Protection,
    json: bool,
    audit: Audit,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let tx = match open(state_dir, name, audit, err) {
        Ok(tx) => tx,
        Err(code) => return code,
    };
    let diff = match tx.changes(protection).and_then(|set| tx.diff(&set)) {
        Ok(d) => d,
        Err(e) => return fail(err, "diff", &e),
    };
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&diff).unwrap_or_default()
        );
    } else {
        let _ = out.write_all(diff.render().as_bytes());
    }
    OK
}

/// Turns `PATH...` arguments (relative to the workspace, or absolute inside it) into paths.
pub fn selection(workspace: &Path, paths: &[PathBuf]) -> Result<Vec<RelPath>, String> {
    paths
        .iter()
        .map(|p| {
            let rel = if p.is_absolute() {
                p.strip_prefix(workspace)
                    .map_err(|_| {
                        format!(
                            "{} is outside the workspace {}",
                            p.display(),
                            workspace.display()
                        )
                    })?
                    .to_path_buf()
            } else {
                p.clone()
            };
            RelPath::new(rel).map_err(|e| e.to_string())
        })
        .collect()
}

/// Prints what an apply did; returns the exit status it deserves.
pub fn print_report(report: &ApplyReport, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let _ = writeln!(
        out,
        "transaction {}: {} path(s) applied",
        report.name,
        report.applied.len()
    );
    for c in &report.conflicts {
        let kept = c
            .kept_as
            .as_ref()
            .map(|k| format!("; the transaction's version is in {k}"))
            .unwrap_or_default();
        let _ = writeln!(
            err,
            "cordon: conflict, not applied: {}: {}{kept}",
            c.path, c.reason
        );
    }
    for r in &report.refused {
        let _ = writeln!(
            err,
            "cordon: refused by the sandbox's policy, not applied: {}: {}",
            r.path, r.reason
        );
    }
    for r in &report.failed {
        let _ = writeln!(err, "cordon: failed, not applied: {}: {}", r.path, r.reason);
    }
    for p in &report.unmatched {
        let _ = writeln!(err, "cordon: no change in the transaction at {p}");
    }
    if report.emptied {
        let _ = writeln!(
            out,
            "transaction {} is now empty; `cordon tx discard {}` removes it",
            report.name, report.name
        );
    }
    if report.conflicts.is_empty()
        && report.refused.is_empty()
        && report.failed.is_empty()
        && report.unmatched.is_empty()
    {
        OK
    } else {
        PARTIAL
    }
}

/// `cordon tx apply NAME [PATH...]`.
pub fn apply(
    state_dir: &Path,
    name: &str,
    paths: &[PathBuf],
    protection: &Protection,
    audit: Audit,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut tx = match open(state_dir, name, audit, err) {
        Ok(tx) => tx,
        Err(code) => return code,
    };
    let selected = match selection(tx.workspace(), paths) {
        Ok(s) => s,
        Err(e) => return fail(err, "apply", &e),
    };
    match tx.apply(protection, &selected) {
        Ok(report) => {
            audit(tx_audit::applied(&report, false));
            print_report(&report, out, err)
        }
        Err(e) => fail(err, "apply", &e),
    }
}

/// `cordon tx discard NAME`.
pub fn discard(
    state_dir: &Path,
    name: &str,
    audit: Audit,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let tx = match open(state_dir, name, audit, err) {
        Ok(tx) => tx,
        Err(code) => return code,
    };
    match tx.discard() {
        Ok(()) => {
            audit(tx_audit::discarded(name));
            let _ = writeln!(
                out,
                "transaction {name} discarded; the workspace was not changed"
            );
            OK
        }
        Err(e) => fail(err, "discard", &e),
    }
}

/// The lines printed on stderr when a command in a transaction ends.
pub fn summary(set: &ChangeSet) -> String {
    let mut text = format!("cordon: transaction {}: {}", set.name, set.summary());
    for c in set.refused() {
        text.push_str(&format!(
            "\ncordon: refused by the sandbox's policy, will not be applied: {}",
            c.path
        ));
    }
    text.push_str(&format!(
        "\ncordon: review with `cordon tx diff {n}`, then `cordon tx apply {n}` or `cordon tx discard {n}`",
        n = set.name
    ));
    text
}

/// What `cordon run --transaction` does when the command has ended and the overlay is
/// unmounted: record the bases, print the summary, audit it, and with `--apply auto` apply
/// when nothing protected is touched and nothing conflicts. Returns false when cordon could
/// not record the transaction (the caller exits 125; the command's writes stay in the layer).
pub fn finish_run(
    tx: &mut Transaction,
    protection: &Protection,
    apply_auto: bool,
    audit: Audit,
    err: &mut dyn Write,
) -> bool {
    let set = match tx.record_bases(protection) {
        Ok(set) => set,
        Err(e) => {
            fail(err, "transaction", &e);
            return false;
        }
    };
    audit(tx_audit::recorded(&set));
    if set.is_empty() {
        let _ = writeln!(err, "cordon: transaction {}: no changes", set.name);
        return true;
    }
    if !apply_auto {
        let _ = writeln!(err, "{}", summary(&set));
        return true;
    }
    if !set.can_auto_apply() {
        let _ = writeln!(err, "{}", summary(&set));
        let _ = writeln!(
            err,
            "cordon: --apply auto: not applied, since {} change(s) touch protected paths and {} conflict",
            set.refused().count(),
            set.conflicts().count()
        );
        return true;
    }
    match tx.apply(protection, &[]) {
        Ok(report) => {
            audit(tx_audit::applied(&report, false));
            let _ = writeln!(
                err,
                "cordon: transaction {}: {}; applied (--apply auto)",
                set.name,
                set.summary()
            );
            // Only the problems matter here; the applied line went out above.
            print_report(&report, &mut Vec::new(), err);
            true
        }
        Err(e) => {
            fail(err, "apply", &e);
            false
        }
    }
}
