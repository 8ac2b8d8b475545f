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
                    DeadlockKind::Cycle => write!(
                        f,
                        "deadlock ({}): {}\n  these tasks wait on each other in a cycle, so \
                         none of them can ever go on (found when the cycle closed, while \
                         other tasks could still run)",
                        r.at,
                        cycle_text(&r.cycle)
                    )?,
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
                    "step limit: {} steps without the main task finishing, a livelock or a \
                     busy loop ({}); raise it with `max_steps` if the run is meant to be \
                     this long",
                    r.limit, r.at
                )?;
                for (task, polls) in &r.busiest {
                    write!(f, "\n  {task} was polled {polls} times")?;
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
            Failure::InvalidFault(r) => write!(
                f,
                "invalid fault: fault plan action `{}` at {}: {} ({}); the actions of a \
                 hand-written plan must name hosts that exist when they apply",
                r.action, r.at.time, r.message, r.at
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
                         simulation ({}); a simulation runs on one thread, so a wake from \
                         a real thread, a thread pool or another runtime makes the run \
                         depend on the OS scheduler",
                        r.at
                    )
                }
            },
        }
    }
}
