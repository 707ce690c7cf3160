//! File DACLs: read with GetNamedSecurityInfoW, rewritten with SetNamedSecurityInfoW.
//!
//! The new DACL is built here, ACE by ACE, in canonical order (explicit denies, then explicit
//! allows), rather than with SetEntriesInAclW: that call merges a GRANT with the trustee's
//! existing deny ACEs (a workspace grant would shave DELETE off the root's own deny), and
//! cordon needs both on one path. Inherited ACEs are left to the system, which recomputes
//! them from the parent when the DACL is set.

use std::io;
use std::ptr::null_mut;

use windows_sys::Win32::Foundation::{LocalFree, ERROR_SUCCESS};
use windows_sys::Win32::Security::Authorization::{
    GetNamedSecurityInfoW, SetNamedSecurityInfoW, SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::{
    AddAccessAllowedAceEx, AddAccessDeniedAceEx, AddAce, GetAce, GetSecurityDescriptorControl,
    InitializeAcl, ACE_HEADER, ACL, ACL_REVISION, DACL_SECURITY_INFORMATION,
    PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, SE_DACL_PROTECTED,
    UNPROTECTED_DACL_SECURITY_INFORMATION,
};

use super::sid::{self, OwnedSid};
use super::wide;
use crate::plan::acl::{Ace, AceKind, AclEdit, INHERITED_ACE};
use crate::winpath::WinPath;

const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;
const ACCESS_DENIED_ACE_TYPE: u8 = 1;

/// A file's security descriptor with its DACL, as GetNamedSecurityInfoW returned it.
struct Descriptor {
    sd: PSECURITY_DESCRIPTOR,
    dacl: *mut ACL,
}

impl Descriptor {
    fn read(path: &WinPath) -> io::Result<Descriptor> {
        let name = wide(&path.to_api());
        let mut sd: PSECURITY_DESCRIPTOR = null_mut();
        let mut dacl: *mut ACL = null_mut();
        // SAFETY: `name` is NUL-terminated and outlives the call; the out pointers are valid
        // places for one pointer each; owner, group and SACL are not asked for.
        let err = unsafe {
            GetNamedSecurityInfoW(
                name.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION,
                null_mut(),
                null_mut(),
                &mut dacl,
                null_mut(),
                &mut sd,
            )
        };
        if err != ERROR_SUCCESS {
            return Err(io::Error::from_raw_os_error(err as i32));
        }
        Ok(Descriptor { sd, dacl })
    }

    fn is_protected(&self) -> bool {
        let mut control = 0u16;
        let mut revision = 0u32;
        // SAFETY: self.sd is the descriptor GetNamedSecurityInfoW allocated, still alive.
        let ok = unsafe { GetSecurityDescriptorControl(self.sd, &mut control, &mut revision) };
        ok != 0 && control & SE_DACL_PROTECTED != 0
    }

    fn aces(&self) -> Vec<Ace> {
        // SAFETY: self.dacl is null or the DACL inside self.sd, which is alive.
        unsafe { entries_of(self.dacl) }
            .into_iter()
            .filter_map(|(_, _, a)| a)
            .collect()
    }
}

/// Each ACE of `dacl` with its plain-data form when it is an allow or deny ACE (other types
/// are kept untouched on a rewrite; cordon writes none). A NULL DACL has none.
///
/// # Safety
/// `dacl` must be null or point at a valid ACL that outlives the returned pointers.
unsafe fn entries_of(dacl: *const ACL) -> Vec<(*const ACE_HEADER, u16, Option<Ace>)> {
    let mut out = Vec::new();
    if dacl.is_null() {
        return out;
    }
    // SAFETY: the caller promises a valid ACL.
    let count = unsafe { (*dacl).AceCount };
    for i in 0..u32::from(count) {
        let mut raw: *mut core::ffi::c_void = null_mut();
        // SAFETY: i < AceCount of a valid ACL; GetAce writes a pointer into that ACL.
        if unsafe { GetAce(dacl, i, &mut raw) } == 0 {
            continue;
        }
        let header = raw.cast::<ACE_HEADER>().cast_const();
        // SAFETY: GetAce returned a pointer to a valid ACE, which starts with its header.
        let (ty, flags, size) =
            unsafe { ((*header).AceType, (*header).AceFlags, (*header).AceSize) };
        let kind = match ty {
            ACCESS_ALLOWED_ACE_TYPE => Some(AceKind::Allow),
            ACCESS_DENIED_ACE_TYPE => Some(AceKind::Deny),
            _ => None,
        };
        let ace = kind.and_then(|kind| {
            // Allowed and denied ACEs share one layout: header, mask, then the SID.
            let body = header.cast::<u8>();
            // SAFETY: for these two ACE types the mask follows the 4-byte header and the
            // SID follows the mask, all within AceSize bytes of the ACE.
            let mask = unsafe { body.add(4).cast::<u32>().read_unaligned() };
            // SAFETY: as above; the SID at offset 8 is valid while the ACL lives.
            let sid = unsafe { sid::read(body.add(8).cast_mut().cast()) }.ok()?;
            Some(Ace {
                kind,
                sid,
                mask,
                flags,
            })
        });
        out.push((header, size, ace));
    }
    out
}

/// The allow and deny ACEs of any DACL (a kernel object's, for `shield`).
///
/// # Safety
/// `dacl` must be null or point at a valid ACL for the duration of the call.
pub(super) unsafe fn aces_of(dacl: *const ACL) -> Vec<Ace> {
    // SAFETY: the caller's promise, passed on.
    unsafe { entries_of(dacl) }
        .into_iter()
        .filter_map(|(_, _, a)| a)
        .collect()
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: self.sd came from GetNamedSecurityInfoW, released with LocalFree, once.
        unsafe { LocalFree(self.sd) };
    }
}

/// The allow and deny ACEs of `path`'s DACL.
pub fn read_dacl(path: &WinPath) -> io::Result<Vec<Ace>> {
    Ok(Descriptor::read(path)?.aces())
}

/// Like [`read_dacl`], but `None` for a NULL DACL (no protection at all).
pub fn read_dacl_or_null(path: &WinPath) -> io::Result<Option<Vec<Ace>>> {
    let d = Descriptor::read(path)?;
    Ok((!d.dacl.is_null()).then(|| d.aces()))
}

/// A DACL built in memory (DWORD-aligned, as ACLs must be).
pub struct BuiltAcl(Vec<u32>);

impl BuiltAcl {
    pub fn as_ptr(&self) -> *const ACL {
        self.0.as_ptr().cast()
    }

    /// Its allow and deny ACEs, in order.
    pub fn aces(&self) -> Vec<Ace> {
        // SAFETY: self holds a valid ACL made by `build`, alive for the call.
        unsafe { entries_of(self.as_ptr()) }
            .into_iter()
            .filter_map(|(_, _, a)| a)
            .collect()
    }
}

/// The explicit ACEs of `old` plus `add`, minus those equal to one in `remove`, in canonical
/// order: explicit denies (new, then kept), then explicit allows (new, then kept). Inherited
/// ACEs are left out: the system recomputes them from the parent when the DACL is set.
///
/// # Safety
/// `old` must be null or point at a valid ACL for the duration of the call.
pub unsafe fn build(old: *const ACL, add: &[&AclEdit], remove: &[Ace]) -> io::Result<BuiltAcl> {
    let mut keep: Vec<(*const ACE_HEADER, u16, bool)> = Vec::new(); // (ace, size, is deny)
                                                                    // SAFETY: the caller promises `old` is null or valid for this call.
    for (header, size, ace) in unsafe { entries_of(old) } {
        // SAFETY: `header` points at a valid ACE header inside `old`.
        let (ty, flags) = unsafe { ((*header).AceType, (*header).AceFlags) };
        if flags & INHERITED_ACE != 0 || ace.is_some_and(|a| remove.contains(&a)) {
            continue;
        }
        keep.push((header, size, ty == ACCESS_DENIED_ACE_TYPE));
    }
    let sids = add
        .iter()
        .map(|e| OwnedSid::new(&e.sid))
        .collect::<io::Result<Vec<_>>>()?;
    let mut size = std::mem::size_of::<ACL>() as u32;
    size += keep.iter().map(|(_, s, _)| u32::from(*s)).sum::<u32>();
    // Each new ACE: header (4) + mask (4) + SID, rounded up to a DWORD.
    size += sids
        .iter()
        .map(|s| (8 + s.byte_len() + 3) & !3)
        .sum::<u32>();
    let mut buf = BuiltAcl(vec![0u32; size.div_ceil(4) as usize]);
    let acl = buf.0.as_mut_ptr().cast::<ACL>();
    // SAFETY: `buf` is DWORD-aligned and `size` bytes long, as InitializeAcl requires.
    if unsafe { InitializeAcl(acl, size, ACL_REVISION) } == 0 {
        return Err(io::Error::last_os_error());
    }
    for deny in [true, false] {
        for (e, s) in add.iter().zip(&sids) {
            if (e.kind == AceKind::Deny) != deny {
                continue;
            }
            let flags = u32::from(e.inherit.flags());
            // SAFETY: `acl` was initialised above with room for every ACE added here; the
            // SID is valid while `sids` lives.
            let ok = unsafe {
                if deny {
                    AddAccessDeniedAceEx(acl, ACL_REVISION, flags, e.mask, s.as_psid())
                } else {
                    AddAccessAllowedAceEx(acl, ACL_REVISION, flags, e.mask, s.as_psid())
                }
            };
            if ok == 0 {
                return Err(io::Error::last_os_error());
            }
        }
        for (header, ace_size, is_deny) in &keep {
            if *is_deny != deny {
                continue;
            }
            // SAFETY: `header` is an ACE of `ace_size` bytes inside `old` (valid for this
            // call); the new ACL has room for it; MAXDWORD appends at the end.
            let ok = unsafe {
                AddAce(
                    acl,
                    ACL_REVISION,
                    u32::MAX,
                    header.cast(),
                    u32::from(*ace_size),
                )
            };
            if ok == 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(buf)
}

/// Rewrites `path`'s explicit ACEs (see [`build`]), keeping the DACL's protection. On a
/// folder whose inheritable ACEs change, Windows propagates them through the tree in this
/// call: the one expensive step, done once.
pub fn rewrite_dacl(path: &WinPath, add: &[&AclEdit], remove: &[Ace]) -> io::Result<()> {
    let old = Descriptor::read(path)?;
    // SAFETY: old.dacl is null or the DACL inside old.sd, alive until `old` drops.
    let new = unsafe { build(old.dacl, add, remove) }?;
    let protection = if old.is_protected() {
        PROTECTED_DACL_SECURITY_INFORMATION
    } else {
        UNPROTECTED_DACL_SECURITY_INFORMATION
    };
    let name = wide(&path.to_api());
    // SAFETY: `name` is NUL-terminated; `new` is a valid ACL, alive for the call; owner,
    // group and SACL are not set.
    let err = unsafe {
        SetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | protection,
            null_mut(),
            null_mut(),
            new.as_ptr(),
            std::ptr::null(),
        )
    };
    if err != ERROR_SUCCESS {
        return Err(io::Error::from_raw_os_error(err as i32));
    }
    Ok(())
}
