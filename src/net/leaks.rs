//! Sockets still open when the main task returns: who opened them, and
//! whether that is a leak.
//!
//! ## The rule
//!
//! Every socket remembers the task that opened it (`connect`, `accept`,
//! `bind`) and the last task that used it (read, write, accept, send,
//! receive). When the main task returns, a socket whose handle still exists
//! (not dropped, not closed with `close` / `shutdown(Write)`, its host not
//! crashed, its connection not reset) is a leak when that last task
//!
//! - has finished: the socket outlived every task known to hold it, so it
//!   was kept somewhere that never ends (a `static`, a `thread_local!`,
//!   `mem::forget`, a leaked `Box`, the unawaited output of a finished
//!   task), or
//! - is the main task, or a task on no host that is not a daemon: it is
//!   itself reported as a leaked task, and its sockets with it.
//!
//! A socket whose last task is still running on a host (a server's accept
//! loop, a handler waiting on a read, a client still at work) is not a
//! leak: it ends with the simulation, as that task does, the same rule as
//! for host tasks. Nor is one whose last task has finished but spawned a
//! task (or a descendant of one) that still runs: the socket may have moved
//! into it (a pool's worker, given its connection when spawned, waiting for
//! its first job). A socket handed through a channel or shared state to a
//! task that never used it is judged by the task that last did: hand-offs
//! that are never used are the one case this rule cannot see through.

use super::fabric::Fabric;
use crate::check::{SocketLeak, TaskInfo};
use crate::runtime::executor::MAIN_KEY;
use crate::runtime::waker::TaskKey;
use crate::runtime::world::World;

/// Who opened a socket, and who used it last (when someone else).
pub(crate) struct Owner {
    opened: (TaskKey, TaskInfo),
    user: Option<(TaskKey, TaskInfo)>,
}

fn current(w: &World) -> Option<(TaskKey, TaskInfo)> {
    let key = w.exec.current_key()?;
    let info = w.exec.info(key)?;
    Some((key, info))
}

impl Owner {
    /// The calling task as a new socket's owner.
    pub(crate) fn here(w: &World) -> Option<Owner> {
        Some(Owner {
            opened: current(w)?,
            user: None,
        })
    }

    fn last(&self) -> &(TaskKey, TaskInfo) {
        self.user.as_ref().unwrap_or(&self.opened)
    }

    /// The calling task used the socket. Costs one comparison unless the
    /// user changed.
    pub(crate) fn touch(&mut self, w: &World) {
        let Some(key) = w.exec.current_key() else {
            return;
        };
        if self.last().0 == key {
            return;
        }
        self.user = if self.opened.0 == key {
            None
        } else {
            current(w)
        };
    }

    /// Touches `owner` if there is one.
    pub(crate) fn touch_opt(owner: &mut Option<Owner>, w: &World) {
        if let Some(o) = owner {
            o.touch(w);
        }
    }

    /// A leak report for socket `what`, if this owner makes it one.
    fn leak(&self, w: &World, what: impl FnOnce() -> String) -> Option<SocketLeak> {
        let (key, _) = self.last();
        let finished = match w.exec.inspect(*key, |e| e.host.is_some() || e.daemon) {
            // A task it spawned is still running: the socket may have
            // moved into it (a worker waiting for its first job).
            None if handed_on(w, *key) => return None,
            None => true,
            Some(_) if *key == MAIN_KEY => true,
            Some(true) => return None,
            Some(false) => false,
        };
        Some(SocketLeak {
            socket: what(),
            opened_by: self.opened.1.clone(),
            last_used_by: self.user.as_ref().map(|(_, info)| info.clone()),
            finished,
        })
    }
}

/// Whether a live task descends from `task` (which has finished).
fn handed_on(w: &World, task: TaskKey) -> bool {
    w.exec
        .live_keys()
        .into_iter()
        .any(|k| k != MAIN_KEY && crate::sync::Registry::of(w).descends_from(k.id, task.id))
}

/// Every socket that leaks by the rule above, in a stable order: streams
/// by connection slot and side, then listeners and UDP sockets by host and
/// port.
pub(crate) fn leaked(w: &World) -> Vec<SocketLeak> {
    super::fabric::with_existing(w, |f| {
        let mut out = Vec::new();
        super::stream::leaked(f, w, &mut out);
        bound(f, w, &mut out);
        out
    })
    .unwrap_or_default()
}

fn bound(f: &Fabric, w: &World, out: &mut Vec<SocketLeak>) {
    use super::host::Binding;
    for h in &f.hosts {
        if !h.up {
            continue;
        }
        for (&(_, port), binding) in &h.ports {
            let (owner, kind) = match binding {
                Binding::Listener(b) => (&b.owner, "tcp listener"),
                Binding::Udp(i) => (&i.owner, "udp socket"),
            };
            if let Some(leak) = owner
                .as_ref()
                .and_then(|o| o.leak(w, || format!("{kind} {}:{port}", h.name)))
            {
                out.push(leak);
            }
        }
    }
}

/// Stream ends: a leak report for an end, if its owner makes it one.
pub(crate) fn end_leak(
    owner: &Owner,
    w: &World,
    what: impl FnOnce() -> String,
) -> Option<SocketLeak> {
    owner.leak(w, what)
}
