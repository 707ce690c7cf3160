//! Command rules: which programs the sandboxed agent may run, must ask a human for, or may not run.
//!
//! A rule is an argv prefix whose words may list alternatives, with a decision and a reason:
//!
//! ```toml
//! [commands]
//! default = "allow"          # for commands no rule matches: allow | prompt | forbid
//!
//! [[commands.rules]]
//! prefix = ["npm", ["publish", "unpublish"]]
//! decision = "forbid"
//! reason = "publishing is the developer's call"
//!
//! [[commands.approved]]      # a standing answer a human gave to prompts (allow always)
//! prefix = ["git", "push"]
//! ```
//!
//! How a command is matched, and why:
//! - The program word matches the *basename* of the program (`git` matches `/usr/bin/git`
//!   and `./git`), so a forbid cannot be avoided by spelling the path; a program word that
//!   contains `/` matches that exact path only. The supervisor passes every name it knows for
//!   one exec (the path it executes and argv\[0\], which the caller chooses freely): a
//!   prompt or forbid applies when *any* of them matches, an allow only when *all* do.
//! - Prompt and forbid rules match loosely: options (`-C`, `--no-pager`, and the word right
//!   after an option, which may be its value) may stand before and between the rule's words,
//!   so `git -C dir push` is `git push`. Allow rules and approvals match exactly: their words
//!   are the first arguments, in order, so an allow never covers more than was written.
//! - The strictest matching rule wins (forbid > prompt > allow); the default applies only
//!   when no rule matches. A prompt is answered without asking when an approval matches the
//!   command and has at least as many words as the rule that prompted, so approving `git`
//!   does not silently answer a stricter `git push` rule.
//!
//! What this cannot see: a rule judges one exec's argv. Work done without a new exec (a
//! shell builtin, a library call, an interpreter running code it was handed) is not a command
//! here; the sandbox's kernel boundary stays the real control.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::layer::{Layer, Widening};

/// What happens to a command, weakest first (the derived order is "stricter is greater").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decision {
    Allow,
    Prompt,
    Forbid,
}

impl Decision {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "allow" => Ok(Decision::Allow),
            "prompt" => Ok(Decision::Prompt),
            "forbid" => Ok(Decision::Forbid),
            other => Err(format!("unknown decision `{other}`")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Prompt => "prompt",
            Decision::Forbid => "forbid",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a rule was written: a policy file and line, or a label such as `built-in defaults`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    /// 1-based, 0 when the source has no lines.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}", self.file, self.line)
        } else {
            f.write_str(&self.file)
        }
    }
}

/// An argv prefix: each word is a set of alternatives; the first word names the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    words: Vec<Vec<String>>,
}

impl Pattern {
    /// A pattern from its words; none may be empty, nor hold an empty alternative.
    pub fn new(words: Vec<Vec<String>>) -> Result<Pattern, String> {
        if words.is_empty() {
            return Err("a prefix needs at least the program".into());
        }
        for (i, word) in words.iter().enumerate() {
            if word.is_empty() {
                return Err(format!("word {} has no alternatives", i + 1));
            }
            if word.iter().any(|w| w.is_empty()) {
                return Err(format!("word {} is empty", i + 1));
            }
            if i == 0 && word.iter().any(|w| w.ends_with('/')) {
                return Err("the program word is a directory".into());
            }
        }
        Ok(Pattern { words })
    }

    /// A pattern of plain words (no alternatives), as an approval records them.
    pub fn literal(words: &[String]) -> Result<Pattern, String> {
        Pattern::new(words.iter().map(|w| vec![w.clone()]).collect())
    }

    pub fn words(&self) -> &[Vec<String>] {
        &self.words
    }

    /// The same pattern with each alternative of its program word spelled by `spell`.
    fn with_program(&self, spell: impl Fn(&str) -> String) -> Pattern {
        let mut words = self.words.clone();
        if let Some(program) = words.first_mut() {
            for w in program.iter_mut() {
                *w = spell(w);
            }
        }
        Pattern { words }
    }

    /// Does the program word match every name in `programs` (`all`) or at least one?
    fn program_matches(&self, programs: &[&str], all: bool) -> bool {
        let hit = |name: &&str| self.words[0].iter().any(|w| program_word_matches(w, name));
        if all {
            !programs.is_empty() && programs.iter().all(hit)
        } else {
            programs.iter().any(hit)
        }
    }

    /// Exact match: the program (every name of it), then the remaining words as the first
    /// arguments in order. Returns the words that matched.
    pub fn matches_exact(&self, programs: &[&str], args: &[String]) -> Option<Vec<String>> {
        let rest = &self.words[1..];
        if !self.program_matches(programs, true) || args.len() < rest.len() {
            return None;
        }
        if !rest.iter().zip(args).all(|(w, a)| w.contains(a)) {
            return None;
        }
        let mut out = vec![basename(programs[0]).to_string()];
        out.extend(args[..rest.len()].iter().cloned());
        Some(out)
    }

    /// Loose match (prompt and forbid rules): the program (any name of it), then the
    /// remaining words in order, where options and the word after an option may be skipped.
    /// Returns the words that matched, the program first.
    pub fn matches_loose(&self, programs: &[&str], args: &[String]) -> Option<Vec<String>> {
        let name = programs
            .iter()
            .find(|p| self.words[0].iter().any(|w| program_word_matches(w, p)))?;
        let rest = &self.words[1..];
        // A forward simulation over the arguments: for each number of words matched so far,
        // the positions that matched them. Each argument moves a state on (it matches the next
        // word) or keeps it (it can be skipped), so the work is linear in the arguments
        // whatever the agent puts in them; backtracking could be made exponential.
        let mut states: Vec<Option<Vec<usize>>> = vec![None; rest.len() + 1];
        states[0] = Some(Vec::new());
        for (i, arg) in args.iter().enumerate() {
            if states[rest.len()].is_some() {
                break;
            }
            let skippable = can_skip(args, i);
            let mut next: Vec<Option<Vec<usize>>> = vec![None; rest.len() + 1];
            for (k, state) in states.iter().enumerate() {
                let Some(path) = state else { continue };
                if k < rest.len() && rest[k].contains(arg) && next[k + 1].is_none() {
                    let mut p = path.clone();
                    p.push(i);
                    next[k + 1] = Some(p);
                }
                if skippable && next[k].is_none() {
                    next[k] = Some(path.clone());
                }
            }
            next[rest.len()] = next[rest.len()].take().or(states[rest.len()].take());
            states = next;
        }
        let path = states[rest.len()].take()?;
        let mut out = vec![basename(name).to_string()];
        out.extend(path.iter().map(|i| args[*i].clone()));
        Some(out)
    }

    /// Does every command this pattern matches also match `self`? Used to tell whether a rule
    /// in a higher layer can change anything a lower layer's rule already decides.
    pub fn covers(&self, other: &Pattern) -> bool {
        self.words.len() <= other.words.len()
            && self
                .words
                .iter()
                .zip(&other.words)
                .all(|(mine, theirs)| theirs.iter().all(|t| mine.contains(t)))
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self
            .words
            .iter()
            .map(|alts| match alts.as_slice() {
                [one] => quote(one),
                many => format!(
                    "[{}]",
                    many.iter().map(|a| quote(a)).collect::<Vec<_>>().join(", ")
                ),
            })
            .collect();
        write!(f, "[{}]", words.join(", "))
    }
}

fn quote(s: &str) -> String {
    // TOML basic strings and JSON agree on these escapes, so the text can be pasted into either.
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A program as Windows names it, as the rules compare it there: `\` read as `/`, trailing
/// dots and spaces dropped (Win32 drops them), lower case (Win32 names ignore case), and a
/// last `.exe`, `.com`, `.cmd` or `.bat` dropped (`git` finds `git.exe`). `C:\Git\cmd\Git.EXE`
/// is `c:/git/cmd/git`, whose basename is `git`. The verbatim and device forms of a path
/// (`\\?\C:\…`, `\\.\C:\…`, `\??\C:\…`, `\\?\UNC\server\…`) are the path itself: a
/// resolved long name comes back verbatim, and a rule naming `C:\Git\cmd\git.exe` must
/// still match it.
pub fn windows_program(name: &str) -> String {
    let mut s = name
        .replace('\\', "/")
        .trim_end_matches(['.', ' '])
        .to_lowercase();
    if let Some(rest) = s.strip_prefix("//?/unc/") {
        s = format!("//{rest}");
    } else if let Some(rest) = ["//?/", "//./", "/??/"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .filter(|r| r.as_bytes().get(1) == Some(&b':'))
    {
        s = rest.to_string();
    }
    // Drive-relative `C:git.exe` names `git.exe` in that drive's current folder.
    if s.as_bytes().get(1) == Some(&b':') && s.as_bytes().get(2) != Some(&b'/') {
        s.insert(2, '/');
    }
    for ext in [".exe", ".com", ".cmd", ".bat"] {
        if let Some(stem) = s.strip_suffix(ext) {
            if !stem.is_empty() && !stem.ends_with('/') {
                s.truncate(stem.len());
                break;
            }
        }
    }
    s
}

fn basename(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

fn program_word_matches(word: &str, program: &str) -> bool {
    if word.contains('/') {
        word == program
    } else {
        word == basename(program)
    }
}

fn is_option(arg: &str) -> bool {
    arg.len() > 1 && arg.starts_with('-') && arg != "--"
}

/// May argument `i` stand between a loose rule's words? Options may, `--` may, and so may the
/// word right after an option without `=` (it may be the option's value: `git -C dir push`).
fn can_skip(args: &[String], i: usize) -> bool {
    let arg = &args[i];
    is_option(arg)
        || arg == "--"
        || (i > 0 && is_option(&args[i - 1]) && !args[i - 1].contains('='))
}

/// One `[[commands.rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRule {
    pub pattern: Pattern,
    pub decision: Decision,
    pub reason: Option<String>,
    pub origin: Origin,
}

impl CommandRule {
    fn matches(&self, programs: &[&str], args: &[String]) -> Option<Vec<String>> {
        match self.decision {
            Decision::Allow => self.pattern.matches_exact(programs, args),
            Decision::Prompt | Decision::Forbid => self.pattern.matches_loose(programs, args),
        }
    }
}

impl fmt::Display for CommandRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.decision, self.pattern, self.origin)
    }
}

/// One `[[commands.approved]]` entry: a human's standing "yes" to prompts it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    pub pattern: Pattern,
    pub note: Option<String>,
    pub origin: Origin,
}

/// The `[commands]` section of one layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandLayer {
    pub default: Option<(Decision, Origin)>,
    pub rules: Vec<CommandRule>,
    pub approved: Vec<Approved>,
}

impl CommandLayer {
    /// What in this section loosens the decisions of the layers `below`: a looser default,
    /// a rule looser than the default below that no rule below already covers, any approval.
    pub fn widenings(&self, below: &CommandRules) -> Vec<Widening> {
        let mut out = Vec::new();
        if let Some((d, _)) = &self.default {
            if *d < below.default {
                out.push(Widening::CommandDefault(*d));
            }
        }
        for rule in &self.rules {
            if rule_widens(rule, below) {
                out.push(Widening::CommandRule(rule.pattern.clone(), rule.decision));
            }
        }
        out.extend(
            self.approved
                .iter()
                .map(|a| Widening::CommandApproved(a.pattern.clone())),
        );
        out
    }

    /// This section without what loosens the layers `below`.
    pub fn narrowing_only(&self, below: &CommandRules) -> CommandLayer {
        CommandLayer {
            default: self.default.clone().filter(|(d, _)| *d >= below.default),
            rules: self
                .rules
                .iter()
                .filter(|r| !rule_widens(r, below))
                .cloned()
                .collect(),
            approved: Vec::new(),
        }
    }
}

/// A rule can only loosen a command that no rule below matches (the strictest match wins, so
/// it can never undercut one), and only when its decision is looser than the default below.
fn rule_widens(rule: &CommandRule, below: &CommandRules) -> bool {
    rule.decision < below.default && !below.rules.iter().any(|b| b.pattern.covers(&rule.pattern))
}

/// The merged command rules of every layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRules {
    pub default: Decision,
    /// Where the default was set; `None` for the built-in `allow`.
    pub default_origin: Option<Origin>,
    pub rules: Vec<CommandRule>,
    pub approved: Vec<Approved>,
}

impl Default for CommandRules {
    /// No rules and `allow`: without a `[commands]` section cordon runs what it is asked to.
    fn default() -> Self {
        CommandRules {
            default: Decision::Allow,
            default_origin: None,
            rules: Vec::new(),
            approved: Vec::new(),
        }
    }
}

impl CommandRules {
    /// Everything forbidden: the "below" against which every allow, prompt and approval is
    /// a widening, for callers that cannot see the layers below.
    pub fn strictest() -> Self {
        CommandRules {
            default: Decision::Forbid,
            ..CommandRules::default()
        }
    }
}

/// What the rules say about one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandVerdict<'a> {
    /// The final decision: a prompt an approval answers is `Allow` here.
    pub decision: Decision,
    /// The rule that decided; `None` when the default did.
    pub rule: Option<&'a CommandRule>,
    /// The approval that answered a prompt.
    pub approved: Option<&'a Approved>,
    /// The words a "this session" or "always" answer would cover: the words that matched the
    /// deciding rule, or the whole command line when the default decided.
    pub scope: Vec<String>,
}

impl CommandVerdict<'_> {
    /// The reason to show the agent and the human: the rule's, or a plain one.
    pub fn reason(&self) -> String {
        match self.rule {
            Some(CommandRule {
                reason: Some(r), ..
            }) => r.clone(),
            Some(rule) => format!("the policy rule {rule}"),
            None => format!("the policy's default for commands is {}", self.decision),
        }
    }
}

impl CommandRules {
    /// Merges the `[commands]` sections of `layers`, lowest first: the highest default wins,
    /// rules and approvals add up.
    pub fn from_layers(layers: &[Layer]) -> CommandRules {
        let mut out = CommandRules::default();
        for layer in layers {
            out.apply(&layer.commands);
        }
        out
    }

    pub fn apply(&mut self, layer: &CommandLayer) {
        if let Some((d, origin)) = &layer.default {
            self.default = *d;
            self.default_origin = Some(origin.clone());
        }
        self.rules.extend(layer.rules.iter().cloned());
        self.approved.extend(layer.approved.iter().cloned());
    }

    /// The verdict on a command line as typed: argv\[0\] is the program.
    pub fn decide(&self, argv: &[String]) -> CommandVerdict<'_> {
        match argv.split_first() {
            Some((program, args)) => self.decide_program(&[program.as_str()], args),
            None => self.decide_program(&[], &[]),
        }
    }

    /// These rules as Windows compares programs: every rule's and approval's program word
    /// spelled by [`windows_program`]. Judge a Windows command line with these and its
    /// argv\[0\] spelled the same way.
    pub fn for_windows(&self) -> CommandRules {
        let mut out = self.clone();
        for r in &mut out.rules {
            r.pattern = r.pattern.with_program(windows_program);
        }
        for a in &mut out.approved {
            a.pattern = a.pattern.with_program(windows_program);
        }
        out
    }

    /// The verdict on one `execve(path, argv)`: the executed path and argv\[0\] both name the
    /// program, since the caller picks argv\[0\] freely.
    pub fn decide_exec(&self, path: &str, argv: &[String]) -> CommandVerdict<'_> {
        let args = argv.get(1..).unwrap_or(&[]);
        match argv.first() {
            Some(zero) if zero != path => self.decide_program(&[path, zero.as_str()], args),
            _ => self.decide_program(&[path], args),
        }
    }

    /// The verdict when `programs` are every name known for the program being run.
    pub fn decide_program(&self, programs: &[&str], args: &[String]) -> CommandVerdict<'_> {
        let mut best: Option<(&CommandRule, Vec<String>)> = None;
        for rule in &self.rules {
            let Some(words) = rule.matches(programs, args) else {
                continue;
            };
            // Strictest wins; among equals the first written, so the reason shown is stable.
            if best
                .as_ref()
                .is_none_or(|(b, _)| rule.decision > b.decision)
            {
                best = Some((rule, words));
            }
        }
        let (decision, rule, scope) = match best {
            Some((rule, words)) => (rule.decision, Some(rule), words),
            None => {
                let mut words: Vec<String> = programs
                    .first()
                    .map(|p| basename(p).to_string())
                    .into_iter()
                    .collect();
                words.extend(args.iter().cloned());
                (self.default, None, words)
            }
        };
        let mut verdict = CommandVerdict {
            decision,
            rule,
            approved: None,
            scope,
        };
        if decision == Decision::Prompt {
            let needed = rule.map_or(0, |r| r.pattern.words.len());
            verdict.approved = self.approved.iter().find(|a| {
                a.pattern.words.len() >= needed && a.pattern.matches_exact(programs, args).is_some()
            });
            if verdict.approved.is_some() {
                verdict.decision = Decision::Allow;
            }
        }
        verdict
    }
}

/// `[commands]` as written in a policy file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommandsSchema {
    default: Option<Spanned<String>>,
    #[serde(default)]
    rules: Vec<RuleSchema>,
    #[serde(default)]
    approved: Vec<ApprovedSchema>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSchema {
    prefix: Spanned<Vec<toml::Value>>,
    decision: Spanned<String>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovedSchema {
    prefix: Spanned<Vec<toml::Value>>,
    note: Option<String>,
}

const PREFIX_HINT: &str = "a prefix lists the program and then arguments; a word may be a list \
of alternatives, e.g. prefix = [\"npm\", [\"publish\", \"unpublish\"]]";
const DECISION_HINT: &str = "use \"allow\", \"prompt\" or \"forbid\"";

impl CommandsSchema {
    /// The section as a `CommandLayer`; every problem goes to `diagnostics` with its line.
    pub(crate) fn check(
        self,
        file: &Path,
        text: &str,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> CommandLayer {
        let label = file.display().to_string();
        let origin = |offset: usize| Origin {
            file: label.clone(),
            line: line_of(text, offset),
        };
        let mut error = |offset: usize, message: String, hint: &str| {
            diagnostics.push(Diagnostic::at(file, text, offset, message).hint(hint));
        };
        let mut layer = CommandLayer::default();
        if let Some(d) = self.default {
            match Decision::parse(d.get_ref()) {
                Ok(decision) => layer.default = Some((decision, origin(d.span().start))),
                Err(msg) => error(
                    d.span().start,
                    format!("commands.default: {msg}"),
                    DECISION_HINT,
                ),
            }
        }
        for rule in self.rules {
            let at = rule.prefix.span().start;
            let pattern = pattern_of(rule.prefix.get_ref());
            let decision = Decision::parse(rule.decision.get_ref());
            if let Err(msg) = &pattern {
                error(at, format!("commands.rules: {msg}"), PREFIX_HINT);
            }
            if let Err(msg) = &decision {
                let at = rule.decision.span().start;
                error(at, format!("commands.rules: {msg}"), DECISION_HINT);
            }
            if let (Ok(pattern), Ok(decision)) = (pattern, decision) {
                layer.rules.push(CommandRule {
                    pattern,
                    decision,
                    reason: rule.reason.filter(|r| !r.trim().is_empty()),
                    origin: origin(at),
                });
            }
        }
        for approved in self.approved {
            let at = approved.prefix.span().start;
            match pattern_of(approved.prefix.get_ref()) {
                Ok(pattern) => layer.approved.push(Approved {
                    pattern,
                    note: approved.note,
                    origin: origin(at),
                }),
                Err(msg) => error(at, format!("commands.approved: {msg}"), PREFIX_HINT),
            }
        }
        layer
    }
}

fn pattern_of(values: &[toml::Value]) -> Result<Pattern, String> {
    let mut words = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let word = match value {
            toml::Value::String(s) => vec![s.clone()],
            toml::Value::Array(alts) => alts
                .iter()
                .map(|a| match a {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => Err(format!(
                        "word {} lists a {}, not a string",
                        i + 1,
                        other.type_str()
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                return Err(format!(
                    "word {} is a {}, not a string or a list of strings",
                    i + 1,
                    other.type_str()
                ))
            }
        };
        words.push(word);
    }
    Pattern::new(words)
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::LayerSource;

    fn layer(text: &str) -> Layer {
        Layer::parse(
            LayerSource::PolicyFile("p.toml".into()),
            Path::new("p.toml"),
            text,
        )
        .unwrap()
    }

    fn rules(text: &str) -> CommandRules {
        CommandRules::from_layers(&[layer(text)])
    }

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn decision(r: &CommandRules, cmd: &str) -> Decision {
        r.decide(&argv(cmd)).decision
    }

    const GIT: &str = r#"
[commands]
default = "allow"
[[commands.rules]]
prefix = ["git", "push"]
decision = "prompt"
reason = "pushing publishes the agent's work"
[[commands.rules]]
prefix = ["npm", ["publish", "unpublish"]]
decision = "forbid"
reason = "publishing is the developer's call"
[[commands.rules]]
prefix = ["git"]
decision = "allow"
"#;

    #[test]
    fn windows_spellings_of_a_program_are_one_program() {
        let r = rules(&GIT.replace("\"npm\"", "\"NPM.cmd\""));
        let win = r.for_windows();
        let judged = |cmd: &str| {
            let mut words = argv(cmd);
            words[0] = windows_program(&words[0]);
            win.decide(&words).decision
        };
        for cmd in [
            "git push",
            "git.exe push",
            "Git push",
            "GIT.EXE push",
            r"C:\Git\cmd\git.exe push",
            "C:/Git/cmd/git.exe push",
            "git.exe. push",
            "C:git.exe push",
            r"\\?\C:\Git\cmd\git.exe push",
        ] {
            assert_eq!(judged(cmd), Decision::Prompt, "{cmd}");
        }
        assert_eq!(
            judged("npm publish"),
            Decision::Forbid,
            "a rule word spelled NPM.cmd"
        );
        assert_eq!(judged(r"C:\nodejs\npm.CMD unpublish x"), Decision::Forbid);
        assert_eq!(judged("git status"), Decision::Allow);
        assert_eq!(judged("gitx push"), Decision::Allow, "another program");
        assert_eq!(
            windows_program(".exe"),
            ".exe",
            "a name that is only an extension"
        );
        assert_eq!(windows_program(r"C:\x\.exe"), "c:/x/.exe");
        // A rule naming the file by its path matches the verbatim long name Windows gives
        // back for it (what `cordon run` judges besides the name typed).
        let by_path = rules(
            "[commands]\n[[commands.rules]]\nprefix = ['C:\\Git\\cmd\\git.exe', 'push']\ndecision = 'forbid'\n",
        )
        .for_windows();
        for long in [
            r"\\?\C:\Git\cmd\git.exe",
            r"\\.\C:\Git\cmd\GIT.EXE",
            r"\??\c:\git\cmd\git.exe",
            "C:/Git/cmd/git",
        ] {
            let names = ["git".to_string(), windows_program(long)];
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let v = by_path.decide_program(&names, &argv("push"));
            assert_eq!(v.decision, Decision::Forbid, "{long}");
        }
        assert_eq!(
            windows_program(r"\\?\UNC\srv\share\git.exe"),
            "//srv/share/git"
        );
        assert_eq!(
            windows_program(r"\\.\pipe\x"),
            "//./pipe/x",
            "a device stays one"
        );
        // Linux keeps its exact names.
        assert_eq!(decision(&r, "git.exe push"), Decision::Allow);
    }

    #[test]
    fn prefix_and_alternatives() {
        let r = rules(GIT);
        assert_eq!(decision(&r, "git push origin main"), Decision::Prompt);
        assert_eq!(decision(&r, "git status"), Decision::Allow);
        assert_eq!(decision(&r, "npm publish"), Decision::Forbid);
        assert_eq!(decision(&r, "npm unpublish foo"), Decision::Forbid);
        assert_eq!(decision(&r, "npm install"), Decision::Allow);
        assert_eq!(decision(&r, "git"), Decision::Allow);
        let v = r.decide(&argv("npm publish --tag next"));
        assert_eq!(v.reason(), "publishing is the developer's call");
        assert_eq!(v.scope, argv("npm publish"));
        assert_eq!(v.rule.map(|r| r.origin.line), Some(9));
    }

    #[test]
    fn the_program_matches_by_basename_and_a_path_word_only_that_path() {
        let r = rules(GIT);
        assert_eq!(decision(&r, "/usr/bin/git push"), Decision::Prompt);
        assert_eq!(decision(&r, "./git push"), Decision::Prompt);
        assert_eq!(decision(&r, "../../x/npm publish"), Decision::Forbid);
        // not a suffix match: `legit` is not `git`, `git-push` is another program
        assert_eq!(decision(&r, "legit push"), Decision::Allow);
        assert_eq!(decision(&r, "git-push"), Decision::Allow);
        assert_eq!(
            decision(&r, "GIT push"),
            Decision::Allow,
            "case matters on Linux"
        );
        let r =
            rules("[[commands.rules]]\nprefix = [\"/opt/deploy/run\"]\ndecision = \"forbid\"\n");
        assert_eq!(decision(&r, "/opt/deploy/run now"), Decision::Forbid);
        assert_eq!(decision(&r, "run now"), Decision::Allow);
        assert_eq!(decision(&r, "/usr/bin/run"), Decision::Allow);
    }

    #[test]
    fn options_between_words_do_not_dodge_a_strict_rule() {
        let r = rules(GIT);
        for cmd in [
            "git -C /elsewhere push",
            "git --no-pager push",
            "git -c core.sshCommand=x push --force",
            "git --git-dir=/x/.git push",
            "git -- push",
        ] {
            assert_eq!(decision(&r, cmd), Decision::Prompt, "{cmd}");
        }
        // a word that is neither an option nor an option's value stops the search
        assert_eq!(decision(&r, "git commit -m push"), Decision::Allow);
        assert_eq!(decision(&r, "git log push"), Decision::Allow);
        assert_eq!(decision(&r, "npm --registry x publish"), Decision::Forbid);
    }

    #[test]
    fn an_allow_matches_only_what_it_says() {
        let r = rules(
            "[commands]\ndefault = \"prompt\"\n[[commands.rules]]\nprefix = [\"cargo\", [\"build\", \"test\"]]\ndecision = \"allow\"\n",
        );
        assert_eq!(decision(&r, "cargo build --release"), Decision::Allow);
        assert_eq!(decision(&r, "cargo test"), Decision::Allow);
        assert_eq!(decision(&r, "cargo --locked build"), Decision::Prompt);
        assert_eq!(decision(&r, "cargo publish"), Decision::Prompt);
        assert_eq!(decision(&r, "cargo"), Decision::Prompt);
    }

    #[test]
    fn argv0_and_the_executed_path_are_both_judged() {
        let r = rules(
            "[commands]\ndefault = \"prompt\"\n[[commands.rules]]\nprefix = [\"git\", \"status\"]\ndecision = \"allow\"\n[[commands.rules]]\nprefix = [\"rm\"]\ndecision = \"forbid\"\n",
        );
        // a forbidden program renamed through argv[0] is still forbidden ...
        let v = r.decide_exec("/usr/bin/rm", &argv("ls -rf /"));
        assert_eq!(v.decision, Decision::Forbid);
        // ... and a forbidden argv[0] on another binary too (busybox-style multi-call)
        let v = r.decide_exec("/bin/busybox", &argv("rm -rf /"));
        assert_eq!(v.decision, Decision::Forbid);
        // an allow needs every name to agree: a planted binary dressed as git is not git
        let v = r.decide_exec("/tmp/evil", &argv("git status"));
        assert_eq!(v.decision, Decision::Prompt);
        let v = r.decide_exec("/usr/bin/git", &argv("git status"));
        assert_eq!(v.decision, Decision::Allow);
        let v = r.decide_exec("/usr/bin/git", &[]);
        assert_eq!(v.decision, Decision::Prompt, "empty argv: only the path");
    }

    #[test]
    fn strictest_wins_whatever_the_order_and_layer() {
        let low = layer(
            "[[commands.rules]]\nprefix = [\"git\", \"push\"]\ndecision = \"forbid\"\nreason = \"no\"\n",
        );
        let high = layer(
            "[[commands.rules]]\nprefix = [\"git\"]\ndecision = \"allow\"\n[[commands.rules]]\nprefix = [\"git\", \"push\"]\ndecision = \"prompt\"\n",
        );
        for layers in [[low.clone(), high.clone()], [high, low]] {
            let r = CommandRules::from_layers(&layers);
            let v = r.decide(&argv("git push"));
            assert_eq!(v.decision, Decision::Forbid);
            assert_eq!(v.reason(), "no");
        }
    }

    #[test]
    fn the_default_decides_unmatched_and_empty_commands() {
        let r = rules("[commands]\ndefault = \"forbid\"\n");
        assert_eq!(decision(&r, "ls"), Decision::Forbid);
        let v = r.decide(&[]);
        assert_eq!(v.decision, Decision::Forbid);
        assert!(v.rule.is_none());
        assert!(v.reason().contains("default"), "{}", v.reason());
        assert_eq!(
            decision(&CommandRules::default(), "anything"),
            Decision::Allow
        );
        let r = rules("[commands]\ndefault = \"prompt\"\n");
        assert_eq!(r.decide(&argv("make -j8 all")).scope, argv("make -j8 all"));
    }

    #[test]
    fn odd_arguments_are_data() {
        let r = rules(GIT);
        let weird = vec![
            "git".to_string(),
            "".to_string(),
            "-".to_string(),
            "pu\nsh".to_string(),
            "push".to_string(),
        ];
        // "" and "-" are positional, so the strict rule does not reach "push"
        assert_eq!(r.decide(&weird).decision, Decision::Allow);
        let v = r.decide(&["git".to_string(), "push\0".to_string()]);
        assert_eq!(v.decision, Decision::Allow);
        // many options: linear, and still found
        let mut long = vec!["git".to_string()];
        long.extend(std::iter::repeat_n("-x".to_string(), 200_000));
        long.push("push".into());
        assert_eq!(r.decide(&long).decision, Decision::Prompt);
    }

    #[test]
    fn approvals_answer_prompts_but_never_forbids_or_stricter_rules() {
        let r = rules(
            r#"
[commands]
default = "prompt"
[[commands.rules]]
prefix = ["git", "push"]
decision = "prompt"
[[commands.rules]]
prefix = ["rm"]
decision = "forbid"
[[commands.approved]]
prefix = ["git"]
[[commands.approved]]
prefix = ["make", "test"]
[[commands.approved]]
prefix = ["rm"]
"#,
        );
        assert_eq!(
            decision(&r, "git status"),
            Decision::Allow,
            "default prompt answered"
        );
        assert_eq!(
            decision(&r, "git push"),
            Decision::Prompt,
            "[git] is broader than the [git, push] rule"
        );
        assert_eq!(decision(&r, "make test"), Decision::Allow);
        assert_eq!(decision(&r, "make install"), Decision::Prompt);
        assert_eq!(decision(&r, "rm x"), Decision::Forbid);
        let v = r.decide(&argv("make test -v"));
        assert_eq!(v.approved.map(|a| a.origin.line), Some(13));
    }

    #[test]
    fn parse_errors_name_their_lines() {
        let errs = Layer::parse(
            LayerSource::PolicyFile("p.toml".into()),
            Path::new("p.toml"),
            "[commands]\ndefault = \"maybe\"\n[[commands.rules]]\nprefix = []\ndecision = \"allow\"\n[[commands.rules]]\nprefix = [\"a\", [\"b\", 3]]\ndecision = \"nope\"\n[[commands.rules]]\nprefix = [\"\"]\ndecision = \"allow\"\n[[commands.approved]]\nprefix = [[]]\n",
        )
        .unwrap_err();
        let lines: Vec<_> = errs.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![2, 4, 7, 8, 10, 13], "{errs:?}");
        assert!(errs.iter().all(|d| d.hint.is_some()));
        let errs = Layer::parse(
            LayerSource::PolicyFile("p.toml".into()),
            Path::new("p.toml"),
            "[[commands.rules]]\nprefix = [\"a\"]\ndecision = \"allow\"\nwhy = \"x\"\n",
        )
        .unwrap_err();
        assert_eq!(errs[0].line, 4, "{errs:?}");
    }

    #[test]
    fn what_a_workspace_rule_widens() {
        let below = rules(
            "[commands]\ndefault = \"prompt\"\n[[commands.rules]]\nprefix = [\"git\"]\ndecision = \"forbid\"\n",
        );
        let ws = layer(
            r#"
[commands]
default = "allow"
[[commands.rules]]
prefix = ["make"]
decision = "allow"
[[commands.rules]]
prefix = ["git", "status"]
decision = "allow"
[[commands.rules]]
prefix = ["curl"]
decision = "forbid"
[[commands.rules]]
prefix = ["ssh"]
decision = "prompt"
[[commands.approved]]
prefix = ["deploy"]
"#,
        );
        let shown: Vec<String> = ws
            .commands
            .widenings(&below)
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(
            shown,
            vec![
                "commands.default allow",
                "commands.rules allow [\"make\"]",
                "commands.approved [\"deploy\"]",
            ],
            "git status is covered by the forbid below; forbid and prompt are not looser"
        );
        let kept = ws.commands.narrowing_only(&below);
        assert!(kept.widenings(&below).is_empty());
        assert_eq!(kept.rules.len(), 3);
        assert_eq!(kept.default, None);
        let mut merged = below.clone();
        merged.apply(&kept);
        assert_eq!(decision(&merged, "make"), Decision::Prompt);
        assert_eq!(decision(&merged, "curl x"), Decision::Forbid);
    }

    #[test]
    fn covers_is_prefix_and_subset() {
        let p = |w: &[&[&str]]| {
            Pattern::new(
                w.iter()
                    .map(|a| a.iter().map(|s| s.to_string()).collect())
                    .collect(),
            )
            .unwrap()
        };
        assert!(p(&[&["git"]]).covers(&p(&[&["git"], &["push"]])));
        assert!(!p(&[&["git"], &["push"]]).covers(&p(&[&["git"]])));
        assert!(p(&[&["npm"], &["a", "b"]]).covers(&p(&[&["npm"], &["a"]])));
        assert!(!p(&[&["npm"], &["a"]]).covers(&p(&[&["npm"], &["a", "b"]])));
    }

    #[test]
    fn patterns_print_as_toml() {
        let r = rules(GIT);
        assert_eq!(
            r.rules[1].pattern.to_string(),
            "[\"npm\", [\"publish\", \"unpublish\"]]"
        );
        let p = Pattern::literal(&["a\"b".to_string(), "c\\".to_string()]).unwrap();
        let text = format!("[[commands.approved]]\nprefix = {p}\n");
        let back = CommandRules::from_layers(&[layer(&text)]);
        assert_eq!(back.approved[0].pattern, p);
    }
}
