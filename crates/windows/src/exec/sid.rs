//! Binary SIDs: made from cordon's [`Sid`] with ConvertStringSidToSidW, read back with
//! ConvertSidToStringSidW.

use std::io;

use windows_sys::Win32::Foundation::LocalFree;
use windows_sys::Win32::Security::Authorization::{ConvertSidToStringSidW, ConvertStringSidToSidW};
use windows_sys::Win32::Security::{GetLengthSid, PSID};

use super::wide;
use crate::sid::Sid;

/// A SID allocated by the system (LocalAlloc), freed on drop.
pub struct OwnedSid(PSID);

impl OwnedSid {
    pub fn new(sid: &Sid) -> io::Result<OwnedSid> {
        let text = wide(&sid.to_string());
        let mut out: PSID = std::ptr::null_mut();
        // SAFETY: `text` is a NUL-terminated UTF-16 string that outlives the call; `out` is
        // a valid place for the one pointer the call writes.
        let ok = unsafe { ConvertStringSidToSidW(text.as_ptr(), &mut out) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedSid(out))
    }

    pub fn as_psid(&self) -> PSID {
        self.0
    }

    /// The SID's size in bytes.
    pub fn byte_len(&self) -> u32 {
        // SAFETY: self.0 is a valid SID made by ConvertStringSidToSidW and not yet freed.
        unsafe { GetLengthSid(self.0) }
    }
}

impl Drop for OwnedSid {
    fn drop(&mut self) {
        // SAFETY: self.0 came from ConvertStringSidToSidW, which documents LocalFree as its
        // release; it is freed exactly once, here.
        unsafe { LocalFree(self.0) };
    }
}

/// Reads a binary SID as cordon's [`Sid`].
///
/// # Safety
/// `psid` must point at a valid SID for the duration of the call.
pub unsafe fn read(psid: PSID) -> io::Result<Sid> {
    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: the caller promises `psid` is a valid SID; `text` receives a LocalAlloc'd,
    // NUL-terminated string.
    let ok = unsafe { ConvertSidToStringSidW(psid, &mut text) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success `text` is NUL-terminated; the loop stops at the terminator.
    let len = (0..).take_while(|&i| unsafe { *text.add(i) } != 0).count();
    // SAFETY: `len` units before the terminator are initialised and owned by `text`.
    let s = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(text, len) });
    // SAFETY: `text` came from ConvertSidToStringSidW, released with LocalFree, once.
    unsafe { LocalFree(text.cast()) };
    Sid::parse(&s).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
