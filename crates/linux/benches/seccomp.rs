//! What the syscall filter costs a run: compiling it (once per `cordon run`, in cordon) and
//! installing it (once, in the command's process before exec), measured against a bare
//! fork + exit. Run: `cargo bench -p cordon-linux --bench seccomp` (ITERS, default 2000).

use std::time::{Duration, Instant};

use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};

fn main() {
    let iters: u32 = std::env::var("ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let started = Instant::now();
    for _ in 0..iters {
        std::hint::black_box(cordon_linux::seccomp::compile(false).expect("compile"));
    }
    let compile = started.elapsed() / iters;
    let program = cordon_linux::seccomp::compile(false).expect("compile");
    let bare = per_child(iters, || {});
    let installed = per_child(iters, || {
        // no_new_privs first, as in the sandbox; the listener closes with the child.
        let _ = nix::sys::prctl::set_no_new_privs();
        std::hint::black_box(program.install().expect("install"));
    });
    let (r, w) = nix::unistd::pipe().expect("pipe");
    let inside = per_child(iters, || {
        let _ = nix::sys::prctl::set_no_new_privs();
        let t = Instant::now();
        std::hint::black_box(program.install().expect("install"));
        let ns = t.elapsed().as_nanos() as u64;
        let _ = nix::unistd::write(&w, &ns.to_ne_bytes());
    });
    let _ = inside;
    drop(w);
    let mut total = 0u64;
    let mut buf = [0u8; 8];
    let mut n = 0u64;
    while let Ok(8) = nix::unistd::read(&r, &mut buf) {
        total += u64::from_ne_bytes(buf);
        n += 1;
    }
    let install_call = Duration::from_nanos(total / n.max(1));
    println!(
        "filter lengths (instructions):                 {:?}",
        program.lengths()
    );
    println!(
        "install call itself (in the child):            {:>8.1} µs",
        us(install_call)
    );
    println!(
        "filter compile (per run, in cordon):          {:>8.1} µs",
        us(compile)
    );
    println!(
        "fork + exit (baseline):                        {:>8.1} µs",
        us(bare)
    );
    println!(
        "fork + no_new_privs + install filter + exit:   {:>8.1} µs",
        us(installed)
    );
    println!(
        "filter added per run:                          {:>8.1} µs (compile + install)",
        us(compile) + us(installed) - us(bare)
    );
}

/// Mean wall time of fork, `work` in the child, exit, and the parent's wait.
fn per_child(iters: u32, work: impl Fn()) -> Duration {
    let started = Instant::now();
    for _ in 0..iters {
        match unsafe_fork() {
            ForkResult::Child => {
                work();
                std::process::exit(0);
            }
            ForkResult::Parent { child } => {
                let _ = waitpid(child, None);
            }
        }
    }
    started.elapsed() / iters
}

#[allow(unsafe_code)]
fn unsafe_fork() -> ForkResult {
    // SAFETY: this benchmark's process is single-threaded, so the child inherits no lock
    // held by another thread and may allocate.
    unsafe { fork() }.expect("fork")
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
