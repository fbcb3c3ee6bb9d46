use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::{Grant, Pool, PoolError};

/// A stand-in connection that counts how many are alive, so leaks show up.
struct Conn {
    id: usize,
    alive: Arc<AtomicUsize>,
}

impl Conn {
    fn new(id: usize, alive: &Arc<AtomicUsize>) -> Conn {
        alive.fetch_add(1, Ordering::SeqCst);
        Conn {
            id,
            alive: alive.clone(),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

const LONG: Duration = Duration::from_secs(5);

async fn lease(pool: &Pool<Conn>, id: usize, alive: &Arc<AtomicUsize>) -> crate::Lease<Conn> {
    match pool.checkout(LONG).await.unwrap() {
        Grant::Ready(l) => l,
        Grant::Open(p) => p.fulfil(Conn::new(id, alive)),
    }
}

#[tokio::test]
async fn opens_up_to_max_then_reuses() {
    let alive = Arc::new(AtomicUsize::new(0));
    let pool = Pool::new(2);
    let a = lease(&pool, 1, &alive).await;
    let b = lease(&pool, 2, &alive).await;
    assert_eq!(pool.stats().total, 2);
    a.release();
    let c = lease(&pool, 3, &alive).await;
    assert_eq!(
        c.conn().id,
        1,
        "an idle connection is reused, not a new one opened"
    );
    drop(b);
    drop(c);
    assert_eq!(alive.load(Ordering::SeqCst), 0);
    assert_eq!(pool.stats().total, 0);
}

#[tokio::test]
async fn waiters_are_served_in_fifo_order() {
    let alive = Arc::new(AtomicUsize::new(0));
    let pool = Pool::new(1);
    let held = lease(&pool, 1, &alive).await;
    let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (p, order, alive) = (pool.clone(), order.clone(), alive.clone());
        tasks.push(tokio::spawn(async move {
            let l = lease(&p, 10 + i, &alive).await;
            order.lock().push(i);
            tokio::task::yield_now().await;
            l.release();
        }));
        // Let each task enqueue before the next one, so arrival order is defined.
        while pool.stats().waiting < i as u32 + 1 {
            tokio::task::yield_now().await;
        }
    }
    held.release();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock(), vec![0, 1, 2, 3, 4]);
    assert_eq!(pool.stats().total, 1);
}

#[tokio::test]
async fn a_waiter_that_times_out_leaves_the_queue() {
    let alive = Arc::new(AtomicUsize::new(0));
    let pool = Pool::new(1);
    let held = lease(&pool, 1, &alive).await;
    let err = pool
        .checkout(Duration::from_millis(20))
        .await
        .err()
        .expect("must time out");
    assert!(matches!(err, PoolError::Timeout(_, 1)));
    assert_eq!(pool.stats().waiting, 0);
    held.release();
    assert_eq!(pool.stats().idle, 1);
}

#[tokio::test]
async fn a_failed_connect_passes_its_slot_to_the_next_waiter() {
    let alive = Arc::new(AtomicUsize::new(0));
    let pool: Pool<Conn> = Pool::new(1);
    let Grant::Open(permit) = pool.checkout(LONG).await.unwrap() else {
        panic!("empty pool must grant a permit");
    };
    let p2 = pool.clone();
    let waiter =
        tokio::spawn(async move { p2.checkout(LONG).await.map(|g| matches!(g, Grant::Open(_))) });
    while pool.stats().waiting == 0 {
        tokio::task::yield_now().await;
    }
    drop(permit); // the connect failed
    assert!(
        waiter.await.unwrap().unwrap(),
        "the waiter gets the right to open"
    );
    assert_eq!(pool.stats().total, 0, "the waiter dropped its permit too");
    let _ = alive;
}

#[tokio::test]
async fn a_broken_connection_is_closed_and_its_slot_reused() {
    let alive = Arc::new(AtomicUsize::new(0));
    let pool = Pool::new(1);
    let l = lease(&pool, 1, &alive).await;
    drop(l); // broken: never released
    assert_eq!(alive.load(Ordering::SeqCst), 0);
    let l = lease(&pool, 2, &alive).await;
    assert_eq!(l.conn().id, 2);
}

#[tokio::test]
async fn shrinking_closes_connections_as_they_return_and_growing_serves_waiters() {
    let alive = Arc::new(AtomicUsize::new(0));
    let pool = Pool::new(2);
    let a = lease(&pool, 1, &alive).await;
    let b = lease(&pool, 2, &alive).await;
    pool.set_max(1);
    a.release();
    assert_eq!(alive.load(Ordering::SeqCst), 1, "over the new size: closed");
    b.release();
    assert_eq!(pool.stats().idle, 1);

    let held = lease(&pool, 3, &alive).await;
    let p2 = pool.clone();
    let waiter = tokio::spawn(async move { p2.checkout(LONG).await.is_ok() });
    while pool.stats().waiting == 0 {
        tokio::task::yield_now().await;
    }
    pool.set_max(2);
    assert!(waiter.await.unwrap());
    drop(held);
}

#[tokio::test]
async fn expiry_keeps_min_idle_and_closing_fails_waiters() {
    let alive = Arc::new(AtomicUsize::new(0));
    let pool = Pool::new(3);
    let ls = [
        lease(&pool, 1, &alive).await,
        lease(&pool, 2, &alive).await,
        lease(&pool, 3, &alive).await,
    ];
    for l in ls {
        l.release();
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let expired = pool.take_expired(Duration::from_millis(1), Duration::ZERO, 1);
    assert_eq!(expired.len(), 2);
    drop(expired);
    assert_eq!(pool.stats().total, 1);
    assert_eq!(pool.permits_for_min_idle(2).len(), 1);

    let held = lease(&pool, 9, &alive).await;
    let _permit_holder = held;
    let closed = pool.close();
    drop(closed);
    assert!(matches!(
        pool.checkout(LONG).await.err(),
        Some(PoolError::Closed)
    ));
}

#[tokio::test]
async fn idle_connections_taken_for_a_check_come_back_checked_and_still_idle() {
    let alive = Arc::new(AtomicUsize::new(0));
    let pool = Pool::new(3);
    let ls = [lease(&pool, 1, &alive).await, lease(&pool, 2, &alive).await];
    for l in ls {
        l.release();
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(pool.take_idle_for_check(Duration::from_secs(60)).is_empty());
    let mut due = pool.take_idle_for_check(Duration::from_millis(1));
    assert_eq!(due.len(), 2);
    assert_eq!((pool.stats().idle, pool.stats().total), (0, 2));

    // One passes, one is broken: the good one is back and not due again; the slot of the
    // broken one is free for a replacement, and only that one.
    let mut good = due.pop().unwrap();
    drop(due); // broken: closed
    assert_eq!(alive.load(Ordering::SeqCst), 1);
    good.mark_checked();
    good.release();
    assert_eq!((pool.stats().idle, pool.stats().total), (1, 1));
    let not_due = pool.take_idle_for_check(Duration::from_millis(1));
    assert!(not_due.is_empty());
    let permits = pool.reserve(5);
    assert_eq!(permits.len(), 2, "reserve stops at the pool size");
    assert_eq!(pool.stats().total, 3);
    drop(permits);
    assert_eq!(pool.stats().total, 1);

    // A check is not use: the connection has been idle since its client let it go.
    let idle_too_long = pool.take_expired(Duration::from_millis(5), Duration::ZERO, 0);
    assert_eq!(idle_too_long.len(), 1, "the check reset the idle time");
    drop(idle_too_long);
    assert_eq!(pool.stats().total, 0);
}

#[tokio::test]
async fn lifetime_expiry_is_jittered_but_bounded() {
    let alive = Arc::new(AtomicUsize::new(0));
    let pool = Pool::new(10);
    let mut ls = Vec::new();
    for i in 0..10 {
        ls.push(lease(&pool, i, &alive).await);
    }
    for l in ls {
        l.release();
    }
    // Nobody is past 90% of an hour, and everybody is past 110% of a few milliseconds.
    let hour = Duration::from_secs(3600);
    assert!(pool.take_expired(Duration::ZERO, hour, 0).is_empty());
    tokio::time::sleep(Duration::from_millis(12)).await;
    let expired = pool.take_expired(Duration::ZERO, Duration::from_millis(10), 0);
    assert_eq!(expired.len(), 10);
    drop(expired);
    assert_eq!(alive.load(Ordering::SeqCst), 0);
    assert_eq!(pool.stats().total, 0);
}

#[tokio::test]
async fn a_connection_handed_straight_to_a_waiter_counts_as_just_used() {
    let alive = Arc::new(AtomicUsize::new(0));
    let pool = Pool::new(1);
    let held = lease(&pool, 1, &alive).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let p2 = pool.clone();
    let waiter = tokio::spawn(async move {
        match p2.checkout(LONG).await.unwrap() {
            Grant::Ready(l) => l.unchecked_for(std::time::Instant::now()),
            Grant::Open(_) => panic!("the pool is full: the waiter gets the released one"),
        }
    });
    while pool.stats().waiting == 0 {
        tokio::task::yield_now().await;
    }
    held.release();
    let unused = waiter.await.unwrap();
    assert!(unused < Duration::from_millis(20), "{unused:?}");
}
