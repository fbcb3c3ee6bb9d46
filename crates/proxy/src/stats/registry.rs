//! The live clients and server connections, for SHOW CLIENTS / SHOW SERVERS and the HTTP API.
//!
//! Entries are inserted at connect and removed by their guard's `Drop`; the hot path only
//! stores into an entry's atomics. The map is sharded so that a connection storm on two
//! cores does not serialise on one lock.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

const SHARDS: usize = 16;

pub struct Registry<T> {
    shards: [Mutex<HashMap<u64, Arc<T>>>; SHARDS],
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }
}

impl<T> Registry<T> {
    fn shard(&self, id: u64) -> &Mutex<HashMap<u64, Arc<T>>> {
        &self.shards[id as usize % SHARDS]
    }

    /// Adds `item` under `id` until the returned guard is dropped.
    pub fn insert(self: &Arc<Self>, id: u64, item: T) -> Registered<T> {
        let item = Arc::new(item);
        self.shard(id).lock().insert(id, item.clone());
        Registered {
            id,
            item,
            registry: self.clone(),
        }
    }

    /// Every entry, in no particular order.
    pub fn all(&self) -> Vec<Arc<T>> {
        let mut out = Vec::new();
        for shard in &self.shards {
            out.extend(shard.lock().values().cloned());
        }
        out
    }

    pub fn get(&self, id: u64) -> Option<Arc<T>> {
        self.shard(id).lock().get(&id).cloned()
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.lock().is_empty())
    }
}

/// Keeps an entry listed; dropping it removes the entry.
pub struct Registered<T> {
    id: u64,
    item: Arc<T>,
    registry: Arc<Registry<T>>,
}

impl<T> Registered<T> {
    /// The entry itself, for holders that must not keep it listed.
    pub fn shared(&self) -> Arc<T> {
        self.item.clone()
    }
}

impl<T> std::ops::Deref for Registered<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.item
    }
}

impl<T> Drop for Registered<T> {
    fn drop(&mut self) {
        self.registry.shard(self.id).lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_leave_with_their_guard() {
        let reg: Arc<Registry<&str>> = Arc::default();
        let a = reg.insert(1, "a");
        let b = reg.insert(17, "b"); // same shard as 1
        assert_eq!(reg.len(), 2);
        assert_eq!(reg.get(17).as_deref(), Some(&"b"));
        drop(a);
        assert_eq!(reg.len(), 1);
        assert!(reg.get(1).is_none());
        assert_eq!(*b, "b");
    }
}
