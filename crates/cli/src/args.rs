//! Command-line flags: the stable contract of DESIGN.md, with help that answers questions.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run an AI agent's commands inside a boundary the kernel enforces.
///
/// Writes go only to the workspace and a private /tmp; .git hooks/config and the policy file
/// stay read-only; secrets stay unreadable; the network is off; nothing outlives the command.
#[derive(Debug, Parser)]
#[command(name = "cordon", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run COMMAND inside the sandbox.
    ///
    /// Exit status: the command's own; 128+N if it died of signal N (137 when the memory limit's
    /// OOM kill hit it); 124 if --timeout ended it; 125 if cordon could not set up or enforce the
    /// policy (the command did not run); 126 not executable, or refused by a command rule
    /// (`[commands]`, or a human's denial); 127 not found; 137 after --kill-on-violation.
    Run(Box<RunArgs>),
    /// Show what this machine can enforce, and what each guarantee rests on.
    Doctor(DoctorArgs),
    /// Approve the workspace's .cordon.toml as it is now, so its widening takes effect.
    ///
    /// The agent may have written that file, so anything in it that widens the boundary
    /// (allow_write, allow_read, unprotect, env.keep, network mode, allow, hosts and
    /// allow_local_destinations, allow_weaker, a limit raised or removed) is ignored until
    /// a human approves this exact content. Editing the file withdraws the approval.
    Approve(ApproveArgs),
    /// Transactions: review, apply or discard what commands run with --transaction changed.
    #[command(subcommand)]
    Tx(TxCommand),
    /// Command rules: what `[commands]` in the policy decides for a command line.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Serve the approval console (a web page for a phone) for the runs of this user.
    ///
    /// Loopback-only by default (127.0.0.1:7777). Prints a pairing URL with a one-time token
    /// and its QR code; open it on the phone. Binding to any other address serves HTTPS with a
    /// self-signed certificate (kept in cordon's state folder) whose SHA-256 fingerprint is
    /// printed: check it on the phone before pairing.
    Console(ConsoleArgs),
    /// From inside the sandbox: ask the human for a wider boundary, with a justification.
    ///
    /// `cordon request network.allow pypi.org -- pip needs the package index` asks for one
    /// more name through the allow-list proxy (with `--net allow`); `cordon request command git
    /// push -- publish the fix` asks that command lines starting with those words run without
    /// the rules' prompt (a `forbid` rule still refuses them). The human answers on cordon's
    /// terminal or in `cordon console`: allow once (the next connection or command line),
    /// for the rest of this run, or deny; 5 minutes without an answer is a deny. Files cannot
    /// be widened in a running sandbox: that is refused at once, with the flag to re-run with.
    ///
    /// Exit status: 0 allowed; 1 denied (or nobody answered in time); 2 refused without asking
    /// anyone (cordon cannot grant it in this run; the message says what would); 125 not
    /// inside a cordon sandbox, or the request door did not answer.
    Request(RequestArgs),
    /// Windows: set up the elevated mode once, as an administrator.
    ///
    /// Makes the local group CordonSandboxUsers and the accounts CordonSandboxOffline and
    /// CordonSandboxOnline (random passwords kept only under DPAPI in cordon's state folder,
    /// hidden from the logon screen), the firewall rules that leave the offline account only
    /// loopback to cordon's proxy, and WFP filters for DNS and ICMP. Re-running it converges
    /// (fresh passwords, rules replaced). Without an administrator's token it asks Windows to
    /// elevate (UAC) and waits. `--dry-run` prints every step and changes nothing;
    /// `--remove` undoes all of it, one line per step. On Linux nothing needs an
    /// administrator: this exits 125 saying so.
    Setup(SetupArgs),
    /// Internal (Windows elevated runs): cordon's copy started as the sandbox account, which
    /// reads one request on stdin, starts the command and hands it back (docs/windows.md).
    #[cfg(windows)]
    #[command(name = "__as-account", hide = true)]
    AsAccount,
    /// Internal (Windows elevated runs): cordon's long-lived broker as the sandbox account,
    /// started once by `cordon run`, serving its commands over a named pipe (docs/windows.md).
    #[cfg(windows)]
    #[command(name = "__broker", hide = true)]
    Broker,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// The elevated mode's setup (the only mode that has one).
    #[arg(long, required = true)]
    pub elevated: bool,
    /// Print what setup would do, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Undo setup instead: stop the sandbox accounts' processes, delete the accounts and
    /// the group, then their rights, firewall rules, WFP filters, ACEs, logon-screen hiding
    /// and stored passwords. Safe to run again; exits 125 naming anything left.
    #[arg(long)]
    pub remove: bool,
    /// The account cordon runs for (its SID), passed by cordon to its elevated self.
    #[arg(long, hide = true, value_name = "SID")]
    pub for_user: Option<String>,
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// What is asked for: `network.allow HOST`, or `command PROGRAM [ARG...]`.
    #[arg(required = true, value_name = "WHAT")]
    pub what: Vec<String>,
    /// Why the work needs it, in words the human will read (after `--`).
    #[arg(last = true, required = true, value_name = "JUSTIFICATION")]
    pub justification: Vec<String>,
    /// Print the answer as JSON (`choice`, `channel`, `by`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyArg {
    /// Apply at exit when nothing is refused and nothing conflicts.
    Auto,
    /// Keep the transaction for review.
    Never,
}

#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// List the transactions: name, workspace, commands run, whether one is in use.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show what a transaction changes: a unified diff for text, a line for binary files,
    /// mode and symlink changes, and changes to protected paths marked refused.
    Diff {
        name: String,
        /// The change as JSON data (the console shows it from this).
        #[arg(long)]
        json: bool,
    },
    /// Apply a transaction (or only PATHs of it) to the workspace. A file changed in the
    /// workspace since the transaction first saw it is a conflict: reported, never
    /// overwritten, both versions kept. Crash-safe: an interrupted apply is finished or rolled
    /// back the next time the transaction is opened.
    Apply {
        name: String,
        /// Only these paths (files or directories, relative to the current directory).
        paths: Vec<PathBuf>,
    },
    /// Throw a transaction away; the workspace is not touched.
    Discard { name: String },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Print the decision (allow, prompt, forbid) for ARGV and the rule that made it.
    Check(RulesCheckArgs),
}

#[derive(Debug, Args)]
pub struct RulesCheckArgs {
    /// The workspace whose .cordon.toml counts [default: current directory].
    #[arg(short, long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// An extra policy file, as with `cordon run --policy`.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Print one JSON object (with at least `decision` and `rule`).
    #[arg(long)]
    pub json: bool,
    /// The command line to judge (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGV"
    )]
    pub argv: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Address to listen on [default: 127.0.0.1:7777]; non-loopback addresses get TLS.
    #[arg(long, value_name = "ADDR:PORT")]
    pub bind: Option<std::net::SocketAddr>,
    /// The audit log whose history the console shows [default: cordon's].
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetArg {
    /// No network: a fresh network namespace with only loopback.
    Off,
    /// Only the allowed domains, through cordon's proxy at http://127.0.0.1:3128 inside the
    /// sandbox (announced in the usual proxy variables); nothing else leaves.
    Allow,
    /// The host's network, unrestricted.
    Full,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Writable project root [default: current directory].
    #[arg(short, long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Extra policy file (TOML), layered over the defaults, your config and the workspace file.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Another writable path (repeatable).
    #[arg(long, value_name = "PATH")]
    pub allow_write: Vec<PathBuf>,
    /// Another path the command cannot read (repeatable).
    #[arg(long, value_name = "PATH")]
    pub deny_read: Vec<PathBuf>,
    /// Keep this environment variable although its name looks like a secret (repeatable).
    #[arg(long, value_name = "NAME")]
    pub keep_env: Vec<String>,
    /// Network mode.
    #[arg(long, value_enum, value_name = "MODE")]
    pub net: Option<NetArg>,
    /// Allow a destination through cordon's proxy: an exact name (crates.io), `*.example.com`
    /// for its subdomains only (not example.com itself), or an IP address (matches only that
    /// address written literally). Repeatable; implies --net allow.
    #[arg(long, value_name = "PATTERN")]
    pub allow_domain: Vec<String>,
    /// Let allowed names resolve to loopback, private, link-local or cloud-metadata addresses;
    /// without it such destinations are refused, whatever name led there.
    #[arg(long)]
    pub allow_local_destinations: bool,
    /// Memory for the whole process tree, swap included: 512M, 2G, 1.5GiB or bytes (K/M/G/T
    /// are powers of 1024), or `unlimited`. Past it the kernel OOM-kills (exit 137 if it was the
    /// command) and cordon names the limit. Needs a cgroup (root, or a delegated systemd
    /// scope); else exit 125, or with --allow-weaker a per-process RLIMIT_AS.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU time for the whole tree, in cores: 0.5, 1.5, 2. The tree is throttled to it, not
    /// killed. Needs a cgroup; without one cordon refuses (exit 125), even with --allow-weaker.
    #[arg(long, value_name = "CORES")]
    pub cpu: Option<String>,
    /// Processes and threads alive at once in the tree: past it fork/clone fail with EAGAIN and
    /// cordon reports the refusals. Needs a cgroup; else exit 125, or with --allow-weaker
    /// RLIMIT_NPROC for your user inside the sandbox.
    #[arg(long, value_name = "N")]
    pub pids: Option<String>,
    /// Wall-clock limit from the moment the command starts: 90s, 5m, 1h 30m, 500ms. When it
    /// passes, cordon kills the whole sandbox and exits 124.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Keep the command's writes to the workspace in a transaction (a copy-on-write layer in
    /// cordon's state folder) instead of the workspace itself. NAME picks a transaction to
    /// create or continue (several commands can share one); without it a new name is made
    /// and printed. When the command ends cordon prints what changed; review it with `cordon
    /// tx diff NAME`, then `cordon tx apply NAME` or `cordon tx discard NAME`.
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "", require_equals = false)]
    pub transaction: Option<String>,
    /// With --transaction: `auto` applies the change when the command ends if it touches no
    /// protected path and nothing in the workspace changed under it; `never` (the default)
    /// keeps it for review.
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        default_value = "never",
        requires = "transaction"
    )]
    pub apply: ApplyArg,
    /// Kill the whole sandbox at the first refusal of CLASS: `syscall` (a syscall the filter
    /// refused, e.g. bpf, io_uring, a new user namespace, TIOCSTI), `network` (a request the
    /// proxy refused) or `all`. Comma-separated or repeated. Without it a refusal only fails
    /// that one operation (EPERM, HTTP 403) and is logged.
    #[arg(long, value_name = "CLASS", value_delimiter = ',')]
    pub kill_on_violation: Vec<String>,
    /// How long a question for a human (a `prompt` rule, `unlisted = "ask"`, an agent's
    /// `cordon request`) waits for an answer on the terminal or in `cordon console` before it
    /// counts as denied [default: 5m].
    #[arg(long, value_name = "DURATION", value_parser = parse_wait)]
    pub approval_timeout: Option<std::time::Duration>,
    /// Append audit events (JSON lines) to FILE [default: $XDG_STATE_HOME/cordon/audit.jsonl].
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
    /// Where user namespaces are unavailable, accept the Landlock-only mode (writes confined,
    /// the deny-read set unreadable; protected paths, processes and most network channels NOT
    /// isolated); where no
    /// cgroup can be made, accept per-process rlimits for --memory and --pids.
    #[arg(long)]
    pub allow_weaker: bool,
    /// The command and its arguments (put them after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Print an AppArmor profile that lets cordon use user namespaces on Ubuntu 24.04+.
    #[arg(long)]
    pub apparmor_profile: bool,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The workspace whose .cordon.toml to approve [default: current directory].
    #[arg(short, long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

/// A duration such as 90s, 5m or 1h 30m, at least one second.
fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e}"))?;
    match d >= std::time::Duration::from_secs(1) {
        true => Ok(d),
        false => Err(format!(
            "`{text}` is too short for a human to answer: at least 1s"
        )),
    }
}
