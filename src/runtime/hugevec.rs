//! `HugeVec`: a vector whose large buffers sit on huge pages, for the
//! executor's per-task tables.
//!
//! A run that holds many tasks at once writes its task table and its ready
//! queue into fresh memory, and fresh memory costs a page fault per 4 KiB
//! page (W1's 100,000 tasks: about 1,250 faults for the table and the
//! ready queue, a tenth of the run's time). A transparent huge page is
//! faulted in once for 2 MiB, at about a sixth of the cost per byte (see
//! `trace::recbuf`, which measured it, and which a long trace's memory
//! already uses).
//!
//! So a `HugeVec` is a `Vec` for the operations the executor uses (push,
//! grow, index, iterate, clear), whose buffer, once it needs more than
//! [`HUGE_FROM`] bytes, is a multiple of 2 MiB, aligned to 2 MiB and
//! advised `MADV_HUGEPAGE` on Linux. A `Vec` cannot hold such a buffer (it
//! frees with its element type's alignment), hence this type. Below that
//! size it is an ordinary allocation: a test-sized run's tables are as
//! before. Where the kernel declines the advice, the buffer is ordinary
//! memory.
//!
//! Growing moves the elements to a new buffer of twice the room (a bitwise
//! copy, as `Vec` does when it reallocates).

use std::alloc::{self, Layout};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};

use crate::trace::recbuf::{SLAB, advise_huge};

/// Buffers of more bytes than this are huge-page buffers (the size of a
/// task table of about 6,500 tasks).
const HUGE_FROM: usize = 256 * 1024;

/// A growable array of `T` (see the module docs).
pub(crate) struct HugeVec<T> {
    /// Valid for `cap` values, the first `len` of them initialized
    /// (dangling when `cap` is 0).
    ptr: NonNull<T>,
    len: usize,
    cap: usize,
    /// The vector owns its `T`s.
    _owns: PhantomData<T>,
}

impl<T> HugeVec<T> {
    const NOT_ZERO_SIZED: () = assert!(size_of::<T>() > 0, "a HugeVec holds sized values");

    pub(crate) const fn new() -> HugeVec<T> {
        HugeVec {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
            _owns: PhantomData,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// Room for at least `additional` more values.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let need = self.len.checked_add(additional).expect("capacity overflow");
        if need > self.cap {
            self.grow_to(need.max(self.cap * 2));
        }
    }

    /// Appends `value`.
    #[inline]
    pub(crate) fn push(&mut self, value: T) {
        if self.len == self.cap {
            self.grow_to((self.cap * 2).max(4));
        }
        // SAFETY: `len < cap`: the slot is inside the buffer, unused.
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len += 1;
    }

    /// Appends copies of `value` until the vector holds `len` values.
    pub(crate) fn resize(&mut self, len: usize, value: T)
    where
        T: Clone,
    {
        self.reserve(len.saturating_sub(self.len));
        while self.len < len {
            self.push(value.clone());
        }
    }

    /// Drops every value, keeping the room.
    pub(crate) fn clear(&mut self) {
        let values = ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
        // The length first: a `Drop` that unwinds leaves the others
        // leaked, never dropped twice (as `Vec::clear`).
        self.len = 0;
        // SAFETY: the first `len` values were initialized, and are no
        // longer reachable through `self`.
        unsafe { ptr::drop_in_place(values) };
    }

    /// The capacity and layout of a buffer with room for at least `cap`
    /// values.
    fn layout(cap: usize) -> (usize, Layout) {
        let size = size_of::<T>();
        let bytes = cap.checked_mul(size).expect("capacity overflow");
        if bytes <= HUGE_FROM {
            let layout = Layout::array::<T>(cap).expect("capacity overflow");
            return (cap, layout);
        }
        // Whole huge pages, filled with as many values as fit.
        let cap = bytes.next_multiple_of(SLAB) / size;
        let layout = Layout::from_size_align(cap * size, SLAB.max(align_of::<T>()))
            .expect("capacity overflow");
        (cap, layout)
    }

    #[cold]
    #[inline(never)]
    fn grow_to(&mut self, cap: usize) {
        let () = Self::NOT_ZERO_SIZED;
        let (cap, layout) = Self::layout(cap);
        // SAFETY: a non-zero size (a non-zero `cap` of sized values).
        let raw = unsafe { alloc::alloc(layout) };
        let Some(new) = NonNull::new(raw.cast::<T>()) else {
            alloc::handle_alloc_error(layout)
        };
        if layout.align() == SLAB {
            advise_huge(new.cast(), layout.size());
        }
        if self.cap > 0 {
            // SAFETY: the old buffer's first `len` values move, bitwise, to
            // the new one (which has room for them and does not overlap);
            // the old buffer is then freed with the layout it was allocated
            // with, and never read again.
            unsafe {
                ptr::copy_nonoverlapping(self.ptr.as_ptr(), new.as_ptr(), self.len);
                alloc::dealloc(self.ptr.as_ptr().cast(), Self::layout(self.cap).1);
            }
        }
        self.ptr = new;
        self.cap = cap;
    }
}

impl<T> Drop for HugeVec<T> {
    fn drop(&mut self) {
        // Freed also if a value's `Drop` unwinds.
        struct Free<T>(NonNull<T>, usize);
        impl<T> Drop for Free<T> {
            fn drop(&mut self) {
                if self.1 > 0 {
                    // SAFETY: allocated with this capacity's layout.
                    unsafe {
                        alloc::dealloc(self.0.as_ptr().cast(), HugeVec::<T>::layout(self.1).1)
                    };
                }
            }
        }
        let _free = Free(self.ptr, self.cap);
        self.clear();
    }
}

impl<T> Default for HugeVec<T> {
    fn default() -> HugeVec<T> {
        HugeVec::new()
    }
}

impl<T> Deref for HugeVec<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: the first `len` values are initialized; the pointer is
        // aligned and non-null (dangling only for `len` 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> DerefMut for HugeVec<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` is the only access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: fmt::Debug> fmt::Debug for HugeVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// Values pushed are kept in order across growth, into huge-page
    /// buffers too, and each is dropped exactly once, by `clear` or by the
    /// vector's drop.
    #[test]
    fn values_survive_growth_and_drop_once() {
        let token = Rc::new(());
        let mut v = HugeVec::new();
        let n = HUGE_FROM / size_of::<(Rc<()>, u64)>() * 3;
        for i in 0..n as u64 {
            v.push((token.clone(), i));
        }
        assert!(v.capacity() * size_of::<(Rc<()>, u64)>() >= SLAB);
        assert_eq!(v.as_ptr() as usize % SLAB, 0);
        assert!(v.iter().enumerate().all(|(i, (_, x))| *x == i as u64));
        assert_eq!(Rc::strong_count(&token), n + 1);
        v.clear();
        assert_eq!(Rc::strong_count(&token), 1);
        v.reserve(10);
        for i in 0..10 {
            v.push((token.clone(), i));
        }
        v[3].1 = 99;
        assert_eq!(v.get(3).map(|e| e.1), Some(99));
        drop(v);
        assert_eq!(Rc::strong_count(&token), 1);
    }
}
