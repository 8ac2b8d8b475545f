//! Deadlock analysis: the wait-for graph, the early cycle check, and the
//! facts a deadlock report prints.
//!
//! ## The graph
//!
//! Nodes are tasks. A task's edges come from what it noted while returning
//! `Pending` in its last poll (its executor entry's `waiting` list): a wait
//! on a lock or a semaphore leads to the tasks that hold it; a wait on a
//! `JoinHandle` leads to that task; a wait on a channel leads to the tasks
//! holding its other end (the senders, for a receive; the receiver, for a
//! bounded send), when every one of those handles is placed in a task
//! (`places.rs`). A task with several waits (a `select`,
//! `future::wait` over several handles) may go on when *any* of them ends,
//! and a wait on a primitive with several holders (a semaphore, readers of
//! an `RwLock`) may end when *any* holder releases. So a task is stuck only
//! if every one of its waits has holders and all of them are stuck.
//!
//! ## What is certain (no false reports)
//!
//! A task counts as possibly able to go on, and stops the walk, when it is
//! ready to run, armed a timer in its last poll (a `timeout`, a `sleep`),
//! has a copy of its waker held outside lockstep's tracked primitives (a
//! timer, a `JoinSet`, a channel from another crate, any foreign future: the
//! executor counts these copies, see `runtime/waker.rs`), or waits on
//! something that anyone may end: an event, a notify, a barrier, a channel
//! with a handle of its other end held by no task lockstep can name (made
//! and never used, sent in a message, kept in a static), a oneshot, a
//! permit or lock held outside any task. Those waits do show in reports.
//!
//! What is left is exact: a borrowed guard or permit cannot leave the task
//! that acquired it (spawned tasks are `'static`, the guard borrows the
//! primitive), so only that task can release it, and only by running. The
//! tasks of a cycle can therefore never go on by themselves. Something
//! outside the cycle could still abort one of them (a supervisor's
//! `timeout` around a `gather`, the asyncio way of "detecting" a deadlock);
//! lockstep reports the cycle anyway, since it is the bug, and
//! [`SimBuilder::deadlock_cycles`](crate::SimBuilder::deadlock_cycles) lets a
//! program that relies on such recovery warn instead. The one assumption is
//! that a guard of a primitive that was leaked to `'static` is not moved to
//! another task.
//!
//! ## When it runs, and its cost
//!
//! The check runs after a task returns `Pending`, and only if it noted a
//! wait on a lock, a semaphore, a channel or a `JoinHandle`: the
//! uncontended path never gets here. It walks from that task along the edges above, stopping at
//! the first task that can go on, so a contended lock whose holder is
//! running costs one look-up. Its scratch buffers are kept between walks.
//! Every cycle closes at such a step (the last task of it to block), so the
//! run fails at the step and virtual time the cycle closed, even if other
//! tasks (a heartbeat, a monitor) would keep the run going for ever.
//!
//! A run where nothing can run and no timer is pending is a deadlock whatever
//! the graph says; [`stalled`] reports it with every task, and the first
//! cycle it finds, following channel waits to the tasks that last sent on
//! the channel too (an explanation, not a proof, which is fine there since
//! everything is stuck anyway).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use super::resource::{Registry, WaitOp};
use crate::Severity;
use crate::check::{CycleLink, DeadlockKind, DeadlockReport, Failure};
use crate::runtime::executor::Waiting;
use crate::runtime::waker::TaskKey;
use crate::runtime::world::World;
use crate::task::TaskId;

/// Per-run state of the analysis.
#[derive(Default)]
pub(crate) struct State {
    /// Tasks already reported in a cycle (with `deadlock_cycles` set to
    /// `Warn`, each cycle is reported once).
    reported: RefCell<Vec<TaskId>>,
    scratch: RefCell<Graph>,
}

/// A wait-for graph, built from one task outwards. Buffers are reused.
#[derive(Default)]
struct Graph {
    nodes: Vec<Node>,
    /// Per wait of a node: which wait (its index in the entry's `waiting`
    /// list) and its targets (a range of `targets`).
    groups: Vec<Group>,
    /// Node indices.
    targets: Vec<u32>,
    /// Task slot index -> node index + 1 (0: not in the graph).
    slot_map: Vec<u32>,
    tmp: Vec<TaskKey>,
}

struct Node {
    key: TaskKey,
    free: bool,
    groups: (u32, u32),
}

struct Group {
    wait: u32,
    targets: (u32, u32),
}

/// Whether a wait on a primitive is one the early check can follow (a
/// `JoinHandle` always is; a socket, which traffic from any host may wake,
/// never is).
#[inline]
pub(crate) fn followed(op: WaitOp) -> bool {
    matches!(
        op,
        WaitOp::Lock
            | WaitOp::Read
            | WaitOp::Write
            | WaitOp::Acquire(_)
            | WaitOp::Recv
            | WaitOp::Send
            | WaitOp::Changed
    )
}

/// The early check, the sync layer's `after_pending` hook: called after
/// task `key` returned `Pending` while waiting on something followed (a
/// `JoinHandle`, or a wait on a primitive that [`followed`] marked; the
/// executor checks that in the same look at the entry that checks for a
/// pending abort), and after every `Pending` of the main task.
pub(crate) fn after_pending(w: &World, key: TaskKey) {
    if w.config.deadlock_cycles == Severity::Ignore {
        return;
    }
    let cycle = {
        let mut g = Registry::of(w).deadlock.scratch.borrow_mut();
        if g.start_is_free(w, key) {
            return;
        }
        g.build(w, key);
        let cycle = g.cycle(w);
        g.clear();
        cycle
    };
    let Some(cycle) = cycle else { return };
    let state = &Registry::of(w).deadlock;
    let ids: Vec<TaskId> = cycle.iter().map(|l| l.task.id).collect();
    if ids.iter().all(|id| state.reported.borrow().contains(id)) {
        return;
    }
    state.reported.borrow_mut().extend(ids);
    let report = Failure::Deadlock(DeadlockReport {
        kind: DeadlockKind::Cycle,
        cycle,
        blocked: w.exec.blocked(),
        at: w.point(),
    });
    match w.config.deadlock_cycles {
        Severity::Fail => w.fail(report),
        Severity::Warn => w.warn(report),
        Severity::Ignore => {}
    }
}

impl Graph {
    fn clear(&mut self) {
        for n in &self.nodes {
            self.slot_map[n.key.index as usize] = 0;
        }
        self.nodes.clear();
        self.groups.clear();
        self.targets.clear();
    }

    /// The node of `key`, added (not yet expanded) if new.
    fn node_of(&mut self, key: TaskKey) -> u32 {
        let slot = key.index as usize;
        if self.slot_map.len() <= slot {
            self.slot_map.resize(slot + 1, 0);
        }
        match self.slot_map[slot] {
            0 => {
                self.nodes.push(Node {
                    key,
                    free: false,
                    groups: (0, 0),
                });
                let i = self.nodes.len() as u32;
                self.slot_map[slot] = i;
                i - 1
            }
            i => i - 1,
        }
    }

    /// The common case, decided without building the graph: one of the
    /// start task's waits leads to a task that may go on by itself (ready,
    /// armed a timer, has an untracked waker, has ended) or may end
    /// otherwise. Then [`Graph::build`] would free the start at once and
    /// [`Graph::cycle`] find nothing: a contended lock or a channel whose
    /// other end is running costs one look at each target.
    fn start_is_free(&mut self, w: &World, start: TaskKey) -> bool {
        let exec = &w.exec;
        let tmp = &mut self.tmp;
        exec.inspect(start, |e| {
            e.waiting().iter().any(|waiting| {
                tmp.clear();
                if !push_targets(waiting, tmp) {
                    return true;
                }
                tmp.iter().any(|&t| {
                    t != start
                        && (exec.untracked_wakers(t) > 0
                            || exec
                                .inspect(t, |te| te.queued() || te.deadline().is_some())
                                .unwrap_or(true))
                })
            })
        })
        .unwrap_or(true)
    }

    /// Expands the graph from `start` until every reachable task is either
    /// free (may go on) or has all its waits' targets in the graph, then
    /// frees every task with a wait that has a free target, until nothing
    /// changes: what is left is stuck for certain.
    fn build(&mut self, w: &World, start: TaskKey) {
        self.node_of(start);
        let mut i = 0;
        while i < self.nodes.len() {
            let key = self.nodes[i].key;
            let free = !self.expand(w, i, key);
            self.nodes[i].free = free;
            i += 1;
        }
        loop {
            let mut changed = false;
            for n in 0..self.nodes.len() {
                if self.nodes[n].free {
                    continue;
                }
                let (g0, g1) = self.nodes[n].groups;
                let frees = self.groups[g0 as usize..g1 as usize].iter().any(|g| {
                    self.targets[g.targets.0 as usize..g.targets.1 as usize]
                        .iter()
                        .any(|&t| self.nodes[t as usize].free)
                });
                if frees {
                    self.nodes[n].free = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// Adds node `i`'s waits and their targets; `false` if the task may go
    /// on regardless (it is then free).
    fn expand(&mut self, w: &World, i: usize, key: TaskKey) -> bool {
        let exec = &w.exec;
        if exec.untracked_wakers(key) > 0 {
            return false;
        }
        let g0 = self.groups.len() as u32;
        let ok = exec
            .inspect(key, |e| {
                if e.queued() || e.deadline().is_some() {
                    return false;
                }
                for (wi, waiting) in e.waiting().iter().enumerate() {
                    self.tmp.clear();
                    if !push_targets(waiting, &mut self.tmp) {
                        return false;
                    }
                    let start = self.targets.len() as u32;
                    for j in 0..self.tmp.len() {
                        let k = self.tmp[j];
                        if exec.inspect(k, |_| ()).is_none() {
                            // A holder that has ended (its guard leaked),
                            // or a joined task that just did: nothing
                            // certain to say.
                            return false;
                        }
                        let n = self.node_of(k);
                        self.targets.push(n);
                    }
                    self.groups.push(Group {
                        wait: wi as u32,
                        targets: (start, self.targets.len() as u32),
                    });
                }
                true
            })
            .unwrap_or(false);
        if !ok {
            self.groups.truncate(g0 as usize);
            return false;
        }
        self.nodes[i].groups = (g0, self.groups.len() as u32);
        true
    }

    /// A cycle among the stuck tasks: through the start task if there is
    /// one (the task that just closed it, the usual case), else the first
    /// one reached.
    fn cycle(&self, w: &World) -> Option<Vec<CycleLink>> {
        if self.nodes.first()?.free {
            return None;
        }
        // Shortest path from the start back to it, breadth first, over
        // edges between stuck tasks: (node, group) steps.
        let n = self.nodes.len();
        let mut parent: Vec<Option<(u32, u32)>> = vec![None; n];
        let mut queue = std::collections::VecDeque::from([0u32]);
        let mut seen = vec![false; n];
        seen[0] = true;
        let mut closing = None;
        'bfs: while let Some(u) = queue.pop_front() {
            let (g0, g1) = self.nodes[u as usize].groups;
            for g in g0..g1 {
                let grp = &self.groups[g as usize];
                for &t in &self.targets[grp.targets.0 as usize..grp.targets.1 as usize] {
                    if t == 0 {
                        closing = Some((u, g));
                        break 'bfs;
                    }
                    if !seen[t as usize] {
                        seen[t as usize] = true;
                        parent[t as usize] = Some((u, g));
                        queue.push_back(t);
                    }
                }
            }
        }
        let steps: Vec<(u32, u32)> = match closing {
            Some(last) => {
                let mut steps = vec![last];
                let mut at = last.0;
                while let Some(p) = parent[at as usize] {
                    steps.push(p);
                    at = p.0;
                }
                steps.reverse();
                steps
            }
            None => self.first_cycle_from_start()?,
        };
        Some(self.links(w, &steps))
    }

    /// Follows the first edge of every task from the start until a task
    /// repeats; returns that cycle. Every stuck task has an edge to a stuck
    /// task, so this ends.
    fn first_cycle_from_start(&self) -> Option<Vec<(u32, u32)>> {
        let mut path: Vec<(u32, u32)> = Vec::new();
        let mut at = 0u32;
        loop {
            if let Some(pos) = path.iter().position(|&(u, _)| u == at) {
                return Some(path.split_off(pos));
            }
            let (g0, g1) = self.nodes[at as usize].groups;
            if g0 == g1 {
                return None;
            }
            let grp = &self.groups[g0 as usize];
            path.push((at, g0));
            at = *self.targets.get(grp.targets.0 as usize)?;
        }
    }

    fn links(&self, w: &World, steps: &[(u32, u32)]) -> Vec<CycleLink> {
        let waits: Vec<(TaskKey, Waiting)> = steps
            .iter()
            .map(|&(u, g)| {
                let key = self.nodes[u as usize].key;
                let wi = self.groups[g as usize].wait as usize;
                let waiting = w
                    .exec
                    .inspect(key, |e| e.waiting()[wi].clone())
                    .expect("a task in a cycle is live");
                (key, waiting)
            })
            .collect();
        links(w, &waits)
    }
}

/// Pushes the tasks that alone can end one wait (in id order), for the
/// early check; `false` if the wait may end otherwise.
fn push_targets(waiting: &Waiting, out: &mut Vec<TaskKey>) -> bool {
    match waiting {
        Waiting::Join(k) => out.push(*k),
        Waiting::JoinSet(_) => return false,
        Waiting::Layer(l) => {
            if !l.on.holders(l.op(), out) {
                return false;
            }
            out.sort_by_key(|k| k.id);
            out.dedup();
        }
    }
    !out.is_empty()
}

/// Builds the links of a cycle given, for each task in order, the wait that
/// leads to the next task. The cycle starts at its lowest task id, so its
/// text does not depend on which task closed it.
fn links(w: &World, waits: &[(TaskKey, Waiting)]) -> Vec<CycleLink> {
    let n = waits.len();
    let lowest = (0..n).min_by_key(|&i| waits[i].0.id).unwrap_or(0);
    (lowest..n)
        .chain(0..lowest)
        .map(|i| {
            let (key, waiting) = &waits[i];
            let (_, prev) = &waits[(i + n - 1) % n];
            let holds = match prev {
                Waiting::Layer(l) => {
                    let mut tmp = Vec::new();
                    (l.on.holders(l.op(), &mut tmp) && tmp.contains(key))
                        .then(|| l.on.held_as(*key, l.op()))
                }
                _ => None,
            };
            CycleLink {
                task: w.exec.info(*key).expect("a task in a cycle is live"),
                holds,
                waits_for: short(w, waiting),
            }
        })
        .collect()
}

/// What a wait is for, briefly: `mutex 'lock2'`, `the JoinHandle of #2 b`.
fn short(w: &World, waiting: &Waiting) -> String {
    match waiting {
        Waiting::Join(k) => format!("the JoinHandle of {}", w.exec.label_of(*k)),
        Waiting::JoinSet(n) => format!("the next of {n} tasks in a JoinSet"),
        Waiting::Layer(l) => l.on.short(l.op()),
    }
}

/// What a wait of kind `op` on the primitive labelled `label` is for.
pub(crate) fn short_sync(label: &str, op: WaitOp) -> String {
    let label = label.to_string();
    match op {
        WaitOp::Read => format!("{label} (read)"),
        WaitOp::Write => format!("{label} (write)"),
        WaitOp::Acquire(n) if n != 1 => format!("{label} ({n} permits)"),
        WaitOp::Recv => format!("a message on {label}"),
        WaitOp::Send => format!("room on {label}"),
        WaitOp::Changed => format!("a change on {label}"),
        _ => label,
    }
}

/// The report of a run where nothing can run and no timer is pending: every
/// task, and the first cycle found (in task id order), following channel
/// waits to the tasks that last used the other end.
pub(crate) fn stalled(w: &World) -> DeadlockReport {
    let keys = w.exec.live_keys();
    let edges: Vec<Vec<(Waiting, Vec<TaskKey>)>> = keys
        .iter()
        .map(|&k| {
            w.exec
                .inspect(k, |e| {
                    e.waiting()
                        .iter()
                        .map(|waiting| {
                            let mut t = Vec::new();
                            match waiting {
                                Waiting::Join(j) => t.push(*j),
                                Waiting::JoinSet(_) => {}
                                Waiting::Layer(l) => l.on.likely(l.op(), &mut t),
                            }
                            (waiting.clone(), t)
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let cycle = first_cycle(&keys, &edges)
        .map(|steps| {
            let waits: Vec<(TaskKey, Waiting)> = steps
                .into_iter()
                .map(|(u, e)| (keys[u], edges[u][e].0.clone()))
                .collect();
            links(w, &waits)
        })
        .unwrap_or_default();
    DeadlockReport {
        kind: DeadlockKind::Stalled,
        cycle,
        blocked: w.exec.blocked(),
        at: w.point(),
    }
}

/// A depth-first search over all tasks, in id order, for the first cycle:
/// `(task index, edge index)` steps.
fn first_cycle(
    keys: &[TaskKey],
    edges: &[Vec<(Waiting, Vec<TaskKey>)>],
) -> Option<Vec<(usize, usize)>> {
    // Task slot -> position in `keys`.
    let slots = keys.iter().map(|k| k.index as usize + 1).max().unwrap_or(0);
    let mut position = vec![usize::MAX; slots];
    for (i, k) in keys.iter().enumerate() {
        position[k.index as usize] = i;
    }
    let index_of = |k: TaskKey| {
        let i = *position.get(k.index as usize)?;
        (i != usize::MAX && keys[i] == k).then_some(i)
    };
    // 0: unvisited, 1: on the current path, 2: done.
    let mut color = vec![0u8; keys.len()];
    for root in 0..keys.len() {
        if color[root] != 0 {
            continue;
        }
        // The path: (task, edge, target) being explored.
        let mut path: Vec<(usize, usize, usize)> = vec![(root, 0, 0)];
        color[root] = 1;
        while let Some(&mut (u, ref mut e, ref mut t)) = path.last_mut() {
            let Some((_, targets)) = edges[u].get(*e) else {
                color[u] = 2;
                path.pop();
                continue;
            };
            let Some(&target) = targets.get(*t) else {
                *e += 1;
                *t = 0;
                continue;
            };
            *t += 1;
            let Some(v) = index_of(target) else { continue };
            match color[v] {
                0 => {
                    color[v] = 1;
                    path.push((v, 0, 0));
                }
                1 => {
                    // Each path entry's edge is the one it follows: the
                    // cycle runs from `v` along the path back to `v`.
                    let start = path.iter().position(|&(x, _, _)| x == v)?;
                    return Some(path[start..].iter().map(|&(x, e, _)| (x, e)).collect());
                }
                _ => {}
            }
        }
    }
    None
}

/// For reports: which task holds which primitives that some task waits on
/// (`mutex 'lock1'`), by holder. `waits` are the tasks' `waiting` lists, in
/// task id order; each holder's list follows that order.
pub(crate) fn holdings<'a>(
    waits: impl Iterator<Item = &'a [Waiting]>,
) -> BTreeMap<TaskId, Vec<String>> {
    // Primitives already counted, by address: used for membership only, so
    // no address can reach a report's order.
    let mut seen: BTreeSet<usize> = BTreeSet::new();
    let mut out: BTreeMap<TaskId, Vec<String>> = BTreeMap::new();
    let mut tmp = Vec::new();
    for list in waits {
        for waiting in list {
            let Waiting::Layer(l) = waiting else { continue };
            if !seen.insert(l.address()) {
                continue;
            }
            tmp.clear();
            if !l.on.holders(l.op(), &mut tmp) {
                continue;
            }
            tmp.sort_by_key(|k| k.id);
            tmp.dedup();
            for k in &tmp {
                out.entry(k.id).or_default().push(l.on.held_as(*k, l.op()));
            }
        }
    }
    out
}

/// [`holdings`] as the sync layer's hook.
pub(crate) fn holdings_of(waits: &[&[Waiting]]) -> BTreeMap<TaskId, Vec<String>> {
    holdings(waits.iter().copied())
}
