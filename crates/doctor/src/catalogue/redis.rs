use super::Check;

pub(super) const CHECKS: &[Check] = &[
    Check {
        id: "redis.latency",
        title: "PING latency distribution",
        why: "Redis is single-threaded: a slow command, a fork for persistence or a swapping host shows up as a long tail on trivial commands.",
        fix: "Look at SLOWLOG and LATENCY DOCTOR on the server, avoid O(N) commands on big keys, check the host for swap and transparent huge pages.",
        verify: "redis-cli --latency-history -i 5",
    },
    Check {
        id: "redis.maxmemory",
        title: "maxmemory unset, or noeviction on a cache",
        why: "Without maxmemory Redis grows until the kernel kills it; with maxmemory-policy noeviction a full cache rejects every write with OOM errors instead of evicting old keys.",
        fix: "CONFIG SET maxmemory 2gb; CONFIG SET maxmemory-policy allkeys-lru;  -- and persist them in redis.conf (CONFIG REWRITE)",
        verify: "CONFIG GET maxmemory*; INFO memory",
    },
    Check {
        id: "redis.evictions",
        title: "Evicted keys",
        why: "Evictions mean the data set does not fit maxmemory: keys the application expects are gone, and the hit ratio falls.",
        fix: "Raise maxmemory, set TTLs on keys, or shrink values; choose a policy (allkeys-lfu) that keeps hot keys.",
        verify: "INFO stats   # evicted_keys",
    },
    Check {
        id: "redis.hit_ratio",
        title: "Keyspace hit ratio",
        why: "A low hit ratio on a cache means most reads miss and fall through to the database — the mark of cache penetration (lookups for keys that never exist) or of TTLs shorter than the reuse interval.",
        fix: "Cache negative results (a short-TTL placeholder) or put a Bloom filter in front for keys that do not exist; lengthen TTLs; check key naming mismatches between writers and readers.",
        verify: "INFO stats   # keyspace_hits / (keyspace_hits + keyspace_misses); CONFIG RESETSTAT to measure afresh",
    },
    Check {
        id: "redis.slowlog",
        title: "Slow log entries and settings",
        why: "Entries in the slow log are commands that blocked every other client for their duration; a disabled slow log hides them.",
        fix: "Replace the slow commands (KEYS, big SMEMBERS/HGETALL, large range queries) with SCAN/HSCAN or smaller keys; keep slowlog-log-slower-than at 10000 µs or less.",
        verify: "SLOWLOG GET 10; CONFIG GET slowlog-*",
    },
    Check {
        id: "redis.big_keys",
        title: "Big keys by memory (bounded SCAN sample)",
        why: "A big key makes every command on it slow, blocks the server while it is deleted or expired, and unbalances a cluster.",
        fix: "Split the key (hash buckets, time-bucketed keys), delete with UNLINK instead of DEL, and use lazyfree-lazy-eviction/expire.",
        verify: "redis-cli --memkeys --memkeys-samples 100",
    },
    Check {
        id: "redis.clients",
        title: "Blocked and rejected clients",
        why: "Rejected connections mean maxclients was reached; many blocked clients (BLPOP etc.) hold connections from the pool.",
        fix: "Raise maxclients (and the file-descriptor limit), fix client pools that leak connections, add timeouts to blocking commands.",
        verify: "INFO clients; INFO stats   # rejected_connections; CONFIG GET maxclients",
    },
    Check {
        id: "redis.fragmentation",
        title: "Memory fragmentation ratio",
        why: "A ratio well above 1 means RSS is much larger than the data: the host runs out of memory before maxmemory is reached. Below 1 means Redis is swapping.",
        fix: "CONFIG SET activedefrag yes (jemalloc builds); restart the replica-promoted instance to compact; below 1: add RAM, disable swap for Redis.",
        verify: "INFO memory   # mem_fragmentation_ratio",
    },
    Check {
        id: "redis.persistence",
        title: "Persistence settings and the last save",
        why: "A failed background save makes Redis refuse writes (stop-writes-on-bgsave-error); no persistence on a store loses all data on restart; fork for saves stalls big instances.",
        fix: "For a store: appendonly yes, appendfsync everysec; fix the disk or memory problem behind a failed BGSAVE. For a pure cache: save \"\" and appendonly no are fine.",
        verify: "INFO persistence   # rdb_last_bgsave_status, aof_enabled, rdb_changes_since_last_save",
    },
];
