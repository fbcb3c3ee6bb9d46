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

struct Entry {
    key: [u8; 4],
    target: Option<CancelTarget>,
}

impl CancelRegistry {
    /// A fresh (pid, key) for a client; unregistered when the guard drops.
    pub fn register(self: &Arc<Self>) -> CancelKey {
        let mut rng = rand::thread_rng();
        let key: [u8; 4] = rng.gen();
        let mut map = self.map.lock();
        let pid = loop {
            // Positive, like a real backend pid, and unique among live clients.
            let pid = rng.gen_range(1..i32::MAX);
            if !map.contains_key(&pid) {
                break pid;
            }
        };
        map.insert(pid, Entry { key, target: None });
        CancelKey {
            registry: self.clone(),
            pid,
            key,
        }
    }

    /// The server to cancel for a request, if the pid and key match a client holding one.
    pub fn lookup(&self, pid: i32, key: &[u8]) -> Option<CancelTarget> {
        let map = self.map.lock();
        let entry = map.get(&pid)?;
        if key.len() != 4 || !bool::from(entry.key.ct_eq(key)) {
            return None;
        }
        entry.target.clone()
    }

    fn set(&self, pid: i32, target: Option<CancelTarget>) {
        if let Some(e) = self.map.lock().get_mut(&pid) {
            e.target = target;
        }
    }
}

/// A client's cancel identity.
pub struct CancelKey {
    registry: Arc<CancelRegistry>,
    pub pid: i32,
    pub key: [u8; 4],
}

impl CancelKey {
    /// Points cancels at the server connection the client now holds (or at none).
    pub fn attach(&self, target: Option<CancelTarget>) {
        self.registry.set(self.pid, target);
    }
}

impl Drop for CancelKey {
    fn drop(&mut self) {
        self.registry.map.lock().remove(&self.pid);
    }
}
