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
//! lines ([`Trace::to_jsonl`], which [`Trace::from_jsonl`] reads back). The
//! time column has one precision per trace (milliseconds, micro- or
//! nanoseconds: the finest any of its times needs) and one width, so times
//! line up and compare as text.
//!
//! Storage is compact (most events take 8 bytes; see [`TraceMode`] for
//! how much is kept): recording an event is a few stores into a
//! pre-allocated chunk, and names, sites and strings are interned once.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::check::Site;
use crate::runtime::context;
use crate::task::TaskId;
use crate::time::Instant;

pub(crate) mod recbuf;
pub(crate) mod render;
pub(crate) mod store;

pub use render::{RenderOptions, TraceParseError};
pub use store::Iter as Events;

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
        /// The simulated host it runs on, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
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
    /// A scheduling decision worth reading (summary): the configuration a
    /// policy drew for the seed, or a late poll (the clock moved to a timer
    /// while tasks were ready).
    Sched {
        /// What was decided.
        what: String,
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

/// How much of a run's trace is kept, and where.
///
/// | mode | memory | what a report shows |
/// |---|---|---|
/// | [`TraceMode::Keep`] | grows with the run (8 to 10 bytes per event) | every event |
/// | [`TraceMode::Ring`] | the last N events, plus every summary-level event | the events that led to the failure |
/// | [`TraceMode::Stream`] | as `Ring`; every event also goes to a file | as `Ring`; the file has all of them |
///
/// Defaults, and why:
///
/// - [`Sim::builder()`](crate::Sim::builder): full verbosity in a ring of
///   [`TraceMode::DEFAULT_RING`] events (8 to 10 MiB of records at most).
///   Any test-sized run keeps its whole trace, so a snapshot sees every
///   event; a run of a billion steps still has flat memory, and keeps its
///   last million events and its summary events (spawns, finishes, waits,
///   faults, user lines, the failure) up to the same count.
/// - `#[sim_test]`: explores its seeds untraced ([`Verbosity::Off`]: no
///   trace memory at all, only the decision hash), then replays a failing
///   seed with the builder's default, the ring, so the report shows the
///   events that led to the failure whatever the run's length.
/// - The `lockstep` CLI builds its runs with `Sim::builder()` and so uses
///   the same ring; [`TraceMode::Stream`] is there for a run whose every
///   event must be kept, on disk rather than in memory.
///
/// The summary log of a ring is bounded by the same count as the ring, so
/// a run whose summary events alone outnumber it (a billion channel waits)
/// still has flat memory; the text form marks where events were dropped.
/// So is the run's recorded schedule (2 bytes a step): a ring-mode run
/// keeps it up to its ring's count of steps, never fewer than
/// [`TraceMode::DEFAULT_RING`] (every run within the default step limit
/// keeps it), and drops it past that (see
/// [`Outcome::schedule`](crate::Outcome::schedule)); the seed still
/// replays the run.
///
/// Memory: a trace's first 256 KiB of records are ordinary allocations;
/// past that, records go into 2 MiB blocks advised for transparent huge
/// pages on Linux (a long run then takes a page fault per 2 MiB instead
/// of per 4 KiB), so a long trace's resident memory grows in 2 MiB steps.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceMode {
    /// Keep every event in memory.
    Keep,
    /// Keep the last `n` events (at least; whole chunks are dropped) and
    /// every summary-level event.
    Ring(usize),
    /// Like `Ring(n)` in memory, and write every event, as it leaves the
    /// ring and at the end of the run, to a JSON-lines file
    /// (readable with [`Trace::from_jsonl`]). Writes go through a buffer a
    /// chunk (about 4,000 events) at a time; with [`Verbosity::Off`]
    /// nothing is recorded and no file is created. A file that cannot be
    /// created panics at `Sim::run` with its path; a write that fails later
    /// is reported once on stderr, and the run goes on.
    Stream {
        /// The file to write (created or truncated).
        path: std::path::PathBuf,
        /// Events kept in memory for the report.
        ring: usize,
    },
}

impl TraceMode {
    /// The ring size [`Sim::builder()`](crate::Sim::builder) uses: about
    /// 8 to 10 MiB of records at most.
    pub const DEFAULT_RING: usize = 1 << 20;
}

impl Default for TraceMode {
    fn default() -> Self {
        TraceMode::Ring(TraceMode::DEFAULT_RING)
    }
}

/// The recorded events of one run, stored compactly (8 bytes for most
/// events; see the `store` module docs). Events are decoded as they are
/// read: [`Trace::events`] yields owned [`Event`]s.
#[derive(Clone, Default)]
pub struct Trace {
    /// Boxed: a trace moves with every `Outcome`, and the store's
    /// interning tables and logs are several hundred bytes.
    pub(crate) store: Box<store::Store>,
}

impl PartialEq for Trace {
    fn eq(&self, other: &Trace) -> bool {
        self.len() == other.len() && self.events().eq(other.events())
    }
}

impl Eq for Trace {}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trace")
            .field("events", &self.len())
            .field("dropped", &self.store.dropped)
            .finish()
    }
}

impl Trace {
    pub(crate) fn for_mode(mode: &TraceMode) -> Result<Trace, String> {
        let mut trace = Trace::default();
        match mode {
            TraceMode::Keep => {}
            TraceMode::Ring(n) => trace.store.limit = Some((*n).max(1)),
            TraceMode::Stream { path, ring } => {
                trace.store.limit = Some((*ring).max(1));
                trace.store.stream.0 = Some(Box::new(store::Stream::create(path)?));
            }
        }
        Ok(trace)
    }

    /// Writes what a streaming trace still holds and closes the file.
    pub(crate) fn finish_stream(&mut self) -> Option<String> {
        self.store.finish_stream()
    }

    /// Appends an event.
    pub(crate) fn push(&mut self, event: Event) {
        self.store.push_event(event);
    }

    /// Builds a trace from events (as read back from a file, or filtered).
    pub fn from_events(events: impl IntoIterator<Item = Event>) -> Trace {
        let mut trace = Trace::default();
        for e in events {
            trace.push(e);
        }
        trace
    }

    /// All events kept, in order. In a ring, the summary-level events of
    /// the dropped part come first (see [`Trace::dropped`]).
    pub fn events(&self) -> Events<'_> {
        self.store.iter()
    }

    /// Number of events kept.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many events a ring dropped (0 when every event was kept).
    pub fn dropped(&self) -> u64 {
        self.store.dropped
    }

    /// Approximate bytes of memory this trace holds.
    pub fn memory_bytes(&self) -> usize {
        self.store.memory()
    }

    /// The name of task `id`, if it was spawned with one.
    pub fn task_name(&self, id: TaskId) -> Option<&str> {
        self.store.task_name(id)
    }

    /// The simulated host task `id` runs on, if any.
    pub fn task_host(&self, id: TaskId) -> Option<&str> {
        self.store.task_host(id)
    }

    /// `#3 worker-2`; `#3` for an unnamed task; on a host, the host too
    /// unless the name is the host's (`#6 @server`, `#7 flusher@server`,
    /// `#1 server`).
    pub fn task_label(&self, id: TaskId) -> String {
        let mut out = String::new();
        render::label(self, id, &mut out);
        out
    }

    /// The events a user logged with [`trace!`](crate::trace!), in order.
    pub fn user_lines(&self) -> impl Iterator<Item = String> + '_ {
        self.events().filter_map(|e| match e.kind {
            EventKind::User { message } => Some(message),
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
        render::lines(self, self.events(), 0, options, &mut out);
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
        let len = self.len();
        let start = len.saturating_sub(n);
        let earlier = start as u64 + self.store.dropped;
        if earlier > 0 {
            let _ = writeln!(out, "… {earlier} earlier events");
        }
        let mut events = self.events();
        if start > 0 {
            events.nth(start - 1);
        }
        render::lines(self, events, start, &RenderOptions::default(), &mut out);
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
