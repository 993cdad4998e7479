//! The caps a call's Store enforces by itself: why the host stops a call ([`LimitHit`], the
//! error carried in the trap), and the memory and table limiter summed over the call.

/// Why a call was stopped by the host (carried inside the trap error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitHit {
    HashCalls(u32),
    HostCalls(u32),
    StorageFailure(String),
    /// The database cannot be reached now (a shared one restarting): the request may retry.
    StorageUnavailable(String),
    /// The call ran past `limits.wall_ms`.
    Wall(u64),
    /// A storage key (or prefix) longer than `limits.max_key_bytes`.
    KeyTooLong {
        len: usize,
        max: usize,
    },
    /// More random bytes than `limits.max_random_bytes` in one host call.
    Random {
        len: u64,
        max: usize,
    },
    /// The call's memories together would pass `limits.memory_bytes`.
    Memory(usize),
    /// The call's tables together would pass `limits.table_elements`.
    Table(usize),
    /// The login read the record of an account that is locked for this many seconds.
    Locked(u64),
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitHit::HashCalls(n) => {
                write!(f, "more than {n} password hash calls in one call (limits.max_hash_calls)")
            }
            LimitHit::HostCalls(n) => write!(f, "more than {n} host calls in one call (limits.max_host_calls)"),
            LimitHit::StorageFailure(e) => write!(f, "storage failure: {e}"),
            LimitHit::StorageUnavailable(e) => write!(f, "storage unavailable: {e}"),
            LimitHit::Wall(ms) => write!(f, "took longer than {ms} ms of wall-clock time (limits.wall_ms)"),
            LimitHit::KeyTooLong { len, max } => {
                write!(f, "used a storage key of {len} bytes, more than {max} (limits.max_key_bytes)")
            }
            LimitHit::Random { len, max } => {
                write!(f, "asked for {len} random bytes, more than {max} (limits.max_random_bytes)")
            }
            LimitHit::Memory(cap) => write!(f, "exceeded its memory cap of {cap} bytes (limits.memory_bytes)"),
            LimitHit::Table(cap) => write!(f, "exceeded its table cap of {cap} elements (limits.table_elements)"),
            LimitHit::Locked(secs) => write!(f, "read an account locked for {secs} s"),
        }
    }
}
impl std::error::Error for LimitHit {}

/// Memory and tables of one call, summed over every instance in its Store: a component may
/// declare several memories, and the cap holds for the call as a whole.
pub struct CallLimiter {
    memory: Summed,
    tables: Summed,
}

/// One resource summed over a call's instances, against its cap.
struct Summed {
    cap: usize,
    used: usize,
    /// The last growth let through, undone if the engine could not perform it.
    last: usize,
    /// The most `used` ever was.
    peak: usize,
}

impl Summed {
    fn new(cap: usize) -> Self {
        Summed { cap, used: 0, last: 0, peak: 0 }
    }

    /// One of them grows from `current` to `desired`: allowed while the sum stays in the cap.
    fn grow(&mut self, current: usize, desired: usize) -> bool {
        let after = self.used.saturating_sub(current).saturating_add(desired);
        if after > self.cap {
            return false;
        }
        self.last = after - self.used.min(after);
        self.used = after;
        self.peak = self.peak.max(after);
        true
    }

    fn undo(&mut self) {
        self.used -= self.last.min(self.used);
    }
}

impl CallLimiter {
    pub fn new(memory_cap: usize, table_cap: usize) -> Self {
        CallLimiter { memory: Summed::new(memory_cap), tables: Summed::new(table_cap) }
    }

    /// The most linear memory the call's instances held at once, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.memory.peak
    }
}

impl wasmtime::ResourceLimiter for CallLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if !self.memory.grow(current, desired) {
            return Err(LimitHit::Memory(self.memory.cap).into());
        }
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory.undo();
        Err(error)
    }

    fn table_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if !self.tables.grow(current, desired) {
            return Err(LimitHit::Table(self.tables.cap).into());
        }
        Ok(true)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.tables.undo();
        Err(error)
    }

    fn instances(&self) -> usize {
        64
    }
    fn tables(&self) -> usize {
        64
    }
    fn memories(&self) -> usize {
        8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_are_summed_against_one_cap() {
        let mut sum = Summed::new(100);
        assert!(sum.grow(0, 60), "a first memory");
        assert!(!sum.grow(0, 50), "a second one would pass the cap together");
        assert!(sum.grow(0, 40));
        assert!(sum.grow(60, 50), "shrinking one's share is counted from its current size");
        assert_eq!(sum.used, 90);
        sum.undo();
        assert_eq!(sum.used, 90, "the last growth was a decrease: nothing to give back");
        assert!(sum.grow(40, 50));
        sum.undo();
        assert_eq!(sum.used, 90, "a growth the engine could not make is given back");
    }
}
