//! The caps every strategy call runs under. Each has a default and a config key (`[limits]`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory a call may grow to (bytes).
    pub memory_bytes: usize,
    /// CPU time a call may use (ms): its wasm code and the host work it asks for (storage,
    /// HMAC…). Password hashing (bounded by `max_hash_calls`) and sleeping are not counted.
    pub cpu_ms: u64,
    /// Wall-clock time a call may take (ms), everything included: waiting in the host (a WASI
    /// sleep, a poll) never outlives it, and a host call that returns past it stops the call.
    pub wall_ms: u64,
    /// wasm stack (bytes): deep recursion traps instead of crashing.
    pub stack_bytes: usize,
    /// Elements across a call's tables.
    pub table_elements: usize,
    /// Largest string a strategy may return (a kuid, public info).
    pub max_return_bytes: usize,
    /// Largest credentials document passed in (bytes).
    pub max_input_bytes: usize,
    /// Password hashes / checks (argon2) a single call may ask the host for.
    pub max_hash_calls: u32,
    /// Other host calls (storage, HMAC, random…) a single call may make.
    pub max_host_calls: u32,
    /// Storage: largest key and value (bytes), keys and bytes per strategy.
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    pub max_keys: u64,
    pub max_storage_bytes: u64,
    /// Storage writes (keys + values) one call may leave pending until its request commits.
    pub max_pending_bytes: usize,
    /// Random bytes one host call may ask for (`crypto.random-bytes`, `wasi:random`).
    pub max_random_bytes: usize,
    /// Log lines a call may emit (more are dropped and counted), and their length.
    pub max_log_lines: u32,
    pub max_log_line_bytes: usize,
    /// Outbound HTTP (a strategy whose operator listed origins it may reach): requests one
    /// call may make, how long connecting and the response may take (each request, within
    /// the call's `wall_ms`), and the largest response and request bodies (bytes). Waiting on
    /// the network is not charged to `cpu_ms`.
    pub max_http_requests: u32,
    pub http_timeout_ms: u64,
    pub max_http_response_bytes: usize,
    pub max_http_request_bytes: usize,
    /// Requests working with this strategy at once (each holds one permit, whatever its
    /// number of calls, until its work has ended). Logins and credentials actions beyond it
    /// wait up to `queue_ms` before taking a worker thread, then 503; a request that finds it
    /// full only once on a worker (creating or deleting a user) gets the 503 at once. One slow
    /// strategy cannot take every worker.
    pub max_concurrent_calls: u32,
    /// How long a request waits for a permit of the strategy before a 503 (ms).
    pub queue_ms: u64,
    /// Sandbox instances alive at once, across strategies (the pooling allocator's size).
    pub pool_instances: u32,
    /// Fresh instances kept ready per strategy (built after a response is sent, one call each);
    /// 0 builds every instance on the request path.
    pub warm_instances: u32,
    /// Linear memory kept mapped when an instance's slot is recycled (global only): the next
    /// call on the slot takes fewer page faults, at the cost of resident memory per slot.
    pub keep_resident_bytes: usize,
    /// How long compiling an uploaded component may take (ms, global only): past it the
    /// compiler process is killed and the upload refused.
    pub compile_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 16 << 20,
            cpu_ms: 100,
            wall_ms: 1000,
            stack_bytes: 512 << 10,
            table_elements: 100_000,
            max_return_bytes: 64 << 10,
            max_input_bytes: 64 << 10,
            max_hash_calls: 4,
            max_host_calls: 1_000,
            max_key_bytes: 512,
            max_value_bytes: 64 << 10,
            max_keys: 1_000_000,
            max_storage_bytes: 256 << 20,
            max_pending_bytes: 1 << 20,
            max_random_bytes: 64 << 10,
            max_log_lines: 20,
            max_log_line_bytes: 1024,
            max_http_requests: 8,
            http_timeout_ms: 5000,
            max_http_response_bytes: 1 << 20,
            max_http_request_bytes: 64 << 10,
            max_concurrent_calls: 16,
            queue_ms: 5000,
            pool_instances: 256,
            warm_instances: 2,
            keep_resident_bytes: 4 << 20,
            compile_ms: 30_000,
        }
    }
}

impl Limits {
    /// Start-up check: names the first key whose value cannot work.
    pub fn validate(&self) -> Result<(), String> {
        let positive: [(&str, u64); 14] = [
            ("limits.memory_bytes", self.memory_bytes as u64),
            ("limits.cpu_ms", self.cpu_ms),
            ("limits.wall_ms", self.wall_ms),
            ("limits.max_pending_bytes", self.max_pending_bytes as u64),
            ("limits.max_random_bytes", self.max_random_bytes as u64),
            ("limits.compile_ms", self.compile_ms),
            ("limits.stack_bytes", self.stack_bytes as u64),
            ("limits.max_return_bytes", self.max_return_bytes as u64),
            ("limits.max_input_bytes", self.max_input_bytes as u64),
            ("limits.max_key_bytes", self.max_key_bytes as u64),
            ("limits.max_value_bytes", self.max_value_bytes as u64),
            ("limits.max_host_calls", self.max_host_calls as u64),
            ("limits.max_concurrent_calls", self.max_concurrent_calls as u64),
            ("limits.pool_instances", self.pool_instances as u64),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(format!("{key} must be greater than 0"));
            }
        }
        for (key, ms) in [
            ("limits.cpu_ms", self.cpu_ms),
            ("limits.wall_ms", self.wall_ms),
            ("limits.queue_ms", self.queue_ms),
            ("limits.compile_ms", self.compile_ms),
            ("limits.http_timeout_ms", self.http_timeout_ms),
        ] {
            if ms > 3_600_000 {
                return Err(format!("{key} must be at most 3600000 (one hour)"));
            }
        }
        if self.memory_bytes > 4 << 30 {
            return Err("limits.memory_bytes must be at most 4 GiB".into());
        }
        if self.stack_bytes > 64 << 20 {
            return Err("limits.stack_bytes must be at most 64 MiB".into());
        }
        Ok(())
    }
}
