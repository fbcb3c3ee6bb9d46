//! Relay buffers are lent, not owned. A client between transactions has nothing to read or
//! write, so it holds no buffer; one is taken when bytes arrive and given back as soon as
//! everything taken in has been written and the socket would block (PgBouncer keeps its
//! per-socket buffers the same way, only while data is pending). That is what lets ten
//! thousand idle clients cost a kilobyte or so each instead of two buffers each.
//!
//! The free list is per thread: a busy client takes and gives back a few buffers per
//! transaction, and that must cost a vector push and pop, not a lock or a trip through
//! `malloc` (whose free of a 16 KiB block may coalesce and trim). A buffer taken on one
//! worker thread and given back on another simply moves lists.

use std::cell::RefCell;

/// The size every buffer starts at: a whole result batch or pipeline of typical queries in
/// one read. A frame the hooks need whole may grow a buffer past it (see `Half`); such a
/// buffer is freed rather than kept, so the memory of one 1 GB row does not stay behind.
pub const BUF_SIZE: usize = 16 * 1024;

/// Buffers kept per worker thread: enough to cover the clients one thread serves in one
/// round of wakeups without going back to `malloc`, few enough (1 MiB) not to matter.
const KEEP: usize = 64;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `BUF_SIZE` bytes, from this thread's free list when it has one. A new one
/// comes from `calloc`, so its pages cost nothing until they are written.
pub fn take() -> Vec<u8> {
    FREE.try_with(|free| free.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| vec![0; BUF_SIZE])
}

/// Gives `buf` back to this thread's free list, or frees it when the list is full or the
/// buffer grew past `BUF_SIZE`.
pub fn give(buf: Vec<u8>) {
    if buf.len() != BUF_SIZE {
        return;
    }
    let _ = FREE.try_with(|free| {
        let mut free = free.borrow_mut();
        if free.len() < KEEP {
            free.push(buf);
        }
    });
}

/// Buffers on this thread's free list (for tests).
#[cfg(test)]
pub fn free_here() -> usize {
    FREE.with(|free| free.borrow().len())
}
