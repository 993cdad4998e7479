//! `sandgate:strategy/config`: the JSON object the operator gave the strategy at upload.

use super::meter::Kind;
use super::meter::Meter;
use crate::sandbox::bindings::sandgate::strategy::config;
use std::sync::Arc;

pub struct ConfigView<'a> {
    pub meter: &'a mut Meter,
    pub config: &'a Arc<str>,
}

impl config::Host for ConfigView<'_> {
    fn get(&mut self) -> wasmtime::Result<String> {
        self.meter.count(Kind::Config)?;
        Ok(self.config.to_string())
    }
}
