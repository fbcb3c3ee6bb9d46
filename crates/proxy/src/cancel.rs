//! Each client gets its own random BackendKeyData from the proxy. A CancelRequest is matched
//! against it and forwarded only to the server connection that client holds at that moment,
//! so a client can never cancel another client's query, and a stale key does nothing.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use rand::Rng;
use subtle::ConstantTimeEq;

use crate::server::CancelTarget;

#[derive(Default)]
pub struct CancelRegistry {
    map: Mutex<HashMap<i32, Entry>>,
}

/// The server connection a client holds now, if any. Each client has its own, so pointing
/// it at the next connection (twice per transaction in transaction mode) takes no lock
/// that other clients use.
type Slot = Arc<Mutex<Option<Arc<CancelTarget>>>>;

struct Entry {
    key: [u8; 4],
    target: Slot,
}

impl CancelRegistry {
    /// A fresh (pid, key) for a client; unregistered when the guard drops.
    pub fn register(self: &Arc<Self>) -> CancelKey {
        let mut rng = rand::thread_rng();
        let key: [u8; 4] = rng.gen();
        let slot = Slot::default();
        let mut map = self.map.lock();
        let pid = loop {
            // Positive, like a real backend pid, and unique among live clients.
            let pid = rng.gen_range(1..i32::MAX);
            if !map.contains_key(&pid) {
                break pid;
            }
        };
        map.insert(
            pid,
            Entry {
                key,
                target: slot.clone(),
            },
        );
        CancelKey {
            registry: self.clone(),
            slot,
            pid,
            key,
        }
    }

    /// The server to cancel for a request, if the pid and key match a client holding one.
    pub fn lookup(&self, pid: i32, key: &[u8]) -> Option<Arc<CancelTarget>> {
        let slot = {
            let map = self.map.lock();
            let entry = map.get(&pid)?;
            if key.len() != 4 || !bool::from(entry.key.ct_eq(key)) {
                return None;
            }
            entry.target.clone()
        };
        let target = slot.lock().clone();
        target
    }
}

/// A client's cancel identity.
pub struct CancelKey {
    registry: Arc<CancelRegistry>,
    slot: Slot,
    pub pid: i32,
    pub key: [u8; 4],
}

impl CancelKey {
    /// Points cancels at the server connection the client now holds (or at none).
    pub fn attach(&self, target: Option<Arc<CancelTarget>>) {
        *self.slot.lock() = target;
    }
}

impl Drop for CancelKey {
    fn drop(&mut self) {
        self.registry.map.lock().remove(&self.pid);
    }
}
