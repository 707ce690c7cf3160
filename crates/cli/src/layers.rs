//! Loading the policy layers in DESIGN.md's order, and the approval of workspace files.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cordon_policy::{
    builtin, content_hash, Diagnostic, DomainPattern, Layer, LayerSource, LimitKind, Network,
    PathSpec, Policy, ViolationClass,
};

use crate::args::{NetArg, RunArgs};
use crate::dirs;
use crate::failure::Failure;
use cordon_audit::Event;

/// The effective policy and what was ignored on the way.
pub struct Loaded {
    pub policy: Policy,
    /// A workspace file whose widening was ignored, with what was ignored.
    pub ignored: Option<(PathBuf, Vec<String>)>,
}

pub const WORKSPACE_FILE: &str = ".cordon.toml";

impl Loaded {
    /// Says on stderr what the workspace file widens that is ignored until approved, and
    /// returns the audit event for it.
    pub fn announce_ignored(&self, workspace: &Path) -> Option<Event> {
        let (file, ignored) = self.ignored.as_ref()?;
        eprintln!(
            "cordon: ignoring what {} widens until you approve it (`cordon approve -w {}`): {}",
            file.display(),
            workspace.display(),
            ignored.join(", ")
        );
        Some(Event::PolicyIgnored {
            file: file.clone(),
            ignored: ignored.clone(),
        })
    }
}

/// Built-in < user config < workspace file (widening only if approved) < --policy < flags.
pub fn load(args: &RunArgs, workspace: &Path, cwd: &Path) -> Result<Loaded, Failure> {
    // Flags first: a bad flag value is reported before any file is read.
    let flags = flags_layer(args, cwd)?;
    load_with(workspace, cwd, args.policy.as_deref(), flags)
}

/// The same layering for commands other than `run` (no flags of their own).
pub fn load_without_flags(
    workspace: &Path,
    cwd: &Path,
    policy_file: Option<&Path>,
) -> Result<Loaded, Failure> {
    load_with(
        workspace,
        cwd,
        policy_file,
        Layer::empty(LayerSource::Flags),
    )
}

fn load_with(
    workspace: &Path,
    cwd: &Path,
    policy_file: Option<&Path>,
    flags: Layer,
) -> Result<Loaded, Failure> {
    let mut layers = below_workspace()?;
    let mut ignored = None;
    let ws_file = workspace.join(WORKSPACE_FILE);
    // An empty directory there is the placeholder a running sandbox pinned: no policy.
    let layer = if is_empty_dir(&ws_file) {
        None
    } else {
        read_layer(&ws_file, LayerSource::Workspace(ws_file.clone()), false)?
    };
    if let Some(layer) = layer {
        // Raising a limit is judged against what the layers below set.
        let below = Policy::from_layers(&layers);
        let widenings = layer.widenings(&below);
        if widenings.is_empty() || is_approved(workspace, &ws_file) {
            layers.push(layer);
        } else {
            ignored = Some((
                ws_file.clone(),
                widenings.iter().map(|w| w.to_string()).collect(),
            ));
            layers.push(layer.narrowing_only(&below));
        }
    }
    if let Some(p) = policy_file {
        let p = cwd.join(p);
        if let Some(layer) = read_layer(&p, LayerSource::PolicyFile(p.clone()), true)? {
            layers.push(layer);
        }
    }
    layers.push(flags);
    Ok(Loaded {
        policy: Policy::from_layers(&layers),
        ignored,
    })
}

/// The layers under the workspace file: built-in defaults and the user's configuration.
fn below_workspace() -> Result<Vec<Layer>, Failure> {
    let mut layers = vec![builtin()];
    if let Some(user) = dirs::user_config() {
        if let Some(layer) = read_layer(&user, LayerSource::User(user.clone()), false)? {
            layers.push(layer);
        }
    }
    Ok(layers)
}

fn read_layer(path: &Path, source: LayerSource, required: bool) -> Result<Option<Layer>, Failure> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) => {
            return Err(Failure::setup(format!(
                "policy file {}: {e}",
                path.display()
            )))
        }
    };
    Layer::parse(source, path, &text)
        .map(Some)
        .map_err(diagnostics)
}

fn diagnostics(d: Vec<Diagnostic>) -> Failure {
    let lines: Vec<String> = d.iter().map(|d| d.to_string()).collect();
    Failure::setup(format!("malformed policy:\n  {}", lines.join("\n  ")))
}

fn flags_layer(args: &RunArgs, cwd: &Path) -> Result<Layer, Failure> {
    let mut layer = Layer::empty(LayerSource::Flags);
    let abs = |p: &PathBuf| PathSpec::Absolute(cwd.join(p));
    layer.allow_write = args.allow_write.iter().map(abs).collect();
    layer.deny_read = args.deny_read.iter().map(abs).collect();
    layer.env_keep = args.keep_env.clone();
    layer.network = match (args.net, args.allow_domain.is_empty()) {
        (Some(NetArg::Off), false) | (Some(NetArg::Full), false) => {
            return Err(Failure::setup(
                "--allow-domain needs --net allow (or no --net at all)",
            ));
        }
        (_, false) | (Some(NetArg::Allow), _) => Some(Network::Allow),
        (Some(NetArg::Off), true) => Some(Network::Off),
        (Some(NetArg::Full), true) => Some(Network::Full),
        (None, true) => None,
    };
    for text in &args.allow_domain {
        let pattern = DomainPattern::parse(text).map_err(|e| {
            Failure::setup(format!("--allow-domain {text}: {e}")).with_hint(format!(
                "--allow-domain takes {}; repeat it for each domain",
                DomainPattern::SYNTAX
            ))
        })?;
        if !layer.net_allow.contains(&pattern) {
            layer.net_allow.push(pattern);
        }
    }
    if args.allow_local_destinations {
        layer.allow_local_destinations = Some(true);
    }
    if args.allow_weaker {
        layer.allow_weaker = Some(true);
    }
    for text in &args.kill_on_violation {
        for class in ViolationClass::parse(text).map_err(|e| {
            Failure::setup(format!("--kill-on-violation: {e}"))
                .with_hint(format!("use {}", ViolationClass::SYNTAX))
        })? {
            if !layer.terminate_on_violation.contains(&class) {
                layer.terminate_on_violation.push(class);
            }
        }
    }
    for (kind, flag, value) in [
        (LimitKind::Memory, "--memory", &args.memory),
        (LimitKind::Cpu, "--cpu", &args.cpu),
        (LimitKind::Pids, "--pids", &args.pids),
        (LimitKind::Timeout, "--timeout", &args.timeout),
    ] {
        if let Some(text) = value {
            let setting = kind.parse(text).map_err(|e| {
                Failure::setup(format!("{flag} {text}: {e}"))
                    .with_hint(format!("{flag} takes {}, or `unlimited`", kind.example()))
            })?;
            layer.limits.set(kind, Some(setting));
        }
    }
    Ok(layer)
}

fn approval_path(workspace: &Path, content: &[u8]) -> Option<PathBuf> {
    dirs::state_dir().map(|s| s.join("approved").join(content_hash(workspace, content)))
}

fn is_approved(workspace: &Path, file: &Path) -> bool {
    let Ok(content) = fs::read(file) else {
        return false;
    };
    approval_path(workspace, &content).is_some_and(|p| p.is_file())
}

/// Records a human's approval of the workspace file's current content.
pub fn approve(workspace: &Path) -> Result<(PathBuf, Vec<String>), Failure> {
    let file = workspace.join(WORKSPACE_FILE);
    let content =
        fs::read(&file).map_err(|e| Failure::setup(format!("{}: {e}", file.display())))?;
    let text = String::from_utf8_lossy(&content);
    let layer =
        Layer::parse(LayerSource::Workspace(file.clone()), &file, &text).map_err(diagnostics)?;
    let below = Policy::from_layers(&below_workspace()?);
    let record = approval_path(workspace, &content)
        .ok_or_else(|| Failure::setup("no home directory: cannot find cordon's state folder"))?;
    if let Some(dir) = record.parent() {
        fs::create_dir_all(dir).map_err(|e| Failure::setup(format!("{}: {e}", dir.display())))?;
    }
    fs::write(&record, format!("{}\n", file.display()))
        .map_err(|e| Failure::setup(format!("{}: {e}", record.display())))?;
    Ok((
        file,
        layer
            .widenings(&below)
            .iter()
            .map(|w| w.to_string())
            .collect(),
    ))
}

/// Whether `path` is a directory with nothing in it.
fn is_empty_dir(path: &Path) -> bool {
    fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
}
