//! The scoped context: how code running inside a simulation finds it.
//!
//! One [`World`] owns all state of one simulation. While [`Sim::run`] drives
//! it, a pointer to that world sits in a thread-local; every lockstep API
//! (`spawn`, `sleep`, `Instant::now`, a waker's `wake`) reaches the world
//! through [`with`] or [`try_with`]. Outside a run the pointer is null and
//! [`with`] panics with a message that names the API that was called, rather
//! than failing deep inside with an `unwrap`.
//!
//! Nothing here is global across threads: two simulations on two threads
//! each see their own world.
//!
//! [`Sim::run`]: crate::Sim::run

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr;

use super::world::World;

thread_local! {
    static CURRENT: Cell<*const World> = const { Cell::new(ptr::null()) };
}

/// Makes a world current on this thread until dropped; restores the previous
/// one (null, or an outer simulation's) on drop, also when unwinding.
pub(crate) struct Enter<'w> {
    prev: *const World,
    _world: PhantomData<&'w World>,
}

impl<'w> Enter<'w> {
    pub(crate) fn new(world: &'w World) -> Enter<'w> {
        let prev = CURRENT.with(|c| c.replace(world as *const World));
        Enter {
            prev,
            _world: PhantomData,
        }
    }
}

impl Drop for Enter<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

/// Runs `f` with the current world, or returns `None` outside a simulation.
#[inline]
pub(crate) fn try_with<R>(f: impl FnOnce(&World) -> R) -> Option<R> {
    let p = CURRENT.with(|c| c.get());
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null pointer was stored by `Enter::new` from a `&'w World`
    // and is reset by `Enter::drop` before `'w` ends (guards are only created
    // and dropped in LIFO order by `Sim::run`, never leaked). The world is only
    // ever used through shared references and interior mutability, so handing
    // out another `&World` while other shared references exist is sound. The
    // reference cannot escape `f`: its lifetime is local to this call.
    Some(f(unsafe { &*p }))
}

/// Runs `f` with the current world; panics with a clear message naming `api`
/// when called outside a simulation.
#[inline]
#[track_caller]
pub(crate) fn with<R>(api: &'static str, f: impl FnOnce(&World) -> R) -> R {
    match try_with(f) {
        Some(r) => r,
        None => outside(api),
    }
}

/// [`with`] for a future's poll: the API was called at `at` (captured with
/// `#[track_caller]` when the future was made), which the message names,
/// since the poll itself runs far from the user's line.
#[inline]
pub(crate) fn with_at<R>(
    api: &'static str,
    at: &'static std::panic::Location<'static>,
    f: impl FnOnce(&World) -> R,
) -> R {
    match try_with(f) {
        Some(r) => r,
        None => outside_at(api, at),
    }
}

#[cold]
#[inline(never)]
fn outside_at(api: &str, at: &'static std::panic::Location<'static>) -> ! {
    panic!(
        "`{api}` was called outside a lockstep simulation (the future was made at {at} and \
         polled there): lockstep's runtime APIs work only inside `Sim::run(..)` or a \
         `#[lockstep::sim_test]` body, on the simulation's own thread"
    )
}

#[cold]
#[inline(never)]
#[track_caller]
fn outside(api: &str) -> ! {
    panic!(
        "`{api}` was called outside a lockstep simulation: lockstep's runtime APIs work only \
         inside `Sim::run(..)` or a `#[lockstep::sim_test]` body, on the simulation's own thread"
    )
}

/// Whether a simulation is running on this thread.
#[inline]
pub(crate) fn is_inside() -> bool {
    !CURRENT.with(|c| c.get()).is_null()
}
