//! Catching task panics, with their message and location.
//!
//! A task's poll runs inside `catch_unwind`. The message comes from the
//! panic payload; the location only reaches a panic hook, so lockstep
//! installs one (once per process, chaining to the hook that was there
//! before). While a simulation polls a task on this thread, the hook records
//! the location and stays silent: the panic becomes a report, not noise on
//! stderr. Everywhere else it defers to the previous hook.
//!
//! When the user asks for backtraces (`RUST_BACKTRACE=1`), the hook also
//! captures one, and the `#[sim_test]` report (and `Outcome::unwrap`)
//! prints it: a task panic deep in library code is otherwise hard to place.
//! It stays out of the failure's `Display`, which is the same in every
//! replay of a seed.
//!
//! A program built with `panic = "abort"` cannot catch panics at all; lockstep
//! needs the default `panic = "unwind"`.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::Once;

use crate::check::Site;

thread_local! {
    static CATCHING: Cell<u32> = const { Cell::new(0) };
    static CAUGHT: RefCell<Option<Site>> = const { RefCell::new(None) };
    static BACKTRACE: RefCell<Option<Arc<Backtrace>>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs the capturing hook (once per process).
pub(crate) fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) > 0 {
                let site = info.location().map(|l| Site {
                    file: Cow::Owned(l.file().to_string()),
                    line: l.line(),
                    column: l.column(),
                });
                CAUGHT.with(|c| *c.borrow_mut() = site);
                // Captured only when the user asked for backtraces
                // (RUST_BACKTRACE / RUST_LIB_BACKTRACE), as std's hook does;
                // printed in the report, since the hook stays silent.
                // Resolved to symbols only if a report prints it.
                let bt = Backtrace::capture();
                let bt = (bt.status() == BacktraceStatus::Captured).then(|| Arc::new(bt));
                BACKTRACE.with(|b| *b.borrow_mut() = bt);
            } else {
                previous(info);
            }
        }));
    });
}

/// Panics for a misuse of lockstep's API noticed inside a future, at the
/// user's line `at` (captured with `#[track_caller]` when the future was
/// made) rather than at the line inside lockstep that noticed it: the report
/// of the task then points where the fix goes.
#[cold]
#[track_caller]
pub(crate) fn misuse(at: &'static std::panic::Location<'static>, message: String) -> ! {
    if CATCHING.with(Cell::get) > 0 {
        CAUGHT.with(|c| *c.borrow_mut() = Some(Site::from_location(at)));
        BACKTRACE.with(|b| *b.borrow_mut() = None);
        panic::resume_unwind(Box::new(message));
    }
    panic!("{message} (called at {at})")
}

/// A caught panic.
pub(crate) struct PanicPayload {
    pub(crate) message: String,
    pub(crate) location: Option<Site>,
    /// The backtrace, when `RUST_BACKTRACE` asked for one.
    pub(crate) backtrace: Option<Arc<Backtrace>>,
}

/// Runs `f`, catching a panic.
#[inline]
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, PanicPayload> {
    CATCHING.with(|c| c.set(c.get() + 1));
    let res = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    res.map_err(|payload| PanicPayload {
        message: message_of(&*payload),
        location: CAUGHT.with(|c| c.borrow_mut().take()),
        backtrace: BACKTRACE.with(|b| b.borrow_mut().take()),
    })
}

fn message_of(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if payload.is::<super::executor::PollLivelock>() {
        "the poll was stopped by lockstep: the task woke itself too many times inside one \
         poll (a livelock inside poll)"
            .to_string()
    } else {
        "Box<dyn Any> (a panic payload that is not a string)".to_string()
    }
}
