//! The engine: one wasmtime `Engine` per process (pooling allocator, epoch interruption,
//! the stack cap), its linker with the host interfaces, and the thread that ticks its epoch.

use super::host::{self, HostState};
use super::limits::Limits;
use std::time::Duration;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The epoch ticks this often: a computing guest yields its thread at every tick, so this is
/// the longest another request waits behind it (1 ms; a tick costs a callback, ~1 µs).
const TICK: Duration = Duration::from_millis(1);

/// The engine for `limits`, its linker, and its epoch ticker (which stops with the engine).
pub fn start(limits: &Limits) -> wasmtime::Result<(Engine, Linker<HostState>)> {
    let engine = Engine::new(&engine_config(limits))?;
    let mut linker = Linker::<HostState>::new(&engine);
    host::add_to_linker(&mut linker)?;
    start_ticker(engine.weak());
    Ok((engine, linker))
}

/// Advances the engine's epoch every [`TICK`] while the engine lives.
fn start_ticker(engine: wasmtime::EngineWeak) {
    std::thread::Builder::new()
        .name("sandgate-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("spawn epoch ticker");
}

/// The compilation settings (the compiler child builds its engine from these alone).
pub fn compile_config(limits: &Limits) -> Config {
    let mut cfg = Config::new();
    cfg.epoch_interruption(true).max_wasm_stack(limits.stack_bytes).concurrency_support(false);
    cfg
}

/// The cache holds native code the server will run: only the server's user may write there.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

fn engine_config(limits: &Limits) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    let n = limits.pool_instances;
    pool.total_component_instances(n)
        .total_core_instances(n * 8)
        .total_memories(n * 2)
        .total_tables(n * 8)
        .max_memory_size(limits.memory_bytes)
        .max_core_instances_per_component(16)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        // Keep the start of a recycled heap mapped: fewer page faults on the next call.
        .linear_memory_keep_resident(limits.keep_resident_bytes)
        // Tables too: otherwise each recycled slot's tables are decommitted with madvise,
        // and on a multi-core machine every madvise may cost a TLB shootdown.
        .table_keep_resident(64 << 10)
        // Linux ≥ 6.7: reset only the pages a call dirtied (the kernel says which), instead of
        // memsetting the whole kept-resident region. Measured no worse, slightly better
        // (docs/performance.md); `Auto` falls back where the kernel lacks it.
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut cfg = compile_config(limits);
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    cfg
}
