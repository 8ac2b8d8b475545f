//! How failures print. Every failure kind goes through here, so every message
//! names the seed, the virtual time and the step the same way.

use std::fmt::{self, Display, Formatter};

use super::*;

impl Display for Site {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

impl Display for RunPoint {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {}, virtual time {}, step {}",
            self.seed, self.time, self.step
        )
    }
}

impl TaskInfo {
    /// The short label used inside trace lines and reports: `#3 worker-2`,
    /// or `#3` for an unnamed task.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{} {name}", self.id),
            None => self.id.to_string(),
        }
    }
}

impl Display for TaskInfo {
    /// `#3 worker-2 (spawned at tests/race.rs:12)`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} (spawned at {})", self.label(), self.spawned_at)
    }
}

fn blocked_list(f: &mut Formatter<'_>, tasks: &[BlockedTask]) -> fmt::Result {
    for b in tasks {
        write!(f, "\n  {}", b.task)?;
        if !b.holds.is_empty() {
            write!(f, " holds {} and", b.holds.join(", "))?;
        }
        write!(f, " waits on {}", b.waiting_on)?;
    }
    Ok(())
}

impl Display for SocketLeak {
    /// `tcp stream client:49152 -> server:80, opened by #3 fetch
    /// (spawned at …), which has finished`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}, opened by {}", self.socket, self.opened_by)?;
        let state = if self.finished {
            "which has finished"
        } else {
            "a leaked task"
        };
        match &self.last_used_by {
            Some(user) => write!(f, ", last used by {user}, {state}"),
            None => write!(f, ", {state}"),
        }
    }
}

impl Display for CycleLink {
    /// `#1 task-a holds mutex 'lock1' and waits for mutex 'lock2'`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.task.label())?;
        if let Some(holds) = &self.holds {
            write!(f, " holds {holds} and")?;
        }
        write!(f, " waits for {}", self.waits_for)
    }
}

/// `1 time`, `3 times`.
fn times(n: u64) -> String {
    plural(n, "time")
}

/// `1 step`, `3 steps`: a count and its noun, singular or plural.
pub(crate) fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A wall-time duration for a report: `0.52s`, `100ms`.
fn seconds(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

fn cycle_text(cycle: &[CycleLink]) -> String {
    let links: Vec<String> = cycle.iter().map(ToString::to_string).collect();
    links.join("; ")
}

impl Display for Failure {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Panic(r) => {
                let whose = if r.task.id == TaskId::MAIN {
                    "the main task".to_string()
                } else {
                    format!("task {}", r.task)
                };
                match &r.location {
                    Some(loc) => write!(f, "{whose} panicked at {loc}:{}", loc.column)?,
                    None => write!(f, "{whose} panicked")?,
                }
                write!(f, " ({})", r.at)?;
                write!(f, "\n  {}", r.message.replace('\n', "\n  "))?;
                if r.unobserved {
                    write!(
                        f,
                        "\n  nobody observed this panic: the task's JoinHandle was dropped or \
                         never awaited (await the handle, or configure `unobserved_panics`)"
                    )?;
                }
                Ok(())
            }
            Failure::Deadlock(r) => {
                match r.kind {
                    DeadlockKind::Cycle => {
                        let others = r
                            .blocked
                            .iter()
                            .any(|b| !r.cycle.iter().any(|c| c.task.id == b.task.id));
                        let who = if r.cycle.len() == 1 {
                            "this task waits on itself, so it can never go on"
                        } else {
                            "these tasks wait on each other in a cycle, so none of them can \
                             ever go on"
                        };
                        write!(
                            f,
                            "deadlock ({}): {}\n  {who} (found when the cycle closed{})",
                            r.at,
                            cycle_text(&r.cycle),
                            if others {
                                ", while other tasks could still run"
                            } else {
                                ""
                            }
                        )?
                    }
                    _ => {
                        write!(
                            f,
                            "deadlock ({}): no task can make progress and no timer is \
                             pending, but the main task has not finished",
                            r.at
                        )?;
                        if !r.cycle.is_empty() {
                            write!(f, "\n  cycle: {}", cycle_text(&r.cycle))?;
                        }
                    }
                }
                blocked_list(f, &r.blocked)
            }
            Failure::TimeLimit(r) => {
                write!(
                    f,
                    "time limit: the virtual clock reached the limit of {} before the main \
                     task finished ({}); raise it with `max_virtual_time` if the run is \
                     meant to last longer",
                    crate::time::format_duration(r.limit),
                    r.at
                )?;
                blocked_list(f, &r.blocked)
            }
            Failure::StepLimit(r) => {
                write!(
                    f,
                    "step limit: {} without the main task finishing, a livelock or a \
                     busy loop ({}); raise it with `max_steps` if the run is meant to be \
                     this long",
                    plural(r.limit, "step"),
                    r.at
                )?;
                for (task, polls) in &r.busiest {
                    write!(f, "\n  {task} was polled {}", times(*polls))?;
                }
                Ok(())
            }
            Failure::Leak(r) => {
                let (t, s) = (r.tasks.len(), r.sockets.len());
                let tasks = format!(
                    "{t} task{} still alive",
                    if t == 1 { " was" } else { "s were" }
                );
                let sockets = format!(
                    "{s} socket{} still open",
                    if s == 1 { " was" } else { "s were" }
                );
                let what = match (t, s) {
                    (_, 0) => tasks,
                    (0, _) => sockets,
                    _ => format!("{tasks} and {sockets}"),
                };
                let mut fixes = Vec::new();
                if t > 0 {
                    fixes.push("await or abort the tasks, or spawn them as daemons");
                }
                if s > 0 {
                    fixes.push(
                        "drop or close the sockets before the run ends, or keep them in a \
                         running host task",
                    );
                }
                write!(
                    f,
                    "leak: {what} when the main task returned ({}); {}",
                    r.at,
                    fixes.join("; ")
                )?;
                blocked_list(f, &r.tasks)?;
                for leak in &r.sockets {
                    write!(f, "\n  {leak}")?;
                }
                Ok(())
            }
            Failure::Livelock(r) => {
                match r.kind {
                    LivelockKind::WithinPoll => {
                        let who = r
                            .busiest
                            .first()
                            .map_or("a task".to_string(), |(t, _)| format!("task {t}"));
                        write!(
                            f,
                            "livelock: {who} woke itself {} inside one poll without \
                             returning ({}); a loop inside `poll` re-polls a future that wakes \
                             itself and returns `Pending` (a busy retry, a shared future \
                             re-polling its inner future), so the poll would never end; return \
                             `Pending` to the executor instead of looping",
                            times(r.window),
                            r.at
                        )?;
                        return Ok(());
                    }
                    _ => write!(
                        f,
                        "livelock: {} in a row without progress (no virtual time passed, \
                         no task finished) ({}); tasks keep waking each other or themselves \
                         without getting anywhere (a `yield_now` loop waiting for a flag, a \
                         future that wakes itself and returns `Pending`); raise \
                         `livelock_steps` if the run really needs that many polls between two \
                         instants",
                        plural(r.window, "poll"),
                        r.at
                    )?,
                }
                for (task, polls) in &r.busiest {
                    write!(f, "\n  {task} was polled {}", times(*polls))?;
                }
                Ok(())
            }
            Failure::BlockedPoll(r) => {
                let whose = if r.task.id == TaskId::MAIN {
                    "the main task".to_string()
                } else {
                    format!("task {}", r.task)
                };
                // The first line (which also goes into the trace) holds no
                // wall time: only the second does.
                if r.returned {
                    write!(
                        f,
                        "blocked poll: one poll of {whose} held the executor for longer than \
                         the {} threshold ({})",
                        seconds(r.threshold),
                        r.at
                    )?;
                    write!(
                        f,
                        "\n  the poll took at least {} of wall time; a blocking call in a task \
                         (std::thread::sleep, blocking I/O, a long computation) stops every \
                         other task; use lockstep::time::sleep and async I/O, or raise the \
                         threshold with `blocked_poll`",
                        seconds(r.wall_time)
                    )
                } else {
                    write!(
                        f,
                        "blocked poll: one poll of {whose} never returned ({})",
                        r.at
                    )?;
                    write!(
                        f,
                        "\n  it was still running after {} of wall time (watchdog limit {}): \
                         a busy loop without an .await, or a blocking call that does not end; \
                         the run was abandoned on its worker thread, which keeps spinning \
                         until the process exits",
                        seconds(r.wall_time),
                        seconds(r.threshold)
                    )
                }
            }
            Failure::UnobservedError(r) => write!(
                f,
                "unobserved error: task {} returned `Err` (its output is `{}`) and its \
                 JoinHandle was dropped without taking it ({}); nobody will ever see this \
                 error (a forgotten .await): await the handle and handle the `Err`, or \
                 configure `unobserved_errors`",
                r.task, r.output_type, r.at
            ),
            Failure::InvalidFault(r) => write!(
                f,
                "invalid fault: fault plan action `{}` at {}: {} ({}); the actions of a \
                 hand-written plan must name hosts that exist when they apply",
                r.action, r.at.time, r.message, r.at
            ),
            Failure::ScheduleDiverged(r) => write!(
                f,
                "schedule diverged: {} ({}); the program no longer fits the recorded \
                 schedule: record a new one from the seed",
                r.message, r.at
            ),
            Failure::NonDeterminism(r) => match &r.cause {
                Divergence::Diverged {
                    event,
                    step,
                    first,
                    second,
                    context,
                } => {
                    match event {
                        Some(i) => write!(
                            f,
                            "non-determinism: two runs of seed {} diverged at trace event {i} \
                             (step {step})",
                            r.at.seed
                        )?,
                        None => write!(
                            f,
                            "non-determinism: two runs of seed {} made different decisions at \
                             step {step} although their traces match (a random draw or a \
                             scheduling choice differed)",
                            r.at.seed
                        )?,
                    }
                    for line in context {
                        write!(f, "\n    {line}")?;
                    }
                    write!(
                        f,
                        "\n  first run:  {}\n  second run: {}",
                        first.trim_start(),
                        second.trim_start()
                    )?;
                    write!(
                        f,
                        "\n  something outside the seed reached the run: wall-clock time, \
                         thread_rng, HashMap iteration order, or another thread"
                    )
                }
                Divergence::ForeignWake { task, thread } => {
                    let who = match task {
                        Some(t) => format!("task {t}"),
                        None => "a task that has since finished".to_string(),
                    };
                    write!(
                        f,
                        "non-determinism: {who} was woken from {thread}, outside the \
                         simulation ({}); the wake was ignored: a simulation runs on one \
                         thread, so a wake from a real thread, a thread pool or another \
                         runtime would make the run depend on the OS scheduler",
                        r.at
                    )
                }
            },
        }
    }
}
