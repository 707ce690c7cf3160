//! Attack and legitimate-work tests for `cordon run`, organised by threat class. Every case
//! runs the real binary and judges by the host's state afterwards.
//!
//! `CORDON_BIN` overrides the binary (CI copies it somewhere an unprivileged user can reach);
//! `CORDON_TEST_DIR` overrides where workspaces are made.
#![cfg(target_os = "linux")] // the Linux backend's suite
#![allow(clippy::unwrap_used)] // a failed step in a test should stop it loudly

mod servers;
mod util;

mod egress;
mod env;
mod exit;
mod fs;
mod legit;
mod limits;
mod net;
mod policy;
mod proc;
mod requests;
mod syscalls;
mod tx;
mod weaker;
