//! Keeping instantiation and teardown off the request path, without ever reusing an instance.
//!
//! Each strategy keeps a few *fresh* instances ready (built, never called). A call takes one;
//! its Store is not dropped on the spot but handed to a task of its own, which runs once the
//! call's task yields (its response is on its way): it drops the Store and builds the
//! strategy's next fresh instances, holding the request's permit until it is done (so the
//! instances alive never outnumber what the permits allow). A call still gets a brand-new
//! instance that nothing survives: only *when* instances are built and torn down changes
//! (measured in docs/performance.md).

use super::host::HostState;
use super::strategy::{Permit, Ready, Strategy};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Builds a fresh Store + instance for a strategy (the same recipe on and off the request path).
pub(super) type Builder =
    Arc<dyn Fn(Arc<Strategy>) -> Pin<Box<dyn Future<Output = wasmtime::Result<Ready>> + Send>> + Send + Sync>;

pub(super) struct Aftercare {
    build: Builder,
}

impl Aftercare {
    pub(super) fn new(build: Builder) -> Self {
        Aftercare { build }
    }

    /// A call has ended: its Store goes, the strategy's ready instances are topped up.
    pub(super) fn after(&self, strategy: &Strategy, store: wasmtime::Store<HostState>, permit: Arc<Permit>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let strategy = strategy.me.get().and_then(|me| me.upgrade());
        let build = self.build.clone();
        runtime.spawn(async move {
            drop(store);
            // A strategy replaced or removed meanwhile is simply gone.
            if let Some(strategy) = strategy {
                refill(&build, &strategy).await;
            }
            drop(permit);
        });
    }
}

async fn refill(build: &Builder, strategy: &Arc<Strategy>) {
    let target = strategy.limits.warm_instances as usize;
    while strategy.warm.lock().unwrap_or_else(|p| p.into_inner()).len() < target {
        match build(strategy.clone()).await {
            Ok(ready) => strategy.warm.lock().unwrap_or_else(|p| p.into_inner()).push(ready),
            // The call path will instantiate inline and report the error properly.
            Err(_) => break,
        }
    }
}
