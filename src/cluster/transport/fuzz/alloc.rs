//! An allocation meter for the fuzz test: the lib test binary's global allocator.
//!
//! "The decoder allocates nothing beyond what the bytes present describe" is only checkable
//! by seeing every allocation a decode makes, postcard's and serde's included, so this
//! module installs, in the unit-test binary only (the `ringcache` binary keeps its own
//! allocator), the system allocator with a per-thread meter. The meter counts only while
//! [`measure`] runs on that thread, so tests running alongside on other threads neither
//! disturb a measurement nor pay more than one thread-local read per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, metered on threads inside [`measure`].
pub struct Metered;

#[global_allocator]
static METERED: Metered = Metered;

thread_local! {
    // Const-initialised and without destructors: touching them never allocates.
    static ON: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn record(delta: isize) {
    let _ = ON.try_with(|on| {
        if on.get() {
            // Freeing a block allocated before `measure` began gives no headroom: the
            // count is of what the measured code added.
            let live = (LIVE.get() + delta).max(0);
            LIVE.set(live);
            PEAK.set(PEAK.get().max(live));
        }
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; the meter has no
// effect on the memory handed out.
unsafe impl GlobalAlloc for Metered {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            record(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            record(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        record(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = System.realloc(ptr, layout, new_size);
        if !moved.is_null() {
            record(new_size as isize - layout.size() as isize);
        }
        moved
    }
}

/// Runs `f` and returns its result with the most heap bytes it held at once (its result's
/// own allocations included, since they are live when `f` returns).
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LIVE.set(0);
    PEAK.set(0);
    ON.set(true);
    let result = f();
    ON.set(false);
    (result, PEAK.get() as usize)
}
