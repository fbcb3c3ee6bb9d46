//! Where a transaction's future lives while it runs: a box lent from a per-thread free
//! list, so that an idle client holds none and a busy one does not go to `malloc` for
//! each transaction (the same bargain as the relay's buffers, see `relay::buffers`).
//!
//! A box goes back on the list only once its future has finished; a session dropped in the
//! middle of a transaction (its task aborted) frees its box with it.

use std::cell::RefCell;
use std::future::Future;

use tokio_util::sync::ReusableBoxFuture;

use super::{Client, Step};
use crate::error::SessionError;

pub(super) type Output = (Box<Client>, Result<Step, SessionError>);
pub(super) type Slot = ReusableBoxFuture<'static, Output>;

/// Boxes kept per worker thread: enough for the transactions one thread runs at once
/// under load, few enough (a few kilobytes each) not to matter.
const KEEP: usize = 64;

thread_local! {
    static FREE: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

/// `fut` in a box from this thread's free list, or in a new one. Not `async`: the future
/// goes straight into the box instead of first into the caller's own state.
pub(super) fn start(fut: impl Future<Output = Output> + Send + 'static) -> Slot {
    match FREE.try_with(|free| free.borrow_mut().pop()).ok().flatten() {
        Some(mut slot) => {
            slot.set(fut); // the same future type every time: the box is reused as it is
            slot
        }
        None => ReusableBoxFuture::new(fut),
    }
}

/// Gives back the box of a future that has finished.
pub(super) fn give(slot: Slot) {
    let _ = FREE.try_with(|free| {
        let mut free = free.borrow_mut();
        if free.len() < KEEP {
            free.push(slot);
        }
    });
}
