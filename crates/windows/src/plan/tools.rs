//! Which of the developer's program folders the sandbox account may read (elevated mode).
//!
//! A profile's DACL admits only its owner, so a toolchain installed in it (`~\.cargo\bin`,
//! `~\scoop\shims`, `%APPDATA%\npm`) does not run as `CordonSandboxOffline`. The plan grants
//! the sandbox group read and execute on the folder a PATH entry belongs to, which is what
//! Linux's sandbox may read anyway (everything but the secrets). PATH is the caller's, so
//! the agent may choose it: what a PATH entry can open is bounded here, not by trust in it,
//! and the profile it must lie in is the token's, not `%USERPROFILE%`.
//! Never a profile itself or a folder above one, and under `AppData` (browser profiles,
//! credential stores, DPAPI keys, tokens of CLIs, none of them in the default deny list,
//! since the profile's DACL is what keeps them) only the few places programs are installed.

use crate::winpath::WinPath;

use super::fs::{join_fixed, Host, Kind};
use super::push_unique;

/// Where programs, not data, live under `AppData`: the names below it, and how many more
/// names below those make the folder granted (`Local\Programs\Python`: the one program).
const APPDATA_PROGRAM_FOLDERS: &[(&[&str], usize)] = &[
    (&["Local", "Programs"], 1),
    (&["Roaming", "npm"], 0),
    (&["Local", "Microsoft", "WindowsApps"], 0),
];

/// Most program folders one plan grants; PATH names far fewer in practice.
pub const MAX_TOOL_ROOTS: usize = 64;

/// The folders to grant read on, and a note for each folder turned down, from the folders
/// the command may run programs from (`dirs`: PATH's entries, `RUSTUP_HOME`, `CARGO_HOME`).
/// Only folders inside `profile` (the account's own, from its token) are considered: others
/// are the machine's, readable to its users already, or another user's, which no PATH may
/// open; so are those inside `granted` (the writable roots). Absent folders are skipped
/// silently (a PATH commonly names a few).
pub fn tool_roots(
    dirs: &[WinPath],
    profile: &WinPath,
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
        if profile.starts_with(&dir) {
            notes.push(format!(
                "program folder {dir} holds your profile {profile}: not opened to the sandbox account (put a narrower folder on PATH)"
            ));
            continue;
        }
        let Some(below) = dir.strip_prefix(profile) else {
            continue;
        };
        let Some(root) = root_of(&dir, profile, below) else {
            notes.push(format!(
                "program folder {dir} is in AppData, which holds credential stores: not opened to the sandbox account (only AppData\\Local\\Programs, AppData\\Roaming\\npm and WindowsApps are)"
            ));
            continue;
        };
        // Belt and braces: a profile inside the profile (a roaming copy, a junction) is not a
        // "first folder".
        if is_profile(host, &root) {
            notes.push(format!(
                "program folder {dir}: {root} is a user profile: not opened to the sandbox account"
            ));
            continue;
        }
        push_unique(&mut roots, root.clone());
        // rustup's proxies in `.cargo\bin` run the toolchains kept beside it.
        if root
            .file_name()
            .is_some_and(|n| n.eq_ignore_ascii_case(".cargo"))
        {
            let rustup = join_fixed(profile, ".rustup");
            if host.kind(&rustup) == Kind::Dir {
                push_unique(&mut roots, rustup);
            }
        }
    }
    // A root inside another is covered by the other's inherited grant.
    let all = roots.clone();
    roots.retain(|r| !all.iter().any(|o| o != r && r.starts_with(o)));
    if roots.len() > MAX_TOOL_ROOTS {
        notes.push(format!(
            "PATH names {} program folders in your profile; only the first {MAX_TOOL_ROOTS} are opened to the sandbox account",
            roots.len()
        ));
        roots.truncate(MAX_TOOL_ROOTS);
    }
    (roots, notes)
}

/// The folder program folder `dir` (`below` its home) belongs to: the first folder below
/// the home (`~\.cargo` for `~\.cargo\bin`, `~\scoop` for `~\scoop\shims`), or, when an
/// `AppData` is anywhere on its path (the home's, or a home set inside one), one of
/// [`APPDATA_PROGRAM_FOLDERS`]; `None` for anything else there.
fn root_of(dir: &WinPath, home: &WinPath, below: &[String]) -> Option<WinPath> {
    let parts = dir.parts();
    let Some(at) = parts.iter().position(|n| n.eq_ignore_ascii_case("AppData")) else {
        return below.first().map(|first| join_fixed(home, first));
    };
    let rest = &parts[at + 1..];
    let keep = APPDATA_PROGRAM_FOLDERS.iter().find_map(|(names, more)| {
        let fits = rest.len() >= names.len() + more
            && names
                .iter()
                .zip(rest)
                .all(|(a, b)| a.eq_ignore_ascii_case(b));
        fits.then_some(at + 1 + names.len() + more)
    })?;
    let mut root = dir.clone();
    while root.parts().len() > keep {
        root = root.parent()?;
    }
    Some(root)
}

/// Whether `folder` is a user profile (it has `AppData` or a registry hive in it).
fn is_profile(host: &dyn Host, folder: &WinPath) -> bool {
    host.kind(&join_fixed(folder, "AppData")) == Kind::Dir
        || host.kind(&join_fixed(folder, "NTUSER.DAT")) != Kind::Missing
}
