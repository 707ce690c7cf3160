//! The Landlock layer: an independent second wall that mirrors the write boundary (and, in
//! the Landlock-only mode, also closes TCP and scopes signals and abstract sockets).

use std::path::{Path, PathBuf};

use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

/// The newest ABI this code knows how to use; older kernels get what they support.
const TARGET_ABI: ABI = ABI::V6;

/// What to restrict beyond the filesystem.
pub struct Extra {
    /// Refuse every TCP bind and connect (Landlock-only mode with the network off).
    pub deny_tcp: bool,
    /// Refuse signals to, and abstract-socket connections with, processes outside the domain.
    pub scope: bool,
}

/// Restricts the calling thread (and its future children): reading and executing anywhere,
/// writing only under `writable`, devices usable under /dev.
pub fn restrict(writable: &[PathBuf], extra: Extra) -> Result<RulesetStatus, String> {
    let read = AccessFs::from_read(TARGET_ABI);
    let all = AccessFs::from_all(TARGET_ABI);
    let dev = read | AccessFs::WriteFile | AccessFs::IoctlDev;
    let existing: Vec<&Path> = writable
        .iter()
        .map(|p| p.as_path())
        .filter(|p| p.exists())
        .collect();
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)
        .map_err(|e| e.to_string())?;
    if extra.deny_tcp {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(TARGET_ABI))
            .map_err(|e| e.to_string())?;
    }
    if extra.scope {
        ruleset = ruleset
            .scope(Scope::AbstractUnixSocket | Scope::Signal)
            .map_err(|e| e.to_string())?;
    }
    let status = ruleset
        .create()
        .map_err(|e| e.to_string())?
        .add_rules(path_beneath_rules(["/"], read))
        .map_err(|e| e.to_string())?
        .add_rules(path_beneath_rules(["/dev"], dev))
        .map_err(|e| e.to_string())?
        .add_rules(path_beneath_rules(existing, all))
        .map_err(|e| e.to_string())?
        // Denials by the command (it runs after an exec) reach the kernel's audit log where
        // audit is on (Landlock ABI 7+); older kernels ignore the request (best effort).
        .log_new_exec(true)
        .map_err(|e| e.to_string())?
        .restrict_self()
        .map_err(|e| e.to_string())?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err("the kernel does not enforce Landlock".into());
    }
    Ok(status.ruleset)
}
