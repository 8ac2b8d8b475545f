//! Where task cells live: free lists by size, carved from chunks, one
//! pool per thread.
//!
//! A run spawns and ends tasks at a rate the general-purpose allocator was
//! not built for: W1 spawns 100,000 tasks and ends them all, which cost
//! glibc's `malloc` and `free` about 300 instructions a task (a fifth of
//! the run), since its per-thread cache holds 7 blocks a size and the
//! rest go through its bins. Here taking a cell is popping a free list or
//! bumping a pointer, and giving it back is a push: a few instructions.
//! Cells are carved to the next multiple of 8 bytes, with no header of
//! their own (W1's 56-byte cells took 64 bytes from `malloc`).
//!
//! Cells larger than [`LARGEST`] bytes, or aligned to more than 8, come
//! from the global allocator as before.
//!
//! The first [`SMALL_CHUNKS`] chunks are 64 KiB from the global allocator;
//! a pool that needs more (a run holding thousands of tasks at once) takes
//! 2 MiB chunks, aligned to 2 MiB and advised for transparent huge pages
//! on Linux, as a long trace's memory is (`trace::recbuf`, which measured
//! why): fresh memory costs a page fault per 4 KiB page, about as much as
//! spawning the task that first touches it, and a huge page is faulted in
//! once. Where the kernel declines, a chunk is ordinary memory.
//!
//! A pool keeps what it carved for its thread's life: a run that held
//! 100,000 tasks at once leaves room for as many to the next run on that
//! thread, as `malloc` would keep its heap. When the thread ends, the pool
//! frees its chunks, unless some cell is still live then (a handle leaked
//! with `mem::forget`, or held by a thread-local dropped later): the
//! chunks are then left allocated, since those cells still point into
//! them. Nothing of a run reaches another through a pool but addresses,
//! which no report or trace shows.

use std::alloc::{self, Layout};
use std::cell::{Cell, RefCell};
use std::ptr::{self, NonNull};

/// Cells are carved in multiples of this (and aligned to it).
const GRAIN: usize = 8;
/// The largest cell a pool serves.
const LARGEST: usize = 256;
const CLASSES: usize = LARGEST / GRAIN;
/// The size of a pool's first chunks.
const CHUNK: usize = 64 * 1024;
/// Chunks of [`CHUNK`] bytes a pool takes before it takes huge ones (256
/// KiB of cells: about 4,500 of W1's).
const SMALL_CHUNKS: usize = 4;
/// The size, and alignment, of a pool's later chunks: one huge page.
const HUGE_CHUNK: usize = crate::trace::recbuf::SLAB;

struct Pool {
    /// Per size class, the first free block; each free block holds the
    /// address of the next in its first word.
    free: [Cell<*mut u8>; CLASSES],
    /// The next uncarved byte of the newest chunk, and its end.
    bump: Cell<*mut u8>,
    end: Cell<*mut u8>,
    /// Every chunk, to free with the pool (with its layout).
    chunks: RefCell<Vec<(NonNull<u8>, Layout)>>,
    /// Blocks handed out and not given back.
    live: Cell<usize>,
}

thread_local! {
    static POOL: Pool = const {
        Pool {
            free: [const { Cell::new(ptr::null_mut()) }; CLASSES],
            bump: Cell::new(ptr::null_mut()),
            end: Cell::new(ptr::null_mut()),
            chunks: RefCell::new(Vec::new()),
            live: Cell::new(0),
        }
    };
}

/// The size class of `layout`, if a pool serves it.
#[inline]
fn class(layout: Layout) -> Option<usize> {
    (layout.size() > 0 && layout.size() <= LARGEST && layout.align() <= GRAIN)
        .then(|| layout.size().div_ceil(GRAIN) - 1)
}

/// The layout of a pool's next chunk, after `made` chunks.
fn chunk_layout(made: usize) -> Layout {
    let layout = if made < SMALL_CHUNKS {
        Layout::from_size_align(CHUNK, GRAIN)
    } else {
        Layout::from_size_align(HUGE_CHUNK, HUGE_CHUNK)
    };
    layout.expect("a valid chunk layout")
}

/// Room for a value of `layout`: give it back with [`free`] and the same
/// layout.
#[inline]
pub(crate) fn alloc(layout: Layout) -> NonNull<u8> {
    if let Some(c) = class(layout) {
        // While the thread's pool is being dropped (its end), the global
        // allocator serves.
        if let Ok(p) = POOL.try_with(|pool| pool.take(c)) {
            return p;
        }
    }
    // SAFETY: `layout` has a non-zero size: a task cell starts with its
    // header.
    let p = unsafe { alloc::alloc(layout) };
    NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// Gives back room that [`alloc`] gave for `layout`.
///
/// # Safety
///
/// `ptr` came from [`alloc`] with this `layout`, on this thread, and is
/// not used again.
#[inline]
pub(crate) unsafe fn free(ptr: NonNull<u8>, layout: Layout) {
    match class(layout) {
        Some(c) => {
            // Once the pool is gone its chunks are left as they are (see the
            // module docs): the block stays where it is.
            let _ = POOL.try_with(|pool| pool.give(c, ptr));
        }
        // SAFETY: the caller's promise: `alloc` took it from the global
        // allocator with this layout.
        None => unsafe { alloc::dealloc(ptr.as_ptr(), layout) },
    }
}

impl Pool {
    #[inline]
    fn take(&self, class: usize) -> NonNull<u8> {
        self.live.set(self.live.get() + 1);
        let head = self.free[class].get();
        if let Some(block) = NonNull::new(head) {
            // SAFETY: a free block of this class, which `give` wrote the
            // next block's address into; nothing else uses it.
            self.free[class].set(unsafe { head.cast::<*mut u8>().read() });
            return block;
        }
        let size = (class + 1) * GRAIN;
        let mut at = self.bump.get();
        if (self.end.get() as usize) - (at as usize) < size {
            at = self.new_chunk();
        }
        // In bounds: the chunk has `size` bytes left from `at`.
        self.bump.set(at.wrapping_add(size));
        NonNull::new(at).expect("a chunk's bytes are not at address 0")
    }

    #[cold]
    fn new_chunk(&self) -> *mut u8 {
        let mut chunks = self.chunks.borrow_mut();
        let layout = chunk_layout(chunks.len());
        // SAFETY: a non-zero size.
        let chunk = NonNull::new(unsafe { alloc::alloc(layout) })
            .unwrap_or_else(|| alloc::handle_alloc_error(layout));
        if layout.size() == HUGE_CHUNK {
            crate::trace::recbuf::advise_huge(chunk, HUGE_CHUNK);
        }
        chunks.push((chunk, layout));
        let at = chunk.as_ptr();
        self.end.set(at.wrapping_add(layout.size()));
        at
    }

    #[inline]
    fn give(&self, class: usize, block: NonNull<u8>) {
        self.live.set(self.live.get() - 1);
        // SAFETY: the block is at least one word long, aligned to a word,
        // and no longer used (the caller's promise to `free`): it now
        // holds the list's next address.
        unsafe { block.cast::<*mut u8>().write(self.free[class].get()) };
        self.free[class].set(block.as_ptr());
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if self.live.get() > 0 {
            // Some cell still points into the chunks: they stay.
            return;
        }
        for (chunk, layout) in self.chunks.take() {
            // SAFETY: allocated in `new_chunk` with this layout; no block
            // in it is live.
            unsafe { alloc::dealloc(chunk.as_ptr(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of a class are reused last in, first out; other classes and
    /// large or over-aligned layouts do not mix with them.
    #[test]
    fn blocks_are_reused_by_size_class() {
        let small = Layout::from_size_align(56, 8).unwrap();
        let a = alloc(small);
        let b = alloc(small);
        assert_ne!(a, b);
        // SAFETY: both came from `alloc` with this layout.
        unsafe {
            free(a, small);
            free(b, small);
        }
        assert_eq!(alloc(small), b);
        assert_eq!(alloc(small), a);
        let other = Layout::from_size_align(64, 8).unwrap();
        let c = alloc(other);
        assert!(c != a && c != b);
        for layout in [
            Layout::from_size_align(LARGEST + 8, 8).unwrap(),
            Layout::from_size_align(32, 16).unwrap(),
        ] {
            let p = alloc(layout);
            assert_eq!(p.as_ptr() as usize % layout.align(), 0);
            // SAFETY: from `alloc` with this layout.
            unsafe { free(p, layout) };
        }
        // SAFETY: from `alloc` with these layouts.
        unsafe {
            free(a, small);
            free(b, small);
            free(c, other);
        }
    }

    /// More blocks than a chunk holds come from new chunks, small then
    /// huge, each block whole and apart from the others.
    #[test]
    fn blocks_span_chunks() {
        let layout = Layout::from_size_align(LARGEST, 8).unwrap();
        let n = (SMALL_CHUNKS * CHUNK + HUGE_CHUNK / 2) / LARGEST;
        let blocks: Vec<_> = (0..n)
            .map(|i| {
                let p = alloc(layout);
                // SAFETY: `p` has `LARGEST` bytes.
                unsafe { ptr::write_bytes(p.as_ptr(), i as u8, LARGEST) };
                p
            })
            .collect();
        for (i, p) in blocks.iter().enumerate() {
            // SAFETY: written above, still held.
            let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), LARGEST) };
            assert!(bytes.iter().all(|&b| b == i as u8));
        }
        for p in blocks {
            // SAFETY: from `alloc` with this layout.
            unsafe { free(p, layout) };
        }
    }
}
