//! A trace as Chrome trace-event JSON, which ui.perfetto.dev and
//! `chrome://tracing` open.
//!
//! The picture: one *process* per simulated host (plus one, `simulation`,
//! for tasks that belong to no host), one *thread* (track) per task, and on
//! each host a `network & timers` track for what the runtime does there. A
//! poll is a slice on its task's track; everything the task does during
//! the poll (takes a lock, sends a message, logs a line) is an instant
//! inside that slice. A wake draws a flow arrow from the waking poll to the
//! poll it causes; a network message draws one from the sending poll to its
//! delivery on the receiving host. Faults and the failure are global
//! instants, timers instants on the task they wake.
//!
//! Everything is on virtual time. A poll takes no virtual time, so each is
//! drawn 1 ns wide, and polls of one virtual instant are laid 1 ns apart in
//! step order: the picture keeps both the clock and the order of steps.
//!
//! Which host a task belongs to is read from the trace alone: a host's
//! tasks carry its name (`Host::spawn`), and a task spawned by a task of a
//! host belongs to that host. A task the program itself names after a host
//! is therefore drawn on that host.
//!
//! Built only from the public trace API ([`Trace::events`],
//! [`Trace::render_event`], [`Trace::task_label`]), so the trace's storage
//! may change without this file noticing.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Value, json};

use crate::trace::{Event, EventKind, Trace};

/// Track id of a host's `network & timers` track.
const RUNTIME_TID: u64 = 0;

/// Renders `trace` as Chrome trace-event JSON (one object, `traceEvents`).
pub(crate) fn to_perfetto(trace: &Trace) -> String {
    let mut p = Picture::default();
    p.processes.push("simulation".to_string());
    for e in trace.events() {
        p.event(trace, &e);
    }
    let mut out = Vec::with_capacity(p.out.len() + p.processes.len() + p.threads.len());
    for (pid, name) in p.processes.iter().enumerate() {
        out.push(
            json!({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
            "args": {"name": name}}),
        );
        out.push(
            json!({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0,
            "args": {"sort_index": pid}}),
        );
        out.push(
            json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": RUNTIME_TID,
            "args": {"name": "network & timers"}}),
        );
    }
    for ((pid, tid), name) in &p.threads {
        out.push(
            json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
            "args": {"name": name}}),
        );
        out.push(
            json!({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
            "args": {"sort_index": tid}}),
        );
    }
    out.append(&mut p.out);
    let doc = json!({
        "traceEvents": out,
        "displayTimeUnit": "ns",
        "otherData": {"producer": concat!("lockstep ", env!("CARGO_PKG_VERSION")),
            "clock": "virtual time of the simulation"},
    });
    doc.to_string()
}

#[derive(Default)]
struct Picture {
    out: Vec<Value>,
    /// Process names; the index is the pid (0: no host).
    processes: Vec<String>,
    /// Task tracks: (pid, tid) → label.
    threads: BTreeMap<(usize, u64), String>,
    /// Host of each task id.
    task_pid: BTreeMap<u32, usize>,
    /// The slice start (µs) of each task's latest poll.
    current_slice: BTreeMap<u32, f64>,
    /// A wake's flow waiting for the target's next poll.
    pending_wake: BTreeMap<u32, u64>,
    /// Messages in flight, by (proto, from, to, bytes): their flow ids.
    in_flight: BTreeMap<(String, String, String, u64), VecDeque<Option<u64>>>,
    next_flow: u64,
    /// Last slice start, in ns, to lay same-instant slices apart.
    last_ns: Option<u64>,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// `client:49152` → `client`.
fn host_of(socket: &str) -> &str {
    socket.rsplit_once(':').map_or(socket, |(h, _)| h)
}

impl Picture {
    fn pid_of_host(&mut self, host: &str) -> usize {
        match self.processes.iter().position(|h| h == host) {
            Some(i) => i,
            None => {
                self.processes.push(host.to_string());
                self.processes.len() - 1
            }
        }
    }

    /// A slice start 1 ns after the previous one if they share an instant.
    fn slice_ns(&mut self, time_ns: u64) -> u64 {
        let ns = match self.last_ns {
            Some(last) if last >= time_ns => last + 1,
            _ => time_ns,
        };
        self.last_ns = Some(ns);
        ns
    }

    fn track(&self, task: u32) -> (usize, u64) {
        (
            self.task_pid.get(&task).copied().unwrap_or(0),
            u64::from(task) + 1,
        )
    }

    fn flow(&mut self) -> u64 {
        self.next_flow += 1;
        self.next_flow
    }

    fn event(&mut self, trace: &Trace, e: &Event) {
        let time_ns = e.time.as_nanos();
        let task = e.task.map(|t| t.as_u32());
        let what = describe(trace, e);
        match &e.kind {
            EventKind::Spawn { child, name, .. } => {
                let c = child.as_u32();
                let by_name = name
                    .as_deref()
                    .and_then(|n| self.processes.iter().skip(1).position(|h| h == n))
                    .map(|i| i + 1);
                let pid = by_name
                    .or_else(|| task.and_then(|t| self.task_pid.get(&t).copied()))
                    .unwrap_or(0);
                self.task_pid.insert(c, pid);
                self.threads
                    .insert((pid, u64::from(c) + 1), trace.task_label(*child));
            }
            EventKind::Host { host, .. } => {
                let pid = self.pid_of_host(host);
                self.out
                    .push(json!({"name": what, "ph": "i", "s": "p", "pid": pid,
                    "tid": RUNTIME_TID, "ts": us(time_ns)}));
                return;
            }
            _ => {}
        }
        match &e.kind {
            EventKind::Poll => {
                let Some(t) = task else { return };
                let ts = us(self.slice_ns(time_ns));
                let (pid, tid) = self.track(t);
                self.current_slice.insert(t, ts);
                self.out
                    .push(json!({"name": "poll", "ph": "X", "ts": ts, "dur": 0.001,
                    "pid": pid, "tid": tid, "args": {"step": e.step}}));
                if let Some(id) = self.pending_wake.remove(&t) {
                    self.out
                        .push(json!({"name": "wake", "cat": "wake", "ph": "f", "bp": "e",
                        "id": id, "ts": ts, "pid": pid, "tid": tid}));
                }
                return;
            }
            EventKind::Wake { target } => {
                let target = target.as_u32();
                let waker = task.filter(|_| !self.pending_wake.contains_key(&target));
                if let Some((t, ts)) = waker.and_then(|t| Some((t, *self.current_slice.get(&t)?))) {
                    let id = self.flow();
                    let (pid, tid) = self.track(t);
                    self.out
                        .push(json!({"name": "wake", "cat": "wake", "ph": "s", "id": id,
                        "ts": ts, "pid": pid, "tid": tid}));
                    self.pending_wake.insert(target, id);
                }
                return;
            }
            EventKind::NetSend(m) => {
                let key = (m.proto.clone(), m.from.clone(), m.to.clone(), m.bytes);
                let mut id = None;
                if let Some((t, ts)) = task.and_then(|t| Some((t, *self.current_slice.get(&t)?))) {
                    let f = self.flow();
                    let (pid, tid) = self.track(t);
                    self.out
                        .push(json!({"name": "message", "cat": "net", "ph": "s", "id": f,
                        "ts": ts, "pid": pid, "tid": tid}));
                    self.out
                        .push(json!({"name": what, "ph": "i", "s": "t", "ts": ts,
                        "pid": pid, "tid": tid}));
                    id = Some(f);
                }
                self.in_flight.entry(key).or_default().push_back(id);
                return;
            }
            EventKind::NetDuplicate(m) => {
                let key = (m.proto.clone(), m.from.clone(), m.to.clone(), m.bytes);
                self.in_flight.entry(key).or_default().push_back(None);
            }
            EventKind::NetDrop(d) => {
                let m = &d.message;
                let key = (m.proto.clone(), m.from.clone(), m.to.clone(), m.bytes);
                if let Some(q) = self.in_flight.get_mut(&key) {
                    q.pop_front();
                }
            }
            EventKind::NetDeliver(m) => {
                let key = (m.proto.clone(), m.from.clone(), m.to.clone(), m.bytes);
                let flow = self
                    .in_flight
                    .get_mut(&key)
                    .and_then(VecDeque::pop_front)
                    .flatten();
                let pid = self.pid_of_host(host_of(&m.to));
                let ts = us(self.slice_ns(time_ns));
                self.out
                    .push(json!({"name": what, "ph": "X", "ts": ts, "dur": 0.001,
                    "pid": pid, "tid": RUNTIME_TID}));
                if let Some(id) = flow {
                    self.out.push(
                        json!({"name": "message", "cat": "net", "ph": "f", "bp": "e",
                        "id": id, "ts": ts, "pid": pid, "tid": RUNTIME_TID}),
                    );
                }
                return;
            }
            _ => {}
        }
        // Everything else is an instant: global for faults and the failure,
        // on the task's track when a task did it (or a timer woke it), else
        // on the simulation's runtime track.
        let (scope, pid, tid, ts) = match (&e.kind, task) {
            (EventKind::Fault { .. } | EventKind::Failure { .. }, _) => {
                ("g", 0, RUNTIME_TID, us(time_ns))
            }
            (EventKind::TimerFire { target: Some(t) }, None) => {
                let (pid, tid) = self.track(t.as_u32());
                ("t", pid, tid, us(time_ns))
            }
            (_, Some(t)) => {
                let (pid, tid) = self.track(t);
                let ts = self.current_slice.get(&t).copied().unwrap_or(us(time_ns));
                ("t", pid, tid, ts.max(us(time_ns)))
            }
            (_, None) => ("t", 0, RUNTIME_TID, us(time_ns)),
        };
        self.out.push(
            json!({"name": what, "ph": "i", "s": scope, "ts": ts, "pid": pid,
            "tid": tid, "args": {"step": e.step}}),
        );
    }
}

/// The event's text without its time and task columns.
fn describe(trace: &Trace, e: &Event) -> String {
    let line = trace.render_event(e);
    let rest = line.trim_start();
    let rest = rest.split_once(char::is_whitespace).map_or("", |(_, r)| r);
    let rest = rest.trim_start();
    let who = match e.task {
        Some(t) => trace.task_label(t),
        None => "-".to_string(),
    };
    rest.strip_prefix(who.as_str())
        .unwrap_or(rest)
        .trim_start()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    #[test]
    fn one_track_per_task_and_flows_for_wakes() {
        let outcome = Sim::new(3).run(async {
            let a = spawn(async { sleep(Duration::from_millis(2)).await });
            let b = spawn(async { yield_now().await });
            a.await.unwrap();
            b.await.unwrap();
        });
        let doc: Value = serde_json::from_str(&to_perfetto(outcome.trace())).unwrap();
        let events = doc["traceEvents"].as_array().unwrap();
        let tracks = events
            .iter()
            .filter(|e| e["name"] == "thread_name" && e["tid"].as_u64() != Some(0))
            .count();
        assert_eq!(tracks, 3);
        let starts = events.iter().filter(|e| e["ph"] == "s").count();
        let ends = events.iter().filter(|e| e["ph"] == "f").count();
        assert!(starts > 0 && ends > 0);
        assert!(events.iter().any(|e| e["ph"] == "X" && e["name"] == "poll"));
    }

    #[test]
    fn hosts_are_processes_and_messages_are_flows_between_them() {
        use crate::net::{Host, UdpSocket};
        let outcome = Sim::new(7).run(async {
            Host::new("server", || async {
                let socket = UdpSocket::bind("0.0.0.0:7").await?;
                let mut buf = [0; 16];
                let (n, from) = socket.recv_from(&mut buf).await?;
                socket.send_to(&buf[..n], from).await?;
                Ok(())
            });
            let client = Host::new("client", || async { Ok(()) });
            client
                .spawn(async {
                    let socket = UdpSocket::bind("0.0.0.0:0").await.unwrap();
                    socket.send_to(b"ping", "server:7").await.unwrap();
                    let mut buf = [0; 16];
                    socket.recv_from(&mut buf).await.unwrap();
                })
                .await
                .unwrap();
        });
        assert!(outcome.is_ok(), "{:?}", outcome.failure());
        let doc: Value = serde_json::from_str(&to_perfetto(outcome.trace())).unwrap();
        let events = doc["traceEvents"].as_array().unwrap();
        let pid = |name: &str| {
            events
                .iter()
                .find(|e| e["name"] == "process_name" && e["args"]["name"] == name)
                .map(|e| e["pid"].as_u64().unwrap())
                .unwrap_or_else(|| panic!("no process {name}"))
        };
        let (server, client) = (pid("server"), pid("client"));
        assert_ne!(server, client);
        let net = |ph: &str| -> Vec<u64> {
            events
                .iter()
                .filter(|e| e["cat"] == "net" && e["ph"] == ph)
                .map(|e| e["pid"].as_u64().unwrap())
                .collect()
        };
        // ping: client → server; pong: server → client.
        assert_eq!(net("s"), [client, server]);
        assert_eq!(net("f"), [server, client]);
    }
}
