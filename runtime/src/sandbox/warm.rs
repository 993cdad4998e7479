//! Keeping instantiation and teardown off the request path, without ever reusing an instance.
//!
//! Each strategy keeps a few *fresh* instances ready (built, never called). A call takes one;
//! its Store is not dropped on the spot but set aside, and once the response has been handed
//! back (see `api::dispatch`), the same worker thread drops it and builds the strategy's next
//! fresh instance: [`Aftercare::run`]. No other thread is woken, and a call still gets a
//! brand-new instance that nothing survives: only *when* instances are built and torn down
//! changes (measured in docs/performance.md).

use super::host::HostState;
use super::strategy::{Ready, Strategy};
use std::cell::RefCell;
use std::sync::{Arc, Weak};

/// Builds a fresh Store + instance for a strategy (the same recipe on and off the request path).
pub(super) type Builder = Arc<dyn Fn(&Strategy) -> wasmtime::Result<Ready> + Send + Sync>;

/// Stores a thread may hold before its next `run`; beyond, they are dropped at once (a thread
/// that never runs the aftercare must not pile up pool slots).
const MAX_DEFERRED: usize = 4;

#[derive(Default)]
struct Deferred {
    stores: Vec<wasmtime::Store<HostState>>,
    refill: Vec<Weak<Strategy>>,
}

thread_local! {
    static DEFERRED: RefCell<Deferred> = RefCell::new(Deferred::default());
}

pub(super) struct Aftercare {
    build: Builder,
}

impl Aftercare {
    pub(super) fn new(build: Builder) -> Self {
        Aftercare { build }
    }

    /// Notes that the strategy's ready instances need topping up.
    pub(super) fn refill(&self, strategy: &Strategy) {
        if let Some(me) = strategy.me.get() {
            DEFERRED.with_borrow_mut(|d| {
                if !d.refill.iter().any(|w| w.ptr_eq(me)) {
                    d.refill.push(me.clone());
                }
            });
        }
    }

    /// Sets a finished call's Store aside, to be dropped after the response.
    pub(super) fn reap(&self, store: wasmtime::Store<HostState>) {
        let overflow = DEFERRED.with_borrow_mut(|d| {
            d.stores.push(store);
            (d.stores.len() > MAX_DEFERRED).then(|| d.stores.remove(0))
        });
        drop(overflow);
    }

    /// The deferred work of this thread: drop the Stores, build the missing fresh instances.
    pub(super) fn run(&self) {
        let Deferred { stores, refill } = DEFERRED.with_borrow_mut(std::mem::take);
        drop(stores);
        for weak in refill {
            // A strategy replaced or removed meanwhile is simply gone.
            let Some(strategy) = weak.upgrade() else { continue };
            let target = strategy.limits.warm_instances as usize;
            while strategy.warm.lock().unwrap_or_else(|p| p.into_inner()).len() < target {
                match (self.build)(&strategy) {
                    Ok(ready) => strategy.warm.lock().unwrap_or_else(|p| p.into_inner()).push(ready),
                    // The call path will instantiate inline and report the error properly.
                    Err(_) => break,
                }
            }
        }
    }
}
