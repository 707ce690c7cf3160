//! cordon's Windows backend: policy to a plan (restricted token, sandbox-write SID, ACL edits,
//! sandbox accounts, firewall and WFP rules, job limits), and an executor that applies it.
//!
//! The planner ([`plan`]) is pure and platform-free: it builds and is tested on Linux, where
//! most of the backend's logic is exercised with table tests. Only [`exec`] talks to Windows,
//! and it exists only when compiling for Windows. See docs/windows.md for the design, the
//! mapping from DESIGN.md's guarantees to Windows primitives and the per-command cost model.
#![deny(unsafe_code)]

pub mod broker;
pub mod cmdline;
pub mod handoff;
pub mod plan;
pub mod sid;
pub mod winpath;

#[cfg(windows)]
#[allow(unsafe_code)]
pub mod exec;

pub use plan::{plan, Host, Kind, Mode, PlanError, PlanInput, WindowsPlan};
pub use sid::Sid;
pub use winpath::WinPath;
