//! Host-side bindings of `wit/strategy.wit`, kept in their own module so the macro expands once.
//! Imports are trappable: a host function can stop a strategy that exceeds a cap. Calls are
//! async (a strategy waiting on the host holds no thread), and so are the imports that wait:
//! storage reads (the store's reader pool) and password hashing (the argon2 pool).

wasmtime::component::bindgen!({
    world: "strategy",
    path: "../wit",
    imports: {
        "sandgate:strategy/storage": async | trappable,
        "sandgate:strategy/crypto.hash-password": async | trappable,
        "sandgate:strategy/crypto.verify-password": async | trappable,
        default: trappable,
    },
    exports: { default: async },
});

pub use sandgate::strategy::log::Level;
pub use sandgate::strategy::types::{LoginRequest, StrategyError};
