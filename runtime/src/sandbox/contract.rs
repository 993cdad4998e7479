//! Which version of the strategy contract a component was built against, and its instances
//! either way: 0.2.0 (`wit/strategy.wit`) or 0.1.0 (`wit/0.1.0/strategy.wit`). The version is
//! read from the `authenticator` the component exports; the host serves both.

use super::bindings::{self, v0_1};
use super::host::HostState;
use wasmtime::component::InstancePre;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    V0_1,
    V0_2,
}

impl Contract {
    /// Every version served, newest first, with the export that names it.
    pub const ALL: [(Contract, &'static str); 2] = [
        (Contract::V0_2, "sandgate:strategy/authenticator@0.2.0"),
        (Contract::V0_1, "sandgate:strategy/authenticator@0.1.0"),
    ];

    pub fn of_export(name: &str) -> Option<Contract> {
        Contract::ALL.iter().find(|(_, export)| *export == name).map(|(c, _)| *c)
    }

    /// `"0.2.0"`, as `GET /strategies/:name` shows it.
    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
        }
    }
}

/// A linked component, ready to instantiate.
pub enum Pre {
    V0_1(v0_1::StrategyPre<HostState>),
    V0_2(bindings::StrategyPre<HostState>),
}

/// One instance, for exactly one call.
pub enum Instance {
    V0_1(v0_1::Strategy),
    V0_2(bindings::Strategy),
}

impl Pre {
    pub fn new(contract: Contract, pre: InstancePre<HostState>) -> wasmtime::Result<Pre> {
        Ok(match contract {
            Contract::V0_1 => Pre::V0_1(v0_1::StrategyPre::new(pre)?),
            Contract::V0_2 => Pre::V0_2(bindings::StrategyPre::new(pre)?),
        })
    }

    pub fn contract(&self) -> Contract {
        match self {
            Pre::V0_1(_) => Contract::V0_1,
            Pre::V0_2(_) => Contract::V0_2,
        }
    }

    pub async fn instantiate_async(&self, store: &mut wasmtime::Store<HostState>) -> wasmtime::Result<Instance> {
        Ok(match self {
            Pre::V0_1(pre) => Instance::V0_1(pre.instantiate_async(store).await?),
            Pre::V0_2(pre) => Instance::V0_2(pre.instantiate_async(store).await?),
        })
    }
}
