//! What a strategy can reach: the host side of the WIT world, one file per interface.
//!
//! A call's [`HostState`] is made of parts, and each interface is linked on a projection of
//! it (`add_to_linker(.., |s| view)`), the way wasmtime's WASI host does: `storage` sees the
//! call's [`Meter`] and its [`Storage`] over a [`storage::KeyValue`] backend, `crypto` the
//! meter and a [`crypto::Hashing`] backend, `log` the meter and a [`log::LogSink`], `config`
//! the meter and the config text. Every function counts against the call's caps through the
//! shared meter; a strategy that exceeds one is stopped with a [`LimitHit`] trap.

pub mod clocks;
pub mod config;
pub mod crypto;
pub mod http;
pub mod io;
pub mod jws;
pub mod limiter;
pub mod log;
pub mod meter;
pub mod storage;
pub mod v0_1;

pub use limiter::{CallLimiter, LimitHit};
pub use meter::Meter;
pub use storage::{Overlay, ReadGuard, Storage};

use crate::sandbox::bindings::sandgate::strategy as wit;
use crate::sandbox::bindings::v0_1::sandgate::strategy as wit_0_1;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::{HasData, HasSelf, Linker};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

/// Everything one call owns. Dropped with the call's `Store`.
pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: CallLimiter,
    pub(crate) meter: Meter,
    pub(crate) storage: Storage,
    pub(crate) crypto: crypto::Crypto,
    pub(crate) log: log::Log,
    pub(crate) config: Arc<str>,
    pub(crate) http: wasmtime_wasi_http::WasiHttpCtx,
    pub(crate) outbound: http::Outbound,
    /// What the guest printed to stderr (4 KiB), to explain a crash.
    pub(crate) stderr: MemoryOutputPipe,
    /// Origin of the guest's monotonic clock.
    pub(crate) clock_origin: Instant,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        // Every WASI function goes through here: counted, and enforced at the next tick.
        self.meter.count_wasi();
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl wasmtime_wasi_http::WasiHttpView for HostState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        self.meter.count_wasi();
        self.outbound.deadline = self.meter.deadline;
        wasmtime_wasi_http::WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound }
    }
}

impl wit::types::Host for HostState {}

struct StorageData;
impl HasData for StorageData {
    type Data<'a> = storage::StorageView<'a>;
}
struct CryptoData;
impl HasData for CryptoData {
    type Data<'a> = crypto::CryptoView<'a>;
}
struct LogData;
impl HasData for LogData {
    type Data<'a> = log::LogView<'a>;
}
struct ConfigData;
impl HasData for ConfigData {
    type Data<'a> = config::ConfigView<'a>;
}

fn storage_view(s: &mut HostState) -> storage::StorageView<'_> {
    storage::StorageView { meter: &mut s.meter, storage: &mut s.storage }
}
fn crypto_view(s: &mut HostState) -> crypto::CryptoView<'_> {
    crypto::CryptoView { meter: &mut s.meter, crypto: &mut s.crypto }
}
fn log_view(s: &mut HostState) -> log::LogView<'_> {
    log::LogView { meter: &mut s.meter, log: &mut s.log }
}
fn config_view(s: &mut HostState) -> config::ConfigView<'_> {
    config::ConfigView { meter: &mut s.meter, config: &s.config }
}

/// Links WASI (with no capability: see `call::new_state`), our clocks over it, and the
/// interfaces of both contracts (0.2.0 and 0.1.0), each on its own view of the call.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    // Components built with plain `cargo build --target wasm32-wasip2` import WASI for std's
    // panic and print machinery.
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    io::add_to_linker(linker, |s| io::IoView { table: &mut s.table, meter: &mut s.meter })?;
    clocks::add_to_linker(linker, |s| clocks::ClockView {
        meter: &mut s.meter,
        table: &mut s.table,
        origin: s.clock_origin,
    })?;
    wit::types::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    wit::storage::add_to_linker::<HostState, StorageData>(linker, storage_view)?;
    wit::crypto::add_to_linker::<HostState, CryptoData>(linker, crypto_view)?;
    wit::log::add_to_linker::<HostState, LogData>(linker, log_view)?;
    wit::config::add_to_linker::<HostState, ConfigData>(linker, config_view)?;
    wit_0_1::types::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    wit_0_1::storage::add_to_linker::<HostState, StorageData>(linker, storage_view)?;
    wit_0_1::crypto::add_to_linker::<HostState, CryptoData>(linker, crypto_view)?;
    wit_0_1::log::add_to_linker::<HostState, LogData>(linker, log_view)?;
    wit_0_1::config::add_to_linker::<HostState, ConfigData>(linker, config_view)?;
    Ok(())
}
