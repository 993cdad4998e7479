//! Host-side bindings of `wit/strategy.wit`, kept in their own module so the macro expands once.
//! Imports are trappable: a host function can stop a strategy that exceeds a cap.

wasmtime::component::bindgen!({
    world: "strategy",
    path: "../wit",
    imports: { default: trappable },
});

pub use sandgate::strategy::log::Level;
pub use sandgate::strategy::types::{LoginRequest, StrategyError};
