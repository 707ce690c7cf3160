//! The job object every command runs in: limits, and kill-on-close so nothing outlives it.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr::null;
use std::sync::{Arc, OnceLock};

use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
use windows_sys::Win32::System::SystemServices::{
    JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT, JOB_OBJECT_MSG_JOB_MEMORY_LIMIT,
    JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT,
};
use windows_sys::Win32::System::IO::{CreateIoCompletionPort, GetQueuedCompletionStatus};

use windows_sys::Win32::System::JobObjects::{
    CreateJobObjectW, JobObjectAssociateCompletionPortInformation, JobObjectBasicProcessIdList,
    JobObjectCpuRateControlInformation, JobObjectExtendedLimitInformation,
    QueryInformationJobObject, SetInformationJobObject, TerminateJobObject,
    JOBOBJECT_ASSOCIATE_COMPLETION_PORT, JOBOBJECT_CPU_RATE_CONTROL_INFORMATION,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JOB_OBJECT_CPU_RATE_CONTROL_ENABLE,
    JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP, JOB_OBJECT_LIMIT_ACTIVE_PROCESS,
    JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION, JOB_OBJECT_LIMIT_JOB_MEMORY,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
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
    // SAFETY: the pseudo-handle names this process and needs no closing.
    let me = unsafe { windows_sys::Win32::System::Threading::GetCurrentProcess() };
    assign_raw(job, me)
}

/// Puts `process` into `job` (tests: a child stands in for a sandboxed command).
pub fn assign(job: &OwnedHandle, process: &impl AsRawHandle) -> io::Result<()> {
    assign_raw(job, process.as_raw_handle())
}

fn assign_raw(job: &OwnedHandle, process: std::os::windows::io::RawHandle) -> io::Result<()> {
    // SAFETY: `job` is a valid job handle and `process` a process handle the caller holds.
    let ok = unsafe {
        windows_sys::Win32::System::JobObjects::AssignProcessToJobObject(
            job.as_raw_handle(),
            process,
        )
    };
    match ok {
        0 => Err(io::Error::last_os_error()),
        _ => Ok(()),
    }
}

/// Ends every process in `job` now, each exiting with `code`.
pub fn terminate(job: &OwnedHandle, code: u32) -> io::Result<()> {
    // SAFETY: `job` is a valid job handle; a handle without JOB_OBJECT_TERMINATE access
    // makes the call fail, which is reported.
    match unsafe { TerminateJobObject(job.as_raw_handle(), code) } {
        0 => Err(io::Error::last_os_error()),
        _ => Ok(()),
    }
}

/// A run's job once it exists, for what looks at it while the run goes on and after it
/// (the proxy's client check in `--net allow`, the limits the job hit): shown once, right
/// before the command resumes. Clones share one job.
#[derive(Debug, Default, Clone)]
pub struct JobWatch(Arc<Watched>);

#[derive(Debug, Default)]
struct Watched {
    job: OnceLock<OwnedHandle>,
    /// The completion port the job posts its JOB_OBJECT_MSG_* to.
    port: OnceLock<OwnedHandle>,
}

/// A limit the job refused something at (plain data for the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobTrip {
    /// JOB_OBJECT_MSG_JOB_MEMORY_LIMIT (or a process's own memory limit): an allocation
    /// that would have taken the tree past `--memory` failed.
    Memory,
    /// JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT: a process start past `--pids` was refused.
    Processes,
}

impl JobWatch {
    /// Shows the run's job: a handle of its own is kept, and a completion port attached so
    /// the limits it hits are known afterwards (best effort: a job already attached to a port
    /// elsewhere, or a system without, only loses those reports). Call before the command
    /// resumes; later calls do nothing.
    pub fn show(&self, job: &OwnedHandle) -> io::Result<()> {
        if self.0.job.get().is_some() {
            return Ok(());
        }
        let _ = self.0.job.set(job.try_clone()?);
        if let Ok(port) = attach_port(job) {
            let _ = self.0.port.set(port);
        }
        Ok(())
    }

    /// The job, once shown.
    pub fn job(&self) -> Option<&OwnedHandle> {
        self.0.job.get()
    }

    /// Ends every process of the job with `code` (`terminate_on_violation`); an error if
    /// the job was never shown or cannot be terminated, so the caller can fail closed.
    pub fn terminate(&self, code: u32) -> io::Result<()> {
        let job = self
            .job()
            .ok_or_else(|| io::Error::other("the run's job was not shown to cordon"))?;
        terminate(job, code)
    }

    /// The limits the job hit so far, each once, in the order first hit.
    pub fn trips(&self) -> Vec<JobTrip> {
        let Some(port) = self.0.port.get() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        loop {
            let (mut message, mut key) = (0u32, 0usize);
            let mut overlapped = std::ptr::null_mut();
            // SAFETY: a port we made; a zero timeout only drains what is queued.
            let got = unsafe {
                GetQueuedCompletionStatus(
                    port.as_raw_handle(),
                    &mut message,
                    &mut key,
                    &mut overlapped,
                    0,
                )
            };
            if got == 0 {
                return out;
            }
            let trip = match message {
                JOB_OBJECT_MSG_JOB_MEMORY_LIMIT | JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT => {
                    JobTrip::Memory
                }
                JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT => JobTrip::Processes,
                _ => continue,
            };
            if !out.contains(&trip) {
                out.push(trip);
            }
        }
    }
}

/// A completion port `job` posts its messages to.
fn attach_port(job: &OwnedHandle) -> io::Result<OwnedHandle> {
    // SAFETY: a new port, not tied to any file (INVALID_HANDLE_VALUE), one thread.
    let port = unsafe { CreateIoCompletionPort(INVALID_HANDLE_VALUE, std::ptr::null_mut(), 0, 1) };
    if port.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh handle only we own.
    let port = unsafe { OwnedHandle::from_raw_handle(port) };
    let info = JOBOBJECT_ASSOCIATE_COMPLETION_PORT {
        CompletionKey: job.as_raw_handle(),
        CompletionPort: port.as_raw_handle(),
    };
    // SAFETY: `info` is initialised and the length is its size; both handles are valid.
    let ok = unsafe {
        SetInformationJobObject(
            job.as_raw_handle(),
            JobObjectAssociateCompletionPortInformation,
            (&info as *const JOBOBJECT_ASSOCIATE_COMPLETION_PORT).cast(),
            std::mem::size_of::<JOBOBJECT_ASSOCIATE_COMPLETION_PORT>() as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(port)
}

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
