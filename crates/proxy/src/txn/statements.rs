//! Named prepared statements across server connections.
//!
//! A client's statement names live in the client's own namespace. Each distinct statement
//! (query text plus parameter types: the Parse body after the name) gets one proxy-wide
//! server-side name, so identical statements from many clients share one server-side
//! prepared statement per connection. Each server connection remembers which server-side
//! names it holds, in LRU order, bounded by `max_prepared_statements`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

/// One distinct statement, shared by every client that prepared the same text and types.
#[derive(Debug)]
pub struct Statement {
    /// The name on every server connection, e.g. `dbw_17`.
    pub server_name: String,
    /// The Parse body after the statement name: query, NUL, parameter count and types.
    pub body: Bytes,
}

/// Proxy-wide interning of statement bodies. Entries are dropped once no client and no
/// server connection refers to them, so the map holds only live statements.
#[derive(Default)]
pub struct StatementCache {
    map: Mutex<HashMap<Bytes, std::sync::Weak<Statement>>>,
    next: AtomicU64,
}

impl StatementCache {
    pub fn intern(&self, body: &[u8]) -> Arc<Statement> {
        let mut map = self.map.lock();
        if let Some(s) = map.get(body).and_then(std::sync::Weak::upgrade) {
            return s;
        }
        // Sweep dead entries now and then so the map cannot grow without bound.
        if map.len() >= 1024 && map.len().is_power_of_two() {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let body = Bytes::copy_from_slice(body);
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let s = Arc::new(Statement {
            server_name: format!("dbw_{n}"),
            body: body.clone(),
        });
        map.insert(body, Arc::downgrade(&s));
        s
    }
}

/// The server-side statements one server connection holds, least recently used first.
/// A small vector beats a linked hash map at the sizes used (tens to a few hundred), and
/// the common case, the statement used last, is found at the back.
#[derive(Debug, Default)]
pub struct ServerStatements {
    lru: Vec<Arc<Statement>>,
}

impl ServerStatements {
    pub fn contains_and_touch(&mut self, s: &Arc<Statement>) -> bool {
        match self.lru.iter().rposition(|x| Arc::ptr_eq(x, s)) {
            Some(i) => {
                if i + 1 != self.lru.len() {
                    let hit = self.lru.remove(i);
                    self.lru.push(hit);
                }
                true
            }
            None => false,
        }
    }

    /// Records `s` as prepared; returns the statement evicted to stay within `max`, which
    /// the caller must Close on the server.
    pub fn insert(&mut self, s: Arc<Statement>, max: usize) -> Option<Arc<Statement>> {
        self.lru.push(s);
        if self.lru.len() > max.max(1) {
            Some(self.lru.remove(0))
        } else {
            None
        }
    }

    pub fn remove(&mut self, s: &Arc<Statement>) {
        self.lru.retain(|x| !Arc::ptr_eq(x, s));
    }

    pub fn clear(&mut self) {
        self.lru.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lru.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_bodies_share_a_server_name_and_dead_ones_go() {
        let cache = StatementCache::default();
        let a = cache.intern(b"select 1\0\0\0");
        let b = cache.intern(b"select 1\0\0\0");
        let c = cache.intern(b"select 2\0\0\0");
        assert!(Arc::ptr_eq(&a, &b));
        assert_ne!(a.server_name, c.server_name);
        drop((a, b));
        let a2 = cache.intern(b"select 1\0\0\0");
        assert_ne!(a2.server_name, c.server_name);
    }

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let cache = StatementCache::default();
        let s: Vec<_> = (0..3)
            .map(|i| cache.intern(format!("q{i}\0").as_bytes()))
            .collect();
        let mut lru = ServerStatements::default();
        assert!(lru.insert(s[0].clone(), 2).is_none());
        assert!(lru.insert(s[1].clone(), 2).is_none());
        assert!(lru.contains_and_touch(&s[0]));
        let evicted = lru.insert(s[2].clone(), 2).unwrap();
        assert!(Arc::ptr_eq(&evicted, &s[1]));
        assert!(!lru.contains_and_touch(&s[1]));
        assert_eq!(lru.len(), 2);
    }
}
