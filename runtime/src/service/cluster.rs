//! Several nodes on one database: what this node keeps in memory (revocations, the user and
//! storage caches, the registered strategies, the soft lock's counters) follows what the
//! others commit.
//!
//! - Notices (see `store::notice`) arrive on the listener's thread and are applied there:
//!   dropping a cache entry, mirroring a revocation, merging a counter, all in memory.
//! - Strategies are compiled on a thread of their own (a compile takes a while, and a
//!   revocation must not wait behind it), as is every full re-read.
//! - Everything is re-read after the listener (re)connects, since notices sent while it was
//!   away are lost, and every `store.resync_interval`, so a notice missed for any other
//!   reason costs at most that long.
//! - Login failures are counted in the database, off the request path, by a thread of their
//!   own: a login only queues them.

use super::throttle::Throttle;
use crate::core::time::now_ms;
use crate::rights::live::Live;
use crate::sandbox::{Grants, Sandbox};
use crate::store::cluster::{FailureCount, Heard, Notice, Shared, Tally};
use crate::store::front::Db;
use crate::store::{Change, StoredStrategy};
use crate::tokens::Tokens;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Tallies written to the database in one transaction at most.
const MAX_TALLIES: usize = 256;

/// What following the other nodes needs of the running server (the app).
pub trait Node: Send + Sync + 'static {
    fn store(&self) -> &Db;
    fn tokens(&self) -> &Tokens;
    fn throttle(&self) -> &Throttle;
    fn rights(&self) -> &Live;
    fn sandbox(&self) -> &Sandbox;
    /// `store.resync_interval`.
    fn resync_ms(&self) -> u64;
}

/// Work for the re-reading thread.
enum Reread {
    /// One strategy was registered, replaced or removed elsewhere.
    Strategy(String),
    /// A role or a profile changed elsewhere.
    Rights,
    /// Everything.
    All,
}

/// Starts following the other nodes on `shared`. The threads end with the app.
pub fn join<N: Node>(app: &Arc<N>, shared: Arc<dyn Shared>) -> std::io::Result<()> {
    count_failures_in(&**app, shared.clone())?;
    let (reread, work) = channel();
    let weak = Arc::downgrade(app);
    let s = shared.clone();
    std::thread::Builder::new().name("sandgate-resync".into()).spawn(move || reread_loop(&weak, &*s, work))?;
    let weak = Arc::downgrade(app);
    let me = shared.node().to_string();
    let resync_every = Duration::from_millis(app.resync_ms());
    let mut last_full = Instant::now();
    shared.listen(Box::new(move |heard| {
        let Some(app) = weak.upgrade() else { return false };
        let due = last_full.elapsed() >= resync_every;
        let mut full = || {
            last_full = Instant::now();
            reread.send(Reread::All).is_ok()
        };
        match heard {
            Heard::Connected => full(),
            Heard::Idle if due => full(),
            Heard::Idle => true,
            // Our own notices: what they say is already done here. Counters excepted: the
            // database's count includes the other nodes' failures.
            Heard::Notice(envelope) if envelope.from == me => match envelope.notice {
                notice @ (Notice::Failures { .. } | Notice::Cleared { .. }) => hear(&*app, notice, &reread),
                _ => true,
            },
            Heard::Notice(envelope) => hear(&*app, envelope.notice, &reread),
        }
    }));
    Ok(())
}

/// Applies one notice from another node.
fn hear(app: &impl Node, notice: Notice, reread: &Sender<Reread>) -> bool {
    match notice {
        Notice::User { kuid } => app.store().forget_user(&kuid),
        Notice::Kv { strategy, key } => app.store().forget_kv(&strategy, &key),
        Notice::RevokeToken { .. } | Notice::RevokeUser { .. } => {
            app.tokens().apply(&notice.revocation().into_iter().collect::<Vec<_>>())
        }
        Notice::Strategy { name } => return reread.send(Reread::Strategy(name)).is_ok(),
        Notice::Rights => return reread.send(Reread::Rights).is_ok(),
        Notice::Failures { id, count, locked_until_ms } => {
            if let Some(id) = hex::decode(&id).ok().and_then(|v| <[u8; 16]>::try_from(v).ok()) {
                app.throttle().merge(&FailureCount { id, count, locked_until_ms }, now_ms());
            }
        }
        Notice::Cleared { id } => {
            if let Some(id) = hex::decode(&id).ok().and_then(|v| <[u8; 16]>::try_from(v).ok()) {
                app.throttle().clear(&id);
            }
        }
        Notice::Flush => return reread.send(Reread::All).is_ok(),
    }
    true
}

fn reread_loop<N: Node>(app: &Weak<N>, shared: &dyn Shared, work: Receiver<Reread>) {
    while let Ok(first) = work.recv() {
        let Some(app) = app.upgrade() else { return };
        // Work queued meanwhile is folded in: a full re-read covers every strategy.
        let mut names = Vec::new();
        let (mut all, mut rights) = (false, false);
        for job in std::iter::once(first).chain(work.try_iter()) {
            match job {
                Reread::All => all = true,
                Reread::Strategy(name) => names.push(name),
                Reread::Rights => rights = true,
            }
        }
        let outcome = if all {
            reread_all(&*app, shared)
        } else {
            let rights = if rights { app.rights().reload_blocking(&**app.store().blocking()) } else { Ok(()) };
            rights.and(reread_strategies(&*app, &names))
        };
        if let Err(e) = outcome {
            tracing::warn!("could not catch up with the other nodes (will retry): {e}");
        }
    }
}

/// Re-reads everything a node keeps in memory.
fn reread_all(app: &impl Node, shared: &dyn Shared) -> crate::store::Result<()> {
    let store = app.store().blocking();
    let now = now_ms();
    let revoked = store.revocations(now)?;
    // Only once the database answered: a node that cannot reach it keeps serving what it
    // has (token checks from memory) rather than emptying its caches into 503s. What is
    // cached after this point was read after it, so nothing stale survives.
    app.store().forget_all();
    let mut changes: Vec<Change> = revoked
        .tokens
        .into_iter()
        .map(|(jti, void_from_ms, expires_ms)| Change::RevokeToken { jti, void_from_ms, expires_ms, refresh: false })
        .collect();
    for (kuid, cutoff_ms, keys_cutoff) in revoked.users {
        changes.push(Change::RevokeUser { kuid: kuid.clone(), cutoff_ms, api_keys: false });
        if let Some(keys_cutoff) = keys_cutoff {
            changes.push(Change::RevokeUser { kuid, cutoff_ms: keys_cutoff, api_keys: true });
        }
    }
    app.tokens().apply(&changes);
    app.rights().reload_blocking(&**store)?;
    for counted in shared.failures(now, app.throttle().lockout_ms())? {
        app.throttle().merge(&counted, now);
    }
    // Names and hashes first: a component is read only if this node serves another one.
    let versions = store.strategy_versions()?;
    let mut names: Vec<String> = versions.iter().map(|v| v.0.clone()).collect();
    names.extend(app.sandbox().names());
    names.sort();
    names.dedup();
    let mut changed = false;
    for name in names {
        let version = versions.iter().find(|v| v.0 == name);
        let served = app.sandbox().get(&name);
        let same = match (version, &served) {
            (Some((_, hash, at)), Some(s)) => s.hash == *hash && s.registered_at_ms == *at,
            (None, Some(s)) => name == "local" && s.hash == super::bundled::hash(),
            (None, None) => true,
            (Some(_), None) => false,
        };
        if !same {
            let row = if version.is_some() { store.strategy(&name)? } else { None };
            changed |= follow_strategy(app, &name, row);
        }
    }
    if changed {
        app.sandbox().clean_cache();
    }
    Ok(())
}

fn reread_strategies(app: &impl Node, names: &[String]) -> crate::store::Result<()> {
    let store = app.store().blocking();
    let mut seen = Vec::new();
    let mut changed = false;
    for name in names {
        if !seen.contains(name) {
            seen.push(name.clone());
            changed |= follow_strategy(app, name, store.strategy(name)?);
        }
    }
    if changed {
        app.sandbox().clean_cache();
    }
    Ok(())
}

/// Makes this node serve what the store holds for `name`: the same component and settings
/// (nothing done if so), another one (compiled and installed), or none (removed; for `local`,
/// the bundled one back). Whether it changed what this node serves.
fn follow_strategy(app: &impl Node, name: &str, stored: Option<StoredStrategy>) -> bool {
    let installed = app.sandbox().get(name);
    match stored {
        Some(s) => {
            if installed.as_ref().is_some_and(|i| i.hash == s.hash && i.registered_at_ms == s.registered_at_ms) {
                return false;
            }
            let prepared = Grants::parse(&s.outbound, &s.provision).and_then(|grants| {
                app.sandbox().prepare(&s.name, &s.wasm, &s.config, &s.limits, &grants, s.fields.clone())
            });
            match prepared {
                Ok(mut strategy) => {
                    strategy.registered_at_ms = s.registered_at_ms;
                    app.sandbox().install(strategy);
                    tracing::info!(strategy = %name, hash = %s.hash, "strategy registered on another node: now served here");
                    true
                }
                Err(e) => {
                    tracing::error!(strategy = %name, "registered on another node, not loaded here: {e}");
                    false
                }
            }
        }
        None if name == "local" => {
            if installed.is_some_and(|i| i.hash == super::bundled::hash()) {
                return false;
            }
            match super::bundled::install(app.sandbox()) {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!("could not bring the bundled local strategy back: {e:#}");
                    false
                }
            }
        }
        None => {
            let removed = app.sandbox().remove(name).is_some();
            if removed {
                tracing::info!(strategy = %name, "strategy unregistered on another node: no longer served here");
            }
            removed
        }
    }
}

/// Failures and clearings go to the database from a thread of their own, batched.
fn count_failures_in(app: &impl Node, shared: Arc<dyn Shared>) -> std::io::Result<()> {
    let (sink, tallies) = channel::<Tally>();
    std::thread::Builder::new().name("sandgate-tally".into()).spawn(move || {
        while let Ok(first) = tallies.recv() {
            let mut batch = vec![first];
            batch.extend(tallies.try_iter().take(MAX_TALLIES - 1));
            if let Err(e) = shared.tally(&batch, now_ms()) {
                tracing::warn!("login failures not shared with the other nodes: {e}");
            }
        }
    })?;
    app.throttle().share_with(Box::new(move |tally| {
        let _ = sink.send(tally);
    }));
    Ok(())
}
