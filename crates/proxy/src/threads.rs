//! Threads for the tunnels' blocking relays, kept for a while once idle: starting two fresh
//! threads for every tunnel costs more than the rest of its set-up (measured in
//! benches/throughput.rs), and a package manager opens tunnels by the hundred.

use std::collections::VecDeque;
use std::io;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// An idle thread ends after this long without work.
const IDLE_FOR: Duration = Duration::from_secs(10);
/// At most this many threads wait idle; more end as soon as their job is done.
const MAX_IDLE: usize = 64;
/// A relay thread needs little stack: it only loops over two splice calls.
const STACK: usize = 64 << 10;

struct Pool {
    state: Mutex<State>,
    work: Condvar,
}

struct State {
    /// Jobs handed to an idle thread, not yet picked up.
    queue: VecDeque<Job>,
    /// Idle threads not yet promised a job from `queue`.
    idle: usize,
}

static POOL: Pool = Pool {
    state: Mutex::new(State {
        queue: VecDeque::new(),
        idle: 0,
    }),
    work: Condvar::new(),
};

/// Runs `job` on an idle thread, or on a new one when none is idle.
pub fn run(job: impl FnOnce() + Send + 'static) -> io::Result<()> {
    let job: Job = Box::new(job);
    {
        let mut state = POOL.lock();
        if state.idle > 0 {
            state.idle -= 1;
            state.queue.push_back(job);
            POOL.work.notify_one();
            return Ok(());
        }
    }
    std::thread::Builder::new()
        .name("cordon-splice".into())
        .stack_size(STACK)
        .spawn(move || worker(job))
        .map(drop)
}

fn worker(mut job: Job) {
    loop {
        job();
        match POOL.next() {
            Some(next) => job = next,
            None => return,
        }
    }
}

impl Pool {
    /// The lock, also after a panic elsewhere: the state is two plain fields, never left
    /// half-updated.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits idle for the next job; `None` when this thread should end.
    fn next(&self) -> Option<Job> {
        let mut state = self.lock();
        if state.idle >= MAX_IDLE {
            return None;
        }
        state.idle += 1;
        loop {
            // A job in the queue was promised to some idle thread (`idle` already counts
            // it out); whichever wakes first takes it.
            if let Some(job) = state.queue.pop_front() {
                return Some(job);
            }
            let (next, waited) = self
                .work
                .wait_timeout(state, IDLE_FOR)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            if waited.timed_out() && state.queue.is_empty() {
                state.idle -= 1;
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn jobs_run_and_threads_are_reused() {
        let (tx, rx) = mpsc::channel();
        for i in 0..200 {
            let tx = tx.clone();
            run(move || {
                let _ = tx.send((i, std::thread::current().id()));
            })
            .unwrap();
        }
        let mut seen: Vec<_> = (0..200)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        seen.sort_by_key(|s| s.0);
        assert!(
            seen.iter().enumerate().all(|(i, s)| s.0 == i),
            "every job ran once"
        );
        let threads: std::collections::HashSet<_> = seen.iter().map(|s| s.1).collect();
        assert!(threads.len() < 200, "no thread was reused");
    }
}
