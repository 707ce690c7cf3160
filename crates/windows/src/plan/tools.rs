//! Which of the developer's program folders the sandbox account may read (elevated mode).
//!
//! A profile's DACL admits only its owner, so a toolchain installed in it (`~\.cargo\bin`,
//! `~\scoop\shims`, `%APPDATA%\npm`) does not run as `CordonSandboxOffline`. The plan grants
//! the sandbox group read and execute on the folder a PATH entry belongs to, which is what
//! Linux's sandbox may read anyway (everything but the secrets). Never a home itself, nor
//! `AppData` or one of its three roots: those hold the browser profiles, credential stores
//! and DPAPI keys, and the secrets' own deny ACEs (explicit, so they outrank an inherited
//! grant) would be the only thing between them and the command.

use crate::winpath::WinPath;

use super::fs::{join_fixed, Host, Kind};
use super::push_unique;

/// The folders to grant read on, and a note for each folder turned down, from the folders
/// the command may run programs from (`dirs`: PATH's entries, the program's own folder,
/// `RUSTUP_HOME`, `CARGO_HOME`). Only folders inside a home are considered: others are the
/// machine's, readable to its users already; so are those inside `granted` (the writable
/// roots). Absent folders are skipped silently (a PATH commonly names a few).
pub fn tool_roots(
    dirs: &[WinPath],
    homes: &[WinPath],
    granted: &[WinPath],
    host: &dyn Host,
) -> (Vec<WinPath>, Vec<String>) {
    let mut roots: Vec<WinPath> = Vec::new();
    let mut notes = Vec::new();
    for dir in dirs {
        let Some(dir) = host.final_path(dir) else {
            continue;
        };
        if host.kind(&dir) != Kind::Dir || granted.iter().any(|g| dir.starts_with(g)) {
            continue;
        }
        if let Some(h) = homes.iter().find(|h| h.starts_with(&dir)) {
            notes.push(format!(
                "program folder {dir} holds your home folder {h}: not opened to the sandbox account (put a narrower folder on PATH)"
            ));
            continue;
        }
        let Some((home, below)) = homes
            .iter()
            .find_map(|h| dir.strip_prefix(h).map(|rest| (h, rest)))
        else {
            continue;
        };
        let Some(root) = root_of(&dir, home, below) else {
            notes.push(format!(
                "program folder {dir} is one of AppData's roots, which hold credential stores: not opened to the sandbox account"
            ));
            continue;
        };
        push_unique(&mut roots, root.clone());
        // rustup's proxies in `.cargo\bin` run the toolchains kept beside it.
        if root
            .file_name()
            .is_some_and(|n| n.eq_ignore_ascii_case(".cargo"))
        {
            let rustup = join_fixed(home, ".rustup");
            if host.kind(&rustup) == Kind::Dir {
                push_unique(&mut roots, rustup);
            }
        }
    }
    // A root inside another is covered by the other's inherited grant.
    let all = roots.clone();
    roots.retain(|r| !all.iter().any(|o| o != r && r.starts_with(o)));
    (roots, notes)
}

/// The folder a program folder belongs to: the first folder below the home
/// (`~\.cargo` for `~\.cargo\bin`, `~\scoop` for `~\scoop\shims`), or under `AppData` the
/// program folder itself (`AppData\Local\Microsoft` holds credentials next to WindowsApps).
/// `None` for `AppData` and its roots.
fn root_of(dir: &WinPath, home: &WinPath, below: &[String]) -> Option<WinPath> {
    let first = below.first()?;
    if !first.eq_ignore_ascii_case("AppData") {
        return Some(join_fixed(home, first));
    }
    (below.len() > 2).then(|| dir.clone())
}
