//! cordon's policy model: what a sandbox may write, read, inherit, reach and use, and how
//! layers combine.
//!
//! This crate is pure: it parses text it is handed (resource limits included), merges layers
//! and resolves paths against directories it is told about. It never touches the file system
//! or the kernel, so every rule here is unit-tested without a sandbox.
#![forbid(unsafe_code)]

mod defaults;
mod diagnostic;
mod domains;
mod egress;
mod env;
pub mod git;
mod layer;
mod limits;
mod path;
mod resolve;
mod rules;
mod violation;

pub use defaults::{
    builtin, DEFAULT_DENY_READ_HOME, DEFAULT_ENV_DENY, DEFAULT_PROTECTED, DEFAULT_WRITABLE_TMP,
};
pub use diagnostic::Diagnostic;
pub use domains::{decide, DomainPattern, Host, PatternError, Verdict};
pub use egress::{local_class, Egress};
pub use env::{env_name_matches, scrub_env, secret_in_value, EnvDecision, GIT_CONFIG_SET};
pub use layer::{Layer, LayerSource, Network, Widening};
pub use limits::{LimitKind, LimitLayer, Limits, Setting};
pub use path::PathSpec;
pub use resolve::{content_hash, hex, Policy, ResolveContext, ResolvedPaths};
pub use rules::{
    windows_program, Approved, CommandLayer, CommandRule, CommandRules, CommandVerdict, Decision,
    Origin, Pattern,
};
pub use violation::ViolationClass;
