//! [`Local`]: a simulated value that may sit inside a `Send` type.
//!
//! tokio's types are `Send` (a `TcpStream` can move to another worker
//! thread), and code written for tokio relies on it: `tokio::spawn` demands
//! `Send` futures, so every stream, timer and handle held across an
//! `.await` must be `Send`. lockstep's types are not: a simulation is one
//! thread, and its handles share state through `Rc`. The layer bridges the
//! two with `Local<T>`, which remembers the thread that created it and
//! lets the value be used, and dropped, only there.
//!
//! Inside a simulation nothing ever leaves the simulation's thread (there
//! are no worker threads to move a task to), so the check never fires in
//! a correct program; it is what makes the `Send`/`Sync` claims below
//! sound for a program that does move a simulated value to another
//! thread, which then gets a panic naming the type instead of a data race.

use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::{self, ThreadId};

thread_local! {
    static THREAD: ThreadId = thread::current().id();
}

/// The calling thread's id; `None` while its thread-locals are being
/// destroyed (a value dropped then is leaked, never touched).
fn current() -> Option<ThreadId> {
    THREAD.try_with(|id| *id).ok()
}

/// A value pinned to the thread that made it.
pub(crate) struct Local<T> {
    value: ManuallyDrop<T>,
    owner: ThreadId,
    what: &'static str,
}

// SAFETY: the inner value is reachable only through `get`, `get_mut` and
// `pin_mut`, each of which first checks that the calling thread is the one
// that created the `Local` (thread ids are never reused in a process) and
// panics otherwise; `Drop` drops the value only on that thread and leaks it
// elsewhere. So `T` is only ever touched or dropped on its creating thread,
// which is all `!Send` and `!Sync` types require; moving or sharing the
// *wrapper* across threads touches nothing of `T`.
unsafe impl<T> Send for Local<T> {}
// SAFETY: see the `Send` impl: a shared reference on another thread cannot
// reach `T` either.
unsafe impl<T> Sync for Local<T> {}

impl<T> Local<T> {
    /// Wraps `value`, owned by the calling thread. `what` names the tokio
    /// type for the panic message.
    pub(crate) fn new(value: T, what: &'static str) -> Local<T> {
        Local {
            value: ManuallyDrop::new(value),
            owner: THREAD.with(|id| *id),
            what,
        }
    }

    #[track_caller]
    fn check(&self) {
        if current() != Some(self.owner) {
            wrong_thread(self.what);
        }
    }

    /// The value.
    #[track_caller]
    pub(crate) fn get(&self) -> &T {
        self.check();
        &self.value
    }

    /// The value, mutably.
    #[track_caller]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.check();
        &mut self.value
    }

    /// The value, pinned.
    #[track_caller]
    pub(crate) fn pin_mut(self: Pin<&mut Self>) -> Pin<&mut T> {
        self.check();
        // SAFETY: structural pinning: `value` is never moved out of a pinned
        // `Local` (nothing moves it out at all), and `Drop` drops it
        // in place.
        unsafe { self.map_unchecked_mut(|l| &mut *l.value) }
    }
}

impl<T> Drop for Local<T> {
    fn drop(&mut self) {
        if current() == Some(self.owner) {
            // SAFETY: dropped once, here, and never used after.
            unsafe { ManuallyDrop::drop(&mut self.value) }
        }
        // On another thread: leaked. Dropping it there would race with the
        // simulation's thread; panicking in `drop` could abort.
    }
}

impl<F: Future> Future for Local<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.pin_mut().poll(cx)
    }
}

impl<T> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (simulated)", self.what)
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn wrong_thread(what: &str) -> ! {
    panic!(
        "lockstep-tokio: a simulated `{what}` was used on another thread than its simulation's: \
         a value made inside a lockstep simulation belongs to that simulation's thread"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn usable_on_its_thread() {
        let mut local = Local::new(Rc::new(5), "Rc");
        assert_eq!(**local.get(), 5);
        *local.get_mut() = Rc::new(6);
        assert_eq!(**local.get(), 6);
    }

    #[test]
    fn another_thread_gets_a_panic_naming_the_type_and_drops_nothing() {
        let rc = Rc::new(());
        let local = Local::new(rc.clone(), "tokio::net::TcpStream");
        let message = std::thread::spawn(move || {
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = local.get();
            }));
            drop(local); // leaked there, not dropped
            *caught.unwrap_err().downcast::<String>().unwrap()
        })
        .join()
        .unwrap();
        assert!(
            message.contains("a simulated `tokio::net::TcpStream` was used on another thread"),
            "{message}"
        );
        assert_eq!(
            Rc::strong_count(&rc),
            2,
            "the other thread never touched the Rc"
        );
    }
}
