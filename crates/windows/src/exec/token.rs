//! The restricted token: CreateRestrictedToken with the plan's flags and restricting SIDs,
//! SeChangeNotifyPrivilege kept, and a default DACL the sandbox's own objects can use.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr::{null, null_mut};

use windows_sys::Win32::Foundation::{GetLastError, HANDLE, LUID};
use windows_sys::Win32::Security::{
    AddAccessAllowedAce, AdjustTokenPrivileges, CreateRestrictedToken, GetTokenInformation,
    InitializeAcl, LookupPrivilegeValueW, SetTokenInformation, TokenDefaultDacl, TokenGroups,
    TokenRestrictedSids, TokenUser, ACL, ACL_REVISION, LUID_AND_ATTRIBUTES, SE_PRIVILEGE_ENABLED,
    SID_AND_ATTRIBUTES, TOKEN_ACCESS_MASK, TOKEN_ADJUST_DEFAULT, TOKEN_ADJUST_PRIVILEGES,
    TOKEN_ADJUST_SESSIONID, TOKEN_ASSIGN_PRIMARY, TOKEN_DEFAULT_DACL, TOKEN_DUPLICATE,
    TOKEN_INFORMATION_CLASS, TOKEN_PRIVILEGES, TOKEN_QUERY,
};
use windows_sys::Win32::System::SystemServices::SE_GROUP_LOGON_ID;
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use super::sid::{self, OwnedSid};
use super::wide;
use crate::plan::acl::GENERIC_ALL;
use crate::plan::{TokenSid, TokenSpec};
use crate::sid::Sid;

/// What cordon needs on its own token to derive the restricted one from it.
const BASE_ACCESS: TOKEN_ACCESS_MASK = TOKEN_DUPLICATE
    | TOKEN_QUERY
    | TOKEN_ASSIGN_PRIMARY
    | TOKEN_ADJUST_DEFAULT
    | TOKEN_ADJUST_SESSIONID
    | TOKEN_ADJUST_PRIVILEGES;

/// cordon's own primary token.
pub fn process_token() -> io::Result<OwnedHandle> {
    let mut h: HANDLE = null_mut();
    // SAFETY: GetCurrentProcess returns a pseudo-handle valid in this process; `h` is a
    // valid place for the handle the call writes.
    let ok = unsafe { OpenProcessToken(GetCurrentProcess(), BASE_ACCESS, &mut h) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success `h` is a fresh token handle that nothing else owns.
    Ok(unsafe { OwnedHandle::from_raw_handle(h) })
}

/// A token information class as bytes (8-byte aligned, as the structures need).
fn info(token: &OwnedHandle, class: TOKEN_INFORMATION_CLASS) -> io::Result<Vec<u64>> {
    let mut len = 0u32;
    // SAFETY: a size query: no buffer, `len` receives the size needed.
    unsafe { GetTokenInformation(token.as_raw_handle(), class, null_mut(), 0, &mut len) };
    let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
    // SAFETY: `buf` holds at least `len` bytes, suitably aligned for the TOKEN_* structures.
    let ok = unsafe {
        GetTokenInformation(
            token.as_raw_handle(),
            class,
            buf.as_mut_ptr().cast(),
            len,
            &mut len,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(buf)
}

/// The SIDs of a TOKEN_GROUPS-shaped class (groups, restricting SIDs), with attributes.
fn groups(token: &OwnedHandle, class: TOKEN_INFORMATION_CLASS) -> io::Result<Vec<(Sid, u32)>> {
    let buf = info(token, class)?;
    let head = buf.as_ptr().cast::<u32>();
    // SAFETY: the buffer starts with TOKEN_GROUPS.GroupCount.
    let count = unsafe { *head } as usize;
    // SAFETY: the SID_AND_ATTRIBUTES array follows the count at its natural alignment
    // (offset 8 on 64-bit), with `count` entries, all within `buf`.
    let entries = unsafe {
        std::slice::from_raw_parts(
            buf.as_ptr()
                .cast::<u8>()
                .add(8)
                .cast::<SID_AND_ATTRIBUTES>(),
            count,
        )
    };
    let mut out = Vec::new();
    for e in entries {
        // SAFETY: each entry's SID points into `buf`, alive for this loop.
        out.push((unsafe { sid::read(e.Sid) }?, e.Attributes));
    }
    Ok(out)
}

/// The logon session's SID (the group with SE_GROUP_LOGON_ID), if the token has one.
pub fn logon_sid(token: &OwnedHandle) -> io::Result<Option<Sid>> {
    let logon = SE_GROUP_LOGON_ID as u32;
    Ok(groups(token, TokenGroups)?
        .into_iter()
        .find(|(_, attrs)| attrs & logon == logon)
        .map(|(s, _)| s))
}

/// The token's user SID.
pub fn user_sid(token: &OwnedHandle) -> io::Result<Sid> {
    let buf = info(token, TokenUser)?;
    // SAFETY: TOKEN_USER starts with a SID_AND_ATTRIBUTES whose SID points into `buf`.
    let user = unsafe { &*buf.as_ptr().cast::<SID_AND_ATTRIBUTES>() };
    // SAFETY: as above; `buf` is alive for the call.
    unsafe { sid::read(user.Sid) }
}

/// The restricting SIDs a token carries (empty for an unrestricted token).
pub fn restricting_sids(token: &OwnedHandle) -> io::Result<Vec<Sid>> {
    Ok(groups(token, TokenRestrictedSids)?
        .into_iter()
        .map(|(s, _)| s)
        .collect())
}

fn resolve(s: &TokenSid, user: &Sid, logon: Option<&Sid>) -> Option<Sid> {
    match s {
        TokenSid::Fixed(s) => Some(s.clone()),
        TokenSid::User => Some(user.clone()),
        TokenSid::Logon => logon.cloned(),
    }
}

/// Derives the restricted token from `base` (cordon's own token, or in elevated mode the
/// sandbox account's logon token).
pub fn restrict(base: &OwnedHandle, spec: &TokenSpec) -> io::Result<OwnedHandle> {
    let user = user_sid(base)?;
    let logon = logon_sid(base)?;
    let sids = spec
        .restricting
        .iter()
        .filter_map(|s| resolve(s, &user, logon.as_ref()))
        .map(|s| OwnedSid::new(&s))
        .collect::<io::Result<Vec<_>>>()?;
    let entries: Vec<SID_AND_ATTRIBUTES> = sids
        .iter()
        .map(|s| SID_AND_ATTRIBUTES {
            Sid: s.as_psid(),
            Attributes: 0,
        })
        .collect();
    let mut new: HANDLE = null_mut();
    // SAFETY: `base` is a token handle with TOKEN_DUPLICATE; `entries` holds `len` valid
    // SIDs kept alive by `sids` until after the call; no SIDs to disable or privileges to
    // delete are passed (DISABLE_MAX_PRIVILEGE removes them).
    let ok = unsafe {
        CreateRestrictedToken(
            base.as_raw_handle(),
            spec.flags,
            0,
            null(),
            0,
            null(),
            entries.len() as u32,
            entries.as_ptr(),
            &mut new,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success `new` is a fresh token handle that nothing else owns.
    let token = unsafe { OwnedHandle::from_raw_handle(new) };
    for name in &spec.keep_privileges {
        enable_privilege(&token, name)?;
    }
    let dacl_sids = spec
        .default_dacl
        .iter()
        .filter_map(|s| resolve(s, &user, logon.as_ref()))
        .map(|s| OwnedSid::new(&s))
        .collect::<io::Result<Vec<_>>>()?;
    set_default_dacl(&token, &dacl_sids)?;
    Ok(token)
}

pub(super) fn enable_privilege(token: &OwnedHandle, name: &str) -> io::Result<()> {
    let wname = wide(name);
    let mut luid = LUID::default();
    // SAFETY: `wname` is NUL-terminated; `luid` is a valid out place.
    if unsafe { LookupPrivilegeValueW(null(), wname.as_ptr(), &mut luid) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let tp = TOKEN_PRIVILEGES {
        PrivilegeCount: 1,
        Privileges: [LUID_AND_ATTRIBUTES {
            Luid: luid,
            Attributes: SE_PRIVILEGE_ENABLED,
        }],
    };
    // SAFETY: `token` has TOKEN_ADJUST_PRIVILEGES (inherited from the base's access);
    // `tp` is a valid one-entry TOKEN_PRIVILEGES; no previous state is asked for.
    let ok =
        unsafe { AdjustTokenPrivileges(token.as_raw_handle(), 0, &tp, 0, null_mut(), null_mut()) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // ERROR_NOT_ALL_ASSIGNED (1300): the token lacks it; traversal checks then apply, which
    // breaks deep paths, so it is an error.
    // SAFETY: reads this thread's last error, set by the call above.
    let last = unsafe { GetLastError() };
    if last == 1300 {
        return Err(io::Error::from_raw_os_error(last as i32));
    }
    Ok(())
}

/// TokenDefaultDacl: GENERIC_ALL for each SID.
fn set_default_dacl(token: &OwnedHandle, sids: &[OwnedSid]) -> io::Result<()> {
    let size = std::mem::size_of::<ACL>() as u32
        + sids
            .iter()
            .map(|s| (8 + s.byte_len() + 3) & !3)
            .sum::<u32>();
    let mut buf = vec![0u32; size.div_ceil(4) as usize];
    let acl = buf.as_mut_ptr().cast::<ACL>();
    // SAFETY: `buf` is DWORD-aligned and `size` bytes long.
    if unsafe { InitializeAcl(acl, size, ACL_REVISION) } == 0 {
        return Err(io::Error::last_os_error());
    }
    for s in sids {
        // SAFETY: the ACL has room for this ACE (sized above); the SID is valid.
        if unsafe { AddAccessAllowedAce(acl, ACL_REVISION, GENERIC_ALL, s.as_psid()) } == 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let dd = TOKEN_DEFAULT_DACL { DefaultDacl: acl };
    // SAFETY: `token` has TOKEN_ADJUST_DEFAULT; `dd` points at a valid ACL in `buf`, both
    // alive for the call (the system copies the ACL).
    let ok = unsafe {
        SetTokenInformation(
            token.as_raw_handle(),
            TokenDefaultDacl,
            (&dd as *const TOKEN_DEFAULT_DACL).cast(),
            std::mem::size_of::<TOKEN_DEFAULT_DACL>() as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The profile folder of the account cordon runs as, from its token (the registry's
/// ProfileList), not from `%USERPROFILE%`, which whoever starts cordon may set.
pub fn profile_dir() -> io::Result<std::path::PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    use windows_sys::Win32::UI::Shell::GetUserProfileDirectoryW;
    let token = process_token()?;
    let mut len = 0u32;
    // SAFETY: a size query: no buffer, `len` receives the length needed in UTF-16 units.
    unsafe { GetUserProfileDirectoryW(token.as_raw_handle(), null_mut(), &mut len) };
    if len == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u16; len as usize];
    // SAFETY: `buf` holds `len` UTF-16 units, as the call was told.
    let ok = unsafe { GetUserProfileDirectoryW(token.as_raw_handle(), buf.as_mut_ptr(), &mut len) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    Ok(std::ffi::OsString::from_wide(&buf[..end]).into())
}
