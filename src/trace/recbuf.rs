//! Buffers for a trace's chunks of records (and a run's recorded
//! schedule), and where their memory comes from.
//!
//! A long, fully traced run writes megabytes of fresh memory, and fresh
//! memory costs a page fault per 4 KiB page: on the virtual machines CI
//! runs on, about 0.4 µs per KiB written, which is as much as recording
//! the events in it (W5 of `benches/`: about 3 of the 6.5 ms that full
//! tracing adds). A 2 MiB transparent huge page is faulted in once and
//! costs about a sixth of that per byte.
//!
//! So a trace store takes its first [`HEAP_BUFFERS`] chunk buffers from
//! the global allocator, each an allocation of its own (a test-sized run
//! stays there, and nothing changes for it), and the rest as slots of 2 MiB
//! *slabs*: allocations aligned to 2 MiB that, on Linux, are advised
//! `MADV_HUGEPAGE`. Where the kernel declines the advice (huge pages
//! turned off, none free) a slab is ordinary memory, faulted a page at a
//! time as before. A slab is freed when the last buffer carved from it is
//! dropped; each store carves its own, so a trace never holds memory of
//! another run's. A buffer that grows (the schedule a run records, two
//! bytes a step) moves, from 2 MiB on, to memory aligned and advised the
//! same way.

use std::alloc::{self, Layout};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;

/// Buffers a store takes from the global allocator before it uses slabs
/// (with the store's 32 KiB chunks: the first 256 KiB of records). A slab
/// costs about as much to fault in (zeroing 2 MiB) as 300 KiB of 4 KiB
/// pages, so a run past this point has about paid for its first slab.
pub(crate) const HEAP_BUFFERS: u32 = 8;

/// A slab's size and alignment: one huge page on x86-64 and AArch64
/// (with 4 KiB base pages). A buffer of its own this big or bigger (a
/// long run's recorded schedule) is allocated the same way.
pub(crate) const SLAB: usize = 2 << 20;

/// A growable buffer of `T`, like `Vec<T>` for the operations the store
/// uses, whose memory is either an allocation of its own or a slot of a
/// [`Slab`].
pub(crate) struct Buf<T: Copy> {
    /// Valid for `cap` values, the first `len` of them initialized, and
    /// used by this buffer alone (dangling when `cap` is 0).
    ptr: NonNull<T>,
    /// (32 bits each: a `Buf` is as small as a `Vec`, and a trace store,
    /// allocated by every run, holds four.)
    len: u32,
    cap: u32,
    /// The slab the memory is a slot of; `None`: an allocation of its own
    /// (with `Buf::layout(cap)`; none when `cap` is 0).
    slab: Option<Arc<Slab>>,
}

// SAFETY: a `Buf` owns its memory as a `Vec` does: no other value reads or
// writes the slot (the slab's `Arc` only keeps the allocation alive; the
// slab's own `Buf` stays empty and frees the memory once the last buffer
// carved from it is gone), so moving it to another thread moves the only
// access with it.
unsafe impl<T: Copy + Send> Send for Buf<T> {}
// SAFETY: `&Buf` gives only reads (`Deref` to a slice); writes need
// `&mut Buf`.
unsafe impl<T: Copy + Sync> Sync for Buf<T> {}

impl<T: Copy> Buf<T> {
    /// An empty buffer that holds no memory.
    pub(crate) const fn new() -> Buf<T> {
        Buf {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
            slab: None,
        }
    }

    /// How a buffer of its own with room for `cap` values is allocated:
    /// from 2 MiB on, aligned to 2 MiB and advised for huge pages, as a
    /// slab is (a buffer that grew that big is a long run's).
    fn layout(cap: usize) -> Layout {
        let layout = Layout::array::<T>(cap).expect("a trace buffer fits in memory");
        if layout.size() >= SLAB {
            layout.align_to(SLAB).expect("a power of two")
        } else {
            layout
        }
    }

    /// An empty buffer with room for exactly `cap` values, allocated on
    /// its own.
    pub(crate) fn with_capacity(cap: usize) -> Buf<T> {
        let layout = Buf::<T>::layout(cap);
        let cap = u32::try_from(cap).expect("a trace buffer holds at most 2^32 values");
        if layout.size() == 0 {
            return Buf::new();
        }
        // SAFETY: `layout` has a non-zero size (checked above).
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<T>()) else {
            alloc::handle_alloc_error(layout)
        };
        if layout.size() >= SLAB {
            advise_huge(ptr.cast(), layout.size());
        }
        Buf {
            ptr,
            len: 0,
            cap,
            slab: None,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// Appends `value`, growing (to a new allocation of twice the room)
    /// when full, as `Vec::push` does.
    #[inline(always)]
    pub(crate) fn push(&mut self, value: T) {
        if self.len == self.cap {
            self.grow();
        }
        // SAFETY: `len < cap` (grown above if it was not), so the slot is
        // inside the buffer's memory, which only this buffer uses.
        unsafe { self.ptr.as_ptr().add(self.len as usize).write(value) };
        self.len += 1;
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let mut bigger = Buf::with_capacity((self.capacity() * 2).max(4));
        bigger.extend_from(self);
        *self = bigger;
    }

    /// Appends `values` (growing as `push` does).
    #[inline]
    pub(crate) fn extend_from_slice(&mut self, values: &[T]) {
        for &v in values {
            self.push(v);
        }
    }

    /// Copies `from`'s values after this buffer's (room was made).
    fn extend_from(&mut self, from: &[T]) {
        assert!(
            (self.cap - self.len) as usize >= from.len(),
            "room for the copy"
        );
        // SAFETY: the destination is inside this buffer's memory (checked
        // above) and cannot overlap `from`, which another buffer owns (or
        // this one's initialized part, which lies before `len`).
        unsafe {
            self.ptr
                .as_ptr()
                .add(self.len as usize)
                .copy_from_nonoverlapping(from.as_ptr(), from.len());
        }
        self.len += from.len() as u32;
    }

    /// Empties the buffer, keeping its memory.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }
}

impl<T: Copy> Drop for Buf<T> {
    fn drop(&mut self) {
        if self.slab.is_none() && self.cap > 0 && size_of::<T>() > 0 {
            let layout = Buf::<T>::layout(self.capacity());
            // SAFETY: the memory was allocated by `with_capacity` with this
            // layout (`layout` gives the same for the same capacity), and no
            // slice of it outlives `self`.
            unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
        }
        // A slab's slot is returned with the slab, when its last `Arc` goes.
    }
}

impl<T: Copy> Deref for Buf<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: the first `len` values are initialized, and the memory is
        // valid while `self` is borrowed.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len as usize) }
    }
}

impl<T: Copy> DerefMut for Buf<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as for `deref`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len as usize) }
    }
}

impl<T: Copy> Clone for Buf<T> {
    /// A copy in an allocation of its own, with the same capacity.
    fn clone(&self) -> Buf<T> {
        let mut copy = Buf::with_capacity(self.capacity());
        copy.extend_from(self);
        copy
    }
}

impl<T: Copy> Default for Buf<T> {
    fn default() -> Buf<T> {
        Buf::new()
    }
}

impl<T: Copy + fmt::Debug> fmt::Debug for Buf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// 2 MiB of memory aligned to 2 MiB, advised for huge pages, that buffers
/// are carved from: a `Buf` of that many bytes (allocated, advised and
/// freed as any buffer that big), kept empty, so that nothing reads or
/// writes the memory through it; the buffers carved from it do, each in
/// its own slot.
struct Slab(Buf<u8>);

impl Slab {
    fn new() -> Slab {
        Slab(Buf::with_capacity(SLAB))
    }

    /// The start of the memory.
    fn base(&self) -> *mut u8 {
        self.0.ptr.as_ptr()
    }
}

/// Asks the kernel to back `len` bytes at `ptr` with huge pages. Advice
/// only: a refusal leaves ordinary pages, so its result is ignored. (Also
/// for the pool of task cells, `task::slab`, and large executor tables,
/// `runtime::hugevec`.) Not under Miri, which has no `madvise`.
#[cfg(all(target_os = "linux", not(miri)))]
pub(crate) fn advise_huge(ptr: NonNull<u8>, len: usize) {
    // SAFETY: `[ptr, ptr + len)` is an allocation this process owns, and
    // `MADV_HUGEPAGE` changes how its pages are backed, never what they
    // hold.
    unsafe {
        libc::madvise(ptr.as_ptr().cast(), len, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(all(target_os = "linux", not(miri))))]
pub(crate) fn advise_huge(_: NonNull<u8>, _: usize) {}

/// Where one store's chunk buffers come from: the allocator for its first
/// [`HEAP_BUFFERS`], then slots of its slabs.
#[derive(Default)]
pub(crate) struct Source {
    made: u32,
    /// Bytes of `slab` handed out (from its start).
    used: u32,
    slab: Option<Arc<Slab>>,
}

impl Source {
    /// A new, empty buffer with room for `cap` values.
    pub(crate) fn take<T: Copy>(&mut self, cap: usize) -> Buf<T> {
        let bytes = cap * size_of::<T>();
        if self.made < HEAP_BUFFERS || bytes == 0 || bytes > SLAB || align_of::<T>() > SLAB {
            self.made = self.made.saturating_add(1);
            return Buf::with_capacity(cap);
        }
        let mut start = (self.used as usize).next_multiple_of(align_of::<T>());
        let slab = match &self.slab {
            Some(slab) if start + bytes <= SLAB => slab.clone(),
            _ => {
                start = 0;
                let slab = Arc::new(Slab::new());
                self.slab = Some(slab.clone());
                slab
            }
        };
        self.used = (start + bytes) as u32; // at most `SLAB`
        // SAFETY: `start + bytes <= SLAB`, so the slot lies inside the
        // slab; `start` is a multiple of `T`'s alignment and the slab's
        // start is aligned to `SLAB` (`Buf::layout` of its size), a larger
        // power of two; and `used` only grows within a slab, so no other
        // buffer was given this slot.
        let at = unsafe { slab.base().add(start) };
        Buf {
            ptr: NonNull::new(at.cast::<T>()).expect("inside an allocation"),
            len: 0,
            cap: cap as u32, // at most `SLAB` values
            slab: Some(slab),
        }
    }
}

impl Clone for Source {
    /// A fresh source: a cloned store must not be handed slots of the
    /// original's slab, which the original goes on handing out.
    fn clone(&self) -> Source {
        Source::default()
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("made", &self.made)
            .field("slab_used", &self.slab.as_ref().map(|_| self.used))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_behaves_as_a_vec() {
        let mut b: Buf<u64> = Buf::new();
        let mut v = Vec::new();
        for i in 0..1000u64 {
            b.push(i * 3);
            v.push(i * 3);
        }
        assert_eq!(&b[..], &v[..]);
        b[5] = 7;
        v[5] = 7;
        let c = b.clone();
        assert_eq!(&c[..], &v[..]);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(&c[..], &v[..]);
    }

    #[test]
    fn slabs_serve_after_the_heap_buffers_and_never_share_a_slot() {
        let mut src = Source::default();
        let cap = 4096; // 32 KiB of u64: 64 slots a slab
        let mut bufs: Vec<Buf<u64>> = (0..HEAP_BUFFERS as usize + 130)
            .map(|_| src.take(cap))
            .collect();
        assert!(
            bufs[..HEAP_BUFFERS as usize]
                .iter()
                .all(|b| b.slab.is_none())
        );
        assert!(
            bufs[HEAP_BUFFERS as usize..]
                .iter()
                .all(|b| b.slab.is_some())
        );
        // Three slabs for 130 slots.
        let slabs: std::collections::HashSet<usize> = bufs[HEAP_BUFFERS as usize..]
            .iter()
            .map(|b| Arc::as_ptr(b.slab.as_ref().unwrap()) as usize)
            .collect();
        assert_eq!(slabs.len(), 3);
        // Fill every buffer to capacity with its own index: a shared slot
        // would show another buffer's values.
        for (i, b) in bufs.iter_mut().enumerate() {
            for _ in 0..cap {
                b.push(i as u64);
            }
            assert_eq!(b.capacity(), cap, "filled without growing");
        }
        for (i, b) in bufs.iter().enumerate() {
            assert!(b.iter().all(|&x| x == i as u64), "buffer {i} intact");
        }
        // A full slab buffer grows into an allocation of its own.
        let last = bufs.last_mut().unwrap();
        last.push(1);
        assert!(last.slab.is_none() && last.len() == cap + 1);
        // A buffer that grows past 2 MiB moves to huge-page-aligned memory
        // and back out when dropped (the allocator checks the layout).
        let mut big: Buf<u16> = Buf::new();
        for i in 0..(3 << 20) {
            big.push(i as u16);
        }
        assert_eq!(big.as_ptr() as usize % SLAB, 0);
        assert!(big.iter().enumerate().all(|(i, &x)| x == i as u16));
        drop(big);
        // A clone of the source starts its own slabs.
        let mut copy = src.clone();
        let b: Buf<u64> = copy.take(cap);
        assert!(b.slab.is_none());
    }
}
