//! The Landlock-only mode, for machines without unprivileged user namespaces. Used only when
//! the user named it (`--allow-weaker`): writes are still confined and TCP is closed when the
//! network is off, but reads, protected paths, processes and other sockets are not isolated.

use std::os::fd::OwnedFd;

use crate::exec::{confine_and_exec, Prepared};
use crate::landlock_rules::Extra;
use crate::{NetMode, Plan};

/// The command's process in Landlock-only mode; never returns.
pub fn main(plan: &Plan, prepared: &Prepared, landlock: bool, status: OwnedFd) -> ! {
    crate::init::reset_signals();
    let extra = Extra {
        deny_tcp: plan.spec.net == NetMode::Off,
        scope: true,
    };
    confine_and_exec(prepared, &plan.writable, extra, landlock, status)
}
