//! The waiter list every primitive keeps: a FIFO queue of waiting tasks.
//!
//! Nodes live in a slab (a `Vec` with a free list) and the queue is a
//! doubly linked list threaded through the slab by index, so a waiter is
//! added at the back, taken from the front or removed from the middle in
//! O(1), and nothing is allocated once the slab has grown to the largest
//! number of waiters seen at once. A waiting future holds a [`Ticket`] (slot
//! index plus generation), so a stale ticket never reaches a reused slot.
//!
//! A node is in one of three states:
//!
//! - `Queued`: in line. Its future was polled and returned `Pending`.
//! - `Granted`: taken off the line and handed the resource (a lock, permits,
//!   a channel slot, a `notify_one`). The waker was taken to wake the task;
//!   the node stays in the slab until the future collects the grant.
//! - `Woken`: taken off the line without a grant (an event was set, a
//!   semaphore closed): there is nothing to give back.
//!
//! Cancellation safety rests on one rule, kept by every primitive: a waiting
//! future's `Drop` removes its node, and if the node was `Granted`, passes
//! the grant on (releases the lock, returns the permits, forwards the
//! notification) as if the task had taken it and let it go at once. So a
//! dropped waiter leaves nothing behind and no wake-up is lost.
//!
//! Wakers are taken out of the list and woken by the primitive *after* it
//! has released its own `RefCell` borrow, so a waker that runs code (a
//! foreign one) can call back into the primitive.

use std::cell::{Cell, RefCell};
use std::task::{Context, Waker};

use crate::runtime::waker::{self, TaskKey};

const NIL: u32 = u32::MAX;

/// Where a waiter stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Queued,
    Granted,
    Woken,
}

/// A waiting future's claim on its node.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    index: u32,
    generation: u32,
}

/// A queued waiter, as the primitive sees it.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Waiter<D> {
    pub(crate) ticket: Ticket,
    pub(crate) task: Option<TaskKey>,
    pub(crate) data: D,
}

struct Node<D> {
    generation: u32,
    /// `None` while the slot is free.
    state: Option<State>,
    prev: u32,
    next: u32,
    waker: Option<Waker>,
    task: Option<TaskKey>,
    data: D,
}

pub(crate) struct WaitList<D> {
    nodes: Vec<Node<D>>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    queued: usize,
}

impl<D> Default for WaitList<D> {
    fn default() -> Self {
        WaitList {
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            queued: 0,
        }
    }
}

impl<D: Copy> WaitList<D> {
    /// Number of queued waiters.
    pub(crate) fn len(&self) -> usize {
        self.queued
    }

    /// Whether nobody is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.queued == 0
    }

    fn node(&self, t: Ticket) -> Option<&Node<D>> {
        self.nodes
            .get(t.index as usize)
            .filter(|n| n.generation == t.generation && n.state.is_some())
    }

    /// Queues a waiter at the back.
    pub(crate) fn push(&mut self, waker: &Waker, task: Option<TaskKey>, data: D) -> Ticket {
        let node = Node {
            generation: 0,
            state: Some(State::Queued),
            prev: self.tail,
            next: NIL,
            waker: Some(waker::tracked_clone(waker)),
            task,
            data,
        };
        let index = match self.free.pop() {
            Some(i) => {
                let generation = self.nodes[i as usize].generation;
                self.nodes[i as usize] = Node { generation, ..node };
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        match self.tail {
            NIL => self.head = index,
            t => self.nodes[t as usize].next = index,
        }
        self.tail = index;
        self.queued += 1;
        Ticket {
            index,
            generation: self.nodes[index as usize].generation,
        }
    }

    /// The state of a ticket's node; `None` if the ticket is stale.
    pub(crate) fn state(&self, t: Ticket) -> Option<State> {
        self.node(t).and_then(|n| n.state)
    }

    /// Points a queued waiter at the waker of its latest poll.
    pub(crate) fn update_waker(&mut self, t: Ticket, waker: &Waker) {
        if self.state(t) != Some(State::Queued) {
            return;
        }
        let slot = &mut self.nodes[t.index as usize].waker;
        match slot {
            Some(old) if waker::same_task(old, waker) => {}
            _ => *slot = Some(waker::tracked_clone(waker)),
        }
    }

    /// The first queued waiter.
    pub(crate) fn front(&self) -> Option<Waiter<D>> {
        self.waiter(self.head)
    }

    fn waiter(&self, index: u32) -> Option<Waiter<D>> {
        let n = self.nodes.get(index as usize)?;
        Some(Waiter {
            ticket: Ticket {
                index,
                generation: n.generation,
            },
            task: n.task,
            data: n.data,
        })
    }

    /// The queued waiters, first in line first.
    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = Waiter<D>> + '_ {
        let mut at = self.head;
        std::iter::from_fn(move || {
            let w = self.waiter(at)?;
            at = self.nodes[at as usize].next;
            Some(w)
        })
    }

    fn unlink(&mut self, index: u32) {
        let (prev, next) = {
            let n = &self.nodes[index as usize];
            (n.prev, n.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
        self.queued -= 1;
    }

    /// Takes a queued waiter off the line as `Granted` or `Woken`, and
    /// returns its waker for the caller to wake once it has released its
    /// borrow of the primitive.
    pub(crate) fn settle(&mut self, t: Ticket, to: State) -> Option<Waker> {
        debug_assert_ne!(to, State::Queued);
        if self.state(t) != Some(State::Queued) {
            return None;
        }
        self.unlink(t.index);
        let n = &mut self.nodes[t.index as usize];
        n.state = Some(to);
        n.waker.take()
    }

    /// Settles every queued waiter (an event set, a close), collecting the
    /// wakers in `out`.
    pub(crate) fn settle_all(&mut self, to: State, out: &mut Vec<Waker>) {
        while let Some(w) = self.front() {
            out.extend(self.settle(w.ticket, to));
        }
    }

    /// Frees a ticket's node (its future took the grant, or was dropped) and
    /// returns the state it was in; `None` for a stale ticket.
    pub(crate) fn remove(&mut self, t: Ticket) -> Option<State> {
        let state = self.state(t)?;
        if state == State::Queued {
            self.unlink(t.index);
        }
        let n = &mut self.nodes[t.index as usize];
        n.state = None;
        n.waker = None;
        n.generation = n.generation.wrapping_add(1);
        self.free.push(t.index);
        Some(state)
    }
}

/// How a waiting future's poll went (see [`WaitList::poll_turn`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Turn {
    /// First poll, and the resource was taken at once.
    Now,
    /// The resource was handed to this waiter.
    Granted,
    /// Woken without a grant (an event set, a close).
    Woken,
    /// Still in line; `first` on the poll that queued it.
    Waiting { first: bool },
}

impl<D: Copy> WaitList<D> {
    /// The poll of every waiting future that did not take the resource at
    /// once: on the first poll (`ticket` is `None`), joins the line; on
    /// later ones, collects a grant or a wake, or refreshes the waker.
    pub(crate) fn poll_turn(
        &mut self,
        ticket: &mut Option<Ticket>,
        cx: &Context<'_>,
        task: Option<TaskKey>,
        data: D,
    ) -> Turn {
        let Some(t) = *ticket else {
            *ticket = Some(self.push(cx.waker(), task, data));
            return Turn::Waiting { first: true };
        };
        match self.state(t) {
            Some(State::Queued) => {
                self.update_waker(t, cx.waker());
                Turn::Waiting { first: false }
            }
            state => {
                self.remove(t);
                *ticket = None;
                match state {
                    Some(State::Granted) => Turn::Granted,
                    _ => Turn::Woken,
                }
            }
        }
    }

    /// Makes sure a future that waits for a condition to change (a
    /// broadcast message, a watch value) is in line, after its condition
    /// was found unmet: joins (again, if a wake was delivered but did not
    /// help) or refreshes the waker. Returns `true` the first time.
    pub(crate) fn wait_again(
        &mut self,
        ticket: &mut Option<Ticket>,
        cx: &Context<'_>,
        task: Option<TaskKey>,
        data: D,
    ) -> bool {
        let first = ticket.is_none();
        if let Some(t) = *ticket {
            if self.state(t) == Some(State::Queued) {
                self.update_waker(t, cx.waker());
                return false;
            }
            self.remove(t);
        }
        *ticket = Some(self.push(cx.waker(), task, data));
        first
    }

    /// Gives up a waiting future's place (its `Drop`) and returns the state
    /// it was in. If it was `Granted`, the caller must pass the grant on.
    pub(crate) fn cancel(&mut self, ticket: &mut Option<Ticket>) -> Option<State> {
        ticket.take().and_then(|t| self.remove(t))
    }
}

thread_local! {
    /// The wakers of one operation, reused (see [`wake_after`]).
    static WAKE: Cell<Vec<Waker>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on the borrowed state, collecting wakers to wake; wakes them
/// once the borrow is released (so a waker may call back in). The buffer
/// is kept from one call to the next: no allocation in steady state.
pub(crate) fn wake_after<S, R>(
    cell: &RefCell<S>,
    f: impl FnOnce(&mut S, &mut Vec<Waker>) -> R,
) -> R {
    // `try_with`, not `take`/`set`: those go through the slow
    // initialisation path on every call; and a channel dropped by a
    // thread-local's destructor (after this one's) still works.
    let mut wake = WAKE.try_with(Cell::take).unwrap_or_default();
    let r = f(&mut cell.borrow_mut(), &mut wake);
    if !wake.is_empty() {
        for w in wake.drain(..) {
            w.wake();
        }
    }
    let _ = WAKE.try_with(|c| c.set(wake));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(list: &WaitList<u32>) -> Vec<u32> {
        list.iter().map(|w| w.data).collect()
    }

    #[test]
    fn fifo_with_removal_from_the_middle_and_slot_reuse() {
        let mut list = WaitList::default();
        let w = Waker::noop();
        let t: Vec<Ticket> = (0..5).map(|i| list.push(w, None, i)).collect();
        assert_eq!(order(&list), [0, 1, 2, 3, 4]);
        assert_eq!(list.remove(t[2]), Some(State::Queued));
        assert_eq!(list.remove(t[0]), Some(State::Queued));
        assert_eq!(list.remove(t[4]), Some(State::Queued));
        assert_eq!(order(&list), [1, 3]);
        assert_eq!(list.len(), 2);
        // A stale ticket does nothing, even once its slot is reused.
        let again = list.push(w, None, 9);
        assert_eq!(list.remove(t[4]), None);
        assert_eq!(list.state(t[2]), None);
        assert_eq!(order(&list), [1, 3, 9]);
        assert_eq!(list.state(again), Some(State::Queued));
    }

    #[test]
    fn settled_waiters_leave_the_line_but_keep_their_state_until_removed() {
        let mut list = WaitList::default();
        let w = Waker::noop();
        let a = list.push(w, None, 1);
        let b = list.push(w, None, 2);
        let c = list.push(w, None, 3);
        assert!(list.settle(a, State::Granted).is_some());
        assert!(list.settle(a, State::Granted).is_none(), "only once");
        assert_eq!(list.front().unwrap().ticket, b);
        assert_eq!(list.state(a), Some(State::Granted));
        let mut out = Vec::new();
        list.settle_all(State::Woken, &mut out);
        assert_eq!(out.len(), 2);
        assert!(list.is_empty());
        assert_eq!(list.state(c), Some(State::Woken));
        assert_eq!(list.remove(a), Some(State::Granted));
        assert_eq!(list.remove(b), Some(State::Woken));
        assert_eq!(list.remove(c), Some(State::Woken));
        assert_eq!(list.nodes.len(), 3, "no growth past the peak");
        for i in 0..3 {
            list.push(w, None, i);
        }
        assert_eq!(list.nodes.len(), 3, "slots reused");
    }
}
