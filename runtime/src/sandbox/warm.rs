//! Keeping instantiation and teardown off the request path, without ever reusing an instance.
//!
//! Each strategy keeps a few *fresh* instances ready (created by a background thread, never
//! called), and each call's Store is dropped by another background thread once the answer is
//! known. A call still gets a brand-new instance and nothing of it survives the call: the
//! only change is *when* the instance is built and torn down (measured in docs/performance.md).

use super::{HostState, Strategy, bindings};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Weak};

/// A fresh instance and its Store, ready for exactly one call.
pub(super) type Ready = (wasmtime::Store<HostState>, bindings::Strategy);

/// Builds a fresh Store + instance for a strategy (the same recipe on and off the request path).
pub(super) type Builder = Arc<dyn Fn(&Strategy) -> wasmtime::Result<Ready> + Send + Sync>;

pub(super) struct Background {
    refill: SyncSender<Weak<Strategy>>,
    reap: SyncSender<wasmtime::Store<HostState>>,
}

/// Stores waiting to be dropped; past this, the request thread drops its own. Each waiting
/// Store holds a pooling-allocator slot, so this stays far below `limits.pool_instances`.
const REAP_QUEUE: usize = 16;

impl Background {
    pub(super) fn start(build: Builder) -> Self {
        let (refill, refill_rx) = sync_channel::<Weak<Strategy>>(1024);
        let (reap, reap_rx) = sync_channel::<wasmtime::Store<HostState>>(REAP_QUEUE);
        std::thread::Builder::new()
            .name("sandgate-warm".into())
            .spawn(move || fill(refill_rx, build))
            .expect("spawn warm thread");
        std::thread::Builder::new()
            .name("sandgate-reap".into())
            .spawn(move || {
                for store in reap_rx {
                    drop(store);
                }
            })
            .expect("spawn reap thread");
        Background { refill, reap }
    }

    /// Asks for the strategy's ready instances to be topped up.
    pub(super) fn refill(&self, strategy: &Strategy) {
        if let Some(me) = strategy.me.get() {
            let _ = self.refill.try_send(me.clone());
        }
    }

    /// Drops a finished call's Store off the request path.
    pub(super) fn reap(&self, store: wasmtime::Store<HostState>) {
        if let Err(TrySendError::Full(store) | TrySendError::Disconnected(store)) = self.reap.try_send(store) {
            drop(store);
        }
    }
}

fn fill(requests: Receiver<Weak<Strategy>>, build: Builder) {
    for weak in requests {
        // A strategy replaced or removed meanwhile is simply gone.
        let Some(strategy) = weak.upgrade() else { continue };
        let target = strategy.limits.warm_instances as usize;
        while strategy.warm.lock().unwrap_or_else(|p| p.into_inner()).len() < target {
            match build(&strategy) {
                Ok(ready) => strategy.warm.lock().unwrap_or_else(|p| p.into_inner()).push(ready),
                // The call path will instantiate inline and report the error properly.
                Err(_) => break,
            }
        }
    }
}
