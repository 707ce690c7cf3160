//! `cordon setup --elevated` as data: what the one administrator step creates, in order, and
//! how what is on the machine is compared with it (for `cordon doctor`, and for refusing
//! elevated mode while something is missing).
//!
//! The executor (`exec::setup`) applies a [`SetupPlan`] and reads the machine back into an
//! [`Observed`]; [`compare`] turns that into a [`SetupReport`]. Both halves of the judgement
//! live here so they are tested on every platform.

use std::fmt;

use super::acl::{self, AceKind, AclEdit, Inherit, Reason};
use super::network::{self, AccountsPlan, FirewallRule, WfpFilter};
use super::InstalledAccounts;
use crate::sid::Sid;
use crate::winpath::WinPath;

/// HKLM key whose DWORD values named after accounts (0) hide them from the logon screen.
pub const WINLOGON_USER_LIST: &str =
    r"SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon\SpecialAccounts\UserList";

/// Every firewall rule cordon makes starts with this, so setup finds and replaces its own.
pub const FIREWALL_PREFIX: &str = "cordon: ";

/// What the sandbox accounts may and may not do as logons (LsaAddAccountRights): a batch
/// logon is how cordon gets their token (LogonUserW, LOGON32_LOGON_BATCH, no profile), and a
/// leaked password is no use over the network or Remote Desktop.
pub const RIGHTS: [&str; 3] = [
    "SeBatchLogonRight",
    "SeDenyNetworkLogonRight",
    "SeDenyRemoteInteractiveLogonRight",
];

/// The loopback ports cordon's proxies bind in elevated mode, one per concurrent `--net
/// allow` run (each serves only its own run's processes). Fixed, because the WFP filter that
/// admits the offline account's loopback traffic to them is persistent (installed once by an
/// administrator, not per run). Consecutive: the filter matches them as one range.
pub const ELEVATED_PROXY_PORTS: [u16; 8] = [
    47_128, 47_129, 47_130, 47_131, 47_132, 47_133, 47_134, 47_135,
];

/// The message for a run that needs elevated mode on a machine where setup is missing.
pub const SETUP_NEEDED: &str = "run `cordon setup --elevated` as an administrator";

/// What the planner is told about the machine for setup.
#[derive(Debug, Clone)]
pub struct SetupInput {
    /// cordon's state folder (`%LOCALAPPDATA%\cordon\state`) of the user cordon runs for.
    pub state_dir: WinPath,
    /// Loopback ports the offline account may reach (cordon's proxy).
    pub proxy_ports: Vec<u16>,
    /// The SIDs, once the group and accounts exist (the network half names them).
    pub installed: Option<InstalledAccounts>,
}

/// Everything `cordon setup --elevated` does, in order. Re-running it converges: existing
/// accounts keep their SIDs and get a fresh password, cordon's firewall rules and WFP
/// filters are removed and installed again, other objects are left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupPlan {
    pub accounts: AccountsPlan,
    /// Where each account's DPAPI-protected password is kept.
    pub password_files: Vec<(&'static str, WinPath)>,
    /// Value names under [`WINLOGON_USER_LIST`] set to DWORD 0.
    pub hide_from_logon: Vec<&'static str>,
    /// (account, right) pairs granted with LsaAddAccountRights.
    pub rights: Vec<(&'static str, &'static str)>,
    pub state_dir: WinPath,
    /// Deny-read for the sandbox group on the state folder (passwords, approvals, caches);
    /// known once the group's SID is.
    pub state_acl: Option<AclEdit>,
    /// The offline account's SID, when known; the rules below are empty until then.
    pub offline: Option<Sid>,
    /// In install order: the broad block first, so a setup that stops half-way fails closed.
    pub firewall: Vec<FirewallRule>,
    pub wfp: Vec<WfpFilter>,
    pub proxy_ports: Vec<u16>,
}

/// The file an account's protected password is kept in.
pub fn password_file(state_dir: &WinPath, account: &str) -> WinPath {
    state_dir
        .child("elevated")
        .child(&format!("{account}.dpapi"))
}

pub fn setup_plan(input: &SetupInput) -> SetupPlan {
    let accounts = network::accounts_plan();
    let names: Vec<&'static str> = accounts.accounts.iter().map(|a| a.name).collect();
    let password_files = names
        .iter()
        .map(|n| (*n, password_file(&input.state_dir, n)))
        .collect();
    let hide_from_logon = if accounts.hide_from_logon {
        names.clone()
    } else {
        Vec::new()
    };
    let rights = names
        .iter()
        .flat_map(|n| RIGHTS.iter().map(move |r| (*n, *r)))
        .collect();
    let state_acl = input.installed.as_ref().map(|i| AclEdit {
        path: input.state_dir.clone(),
        kind: AceKind::Deny,
        sid: i.group.clone(),
        mask: acl::DENY_READ,
        inherit: Inherit::TREE,
        reason: Reason::Secret,
    });
    let offline = input.installed.as_ref().map(|i| i.offline.clone());
    let (firewall, wfp) = match &offline {
        Some(sid) => (
            network::firewall_rules(sid),
            network::wfp_filters(sid, &input.proxy_ports),
        ),
        None => (Vec::new(), Vec::new()),
    };
    SetupPlan {
        accounts,
        password_files,
        hide_from_logon,
        rights,
        state_dir: input.state_dir.clone(),
        state_acl,
        offline,
        firewall,
        wfp,
        proxy_ports: input.proxy_ports.clone(),
    }
}

/// The dry run: one numbered line per step, as `cordon setup --elevated --dry-run` prints it.
impl fmt::Display for SetupPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut n = 0;
        let mut step = |f: &mut fmt::Formatter<'_>, text: String| {
            n += 1;
            writeln!(f, "{n:>2}. {text}")
        };
        let a = &self.accounts;
        step(f, format!("local group {} (created if absent)", a.group))?;
        for acc in &a.accounts {
            let file = self
                .password_files
                .iter()
                .find(|(name, _)| *name == acc.name)
                .map(|(_, p)| p.to_string())
                .unwrap_or_default();
            step(
                f,
                format!(
                    "local user {} ({}; plain user, password never expires, cannot change it), member of {}; a fresh {}-byte random password, kept only DPAPI-protected in {file}",
                    acc.name,
                    if acc.online { "--net full" } else { "offline" },
                    a.group,
                    a.password_bytes
                ),
            )?;
        }
        for name in &self.hide_from_logon {
            step(
                f,
                format!(
                    r"HKLM\{WINLOGON_USER_LIST}\{name} = DWORD 0 (hidden from the logon screen)"
                ),
            )?;
        }
        for (name, right) in &self.rights {
            step(f, format!("user right {right} for {name}"))?;
        }
        let sid = self.offline.as_ref().map_or_else(
            || format!("<SID of {}>", network::OFFLINE_ACCOUNT),
            Sid::to_string,
        );
        step(
            f,
            format!("remove firewall rules named `{FIREWALL_PREFIX}*` and cordon's WFP filters (sublayer {})", network::WFP_SUBLAYER),
        )?;
        if self.firewall.is_empty() {
            step(
                f,
                format!(
                    "firewall: outbound block for {} on every non-loopback address, all protocols and profiles (scoped by O:LSD:(A;;CC;;;{sid}))",
                    network::OFFLINE_ACCOUNT
                ),
            )?;
        }
        for r in &self.firewall {
            step(
                f,
                format!(
                    "firewall rule `{}`: {} {}, protocol {}, remote {}, user {}{}",
                    r.name,
                    if r.outbound { "outbound" } else { "inbound" },
                    if r.block { "block" } else { "allow" },
                    if r.protocol == 256 {
                        "any".to_string()
                    } else {
                        r.protocol.to_string()
                    },
                    r.remote_addresses,
                    r.local_user_sddl,
                    if r.all_profiles { ", all profiles" } else { "" },
                ),
            )?;
        }
        step(
            f,
            format!(
                "WFP: provider {} and persistent sublayer {}",
                network::WFP_PROVIDER,
                network::WFP_SUBLAYER
            ),
        )?;
        if self.wfp.is_empty() {
            step(
                f,
                format!(
                    "WFP filters for {sid}: block DNS (53, 853), ICMP, UDP on loopback, loopback TCP except ports {}-{}",
                    self.proxy_ports.iter().min().unwrap_or(&0),
                    self.proxy_ports.iter().max().unwrap_or(&0)
                ),
            )?;
        }
        for w in &self.wfp {
            step(
                f,
                format!(
                    "WFP filter `{}` (ALE connect v4 and v6, {}) for {sid}",
                    w.name,
                    match w.action {
                        network::WfpAction::Block => "block",
                        network::WfpAction::Permit => "permit, above the blocks",
                    }
                ),
            )?;
        }
        step(
            f,
            format!(
                "deny read for {} on {} (and below)",
                a.group, self.state_dir
            ),
        )
    }
}

/// An account as read back from the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedAccount {
    pub name: String,
    /// None: no such account (LookupAccountNameW failed).
    pub sid: Option<Sid>,
    pub in_group: bool,
    pub password: Result<(), String>,
    pub hidden: bool,
    /// The rights of [`RIGHTS`] the account holds.
    pub rights: Vec<String>,
}

/// A machine's elevated set-up as read back by `exec::setup::observe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub group: Option<Sid>,
    pub accounts: Vec<ObservedAccount>,
    /// cordon's rules (named [`FIREWALL_PREFIX`]…) read back, or why the firewall could
    /// not be asked.
    pub firewall: Result<Vec<FirewallRule>, String>,
    /// INetFwPolicy2::LocalPolicyModifyState is not "overridden by Group Policy".
    pub firewall_local_rules_apply: Result<bool, String>,
    /// Names of the filters in cordon's sublayer, or why WFP could not be asked.
    pub wfp: Result<Vec<String>, String>,
    /// Whether the state folder has the group's deny-read ACE.
    pub state_denied: bool,
}

/// One thing setup should have made, and whether it is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

/// What is in place, for `cordon doctor` and for the run's refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupReport {
    pub checks: Vec<Check>,
    /// The SIDs, when the group and both accounts exist.
    pub installed: Option<InstalledAccounts>,
}

impl SetupReport {
    pub fn complete(&self) -> bool {
        self.installed.is_some() && self.checks.iter().all(|c| c.ok)
    }

    pub fn missing(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.ok)
    }

    /// Why elevated mode refuses to run (exit 125), naming what is missing.
    pub fn refusal(&self) -> String {
        let missing: Vec<String> = self
            .missing()
            .map(|c| format!("{}: {}", c.what, c.detail))
            .collect();
        format!(
            "elevated mode is not set up on this machine ({}); {SETUP_NEEDED}",
            missing.join("; ")
        )
    }
}

/// Whether a rule read back from the firewall is the one setup makes. Remote addresses are
/// compared as a set of ranges, case-insensitively, since the firewall may reorder them.
pub fn same_rule(got: &FirewallRule, want: &FirewallRule) -> bool {
    let ranges = |s: &str| {
        let mut v: Vec<String> = s
            .split(',')
            .map(|r| r.trim().to_ascii_lowercase())
            .filter(|r| !r.is_empty())
            .collect();
        v.sort();
        v
    };
    got.name == want.name
        && got.outbound == want.outbound
        && got.block == want.block
        && got.protocol == want.protocol
        && got.all_profiles == want.all_profiles
        && got
            .local_user_sddl
            .eq_ignore_ascii_case(&want.local_user_sddl)
        && ranges(&got.remote_addresses) == ranges(&want.remote_addresses)
}

/// Compares the machine with what setup makes. The firewall rules and WFP filters expected
/// are those for the offline account's SID as it exists on the machine.
pub fn compare(observed: &Observed, proxy_ports: &[u16]) -> SetupReport {
    let mut checks = Vec::new();
    let mut check =
        |what: String, ok: bool, detail: String| checks.push(Check { what, ok, detail });
    let plan = network::accounts_plan();
    check(
        format!("group {}", plan.group),
        observed.group.is_some(),
        observed
            .group
            .as_ref()
            .map_or_else(|| "absent".into(), Sid::to_string),
    );
    let mut sids = Vec::new();
    for want in &plan.accounts {
        let got = observed.accounts.iter().find(|a| a.name == want.name);
        let Some(got) = got.filter(|a| a.sid.is_some()) else {
            check(format!("account {}", want.name), false, "absent".into());
            sids.push(None);
            continue;
        };
        sids.push(got.sid.clone());
        let sid = got.sid.as_ref().map(Sid::to_string).unwrap_or_default();
        check(format!("account {}", want.name), true, sid);
        check(
            format!("{} in {}", want.name, plan.group),
            got.in_group,
            if got.in_group {
                "member"
            } else {
                "not a member"
            }
            .into(),
        );
        check(
            format!("password of {}", want.name),
            got.password.is_ok(),
            got.password
                .clone()
                .err()
                .unwrap_or_else(|| "kept under DPAPI".into()),
        );
        if plan.hide_from_logon {
            check(
                format!("{} hidden from the logon screen", want.name),
                got.hidden,
                if got.hidden { "hidden" } else { "visible" }.into(),
            );
        }
        let lacking: Vec<&str> = RIGHTS
            .iter()
            .copied()
            .filter(|r| !got.rights.iter().any(|g| g.eq_ignore_ascii_case(r)))
            .collect();
        check(
            format!("user rights of {}", want.name),
            lacking.is_empty(),
            if lacking.is_empty() {
                "present".into()
            } else {
                format!("lacking {}", lacking.join(", "))
            },
        );
    }
    let installed = match (&observed.group, sids.first(), sids.get(1)) {
        (Some(group), Some(Some(offline)), Some(Some(online))) => Some(InstalledAccounts {
            group: group.clone(),
            offline: offline.clone(),
            online: online.clone(),
        }),
        _ => None,
    };
    match (&observed.firewall, &installed) {
        (Err(why), _) => check("firewall rules".into(), false, why.clone()),
        (Ok(_), None) => check(
            "firewall rules".into(),
            false,
            "the offline account is absent".into(),
        ),
        (Ok(rules), Some(i)) => {
            for want in network::firewall_rules(&i.offline) {
                let got = rules.iter().find(|r| r.name == want.name);
                let (ok, detail) = match got {
                    None => (false, "absent".to_string()),
                    Some(r) if same_rule(r, &want) => {
                        (true, "present, scoped to the offline account".into())
                    }
                    Some(r) => (false, format!("differs from what setup makes: {r:?}")),
                };
                check(format!("firewall rule `{}`", want.name), ok, detail);
            }
        }
    }
    match &observed.firewall_local_rules_apply {
        Ok(true) => check("local firewall rules apply".into(), true, "yes".into()),
        Ok(false) => check(
            "local firewall rules apply".into(),
            false,
            "Group Policy overrides local firewall rules on this machine".into(),
        ),
        Err(why) => check("local firewall rules apply".into(), false, why.clone()),
    }
    match (&observed.wfp, &installed) {
        (Err(why), _) => check("WFP filters".into(), false, why.clone()),
        (Ok(_), None) => check(
            "WFP filters".into(),
            false,
            "the offline account is absent".into(),
        ),
        (Ok(names), Some(i)) => {
            for want in network::wfp_filters(&i.offline, proxy_ports) {
                let ok = names.contains(&want.name);
                check(
                    format!("WFP filter `{}`", want.name),
                    ok,
                    if ok { "present" } else { "absent" }.into(),
                );
            }
        }
    }
    check(
        "state folder hidden from the sandbox".into(),
        observed.state_denied,
        if observed.state_denied {
            "deny-read ACE present"
        } else {
            "no deny-read ACE for the group"
        }
        .into(),
    );
    SetupReport { checks, installed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> WinPath {
        WinPath::parse(r"C:\Users\dev\AppData\Local\cordon\state").unwrap_or_else(|e| panic!("{e}"))
    }

    fn installed() -> InstalledAccounts {
        InstalledAccounts {
            group: Sid::new(5, &[21, 1, 2, 3, 1010]),
            offline: Sid::new(5, &[21, 1, 2, 3, 1011]),
            online: Sid::new(5, &[21, 1, 2, 3, 1012]),
        }
    }

    fn input(installed: Option<InstalledAccounts>) -> SetupInput {
        SetupInput {
            state_dir: state(),
            proxy_ports: ELEVATED_PROXY_PORTS.to_vec(),
            installed,
        }
    }

    /// A machine where setup ran to the end.
    fn complete() -> Observed {
        let i = installed();
        let account = |name: &str, sid: &Sid| ObservedAccount {
            name: name.into(),
            sid: Some(sid.clone()),
            in_group: true,
            password: Ok(()),
            hidden: true,
            rights: RIGHTS.iter().map(|r| r.to_string()).collect(),
        };
        Observed {
            group: Some(i.group.clone()),
            accounts: vec![
                account(network::OFFLINE_ACCOUNT, &i.offline),
                account(network::ONLINE_ACCOUNT, &i.online),
            ],
            firewall: Ok(network::firewall_rules(&i.offline)),
            firewall_local_rules_apply: Ok(true),
            wfp: Ok(network::wfp_filters(&i.offline, &ELEVATED_PROXY_PORTS)
                .into_iter()
                .map(|f| f.name)
                .collect()),
            state_denied: true,
        }
    }

    #[test]
    fn before_the_accounts_exist_the_dry_run_names_every_step() {
        let plan = setup_plan(&input(None));
        assert!(plan.firewall.is_empty() && plan.wfp.is_empty() && plan.state_acl.is_none());
        let text = plan.to_string();
        for needle in [
            "local group CordonSandboxUsers",
            "local user CordonSandboxOffline (offline;",
            "local user CordonSandboxOnline (--net full;",
            r"C:\Users\dev\AppData\Local\cordon\state\elevated\CordonSandboxOffline.dpapi",
            r"SpecialAccounts\UserList\CordonSandboxOnline = DWORD 0",
            "SeBatchLogonRight for CordonSandboxOffline",
            "SeDenyNetworkLogonRight for CordonSandboxOnline",
            "<SID of CordonSandboxOffline>",
            "loopback TCP except ports 47128-47135",
            "deny read for CordonSandboxUsers",
        ] {
            assert!(text.contains(needle), "{needle} not in\n{text}");
        }
        // Numbered one per line, in order.
        assert!(text.starts_with(" 1. local group"));
        assert_eq!(plan.rights.len(), 2 * RIGHTS.len());
    }

    #[test]
    fn with_the_sids_known_rules_and_filters_name_the_offline_account() {
        let i = installed();
        let plan = setup_plan(&input(Some(i.clone())));
        assert_eq!(plan.offline, Some(i.offline.clone()));
        assert!(!plan.firewall.is_empty());
        assert!(plan.firewall[0].block, "the broad block goes first");
        assert!(plan
            .firewall
            .iter()
            .all(|r| r.name.starts_with(FIREWALL_PREFIX)
                && r.local_user_sddl.contains(&i.offline.to_string())));
        assert!(plan.wfp.iter().all(|f| f.name.starts_with(FIREWALL_PREFIX)));
        let acl = plan
            .state_acl
            .clone()
            .unwrap_or_else(|| panic!("no state ACL"));
        assert_eq!(
            (acl.kind, acl.sid, acl.inherit),
            (AceKind::Deny, i.group, Inherit::TREE)
        );
        let text = plan.to_string();
        assert!(
            text.contains("O:LSD:(A;;CC;;;S-1-5-21-1-2-3-1011)"),
            "{text}"
        );
        assert!(!text.contains("<SID of"));
    }

    #[test]
    fn a_complete_machine_reports_complete() {
        let report = compare(&complete(), &ELEVATED_PROXY_PORTS);
        assert!(
            report.complete(),
            "{:?}",
            report.missing().collect::<Vec<_>>()
        );
        assert_eq!(report.installed, Some(installed()));
    }

    #[test]
    fn each_missing_piece_is_named_and_refused() {
        type Break = fn(&mut Observed);
        let cases: [(&str, Break); 9] = [
            ("group CordonSandboxUsers", |o| o.group = None),
            ("account CordonSandboxOffline", |o| o.accounts[0].sid = None),
            ("password of CordonSandboxOnline", |o| {
                o.accounts[1].password = Err("file absent".into())
            }),
            ("CordonSandboxOffline hidden", |o| {
                o.accounts[0].hidden = false
            }),
            ("user rights of CordonSandboxOffline", |o| {
                o.accounts[0].rights.clear()
            }),
            ("firewall rule", |o| o.firewall = Ok(Vec::new())),
            ("firewall rules", |o| {
                o.firewall = Err("CoCreateInstance(NetFwPolicy2): 0x80040154".into())
            }),
            ("WFP filter `cordon: no DNS (udp)`", |o| {
                o.wfp = Ok(vec!["cordon: no ICMP (protocol 1)".into()])
            }),
            ("state folder", |o| o.state_denied = false),
        ];
        for (what, broke) in cases {
            let mut o = complete();
            broke(&mut o);
            let report = compare(&o, &ELEVATED_PROXY_PORTS);
            assert!(!report.complete(), "{what}: reported complete");
            let msg = report.refusal();
            assert!(msg.contains(what), "{what} not in {msg}");
            assert!(msg.ends_with(SETUP_NEEDED), "{msg}");
        }
    }

    #[test]
    fn a_rule_that_differs_is_not_taken_for_ours() {
        let mut o = complete();
        if let Ok(rules) = &mut o.firewall {
            // Scoped to someone else: the offline account would be unblocked.
            rules[0].local_user_sddl = "O:LSD:(A;;CC;;;S-1-5-21-9-9-9-1)".into();
        }
        let report = compare(&o, &ELEVATED_PROXY_PORTS);
        assert!(!report.complete());
        assert!(report.refusal().contains("differs"));
    }

    #[test]
    fn a_rule_read_back_with_reordered_addresses_is_ours() {
        let want = network::firewall_rules(&installed().offline).remove(0);
        let mut got = want.clone();
        let mut parts: Vec<&str> = want.remote_addresses.split(',').collect();
        parts.reverse();
        got.remote_addresses = parts.join(", ").to_uppercase();
        assert!(same_rule(&got, &want));
        got.block = false;
        assert!(!same_rule(&got, &want));
    }

    #[test]
    fn group_policy_overriding_local_rules_is_refused() {
        let mut o = complete();
        o.firewall_local_rules_apply = Ok(false);
        assert!(compare(&o, &ELEVATED_PROXY_PORTS)
            .refusal()
            .contains("Group Policy"));
    }
}
