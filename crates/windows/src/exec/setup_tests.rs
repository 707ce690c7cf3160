//! Elevated mode's executor under Wine (CI) or Windows: what each Win32 piece really does
//! here. Setup itself needs an administrator and a real firewall; these tests run the
//! pieces one by one and assert Wine's behaviour where Wine differs, so the behaviour is
//! claimed only where it was seen (docs/windows.md, "What is verified where").

use super::*;
use crate::plan::network::{self, OFFLINE_ACCOUNT};
use crate::plan::setup::{self as psetup, SetupInput, ELEVATED_PROXY_PORTS, SETUP_NEEDED};

fn under_wine() -> bool {
    std::env::var_os("CORDON_UNDER_WINE").is_some()
}

fn state(name: &str) -> WinPath {
    let dir = std::env::temp_dir().join(format!("cordon-setup-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    WinPath::from_path(&dir).unwrap_or_else(|e| panic!("{e}"))
}

fn skip(what: &str) {
    eprintln!("SKIP {what}: needs Wine's behaviour or an administrator on real Windows");
}

#[test]
fn passwords_are_kept_protected_and_read_back() {
    let st = state("pw");
    let password = accounts::new_password(32).unwrap_or_else(|e| panic!("{e}"));
    let file = psetup::password_file(&st, OFFLINE_ACCOUNT);
    let blob = accounts::protect(password.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    fs::create_dir_all(
        file.parent()
            .unwrap_or_else(|| panic!("no parent"))
            .to_api(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    fs::write(file.to_api(), &blob).unwrap_or_else(|e| panic!("{e}"));
    let on_disk = fs::read(file.to_api()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !on_disk
            .windows(password.len())
            .any(|w| w == password.as_bytes()),
        "the password is stored in the clear"
    );
    assert_eq!(
        setup::read_password(&st, OFFLINE_ACCOUNT).unwrap_or_else(|e| panic!("{e}")),
        password
    );
    // No file: the cache logs nobody on and says which file is missing.
    let cache = logon::TokenCache::new(state("nopw"), logon::LogonKind::Batch);
    let err = cache
        .token(OFFLINE_ACCOUNT)
        .err()
        .unwrap_or_else(|| panic!("a token without a password"));
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(cache.is_empty());
}

#[test]
fn logon_screen_hiding_is_written_and_read_back() {
    let name = format!("CordonTestHidden{}", std::process::id());
    match setup::hide_from_logon(&name) {
        Ok(()) => assert!(setup::hidden_from_logon(&name)),
        // Not an administrator on real Windows: HKLM is refused, as it should be.
        Err(e) if !under_wine() && e.raw_os_error() == Some(5) => skip("HKLM write"),
        Err(e) => panic!("{e}"),
    }
    assert!(!setup::hidden_from_logon("CordonNeverHidden"));
}

#[test]
fn accounts_made_under_wine_are_unknown_to_its_lsa() {
    if !under_wine() {
        return skip("account creation");
    }
    // Wine's netapi32 accepts the calls (and a second NetUserAdd, taking the reset path),
    // but keeps users in the process: LSA never hears of them.
    accounts::ensure_group("CordonTestGroup").unwrap_or_else(|e| panic!("{e}"));
    accounts::ensure_user("CordonTestUser", "Xy1!abcdefgh").unwrap_or_else(|e| panic!("{e}"));
    accounts::ensure_user("CordonTestUser", "Xy1!abcdefgh2").unwrap_or_else(|e| panic!("{e}"));
    accounts::ensure_member("CordonTestGroup", "CordonTestUser").unwrap_or_else(|e| panic!("{e}"));
    let lookup = setup::lookup_sid("CordonTestUser");
    assert_eq!(lookup.err().and_then(|e| e.raw_os_error()), Some(1332));
    // A logon whose token cannot be shown to be the account's is refused, not used.
    let logon = logon::logon("CordonTestUser", "Xy1!abcdefgh2", logon::LogonKind::Batch);
    assert!(logon.is_err());
    // The account running the tests is found, so lookups themselves work.
    let me = token::process_token()
        .and_then(|t| token::user_sid(&t))
        .unwrap_or_else(|e| panic!("{e}"));
    if let Ok(user) = std::env::var("USERNAME") {
        assert_eq!(setup::lookup_sid(&user).ok(), Some(me));
    }
}

#[test]
fn firewall_com_failures_name_the_call() {
    let fw = firewall::Firewall::open().unwrap_or_else(|e| panic!("{e}"));
    let sid = crate::sid::Sid::new(5, &[21, 1, 2, 3, 1011]);
    let rule = network::firewall_rules(&sid).remove(0);
    assert_eq!(fw.read(&rule.name).unwrap_or_else(|e| panic!("{e}")), None);
    if under_wine() {
        // Wine's hnetcfg has NetFwPolicy2 and its rule collection, but not
        // LocalPolicyModifyState (E_NOTIMPL) nor INetFwRule3 on NetFwRule (E_NOINTERFACE).
        let e = fw
            .local_rules_apply()
            .err()
            .unwrap_or_else(|| panic!("Wine implements it now"));
        assert!(
            e.to_string()
                .contains("get_LocalPolicyModifyState: HRESULT 0x80004001"),
            "{e}"
        );
        let e = fw
            .add(&rule)
            .err()
            .unwrap_or_else(|| panic!("Wine added a rule"));
        assert!(
            e.to_string()
                .contains("CoCreateInstance(NetFwRule): HRESULT 0x80004002"),
            "{e}"
        );
        fw.remove(&rule.name).unwrap_or_else(|e| panic!("{e}"));
    } else {
        fw.local_rules_apply().unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn wfp_unavailable_is_a_named_error() {
    match wfp::Engine::open() {
        Ok(e) => {
            assert!(!under_wine(), "Wine opened a WFP engine");
            e.filter_names().unwrap_or_else(|e| panic!("{e}"));
        }
        Err(e) => {
            // Wine: RPC_S_CANNOT_SUPPORT. Real Windows without the right: access denied.
            assert!(e.to_string().starts_with("FwpmEngineOpen0: "), "{e}");
            if under_wine() {
                assert!(e.to_string().contains("0x000006e4"), "{e}");
            }
        }
    }
}

#[test]
fn a_machine_without_setup_is_refused_with_the_setup_message() {
    let input = SetupInput {
        state_dir: state("check"),
        proxy_ports: ELEVATED_PROXY_PORTS.to_vec(),
        installed: None,
    };
    if setup::lookup_sid(network::GROUP).is_ok() {
        return skip("a machine without setup");
    }
    let report = setup::check(&input);
    assert!(!report.complete() && report.installed.is_none());
    let msg = setup::installed(&input)
        .err()
        .unwrap_or_else(|| panic!("installed"));
    assert!(msg.contains("group CordonSandboxUsers: absent"), "{msg}");
    assert!(
        msg.contains("account CordonSandboxOffline: absent"),
        "{msg}"
    );
    assert!(msg.ends_with(SETUP_NEEDED), "{msg}");
    // Setup itself refuses to protect passwords for another account.
    let other = crate::sid::Sid::new(5, &[21, 7, 7, 7, 1001]);
    let err = setup::apply(&input, Some(&other))
        .err()
        .unwrap_or_else(|| panic!("ran"));
    assert_eq!(err.step, setup::SetupStep::WrongUser);
}
