//! [`Caller`]: who asks, and what the broker keeps about them between requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use agentsec_audit::RunContext;
use agentsec_policy::{AgentId, SkillRef};
use zeroize::Zeroizing;

use crate::audit_path::PathRecorder;
use crate::outcome::Stop;

/// What learns released values so that they can be redacted from what the caller sends
/// back, and redacts the paths the broker records.
///
/// A WebAssembly host implements it with its output redactor; a front door that sends
/// nothing back (an SSH agent signing on a client's behalf) may use [`NoRedaction`].
pub trait Redaction: Send {
    /// Learns `value`, released under `path`. An error (a limit, in words) means the
    /// value cannot be redacted, and the broker then does not release it.
    ///
    /// # Errors
    /// The value would take the redactor past its limit.
    fn learn(&mut self, path: &str, value: &[u8]) -> Result<(), String>;

    /// `text` with every value learnt so far redacted (paths chosen by a caller may
    /// carry one).
    fn redact_text(&mut self, text: &str) -> String;
}

/// A [`Redaction`] for callers whose output is not redacted by the host: it learns
/// nothing and changes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoRedaction;

impl Redaction for NoRedaction {
    fn learn(&mut self, _path: &str, _value: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn redact_text(&mut self, text: &str) -> String {
        text.to_owned()
    }
}

/// A handle that stops a run from another thread: every later request of the caller is
/// refused with [`Stop::Cancelled`], and a WebAssembly host interrupts the skill at its
/// next deadline check. Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not tripped.
    pub fn new() -> Self {
        CancelToken::default()
    }

    /// Trips the token (idempotent).
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether it has been tripped.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Per-caller bounds on requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallerLimits {
    /// Requests (of any operation) answered; the next one stops the caller.
    pub max_calls: u32,
    /// Longest raw path accepted, in bytes (at most [`agentsec_policy::MAX_PATH_LEN`]).
    pub max_path_len: usize,
}

impl CallerLimits {
    /// Limits of `max_calls` requests and paths of `max_path_len` bytes (capped at the
    /// parser's own bound).
    pub fn new(max_calls: u32, max_path_len: usize) -> Self {
        CallerLimits {
            max_calls,
            max_path_len: max_path_len.min(agentsec_policy::MAX_PATH_LEN),
        }
    }
}

/// Counters of one caller, reported after its run ends.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunStats {
    /// Requests made (every operation).
    pub calls: u32,
    /// Values released.
    pub released: u32,
    /// Requests the policy denied.
    pub denied: u32,
}

/// Who asks (agent, skill, run) and the state the broker keeps for them: counters, the
/// redactor that learns what they are given, how their paths are recorded, and whether
/// they have been stopped.
pub struct Caller<R: Redaction> {
    pub(crate) agent: AgentId,
    pub(crate) skill: SkillRef,
    pub(crate) run: RunContext,
    pub(crate) limits: CallerLimits,
    pub(crate) stats: RunStats,
    pub(crate) redactor: R,
    pub(crate) paths: PathRecorder,
    pub(crate) stop: Option<Stop>,
    pub(crate) cancel: CancelToken,
    /// Reused to render a path's canonical form on every call. Wiped on
    /// drop: a skill may pass a value it was given as a path.
    pub(crate) path_buf: Zeroizing<String>,
}

impl<R: Redaction> Caller<R> {
    /// A caller: `agent` (proven by the front door) running `skill`, recorded as `run`.
    pub fn new(
        agent: AgentId,
        skill: SkillRef,
        run: RunContext,
        limits: CallerLimits,
        redactor: R,
    ) -> Self {
        Caller {
            agent,
            skill,
            run,
            limits,
            stats: RunStats::default(),
            redactor,
            paths: PathRecorder::default(),
            stop: None,
            cancel: CancelToken::new(),
            path_buf: Zeroizing::new(String::new()),
        }
    }

    /// Stops the caller when `cancel` is tripped.
    #[must_use]
    pub fn with_cancel(mut self, cancel: CancelToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// The agent.
    pub fn agent(&self) -> &AgentId {
        &self.agent
    }

    /// The skill.
    pub fn skill(&self) -> &SkillRef {
        &self.skill
    }

    /// The run, as audit records name it.
    pub fn run(&self) -> &RunContext {
        &self.run
    }

    /// The counters so far.
    pub fn stats(&self) -> RunStats {
        self.stats
    }

    /// Why the caller was stopped, if it was.
    pub fn stopped(&self) -> Option<&Stop> {
        self.stop.as_ref()
    }

    /// The redactor (to redact the caller's output with everything it was given).
    pub fn redactor(&mut self) -> &mut R {
        &mut self.redactor
    }

    /// The cancel token this caller obeys.
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }
}
