//! One policy layer (built-in, a TOML file, or flags) and what in it widens the boundary.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::domains::{DomainPattern, Host};
use crate::limits::{LimitKind, LimitLayer, Setting};
use crate::path::PathSpec;
use crate::resolve::Policy;
use crate::rules::{CommandLayer, CommandsSchema, Decision, Pattern};
use crate::violation::ViolationClass;

/// Where a layer came from; also its rank (lowest first, as declared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerSource {
    Builtin,
    /// `~/.config/cordon/config.toml`
    User(PathBuf),
    /// `WORKSPACE/.cordon.toml`: the agent may have written it, so its widening needs approval.
    Workspace(PathBuf),
    /// `--policy FILE`
    PolicyFile(PathBuf),
    /// command-line flags
    Flags,
}

impl LayerSource {
    pub fn label(&self) -> String {
        match self {
            LayerSource::Builtin => "built-in defaults".into(),
            LayerSource::User(p) | LayerSource::Workspace(p) | LayerSource::PolicyFile(p) => {
                p.display().to_string()
            }
            LayerSource::Flags => "command-line flags".into(),
        }
    }
}

/// Network mode: `off` (only loopback), `allow` (only the allow-list, through cordon's proxy)
/// or `full` (the host's network).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Network {
    Off,
    Allow,
    Full,
}

impl Network {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "off" => Ok(Network::Off),
            "allow" => Ok(Network::Allow),
            "full" => Ok(Network::Full),
            other => Err(format!("unknown network mode `{other}`")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Network::Off => "off",
            Network::Allow => "allow",
            Network::Full => "full",
        }
    }
}

/// One thing a layer does that makes the sandbox weaker than the layers below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Widening {
    AllowWrite(PathSpec),
    AllowRead(PathSpec),
    Unprotect(PathBuf),
    KeepEnv(String),
    Network(Network),
    /// `network.allow`: one more destination the proxy lets through.
    AllowDomain(DomainPattern),
    /// `network.allow_local_destinations = true`.
    AllowLocalDestinations,
    /// `network.unlisted = "ask"`: the agent could make a human face a stream of requests.
    AskUnlisted,
    /// `network.hosts`: a pin can send an allowed name to any address.
    Host(String, IpAddr),
    AllowWeaker,
    /// A resource limit raised above, or removed from, what the layers below set.
    Limit {
        kind: LimitKind,
        to: Setting,
        below: u64,
    },
    /// `commands.default` looser than the default below.
    CommandDefault(Decision),
    /// A `[[commands.rules]]` entry that loosens what the layers below decide.
    CommandRule(Pattern, Decision),
    /// A `[[commands.approved]]` entry: it answers prompts without a human.
    CommandApproved(Pattern),
}

impl std::fmt::Display for Widening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Widening::AllowWrite(p) => write!(f, "filesystem.allow_write {p}"),
            Widening::AllowRead(p) => write!(f, "filesystem.allow_read {p}"),
            Widening::Unprotect(p) => write!(f, "filesystem.unprotect {}", p.display()),
            Widening::KeepEnv(n) => write!(f, "env.keep {n}"),
            Widening::Network(n) => write!(f, "network.mode {}", n.as_str()),
            Widening::AllowDomain(p) => write!(f, "network.allow {p}"),
            Widening::AllowLocalDestinations => write!(f, "network.allow_local_destinations true"),
            Widening::AskUnlisted => write!(f, "network.unlisted ask"),
            Widening::Host(name, addr) => write!(f, "network.hosts {name} = {addr}"),
            Widening::AllowWeaker => write!(f, "sandbox.allow_weaker true"),
            Widening::Limit { kind, to, below } => write!(
                f,
                "limits.{kind} {} (the layers below set {})",
                to.format(*kind),
                kind.format(*below)
            ),
            Widening::CommandDefault(d) => write!(f, "commands.default {d}"),
            Widening::CommandRule(p, d) => write!(f, "commands.rules {d} {p}"),
            Widening::CommandApproved(p) => write!(f, "commands.approved {p}"),
        }
    }
}

/// A parsed layer. Lists add to the layers below; `allow_read` and `unprotect` remove entries
/// the layers below added; scalars replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub source: LayerSource,
    pub allow_write: Vec<PathSpec>,
    pub deny_read: Vec<PathSpec>,
    pub allow_read: Vec<PathSpec>,
    pub protect: Vec<PathBuf>,
    pub unprotect: Vec<PathBuf>,
    pub env_deny: Vec<String>,
    pub env_keep: Vec<String>,
    pub network: Option<Network>,
    /// `network.allow`: destinations for `Network::Allow`.
    pub net_allow: Vec<DomainPattern>,
    /// `network.deny`: refused even when allowed.
    pub net_deny: Vec<DomainPattern>,
    /// `network.allow_local_destinations`.
    pub allow_local_destinations: Option<bool>,
    /// `network.unlisted`: `Some(true)` for "ask", `Some(false)` for "refuse".
    pub ask_unlisted: Option<bool>,
    /// `network.hosts`: name (lowercase, no trailing dot) pinned to an address.
    pub hosts: Vec<(String, IpAddr)>,
    pub allow_weaker: Option<bool>,
    /// `sandbox.terminate_on_violation`: classes whose first refusal kills the sandbox.
    /// Only ever adds to the layers below (stricter), so never a widening.
    pub terminate_on_violation: Vec<ViolationClass>,
    pub limits: LimitLayer,
    /// `[commands]`: command rules, the default for unmatched commands, standing approvals.
    pub commands: CommandLayer,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSchema {
    filesystem: Option<FsSchema>,
    env: Option<EnvSchema>,
    network: Option<NetSchema>,
    sandbox: Option<SandboxSchema>,
    limits: Option<LimitsSchema>,
    commands: Option<CommandsSchema>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FsSchema {
    #[serde(default)]
    allow_write: Vec<Spanned<String>>,
    #[serde(default)]
    deny_read: Vec<Spanned<String>>,
    #[serde(default)]
    allow_read: Vec<Spanned<String>>,
    #[serde(default)]
    protect: Vec<Spanned<String>>,
    #[serde(default)]
    unprotect: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EnvSchema {
    #[serde(default)]
    deny: Vec<Spanned<String>>,
    #[serde(default)]
    keep: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NetSchema {
    mode: Option<Spanned<String>>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    deny: Vec<Spanned<String>>,
    allow_local_destinations: Option<bool>,
    unlisted: Option<Spanned<String>>,
    #[serde(default)]
    hosts: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SandboxSchema {
    allow_weaker: Option<bool>,
    #[serde(default)]
    terminate_on_violation: Vec<Spanned<String>>,
}

/// `[limits]`: strings (`"512M"`, `"90s"`, `"unlimited"`) or numbers (bytes, cores, counts).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitsSchema {
    memory: Option<Spanned<toml::Value>>,
    cpu: Option<Spanned<toml::Value>>,
    pids: Option<Spanned<toml::Value>>,
    timeout: Option<Spanned<toml::Value>>,
    file_size: Option<Spanned<toml::Value>>,
    open_files: Option<Spanned<toml::Value>>,
}

impl LimitsSchema {
    fn entries(self) -> [(LimitKind, Option<Spanned<toml::Value>>); 6] {
        [
            (LimitKind::Memory, self.memory),
            (LimitKind::Cpu, self.cpu),
            (LimitKind::Pids, self.pids),
            (LimitKind::Timeout, self.timeout),
            (LimitKind::FileSize, self.file_size),
            (LimitKind::OpenFiles, self.open_files),
        ]
    }
}

const KNOWN_KEYS_HINT: &str = "known sections: [filesystem] allow_write, deny_read, allow_read, \
protect, unprotect; [env] deny, keep; [network] mode, allow, deny, allow_local_destinations, unlisted, \
hosts; [sandbox] allow_weaker, terminate_on_violation; [limits] memory, cpu, pids, timeout, file_size, open_files; \
[commands] default, [[commands.rules]] prefix, decision, reason, [[commands.approved]] prefix, note";

impl Layer {
    pub fn empty(source: LayerSource) -> Self {
        Layer {
            source,
            allow_write: Vec::new(),
            deny_read: Vec::new(),
            allow_read: Vec::new(),
            protect: Vec::new(),
            unprotect: Vec::new(),
            env_deny: Vec::new(),
            env_keep: Vec::new(),
            network: None,
            net_allow: Vec::new(),
            net_deny: Vec::new(),
            allow_local_destinations: None,
            ask_unlisted: None,
            hosts: Vec::new(),
            allow_weaker: None,
            terminate_on_violation: Vec::new(),
            limits: LimitLayer::default(),
            commands: CommandLayer::default(),
        }
    }

    /// Parses TOML text from `file`; every problem is reported, each with its line.
    pub fn parse(source: LayerSource, file: &Path, text: &str) -> Result<Layer, Vec<Diagnostic>> {
        let schema: FileSchema = match toml::from_str(text) {
            Ok(s) => s,
            Err(e) => {
                let offset = e.span().map(|s| s.start).unwrap_or(0);
                let message = e.message().trim().to_string();
                let mut d = Diagnostic::at(file, text, offset, message.clone());
                if message.contains("unknown field") {
                    d = d.hint(KNOWN_KEYS_HINT);
                }
                return Err(vec![d]);
            }
        };
        let mut checker = Checker {
            file,
            text,
            diagnostics: Vec::new(),
        };
        let mut layer = Layer::empty(source);
        let fs = schema.filesystem.unwrap_or_default();
        layer.allow_write = checker.writable_paths(&fs.allow_write);
        layer.deny_read = checker.paths(&fs.deny_read);
        layer.allow_read = checker.paths(&fs.allow_read);
        layer.protect = checker.workspace_paths(&fs.protect);
        layer.unprotect = checker.workspace_paths(&fs.unprotect);
        let env = schema.env.unwrap_or_default();
        layer.env_deny = checker.env_patterns(&env.deny, true);
        layer.env_keep = checker.env_patterns(&env.keep, false);
        let net = schema.network.unwrap_or_default();
        if let Some(mode) = net.mode {
            match Network::parse(mode.get_ref()) {
                Ok(n) => layer.network = Some(n),
                Err(msg) => {
                    checker.error(mode.span().start, msg, "use \"off\", \"allow\" or \"full\"")
                }
            }
        }
        layer.net_allow = checker.domain_patterns("allow", &net.allow);
        layer.net_deny = checker.domain_patterns("deny", &net.deny);
        layer.allow_local_destinations = net.allow_local_destinations;
        if let Some(u) = net.unlisted {
            match u.get_ref().as_str() {
                "ask" => layer.ask_unlisted = Some(true),
                "refuse" => layer.ask_unlisted = Some(false),
                other => checker.error(
                    u.span().start,
                    format!("network.unlisted: unknown value `{other}`"),
                    "use \"refuse\" (the default) or \"ask\"",
                ),
            }
        }
        layer.hosts = checker.hosts(&net.hosts);
        let sandbox = schema.sandbox.unwrap_or_default();
        layer.allow_weaker = sandbox.allow_weaker;
        layer.terminate_on_violation = checker.violation_classes(&sandbox.terminate_on_violation);
        for (kind, value) in schema.limits.unwrap_or_default().entries() {
            if let Some(value) = value {
                let setting = checker.limit(kind, &value);
                layer.limits.set(kind, setting);
            }
        }
        layer.commands =
            schema
                .commands
                .unwrap_or_default()
                .check(file, text, &mut checker.diagnostics);
        if checker.diagnostics.is_empty() {
            Ok(layer)
        } else {
            checker.diagnostics.sort_by_key(|d| d.line);
            Err(checker.diagnostics)
        }
    }

    /// Everything in this layer that makes the boundary wider than it would be without it;
    /// `below` is the policy of the layers under this one (limits are widened relative to it).
    pub fn widenings(&self, below: &Policy) -> Vec<Widening> {
        let mut out = Vec::new();
        out.extend(self.allow_write.iter().cloned().map(Widening::AllowWrite));
        out.extend(self.allow_read.iter().cloned().map(Widening::AllowRead));
        out.extend(self.unprotect.iter().cloned().map(Widening::Unprotect));
        out.extend(self.env_keep.iter().cloned().map(Widening::KeepEnv));
        if let Some(n) = self.network.filter(|n| *n != Network::Off) {
            out.push(Widening::Network(n));
        }
        out.extend(self.net_allow.iter().cloned().map(Widening::AllowDomain));
        if self.allow_local_destinations == Some(true) {
            out.push(Widening::AllowLocalDestinations);
        }
        if self.ask_unlisted == Some(true) {
            out.push(Widening::AskUnlisted);
        }
        out.extend(
            self.hosts
                .iter()
                .map(|(name, addr)| Widening::Host(name.clone(), *addr)),
        );
        if self.allow_weaker == Some(true) {
            out.push(Widening::AllowWeaker);
        }
        out.extend(
            self.limits
                .raises(&below.limits)
                .into_iter()
                .map(|(kind, to, below)| Widening::Limit { kind, to, below }),
        );
        out.extend(self.commands.widenings(&below.commands));
        out
    }

    /// This layer with every widening removed: what an unapproved workspace file may still do.
    pub fn narrowing_only(&self, below: &Policy) -> Layer {
        Layer {
            source: self.source.clone(),
            allow_write: Vec::new(),
            allow_read: Vec::new(),
            unprotect: Vec::new(),
            env_keep: Vec::new(),
            network: self.network.filter(|n| *n == Network::Off),
            net_allow: Vec::new(),
            allow_local_destinations: self.allow_local_destinations.filter(|a| !*a),
            ask_unlisted: self.ask_unlisted.filter(|a| !*a),
            hosts: Vec::new(),
            allow_weaker: self.allow_weaker.filter(|w| !*w),
            limits: self.limits.narrowing_only(&below.limits),
            // Judged against the rules of the layers below: a prompt where they allow stays.
            commands: self.commands.narrowing_only(&below.commands),
            ..self.clone()
        }
    }
}

struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, offset: usize, message: String, hint: &str) {
        let d = Diagnostic::at(self.file, self.text, offset, message).hint(hint);
        self.diagnostics.push(d);
    }

    fn paths(&mut self, items: &[Spanned<String>]) -> Vec<PathSpec> {
        let mut out = Vec::new();
        for item in items {
            match PathSpec::parse(item.get_ref()) {
                Ok(p) => out.push(p),
                Err(msg) => self.error(
                    item.span().start,
                    msg,
                    "paths are absolute (/x), under the home directory (~/x) or workspace-relative (x)",
                ),
            }
        }
        out
    }

    fn writable_paths(&mut self, items: &[Spanned<String>]) -> Vec<PathSpec> {
        let paths = self.paths(items);
        for (item, path) in items.iter().zip(&paths) {
            let too_wide = match path {
                PathSpec::Absolute(p) => p == Path::new("/"),
                PathSpec::Home(p) => p.as_os_str().is_empty(),
                PathSpec::Workspace(_) => false,
            };
            if too_wide {
                self.error(
                    item.span().start,
                    format!("allow_write `{path}` would make the sandbox pointless"),
                    "name the directory a tool needs, e.g. ~/.cache/pip",
                );
            }
        }
        paths
    }

    fn workspace_paths(&mut self, items: &[Spanned<String>]) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for item in items {
            match PathSpec::parse(item.get_ref()) {
                Ok(PathSpec::Workspace(p)) => out.push(p),
                Ok(_) => self.error(
                    item.span().start,
                    format!("`{}` is not workspace-relative", item.get_ref()),
                    "protected paths are relative to the workspace, e.g. .git/hooks",
                ),
                Err(msg) => self.error(item.span().start, msg, "e.g. .git/hooks"),
            }
        }
        out
    }

    fn limit(&mut self, kind: LimitKind, value: &Spanned<toml::Value>) -> Option<Setting> {
        let parsed = match value.get_ref() {
            toml::Value::String(s) => kind.parse(s),
            toml::Value::Integer(n) => kind.from_integer(*n),
            toml::Value::Float(f) => kind.from_float(*f),
            other => Err(format!("a {} is not a valid value", other.type_str())),
        };
        match parsed {
            Ok(s) => Some(s),
            Err(msg) => {
                let hint = format!("{} is {}, or \"unlimited\"", kind.key(), kind.example());
                self.error(value.span().start, format!("limits.{kind}: {msg}"), &hint);
                None
            }
        }
    }

    fn domain_patterns(&mut self, key: &str, items: &[Spanned<String>]) -> Vec<DomainPattern> {
        let mut out = Vec::new();
        for item in items {
            match DomainPattern::parse(item.get_ref()) {
                Ok(p) if out.contains(&p) => {}
                Ok(p) => out.push(p),
                Err(e) => self.error(
                    item.span().start,
                    format!("network.{key}: {e}"),
                    DomainPattern::SYNTAX,
                ),
            }
        }
        out
    }

    fn hosts(
        &mut self,
        table: &BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    ) -> Vec<(String, IpAddr)> {
        const HINT: &str = "hosts pins a plain name to an address, e.g. \
                            hosts = { \"mirror.test\" = \"127.0.0.1\" }";
        // In the file's order, so a repeated name is reported where it repeats.
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        let mut out: Vec<(String, IpAddr)> = Vec::new();
        for (key, value) in entries {
            let raw = key.get_ref();
            let name = match pinned_name(raw) {
                Ok(name) => name,
                Err(why) => {
                    self.error(
                        key.span().start,
                        format!("network.hosts: `{raw}`{why}"),
                        HINT,
                    );
                    continue;
                }
            };
            let addr = match value.get_ref() {
                toml::Value::String(s) => s.parse::<IpAddr>().map_err(|_| format!("`{s}`")),
                other => Err(format!("a value of type {}", other.type_str())),
            };
            let addr = match addr {
                Ok(a) => a,
                Err(what) => {
                    let msg = format!("network.hosts.\"{raw}\": {what} is not an IP address");
                    self.error(value.span().start, msg, "e.g. \"127.0.0.1\" or \"::1\"");
                    continue;
                }
            };
            if let Some((_, first)) = out.iter().find(|(n, _)| *n == name) {
                let msg =
                    format!("network.hosts: `{raw}` pins {name} again (already pinned to {first})");
                self.error(key.span().start, msg, "pin each name once");
                continue;
            }
            out.push((name, addr));
        }
        out
    }

    fn violation_classes(&mut self, items: &[Spanned<String>]) -> Vec<ViolationClass> {
        let mut out = Vec::new();
        for item in items {
            match ViolationClass::parse(item.get_ref()) {
                Ok(classes) => {
                    for c in classes {
                        if !out.contains(&c) {
                            out.push(c);
                        }
                    }
                }
                Err(msg) => self.error(
                    item.span().start,
                    format!("sandbox.terminate_on_violation: {msg}"),
                    &format!("use {}", ViolationClass::SYNTAX),
                ),
            }
        }
        out
    }

    fn env_patterns(&mut self, items: &[Spanned<String>], wildcards: bool) -> Vec<String> {
        let mut out = Vec::new();
        for item in items {
            let name = item.get_ref();
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || (wildcards && c == '*'));
            if ok {
                out.push(name.clone());
            } else if wildcards {
                self.error(
                    item.span().start,
                    format!("`{name}` is not a variable name pattern"),
                    "letters, digits, `_` and `*` (any run of characters), e.g. *_TOKEN",
                );
            } else {
                self.error(
                    item.span().start,
                    format!("`{name}` is not a variable name"),
                    "keep takes exact names, e.g. GITHUB_TOKEN",
                );
            }
        }
        out
    }
}

/// A `hosts` key as the name it pins, or what is wrong with it (to follow the key).
fn pinned_name(raw: &str) -> Result<String, &'static str> {
    match Host::parse(raw) {
        Some(Host::Name(name)) => Ok(name),
        Some(Host::Address(_)) => Err(" is an address, not a name"),
        None if raw.contains('*') => Err(": a pin names one host, no `*`"),
        None => Err(
            " is not a domain name (letters, digits, `-` and `_` in labels of 1 to 63 characters)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing_below() -> Policy {
        Policy::from_layers(&[])
    }

    fn parse(text: &str) -> Result<Layer, Vec<Diagnostic>> {
        Layer::parse(
            LayerSource::PolicyFile("p.toml".into()),
            Path::new("p.toml"),
            text,
        )
    }

    #[test]
    fn parses_every_section() {
        let layer = parse(
            r#"
[filesystem]
allow_write = ["~/.cache/pip", "/opt/x", "build"]
deny_read = ["~/private"]
allow_read = ["~/.docker"]
protect = ["Makefile"]
unprotect = [".git/info"]
[env]
deny = ["MY_*"]
keep = ["GITHUB_TOKEN"]
[network]
mode = "full"
[sandbox]
allow_weaker = true
[limits]
memory = "2G"
cpu = 1.5
pids = 256
timeout = "10m"
file_size = "unlimited"
open_files = 4096
"#,
        )
        .unwrap();
        assert_eq!(layer.allow_write.len(), 3);
        assert_eq!(layer.protect, vec![PathBuf::from("Makefile")]);
        assert_eq!(layer.network, Some(Network::Full));
        assert_eq!(layer.allow_weaker, Some(true));
        assert_eq!(
            layer.limits.get(LimitKind::Memory),
            Some(Setting::Max(2 << 30))
        );
        assert_eq!(layer.limits.get(LimitKind::Cpu), Some(Setting::Max(1500)));
        assert_eq!(
            layer.limits.get(LimitKind::Timeout),
            Some(Setting::Max(600_000))
        );
        assert_eq!(
            layer.limits.get(LimitKind::FileSize),
            Some(Setting::Unlimited)
        );
        let below = nothing_below();
        assert_eq!(layer.widenings(&below).len(), 8);
        let narrowed = layer.narrowing_only(&below);
        assert!(narrowed.widenings(&below).is_empty());
        assert_eq!(narrowed.deny_read, layer.deny_read);
        assert_eq!(
            narrowed.limits, layer.limits,
            "limits over none only narrow"
        );
    }

    #[test]
    fn unknown_key_names_line_and_hints() {
        let errs = parse("\n[filesystem]\nallow_writes = [\"x\"]\n").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 3, "{}", errs[0]);
        assert!(errs[0].message.contains("allow_writes"), "{}", errs[0]);
        assert!(errs[0].hint.is_some());
    }

    #[test]
    fn unknown_section_is_an_error() {
        let errs = parse("[filesystme]\n").unwrap_err();
        assert_eq!(errs[0].line, 1);
    }

    #[test]
    fn bad_values_are_all_reported_with_lines() {
        let errs = parse(
            "[filesystem]\nallow_write = [\"/\"]\nprotect = [\"/etc\"]\n[env]\nkeep = [\"A*\"]\n[network]\nmode = \"sometimes\"\n",
        )
        .unwrap_err();
        let lines: Vec<_> = errs.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![2, 3, 5, 7], "{errs:?}");
    }

    #[test]
    fn wrong_type_is_an_error_with_line() {
        let errs = parse("[sandbox]\nallow_weaker = \"yes\"\n").unwrap_err();
        assert_eq!(errs[0].line, 2, "{}", errs[0]);
    }

    #[test]
    fn network_off_and_allow_weaker_false_are_not_widenings() {
        let layer = parse("[network]\nmode = \"off\"\n[sandbox]\nallow_weaker = false\n").unwrap();
        assert!(layer.widenings(&nothing_below()).is_empty());
    }

    #[test]
    fn raising_a_limit_set_below_is_a_widening() {
        let below =
            Policy::from_layers(&[parse("[limits]\ntimeout = \"1s\"\nmemory = \"1G\"\n").unwrap()]);
        let ws = parse("[limits]\ntimeout = \"30s\"\nmemory = \"512M\"\npids = 64\n").unwrap();
        let w = ws.widenings(&below);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(
            w[0].to_string(),
            "limits.timeout 30s (the layers below set 1s)"
        );
        let kept = ws.narrowing_only(&below);
        assert_eq!(kept.limits.get(LimitKind::Timeout), None);
        assert_eq!(
            kept.limits.get(LimitKind::Memory),
            Some(Setting::Max(512 << 20))
        );
        assert_eq!(kept.limits.get(LimitKind::Pids), Some(Setting::Max(64)));
        let removes = parse("[limits]\nmemory = \"unlimited\"\n").unwrap();
        assert_eq!(removes.widenings(&below).len(), 1);
    }

    #[test]
    fn bad_limits_name_line_and_hint() {
        let errs = parse(
            "[limits]\nmemory = \"lots\"\ncpu = \"half\"\ntimeout = 90\npids = true\nfile_size = 0\n",
        )
        .unwrap_err();
        let lines: Vec<_> = errs.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6], "{errs:?}");
        assert!(errs[0].to_string().contains("limits.memory"), "{}", errs[0]);
        assert!(errs[0].hint.as_deref().unwrap_or("").contains("512M"));
        let errs = parse("[limits]\nmemroy = \"1G\"\n").unwrap_err();
        assert_eq!(errs[0].line, 2);
        assert!(errs[0].hint.as_deref().unwrap_or("").contains("[limits]"));
    }

    fn pat(s: &str) -> DomainPattern {
        DomainPattern::parse(s).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_network_section() {
        let layer = parse(
            r#"
[network]
mode = "allow"
allow = ["crates.io", "*.GitHub.com.", "10.0.0.5", "crates.io"]
deny = ["gist.github.com"]
allow_local_destinations = true
hosts = { "Mirror.Test." = "127.0.0.1", "v6.test" = "::1" }
"#,
        )
        .unwrap();
        assert_eq!(layer.network, Some(Network::Allow));
        assert_eq!(
            layer.net_allow,
            vec![pat("crates.io"), pat("*.github.com"), pat("10.0.0.5")],
            "duplicates dropped, names normalised"
        );
        assert_eq!(layer.net_deny, vec![pat("gist.github.com")]);
        assert_eq!(layer.allow_local_destinations, Some(true));
        assert_eq!(
            layer.hosts,
            vec![
                ("mirror.test".to_string(), ip("127.0.0.1")),
                ("v6.test".to_string(), ip("::1")),
            ]
        );
    }

    #[test]
    fn hosts_may_be_a_subtable() {
        let layer =
            parse("[network.hosts]\n\"a.test\" = \"192.168.1.2\"\nb = \"fd00::1\"\n").unwrap();
        assert_eq!(
            layer.hosts,
            vec![
                ("a.test".to_string(), ip("192.168.1.2")),
                ("b".to_string(), ip("fd00::1")),
            ]
        );
    }

    #[test]
    fn bad_allow_and_deny_entries_name_line_and_hint() {
        let errs = parse(
            "[network]\nallow = [\n  \"crates.io\",\n  \"*\",\n  \"*.com\",\n]\ndeny = [\"a*.example.com\", \"ex ample.com\"]\n",
        )
        .unwrap_err();
        let lines: Vec<_> = errs.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![4, 5, 7, 7], "{errs:?}");
        assert!(
            errs[0].message.starts_with("network.allow: "),
            "{}",
            errs[0]
        );
        assert!(errs[0].message.contains("every destination"), "{}", errs[0]);
        assert!(errs[1].message.contains("top-level"), "{}", errs[1]);
        assert!(errs[2].message.starts_with("network.deny: "), "{}", errs[2]);
        for e in &errs {
            assert!(
                e.hint.as_deref().unwrap_or("").contains("*.example.com"),
                "{e}"
            );
        }
    }

    #[test]
    fn bad_hosts_name_line_and_hint() {
        let errs = parse(
            "[network.hosts]\n\"*.test\" = \"127.0.0.1\"\n\"10.0.0.1\" = \"127.0.0.1\"\n\"a b\" = \"127.0.0.1\"\nok = \"localhost\"\nnum = 127\n\"dup.test\" = \"::1\"\n\"DUP.test.\" = \"::2\"\n",
        )
        .unwrap_err();
        let lines: Vec<_> = errs.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6, 8], "{errs:?}");
        assert!(errs[0].message.contains("no `*`"), "{}", errs[0]);
        assert!(errs[1].message.contains("is an address"), "{}", errs[1]);
        assert!(errs[2].message.contains("not a domain name"), "{}", errs[2]);
        assert!(
            errs[3].message.contains("`localhost` is not an IP address"),
            "{}",
            errs[3]
        );
        assert!(
            errs[4]
                .message
                .contains("type integer is not an IP address"),
            "{}",
            errs[4]
        );
        assert!(errs[5].message.contains("again"), "{}", errs[5]);
        assert!(errs.iter().all(|e| e.hint.is_some()));
    }

    #[test]
    fn wrong_network_types_are_errors_with_line() {
        let errs = parse("[network]\nallow_local_destinations = \"yes\"\n").unwrap_err();
        assert_eq!(errs[0].line, 2, "{}", errs[0]);
        let errs = parse("[network]\n\nallow = \"crates.io\"\n").unwrap_err();
        assert_eq!(errs[0].line, 3, "{}", errs[0]);
        let errs = parse("[network]\nhosts = [\"a.test\"]\n").unwrap_err();
        assert_eq!(errs[0].line, 2, "{}", errs[0]);
        let errs = parse("[network]\nallowed = [\"a.test\"]\n").unwrap_err();
        assert_eq!(errs[0].line, 2, "{}", errs[0]);
        assert!(
            errs[0]
                .hint
                .as_deref()
                .unwrap_or("")
                .contains("allow_local_destinations"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn asking_about_unlisted_names_is_a_widening_and_refuse_is_not() {
        let ask = parse("[network]\nunlisted = \"ask\"\n").unwrap();
        assert_eq!(ask.ask_unlisted, Some(true));
        assert!(ask
            .widenings(&nothing_below())
            .contains(&Widening::AskUnlisted));
        assert_eq!(ask.narrowing_only(&nothing_below()).ask_unlisted, None);
        let refuse = parse("[network]\nunlisted = \"refuse\"\n").unwrap();
        assert!(refuse.widenings(&nothing_below()).is_empty());
        let bad = parse("[network]\nunlisted = \"maybe\"\n").unwrap_err();
        assert!(
            bad[0].to_string().contains("network.unlisted"),
            "{}",
            bad[0]
        );
    }

    #[test]
    fn network_widenings_and_what_an_unapproved_file_keeps() {
        let below = nothing_below();
        let layer = parse(
            "[network]\nallow = [\"crates.io\", \"*.github.com\"]\ndeny = [\"evil.example\"]\nallow_local_destinations = true\nhosts = { \"mirror.test\" = \"10.0.0.7\" }\n",
        )
        .unwrap();
        let shown: Vec<String> = layer
            .widenings(&below)
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(
            shown,
            vec![
                "network.allow crates.io",
                "network.allow *.github.com",
                "network.allow_local_destinations true",
                "network.hosts mirror.test = 10.0.0.7",
            ]
        );
        let kept = layer.narrowing_only(&below);
        assert!(kept.widenings(&below).is_empty());
        assert!(kept.net_allow.is_empty());
        assert!(kept.hosts.is_empty());
        assert_eq!(kept.allow_local_destinations, None);
        assert_eq!(kept.net_deny, vec![pat("evil.example")]);

        let narrowing =
            parse("[network]\ndeny = [\"*.example.com\"]\nallow_local_destinations = false\n")
                .unwrap();
        assert!(narrowing.widenings(&below).is_empty());
        let kept = narrowing.narrowing_only(&below);
        assert_eq!(kept.allow_local_destinations, Some(false));
        assert_eq!(kept, narrowing);
    }
}
