//! Host-side bindings of the strategy contract, both versions the host serves, kept in their
//! own module so each macro expands once: `sandgate:strategy@0.2.0` (`wit/strategy.wit`, the
//! current one, at the top of this module) and `@0.1.0` (`wit/0.1.0/strategy.wit`, in
//! [`v0_1`]), whose components keep working unchanged. Imports are trappable: a host function
//! can stop a strategy that exceeds a cap. Calls are async (a strategy waiting on the host
//! holds no thread), and so are the imports that wait: storage reads (the store's reader pool)
//! and password hashing (the argon2 pool).

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

/// `sandgate:strategy@0.1.0`: served by the 0.2.0 implementations (`host/v0_1.rs`).
pub mod v0_1 {
    wasmtime::component::bindgen!({
        world: "strategy",
        path: "../wit/0.1.0",
        imports: {
            "sandgate:strategy/storage": async | trappable,
            "sandgate:strategy/crypto.hash-password": async | trappable,
            "sandgate:strategy/crypto.verify-password": async | trappable,
            default: trappable,
        },
        exports: { default: async },
    });
}

pub use sandgate::strategy::log::Level;
pub use sandgate::strategy::types::{Login, LoginRequest, Newcomer, StrategyError};
