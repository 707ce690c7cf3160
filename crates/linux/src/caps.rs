//! Leaving no capability behind: bounding, ambient, effective, permitted and inheritable sets
//! all end empty, and securebits keep a uid-0 caller from regaining any at exec.

use std::io;

use crate::sys;

const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;
const SECBIT_NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
const SECBIT_KEEP_CAPS_LOCKED: libc::c_ulong = 1 << 5;
const SECBIT_NO_CAP_AMBIENT_RAISE: libc::c_ulong = 1 << 6;
const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: libc::c_ulong = 1 << 7;

/// Drops every capability for good. Needs CAP_SETPCAP (held in our user namespace) for the
/// bounding set and securebits, so the effective set is cleared last.
pub fn drop_all() -> io::Result<()> {
    for cap in 0..=63 {
        match sys::prctl(libc::PR_CAPBSET_DROP, cap) {
            Ok(_) => {}
            // Past the kernel's last capability.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => return Err(e),
        }
    }
    sys::clear_ambient_caps()?;
    let bits = SECBIT_NOROOT
        | SECBIT_NOROOT_LOCKED
        | SECBIT_NO_SETUID_FIXUP
        | SECBIT_NO_SETUID_FIXUP_LOCKED
        | SECBIT_KEEP_CAPS_LOCKED
        | SECBIT_NO_CAP_AMBIENT_RAISE
        | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    sys::prctl(libc::PR_SET_SECUREBITS, bits)?;
    sys::clear_caps()
}

/// Sets no_new_privs: exec can never grant privileges again (setuid bits, file capabilities).
pub fn set_no_new_privs() -> io::Result<()> {
    sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map(drop)
}
