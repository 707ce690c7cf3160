//! Elevated mode's account pieces: random passwords, DPAPI, and the local group and users.
//!
//! Password generation and DPAPI protection are tested under Wine; the group and users
//! (NetLocalGroupAdd, NetUserAdd or NetUserSetInfo, NetLocalGroupAddMembers) are made by
//! `exec::setup` as an administrator, and what Wine does with them is asserted in the tests.

use std::io;
use std::ptr::{null, null_mut};

use windows_sys::Win32::Foundation::LocalFree;
use windows_sys::Win32::NetworkManagement::NetManagement::{
    NetApiBufferFree, NetLocalGroupAdd, NetLocalGroupAddMembers, NetUserAdd, NetUserGetLocalGroups,
    NetUserSetInfo, LOCALGROUP_INFO_1, LOCALGROUP_MEMBERS_INFO_3, LOCALGROUP_USERS_INFO_0,
    USER_INFO_1, USER_INFO_1003, USER_INFO_1008,
};
use windows_sys::Win32::Security::Cryptography::{
    BCryptGenRandom, CryptProtectData, CryptUnprotectData, BCRYPT_USE_SYSTEM_PREFERRED_RNG,
    CRYPTPROTECT_UI_FORBIDDEN, CRYPT_INTEGER_BLOB,
};

use super::wide;
use crate::plan::network::{password_from, AccountsPlan, ACCOUNT_FLAGS, ACCOUNT_PRIV};

/// NERR_UserExists, ERROR_ALIAS_EXISTS, ERROR_MEMBER_IN_ALIAS: set-up run a second time.
const ALREADY: [u32; 3] = [NERR_USER_EXISTS, 1379, 1378];
const NERR_USER_EXISTS: u32 = 2224;

/// A fresh password of `bytes` random bytes from the system's CSPRNG.
pub fn new_password(bytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; bytes];
    let len = u32::try_from(buf.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `buf` is `len` writable bytes; no algorithm handle with the system-preferred
    // RNG flag, as documented.
    let status = unsafe {
        BCryptGenRandom(
            null_mut(),
            buf.as_mut_ptr(),
            len,
            BCRYPT_USE_SYSTEM_PREFERRED_RNG,
        )
    };
    if status != 0 {
        return Err(io::Error::other(format!(
            "BCryptGenRandom: NTSTATUS {status:#x}"
        )));
    }
    Ok(password_from(&buf))
}

fn blob(data: &[u8]) -> io::Result<CRYPT_INTEGER_BLOB> {
    Ok(CRYPT_INTEGER_BLOB {
        cbData: u32::try_from(data.len())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        pbData: data.as_ptr().cast_mut(),
    })
}

/// Takes ownership of a LocalAlloc'd output blob.
fn take(out: CRYPT_INTEGER_BLOB) -> Vec<u8> {
    // SAFETY: on success the call filled `out` with `cbData` bytes at `pbData`.
    let v = unsafe { std::slice::from_raw_parts(out.pbData, out.cbData as usize) }.to_vec();
    // SAFETY: DPAPI documents LocalFree for its output; freed once, here.
    unsafe { LocalFree(out.pbData.cast()) };
    v
}

/// Encrypts `data` for the current user (DPAPI): only this account on this machine can
/// decrypt it, so a copied state folder is useless elsewhere.
pub fn protect(data: &[u8]) -> io::Result<Vec<u8>> {
    let input = blob(data)?;
    let mut out = CRYPT_INTEGER_BLOB::default();
    // SAFETY: `input` points at `data`, alive for the call and only read; no description,
    // entropy or prompt; `out` receives a LocalAlloc'd blob.
    let ok = unsafe {
        CryptProtectData(
            &input,
            null(),
            null(),
            null(),
            null(),
            CRYPTPROTECT_UI_FORBIDDEN,
            &mut out,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(take(out))
}

/// Decrypts what [`protect`] made.
pub fn unprotect(data: &[u8]) -> io::Result<Vec<u8>> {
    let input = blob(data)?;
    let mut out = CRYPT_INTEGER_BLOB::default();
    // SAFETY: as in `protect`; no description is asked for.
    let ok = unsafe {
        CryptUnprotectData(
            &input,
            null_mut(),
            null(),
            null(),
            null(),
            CRYPTPROTECT_UI_FORBIDDEN,
            &mut out,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(take(out))
}

fn net(status: u32) -> io::Result<()> {
    if status == 0 || ALREADY.contains(&status) {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(status as i32))
    }
}

/// Creates the local group (administrator only); an existing one is kept.
pub fn ensure_group(name: &str) -> io::Result<()> {
    let mut group = wide(name);
    let mut comment = wide("cordon sandbox accounts");
    let info = LOCALGROUP_INFO_1 {
        lgrpi1_name: group.as_mut_ptr(),
        lgrpi1_comment: comment.as_mut_ptr(),
    };
    // SAFETY: `info` points at NUL-terminated strings alive for the call; local machine.
    net(unsafe {
        NetLocalGroupAdd(
            null(),
            1,
            (&info as *const LOCALGROUP_INFO_1).cast(),
            null_mut(),
        )
    })
}

/// Makes `name` a plain local user whose password is `password` (administrator only):
/// created if absent, otherwise its password is reset and its flags set again, so a setup
/// run twice leaves the stored password and the account's in agreement.
pub fn ensure_user(name: &str, password: &str) -> io::Result<()> {
    let mut wname = wide(name);
    let mut pw = wide(password);
    let user = USER_INFO_1 {
        usri1_name: wname.as_mut_ptr(),
        usri1_password: pw.as_mut_ptr(),
        usri1_password_age: 0,
        usri1_priv: ACCOUNT_PRIV,
        usri1_home_dir: null_mut(),
        usri1_comment: null_mut(),
        usri1_flags: ACCOUNT_FLAGS,
        usri1_script_path: null_mut(),
    };
    // SAFETY: `user` points at NUL-terminated strings alive for the call; local machine.
    let status = unsafe { NetUserAdd(null(), 1, (&user as *const USER_INFO_1).cast(), null_mut()) };
    if status == 0 {
        return Ok(());
    }
    if status != NERR_USER_EXISTS {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    let reset = USER_INFO_1003 {
        usri1003_password: pw.as_mut_ptr(),
    };
    // SAFETY: level 1003 takes one USER_INFO_1003 naming a NUL-terminated password.
    net(unsafe {
        NetUserSetInfo(
            null(),
            wname.as_ptr(),
            1003,
            (&reset as *const USER_INFO_1003).cast(),
            null_mut(),
        )
    })?;
    let flags = USER_INFO_1008 {
        usri1008_flags: ACCOUNT_FLAGS,
    };
    // SAFETY: level 1008 takes one USER_INFO_1008.
    net(unsafe {
        NetUserSetInfo(
            null(),
            wname.as_ptr(),
            1008,
            (&flags as *const USER_INFO_1008).cast(),
            null_mut(),
        )
    })
}

/// Adds `account` to `group`; already a member is fine.
pub fn ensure_member(group: &str, account: &str) -> io::Result<()> {
    let group = wide(group);
    let mut name = wide(account);
    let member = LOCALGROUP_MEMBERS_INFO_3 {
        lgrmi3_domainandname: name.as_mut_ptr(),
    };
    // SAFETY: one LOCALGROUP_MEMBERS_INFO_3 naming a NUL-terminated account name.
    net(unsafe {
        NetLocalGroupAddMembers(
            null(),
            group.as_ptr(),
            3,
            (&member as *const LOCALGROUP_MEMBERS_INFO_3).cast(),
            1,
        )
    })
}

/// The local groups `account` is in.
pub fn local_groups(account: &str) -> io::Result<Vec<String>> {
    let name = wide(account);
    let mut buf: *mut u8 = null_mut();
    let (mut read, mut total) = (0u32, 0u32);
    // SAFETY: level 0 fills `buf` with LOCALGROUP_USERS_INFO_0 entries (freed below).
    let status = unsafe {
        NetUserGetLocalGroups(
            null(),
            name.as_ptr(),
            0,
            0,
            &mut buf,
            u32::MAX,
            &mut read,
            &mut total,
        )
    };
    if status != 0 {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    let mut out = Vec::new();
    if !buf.is_null() {
        // SAFETY: `buf` holds `read` entries.
        let entries = unsafe {
            std::slice::from_raw_parts(buf.cast::<LOCALGROUP_USERS_INFO_0>(), read as usize)
        };
        for e in entries {
            // SAFETY: each name is NUL-terminated inside `buf`.
            out.push(unsafe { super::from_wide_ptr(e.lgrui0_name) });
        }
        // SAFETY: the buffer the call allocated, freed once.
        unsafe { NetApiBufferFree(buf.cast()) };
    }
    Ok(out)
}

/// Creates the group and the accounts (administrator only), each with a fresh password,
/// returning (account name, DPAPI-protected password) for cordon's state folder. Existing
/// accounts keep their SIDs and get the fresh password (see [`ensure_user`]).
pub fn create(plan: &AccountsPlan) -> io::Result<Vec<(&'static str, Vec<u8>)>> {
    ensure_group(plan.group)?;
    let mut out = Vec::new();
    for account in &plan.accounts {
        let password = new_password(plan.password_bytes)?;
        ensure_user(account.name, &password)?;
        ensure_member(plan.group, account.name)?;
        out.push((account.name, protect(password.as_bytes())?));
    }
    Ok(out)
}
