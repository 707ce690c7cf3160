//! The job object every command runs in: limits, and kill-on-close so nothing outlives it.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr::null;
use std::sync::{Arc, OnceLock};

use windows_sys::Win32::System::JobObjects::{
    CreateJobObjectW, JobObjectBasicProcessIdList, JobObjectCpuRateControlInformation,
    JobObjectExtendedLimitInformation, QueryInformationJobObject, SetInformationJobObject,
    JOBOBJECT_CPU_RATE_CONTROL_INFORMATION, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JOB_OBJECT_CPU_RATE_CONTROL_ENABLE, JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP,
    JOB_OBJECT_LIMIT_ACTIVE_PROCESS, JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION,
    JOB_OBJECT_LIMIT_JOB_MEMORY, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};

use crate::plan::job::JobLimits;

/// An anonymous job with the plan's limits. Closing the returned handle (cordon exiting,
/// or dying) kills every process in it.
pub fn create(limits: &JobLimits) -> io::Result<OwnedHandle> {
    // SAFETY: no security attributes and no name: an anonymous job only cordon holds.
    let h = unsafe { CreateJobObjectW(null(), null()) };
    if h.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `h` is a fresh job handle that nothing else owns.
    let job = unsafe { OwnedHandle::from_raw_handle(h) };
    let mut info = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
    let basic = &mut info.BasicLimitInformation;
    if limits.kill_on_close {
        basic.LimitFlags |= JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    }
    if limits.die_on_unhandled_exception {
        basic.LimitFlags |= JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
    }
    if let Some(n) = limits.active_processes {
        basic.LimitFlags |= JOB_OBJECT_LIMIT_ACTIVE_PROCESS;
        basic.ActiveProcessLimit = n;
    }
    if let Some(bytes) = limits.job_memory {
        info.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_JOB_MEMORY;
        info.JobMemoryLimit = usize::try_from(bytes).unwrap_or(usize::MAX);
    }
    // SAFETY: `info` is a fully initialised JOBOBJECT_EXTENDED_LIMIT_INFORMATION and the
    // length passed is its size.
    let ok = unsafe {
        SetInformationJobObject(
            job.as_raw_handle(),
            JobObjectExtendedLimitInformation,
            (&info as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
            std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    if let Some(rate) = limits.cpu_rate {
        let mut cpu = JOBOBJECT_CPU_RATE_CONTROL_INFORMATION {
            ControlFlags: JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP,
            ..Default::default()
        };
        cpu.Anonymous.CpuRate = rate;
        // SAFETY: `cpu` is initialised (CpuRate is the union member HARD_CAP reads) and the
        // length passed is its size.
        let ok = unsafe {
            SetInformationJobObject(
                job.as_raw_handle(),
                JobObjectCpuRateControlInformation,
                (&cpu as *const JOBOBJECT_CPU_RATE_CONTROL_INFORMATION).cast(),
                std::mem::size_of::<JOBOBJECT_CPU_RATE_CONTROL_INFORMATION>() as u32,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(job)
}

/// Puts this process into `job` (tests: a process stands in for a sandboxed command).
pub fn assign_current(job: &OwnedHandle) -> io::Result<()> {
    // SAFETY: `job` is a valid job handle; the pseudo-handle names this process.
    let ok = unsafe {
        windows_sys::Win32::System::JobObjects::AssignProcessToJobObject(
            job.as_raw_handle(),
            windows_sys::Win32::System::Threading::GetCurrentProcess(),
        )
    };
    match ok {
        0 => Err(io::Error::last_os_error()),
        _ => Ok(()),
    }
}

/// A run's job once it exists, for what checks processes against it while the run goes on
/// (the proxy's client check in `--net allow`): set once, right before the command resumes.
pub type JobWatch = Arc<OnceLock<OwnedHandle>>;

/// The ids of the processes in `job` now (active ones: an exited process has left it).
pub fn process_ids(job: &OwnedHandle) -> io::Result<Vec<u32>> {
    // JOBOBJECT_BASIC_PROCESS_ID_LIST: two DWORDs (assigned, listed), then ULONG_PTR ids;
    // read as usizes, which is its layout on 64-bit Windows only.
    const _: () = assert!(std::mem::size_of::<usize>() == 8);
    // Grown until every assigned process fits.
    let mut room = 64usize;
    loop {
        let mut buf = vec![0usize; 1 + room];
        let bytes = u32::try_from(buf.len() * std::mem::size_of::<usize>())
            .map_err(|_| io::Error::other("job process list too large"))?;
        // SAFETY: `buf` is `bytes` long and usize-aligned, as the list's ids need.
        let ok = unsafe {
            QueryInformationJobObject(
                job.as_raw_handle(),
                JobObjectBasicProcessIdList,
                buf.as_mut_ptr().cast(),
                bytes,
                std::ptr::null_mut(),
            )
        };
        // The header's two u32s share the first usize (little-endian: assigned is low).
        let assigned = (buf[0] & 0xFFFF_FFFF) as usize;
        let listed = (buf[0] >> 32) as usize;
        if ok != 0 && listed >= assigned {
            return Ok(buf[1..1 + listed.min(room)]
                .iter()
                .map(|&id| id as u32)
                .collect());
        }
        // ERROR_MORE_DATA, or more processes joined between the calls.
        let e = io::Error::last_os_error();
        if ok == 0 && e.raw_os_error() != Some(234) {
            return Err(e);
        }
        if room >= 1 << 16 {
            return Err(io::Error::other("job process list keeps growing"));
        }
        room = (assigned.max(room) * 2).min(1 << 16);
    }
}
