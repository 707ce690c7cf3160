//! Merging layers into the effective policy, and resolving its paths for one run.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::egress::Egress;
use crate::layer::{Layer, Network};
use crate::limits::Limits;
use crate::path::PathSpec;
use crate::rules::CommandRules;
use crate::violation::ViolationClass;

/// The effective policy after layering. Paths are still machine-independent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub allow_write: Vec<PathSpec>,
    pub deny_read: Vec<PathSpec>,
    pub protected: Vec<PathBuf>,
    pub env_deny: Vec<String>,
    pub env_keep: Vec<String>,
    pub network: Network,
    /// The allow-list and its settings, used when `network` is `Allow`.
    pub egress: Egress,
    pub allow_weaker: bool,
    /// Classes whose first refusal kills the sandbox (from every layer, and the flag).
    pub terminate_on_violation: Vec<ViolationClass>,
    pub limits: Limits,
    /// Command rules, their default, standing approvals (`[commands]`).
    pub commands: CommandRules,
}

/// What the policy's relative paths mean on this machine, for this run.
#[derive(Debug, Clone)]
pub struct ResolveContext {
    /// The workspace, absolute.
    pub workspace: PathBuf,
    /// Every home directory of the caller ($HOME and the account's home when they differ).
    pub homes: Vec<PathBuf>,
    /// Extra paths that are always hidden (cordon's state folder when it is not under a home).
    pub always_deny: Vec<PathBuf>,
}

/// Absolute paths for the backend: not yet canonical (the backend resolves links itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPaths {
    pub writable: Vec<PathBuf>,
    pub deny_read: Vec<PathBuf>,
    pub protected: Vec<PathBuf>,
}

impl Policy {
    /// Merges layers, lowest first.
    pub fn from_layers(layers: &[Layer]) -> Policy {
        let mut policy = Policy {
            allow_write: Vec::new(),
            deny_read: Vec::new(),
            protected: Vec::new(),
            env_deny: Vec::new(),
            env_keep: Vec::new(),
            network: Network::Off,
            egress: Egress::default(),
            allow_weaker: false,
            terminate_on_violation: Vec::new(),
            limits: Limits::default(),
            commands: CommandRules::default(),
        };
        for layer in layers {
            policy.deny_read.retain(|p| !layer.allow_read.contains(p));
            policy.protected.retain(|p| !layer.unprotect.contains(p));
            extend_unique(&mut policy.allow_write, &layer.allow_write);
            extend_unique(&mut policy.deny_read, &layer.deny_read);
            extend_unique(&mut policy.protected, &layer.protect);
            extend_unique(&mut policy.env_deny, &layer.env_deny);
            extend_unique(&mut policy.env_keep, &layer.env_keep);
            if let Some(n) = layer.network {
                policy.network = n;
            }
            extend_unique(&mut policy.egress.allow, &layer.net_allow);
            extend_unique(&mut policy.egress.deny, &layer.net_deny);
            if let Some(a) = layer.allow_local_destinations {
                policy.egress.allow_local_destinations = a;
            }
            if let Some(a) = layer.ask_unlisted {
                policy.egress.ask_unlisted = a;
            }
            policy.egress.pin_all(&layer.hosts);
            if let Some(w) = layer.allow_weaker {
                policy.allow_weaker = w;
            }
            extend_unique(
                &mut policy.terminate_on_violation,
                &layer.terminate_on_violation,
            );
            policy.limits.apply(&layer.limits);
            policy.commands.apply(&layer.commands);
        }
        policy
    }

    /// A stable digest of the effective policy, recorded in the audit log.
    pub fn digest(&self) -> String {
        let text = format!("{self:?}");
        let hash = Sha256::digest(text.as_bytes());
        format!("sha256:{}", hex(&hash))
    }

    /// Resolves every path against the workspace and home directories.
    pub fn resolve(&self, ctx: &ResolveContext) -> ResolvedPaths {
        let all = |specs: &[PathSpec]| -> Vec<PathBuf> {
            let mut out = Vec::new();
            for s in specs {
                for p in s.resolve(&ctx.workspace, &ctx.homes) {
                    push_unique(&mut out, p);
                }
            }
            out
        };
        let mut deny_read = all(&self.deny_read);
        for p in &ctx.always_deny {
            push_unique(&mut deny_read, p.clone());
        }
        let protected = self
            .protected
            .iter()
            .map(|p| PathSpec::Workspace(p.clone()))
            .collect::<Vec<_>>();
        ResolvedPaths {
            writable: all(&self.allow_write),
            deny_read,
            protected: all(&protected),
        }
    }
}

/// Hex encoding of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hash of a workspace policy file's exact content, as stored when a human approves it.
pub fn content_hash(workspace: &Path, content: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(workspace.as_os_str().as_encoded_bytes());
    h.update([0u8]);
    h.update(content);
    hex(&h.finalize())
}

fn extend_unique<T: Clone + PartialEq>(into: &mut Vec<T>, from: &[T]) {
    for item in from {
        push_unique(into, item.clone());
    }
}

fn push_unique<T: PartialEq>(into: &mut Vec<T>, item: T) {
    if !into.contains(&item) {
        into.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{Layer, LayerSource};
    use crate::{builtin, DEFAULT_PROTECTED};

    fn file(text: &str) -> Layer {
        Layer::parse(
            LayerSource::User("u.toml".into()),
            Path::new("u.toml"),
            text,
        )
        .unwrap()
    }

    #[test]
    fn defaults_deny_secrets_and_protect_git() {
        let policy = Policy::from_layers(&[builtin()]);
        assert_eq!(policy.network, Network::Off);
        assert!(!policy.allow_weaker);
        let ctx = ResolveContext {
            workspace: "/ws".into(),
            homes: vec!["/home/u".into()],
            always_deny: vec!["/state/cordon".into()],
        };
        let r = policy.resolve(&ctx);
        assert!(r.writable.is_empty());
        for p in [
            "/home/u/.ssh",
            "/home/u/.aws",
            "/home/u/.config/gh",
            "/state/cordon",
        ] {
            assert!(r.deny_read.contains(&PathBuf::from(p)), "{p}");
        }
        assert_eq!(r.protected.len(), DEFAULT_PROTECTED.len());
        assert!(r.protected.contains(&PathBuf::from("/ws/.git/hooks")));
    }

    #[test]
    fn higher_layers_add_and_remove() {
        let user =
            file("[filesystem]\nallow_read = [\"~/.docker\"]\nunprotect = [\".git/info\"]\n");
        let ws = file("[filesystem]\ndeny_read = [\"~/notes\"]\n[network]\nmode = \"full\"\n");
        let flags = file("[network]\nmode = \"off\"\n");
        let policy = Policy::from_layers(&[builtin(), user, ws, flags]);
        assert!(!policy.deny_read.contains(&PathSpec::Home(".docker".into())));
        assert!(policy.deny_read.contains(&PathSpec::Home("notes".into())));
        assert!(!policy.protected.contains(&PathBuf::from(".git/info")));
        assert_eq!(policy.network, Network::Off, "last layer wins");
    }

    #[test]
    fn a_higher_layer_can_deny_again_what_a_lower_one_allowed() {
        let a = file("[filesystem]\nallow_read = [\"~/.ssh\"]\n");
        let b = file("[filesystem]\ndeny_read = [\"~/.ssh\"]\n");
        let policy = Policy::from_layers(&[builtin(), a, b]);
        assert!(policy.deny_read.contains(&PathSpec::Home(".ssh".into())));
    }

    #[test]
    fn digest_changes_with_policy() {
        let a = Policy::from_layers(&[builtin()]);
        let b = Policy::from_layers(&[builtin(), file("[network]\nmode = \"full\"\n")]);
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest(), Policy::from_layers(&[builtin()]).digest());
    }

    #[test]
    fn content_hash_binds_path_and_content() {
        let a = content_hash(Path::new("/ws"), b"x");
        assert_ne!(a, content_hash(Path::new("/ws2"), b"x"));
        assert_ne!(a, content_hash(Path::new("/ws"), b"y"));
    }

    #[test]
    fn egress_lists_extend_scalars_replace_pins_override() {
        use crate::domains::DomainPattern;
        use std::net::IpAddr;
        let p = |s: &str| DomainPattern::parse(s).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let user = file(
            "[network]\nallow = [\"crates.io\", \"*.github.com\"]\nallow_local_destinations = true\nhosts = { \"mirror.test\" = \"127.0.0.1\", \"b.test\" = \"10.0.0.2\" }\n",
        );
        let ws = file(
            "[network]\nmode = \"allow\"\nallow = [\"CRATES.io.\", \"pypi.org\"]\ndeny = [\"gist.github.com\"]\nhosts = { \"Mirror.test\" = \"::1\" }\n",
        );
        let policy = Policy::from_layers(&[builtin(), user.clone(), ws.clone()]);
        assert_eq!(policy.network, Network::Allow);
        assert_eq!(
            policy.egress.allow,
            vec![p("crates.io"), p("*.github.com"), p("pypi.org")]
        );
        assert_eq!(policy.egress.deny, vec![p("gist.github.com")]);
        assert!(
            policy.egress.allow_local_destinations,
            "not set again: kept"
        );
        assert_eq!(
            policy.egress.hosts,
            vec![
                ("mirror.test".to_string(), ip("::1")),
                ("b.test".to_string(), ip("10.0.0.2")),
            ]
        );
        let off = file("[network]\nallow_local_destinations = false\n");
        let policy = Policy::from_layers(&[builtin(), user, ws, off]);
        assert!(
            !policy.egress.allow_local_destinations,
            "a later layer replaces"
        );
        assert_eq!(Policy::from_layers(&[builtin()]).egress, Egress::default());
    }
}
