//! WFP filters for the offline account: cordon's own provider and persistent sublayer (fixed
//! GUIDs from `plan::network`), and one filter per [`WfpFilter`] (blocks, and the proxy's
//! permit above them) at the ALE connect layers for IPv4 and IPv6. Setup removes every filter of cordon's provider and adds the
//! plan's, in one transaction, so a re-run replaces them and a failure leaves the old set.

use std::io;
use std::ptr::{null, null_mut};

use windows_sys::core::GUID;
use windows_sys::Win32::Foundation::{LocalFree, HANDLE};
use windows_sys::Win32::NetworkManagement::WindowsFilteringPlatform::*;
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::System::Rpc::RPC_C_AUTHN_WINNT;

use super::wide;
use crate::plan::network::{WfpAction, WfpCondition, WfpFilter, WFP_PROVIDER, WFP_SUBLAYER};

/// FWP_E_ALREADY_EXISTS: the provider or sublayer from an earlier setup.
const ALREADY_EXISTS: u32 = 0x8032_0009;
const LAYERS: [GUID; 2] = [
    FWPM_LAYER_ALE_AUTH_CONNECT_V4,
    FWPM_LAYER_ALE_AUTH_CONNECT_V6,
];

fn guid(text: &str) -> io::Result<GUID> {
    let hex: String = text.chars().filter(char::is_ascii_hexdigit).collect();
    u128::from_str_radix(&hex, 16)
        .map(GUID::from_u128)
        .map_err(|_| io::Error::other(format!("{text}: not a GUID")))
}

fn check(what: &str, status: u32) -> io::Result<()> {
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::other(format!("{what}: {status:#010x}")))
    }
}

/// An open session with the filter engine, closed on drop.
pub struct Engine(HANDLE);

impl Engine {
    pub fn open() -> io::Result<Engine> {
        let mut h: HANDLE = null_mut();
        // SAFETY: local engine, default session; `h` receives the engine handle.
        check("FwpmEngineOpen0", unsafe {
            FwpmEngineOpen0(null(), RPC_C_AUTHN_WINNT, null(), null(), &mut h)
        })?;
        // Not an OwnedHandle: an engine handle is closed with FwpmEngineClose0 (drop).
        Ok(Engine(h))
    }

    fn h(&self) -> HANDLE {
        self.0
    }

    /// The names of the filters of cordon's provider, at both layers.
    pub fn filter_names(&self) -> io::Result<Vec<String>> {
        Ok(self.ours()?.into_iter().map(|(_, n)| n).collect())
    }

    fn ours(&self) -> io::Result<Vec<(u64, String)>> {
        let mut provider = guid(WFP_PROVIDER)?;
        let mut out = Vec::new();
        for layer in LAYERS {
            // SAFETY: all-zero is a valid empty template (no conditions, null pointers).
            let mut t: FWPM_FILTER_ENUM_TEMPLATE0 = unsafe { std::mem::zeroed() };
            t.providerKey = &mut provider;
            t.layerKey = layer;
            t.enumType = FWP_FILTER_ENUM_OVERLAPPING;
            t.actionMask = 0xFFFF_FFFF;
            let mut e: HANDLE = null_mut();
            // SAFETY: `t` is a valid template for the call; `e` receives an enum handle.
            check("FwpmFilterCreateEnumHandle0", unsafe {
                FwpmFilterCreateEnumHandle0(self.h(), &t, &mut e)
            })?;
            let mut entries: *mut *mut FWPM_FILTER0 = null_mut();
            let mut n = 0u32;
            // SAFETY: `e` is the enum handle just made; the engine allocates `entries`.
            let r = unsafe { FwpmFilterEnum0(self.h(), e, 4096, &mut entries, &mut n) };
            if r == 0 && !entries.is_null() {
                for i in 0..n as usize {
                    // SAFETY: `entries` holds `n` filter pointers, alive until freed below.
                    let f = unsafe { &**entries.add(i) };
                    let name = if f.displayData.name.is_null() {
                        String::new()
                    } else {
                        // SAFETY: a NUL-terminated string inside the engine's allocation.
                        let len = (0..)
                            .take_while(|&k| unsafe { *f.displayData.name.add(k) } != 0)
                            .count();
                        // SAFETY: `len` units before the terminator.
                        String::from_utf16_lossy(unsafe {
                            std::slice::from_raw_parts(f.displayData.name, len)
                        })
                    };
                    out.push((f.filterId, name));
                }
                let mut p = entries.cast::<std::ffi::c_void>();
                // SAFETY: the engine's allocation, freed once.
                unsafe { FwpmFreeMemory0(&mut p) };
            }
            // SAFETY: the enum handle made above, destroyed once.
            unsafe { FwpmFilterDestroyEnumHandle0(self.h(), e) };
            check("FwpmFilterEnum0", r)?;
        }
        Ok(out)
    }

    /// Replaces cordon's filters with `filters`, in one transaction.
    pub fn install(&self, filters: &[WfpFilter]) -> io::Result<()> {
        // SAFETY: begins a read-write transaction on this session.
        check("FwpmTransactionBegin0", unsafe {
            FwpmTransactionBegin0(self.h(), 0)
        })?;
        let r = self.install_in_transaction(filters);
        if r.is_ok() {
            // SAFETY: commits the transaction begun above.
            return check("FwpmTransactionCommit0", unsafe {
                FwpmTransactionCommit0(self.h())
            });
        }
        // SAFETY: aborts the transaction begun above; nothing of it is kept.
        unsafe { FwpmTransactionAbort0(self.h()) };
        r
    }

    fn install_in_transaction(&self, filters: &[WfpFilter]) -> io::Result<()> {
        let mut provider_key = guid(WFP_PROVIDER)?;
        let sublayer_key = guid(WFP_SUBLAYER)?;
        let mut name = wide("cordon");
        let mut desc = wide("cordon's sandbox accounts (cordon setup --elevated)");
        // SAFETY: all-zero is valid for these plain structures (null pointers, empty blobs).
        let mut provider: FWPM_PROVIDER0 = unsafe { std::mem::zeroed() };
        provider.providerKey = provider_key;
        provider.displayData.name = name.as_mut_ptr();
        provider.displayData.description = desc.as_mut_ptr();
        provider.flags = FWPM_PROVIDER_FLAG_PERSISTENT;
        // SAFETY: `provider` and its strings are alive for the call; default security.
        let r = unsafe { FwpmProviderAdd0(self.h(), &provider, null_mut()) };
        if r != ALREADY_EXISTS {
            check("FwpmProviderAdd0", r)?;
        }
        // SAFETY: as above.
        let mut sub: FWPM_SUBLAYER0 = unsafe { std::mem::zeroed() };
        sub.subLayerKey = sublayer_key;
        sub.displayData.name = name.as_mut_ptr();
        sub.displayData.description = desc.as_mut_ptr();
        sub.flags = FWPM_SUBLAYER_FLAG_PERSISTENT;
        sub.providerKey = &mut provider_key;
        sub.weight = 0x8000;
        // SAFETY: `sub`, its strings and the provider key are alive for the call.
        let r = unsafe { FwpmSubLayerAdd0(self.h(), &sub, null_mut()) };
        if r != ALREADY_EXISTS {
            check("FwpmSubLayerAdd0", r)?;
        }
        for (id, _) in self.ours()? {
            // SAFETY: an id the engine just listed.
            check("FwpmFilterDeleteById0", unsafe {
                FwpmFilterDeleteById0(self.h(), id)
            })?;
        }
        for f in filters {
            for layer in LAYERS {
                self.add(f, layer, &mut provider_key, sublayer_key)?;
            }
        }
        Ok(())
    }

    fn add(
        &self,
        f: &WfpFilter,
        layer: GUID,
        provider_key: &mut GUID,
        sublayer_key: GUID,
    ) -> io::Result<()> {
        // Everything a condition points at lives until the call returns.
        let mut sds: Vec<SecurityDescriptor> = Vec::new();
        let mut blobs: Vec<Box<FWP_BYTE_BLOB>> = Vec::new();
        let mut ranges: Vec<Box<FWP_RANGE0>> = Vec::new();
        let mut conditions: Vec<FWPM_FILTER_CONDITION0> = Vec::new();
        for c in &f.conditions {
            match c {
                WfpCondition::User(sid) => {
                    let sd = SecurityDescriptor::new(&format!("O:LSD:(A;;CC;;;{sid})"))?;
                    blobs.push(Box::new(FWP_BYTE_BLOB {
                        size: sd.len,
                        data: sd.ptr.cast(),
                    }));
                    sds.push(sd);
                    let blob: *mut FWP_BYTE_BLOB = &mut **blobs
                        .last_mut()
                        .ok_or_else(|| io::Error::other("no blob"))?;
                    conditions.push(FWPM_FILTER_CONDITION0 {
                        fieldKey: FWPM_CONDITION_ALE_USER_ID,
                        matchType: FWP_MATCH_EQUAL,
                        conditionValue: FWP_CONDITION_VALUE0 {
                            r#type: FWP_SECURITY_DESCRIPTOR_TYPE,
                            Anonymous: FWP_CONDITION_VALUE0_0 { sd: blob },
                        },
                    });
                }
                WfpCondition::Protocol(p) => conditions.push(FWPM_FILTER_CONDITION0 {
                    fieldKey: FWPM_CONDITION_IP_PROTOCOL,
                    matchType: FWP_MATCH_EQUAL,
                    conditionValue: FWP_CONDITION_VALUE0 {
                        r#type: FWP_UINT8,
                        Anonymous: FWP_CONDITION_VALUE0_0 { uint8: *p },
                    },
                }),
                // Conditions on one field are ORed by WFP: several ports match any of them.
                WfpCondition::RemotePorts(ports) => {
                    for port in ports {
                        conditions.push(port_condition(FWP_MATCH_EQUAL, *port));
                    }
                }
                WfpCondition::RemotePortRange(low, high) => {
                    ranges.push(Box::new(FWP_RANGE0 {
                        valueLow: port_value(*low),
                        valueHigh: port_value(*high),
                    }));
                    let range: *mut FWP_RANGE0 = &mut **ranges
                        .last_mut()
                        .ok_or_else(|| io::Error::other("no range"))?;
                    conditions.push(FWPM_FILTER_CONDITION0 {
                        fieldKey: FWPM_CONDITION_IP_REMOTE_PORT,
                        matchType: FWP_MATCH_RANGE,
                        conditionValue: FWP_CONDITION_VALUE0 {
                            r#type: FWP_RANGE_TYPE,
                            Anonymous: FWP_CONDITION_VALUE0_0 { rangeValue: range },
                        },
                    });
                }
                WfpCondition::Loopback => conditions.push(FWPM_FILTER_CONDITION0 {
                    fieldKey: FWPM_CONDITION_FLAGS,
                    matchType: FWP_MATCH_FLAGS_ALL_SET,
                    conditionValue: FWP_CONDITION_VALUE0 {
                        r#type: FWP_UINT32,
                        Anonymous: FWP_CONDITION_VALUE0_0 {
                            uint32: FWP_CONDITION_FLAG_IS_LOOPBACK,
                        },
                    },
                }),
            }
        }
        let mut name = wide(&f.name);
        // SAFETY: all-zero is valid for FWPM_FILTER0 (null pointers, FWP_EMPTY weight).
        let mut filter: FWPM_FILTER0 = unsafe { std::mem::zeroed() };
        filter.displayData.name = name.as_mut_ptr();
        filter.flags = FWPM_FILTER_FLAG_PERSISTENT;
        filter.providerKey = provider_key;
        filter.layerKey = layer;
        filter.subLayerKey = sublayer_key;
        // An explicit weight: WFP's automatic one could put a block above the proxy's permit.
        filter.weight.r#type = FWP_UINT8;
        filter.weight.Anonymous.uint8 = f.weight;
        filter.numFilterConditions = conditions.len() as u32;
        filter.filterCondition = conditions.as_mut_ptr();
        filter.action.r#type = match f.action {
            WfpAction::Block => FWP_ACTION_BLOCK,
            WfpAction::Permit => FWP_ACTION_PERMIT,
        };
        let mut id = 0u64;
        // SAFETY: `filter` and everything its conditions point at (`conditions`, `blobs`,
        // `ranges`, `sds`, `name`) are alive for the call; default security for the filter.
        let r = unsafe { FwpmFilterAdd0(self.h(), &filter, null_mut(), &mut id) };
        drop(sds);
        check(&format!("FwpmFilterAdd0 `{}`", f.name), r)
    }

    /// Removes everything of cordon's from the filter engine (`cordon setup --elevated
    /// --remove`), in one transaction: every filter of cordon's provider or in its sublayer,
    /// at any layer (listed with no template, so a layer an older cordon used is covered),
    /// then the sublayer, then the provider. What was already absent is no error; the counts
    /// say what was there. A failure aborts the transaction and leaves everything in place.
    pub fn uninstall(&self) -> io::Result<crate::plan::remove::WfpRemoved> {
        let same = |a: &GUID, b: &GUID| {
            a.data1 == b.data1 && a.data2 == b.data2 && a.data3 == b.data3 && a.data4 == b.data4
        };
        let provider = guid(WFP_PROVIDER)?;
        let sublayer = guid(WFP_SUBLAYER)?;
        let removed = || -> io::Result<crate::plan::remove::WfpRemoved> {
            let mut ids = Vec::new();
            let mut e: HANDLE = null_mut();
            // SAFETY: no template lists every filter; `e` receives an enum handle.
            check("FwpmFilterCreateEnumHandle0", unsafe {
                FwpmFilterCreateEnumHandle0(self.h(), null(), &mut e)
            })?;
            let listed = loop {
                let mut entries: *mut *mut FWPM_FILTER0 = null_mut();
                let mut n = 0u32;
                // SAFETY: `e` is the enum handle made above; the engine allocates `entries`.
                let r = unsafe { FwpmFilterEnum0(self.h(), e, 512, &mut entries, &mut n) };
                if r == 0 && !entries.is_null() {
                    for i in 0..n as usize {
                        // SAFETY: `entries` holds `n` filter pointers, alive until freed below.
                        let f = unsafe { &**entries.add(i) };
                        // SAFETY: a non-null provider key points at a GUID in the allocation.
                        let ours =
                            !f.providerKey.is_null() && same(unsafe { &*f.providerKey }, &provider);
                        if ours || same(&f.subLayerKey, &sublayer) {
                            ids.push(f.filterId);
                        }
                    }
                    let mut p = entries.cast::<std::ffi::c_void>();
                    // SAFETY: the engine's allocation, freed once.
                    unsafe { FwpmFreeMemory0(&mut p) };
                }
                if r != 0 || n == 0 {
                    break r;
                }
            };
            // SAFETY: the enum handle made above, destroyed once.
            unsafe { FwpmFilterDestroyEnumHandle0(self.h(), e) };
            check("FwpmFilterEnum0", listed)?;
            for id in &ids {
                // SAFETY: an id the engine just listed.
                check("FwpmFilterDeleteById0", unsafe {
                    FwpmFilterDeleteById0(self.h(), *id)
                })?;
            }
            let delete = |what: &str, r: u32| -> io::Result<bool> {
                match r {
                    0 => Ok(true),
                    r if crate::plan::remove::wfp_object_absent(r) => Ok(false),
                    r => check(what, r).map(|()| false),
                }
            };
            // SAFETY: a GUID alive for the call.
            let sub = delete("FwpmSubLayerDeleteByKey0", unsafe {
                FwpmSubLayerDeleteByKey0(self.h(), &sublayer)
            })?;
            // SAFETY: as above.
            let prov = delete("FwpmProviderDeleteByKey0", unsafe {
                FwpmProviderDeleteByKey0(self.h(), &provider)
            })?;
            Ok(crate::plan::remove::WfpRemoved {
                filters: ids.len(),
                sublayer: sub,
                provider: prov,
            })
        };
        // SAFETY: begins a read-write transaction on this session.
        check("FwpmTransactionBegin0", unsafe {
            FwpmTransactionBegin0(self.h(), 0)
        })?;
        match removed() {
            // SAFETY: commits the transaction begun above.
            Ok(done) => check("FwpmTransactionCommit0", unsafe {
                FwpmTransactionCommit0(self.h())
            })
            .map(|()| done),
            Err(e) => {
                // SAFETY: aborts the transaction begun above; nothing of it is kept.
                unsafe { FwpmTransactionAbort0(self.h()) };
                Err(e)
            }
        }
    }
}

fn port_value(port: u16) -> FWP_VALUE0 {
    FWP_VALUE0 {
        r#type: FWP_UINT16,
        Anonymous: FWP_VALUE0_0 { uint16: port },
    }
}

fn port_condition(match_type: FWP_MATCH_TYPE, port: u16) -> FWPM_FILTER_CONDITION0 {
    FWPM_FILTER_CONDITION0 {
        fieldKey: FWPM_CONDITION_IP_REMOTE_PORT,
        matchType: match_type,
        conditionValue: FWP_CONDITION_VALUE0 {
            r#type: FWP_UINT16,
            Anonymous: FWP_CONDITION_VALUE0_0 { uint16: port },
        },
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: the engine handle from FwpmEngineOpen0, closed once.
        unsafe { FwpmEngineClose0(self.0) };
    }
}

/// A self-relative security descriptor from SDDL (LocalAlloc'd), freed on drop.
struct SecurityDescriptor {
    ptr: *mut std::ffi::c_void,
    len: u32,
}

impl SecurityDescriptor {
    fn new(sddl: &str) -> io::Result<SecurityDescriptor> {
        let w = wide(sddl);
        let mut ptr = null_mut();
        let mut len = 0u32;
        // SAFETY: `w` is NUL-terminated; `ptr` and `len` receive the descriptor and size.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                w.as_ptr(),
                SDDL_REVISION_1,
                &mut ptr,
                &mut len,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SecurityDescriptor { ptr, len })
    }
}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: LocalAlloc'd by the conversion, freed once.
        unsafe { LocalFree(self.ptr) };
    }
}
