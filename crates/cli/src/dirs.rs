//! Where cordon keeps things for this user (XDG), the caller's home directories, and its
//! current directory.

use std::env;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The current directory, or cordon's failure naming why there is none.
pub fn current_dir() -> Result<PathBuf, crate::failure::Failure> {
    env::current_dir()
        .map_err(|e| crate::failure::Failure::setup(format!("current directory: {e}")))
}

/// The workspace `-w` names (relative to `cwd`), or `cwd`, canonicalised.
pub fn workspace(
    arg: Option<&std::path::Path>,
    cwd: &std::path::Path,
) -> Result<PathBuf, crate::failure::Failure> {
    let ws = arg.map_or(cwd.to_path_buf(), |w| cwd.join(w));
    ws.canonicalize()
        .map_err(|e| crate::failure::Failure::setup(format!("workspace {}: {e}", ws.display())))
}

/// The caller's home directories: $HOME and the account's home when they differ, so a
/// changed $HOME does not move the deny-read set away from the real secrets. Looked up once
/// per process (the account lookup may go through NSS).
#[cfg(unix)]
pub fn homes() -> &'static [PathBuf] {
    static HOMES: OnceLock<Vec<PathBuf>> = OnceLock::new();
    HOMES.get_or_init(|| {
        let mut out = Vec::new();
        if let Some(h) = env::var_os("HOME").filter(|h| !h.is_empty()) {
            out.push(PathBuf::from(h));
        }
        let uid = nix::unistd::getuid().as_raw();
        let account = passwd_home(uid).or_else(|| {
            nix::unistd::User::from_uid(uid.into())
                .ok()
                .flatten()
                .map(|u| u.dir)
        });
        if let Some(dir) = account.filter(|d| !out.contains(d)) {
            out.push(dir);
        }
        out
    })
}

/// The caller's profile folder (`%USERPROFILE%`), where Windows keeps the secrets the
/// deny-read set names, and the account's own profile from its token when they differ:
/// whoever starts cordon may set `%USERPROFILE%`, and the real one's secrets must stay
/// denied all the same.
#[cfg(windows)]
pub fn homes() -> &'static [PathBuf] {
    static HOMES: OnceLock<Vec<PathBuf>> = OnceLock::new();
    HOMES.get_or_init(|| {
        let mut out: Vec<PathBuf> = env::var_os("USERPROFILE")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .into_iter()
            .collect();
        if let Ok(real) = cordon_windows::exec::token::profile_dir() {
            let same = |h: &PathBuf| h.as_os_str().eq_ignore_ascii_case(real.as_os_str());
            if !out.iter().any(same) {
                out.push(real);
            }
        }
        out
    })
}

/// The home of `uid` from /etc/passwd, read directly: asking NSS first costs a socket
/// round-trip to nscd and a parse of nsswitch.conf on every start. Accounts that only exist
/// in a directory service fall through to NSS.
#[cfg(unix)]
fn passwd_home(uid: u32) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let text = std::fs::read("/etc/passwd").ok()?;
    text.split(|b| *b == b'\n').find_map(|line| {
        let fields: Vec<&[u8]> = line.split(|b| *b == b':').collect();
        let id: u32 = std::str::from_utf8(fields.get(2)?).ok()?.parse().ok()?;
        let dir = fields.get(5).filter(|d| !d.is_empty())?;
        (id == uid).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(dir)))
    })
}

/// An absolute folder from `var`, else `fallback` below the first home.
#[cfg(unix)]
fn xdg(var: &str, fallback: &str) -> Option<PathBuf> {
    match env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
    {
        Some(p) if p.is_absolute() => Some(p),
        _ => homes().first().map(|h| h.join(fallback)),
    }
}

/// `$XDG_STATE_HOME/cordon`: approvals and the default audit log. Hidden inside sandboxes.
#[cfg(unix)]
pub fn state_dir() -> Option<PathBuf> {
    xdg("XDG_STATE_HOME", ".local/state").map(|p| p.join("cordon"))
}

/// `$XDG_CONFIG_HOME/cordon/config.toml`: the user's own policy layer.
#[cfg(unix)]
pub fn user_config() -> Option<PathBuf> {
    xdg("XDG_CONFIG_HOME", ".config").map(|p| p.join("cordon/config.toml"))
}

/// An absolute folder from the environment variable `var` (`%LOCALAPPDATA%`, `%APPDATA%`).
#[cfg(windows)]
fn known_folder(var: &str) -> Option<PathBuf> {
    env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// `%LOCALAPPDATA%\cordon\state`: the default audit log and the sandbox accounts' secrets.
/// Denied to every sandboxed command.
#[cfg(windows)]
pub fn state_dir() -> Option<PathBuf> {
    known_folder("LOCALAPPDATA").map(|p| p.join("cordon").join("state"))
}

/// `%APPDATA%\cordon\config.toml`: the user's own policy layer.
#[cfg(windows)]
pub fn user_config() -> Option<PathBuf> {
    known_folder("APPDATA").map(|p| p.join("cordon").join("config.toml"))
}
