//! Which mode `cordon run` plans on this machine, and what it says when it cannot run.

use cordon_policy::Network;

use super::network::{OFFLINE_ACCOUNT, ONLINE_ACCOUNT};
use super::setup::SETUP_NEEDED;
use super::{InstalledAccounts, Mode};

/// `--net allow` in the unelevated mode: refused, since the firewall cannot tell the
/// developer's own (restricted) token apart, so nothing would stop a direct connection.
pub const NO_PROXY: &str = "--net allow (and --allow-domain) needs the elevated mode on Windows: in the unelevated mode nothing would stop a program that ignores cordon's proxy from connecting directly (or use --net off, or --net full for the host's network)";

/// The mode for a run: elevated when `cordon setup --elevated` is complete (`installed`
/// is `exec::setup::installed`'s answer), else unelevated, keeping the reason setup is not
/// usable for the refusal. `--net allow` needs the elevated mode (its proxy's port is the only
/// loopback port the offline account's filters admit): without it, refused (exit 125).
pub fn choose(
    network: Network,
    installed: Result<InstalledAccounts, String>,
) -> Result<(Mode, Option<String>), String> {
    Ok(match installed {
        Ok(accounts) => (Mode::Elevated(accounts), None),
        Err(why) if network == Network::Allow => {
            return Err(match why.contains(SETUP_NEEDED) {
                true => format!("{NO_PROXY}; {why}"),
                false => format!("{NO_PROXY}; {why}; {SETUP_NEEDED}"),
            })
        }
        Err(why) => (Mode::Unelevated, Some(why)),
    })
}

/// The account an elevated run is started as: the online one for `--net full`.
pub fn account_for(network: Network) -> &'static str {
    match network {
        Network::Full => ONLINE_ACCOUNT,
        Network::Off | Network::Allow => OFFLINE_ACCOUNT,
    }
}

/// The hint after an unelevated plan's refusal: both ways forward, the elevated setup (with
/// what of it is missing) and the weaker mode.
pub fn unelevated_hint(setup_missing: Option<&str>) -> String {
    let setup = match setup_missing {
        Some(why) if why.contains(SETUP_NEEDED) => why.to_string(),
        Some(why) => format!("{why}; {SETUP_NEEDED}"),
        None => SETUP_NEEDED.to_string(),
    };
    format!(
        "read and processes need the elevated mode, which also blocks the sandbox account's own network traffic (name lookups and SMB still leave, so the network needs --allow-weaker there too): {setup}; or accept the unelevated mode, which confines writes only, with --allow-weaker (or sandbox.allow_weaker); see docs/windows.md"
    )
}

/// The hint after an elevated plan's refusal: there is no stronger mode to set up, so the
/// one way forward is to accept what is named, knowingly.
pub fn elevated_hint() -> &'static str {
    "the elevated mode cannot enforce what is named above; accept it with --allow-weaker (or sandbox.allow_weaker), and every run says what is not isolated; with the default policy that is the network: name lookups and SMB to \\\\host\\share paths can still leave (docs/windows.md, \"Known gaps\")"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sid::Sid;

    fn accounts() -> InstalledAccounts {
        let s = |t: &str| Sid::parse(t).unwrap_or_else(|e| panic!("{e}"));
        InstalledAccounts {
            group: s("S-1-5-21-1-2-3-1001"),
            offline: s("S-1-5-21-1-2-3-1002"),
            online: s("S-1-5-21-1-2-3-1003"),
        }
    }

    #[test]
    fn a_complete_setup_gives_the_elevated_mode() {
        for net in [Network::Off, Network::Full] {
            assert_eq!(
                choose(net, Ok(accounts())),
                Ok((Mode::Elevated(accounts()), None))
            );
        }
    }

    #[test]
    fn an_incomplete_setup_gives_the_unelevated_mode_and_keeps_why() {
        let why = format!("elevated mode is not set up on this machine (no group); {SETUP_NEEDED}");
        assert_eq!(
            choose(Network::Off, Err(why.clone())),
            Ok((Mode::Unelevated, Some(why)))
        );
    }

    #[test]
    fn net_allow_needs_the_elevated_mode() {
        let ok = choose(Network::Allow, Ok(accounts()));
        assert!(matches!(ok, Ok((Mode::Elevated(_), None))), "{ok:?}");
        for why in ["missing".to_string(), format!("no group; {SETUP_NEEDED}")] {
            let e = choose(Network::Allow, Err(why.clone())).expect_err("unelevated allow");
            assert!(e.contains("elevated mode") && e.contains(&why), "{e}");
            assert_eq!(e.matches(SETUP_NEEDED).count(), 1, "{e}");
        }
    }

    #[test]
    fn the_online_account_is_only_for_the_full_network() {
        assert_eq!(account_for(Network::Full), ONLINE_ACCOUNT);
        assert_eq!(account_for(Network::Off), OFFLINE_ACCOUNT);
    }

    #[test]
    fn the_refusal_names_both_ways_forward() {
        let missing =
            format!("elevated mode is not set up on this machine (no group); {SETUP_NEEDED}");
        for hint in [
            unelevated_hint(Some(&missing)),
            unelevated_hint(Some("reading the machine failed")),
            unelevated_hint(None),
        ] {
            assert!(hint.contains("cordon setup --elevated"), "{hint}");
            assert!(hint.contains("--allow-weaker"), "{hint}");
            assert_eq!(hint.matches(SETUP_NEEDED).count(), 1, "{hint}");
        }
        assert!(unelevated_hint(Some(&missing)).contains("no group"));
    }
}
