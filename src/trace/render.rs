//! Text and JSON-lines forms of a trace.

use std::fmt::{self, Write as _};

use serde::Serialize;

use super::{Event, EventKind, NetMessage, Trace};
use crate::task::TaskId;

/// How [`Trace::render_with`] prints events.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenderOptions {
    /// Print the spawn site of each spawned task (default `true`).
    pub spawn_sites: bool,
    /// Include line numbers in spawn sites and panic locations (default
    /// `true`). Snapshots turn them off so that editing a file does not
    /// change every snapshot spawned from it.
    pub line_numbers: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            spawn_sites: true,
            line_numbers: true,
        }
    }
}

impl RenderOptions {
    /// Options for snapshots: spawn sites by file, without line numbers.
    pub fn stable() -> Self {
        RenderOptions {
            spawn_sites: true,
            line_numbers: false,
        }
    }
}

/// Least width of the time column: times up to ~11 days at nanosecond
/// precision stay aligned, and a millisecond trace keeps its familiar look.
const TIME_WIDTH: usize = 12;
/// Width of the task column.
const TASK_WIDTH: usize = 18;

/// The time column's format for one trace: a precision (3, 6 or 9 digits
/// after the point: the finest any time of the trace needs) and a width
/// (the widest time's, at least [`TIME_WIDTH`]).
#[derive(Copy, Clone)]
pub(super) struct TimeFormat {
    digits: usize,
    width: usize,
}

impl TimeFormat {
    pub(super) fn of(trace: &Trace) -> TimeFormat {
        let digits = [3, 6, 9][trace.store.precision as usize];
        let mut f = TimeFormat {
            digits,
            width: TIME_WIDTH,
        };
        let mut widest = String::new();
        f.write(trace.store.max_time, &mut widest);
        f.width = widest.len().max(TIME_WIDTH);
        f
    }

    fn write(self, nanos: u64, out: &mut String) {
        let (secs, frac) = (nanos / 1_000_000_000, nanos % 1_000_000_000);
        let frac = frac / 10u64.pow(9 - self.digits as u32);
        let _ = write!(out, "{secs}.{frac:0digits$}s", digits = self.digits);
    }

    fn write_padded(self, nanos: u64, out: &mut String) {
        let start = out.len();
        self.write(nanos, out);
        let len = out.len() - start;
        if len < self.width {
            out.insert_str(start, &" ".repeat(self.width - len));
        }
    }
}

/// Appends the label of task `id` (see `store::label_in`).
pub(super) fn label(trace: &Trace, id: TaskId, out: &mut String) {
    trace.store.label(id, out)
}

/// Appends the text lines of `events`, the first of which is event number
/// `first` of the trace (a ring's boundary is marked where it falls).
pub(super) fn lines(
    trace: &Trace,
    events: impl Iterator<Item = Event>,
    first: usize,
    opts: &RenderOptions,
    out: &mut String,
) {
    let format = TimeFormat::of(trace);
    let store = &trace.store;
    let in_ring = store.dropped - store.kept_dropped;
    let boundary = (in_ring > 0).then(|| store.kept_len());
    if first == 0 && store.kept_dropped > 0 {
        let _ = writeln!(
            out,
            "… {} earlier events dropped (trace ring)",
            store.kept_dropped
        );
    }
    for (i, e) in (first..).zip(events) {
        if boundary == Some(i) {
            let _ = writeln!(
                out,
                "… {in_ring} events dropped here (trace ring); summary events before this line are all kept"
            );
        }
        line_in(trace, &e, opts, format, out);
        out.push('\n');
    }
}

/// Appends the text form of one event to `out`, without a newline.
pub(super) fn line(trace: &Trace, e: &Event, opts: &RenderOptions, out: &mut String) {
    line_in(trace, e, opts, TimeFormat::of(trace), out)
}

fn line_in(trace: &Trace, e: &Event, opts: &RenderOptions, format: TimeFormat, out: &mut String) {
    format.write_padded(e.time.as_nanos(), out);
    out.push_str("  ");
    let start = out.len();
    match e.task {
        Some(id) => label(trace, id, out),
        None => out.push('-'),
    }
    let len = out[start..].chars().count();
    for _ in len..TASK_WIDTH {
        out.push(' ');
    }
    out.push(' ');
    let _ = describe(trace, &e.kind, opts, out);
}

/// Removes `:line[:column]` after every `.rs` in free text (failure
/// messages name panic locations).
fn strip_rs_lines(text: &str, opts: &RenderOptions) -> String {
    if opts.line_numbers {
        return text.to_string();
    }
    strip_line_numbers(text)
}

/// Removes `:line[:column]` after each `.rs` in `text`: what rendering
/// without line numbers does to panic messages and failure lines.
pub(crate) fn strip_line_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(".rs:") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        // Skip up to two `:digits` groups; the text may end right after one.
        for _ in 0..2 {
            let after = rest.get(1..).unwrap_or("");
            let digits = after.chars().take_while(char::is_ascii_digit).count();
            if rest.starts_with(':') && digits > 0 {
                rest = &rest[1 + digits..];
            } else {
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

fn strip_line(loc: &str, opts: &RenderOptions) -> String {
    if opts.line_numbers {
        return loc.to_string();
    }
    // `file:line` or `file:line:col`: keep the file.
    let mut s = loc;
    while let Some((head, tail)) = s.rsplit_once(':') {
        if tail.chars().all(|c| c.is_ascii_digit()) && !tail.is_empty() {
            s = head;
        } else {
            break;
        }
    }
    s.to_string()
}

fn describe(
    trace: &Trace,
    kind: &EventKind,
    opts: &RenderOptions,
    out: &mut String,
) -> fmt::Result {
    match kind {
        EventKind::Spawn {
            child,
            name,
            site,
            host,
        } => {
            write!(out, "spawn {child}")?;
            match (name, host.as_ref().filter(|h| Some(*h) != name.as_ref())) {
                (Some(n), Some(h)) => write!(out, " {n}@{h}")?,
                (Some(n), None) => write!(out, " {n}")?,
                (None, Some(h)) => write!(out, " @{h}")?,
                (None, None) => {}
            }
            match site {
                Some(site) if opts.spawn_sites && opts.line_numbers => write!(out, " at {site}")?,
                Some(site) if opts.spawn_sites => write!(out, " at {}", site.file)?,
                _ => {}
            }
            Ok(())
        }
        EventKind::Poll => out.write_str("poll"),
        EventKind::Yield => out.write_str("yield"),
        EventKind::Wake { target } => write!(out, "wake {}", trace.task_label(*target)),
        EventKind::Finish => out.write_str("finish"),
        EventKind::Panic { message, location } => {
            out.write_str("panic")?;
            if let Some(loc) = location {
                write!(out, " at {}", strip_line(loc, opts))?;
            }
            write!(
                out,
                ": {}",
                strip_rs_lines(&message.replace('\n', " / "), opts)
            )
        }
        EventKind::Abort { target } => write!(out, "abort {}", trace.task_label(*target)),
        EventKind::TimerSet { deadline } => write!(out, "timer set for {deadline}"),
        EventKind::TimerFire { target } => match target {
            Some(t) => write!(out, "timer fired for {}", trace.task_label(*t)),
            None => out.write_str("timer fired"),
        },
        EventKind::NetSend(m) => write!(out, "send {}", Msg(m)),
        EventKind::NetDeliver(m) => write!(out, "deliver {}", Msg(m)),
        EventKind::NetDuplicate(m) => write!(out, "duplicate {}", Msg(m)),
        EventKind::NetDrop(d) => write!(out, "drop {}: {}", Msg(&d.message), d.reason),
        EventKind::Conn(c) => {
            write!(out, "tcp {} {} -> {}", c.what, c.from, c.to)?;
            match &c.detail {
                Some(d) => write!(out, ": {d}"),
                None => Ok(()),
            }
        }
        EventKind::Host { host, what } => write!(out, "host {host}: {what}"),
        EventKind::Fault { action } => write!(out, "fault: {action}"),
        EventKind::Sched { what } => write!(out, "sched: {what}"),
        EventKind::Buggify { site } if opts.line_numbers => write!(out, "buggify fired at {site}"),
        EventKind::Buggify { site } => write!(out, "buggify fired at {}", site.file),
        EventKind::Acquire { resource, detail } => sync_line(out, "acquire", resource, detail),
        EventKind::Release {
            resource,
            detail,
            to,
        } => {
            sync_line(out, "release", resource, detail)?;
            match to {
                Some(t) => write!(out, ", handed to {}", trace.task_label(*t)),
                None => Ok(()),
            }
        }
        EventKind::Wait { resource, detail } => sync_line(out, "wait for", resource, detail),
        EventKind::Notify { resource, detail } => sync_line(out, "notify", resource, detail),
        EventKind::Send { resource, detail } => sync_line(out, "send on", resource, detail),
        EventKind::Recv { resource, detail } => sync_line(out, "recv on", resource, detail),
        EventKind::Close { resource, detail } => sync_line(out, "close", resource, detail),
        EventKind::User { message } => write!(out, "log: {}", message.replace('\n', " / ")),
        EventKind::Failure { kind, message } => {
            write!(out, "FAILED ({kind}): {}", strip_rs_lines(message, opts))
        }
    }
}

/// `udp client:49152 -> server:7 (5 bytes)`; a message without payload
/// (a SYN) omits the size.
struct Msg<'a>(&'a NetMessage);

impl fmt::Display for Msg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{} {} -> {}", m.proto, m.from, m.to)?;
        if m.bytes > 0 {
            write!(f, " ({} bytes)", m.bytes)?;
        }
        Ok(())
    }
}

/// `verb resource (detail)`.
fn sync_line(out: &mut String, verb: &str, resource: &str, detail: &Option<String>) -> fmt::Result {
    write!(out, "{verb} {resource}")?;
    match detail {
        Some(d) => write!(out, " ({d})"),
        None => Ok(()),
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    #[serde(flatten)]
    event: &'a Event,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_name: Option<&'a str>,
}

/// Appends one event's JSON line (without the newline).
pub(super) fn json_line(event: &Event, task_name: Option<&str>, out: &mut String) {
    let line = JsonLine { event, task_name };
    // Serializing plain data with string keys cannot fail.
    out.push_str(&serde_json::to_string(&line).expect("trace events serialize"));
}

pub(super) fn to_jsonl(trace: &Trace) -> String {
    let mut out = String::new();
    for event in trace.events() {
        json_line(
            &event,
            event.task.and_then(|t| trace.task_name(t)),
            &mut out,
        );
        out.push('\n');
    }
    out
}

/// A trace file that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParseError {
    /// The line (from 1) that failed.
    pub line: usize,
    /// What was wrong with it.
    pub message: String,
}

impl fmt::Display for TraceParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "trace line {} does not parse: {}; a trace file holds one JSON object per line, \
             as written by `Trace::to_jsonl`",
            self.line, self.message
        )
    }
}

impl std::error::Error for TraceParseError {}

pub(super) fn from_jsonl(text: &str) -> Result<Trace, TraceParseError> {
    let mut trace = Trace::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event: Event = serde_json::from_str(line).map_err(|e| TraceParseError {
            line: i + 1,
            message: e.to_string(),
        })?;
        trace.push(event);
    }
    Ok(trace)
}
