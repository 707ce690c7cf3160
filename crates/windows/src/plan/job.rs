//! Resource limits as a job object's settings.

use cordon_policy::{LimitKind, Limits};

/// JOBOBJECT_EXTENDED_LIMIT_INFORMATION and CPU rate control, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLimits {
    /// JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE: when cordon's handle closes (cordon exits or
    /// dies), every process in the job is killed. Always set: nothing outlives the command.
    pub kill_on_close: bool,
    /// JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION: a crash ends the process instead of
    /// opening a Windows Error Reporting dialog that would keep it alive.
    pub die_on_unhandled_exception: bool,
    /// JOB_OBJECT_LIMIT_JOB_MEMORY: committed memory of the whole tree, bytes.
    pub job_memory: Option<u64>,
    /// JOB_OBJECT_LIMIT_ACTIVE_PROCESS: processes alive at once. Windows counts processes,
    /// not threads as Linux's pids controller does.
    pub active_processes: Option<u32>,
    /// JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | HARD_CAP: the tree's share of *all* the
    /// machine's CPUs in 1/100 of a percent (1..=10000).
    pub cpu_rate: Option<u32>,
    /// Wall-clock limit in milliseconds, enforced by the executor's wait
    /// (TerminateJobObject, then exit status 124).
    pub timeout_ms: Option<u64>,
}

/// A limit the policy sets that a job object cannot enforce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    pub kind: LimitKind,
    pub why: &'static str,
}

/// The job settings for `limits` on a machine with `cpus` logical processors.
pub fn job_limits(limits: &Limits, cpus: u32) -> (JobLimits, Vec<Unsupported>) {
    let cpus = u64::from(cpus.max(1));
    let cpu_rate = limits.get(LimitKind::Cpu).map(|millicores| {
        // millicores / (cpus * 1000) of the machine, in units of 1/10000, rounded up so a
        // small limit never becomes 0 (which Windows rejects); more cores than the machine
        // has is the whole machine.
        let rate = (millicores * 10_000).div_ceil(cpus * 1000);
        u32::try_from(rate.clamp(1, 10_000)).unwrap_or(10_000)
    });
    let active_processes = limits
        .get(LimitKind::Pids)
        .map(|n| u32::try_from(n.max(1)).unwrap_or(u32::MAX));
    let mut unsupported = Vec::new();
    if limits.get(LimitKind::FileSize).is_some() {
        unsupported.push(Unsupported {
            kind: LimitKind::FileSize,
            why: "Windows has no per-process file size limit; use a quota on the volume",
        });
    }
    if limits.get(LimitKind::OpenFiles).is_some() {
        unsupported.push(Unsupported {
            kind: LimitKind::OpenFiles,
            why: "Windows has no per-process handle limit a job can set",
        });
    }
    let job = JobLimits {
        kill_on_close: true,
        die_on_unhandled_exception: true,
        job_memory: limits.get(LimitKind::Memory),
        active_processes,
        cpu_rate,
        timeout_ms: limits.get(LimitKind::Timeout),
    };
    (job, unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_policy::{LimitLayer, Setting};

    fn limits(settings: &[(LimitKind, u64)]) -> Limits {
        let mut layer = LimitLayer::default();
        for (k, v) in settings {
            layer.set(*k, Some(Setting::Max(*v)));
        }
        let mut l = Limits::default();
        l.apply(&layer);
        l
    }

    #[test]
    fn cpu_cores_become_a_rate_of_the_whole_machine() {
        let table = [
            (1500, 4, 3750),    // 1.5 of 4 cores = 37.5%
            (1000, 8, 1250),    // 1 of 8
            (1, 64, 1),         // rounds up, never 0
            (16000, 4, 10_000), // more than the machine: all of it
            (500, 0, 5000),     // an unknown CPU count counts as one
        ];
        for (millicores, cpus, rate) in table {
            let (job, _) = job_limits(&limits(&[(LimitKind::Cpu, millicores)]), cpus);
            assert_eq!(job.cpu_rate, Some(rate), "{millicores} on {cpus}");
        }
    }

    #[test]
    fn every_job_kills_on_close_and_maps_the_rest() {
        let (job, unsupported) = job_limits(&Limits::default(), 4);
        assert!(job.kill_on_close && job.die_on_unhandled_exception);
        assert_eq!(
            (job.job_memory, job.active_processes, job.cpu_rate),
            (None, None, None)
        );
        assert!(unsupported.is_empty());
        let l = limits(&[
            (LimitKind::Memory, 64 << 20),
            (LimitKind::Pids, 256),
            (LimitKind::Timeout, 90_000),
            (LimitKind::FileSize, 1 << 20),
            (LimitKind::OpenFiles, 64),
        ]);
        let (job, unsupported) = job_limits(&l, 4);
        assert_eq!(job.job_memory, Some(64 << 20));
        assert_eq!(job.active_processes, Some(256));
        assert_eq!(job.timeout_ms, Some(90_000));
        let kinds: Vec<_> = unsupported.iter().map(|u| u.kind).collect();
        assert_eq!(kinds, [LimitKind::FileSize, LimitKind::OpenFiles]);
    }
}
