//! `wasi:io`'s blocking functions, metered: the time a guest spends blocked in them (waiting
//! on the network, on a stream, on a clock) is parked time, not charged to its CPU budget.
//! Each replaces wasmtime-wasi's own (`allow_shadowing`) and calls it, inside a [`Waits`]
//! entry; the wall-clock cap still bounds the wait (the clocks and the HTTP requests end at
//! the call's deadline, and the epoch stops a guest that returns past it).
//!
//! And `wasi:io/error.to-debug-string` says what failed (the error's messages, `{:#}`) where
//! wasmtime-wasi answers `{:?}`: with a backtrace captured, that is the host's stack (its
//! paths, its internals) for the guest to read, and formatting it cost a call 135 ms of CPU.

use super::meter::Meter;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi_io::bindings::wasi::io::poll::{Host as _, HostPollable as _};
use wasmtime_wasi_io::bindings::wasi::io::streams::{
    Host as _, HostInputStream as _, HostOutputStream as _, StreamError as WitStreamError,
};
use wasmtime_wasi_io::poll::DynPollable;
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream, StreamResult};

/// The version wasmtime-wasi links (components importing an earlier 0.2.x resolve to it).
const POLL: &str = "wasi:io/poll@0.2.12";
const STREAMS: &str = "wasi:io/streams@0.2.12";
const ERROR: &str = "wasi:io/error@0.2.12";

/// What these functions see of a call: its resource table and its meter (each call is
/// counted like every WASI call; only its wait is parked).
pub struct IoView<'a> {
    pub table: &'a mut ResourceTable,
    pub meter: &'a mut Meter,
}

type Get<T> = fn(&mut T) -> IoView<'_>;

/// A stream function's outcome as the guest receives it.
fn lower<R>(table: &mut ResourceTable, r: StreamResult<R>) -> wasmtime::Result<(Result<R, WitStreamError>,)> {
    match r {
        Ok(v) => Ok((Ok(v),)),
        Err(e) => Ok((Err(table.convert_stream_error(e)?),)),
    }
}

/// Replaces the blocking `wasi:io` functions (call after `wasmtime_wasi::p2::add_to_linker_async`).
pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, view: Get<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut poll = linker.instance(POLL)?;
    poll.func_wrap_async("poll", move |mut cx: StoreContextMut<'_, T>, (list,): (Vec<Resource<DynPollable>>,)| {
        Box::new(async move {
            let io = view(cx.data_mut());
            io.meter.count_wasi();
            let _parked = io.meter.waits.enter();
            Ok((io.table.poll(list).await?,))
        })
    })?;
    poll.func_wrap_async(
        "[method]pollable.block",
        move |mut cx: StoreContextMut<'_, T>, (p,): (Resource<DynPollable>,)| {
            Box::new(async move {
                let io = view(cx.data_mut());
                io.meter.count_wasi();
                let _parked = io.meter.waits.enter();
                io.table.block(p).await
            })
        },
    )?;
    let mut streams = linker.instance(STREAMS)?;
    // A blocking stream function: the wasmtime-wasi one, parked while it waits.
    macro_rules! parked {
        ($name:literal, $method:ident, ($($arg:ident: $ty:ty),*)) => {
            streams.func_wrap_async($name, move |mut cx: StoreContextMut<'_, T>, ($($arg,)*): ($($ty,)*)| {
                Box::new(async move {
                    let io = view(cx.data_mut());
                    io.meter.count_wasi();
                    let r = {
                        let _parked = io.meter.waits.enter();
                        io.table.$method($($arg),*).await
                    };
                    lower(io.table, r)
                })
            })?;
        };
    }
    parked!("[method]input-stream.blocking-read", blocking_read, (s: Resource<DynInputStream>, len: u64));
    parked!("[method]input-stream.blocking-skip", blocking_skip, (s: Resource<DynInputStream>, len: u64));
    parked!(
        "[method]output-stream.blocking-write-and-flush",
        blocking_write_and_flush,
        (s: Resource<DynOutputStream>, bytes: Vec<u8>)
    );
    parked!(
        "[method]output-stream.blocking-write-zeroes-and-flush",
        blocking_write_zeroes_and_flush,
        (s: Resource<DynOutputStream>, len: u64)
    );
    parked!("[method]output-stream.blocking-flush", blocking_flush, (s: Resource<DynOutputStream>));
    parked!(
        "[method]output-stream.blocking-splice",
        blocking_splice,
        (dst: Resource<DynOutputStream>, src: Resource<DynInputStream>, len: u64)
    );
    let mut error = linker.instance(ERROR)?;
    error.func_wrap(
        "[method]error.to-debug-string",
        move |mut cx: StoreContextMut<'_, T>, (e,): (Resource<wasmtime::Error>,)| {
            let io = view(cx.data_mut());
            io.meter.count_wasi();
            Ok((format!("{:#}", io.table.get(&e)?),))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
