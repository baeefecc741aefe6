//! The bounded worker pool: a queue of jobs, `workers` threads, and a per-agent cap on
//! runs at once that the scheduler enforces by skipping jobs of agents at their cap (so
//! one busy agent cannot take every worker, and nobody is refused for it).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

/// A unit of work, tagged with the agent it runs for.
pub(crate) struct Job {
    pub(crate) agent: String,
    pub(crate) work: Box<dyn FnOnce() + Send>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    running: HashMap<String, usize>,
    running_total: usize,
    closed: bool,
}

/// Shared between submitters and workers.
pub(crate) struct Pool {
    state: Mutex<State>,
    /// Signalled when a job is queued or a run ends (a worker may take one).
    work: Condvar,
    /// Signalled when the queue shrinks (a submitter may queue).
    space: Condvar,
    capacity: usize,
    per_agent: usize,
}

/// Why a job was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The pool is shutting down.
    Closed,
}

impl Pool {
    pub(crate) fn new(capacity: usize, per_agent: usize) -> Arc<Pool> {
        Arc::new(Pool {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            space: Condvar::new(),
            capacity: capacity.max(1),
            per_agent: per_agent.max(1),
        })
    }

    /// Queues `job`, waiting while the queue is full (back-pressure on the connection that
    /// sent it).
    pub(crate) fn submit(&self, job: Job) -> Result<(), Refused> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if state.closed {
                return Err(Refused::Closed);
            }
            if state.queue.len() < self.capacity {
                state.queue.push_back(job);
                drop(state);
                self.work.notify_one();
                return Ok(());
            }
            state = self.space.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Jobs queued and runs in progress.
    pub(crate) fn load(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (state.queue.len(), state.running_total)
    }

    /// Stops taking new jobs; workers finish what is queued and running, then exit.
    pub(crate) fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.closed = true;
        drop(state);
        self.work.notify_all();
        self.space.notify_all();
    }

    /// A worker's loop: runs jobs until the pool is closed and drained.
    pub(crate) fn work(self: &Arc<Self>) {
        loop {
            let job = {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    let per_agent = self.per_agent;
                    let State { queue, running, .. } = &mut *state;
                    let ready = queue
                        .iter()
                        .position(|j| running.get(&j.agent).copied().unwrap_or(0) < per_agent);
                    if let Some(i) = ready {
                        let job = state.queue.remove(i);
                        if let Some(job) = job {
                            *state.running.entry(job.agent.clone()).or_insert(0) += 1;
                            state.running_total += 1;
                            self.space.notify_one();
                            break job;
                        }
                    }
                    if state.closed && state.queue.is_empty() {
                        return;
                    }
                    state = self.work.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            };
            let agent = job.agent;
            (job.work)();
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = state.running.get_mut(&agent) {
                *n -= 1;
                if *n == 0 {
                    state.running.remove(&agent);
                }
            }
            state.running_total -= 1;
            drop(state);
            // A job of this agent may have been waiting for the slot.
            self.work.notify_all();
        }
    }

    /// Waits until nothing is queued or running.
    #[cfg(test)]
    pub(crate) fn wait_idle(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while !state.queue.is_empty() || state.running_total > 0 {
            let (s, _) = self
                .space
                .wait_timeout(state, std::time::Duration::from_millis(20))
                .unwrap_or_else(|p| p.into_inner());
            state = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn one_agent_never_has_more_than_its_cap_running() {
        let pool = Pool::new(64, 1);
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let p = Arc::clone(&pool);
                std::thread::spawn(move || p.work())
            })
            .collect();
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..20 {
            let (now, peak, done) = (Arc::clone(&now), Arc::clone(&peak), Arc::clone(&done));
            pool.submit(Job {
                agent: "ops/a".into(),
                work: Box::new(move || {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    now.fetch_sub(1, Ordering::SeqCst);
                    done.fetch_add(1, Ordering::SeqCst);
                }),
            })
            .unwrap();
        }
        pool.wait_idle();
        pool.close();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(done.load(Ordering::SeqCst), 20);
        assert_eq!(peak.load(Ordering::SeqCst), 1);
        assert_eq!(
            pool.submit(Job {
                agent: "x".into(),
                work: Box::new(|| {})
            }),
            Err(Refused::Closed)
        );
    }
}
