//! Folders and files only cordon's own user may open: the control endpoint, the console's
//! key, the user's approvals.
//!
//! On Unix the modes say so (0700, 0600). On Windows the files live in the user's profile
//! (`%LOCALAPPDATA%`, `%APPDATA%`), whose inherited ACL already admits only the user, SYSTEM
//! and the administrators; a sandbox account is none of them (docs/windows.md).

use std::fs;
use std::io;
use std::path::Path;

/// Creates `dir` and its parents, private to this user where they are new.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes an existing `dir` private to this user (on Unix: looser rights would let another
/// user plant or read files there).
pub fn restrict_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    let _ = dir;
    Ok(())
}

/// Creates (or truncates) `path` for writing, private to this user.
pub fn create_file(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
