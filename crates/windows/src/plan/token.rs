//! The restricted token, as CreateRestrictedToken's arguments.

use crate::sid::Sid;

/// The restricted token, as CreateRestrictedToken's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    /// DISABLE_MAX_PRIVILEGE | LUA_TOKEN | WRITE_RESTRICTED.
    pub flags: u32,
    /// Checked for every write: a write is allowed only where an ACE grants one of these.
    pub restricting: Vec<TokenSid>,
    /// Privileges enabled again after DISABLE_MAX_PRIVILEGE (AdjustTokenPrivileges).
    pub keep_privileges: Vec<&'static str>,
    /// TokenDefaultDacl: what objects the command creates without a parent ACL (pipes,
    /// events) grant, so its own children can open them under the restricted token.
    pub default_dacl: Vec<TokenSid>,
}

/// A SID in the token spec; some are known only at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSid {
    Fixed(Sid),
    /// The logon session's SID (TokenGroups, SE_GROUP_LOGON_ID): the console, window
    /// station and desktop grant it, so console programs keep working.
    Logon,
    /// The token's own user.
    User,
}

pub const DISABLE_MAX_PRIVILEGE: u32 = 0x1;
pub const LUA_TOKEN: u32 = 0x4;
pub const WRITE_RESTRICTED: u32 = 0x8;

/// The token for a workspace whose sandbox-write SID is `write_sid`.
pub fn token_spec(write_sid: &Sid) -> TokenSpec {
    TokenSpec {
        flags: DISABLE_MAX_PRIVILEGE | LUA_TOKEN | WRITE_RESTRICTED,
        // Everyone is among them (as in the reference design) so what every program may
        // write, such as \\.\NUL and the console, stays writable; the audit closes the
        // folders that admits. One write SID per workspace keeps the token small.
        restricting: vec![
            TokenSid::Fixed(write_sid.clone()),
            TokenSid::Logon,
            TokenSid::Fixed(Sid::everyone()),
        ],
        keep_privileges: vec!["SeChangeNotifyPrivilege"],
        default_dacl: vec![
            TokenSid::User,
            TokenSid::Fixed(Sid::local_system()),
            TokenSid::Logon,
            TokenSid::Fixed(write_sid.clone()),
        ],
    }
}
