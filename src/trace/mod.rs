//! The event trace: what happened in a run, in order.
//!
//! Every observable step appends an [`Event`]: a task spawned, polled, woken,
//! finished or aborted; a timer set or fired; a sync primitive acquired,
//! released, waited on, notified, sent to, received from or closed (named by
//! the primitive's name); a message sent, delivered, dropped or duplicated by
//! the simulated network; a connection opened or reset; a fault applied; a
//! `buggify!` point that fired; a line the program logged with
//! [`trace!`](crate::trace!); the failure that ended the run. Each event
//! carries the step (how many polls came before it), the virtual time and the
//! task that caused it, and nothing else: no wall time, no addresses, no
//! thread ids, no hash-map order. Two runs of one seed therefore render to
//! the same bytes, which is what makes traces worth snapshotting and diffing.
//!
//! How much is recorded is set by [`Verbosity`]: `Full` (every poll, wake
//! and message), `Summary` (spawns, finishes, aborts, panics, connections,
//! hosts, faults, buggify points, user lines, failures), or `Off`. With tracing off, recording costs one comparison per
//! event site; the decision hash that proves determinism is kept regardless.
//!
//! A trace renders to text ([`Trace::render`], one event a line) and to JSON
//! lines ([`Trace::to_jsonl`], which [`Trace::from_jsonl`] reads back).

use std::fmt::{self, Write as _};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::check::Site;
use crate::runtime::context;
use crate::task::TaskId;
use crate::time::Instant;

mod render;

pub use render::{RenderOptions, TraceParseError};

/// How much a run records. Ordered: `Off < Summary < Full`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Verbosity {
    /// Nothing is recorded (the decision hash is still kept).
    Off,
    /// Spawns, finishes, aborts, panics, connections, hosts, faults,
    /// buggify points, user lines and failures.
    Summary,
    /// Everything, including every poll, wake, timer and network message
    /// (the default).
    #[default]
    Full,
}

impl FromStr for Verbosity {
    type Err = String;
    fn from_str(s: &str) -> Result<Verbosity, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "none" => Ok(Verbosity::Off),
            "summary" => Ok(Verbosity::Summary),
            "full" | "all" => Ok(Verbosity::Full),
            other => Err(format!(
                "unknown trace verbosity `{other}`: expected `off`, `summary` or `full`"
            )),
        }
    }
}

impl fmt::Display for Verbosity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verbosity::Off => "off",
            Verbosity::Summary => "summary",
            Verbosity::Full => "full",
        })
    }
}

/// One thing that happened in a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// Polls completed before this event.
    pub step: u64,
    /// Virtual time of the event.
    pub time: Instant,
    /// The task that caused it (`None` for the runtime itself: timers firing,
    /// the main task's creation).
    pub task: Option<TaskId>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What an [`Event`] records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum EventKind {
    /// A task was spawned (summary).
    Spawn {
        /// The new task.
        child: TaskId,
        /// Its name, if it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The `spawn` call that created it (`None` for the main task,
        /// whose trace must not depend on where `Sim::run` was called).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        site: Option<Site>,
    },
    /// The task was polled (full).
    Poll,
    /// The task yielded with `yield_now` (full).
    Yield,
    /// The task (or the runtime, when `task` is `None`) woke `target` (full).
    Wake {
        /// The task made ready.
        target: TaskId,
    },
    /// The task finished (summary).
    Finish,
    /// The task panicked (summary).
    Panic {
        /// The panic message.
        message: String,
        /// Where, if known (`file:line:column`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<String>,
    },
    /// The task aborted `target` (summary).
    Abort {
        /// The task aborted.
        target: TaskId,
    },
    /// The task armed a timer (full).
    TimerSet {
        /// When it will fire.
        deadline: Instant,
    },
    /// A timer fired (full); `task` is `None`, `target` is the timer's owner.
    TimerFire {
        /// The task that set the timer, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<TaskId>,
    },
    /// The task acquired a sync primitive: a lock, a read or write lock,
    /// semaphore permits (full).
    Acquire {
        /// The primitive: `mutex 'accounts'`, `semaphore#0`.
        resource: String,
        /// More about it (`2 permits`, `read`), if anything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The task released a sync primitive (full).
    Release {
        /// The primitive.
        resource: String,
        /// More about it, if anything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        /// The waiter it was handed to, first in line (FIFO), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<TaskId>,
    },
    /// The task started to wait on a sync primitive (summary).
    Wait {
        /// The primitive.
        resource: String,
        /// What it waits for and who holds it (`held by #2 worker-b`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The task notified a primitive's waiters: set an event, `notify_one`,
    /// the last arrival at a barrier (full).
    Notify {
        /// The primitive.
        resource: String,
        /// What was done and how many waiters it woke.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The task sent a message on a channel (full).
    Send {
        /// The channel.
        resource: String,
        /// More about it, if anything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The task received a message from a channel (full).
    Recv {
        /// The channel.
        resource: String,
        /// More about it, if anything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The task closed a channel or semaphore, or dropped the last handle
    /// of one side of a channel (summary).
    Close {
        /// The primitive.
        resource: String,
        /// More about it, if anything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A line logged with [`trace!`](crate::trace!) (summary).
    User {
        /// The text.
        message: String,
    },
    /// A network message left its sender (full).
    NetSend(Box<NetMessage>),
    /// A message reached its destination socket (full).
    NetDeliver(Box<NetMessage>),
    /// A message was lost (full): link loss, a partition, a host that is
    /// down, no socket bound, a full receive queue.
    NetDrop(Box<NetDrop>),
    /// The link duplicated a datagram (full): a second copy is in flight.
    NetDuplicate(Box<NetMessage>),
    /// A stream connection changed state (summary): `connect`, `accept`,
    /// `close`, `refused`, `reset`, `timeout`, `stall`, `resume`.
    Conn(Box<ConnEvent>),
    /// A host started or its main future returned (summary).
    Host {
        /// The host's name.
        host: String,
        /// What happened (`up at 10.0.0.1`, `main returned an error: ..`).
        what: String,
    },
    /// A fault was applied (summary): a partition, heal, crash, restart,
    /// pause, resume, clock change or link change, in the text form of a
    /// fault plan action (`partition client server`).
    Fault {
        /// The action.
        action: String,
    },
    /// A `buggify!` point fired (summary).
    Buggify {
        /// Where the point is.
        site: Site,
    },
    /// The run failed (summary): always the last event of a failed run.
    Failure {
        /// [`Failure::kind`](crate::Failure::kind).
        kind: String,
        /// The first line of the failure message.
        message: String,
    },
}

impl EventKind {
    /// The least verbosity at which this kind is recorded.
    pub fn verbosity(&self) -> Verbosity {
        match self {
            EventKind::Poll
            | EventKind::Yield
            | EventKind::Wake { .. }
            | EventKind::TimerSet { .. }
            | EventKind::TimerFire { .. }
            | EventKind::NetSend(_)
            | EventKind::NetDeliver(_)
            | EventKind::NetDrop(_)
            | EventKind::NetDuplicate(_)
            | EventKind::Acquire { .. }
            | EventKind::Release { .. }
            | EventKind::Notify { .. }
            | EventKind::Send { .. }
            | EventKind::Recv { .. } => Verbosity::Full,
            _ => Verbosity::Summary,
        }
    }
}

/// A network message, as [`EventKind::NetSend`] and its siblings record
/// it. Boxed in the event, so that every other event stays small.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NetMessage {
    /// `udp` or `tcp`.
    pub proto: String,
    /// The sending socket, `host:port`.
    pub from: String,
    /// The destination socket, `host:port`.
    pub to: String,
    /// Payload size (0 for a SYN).
    pub bytes: u64,
}

/// A lost message and why it was lost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NetDrop {
    /// The message.
    #[serde(flatten)]
    pub message: NetMessage,
    /// Why it was lost (`loss`, `partition`, `host down`, `no socket`, …).
    pub reason: String,
}

/// A change of a stream connection's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConnEvent {
    /// What happened: `connect`, `accept`, `close`, `refused`, `reset`,
    /// `timeout`, `stall`, `resume`.
    pub what: String,
    /// The end it happened to (the connecting end for `connect`).
    pub from: String,
    /// The other end.
    pub to: String,
    /// Why, when there is more to say (`peer crashed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The recorded events of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    events: Vec<Event>,
    /// Task names by id, from the spawn events (for rendering).
    names: Vec<Option<String>>,
}

impl Trace {
    pub(crate) fn with_capacity(n: usize) -> Trace {
        Trace {
            events: Vec::with_capacity(n),
            names: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, event: Event) {
        if let EventKind::Spawn { child, name, .. } = &event.kind {
            let i = child.as_u32() as usize;
            if self.names.len() <= i {
                self.names.resize(i + 1, None);
            }
            self.names[i] = name.clone();
        }
        self.events.push(event);
    }

    /// Builds a trace from events (as read back from a file, or filtered).
    pub fn from_events(events: impl IntoIterator<Item = Event>) -> Trace {
        let mut trace = Trace::default();
        for e in events {
            trace.push(e);
        }
        trace
    }

    /// All events, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The name of task `id`, if it was spawned with one.
    pub fn task_name(&self, id: TaskId) -> Option<&str> {
        self.names
            .get(id.as_u32() as usize)
            .and_then(|n| n.as_deref())
    }

    /// `#3 worker-2`, or `#3` for an unnamed task.
    pub fn task_label(&self, id: TaskId) -> String {
        match self.task_name(id) {
            Some(name) => format!("{id} {name}"),
            None => id.to_string(),
        }
    }

    /// The events a user logged with [`trace!`](crate::trace!), in order.
    pub fn user_lines(&self) -> impl Iterator<Item = &str> {
        self.events.iter().filter_map(|e| match &e.kind {
            EventKind::User { message } => Some(message.as_str()),
            _ => None,
        })
    }

    /// Renders every event as text, one line each, spawn sites included.
    pub fn render(&self) -> String {
        self.render_with(&RenderOptions::default())
    }

    /// Renders with options (e.g. without source lines, for snapshots that
    /// should not change when code moves).
    pub fn render_with(&self, options: &RenderOptions) -> String {
        let mut out = String::new();
        for e in &self.events {
            render::line(self, e, options, &mut out);
            out.push('\n');
        }
        out
    }

    /// Renders one event as the text line [`Trace::render`] would print.
    pub fn render_event(&self, event: &Event) -> String {
        let mut out = String::new();
        render::line(self, event, &RenderOptions::default(), &mut out);
        out
    }

    /// Renders the last `n` events (what a failure report shows).
    pub fn render_tail(&self, n: usize) -> String {
        let mut out = String::new();
        let start = self.events.len().saturating_sub(n);
        if start > 0 {
            let _ = writeln!(out, "… {start} earlier events");
        }
        for e in &self.events[start..] {
            render::line(self, e, &RenderOptions::default(), &mut out);
            out.push('\n');
        }
        out
    }

    /// Serializes as JSON lines: one JSON object per event, with the acting
    /// task's name alongside its id.
    pub fn to_jsonl(&self) -> String {
        render::to_jsonl(self)
    }

    /// Reads back what [`Trace::to_jsonl`] wrote.
    pub fn from_jsonl(text: &str) -> Result<Trace, TraceParseError> {
        render::from_jsonl(text)
    }
}

/// Whether user events would be recorded right now (the `trace!` macro checks
/// this before formatting, so a disabled trace costs no formatting).
#[doc(hidden)]
pub fn user_events_enabled() -> bool {
    context::try_with(|w| w.tracer.level() >= Verbosity::Summary).unwrap_or(false)
}

/// Records a user line; a no-op outside a simulation.
#[doc(hidden)]
pub fn user_event(message: String) {
    context::try_with(|w| w.user_line(format_args!("{message}")));
}

/// What [`trace!`] expands to: folds the line's text into the run's
/// determinism hash (always: what a program writes into its trace is part of
/// its behaviour) and records it when user lines are traced. With tracing
/// off the text is hashed as it is formatted, without allocating.
#[doc(hidden)]
pub fn user_line(args: std::fmt::Arguments<'_>) {
    context::try_with(|w| w.user_line(args));
}

/// Logs a line into the running simulation's trace.
///
/// Takes `format!` arguments. The line is recorded at [`Verbosity::Summary`]
/// and above, stamped with the virtual time and the current task. Its text
/// is part of the run's behaviour: it is folded into the determinism hash
/// whatever the verbosity (with tracing off it is hashed as it is formatted,
/// without allocating), so two runs of a seed that log different text fail
/// [`Sim::check_determinism`](crate::Sim::check_determinism). Outside a
/// simulation it does nothing (the arguments are not evaluated), so code
/// shared with production may keep its `trace!` lines.
///
/// ```
/// use lockstep::prelude::*;
///
/// let outcome = Sim::new(3).run(async {
///     lockstep::trace!("order {} ready", 7);
/// });
/// assert_eq!(outcome.trace().user_lines().collect::<Vec<_>>(), ["order 7 ready"]);
/// ```
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => {
        if $crate::in_simulation() {
            $crate::__private::user_line(::std::format_args!($($arg)*));
        }
    };
}
