//! Elevated mode's one-time setup as data: sandbox accounts, firewall rules and WFP filters.
//!
//! `cordon setup --elevated` (the only step that needs an administrator) applies these once;
//! a run only reads back that they are there.

use crate::sid::Sid;

pub const GROUP: &str = "CordonSandboxUsers";
pub const OFFLINE_ACCOUNT: &str = "CordonSandboxOffline";
pub const ONLINE_ACCOUNT: &str = "CordonSandboxOnline";

/// NetUserAdd's USER_INFO_1 flags: UF_SCRIPT | UF_DONT_EXPIRE_PASSWD | UF_PASSWD_CANT_CHANGE.
pub const ACCOUNT_FLAGS: u32 = 0x0001 | 0x1_0000 | 0x0040;
/// USER_PRIV_USER: an ordinary user, never an administrator.
pub const ACCOUNT_PRIV: u32 = 1;

/// One sandbox account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: &'static str,
    /// Whether the firewall lets it out (the online account serves `--net full`).
    pub online: bool,
}

/// The accounts and group, and how their passwords are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountsPlan {
    pub group: &'static str,
    pub accounts: Vec<Account>,
    /// Random bytes per password (from the OS's CSPRNG), kept only encrypted with DPAPI
    /// (CryptProtectData, current-user scope) in cordon's state folder, which is deny-read
    /// for the sandbox.
    pub password_bytes: usize,
    /// Winlogon's SpecialAccounts\UserList: hidden from the logon screen.
    pub hide_from_logon: bool,
}

pub fn accounts_plan() -> AccountsPlan {
    AccountsPlan {
        group: GROUP,
        accounts: vec![
            Account {
                name: OFFLINE_ACCOUNT,
                online: false,
            },
            Account {
                name: ONLINE_ACCOUNT,
                online: true,
            },
        ],
        password_bytes: 32,
        hide_from_logon: true,
    }
}

/// A sandbox account's password from `bytes` of CSPRNG output: six bits per character from
/// a 64-symbol alphabet (no modulo bias), then one character of each class so Windows'
/// complexity policy accepts it. Nobody types it: it lives only under DPAPI.
pub fn password_from(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect();
    out.push_str("Aa1!");
    out
}

/// What an INetFwRule3 holds, for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallRule {
    /// Rule name; cordon's rules all start with `cordon:` so setup finds and replaces them.
    pub name: String,
    /// NET_FW_RULE_DIR_OUT.
    pub outbound: bool,
    /// NET_FW_ACTION_BLOCK when true.
    pub block: bool,
    /// NET_FW_IP_PROTOCOL_ANY (256) or a protocol number.
    pub protocol: u16,
    /// RemoteAddresses in the firewall's syntax.
    pub remote_addresses: String,
    /// put_LocalUserAuthorizedList: an SDDL naming the account the rule applies to.
    pub local_user_sddl: String,
    /// NET_FW_PROFILE2_ALL.
    pub all_profiles: bool,
}

/// Every address except loopback, in the firewall's range syntax. Windows Firewall never
/// filters loopback and a block rule beats any allow rule, so "block all but the proxy" is
/// written as "block everything that is not loopback" here, and loopback is narrowed to the
/// proxy's ports by the WFP filters below.
pub const NOT_LOOPBACK: &str = "0.0.0.0-126.255.255.255,128.0.0.0-255.255.255.255,\
::-::0,::2-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

/// The firewall rules for the offline account, in the order setup installs them: the broad
/// block first, so a setup that stops half-way fails closed.
pub fn firewall_rules(offline: &Sid) -> Vec<FirewallRule> {
    let sddl = format!("O:LSD:(A;;CC;;;{offline})");
    vec![FirewallRule {
        name: format!("cordon: block {OFFLINE_ACCOUNT} (all but loopback)"),
        outbound: true,
        block: true,
        protocol: 256,
        remote_addresses: NOT_LOOPBACK.into(),
        local_user_sddl: sddl,
        all_profiles: true,
    }]
}

/// What a WFP filter matches, as data for FwpmFilterAdd0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WfpCondition {
    /// FWPM_CONDITION_ALE_USER_ID matched by a security descriptor allowing this SID.
    User(Sid),
    /// FWPM_CONDITION_IP_PROTOCOL.
    Protocol(u8),
    /// FWPM_CONDITION_IP_REMOTE_PORT equal to one of these.
    RemotePorts(Vec<u16>),
    /// FWPM_CONDITION_IP_REMOTE_PORT within `low..=high` (FWP_MATCH_RANGE).
    RemotePortRange(u16, u16),
    /// FWPM_CONDITION_FLAGS has FWP_CONDITION_FLAG_IS_LOOPBACK.
    Loopback,
}

/// What a filter does with the connections it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WfpAction {
    Block,
    Permit,
}

/// One filter at the ALE connect layers (v4 and v6) in cordon's own sublayer. Within a
/// sublayer WFP evaluates filters by weight, highest first, and the first that matches
/// decides; so a permit of higher weight carves an exception out of a broader block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WfpFilter {
    pub name: String,
    pub conditions: Vec<WfpCondition>,
    pub action: WfpAction,
    /// The weight range index (FWP_UINT8, 0..=15).
    pub weight: u8,
}

/// Weights: the proxy's permit above every block.
pub const WEIGHT_BLOCK: u8 = 1;
pub const WEIGHT_PERMIT: u8 = 15;

fn block(name: String, conditions: Vec<WfpCondition>) -> WfpFilter {
    WfpFilter {
        name,
        conditions,
        action: WfpAction::Block,
        weight: WEIGHT_BLOCK,
    }
}

/// Fixed GUIDs so setup finds, replaces and removes its own objects (and nothing else).
pub const WFP_PROVIDER: &str = "{6b1e7a52-4f0c-4c1e-9d0a-c0a1d0c0d001}";
pub const WFP_SUBLAYER: &str = "{6b1e7a52-4f0c-4c1e-9d0a-c0a1d0c0d002}";

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

/// DNS (53, and 853 for DNS over TLS), ICMP, and loopback other than the proxy's ports are
/// blocked for the offline account: names are resolved by cordon's proxy, never inside.
/// `proxy_ports` is one consecutive range (one proxy per concurrent `--net allow` run; each
/// proxy serves only its own run's processes), admitted by a permit of higher weight than
/// the loopback block.
pub fn wfp_filters(offline: &Sid, proxy_ports: &[u16]) -> Vec<WfpFilter> {
    let user = || WfpCondition::User(offline.clone());
    let mut out = Vec::new();
    for proto in [UDP, TCP] {
        out.push(block(
            format!(
                "cordon: no DNS ({})",
                if proto == UDP { "udp" } else { "tcp" }
            ),
            vec![
                user(),
                WfpCondition::Protocol(proto),
                WfpCondition::RemotePorts(vec![53, 853]),
            ],
        ));
    }
    for proto in [ICMP, ICMPV6] {
        out.push(block(
            format!("cordon: no ICMP (protocol {proto})"),
            vec![user(), WfpCondition::Protocol(proto)],
        ));
    }
    if let (Some(&low), Some(&high)) = (proxy_ports.iter().min(), proxy_ports.iter().max()) {
        out.push(WfpFilter {
            name: format!("cordon: loopback TCP to the proxy's ports {low}-{high}"),
            conditions: vec![
                user(),
                WfpCondition::Loopback,
                WfpCondition::Protocol(TCP),
                WfpCondition::RemotePortRange(low, high),
            ],
            action: WfpAction::Permit,
            weight: WEIGHT_PERMIT,
        });
    }
    out.push(block(
        "cordon: no other loopback".into(),
        vec![user(), WfpCondition::Loopback],
    ));
    out
}

/// Whether `ports` is one run of consecutive ports, as the permit filter's range needs.
pub fn consecutive(ports: &[u16]) -> bool {
    ports.windows(2).all(|w| w[1] == w[0].wrapping_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_name_only_the_offline_account_and_block_first() {
        let sid = Sid::new(5, &[21, 7, 8, 9, 1005]);
        let rules = firewall_rules(&sid);
        assert!(rules[0].block && rules[0].outbound && rules[0].all_profiles);
        assert_eq!(
            rules[0].local_user_sddl,
            "O:LSD:(A;;CC;;;S-1-5-21-7-8-9-1005)"
        );
        assert!(!rules[0].remote_addresses.contains("127.0.0.1"));
        let filters = wfp_filters(&sid, &[3128]);
        assert!(filters
            .iter()
            .all(|f| f.conditions[0] == WfpCondition::User(sid.clone())));
        assert!(filters.iter().any(|f| f
            .conditions
            .contains(&WfpCondition::RemotePorts(vec![53, 853]))));
        let permit = filters
            .iter()
            .find(|f| f.action == WfpAction::Permit)
            .expect("a permit for the proxy");
        assert!(permit
            .conditions
            .contains(&WfpCondition::RemotePortRange(3128, 3128)));
    }

    #[test]
    fn the_proxy_range_is_the_only_loopback_permit_and_outweighs_every_block() {
        let sid = Sid::new(5, &[21, 7, 8, 9, 1005]);
        let ports: Vec<u16> = (47_128..=47_135).collect();
        assert!(consecutive(&ports) && !consecutive(&[1, 3]));
        let filters = wfp_filters(&sid, &ports);
        let permits: Vec<&WfpFilter> = filters
            .iter()
            .filter(|f| f.action == WfpAction::Permit)
            .collect();
        assert_eq!(permits.len(), 1);
        let p = permits[0];
        assert_eq!(
            p.conditions,
            vec![
                WfpCondition::User(sid.clone()),
                WfpCondition::Loopback,
                WfpCondition::Protocol(TCP),
                WfpCondition::RemotePortRange(47_128, 47_135),
            ],
            "TCP only (UDP on loopback stays blocked), the account only"
        );
        assert!(
            p.name.contains("47128-47135"),
            "a changed range renames it: setup notices"
        );
        assert!(filters
            .iter()
            .filter(|f| f.action == WfpAction::Block)
            .all(|f| f.weight < p.weight));
        // The broad loopback block is there, so every other loopback port stays shut.
        assert!(filters.iter().any(|f| f.action == WfpAction::Block
            && f.conditions == vec![WfpCondition::User(sid.clone()), WfpCondition::Loopback]));
        // No proxy ports: no permit at all.
        assert!(wfp_filters(&sid, &[])
            .iter()
            .all(|f| f.action == WfpAction::Block));
    }

    #[test]
    fn passwords_are_long_and_meet_complexity() {
        let p = password_from(&[0, 63, 64, 255, 7, 200, 31, 32]);
        assert_eq!(p, "A_A_HIfgAa1!");
        let long = password_from(&[9u8; 32]);
        assert_eq!(long.len(), 36);
        assert!(long.chars().any(|c| c.is_ascii_uppercase()));
        assert!(long.chars().any(|c| c.is_ascii_lowercase()));
        assert!(long.chars().any(|c| c.is_ascii_digit()));
    }

    #[test]
    fn accounts_are_plain_users() {
        let plan = accounts_plan();
        assert_eq!(plan.accounts.len(), 2);
        assert_eq!(ACCOUNT_PRIV, 1);
        assert!(plan.accounts.iter().any(|a| !a.online));
        assert!(plan.password_bytes >= 16);
    }
}
