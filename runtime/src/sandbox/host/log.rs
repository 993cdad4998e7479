//! `sandgate:strategy/log`: a strategy's log lines, capped in number and length, written to
//! a [`LogSink`] with the strategy's name and the request id. Every field is escaped by the
//! server's log formatter (`core::escape`), so a strategy cannot forge a line.

use super::meter::Kind;
use super::meter::Meter;
use crate::sandbox::bindings::Level;
use crate::sandbox::bindings::sandgate::strategy::log;
use std::sync::Arc;

/// Where strategy log lines go.
pub trait LogSink: Send + Sync {
    fn write(&self, level: Level, strategy: &str, request_id: &str, message: &str);
}

/// The server's log (`tracing`, target `strategy`).
pub struct Tracing;

impl LogSink for Tracing {
    fn write(&self, level: Level, strategy: &str, request_id: &str, message: &str) {
        match level {
            Level::Trace => tracing::trace!(target: "strategy", strategy, request_id, "{message}"),
            Level::Debug => tracing::debug!(target: "strategy", strategy, request_id, "{message}"),
            Level::Info => tracing::info!(target: "strategy", strategy, request_id, "{message}"),
            Level::Warn => tracing::warn!(target: "strategy", strategy, request_id, "{message}"),
            Level::Error => tracing::error!(target: "strategy", strategy, request_id, "{message}"),
        }
    }
}

/// One call's log: who is writing, and how many lines so far.
pub struct Log {
    pub(crate) sink: Arc<dyn LogSink>,
    pub(crate) strategy: Arc<str>,
    pub(crate) request_id: Arc<str>,
    pub(crate) lines: u32,
    pub(crate) dropped: u32,
}

impl Log {
    pub fn new(sink: Arc<dyn LogSink>, strategy: Arc<str>) -> Self {
        Log { sink, strategy, request_id: Arc::from(""), lines: 0, dropped: 0 }
    }
}

pub struct LogView<'a> {
    pub meter: &'a mut Meter,
    pub log: &'a mut Log,
}

impl log::Host for LogView<'_> {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.meter.count(Kind::Log)?;
        let (max_lines, max_bytes) = (self.meter.limits.max_log_lines, self.meter.limits.max_log_line_bytes);
        let log = &mut *self.log;
        if log.lines >= max_lines {
            log.dropped += 1;
            return Ok(());
        }
        log.lines += 1;
        let mut message = message;
        if message.len() > max_bytes {
            let mut cut = max_bytes;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        log.sink.write(level, &log.strategy, &log.request_id, &message);
        Ok(())
    }
}
