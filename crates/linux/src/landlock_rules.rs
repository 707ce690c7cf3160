//! The Landlock layer: an independent second wall that mirrors the write boundary and the
//! deny-read set (and, in the Landlock-only mode, also closes TCP and scopes signals and
//! abstract sockets).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible,
    PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetError, RulesetStatus,
    Scope, ABI,
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

/// Restricts the calling thread (and its future children): reading and executing anywhere
/// but under `read_denied` (see [`read_grants`]), writing only under `writable`, devices
/// usable under /dev.
pub fn restrict(
    writable: &[PathBuf],
    read_denied: &[PathBuf],
    extra: Extra,
) -> Result<RulesetStatus, String> {
    let read = AccessFs::from_read(TARGET_ABI);
    let grants = read_grants(read_denied);
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
        .add_rules(path_beneath_rules(&grants.listing_only, AccessFs::ReadDir))
        .map_err(|e| e.to_string())?
        .add_rules(typed_rules(&grants.whole, read))
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

/// Rules for `paths` whose kind is known from their directory entries: `access` for a
/// folder, its file rights for anything else. (The crate's `path_beneath_rules` asks each
/// path's kind with an `fstat`; a home's worth of entries makes that a syscall too many.)
/// A path gone since it was listed is skipped.
fn typed_rules(
    paths: &[(PathBuf, bool)],
    access: BitFlags<AccessFs>,
) -> impl Iterator<Item = Result<PathBeneath<PathFd>, RulesetError>> + '_ {
    let file = access & AccessFs::from_file(TARGET_ABI);
    paths.iter().filter_map(move |(path, is_dir)| {
        let fd = PathFd::new(path).ok()?;
        Some(Ok(PathBeneath::new(
            fd,
            if *is_dir { access } else { file },
        )))
    })
}

/// Where reading is granted: Landlock only adds access, so a denied path is left out by
/// granting its siblings instead of a common ancestor.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReadGrants {
    /// Every directory above a denied path: its listing only (and, as Landlock goes, the
    /// listing of what is below it; a file's contents need a grant of their own).
    pub listing_only: Vec<PathBuf>,
    /// Every other entry of those directories (and whether it is a folder): all that
    /// reading covers, beneath it.
    pub whole: Vec<(PathBuf, bool)>,
}

/// The read grants that leave `denied` (absolute, canonical where they exist) out. The
/// mount layer hides what was denied when the sandbox was made; this layer also holds when
/// the host creates a denied path during the run (`aws configure` writing `~/.aws`) or
/// replaces one by a rename (`git credential-store` rewriting `~/.git-credentials`), which
/// detaches the mount that covered it: neither is an entry that existed when the grants were
/// made. Entries the host adds later next to a denied path are unreadable inside for the
/// same reason. Links are not granted (their targets are reached by their own paths). A
/// directory that cannot be listed is granted whole: the mount layer still hides what is
/// below it.
pub fn read_grants(denied: &[PathBuf]) -> ReadGrants {
    let denied: BTreeSet<&Path> = denied.iter().map(PathBuf::as_path).collect();
    let above: BTreeSet<&Path> = denied.iter().flat_map(|d| d.ancestors().skip(1)).collect();
    if above.is_empty() {
        return ReadGrants {
            listing_only: Vec::new(),
            whole: vec![(PathBuf::from("/"), true)],
        };
    }
    let mut grants = ReadGrants::default();
    for dir in &above {
        let Ok(entries) = std::fs::read_dir(dir) else {
            grants.whole.push((dir.to_path_buf(), true));
            continue;
        };
        grants.listing_only.push(dir.to_path_buf());
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_symlink()
                || denied.contains(path.as_path())
                || above.contains(path.as_path())
            {
                continue;
            }
            grants.whole.push((path, kind.is_dir()));
        }
    }
    grants
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_paths_are_left_out_by_granting_their_siblings() {
        let root = std::env::temp_dir().join(format!("cordon-grants-{}", std::process::id()));
        let home = root.join("home");
        for d in [
            "home/.ssh",
            "home/.config/gh",
            "home/.config/nvim",
            "home/src",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(home.join(".bashrc"), "").unwrap();
        std::os::unix::fs::symlink(home.join(".ssh"), home.join("keys")).unwrap();
        let denied = [
            home.join(".ssh"),
            home.join(".config/gh"),
            home.join(".aws"), // absent: still left out, so one created later is too
        ];
        let g = read_grants(&denied);
        let whole = |p: &Path| g.whole.iter().find(|(w, _)| w == p).map(|(_, dir)| *dir);
        for dir in [&home, &home.join(".config"), &root] {
            assert!(g.listing_only.contains(dir), "{}", dir.display());
            assert_eq!(whole(dir), None, "{}", dir.display());
        }
        assert_eq!(
            whole(&home.join(".bashrc")),
            Some(false),
            "a file, granted as one"
        );
        assert_eq!(whole(&home.join("src")), Some(true));
        assert_eq!(whole(&home.join(".config/nvim")), Some(true));
        for left_out in [&denied[0], &denied[1], &home.join("keys")] {
            assert_eq!(whole(left_out), None, "{}", left_out.display());
            assert!(!g.listing_only.contains(left_out), "{}", left_out.display());
        }
        assert!(g.listing_only.contains(&PathBuf::from("/")));
        assert_eq!(read_grants(&[]).whole, [(PathBuf::from("/"), true)]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
