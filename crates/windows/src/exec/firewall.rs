//! Windows Firewall rules through COM (INetFwPolicy2, INetFwRules, INetFwRule3, and
//! IEnumVARIANT to list them for `cordon setup --elevated --remove`).
//!
//! windows-sys has the CLSIDs and enums but no COM vtables. Rather than add the `windows`
//! crate (windows-core plus two proc-macro crates, and a new entry in the workspace's
//! lock file for one call site), the few methods used are called through hand-written
//! vtable offsets: IUnknown is 3 slots and IDispatch 4 more, so an interface's own methods
//! start at slot 7, in the order netfw.idl declares them (offsets below, each checked
//! against that order). Only properties of plain types (BSTR, LONG, VARIANT_BOOL) are used.

use std::ffi::c_void;
use std::io;
use std::ptr::null_mut;

use windows_sys::core::{BSTR, GUID, HRESULT};
use windows_sys::Win32::Foundation::{SysAllocString, SysFreeString, SysStringLen};
use windows_sys::Win32::NetworkManagement::WindowsFirewall::{
    NetFwPolicy2, NetFwRule, NET_FW_ACTION_BLOCK, NET_FW_MODIFY_STATE_OK, NET_FW_PROFILE2_ALL,
    NET_FW_RULE_DIR_OUT,
};
use windows_sys::Win32::System::Com::{
    CoCreateInstance, CoInitializeEx, CLSCTX_INPROC_SERVER, COINIT_MULTITHREADED,
};

use super::wide;
use crate::plan::network::FirewallRule;

const IID_INETFWPOLICY2: GUID = GUID::from_u128(0x98325047_c671_4174_8d81_defcd3f03186);
const IID_INETFWRULE: GUID = GUID::from_u128(0xaf230d27_baba_4e42_aced_f524f22cfce2);
const IID_INETFWRULE3: GUID = GUID::from_u128(0xb21563ff_d696_4222_ab46_4e89b73ab34a);
const IID_IENUMVARIANT: GUID = GUID::from_u128(0x00020404_0000_0000_c000_000000000046);

// IUnknown.
const QUERY_INTERFACE: usize = 0;
const RELEASE: usize = 2;
// INetFwPolicy2.
const POLICY_GET_RULES: usize = 18;
const POLICY_GET_LOCAL_POLICY_MODIFY_STATE: usize = 28;
// INetFwRules.
const RULES_ADD: usize = 8;
const RULES_REMOVE: usize = 9;
const RULES_ITEM: usize = 10;
const RULES_GET_NEW_ENUM: usize = 11;
// IEnumVARIANT (IUnknown, then Next).
const ENUM_NEXT: usize = 3;
// INetFwRule, INetFwRule2, INetFwRule3.
const RULE_GET_NAME: usize = 7;
const RULE_PUT_NAME: usize = 8;
const RULE_PUT_DESCRIPTION: usize = 10;
const RULE_GET_PROTOCOL: usize = 15;
const RULE_PUT_PROTOCOL: usize = 16;
const RULE_GET_REMOTE_ADDRESSES: usize = 23;
const RULE_PUT_REMOTE_ADDRESSES: usize = 24;
const RULE_GET_DIRECTION: usize = 27;
const RULE_PUT_DIRECTION: usize = 28;
const RULE_GET_ENABLED: usize = 33;
const RULE_PUT_ENABLED: usize = 34;
const RULE_PUT_GROUPING: usize = 36;
const RULE_GET_PROFILES: usize = 37;
const RULE_PUT_PROFILES: usize = 38;
const RULE_GET_ACTION: usize = 41;
const RULE_PUT_ACTION: usize = 42;
const RULE3_GET_LOCAL_USER_AUTHORIZED_LIST: usize = 49;
const RULE3_PUT_LOCAL_USER_AUTHORIZED_LIST: usize = 50;

const VARIANT_TRUE: i16 = -1;
const VT_DISPATCH: u16 = 9;
const VT_UNKNOWN: u16 = 13;

/// A VARIANT as oleaut32 lays it out on 64-bit Windows: the type, three reserved words, and
/// a 16-byte union whose first field is the interface pointer for VT_DISPATCH/VT_UNKNOWN.
#[repr(C)]
struct Variant {
    vt: u16,
    _reserved: [u16; 3],
    ptr: *mut c_void,
    _rest: *mut c_void,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Variant>() == 24);

/// `Ok` for a success HRESULT, else an error naming `what` and the code (COM, ConPTY).
pub(super) fn hr(what: &str, h: HRESULT) -> io::Result<()> {
    if h >= 0 {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{what}: HRESULT {:#010x}",
            h as u32
        )))
    }
}

/// A COM interface pointer, released on drop.
struct Com(*mut c_void);

impl Com {
    /// The function in slot `index` of the object's vtable.
    ///
    /// # Safety
    /// `index` must be a slot of the interface this pointer is, and `F` its signature.
    unsafe fn slot<F: Copy>(&self, index: usize) -> F {
        // SAFETY: a COM object starts with a pointer to its vtable, an array of function
        // pointers at least `index + 1` long (the caller's promise).
        unsafe {
            let vtable = *(self.0 as *const *const usize);
            std::mem::transmute_copy(&*vtable.add(index))
        }
    }

    fn query(&self, iid: &GUID) -> io::Result<Com> {
        let mut out = null_mut();
        // SAFETY: slot 0 of every interface is QueryInterface(this, riid, ppv).
        let f: unsafe extern "system" fn(*mut c_void, *const GUID, *mut *mut c_void) -> HRESULT =
            unsafe { self.slot(QUERY_INTERFACE) };
        // SAFETY: `iid` and `out` are valid for the call.
        hr("QueryInterface", unsafe { f(self.0, iid, &mut out) })?;
        Ok(Com(out))
    }

    fn get_obj(&self, index: usize, what: &str) -> io::Result<Com> {
        let mut out = null_mut();
        // SAFETY: the caller names a `get_X(IFoo**)` slot of this interface.
        let f: unsafe extern "system" fn(*mut c_void, *mut *mut c_void) -> HRESULT =
            unsafe { self.slot(index) };
        // SAFETY: `out` is a valid place for the interface pointer.
        hr(what, unsafe { f(self.0, &mut out) })?;
        Ok(Com(out))
    }

    fn get_i32(&self, index: usize, what: &str) -> io::Result<i32> {
        let mut out = 0i32;
        // SAFETY: the caller names a `get_X(LONG*)` (or enum*) slot of this interface.
        let f: unsafe extern "system" fn(*mut c_void, *mut i32) -> HRESULT =
            unsafe { self.slot(index) };
        // SAFETY: `out` is a valid place for the value.
        hr(what, unsafe { f(self.0, &mut out) })?;
        Ok(out)
    }

    fn put_i32(&self, index: usize, value: i32, what: &str) -> io::Result<()> {
        // SAFETY: the caller names a `put_X(LONG)` (or enum) slot of this interface.
        let f: unsafe extern "system" fn(*mut c_void, i32) -> HRESULT = unsafe { self.slot(index) };
        // SAFETY: a plain value argument.
        hr(what, unsafe { f(self.0, value) })
    }

    fn get_bool(&self, index: usize, what: &str) -> io::Result<bool> {
        let mut out = 0i16;
        // SAFETY: the caller names a `get_X(VARIANT_BOOL*)` slot of this interface.
        let f: unsafe extern "system" fn(*mut c_void, *mut i16) -> HRESULT =
            unsafe { self.slot(index) };
        // SAFETY: `out` is a valid place for the value.
        hr(what, unsafe { f(self.0, &mut out) })?;
        Ok(out != 0)
    }

    fn put_bool(&self, index: usize, value: bool, what: &str) -> io::Result<()> {
        // SAFETY: the caller names a `put_X(VARIANT_BOOL)` slot of this interface.
        let f: unsafe extern "system" fn(*mut c_void, i16) -> HRESULT = unsafe { self.slot(index) };
        // SAFETY: a plain value argument.
        hr(what, unsafe {
            f(self.0, if value { VARIANT_TRUE } else { 0 })
        })
    }

    fn get_str(&self, index: usize, what: &str) -> io::Result<String> {
        let mut out: BSTR = null_mut();
        // SAFETY: the caller names a `get_X(BSTR*)` slot of this interface.
        let f: unsafe extern "system" fn(*mut c_void, *mut BSTR) -> HRESULT =
            unsafe { self.slot(index) };
        // SAFETY: `out` is a valid place for the BSTR the callee allocates.
        hr(what, unsafe { f(self.0, &mut out) })?;
        Ok(take_bstr(out))
    }

    fn put_str(&self, index: usize, value: &str, what: &str) -> io::Result<()> {
        let b = Bstr::new(value)?;
        // SAFETY: the caller names a `put_X(BSTR)` slot of this interface.
        let f: unsafe extern "system" fn(*mut c_void, BSTR) -> HRESULT =
            unsafe { self.slot(index) };
        // SAFETY: `b` is a valid BSTR for the call; the callee copies it.
        hr(what, unsafe { f(self.0, b.0) })
    }
}

impl Drop for Com {
    fn drop(&mut self) {
        if self.0.is_null() {
            return;
        }
        // SAFETY: slot 2 of every interface is Release(this); this pointer holds one
        // reference, given up here once.
        unsafe {
            let f: unsafe extern "system" fn(*mut c_void) -> u32 = self.slot(RELEASE);
            f(self.0);
        }
    }
}

struct Bstr(BSTR);

impl Bstr {
    fn new(s: &str) -> io::Result<Bstr> {
        let w = wide(s);
        // SAFETY: `w` is NUL-terminated; the BSTR is a copy owned by `Bstr`.
        let b = unsafe { SysAllocString(w.as_ptr()) };
        if b.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        Ok(Bstr(b))
    }
}

impl Drop for Bstr {
    fn drop(&mut self) {
        // SAFETY: allocated by SysAllocString, freed once here.
        unsafe { SysFreeString(self.0) };
    }
}

fn take_bstr(b: BSTR) -> String {
    if b.is_null() {
        return String::new();
    }
    // SAFETY: `b` is a BSTR from the callee: SysStringLen UTF-16 units at `b`.
    let s = unsafe {
        String::from_utf16_lossy(std::slice::from_raw_parts(b, SysStringLen(b) as usize))
    };
    // SAFETY: the caller owns a BSTR returned by a getter; freed once here.
    unsafe { SysFreeString(b) };
    s
}

/// The firewall's policy object, in this thread's (multithreaded) COM apartment.
pub struct Firewall {
    policy: Com,
    rules: Com,
}

fn create(clsid: &GUID, iid: &GUID, what: &str) -> io::Result<Com> {
    let mut out = null_mut();
    // SAFETY: `clsid`, `iid` and `out` are valid; no aggregation.
    hr(what, unsafe {
        CoCreateInstance(clsid, null_mut(), CLSCTX_INPROC_SERVER, iid, &mut out)
    })?;
    Ok(Com(out))
}

impl Firewall {
    pub fn open() -> io::Result<Firewall> {
        // S_FALSE (already initialised) is fine; RPC_E_CHANGED_MODE means the thread is in
        // a single-threaded apartment, where the calls below work as well.
        // SAFETY: no reserved pointer; initialises COM for this thread.
        let h = unsafe { CoInitializeEx(std::ptr::null(), COINIT_MULTITHREADED as u32) };
        if h < 0 && h as u32 != 0x8001_0106 {
            hr("CoInitializeEx", h)?;
        }
        let policy = create(
            &NetFwPolicy2,
            &IID_INETFWPOLICY2,
            "CoCreateInstance(NetFwPolicy2)",
        )?;
        let rules = policy.get_obj(POLICY_GET_RULES, "INetFwPolicy2::get_Rules")?;
        Ok(Firewall { policy, rules })
    }

    /// Whether local rules take effect (Group Policy may say they do not).
    pub fn local_rules_apply(&self) -> io::Result<bool> {
        let state = self.policy.get_i32(
            POLICY_GET_LOCAL_POLICY_MODIFY_STATE,
            "INetFwPolicy2::get_LocalPolicyModifyState",
        )?;
        Ok(state == NET_FW_MODIFY_STATE_OK)
    }

    fn item(&self, name: &str) -> Option<Com> {
        let b = Bstr::new(name).ok()?;
        let mut out = null_mut();
        // SAFETY: slot 10 of INetFwRules is Item(BSTR, INetFwRule**).
        let f: unsafe extern "system" fn(*mut c_void, BSTR, *mut *mut c_void) -> HRESULT =
            unsafe { self.rules.slot(RULES_ITEM) };
        // SAFETY: `b` and `out` are valid for the call.
        let h = unsafe { f(self.rules.0, b.0, &mut out) };
        (h >= 0 && !out.is_null()).then_some(Com(out))
    }

    /// Whether a rule called `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.item(name).is_some()
    }

    /// The names of every rule the firewall holds (INetFwRules::get__NewEnum, walked with
    /// IEnumVARIANT::Next one rule at a time).
    pub fn names(&self) -> io::Result<Vec<String>> {
        let unknown = self
            .rules
            .get_obj(RULES_GET_NEW_ENUM, "INetFwRules::get__NewEnum")?;
        let rules = unknown.query(&IID_IENUMVARIANT)?;
        // SAFETY: slot 3 of IEnumVARIANT is Next(this, ULONG celt, VARIANT*, ULONG* fetched).
        let next: unsafe extern "system" fn(*mut c_void, u32, *mut Variant, *mut u32) -> HRESULT =
            unsafe { rules.slot(ENUM_NEXT) };
        let mut out = Vec::new();
        // Bounded: a machine holds hundreds of rules, not a million.
        for _ in 0..1_000_000 {
            let mut v = Variant {
                vt: 0,
                _reserved: [0; 3],
                ptr: null_mut(),
                _rest: null_mut(),
            };
            let mut fetched = 0u32;
            // SAFETY: room for the one VARIANT asked for; `fetched` a valid out place.
            hr("IEnumVARIANT::Next", unsafe {
                next(rules.0, 1, &mut v, &mut fetched)
            })?;
            if fetched == 0 {
                return Ok(out);
            }
            if (v.vt == VT_DISPATCH || v.vt == VT_UNKNOWN) && !v.ptr.is_null() {
                // The VARIANT's reference is ours now: released when `obj` drops, which is
                // all VariantClear would do for these two types.
                let obj = Com(v.ptr);
                out.push(
                    obj.query(&IID_INETFWRULE)?
                        .get_str(RULE_GET_NAME, "get_Name")?,
                );
            }
        }
        Err(io::Error::other("the firewall's rule list does not end"))
    }

    /// Removes every rule called `name` (Remove takes one at a time).
    pub fn remove(&self, name: &str) -> io::Result<()> {
        // Bounded: a rule that will not go away is an error, not a spin.
        for _ in 0..64 {
            if self.item(name).is_none() {
                return Ok(());
            }
            self.rules
                .put_str(RULES_REMOVE, name, "INetFwRules::Remove")?;
        }
        Err(io::Error::other(format!(
            "firewall rule `{name}` keeps coming back"
        )))
    }

    /// Adds `rule` (the caller removed any of the same name first).
    pub fn add(&self, rule: &FirewallRule) -> io::Result<()> {
        let r = create(&NetFwRule, &IID_INETFWRULE3, "CoCreateInstance(NetFwRule)")?;
        r.put_str(RULE_PUT_NAME, &rule.name, "put_Name")?;
        r.put_str(
            RULE_PUT_DESCRIPTION,
            "made by cordon setup --elevated",
            "put_Description",
        )?;
        r.put_str(RULE_PUT_GROUPING, "cordon", "put_Grouping")?;
        r.put_i32(
            RULE_PUT_DIRECTION,
            if rule.outbound {
                NET_FW_RULE_DIR_OUT
            } else {
                1
            },
            "put_Direction",
        )?;
        // Protocol before addresses: the firewall checks address syntax against it.
        r.put_i32(RULE_PUT_PROTOCOL, i32::from(rule.protocol), "put_Protocol")?;
        r.put_str(
            RULE_PUT_REMOTE_ADDRESSES,
            &rule.remote_addresses,
            "put_RemoteAddresses",
        )?;
        r.put_i32(
            RULE_PUT_PROFILES,
            if rule.all_profiles {
                NET_FW_PROFILE2_ALL
            } else {
                1
            },
            "put_Profiles",
        )?;
        r.put_i32(
            RULE_PUT_ACTION,
            if rule.block { NET_FW_ACTION_BLOCK } else { 1 },
            "put_Action",
        )?;
        r.put_str(
            RULE3_PUT_LOCAL_USER_AUTHORIZED_LIST,
            &rule.local_user_sddl,
            "put_LocalUserAuthorizedList",
        )?;
        r.put_bool(RULE_PUT_ENABLED, true, "put_Enabled")?;
        let base = r.query(&IID_INETFWRULE)?;
        // SAFETY: slot 8 of INetFwRules is Add(INetFwRule*).
        let f: unsafe extern "system" fn(*mut c_void, *mut c_void) -> HRESULT =
            unsafe { self.rules.slot(RULES_ADD) };
        // SAFETY: `base` is a live INetFwRule; Add takes its own reference.
        hr("INetFwRules::Add", unsafe { f(self.rules.0, base.0) })
    }

    /// The rule called `name` as the firewall holds it, or None.
    pub fn read(&self, name: &str) -> io::Result<Option<FirewallRule>> {
        let Some(r) = self.item(name) else {
            return Ok(None);
        };
        let r = r.query(&IID_INETFWRULE3)?;
        let enabled = r.get_bool(RULE_GET_ENABLED, "get_Enabled")?;
        let protocol = r.get_i32(RULE_GET_PROTOCOL, "get_Protocol")?;
        Ok(Some(FirewallRule {
            name: r.get_str(RULE_GET_NAME, "get_Name")?,
            outbound: r.get_i32(RULE_GET_DIRECTION, "get_Direction")? == NET_FW_RULE_DIR_OUT,
            // A disabled block rule blocks nothing: read back as not blocking.
            block: enabled && r.get_i32(RULE_GET_ACTION, "get_Action")? == NET_FW_ACTION_BLOCK,
            protocol: u16::try_from(protocol).unwrap_or(0),
            remote_addresses: r.get_str(RULE_GET_REMOTE_ADDRESSES, "get_RemoteAddresses")?,
            local_user_sddl: r.get_str(
                RULE3_GET_LOCAL_USER_AUTHORIZED_LIST,
                "get_LocalUserAuthorizedList",
            )?,
            all_profiles: r.get_i32(RULE_GET_PROFILES, "get_Profiles")? == NET_FW_PROFILE2_ALL,
        }))
    }
}
