use tokio::sync::oneshot;

use crate::pool::{Grant, Pool};

/// One place in the FIFO queue. Dropping it (timeout, client gone) takes it out of the queue,
/// and hands on anything that was granted to it in the meantime.
pub(crate) struct Waiter<C: Send + 'static> {
    pool: Pool<C>,
    id: u64,
    rx: Option<oneshot::Receiver<Grant<C>>>,
}

impl<C: Send + 'static> Waiter<C> {
    pub(crate) fn new(pool: Pool<C>, id: u64, rx: oneshot::Receiver<Grant<C>>) -> Self {
        Waiter {
            pool,
            id,
            rx: Some(rx),
        }
    }

    /// `None` when the pool closed.
    pub(crate) async fn wait(mut self) -> Option<Grant<C>> {
        let rx = self.rx.as_mut().expect("waiter polled once");
        let got = rx.await.ok();
        self.rx = None;
        got
    }
}

impl<C: Send + 'static> Drop for Waiter<C> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        rx.close();
        match rx.try_recv() {
            // Granted just as we gave up: pass it on rather than waste a good connection.
            Ok(Grant::Ready(lease)) => lease.release(),
            Ok(Grant::Open(permit)) => drop(permit),
            Err(_) => self.pool.remove_waiter(self.id),
        }
    }
}
