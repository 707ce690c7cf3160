//! One policy layer (built-in, a TOML file, or flags) and what in it widens the boundary.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::limits::{LimitKind, LimitLayer, Setting};
use crate::path::PathSpec;
use crate::resolve::Policy;

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

/// Network mode. Only `off` and `full` are enforced by this build; `allow` is parsed so that
/// a policy written for it gets a clear refusal rather than a syntax error.
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
    AllowWeaker,
    /// A resource limit raised above, or removed from, what the layers below set.
    Limit {
        kind: LimitKind,
        to: Setting,
        below: u64,
    },
}

impl std::fmt::Display for Widening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Widening::AllowWrite(p) => write!(f, "filesystem.allow_write {p}"),
            Widening::AllowRead(p) => write!(f, "filesystem.allow_read {p}"),
            Widening::Unprotect(p) => write!(f, "filesystem.unprotect {}", p.display()),
            Widening::KeepEnv(n) => write!(f, "env.keep {n}"),
            Widening::Network(n) => write!(f, "network.mode {}", n.as_str()),
            Widening::AllowWeaker => write!(f, "sandbox.allow_weaker true"),
            Widening::Limit { kind, to, below } => write!(
                f,
                "limits.{kind} {} (the layers below set {})",
                to.format(*kind),
                kind.format(*below)
            ),
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
    pub allow_weaker: Option<bool>,
    pub limits: LimitLayer,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSchema {
    filesystem: Option<FsSchema>,
    env: Option<EnvSchema>,
    network: Option<NetSchema>,
    sandbox: Option<SandboxSchema>,
    limits: Option<LimitsSchema>,
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
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SandboxSchema {
    allow_weaker: Option<bool>,
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
protect, unprotect; [env] deny, keep; [network] mode; [sandbox] allow_weaker; [limits] memory, \
cpu, pids, timeout, file_size, open_files";

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
            allow_weaker: None,
            limits: LimitLayer::default(),
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
        if let Some(mode) = schema.network.and_then(|n| n.mode) {
            match Network::parse(mode.get_ref()) {
                Ok(n) => layer.network = Some(n),
                Err(msg) => {
                    checker.error(mode.span().start, msg, "use \"off\", \"allow\" or \"full\"")
                }
            }
        }
        layer.allow_weaker = schema.sandbox.and_then(|s| s.allow_weaker);
        for (kind, value) in schema.limits.unwrap_or_default().entries() {
            if let Some(value) = value {
                let setting = checker.limit(kind, &value);
                layer.limits.set(kind, setting);
            }
        }
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
        if self.allow_weaker == Some(true) {
            out.push(Widening::AllowWeaker);
        }
        out.extend(
            self.limits
                .raises(&below.limits)
                .into_iter()
                .map(|(kind, to, below)| Widening::Limit { kind, to, below }),
        );
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
            allow_weaker: self.allow_weaker.filter(|w| !*w),
            limits: self.limits.narrowing_only(&below.limits),
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
}
