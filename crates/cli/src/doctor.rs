//! `cordon doctor`: what this machine can enforce, and what each guarantee rests on.

use cordon_linux::{probe, Mechanism, Mode, NetMode};
use serde_json::json;

use crate::args::DoctorArgs;
use crate::guarantees;

pub fn doctor(args: &DoctorArgs) -> i32 {
    if args.apparmor_profile {
        let exe = std::env::current_exe().unwrap_or_else(|_| "/usr/local/bin/cordon".into());
        print!("{}", probe::apparmor_profile(&exe));
        return 0;
    }
    let kernel = probe::kernel_release();
    let abi = probe::landlock_abi();
    let userns = probe::userns();
    let overlay = if userns.is_ok() {
        probe::overlayfs_in_userns()
    } else {
        Err("needs user namespaces".into())
    };
    let seccomp = probe::seccomp();
    let observed = guarantees::observed_denials(
        probe::seccomp_user_notification(),
        abi,
        &probe::kernel_audit(),
    );
    let cg = probe::cgroups();
    let knobs = probe::userns_knobs();
    let mode = if userns.is_ok() {
        Mode::Namespaces
    } else {
        Mode::LandlockOnly
    };
    let usable = abi > 0 && userns.is_ok();
    let limits = probe::limits();
    // Tried for real by the limits probe (a cgroup made and removed), not guessed from
    // permissions.
    let delegated = matches!(limits, Mechanism::CgroupV1(_) | Mechanism::CgroupV2(_));
    let mut table = guarantees::for_run(mode, NetMode::Off, abi, guarantees::limits_here(&limits));
    // The default run is offline; say what --allow-domain would rest on here.
    table.push(guarantees::allow_list(mode, crate::egress::PROXY_PORT));
    let (limits_by, controllers, limits_why) = match &limits {
        Mechanism::CgroupV2(c) => ("cgroup-v2", c.clone(), None),
        Mechanism::CgroupV1(c) => ("cgroup-v1", c.clone(), None),
        Mechanism::Rlimits(why) => ("rlimits", Vec::new(), Some(why.clone())),
        Mechanism::Nothing => ("rlimits", Vec::new(), None),
    };
    if args.json {
        let report = json!({
            "kernel": kernel,
            "landlock_abi": abi,
            "user_namespaces": userns.as_ref().map(|_| "available".to_string()).unwrap_or_else(|e| e.clone()),
            "user_namespace_knobs": knobs.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
            "seccomp": seccomp,
            "cgroups": {
                "version": cg.version,
                "v1_controllers": cg.v1_controllers,
                "v2_controllers": cg.v2_controllers,
                "delegated": delegated,
            },
            "overlayfs_in_userns": overlay.is_ok(),
            "limits": {
                "mechanism": limits_by,
                "controllers": controllers,
                "why_no_cgroup": limits_why,
            },
            "mode": if usable { "namespaces" } else if abi > 0 { "landlock-only (needs --allow-weaker)" } else { "none (cordon refuses to run)" },
            "guarantees": table,
            "observed_denials": observed,
        });
        println!("{report:#}");
        return 0;
    }
    let yes_no = |ok: bool| if ok { "yes" } else { "no" };
    println!("kernel                 {kernel}");
    println!(
        "landlock               {}",
        if abi > 0 {
            format!("ABI {abi}")
        } else {
            "unavailable".into()
        }
    );
    println!(
        "user namespaces        {}",
        userns
            .as_ref()
            .map(|_| "available".to_string())
            .unwrap_or_else(|e| format!("unavailable ({e})"))
    );
    for (k, v) in &knobs {
        println!("  {k:<40} {v}");
    }
    println!("seccomp                {}", yes_no(seccomp));
    println!(
        "cgroups                {} (v1: {}; v2: {}; delegated to you: {})",
        cg.version,
        if cg.v1_controllers.is_empty() {
            "-".into()
        } else {
            cg.v1_controllers.join(",")
        },
        if cg.v2_controllers.is_empty() {
            "no controllers".into()
        } else {
            cg.v2_controllers.join(",")
        },
        yes_no(delegated)
    );
    println!("overlayfs in userns    {}", yes_no(overlay.is_ok()));
    println!(
        "limits                 {}",
        match &limits {
            Mechanism::CgroupV2(c) => format!(
                "delegated cgroup v2 ({}): whole-tree memory, cpu, pids",
                c.join(", ")
            ),
            Mechanism::CgroupV1(c) =>
                format!("cgroup v1 ({}): whole-tree memory, cpu, pids", c.join(", ")),
            Mechanism::Rlimits(why) => format!(
                "rlimits only: no cgroup can be made ({why})\n  fix: {}",
                cordon_linux::limits::CGROUP_FIX
            ),
            Mechanism::Nothing => "rlimits only".to_string(),
        }
    );
    println!();
    match (usable, abi > 0) {
        (true, _) => println!("mode: full isolation (namespaces + Landlock)"),
        (false, true) => println!(
            "mode: cordon refuses to run unless you pass --allow-weaker (Landlock-only)\nfix: {}",
            probe::USERNS_FIX
        ),
        (false, false) => println!(
            "mode: cordon refuses to run: neither user namespaces nor Landlock are available"
        ),
    }
    println!();
    for g in &table {
        println!("{:<10} {:<13} {}", g.area, g.state, g.by);
    }
    println!();
    println!("denials cordon sees (audit events) on this machine:");
    for g in &observed {
        println!("{:<10} {:<13} {}", g.area, g.state, g.by);
    }
    0
}
