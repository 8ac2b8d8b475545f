//! The compact event store behind [`Trace`](super::Trace).
//!
//! An event is one 8-byte record: a head word (an 8-bit code and the
//! acting task's id in 24 bits) and one 32-bit argument (a task id, an
//! interned string, a short time delta, or an index into the chunk's
//! out-of-line payloads). Neither the step nor the virtual time is stored
//! per event: both change far less often than events happen. A poll starts
//! a step, so a poll's record carries its step (as an offset from the
//! chunk's first step) in its otherwise unused argument; any other event at
//! a new step is preceded by a step *marker* record, and a time marker is
//! written only when the clock moved. A fully traced step of three events
//! (a poll, a yield, a wake) is 24 bytes.
//! An event that needs more than one argument (a sync event's detail, the
//! task a lock was handed to, a far timer deadline, a task id past 24 bits)
//! is followed by extension records. Only events with large, free-form
//! payloads (network messages, connection changes, hosts, faults, panics,
//! user lines, failures) keep an [`EventKind`] out of line.
//!
//! Records live in fixed-capacity chunks: a chunk is allocated once with
//! room for [`CHUNK`] records and never grows, so appending never
//! reallocates and copies what is already recorded, and every chunk decodes
//! on its own (it carries its first step and the time at its start). A long
//! trace's chunks sit on huge pages (see `recbuf`).
//!
//! Strings that repeat (task names, sync primitive labels, details, spawn
//! files) are interned once per trace; tasks' names, spawn sites and hosts
//! sit in a per-task table, so a spawn event carries only the child's id.
//!
//! Bounded modes evict whole chunks from the front: their summary-level
//! events move to a separate, complete log (`kept`), the rest are counted
//! (and written to the stream, in streaming mode), and the emptied chunk is
//! reused, so a warmed-up ring allocates nothing.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::Location;

use super::recbuf::{Buf, Source};
use super::{Event, EventKind, Verbosity};
use crate::check::Site;
use crate::task::TaskId;
use crate::time::Instant;

/// Records per chunk (32 KiB of records).
pub(crate) const CHUNK: usize = 4096;

/// The head's task field when the event has no task.
const NO_TASK: u32 = 0;
/// The head's task field when the task id follows in an extension record.
const TASK_EXT: u32 = 0x00FF_FFFF;

/// Record codes. Below `FIRST_EVENT`: markers and extensions.
pub(crate) mod code {
    /// Time marker: the time's bits 32..56 are the head's task field, its
    /// low 32 bits `arg` (bits 56..64 follow in a `TIME_TOP` marker when
    /// set).
    pub(crate) const TIME: u8 = 1;
    /// Extension: the acting task's id.
    pub(crate) const TASK: u8 = 2;
    /// Extension: an interned detail string.
    pub(crate) const DETAIL: u8 = 3;
    /// Extension: the task a primitive was handed to.
    pub(crate) const TO: u8 = 4;
    /// Extension: the high 32 bits of a far timer deadline.
    pub(crate) const HIGH: u8 = 5;
    /// Extension: the task holding what a wait is for (its detail reads
    /// `held by <label>`).
    pub(crate) const HELD: u8 = 6;
    /// Extension: a network message's route (see `Route`).
    pub(crate) const ROUTE: u8 = 7;
    /// Step marker: the events after it are at step `base + arg` (a poll's
    /// record says the same of itself and what follows it).
    pub(crate) const STEP: u8 = 8;
    /// Time marker, after a `TIME` one: the time's bits 56..64 are `arg`.
    pub(crate) const TIME_TOP: u8 = 9;
    /// Extension: as `TO`, and the releasing task's wake of that task
    /// follows (one record fewer for a lock handed over).
    pub(crate) const TO_WOKEN: u8 = 10;

    pub(crate) const FIRST_EVENT: u8 = 16;
    pub(crate) const SPAWN: u8 = 16;
    /// `arg` is the step's offset from its chunk's first step (a poll
    /// starts a step; the events after it are at that step).
    pub(crate) const POLL: u8 = 17;
    /// `arg` is 1 when the yield's wake of its own task follows: one
    /// record for both events (a `yield_now` always does both).
    pub(crate) const YIELD: u8 = 18;
    pub(crate) const WAKE: u8 = 19;
    pub(crate) const FINISH: u8 = 20;
    pub(crate) const ABORT: u8 = 21;
    /// `arg` is the deadline's distance from now, in nanoseconds.
    pub(crate) const TIMER_SET: u8 = 22;
    /// `arg` is the deadline's low 32 bits; a `HIGH` extension follows.
    pub(crate) const TIMER_SET_FAR: u8 = 23;
    /// `arg` is the owner's id + 1 (0: no owner).
    pub(crate) const TIMER_FIRE: u8 = 24;
    pub(crate) const ACQUIRE: u8 = 25;
    pub(crate) const RELEASE: u8 = 26;
    pub(crate) const WAIT: u8 = 27;
    pub(crate) const NOTIFY: u8 = 28;
    pub(crate) const SEND: u8 = 29;
    pub(crate) const RECV: u8 = 30;
    pub(crate) const CLOSE: u8 = 31;
    /// `arg` indexes the chunk's out-of-line payloads.
    pub(crate) const BIG: u8 = 32;
    /// A network message event; `arg` is its size in bytes, its `ROUTE`
    /// extension says what happened to it, where it went and by which
    /// protocol (a few routes serve a whole run).
    pub(crate) const NET: u8 = 33;
    /// Added to a sync event's code (`ACQUIRE` to `CLOSE`): `arg` indexes
    /// the store's pairs of a primitive and one extension (its detail: a
    /// channel's `a message`, a lock's `read`), so the event takes one
    /// record instead of two (a run has few distinct pairs).
    pub(crate) const PAIRED: u8 = 0x40;
}

/// One record: 8 bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Rec {
    head: u32,
    arg: u32,
}

/// Codes of extension records (they follow their event's record).
const EXTENSIONS: u64 = 1 << code::TASK
    | 1 << code::DETAIL
    | 1 << code::TO
    | 1 << code::TO_WOKEN
    | 1 << code::HIGH
    | 1 << code::HELD
    | 1 << code::ROUTE;

/// Whether `c` is an extension's code.
#[inline(always)]
const fn is_extension(c: u8) -> bool {
    c < 64 && (EXTENSIONS >> c) & 1 == 1
}

/// The time a `TIME` marker (and the `TIME_TOP` one after it, if any) say.
#[inline]
fn time_of(marker: Rec) -> u64 {
    (u64::from(marker.task_field()) << 32) | u64::from(marker.arg)
}

/// A head's bit that says its event is one step after the one before it
/// (instead of a step marker before it; the summary log's copies only).
const NEXT_STEP: u32 = 1 << 31;

impl Rec {
    fn code(self) -> u8 {
        ((self.head & !NEXT_STEP) >> 24) as u8
    }
    fn task_field(self) -> u32 {
        self.head & 0x00FF_FFFF
    }
}

#[derive(Clone, Debug)]
struct Chunk {
    base_step: u64,
    base_time: u64,
    recs: Buf<Rec>,
    big: Vec<EventKind>,
    /// Events (not records) in this chunk (32 bits, beside `timed`: a
    /// trace store holds four chunks and stays within 1,000 bytes).
    events: u32,
    /// Where the events that may be summary-level are (a ring keeps
    /// them): an eviction looks at these records only.
    marks: Vec<u16>,
    /// Whether the clock moved within the chunk (else every event is at
    /// its base time).
    timed: bool,
}

// A record's position in its chunk fits a mark (a chunk's capacity is
// exactly `CHUNK`: a `Buf` has the room it is asked for).
const _: () = assert!(CHUNK <= 1 << 16);

impl Chunk {
    fn with_room(source: &mut Source) -> Chunk {
        Chunk {
            recs: source.take(CHUNK),
            ..Chunk::default()
        }
    }

    /// Empties the chunk for reuse (its buffers kept).
    fn clear(&mut self) {
        self.recs.clear();
        self.big.clear();
        self.marks.clear();
        self.events = 0;
        self.timed = false;
    }
}

impl Default for Chunk {
    /// A chunk with no capacity.
    fn default() -> Chunk {
        Chunk {
            base_step: 0,
            base_time: 0,
            recs: Buf::new(),
            big: Vec::new(),
            events: 0,
            marks: Vec::new(),
            timed: false,
        }
    }
}

/// A sequence of chunks: full ones, then the one being filled.
#[derive(Clone, Debug, Default)]
struct Log {
    full: VecDeque<Chunk>,
    /// The chunk being filled (no capacity until the first event).
    active: Chunk,
    /// The time of the last record.
    time: u64,
    /// The step of the last record.
    step: u64,
    events: usize,
}

/// What a log makes a new chunk from: a chunk emptied for reuse, if any,
/// else a buffer from the store's source.
struct Spare<'a>(&'a mut Option<Chunk>, &'a mut Source);

/// Whether events of `code` may be summary-level.
#[inline(always)]
const fn maybe_summary(code: u8) -> bool {
    matches!(
        code & !code::PAIRED,
        code::SPAWN | code::FINISH | code::ABORT | code::WAIT | code::CLOSE | code::BIG
    )
}

/// Two time markers, a step marker, an event, a task extension and two
/// extensions.
const NEED: usize = 7;

impl Log {
    /// Chunks in order, the active one last (if it holds anything).
    fn chunk(&self, i: usize) -> Option<&Chunk> {
        match self.full.get(i) {
            Some(c) => Some(c),
            None if i == self.full.len() && self.active.events > 0 => Some(&self.active),
            None => None,
        }
    }

    fn chunks(&self) -> impl Iterator<Item = &Chunk> {
        self.full
            .iter()
            .chain((self.active.events > 0).then_some(&self.active))
    }

    /// Makes room in the active chunk for one event of `code` at `step`,
    /// `time` (rolling to a new chunk if needed) and writes the markers of
    /// what moved (see `step_to` for `next_ok`). Returns whether a chunk
    /// was completed (a ring may evict), the step's offset in the active
    /// chunk, and the bits for the event's head (`NEXT_STEP` or none).
    #[inline(always)]
    fn begin(
        &mut self,
        step: u64,
        time: u64,
        code: u8,
        next_ok: bool,
        spare: Spare<'_>,
    ) -> (bool, u32, u32) {
        let a = &self.active;
        let rolled = if a.recs.len() + NEED > a.recs.capacity()
            || step < a.base_step
            || step - a.base_step > u32::MAX as u64
        {
            self.roll(step, time, spare)
        } else {
            false
        };
        if time != self.time {
            self.active.recs.push(Rec {
                head: ((code::TIME as u32) << 24) | ((time >> 32) as u32 & 0x00FF_FFFF),
                arg: time as u32,
            });
            if time >> 56 != 0 {
                self.active.recs.push(Rec {
                    head: (code::TIME_TOP as u32) << 24,
                    arg: (time >> 56) as u32,
                });
            }
            self.active.timed = true;
            self.time = time;
        }
        let off = (step - self.active.base_step) as u32;
        let bits = self.step_to(step, off, code, next_ok);
        (rolled, off, bits)
    }

    /// Notes that the next event, of `code`, is at `step` (`off` in the
    /// active chunk): a step marker first if the step moved and the event
    /// does not say it itself. A poll does (its record carries its step);
    /// with `next_ok` (the summary log's copies), an event one step after
    /// the last says so with the returned `NEXT_STEP` bit in its head. A
    /// new chunk starts at the event's step, so its first event needs
    /// neither. Room was made for the marker.
    #[inline(always)]
    fn step_to(&mut self, step: u64, off: u32, code: u8, next_ok: bool) -> u32 {
        let mut bits = 0;
        if step != self.step {
            if next_ok && step == self.step.wrapping_add(1) {
                bits = NEXT_STEP;
            } else if code != code::POLL {
                self.active.recs.push(Rec {
                    head: (code::STEP as u32) << 24,
                    arg: off,
                });
            }
            self.step = step;
        }
        bits
    }

    /// Appends one event with its extensions (room was made by `begin`).
    #[inline(always)]
    fn put(&mut self, off: u32, task: Option<TaskId>, c: Compact) {
        let task_field = match task {
            None => NO_TASK,
            Some(t) if t.as_u32() < TASK_EXT - 1 => t.as_u32() + 1,
            Some(_) => TASK_EXT,
        };
        if maybe_summary(c.code()) {
            self.active.marks.push(self.active.recs.len() as u16);
        }
        let recs = &mut self.active.recs;
        recs.push(Rec {
            head: ((c.code() as u32) << 24) | task_field,
            arg: if c.code() == code::POLL { off } else { c.arg() },
        });
        if task_field == TASK_EXT {
            recs.push(Rec {
                head: (code::TASK as u32) << 24,
                arg: task.map_or(0, TaskId::as_u32),
            });
        }
        // `with` fills the first extension first.
        for (code, arg) in [c.ext(0), c.ext(1)] {
            if code == 0 {
                break;
            }
            recs.push(Rec {
                head: (code as u32) << 24,
                arg,
            });
        }
        self.active.events += 1;
        self.events += 1;
    }

    /// Appends an event's records (its own and its extensions, taken from
    /// another chunk; not a poll's) at `step`, `time`, unmarked: this is
    /// the summary log, whose chunks are dropped whole, never scanned.
    /// An event one step after the last copied one carries `NEXT_STEP`
    /// instead of a step marker before it: a log of waits that each start
    /// a step (a channel's ping-pong) takes one record per wait, not two.
    #[inline]
    fn copy(&mut self, step: u64, time: u64, recs: &[Rec], spare: Spare<'_>) {
        let c = recs[0].code();
        debug_assert!(c != code::POLL && c != code::BIG && recs.len() <= NEED);
        debug_assert!(recs[0].head & NEXT_STEP == 0, "copied from the ring");
        let (_, _, bits) = self.begin(step, time, c, true, spare);
        self.active.recs.push(Rec {
            head: recs[0].head | bits,
            arg: recs[0].arg,
        });
        // Up to three extensions: a loop beats a call to `memcpy`.
        for &r in &recs[1..] {
            self.active.recs.push(r);
        }
        self.active.events += 1;
        self.events += 1;
    }

    /// Appends an event without extensions by a task with a small id (the
    /// hot path: polls, yields, wakes, timers; never a summary-level event,
    /// which `put` marks).
    #[inline(always)]
    fn put_plain(&mut self, off: u32, task_field: u32, code: u8, arg: u32) {
        debug_assert!(!maybe_summary(code));
        self.active.recs.push(Rec {
            head: ((code as u32) << 24) | task_field,
            arg: if code == code::POLL { off } else { arg },
        });
        self.active.events += 1;
        self.events += 1;
    }

    /// Appends one event (and its out-of-line payload, if any). Returns
    /// whether a chunk was completed.
    fn push(
        &mut self,
        step: u64,
        time: u64,
        task: Option<TaskId>,
        mut c: Compact,
        big: Option<EventKind>,
        spare: Spare<'_>,
    ) -> bool {
        let (rolled, off, _) = self.begin(step, time, c.code(), false, spare);
        if let Some(kind) = big {
            c.set_arg(self.active.big.len() as u32);
            self.active.big.push(kind);
        }
        self.put(off, task, c);
        rolled
    }

    /// Starts a new active chunk (the spare one, if any) at `step`, `time`.
    #[cold]
    fn roll(&mut self, step: u64, time: u64, spare: Spare<'_>) -> bool {
        let Spare(spare, source) = spare;
        let mut next = spare.take().unwrap_or_else(|| Chunk::with_room(source));
        next.base_step = step;
        next.base_time = time;
        let done = std::mem::replace(&mut self.active, next);
        self.time = time;
        self.step = step;
        if done.events > 0 {
            self.full.push_back(done);
            true
        } else {
            if done.recs.capacity() > 0 && spare.is_none() {
                let mut done = done;
                done.clear();
                *spare = Some(done);
            }
            false
        }
    }
}

/// Where a streaming trace writes: JSON lines, one event each, as
/// [`Trace::to_jsonl`](super::Trace::to_jsonl) writes them.
pub(crate) struct Stream {
    path: std::path::PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    line: String,
    error: Option<std::io::Error>,
}

impl Stream {
    pub(crate) fn create(path: &std::path::Path) -> Result<Stream, String> {
        let file = std::fs::File::create(path).map_err(|e| {
            format!(
                "cannot create the trace stream file `{}`: {e}; give a path in an existing, \
                 writable directory",
                path.display()
            )
        })?;
        Ok(Stream {
            path: path.to_path_buf(),
            out: std::io::BufWriter::with_capacity(64 * 1024, file),
            line: String::new(),
            error: None,
        })
    }

    fn write<'n>(&mut self, e: &Event, name: impl Fn(TaskId) -> Option<&'n str>) {
        use std::io::Write as _;
        if self.error.is_some() {
            return;
        }
        self.line.clear();
        super::render::json_line(e, e.task.and_then(name), &mut self.line);
        self.line.push('\n');
        if let Err(err) = self.out.write_all(self.line.as_bytes()) {
            self.error = Some(err);
        }
    }

    fn finish(mut self) -> Option<String> {
        use std::io::Write as _;
        if self.error.is_none() {
            if let Err(e) = self.out.flush() {
                self.error = Some(e);
            }
        }
        self.error.map(|e| {
            format!(
                "writing the trace stream `{}` failed: {e}",
                self.path.display()
            )
        })
    }
}

/// The stream of a store; not cloned with it (a clone is a snapshot).
#[derive(Default)]
pub(crate) struct StreamSlot(pub(crate) Option<Box<Stream>>);

impl Clone for StreamSlot {
    fn clone(&self) -> Self {
        StreamSlot(None)
    }
}

impl std::fmt::Debug for StreamSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(s) => write!(f, "Stream({})", s.path.display()),
            None => f.write_str("NoStream"),
        }
    }
}

/// Appends the label of task `id`: `#3 worker-2`, `#6 @server`,
/// `#7 flusher@server`, `#1 server` (a host's own task, named after it).
fn label_in(strings: &Strings, tasks: &[TaskMeta], id: TaskId, out: &mut String) {
    use std::fmt::Write as _;
    let _ = write!(out, "#{}", id.as_u32());
    let meta = tasks.get(id.as_u32() as usize).copied().unwrap_or_default();
    let name = (meta.name != NONE).then(|| strings.get(meta.name));
    let host = (meta.host != NONE)
        .then(|| strings.get(meta.host))
        .filter(|h| Some(*h) != name);
    match (name, host) {
        (Some(n), Some(h)) => {
            let _ = write!(out, " {n}@{h}");
        }
        (Some(n), None) => {
            let _ = write!(out, " {n}");
        }
        (None, Some(h)) => {
            let _ = write!(out, " @{h}");
        }
        (None, None) => {}
    }
}

fn task_name<'a>(strings: &'a Strings, tasks: &[TaskMeta], id: TaskId) -> Option<&'a str> {
    let m = tasks.get(id.as_u32() as usize)?;
    (m.name != NONE).then(|| strings.get(m.name))
}

/// What a network message event says besides its size: what happened to
/// it, its protocol, its endpoints (`host:port`) and, for a drop, why. All
/// interned; a run has few distinct routes, so a message costs one record
/// and one extension instead of three formatted strings.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Route {
    pub(crate) kind: NetKind,
    proto: u32,
    from: u32,
    to: u32,
    /// The drop reason (`NONE` for other kinds).
    reason: u32,
}

/// Which network message event a `NET` record is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum NetKind {
    Send,
    Deliver,
    Duplicate,
    /// Dropped, for the reason the route names.
    Drop,
}

fn net_event(strings: &Strings, r: &Route, bytes: u64) -> EventKind {
    let s = |id: u32| strings.get(id).to_string();
    let message = super::NetMessage {
        proto: s(r.proto),
        from: s(r.from),
        to: s(r.to),
        bytes,
    };
    match r.kind {
        NetKind::Send => EventKind::NetSend(Box::new(message)),
        NetKind::Deliver => EventKind::NetDeliver(Box::new(message)),
        NetKind::Duplicate => EventKind::NetDuplicate(Box::new(message)),
        NetKind::Drop => EventKind::NetDrop(Box::new(super::NetDrop {
            message,
            reason: s(r.reason),
        })),
    }
}

fn materialize(
    strings: &Strings,
    tasks: &[TaskMeta],
    sites: &[Site],
    routes: &[Route],
    d: &Raw,
    big: &[EventKind],
) -> Event {
    let c = d.compact;
    let c_arg = c.arg();
    let s = |id: u32| strings.get(id).to_string();
    let ext = |want: u8| c.exts().find(|&(code, _)| code == want).map(|(_, a)| a);
    let detail = || {
        ext(code::DETAIL).map(s).or_else(|| {
            ext(code::HELD).map(|t| {
                let mut out = String::from("held by ");
                label_in(strings, tasks, TaskId(t), &mut out);
                out
            })
        })
    };
    let meta = |id: TaskId| tasks.get(id.as_u32() as usize).copied().unwrap_or_default();
    let kind = match c.code() {
        code::SPAWN => {
            let child = TaskId(c_arg);
            let m = meta(child);
            EventKind::Spawn {
                child,
                name: (m.name != NONE).then(|| s(m.name)),
                site: (m.site != NONE).then(|| sites[m.site as usize].clone()),
                host: (m.host != NONE).then(|| s(m.host)),
            }
        }
        code::POLL => EventKind::Poll,
        code::YIELD => EventKind::Yield,
        code::WAKE => EventKind::Wake {
            target: TaskId(c_arg),
        },
        code::FINISH => EventKind::Finish,
        code::ABORT => EventKind::Abort {
            target: TaskId(c_arg),
        },
        code::TIMER_SET => EventKind::TimerSet {
            deadline: Instant::from_nanos(d.time + c_arg as u64),
        },
        code::TIMER_SET_FAR => EventKind::TimerSet {
            deadline: Instant::from_nanos(
                ((ext(code::HIGH).unwrap_or(0) as u64) << 32) | c_arg as u64,
            ),
        },
        code::TIMER_FIRE => EventKind::TimerFire {
            target: c_arg.checked_sub(1).map(TaskId),
        },
        code::ACQUIRE => EventKind::Acquire {
            resource: s(c_arg),
            detail: detail(),
        },
        code::RELEASE => EventKind::Release {
            resource: s(c_arg),
            detail: detail(),
            to: ext(code::TO).map(TaskId),
        },
        code::WAIT => EventKind::Wait {
            resource: s(c_arg),
            detail: detail(),
        },
        code::NOTIFY => EventKind::Notify {
            resource: s(c_arg),
            detail: detail(),
        },
        code::SEND => EventKind::Send {
            resource: s(c_arg),
            detail: detail(),
        },
        code::RECV => EventKind::Recv {
            resource: s(c_arg),
            detail: detail(),
        },
        code::CLOSE => EventKind::Close {
            resource: s(c_arg),
            detail: detail(),
        },
        code::BIG => big[c_arg as usize].clone(),
        code::NET => {
            let route = ext(code::ROUTE).expect("a network event has a route");
            net_event(strings, &routes[route as usize], u64::from(c_arg))
        }
        other => unreachable!("trace record code {other} is not an event"),
    };
    Event {
        step: d.step,
        time: Instant::from_nanos(d.time),
        task: d.task,
        kind,
    }
}

/// A multiply-rotate hasher for the interning maps: their keys are trace
/// strings and addresses, looked up (never iterated), so a fast
/// non-cryptographic hash is all they need.
#[derive(Default)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
    fn write_u32(&mut self, x: u32) {
        self.write_u64(x as u64);
    }
    fn write_u8(&mut self, x: u8) {
        self.write_u64(x as u64);
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Interned strings: ids in first-seen order (deterministic; the map is
/// only looked up).
#[derive(Clone, Debug, Default)]
pub(crate) struct Strings {
    list: Vec<Box<str>>,
    index: FxMap<Box<str>, u32>,
    /// `&'static str`s by address and length: a static string never moves
    /// or changes, so its address identifies it without hashing its text.
    statics: FxMap<(usize, usize), u32>,
    /// The last few statics looked up (a detail repeats at its call site).
    recent: [(usize, usize, u32); 4],
}

impl Strings {
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.index.get(s) {
            return id;
        }
        let id = self.list.len() as u32;
        self.list.push(s.into());
        self.index.insert(s.into(), id);
        id
    }
    /// The id of the label a caller cached for this trace (`epoch`), or
    /// `label()` interned and cached: a primitive's name is built once per
    /// trace, not once per event.
    pub(crate) fn intern_cached(
        &mut self,
        epoch: u64,
        cache: &std::cell::Cell<(u64, u32)>,
        label: impl FnOnce() -> String,
    ) -> u32 {
        match cache.get() {
            (e, id) if e == epoch => id,
            _ => self.intern_label(epoch, cache, label),
        }
    }

    /// [`Strings::intern_cached`] the first time in a trace: out of line,
    /// so that building the label costs its callers nothing.
    #[cold]
    #[inline(never)]
    fn intern_label(
        &mut self,
        epoch: u64,
        cache: &std::cell::Cell<(u64, u32)>,
        label: impl FnOnce() -> String,
    ) -> u32 {
        let id = self.intern(&label());
        cache.set((epoch, id));
        id
    }

    /// [`Strings::intern`] for a string that lives forever.
    #[inline]
    pub(crate) fn intern_static(&mut self, s: &'static str) -> u32 {
        let key = (s.as_ptr() as usize, s.len());
        for &(p, l, id) in &self.recent {
            if (p, l) == key {
                return id;
            }
        }
        let id = match self.statics.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.intern(s);
                self.statics.insert(key, id);
                id
            }
        };
        self.recent.rotate_right(1);
        self.recent[0] = (key.0, key.1, id);
        id
    }

    pub(crate) fn get(&self, id: u32) -> &str {
        &self.list[id as usize]
    }
}

/// What the trace knows of a task: its name, spawn site and host.
#[derive(Copy, Clone, Debug)]
struct TaskMeta {
    name: u32,
    site: u32,
    host: u32,
}

const NONE: u32 = u32::MAX;

impl Default for TaskMeta {
    fn default() -> Self {
        TaskMeta {
            name: NONE,
            site: NONE,
            host: NONE,
        }
    }
}

/// The network's interning tables, out of line: most runs have no
/// network, and every run allocates a store (an untraced one too), which
/// these two tables took past 1,024 bytes, the size above which the
/// allocator takes its slow path (and consolidates its free lists) on every
/// fresh run.
#[derive(Clone, Debug, Default)]
struct NetIndex {
    routes: FxMap<Route, u32>,
    /// Interned `host:port` labels, by host index and port.
    endpoints: FxMap<(u32, u16), u32>,
}

/// How much of a run's trace is kept in memory.
#[derive(Clone, Debug, Default)]
pub(crate) struct Store {
    log: Log,
    /// Summary-level events of evicted chunks (bounded modes).
    kept: Log,
    /// Events evicted and not kept.
    pub(crate) dropped: u64,
    /// Of those, summary events dropped from the front of `kept`.
    pub(crate) kept_dropped: u64,
    /// Keep at least this many of the latest events (ring), if set.
    pub(crate) limit: Option<usize>,
    /// A reused chunk (bounded modes).
    spare: Option<Chunk>,
    /// A reused chunk of the summary log.
    kept_spare: Option<Chunk>,
    /// Where both logs' new chunks get their records' memory.
    source: Source,
    pub(crate) strings: Strings,
    pub(crate) stream: StreamSlot,
    sites: Vec<Site>,
    site_by_addr: FxMap<usize, u32>,
    site_by_value: FxMap<Site, u32>,
    tasks: Vec<TaskMeta>,
    /// Network message routes, by id (`code::NET`).
    routes: Vec<Route>,
    /// The network's look-up tables, made by its first event.
    net: Option<Box<NetIndex>>,
    /// Sync events' (primitive, extension code, extension) pairs, by id
    /// (`code::PAIRED`).
    pairs: Vec<Pair>,
    pair_index: FxMap<Pair, u32>,
    /// The last two pairs looked up (a channel's waits repeat theirs).
    recent_pairs: [(Pair, u32); 2],
    /// The finest time precision seen: 0 ms, 1 µs, 2 ns.
    pub(crate) precision: u8,
    /// The latest time seen.
    pub(crate) max_time: u64,
}

/// A sync event's primitive and its one extension (code, argument).
type Pair = (u32, u8, u32);

/// Arguments of one event to append, already interned: its code and
/// argument, and up to two extensions, each a code (its low byte; 0: none)
/// and an argument (its high half) in one word. Whole words: a `Compact`
/// is built on the stack and read back at once, and narrower fields made
/// those reads wait for the byte-sized writes before them.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Compact {
    word: u64,
    ext: [u64; 2],
}

impl Compact {
    #[inline]
    pub(crate) const fn new(code: u8, arg: u32) -> Compact {
        Compact {
            word: code as u64 | (arg as u64) << 32,
            ext: [0; 2],
        }
    }
    #[inline]
    pub(crate) const fn with(mut self, code: u8, arg: u32) -> Compact {
        let w = code as u64 | (arg as u64) << 32;
        if self.ext[0] == 0 {
            self.ext[0] = w;
        } else {
            self.ext[1] = w;
        }
        self
    }
    #[inline(always)]
    pub(crate) const fn code(&self) -> u8 {
        self.word as u8
    }
    #[inline(always)]
    pub(crate) const fn arg(&self) -> u32 {
        (self.word >> 32) as u32
    }
    #[inline(always)]
    fn set_arg(&mut self, arg: u32) {
        self.word = self.word as u32 as u64 | (arg as u64) << 32;
    }
    /// Extension `i`'s code (0: none) and argument.
    #[inline(always)]
    const fn ext(&self, i: usize) -> (u8, u32) {
        (self.ext[i] as u8, (self.ext[i] >> 32) as u32)
    }
    /// The extensions there are.
    #[inline(always)]
    fn exts(&self) -> impl Iterator<Item = (u8, u32)> + '_ {
        (0..2).map(|i| self.ext(i)).filter(|&(c, _)| c != 0)
    }
}

fn precision_of(t: u64) -> u8 {
    if t % 1_000_000 == 0 {
        0
    } else if t % 1_000 == 0 {
        1
    } else {
        2
    }
}

impl Store {
    // ----- interning ----------------------------------------------------

    /// The interned `host:port` label of an endpoint, made by `label` the
    /// first time it is seen (a host's name never changes within a run).
    #[inline]
    pub(crate) fn endpoint(&mut self, host: u32, port: u16, label: impl FnOnce() -> String) -> u32 {
        let net = self.net.get_or_insert_default();
        if let Some(&id) = net.endpoints.get(&(host, port)) {
            return id;
        }
        let id = self.strings.intern(&label());
        net.endpoints.insert((host, port), id);
        id
    }

    /// The id of a network message's route (its endpoints as interned by
    /// [`Store::endpoint`]).
    #[inline]
    pub(crate) fn route(
        &mut self,
        kind: NetKind,
        proto: &'static str,
        from: u32,
        to: u32,
        reason: Option<&'static str>,
    ) -> u32 {
        let proto = self.strings.intern_static(proto);
        let reason = reason.map_or(NONE, |r| self.strings.intern_static(r));
        let route = Route {
            kind,
            proto,
            from,
            to,
            reason,
        };
        let net = self.net.get_or_insert_default();
        if let Some(&id) = net.routes.get(&route) {
            return id;
        }
        let id = self.routes.len() as u32;
        self.routes.push(route);
        net.routes.insert(route, id);
        id
    }

    pub(crate) fn site_of(&mut self, loc: &'static Location<'static>) -> u32 {
        let addr = loc as *const Location<'static> as usize;
        if let Some(&id) = self.site_by_addr.get(&addr) {
            return id;
        }
        let id = self.site_value(Site::from_location(loc));
        self.site_by_addr.insert(addr, id);
        id
    }

    fn site_value(&mut self, site: Site) -> u32 {
        if let Some(&id) = self.site_by_value.get(&site) {
            return id;
        }
        let id = self.sites.len() as u32;
        self.sites.push(site.clone());
        self.site_by_value.insert(site, id);
        id
    }

    /// Notes a task's name, site and host (ids from this store, or `NONE`).
    pub(crate) fn set_task(&mut self, child: TaskId, name: u32, site: u32, host: u32) {
        let i = child.as_u32() as usize;
        if self.tasks.len() <= i {
            self.tasks.resize(i + 1, TaskMeta::default());
        }
        self.tasks[i] = TaskMeta { name, site, host };
    }

    pub(crate) fn task_name(&self, id: TaskId) -> Option<&str> {
        task_name(&self.strings, &self.tasks, id)
    }

    pub(crate) fn label(&self, id: TaskId, out: &mut String) {
        label_in(&self.strings, &self.tasks, id, out)
    }

    pub(crate) fn task_host(&self, id: TaskId) -> Option<&str> {
        let m = self.tasks.get(id.as_u32() as usize)?;
        (m.host != NONE).then(|| self.strings.get(m.host))
    }

    // ----- appending ----------------------------------------------------

    pub(crate) fn len(&self) -> usize {
        self.kept.events + self.log.events
    }

    /// Appends one event.
    #[inline(always)]
    pub(crate) fn push(&mut self, step: u64, time: u64, task: Option<TaskId>, c: Compact) {
        // As in `push_plain`: the usual case in a few compares.
        let log = &mut self.log;
        let off = step.wrapping_sub(log.active.base_step);
        if time == log.time
            && log.events != 0
            && off <= u64::from(u32::MAX)
            && log.active.recs.len() + NEED <= log.active.recs.capacity()
        {
            log.step_to(step, off as u32, c.code(), false);
            log.put(off as u32, task, c);
            return;
        }
        self.push_slow(step, time, task, c);
    }

    /// A sync event with one extension as one record: its primitive and
    /// extension interned as a pair (see `code::PAIRED`).
    #[inline]
    pub(crate) fn paired(&mut self, c: Compact) -> Compact {
        if !(code::ACQUIRE..=code::CLOSE).contains(&c.code())
            || c.ext(0).0 != code::DETAIL
            || c.ext(1).0 != 0
        {
            return c;
        }
        let key = (c.arg(), c.ext(0).0, c.ext(0).1);
        let id = match self.recent_pairs {
            // (The initial entries' extension code is 0: never a key.)
            [(k, id), _] | [_, (k, id)] if k == key => id,
            _ => self.pair_id(key),
        };
        Compact::new(c.code() | code::PAIRED, id)
    }

    #[cold]
    fn pair_id(&mut self, key: Pair) -> u32 {
        let id = match self.pair_index.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.pairs.len() as u32;
                self.pairs.push(key);
                self.pair_index.insert(key, id);
                id
            }
        };
        self.recent_pairs = [(key, id), self.recent_pairs[0]];
        id
    }

    /// [`Store::push`] when the clock moved, the chunk is full or the log
    /// is empty (and `push_plain`'s events that are not plain).
    #[cold]
    #[inline(never)]
    fn push_slow(&mut self, step: u64, time: u64, task: Option<TaskId>, c: Compact) {
        if time != self.log.time || self.log.events == 0 {
            self.note_time(time);
        }
        let (rolled, off, _) = self.log.begin(
            step,
            time,
            c.code(),
            false,
            Spare(&mut self.spare, &mut self.source),
        );
        self.log.put(off, task, c);
        if rolled && self.limit.is_some() {
            self.maybe_evict();
        }
    }

    /// Appends an event without extensions (see `Log::put_plain`).
    #[inline(always)]
    pub(crate) fn push_plain(
        &mut self,
        step: u64,
        time: u64,
        task: Option<TaskId>,
        code: u8,
        arg: u32,
    ) {
        let task_field = match task {
            // Summary-level events are marked (a finish): the general path.
            _ if maybe_summary(code) => {
                return self.push_slow(step, time, task, Compact::new(code, arg));
            }
            None => NO_TASK,
            Some(t) if t.as_u32() < TASK_EXT - 1 => t.as_u32() + 1,
            Some(_) => return self.push_slow(step, time, task, Compact::new(code, arg)),
        };
        // The usual case in a few compares: the clock has not moved since
        // the last record, and the active chunk has room and covers `step`
        // (an offset past `u32::MAX`, or a step before the chunk's base,
        // wraps to a large value).
        let log = &mut self.log;
        let off = step.wrapping_sub(log.active.base_step);
        if time == log.time
            && log.events != 0
            && off <= u64::from(u32::MAX)
            && log.active.recs.len() + NEED <= log.active.recs.capacity()
        {
            if code == code::WAKE && step == log.step && task_field != NO_TASK {
                // A task that yielded wakes itself: the yield's record says
                // so; a task that handed a lock to another wakes it: the
                // release's `to` extension says so.
                let recs = &mut log.active.recs;
                let n = recs.len();
                let merged = if n >= 1
                    && recs[n - 1].head == ((code::YIELD as u32) << 24 | task_field)
                    && recs[n - 1].arg == 0
                    && arg.wrapping_add(1) == task_field
                {
                    recs[n - 1].arg = 1;
                    true
                } else if n >= 2
                    && recs[n - 1].head == (code::TO as u32) << 24
                    && recs[n - 1].arg == arg
                    && recs[n - 2].head == ((code::RELEASE as u32) << 24 | task_field)
                {
                    recs[n - 1].head = (code::TO_WOKEN as u32) << 24;
                    true
                } else {
                    false
                };
                if merged {
                    log.active.events += 1;
                    log.events += 1;
                    return;
                }
            }
            log.step_to(step, off as u32, code, false);
            log.put_plain(off as u32, task_field, code, arg);
            return;
        }
        self.push_plain_slow(step, time, task_field, code, arg);
    }

    /// [`Store::push_plain`] when the clock moved, the chunk is full or
    /// the log is empty.
    #[cold]
    #[inline(never)]
    fn push_plain_slow(&mut self, step: u64, time: u64, task_field: u32, code: u8, arg: u32) {
        if time != self.log.time || self.log.events == 0 {
            self.note_time(time);
        }
        let (rolled, off, _) = self.log.begin(
            step,
            time,
            code,
            false,
            Spare(&mut self.spare, &mut self.source),
        );
        self.log.put_plain(off, task_field, code, arg);
        if rolled && self.limit.is_some() {
            self.maybe_evict();
        }
    }

    #[cold]
    fn note_time(&mut self, time: u64) {
        self.precision = self.precision.max(precision_of(time));
        self.max_time = self.max_time.max(time);
    }

    /// Appends an event whose payload is kept out of line.
    pub(crate) fn push_big(&mut self, step: u64, time: u64, task: Option<TaskId>, kind: EventKind) {
        self.note_time(time);
        let rolled = self.log.push(
            step,
            time,
            task,
            Compact::new(code::BIG, 0),
            Some(kind),
            Spare(&mut self.spare, &mut self.source),
        );
        if rolled && self.limit.is_some() {
            self.maybe_evict();
        }
    }

    /// In a bounded mode, evicts the oldest chunks while the rest still
    /// hold at least `limit` events; the summary log is bounded the same
    /// way, so memory stays flat however long the run.
    #[cold]
    fn maybe_evict(&mut self) {
        let limit = self.limit.unwrap_or(usize::MAX);
        while let Some(first) = self.log.full.front() {
            if self.log.events - (first.events as usize) < limit {
                break;
            }
            let chunk = self.log.full.pop_front().expect("checked");
            self.evict(chunk);
        }
        while let Some(first) = self.kept.full.front() {
            if self.kept.events - (first.events as usize) < limit {
                break;
            }
            let mut chunk = self.kept.full.pop_front().expect("checked");
            self.kept.events -= chunk.events as usize;
            self.kept_dropped += chunk.events as u64;
            self.dropped += chunk.events as u64;
            chunk.clear();
            self.kept_spare = Some(chunk);
        }
    }

    /// Takes the oldest chunk's events out of the ring: written to the
    /// stream if there is one; summary events move to `kept`; the rest are
    /// counted as dropped. The emptied chunk is kept for reuse.
    fn evict(&mut self, mut chunk: Chunk) {
        self.log.events -= chunk.events as usize;
        if let Some(stream) = self.stream.0.as_mut() {
            let mut cur = Cursor::new(&chunk, &self.pairs);
            while let Some(d) = cur.next_raw() {
                let e = materialize(
                    &self.strings,
                    &self.tasks,
                    &self.sites,
                    &self.routes,
                    &d,
                    &chunk.big,
                );
                stream.write(&e, |t| task_name(&self.strings, &self.tasks, t));
            }
        }
        let mut big = std::mem::take(&mut chunk.big);
        let mut kept = 0usize;
        let recs = &chunk.recs;
        // Only the marked records can be summary events. Their time: the
        // chunk's, unless the clock moved within it (then the time markers
        // before each are followed); their step: that of the last poll or
        // step marker before them.
        let (mut time, mut seen) = (chunk.base_time, 0);
        for &mark in &chunk.marks {
            let at = usize::from(mark);
            let r = recs[at];
            let c = r.code();
            let summary = match c & !code::PAIRED {
                code::SPAWN | code::FINISH | code::ABORT | code::WAIT | code::CLOSE => true,
                code::BIG => big[r.arg as usize].verbosity() < Verbosity::Full,
                _ => false,
            };
            if !summary {
                continue;
            }
            if chunk.timed {
                for x in &recs[seen..at] {
                    match x.code() {
                        code::TIME => time = time_of(*x),
                        code::TIME_TOP => time |= u64::from(x.arg) << 56,
                        _ => {}
                    }
                }
                seen = at;
            }
            let end = at
                + 1
                + recs[at + 1..]
                    .iter()
                    .take_while(|x| is_extension(x.code()))
                    .count();
            let step = chunk.base_step
                + recs[..at]
                    .iter()
                    .rev()
                    .find(|x| matches!(x.code(), code::STEP | code::POLL))
                    .map_or(0, |x| u64::from(x.arg));
            if c == code::BIG {
                let mut compact = Compact::new(c, r.arg);
                let mut task = match r.task_field() {
                    NO_TASK | TASK_EXT => None,
                    t => Some(TaskId(t - 1)),
                };
                for x in &recs[at + 1..end] {
                    if x.code() == code::TASK {
                        task = Some(TaskId(x.arg));
                    } else {
                        compact = compact.with(x.code(), x.arg);
                    }
                }
                let payload = std::mem::replace(&mut big[r.arg as usize], EventKind::Poll);
                self.kept.push(
                    step,
                    time,
                    task,
                    compact,
                    Some(payload),
                    Spare(&mut self.kept_spare, &mut self.source),
                );
            } else {
                // Records say nothing of their chunk (but a poll's, and a
                // poll is not kept): the event moves as it is.
                self.kept.copy(
                    step,
                    time,
                    &recs[at..end],
                    Spare(&mut self.kept_spare, &mut self.source),
                );
            }
            kept += 1;
        }
        self.dropped += (chunk.events as usize - kept) as u64;
        chunk.big = big;
        chunk.clear();
        self.spare = Some(chunk);
    }

    /// Writes what is still in memory to the stream (the end of a run) and
    /// flushes it. Returns the stream's first error, if any.
    pub(crate) fn finish_stream(&mut self) -> Option<String> {
        let mut stream = self.stream.0.take()?;
        for chunk in self.log.chunks() {
            let mut cur = Cursor::new(chunk, &self.pairs);
            while let Some(d) = cur.next_raw() {
                let e = materialize(
                    &self.strings,
                    &self.tasks,
                    &self.sites,
                    &self.routes,
                    &d,
                    &chunk.big,
                );
                stream.write(&e, |t| task_name(&self.strings, &self.tasks, t));
            }
        }
        stream.finish()
    }

    // ----- reading ------------------------------------------------------

    /// Every event kept, in order: the summary events of evicted chunks,
    /// then the live chunks.
    pub(crate) fn iter(&self) -> Iter<'_> {
        Iter {
            store: self,
            in_kept: true,
            chunk: 0,
            cursor: None,
            remaining: self.len(),
        }
    }

    /// The number of events that came from the kept (evicted) log: the
    /// ring's boundary when rendering.
    pub(crate) fn kept_len(&self) -> usize {
        self.kept.events
    }

    /// Bytes of memory the store holds for events (records, out-of-line
    /// payloads, interned strings and the task table), approximately.
    pub(crate) fn memory(&self) -> usize {
        let log = |l: &Log| {
            l.chunks()
                .map(|c| {
                    c.recs.capacity() * size_of::<Rec>()
                        + c.big.capacity() * size_of::<EventKind>()
                        + c.marks.capacity() * size_of::<u16>()
                        + size_of::<Chunk>()
                })
                .sum::<usize>()
        };
        log(&self.log)
            + log(&self.kept)
            + self
                .strings
                .list
                .iter()
                .map(|s| 2 * s.len() + 2 * size_of::<Box<str>>() + 8)
                .sum::<usize>()
            + self.tasks.capacity() * size_of::<TaskMeta>()
            + self.sites.capacity() * size_of::<Site>()
            + self.routes.capacity() * size_of::<Route>()
            + self.pairs.capacity() * size_of::<Pair>()
    }

    /// Appends a decoded event (from a file, or a filter).
    pub(crate) fn push_event(&mut self, e: Event) {
        let (step, time, task) = (e.step, e.time.as_nanos(), e.task);
        let c = match e.kind {
            EventKind::Spawn {
                child,
                name,
                site,
                host,
            } => {
                let name = name.map_or(NONE, |n| self.strings.intern(&n));
                let site = site.map_or(NONE, |s| self.site_value(s));
                let host = host.map_or(NONE, |h| self.strings.intern(&h));
                self.set_task(child, name, site, host);
                Compact::new(code::SPAWN, child.as_u32())
            }
            EventKind::Poll => Compact::new(code::POLL, 0),
            EventKind::Yield => Compact::new(code::YIELD, 0),
            EventKind::Wake { target } => Compact::new(code::WAKE, target.as_u32()),
            EventKind::Finish => Compact::new(code::FINISH, 0),
            EventKind::Abort { target } => Compact::new(code::ABORT, target.as_u32()),
            EventKind::TimerSet { deadline } => timer_set(time, deadline.as_nanos()),
            EventKind::TimerFire { target } => {
                Compact::new(code::TIMER_FIRE, target.map_or(0, |t| t.as_u32() + 1))
            }
            EventKind::Acquire { resource, detail } => {
                self.sync(code::ACQUIRE, &resource, detail.as_deref(), None)
            }
            EventKind::Release {
                resource,
                detail,
                to,
            } => self.sync(code::RELEASE, &resource, detail.as_deref(), to),
            EventKind::Wait { resource, detail } => {
                self.sync(code::WAIT, &resource, detail.as_deref(), None)
            }
            EventKind::Notify { resource, detail } => {
                self.sync(code::NOTIFY, &resource, detail.as_deref(), None)
            }
            EventKind::Send { resource, detail } => {
                self.sync(code::SEND, &resource, detail.as_deref(), None)
            }
            EventKind::Recv { resource, detail } => {
                self.sync(code::RECV, &resource, detail.as_deref(), None)
            }
            EventKind::Close { resource, detail } => {
                self.sync(code::CLOSE, &resource, detail.as_deref(), None)
            }
            other => return self.push_big(step, time, task, other),
        };
        self.push(step, time, task, c);
    }

    /// The compact form of a sync event.
    pub(crate) fn sync(
        &mut self,
        code: u8,
        resource: &str,
        detail: Option<&str>,
        to: Option<TaskId>,
    ) -> Compact {
        let r = self.strings.intern(resource);
        let detail = detail.map(|d| std::borrow::Cow::Owned(d.to_string()));
        self.sync_id(code, r, detail.as_ref(), to)
    }

    /// The compact form of a sync event whose label is already interned.
    #[inline]
    pub(crate) fn sync_id(
        &mut self,
        code: u8,
        resource: u32,
        detail: Option<&std::borrow::Cow<'static, str>>,
        to: Option<TaskId>,
    ) -> Compact {
        let c = Compact::new(code, resource);
        match detail {
            // A send, a receive, a lock handed over: nothing to intern, and
            // no detail to pair with the primitive.
            None => match to {
                Some(t) => c.with(code::TO, t.as_u32()),
                None => c,
            },
            Some(detail) => self.sync_id_detail(c, detail, to),
        }
    }

    /// [`Store::sync_id`] of an event with a detail: interned, and paired
    /// with the primitive when it is the only extension.
    #[inline(never)]
    // The `Cow` itself is needed: a borrowed detail is `'static`, interned
    // by its address.
    #[allow(clippy::ptr_arg)]
    fn sync_id_detail(
        &mut self,
        c: Compact,
        detail: &std::borrow::Cow<'static, str>,
        to: Option<TaskId>,
    ) -> Compact {
        let d = match detail {
            std::borrow::Cow::Borrowed(d) => self.strings.intern_static(d),
            std::borrow::Cow::Owned(d) => self.strings.intern(d),
        };
        let mut c = c.with(code::DETAIL, d);
        if let Some(t) = to {
            c = c.with(code::TO, t.as_u32());
        }
        self.paired(c)
    }
}

/// The compact form of a timer armed at `now` for `deadline`.
#[inline]
pub(crate) fn timer_set(now: u64, deadline: u64) -> Compact {
    match deadline.checked_sub(now) {
        Some(d) if d <= u32::MAX as u64 => Compact::new(code::TIMER_SET, d as u32),
        _ => Compact::new(code::TIMER_SET_FAR, deadline as u32)
            .with(code::HIGH, (deadline >> 32) as u32),
    }
}

/// One decoded record group: an event's position and compact form.
#[derive(Copy, Clone, Debug)]
struct Raw {
    step: u64,
    time: u64,
    task: Option<TaskId>,
    compact: Compact,
}

/// Walks one chunk's records.
struct Cursor<'a> {
    /// A wake that comes next, by a task of a task (after a yield, or a
    /// lock handed over).
    wake_next: Option<(TaskId, TaskId)>,
    chunk: &'a Chunk,
    /// The store's pairs (`code::PAIRED`).
    pairs: &'a [Pair],
    pos: usize,
    time: u64,
    step: u64,
}

impl<'a> Cursor<'a> {
    fn new(chunk: &'a Chunk, pairs: &'a [Pair]) -> Cursor<'a> {
        Cursor {
            wake_next: None,
            chunk,
            pairs,
            pos: 0,
            time: chunk.base_time,
            step: chunk.base_step,
        }
    }

    fn next_raw(&mut self) -> Option<Raw> {
        if let Some((by, target)) = self.wake_next.take() {
            return Some(Raw {
                step: self.step,
                time: self.time,
                task: Some(by),
                compact: Compact::new(code::WAKE, target.as_u32()),
            });
        }
        let recs = &self.chunk.recs;
        loop {
            let r = *recs.get(self.pos)?;
            self.pos += 1;
            match r.code() {
                code::TIME => {
                    self.time = time_of(r);
                    continue;
                }
                code::TIME_TOP => {
                    self.time |= u64::from(r.arg) << 56;
                    continue;
                }
                code::STEP => {
                    self.step = self.chunk.base_step + u64::from(r.arg);
                    continue;
                }
                code::POLL => self.step = self.chunk.base_step + u64::from(r.arg),
                _ if r.head & NEXT_STEP != 0 => self.step += 1,
                _ => {}
            }
            debug_assert!(r.code() >= code::FIRST_EVENT, "an extension out of place");
            let mut compact = if r.code() & code::PAIRED != 0 {
                let (arg, x, xarg) = self.pairs[r.arg as usize];
                Compact::new(r.code() & !code::PAIRED, arg).with(x, xarg)
            } else {
                Compact::new(r.code(), r.arg)
            };
            let mut task = match r.task_field() {
                NO_TASK => None,
                TASK_EXT => None,
                t => Some(TaskId(t - 1)),
            };
            while let Some(x) = recs.get(self.pos) {
                let c = x.code();
                if !is_extension(c) {
                    break;
                }
                self.pos += 1;
                if c == code::TASK {
                    task = Some(TaskId(x.arg));
                } else if c == code::TO_WOKEN {
                    compact = compact.with(code::TO, x.arg);
                    self.wake_next = task.map(|t| (t, TaskId(x.arg)));
                } else {
                    compact = compact.with(c, x.arg);
                }
            }
            if compact.code() == code::YIELD && compact.arg() == 1 {
                compact.set_arg(0);
                self.wake_next = task.map(|t| (t, t));
            }
            return Some(Raw {
                step: self.step,
                time: self.time,
                task,
                compact,
            });
        }
    }
}

/// The events of a [`Trace`](super::Trace), in order, decoded as they are
/// read (see [`Trace::events`](super::Trace::events)).
pub struct Iter<'a> {
    store: &'a Store,
    in_kept: bool,
    chunk: usize,
    cursor: Option<Cursor<'a>>,
    remaining: usize,
}

impl Iter<'_> {
    /// Advances without building the event (cheap skipping).
    fn next_raw(&mut self) -> Option<(Raw, &[EventKind])> {
        loop {
            if let Some(cur) = &mut self.cursor {
                if let Some(raw) = cur.next_raw() {
                    self.remaining -= 1;
                    return Some((raw, &cur.chunk.big));
                }
                self.cursor = None;
                self.chunk += 1;
            }
            let log = if self.in_kept {
                &self.store.kept
            } else {
                &self.store.log
            };
            match log.chunk(self.chunk) {
                Some(chunk) => self.cursor = Some(Cursor::new(chunk, &self.store.pairs)),
                None if self.in_kept => {
                    self.in_kept = false;
                    self.chunk = 0;
                }
                None => return None,
            }
        }
    }
}

impl Iterator for Iter<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        let store = self.store;
        let (raw, big) = self.next_raw()?;
        Some(materialize(
            &store.strings,
            &store.tasks,
            &store.sites,
            &store.routes,
            &raw,
            big,
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }

    fn nth(&mut self, n: usize) -> Option<Event> {
        for _ in 0..n {
            self.next_raw()?;
        }
        self.next()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl std::fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("remaining", &self.remaining)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_eight_bytes() {
        assert_eq!(size_of::<Rec>(), 8);
    }

    fn ev(step: u64, time: u64, task: Option<u32>, kind: EventKind) -> Event {
        Event {
            step,
            time: Instant::from_nanos(time),
            task: task.map(TaskId),
            kind,
        }
    }

    /// Everything the compact form has to escape from: task ids past 24
    /// bits, far deadlines, times past 32 bits, steps that go backwards (a
    /// filtered or concatenated trace), out-of-line payloads, many chunks.
    #[test]
    fn every_event_decodes_to_what_was_pushed() {
        // A channel's wait: a primitive and a detail, stored as one pair.
        let message_wait = |step, channel: &str| {
            let kind = EventKind::Wait {
                resource: channel.into(),
                detail: Some("a message".into()),
            };
            ev(step, 1 << 40, Some(2), kind)
        };
        let mut events = vec![
            ev(0, 0, None, EventKind::Poll),
            ev(1, 5, Some(0x00FF_FFFE), EventKind::Yield),
            ev(
                1,
                5,
                Some(u32::MAX - 1),
                EventKind::Wake { target: TaskId(7) },
            ),
            ev(
                2,
                1 << 40,
                Some(3),
                EventKind::TimerSet {
                    deadline: Instant::from_nanos((1 << 40) + (1 << 35)),
                },
            ),
            ev(3, 1 << 40, None, EventKind::TimerFire { target: None }),
            ev(
                3,
                1 << 40,
                Some(2),
                EventKind::Release {
                    resource: "mutex 'm'".into(),
                    detail: Some("read".into()),
                    to: Some(TaskId(9)),
                },
            ),
            message_wait(3, "channel#0"),
            ev(
                3,
                1 << 40,
                Some(0x00FF_FFFF),
                EventKind::Release {
                    resource: "mutex 'm'".into(),
                    detail: None,
                    to: Some(TaskId(9)),
                },
            ),
            message_wait(4, "channel#0"),
            message_wait(4, "channel#1"),
            ev(
                1,
                7,
                Some(1),
                EventKind::User {
                    message: "back in time".into(),
                },
            ),
            ev(u64::MAX - 1, 8, Some(1), EventKind::Finish),
            ev(u64::MAX - 1, (1 << 60) + 3, Some(1), EventKind::Poll),
            ev(u64::MAX - 1, (1 << 60) + 3, None, EventKind::Finish),
            ev(
                5,
                9,
                None,
                EventKind::Spawn {
                    child: TaskId(4),
                    name: Some("w".into()),
                    site: None,
                    host: Some("server".into()),
                },
            ),
        ];
        for i in 0..10_000u64 {
            events.push(ev(
                10 + i,
                10 + i / 7,
                Some((i % 5) as u32),
                EventKind::Poll,
            ));
        }
        let mut store = Store::default();
        for e in events.clone() {
            store.push_event(e);
        }
        assert_eq!(store.len(), events.len());
        assert!(store.log.full.len() > 1, "spans several chunks");
        assert_eq!(store.iter().collect::<Vec<_>>(), events);
        assert_eq!(store.precision, 2);
    }

    /// A yield and its task's wake of itself share a record, as do a lock
    /// handed to a task and the wake of that task; any other wake is its
    /// own, and all read back as the events they were.
    #[test]
    fn merged_wakes_read_back_as_the_events_they_were() {
        let mut store = Store::default();
        let mut want = Vec::new();
        let plain = |store: &mut Store, want: &mut Vec<Event>, step, time, task, kind| {
            let (code, arg) = match &kind {
                EventKind::Poll => (code::POLL, 0),
                EventKind::Yield => (code::YIELD, 0),
                EventKind::Wake { target } => (code::WAKE, target.as_u32()),
                _ => unreachable!(),
            };
            store.push_plain(step, time, Some(TaskId(task)), code, arg);
            want.push(ev(step, time, Some(task), kind));
        };
        let wake = |target| EventKind::Wake {
            target: TaskId(target),
        };
        let resource = store.strings.intern("mutex 'm'");
        for i in 0..5_000u64 {
            let (task, time) = ((i % 7) as u32, i / 100);
            plain(&mut store, &mut want, i, time, task, EventKind::Poll);
            plain(&mut store, &mut want, i, time, task, EventKind::Yield);
            let target = if i % 3 == 0 { task + 1 } else { task };
            // Every 11th wake is at a later time (a marker in between).
            let time = time + u64::from(i % 11 == 0);
            plain(&mut store, &mut want, i, time, task, wake(target));
            if i % 5 == 0 {
                // A lock handed to `to`, then a wake of `to` (or of another).
                let to = task + 2;
                let c = Compact::new(code::RELEASE, resource).with(code::TO, to);
                store.push(i, time, Some(TaskId(task)), c);
                let release = EventKind::Release {
                    resource: "mutex 'm'".into(),
                    detail: None,
                    to: Some(TaskId(to)),
                };
                want.push(ev(i, time, Some(task), release));
                let woken = if i % 10 == 0 { to } else { to + 1 };
                plain(&mut store, &mut want, i, time, task, wake(woken));
            }
        }
        assert_eq!(store.len(), want.len());
        assert_eq!(store.iter().collect::<Vec<_>>(), want);
        // About 3,000 yields and 500 handed-over locks share their wake's
        // record (and 1,000 releases have a `to` extension).
        let records: usize = store.log.chunks().map(|c| c.recs.len()).sum();
        assert!(
            records + 2_500 < want.len() + 1_000,
            "{records} records for {} events",
            want.len()
        );
    }

    #[test]
    fn a_ring_keeps_its_last_events_and_its_summary_ones() {
        // A clock that moves every event, every 10,000 (most chunks at one
        // time), or never; several events a step, summary ones amid them.
        for (tick, per_step) in [(1, 1), (10_000, 3), (u64::MAX, 7)] {
            let mut store = Store {
                limit: Some(5_000),
                ..Store::default()
            };
            let mut all = Vec::new();
            for i in 0..50_000u64 {
                let kind = match i % 1000 {
                    0 => EventKind::Finish,
                    500 => EventKind::Wait {
                        resource: "mutex 'm'".into(),
                        detail: Some("held by #2".into()),
                    },
                    _ => EventKind::Poll,
                };
                let e = ev(i / per_step, i / tick, Some((i % 3) as u32), kind);
                all.push(e.clone());
                store.push_event(e);
            }
            let kept: Vec<Event> = store.iter().collect();
            assert!(
                kept.len() >= 5_000 && kept.len() < 5_000 + 2 * CHUNK + 150,
                "{tick} {per_step}: {} kept, {} dropped",
                kept.len(),
                store.dropped
            );
            assert_eq!(kept.len() as u64 + store.dropped, all.len() as u64);
            assert_eq!(kept[kept.len() - 5_000..], all[all.len() - 5_000..]);
            let summary = |v: &[Event]| -> Vec<Event> {
                v.iter()
                    .filter(|e| e.kind != EventKind::Poll)
                    .cloned()
                    .collect()
            };
            assert_eq!(summary(&kept), summary(&all));
        }
    }
}

#[cfg(test)]
mod store_size {
    /// Every run allocates a store, an untraced one too. glibc serves
    /// requests up to 1,032 bytes from its per-thread cache; a larger one
    /// took the slow path, which also consolidates the free lists, once
    /// per fresh run (W6b: 1,056 bytes).
    #[test]
    fn a_store_stays_within_the_allocators_per_thread_cache() {
        let size = std::mem::size_of::<super::Store>();
        assert!(size <= 1000, "Store is {size} bytes");
    }
}
