//! Compiling an uploaded component to native code, within a time limit.
//!
//! Cranelift's time grows faster than the input on some shapes of code: a small upload can
//! keep a core busy for minutes. A thread cannot be stopped, so the server compiles in a child
//! process of its own binary (`sandgate compile-component`, hidden), killed once
//! `limits.compile_ms` has passed: the upload is refused and the CPU is free at once. The
//! child writes the artifact into a file the parent made (unique name, mode 0600) and loads
//! nothing itself.

use super::errors::UploadError;
use super::limits::Limits;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The hidden subcommand the server runs its compiler child as.
pub const SUBCOMMAND: &str = "compile-component";
/// The engine limits the child builds its `Engine` from (artifacts must match the parent's).
const LIMITS_ENV: &str = "SANDGATE_COMPILE_LIMITS";
/// Address space the child may map: Cranelift on a large upload, not a machine's memory.
const CHILD_ADDRESS_SPACE: u64 = 8 << 30;
/// What is kept of the child's stderr (its error message).
const STDERR_KEPT: u64 = 16 << 10;

/// How uploaded bytes become native code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compiler {
    /// In this process, with no time limit: for trusted input only (benchmarks, tools).
    InProcess,
    /// In a child process of this executable (the `sandgate` binary), killed past
    /// `limits.compile_ms`. What `sandgate serve` uses.
    Child(PathBuf),
}

/// Compiles `wasm` and writes the serialized artifact to `out`.
pub(super) fn compile(
    compiler: &Compiler,
    engine: &wasmtime::Engine,
    limits: &Limits,
    wasm: &[u8],
    out: &Path,
) -> Result<(), UploadError> {
    match compiler {
        Compiler::InProcess => {
            let bytes = engine
                .precompile_component(wasm)
                .map_err(|e| UploadError(format!("invalid component: {}", root_cause(&e))))?;
            std::fs::write(out, bytes).map_err(|e| UploadError(format!("cannot compile now: {e}")))
        }
        Compiler::Child(exe) => in_child(exe, limits, wasm, out),
    }
}

fn in_child(exe: &Path, limits: &Limits, wasm: &[u8], out: &Path) -> Result<(), UploadError> {
    let busy = |e: std::io::Error| UploadError(format!("cannot compile now (compiler process: {e})"));
    let limits_json = serde_json::to_string(limits).expect("limits serialize");
    // CPU seconds the child may use on every core of a 2-core machine, and a second more:
    // the wall-clock limit below stops it first; this one holds if the server itself is gone.
    let cpu_secs = limits.compile_ms.div_ceil(1000) * 2 + 1;
    let mut command = Command::new(exe);
    command
        .arg(SUBCOMMAND)
        .arg(out)
        .env(LIMITS_ENV, limits_json)
        .env("SANDGATE_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: only async-signal-safe calls (setrlimit, prctl) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let cap = libc::rlimit { rlim_cur: CHILD_ADDRESS_SPACE, rlim_max: CHILD_ADDRESS_SPACE };
                libc::setrlimit(libc::RLIMIT_AS, &cap);
                let cpu = libc::rlimit { rlim_cur: cpu_secs, rlim_max: cpu_secs + 1 };
                libc::setrlimit(libc::RLIMIT_CPU, &cpu);
                let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                libc::setrlimit(libc::RLIMIT_CORE, &none);
                // Killed with the thread that waits for it (and so with the server).
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    let mut child = command.spawn().map_err(busy)?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stderr = child.stderr.take().expect("piped stderr");
    let input = wasm.to_vec();
    // Fed and drained from threads: a child that stops reading, or writes more than a pipe
    // holds, must not block the wait below.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let drain = std::thread::spawn(move || {
        let mut kept = String::new();
        let mut pipe = std::io::Read::take(stderr, STDERR_KEPT);
        let _ = std::io::Read::read_to_string(&mut pipe, &mut kept);
        let _ = std::io::copy(&mut pipe.into_inner(), &mut std::io::sink());
        kept
    });
    let limit = Duration::from_millis(limits.compile_ms);
    let start = Instant::now();
    let stop = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() >= limit => {
                stop(&mut child);
                let _ = (feeder.join(), drain.join());
                return Err(UploadError(format!(
                    "compiling it took longer than {} ms (limits.compile_ms); it was stopped",
                    limits.compile_ms
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                stop(&mut child);
                let _ = (feeder.join(), drain.join());
                return Err(busy(e));
            }
        }
    };
    let _ = feeder.join();
    let stderr = drain.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let reason = stderr.trim().trim_start_matches("sandgate: ");
    Err(UploadError(if reason.is_empty() {
        format!("invalid component: the compiler stopped ({status})")
    } else {
        format!("invalid component: {reason}")
    }))
}

/// The child's side: `sandgate compile-component OUT` with the component on stdin.
pub fn child_main(out: &Path) -> Result<(), String> {
    let limits: Limits = std::env::var(LIMITS_ENV)
        .map_err(|_| format!("{LIMITS_ENV} is not set (this command is run by the server)"))
        .and_then(|text| serde_json::from_str(&text).map_err(|e| format!("{LIMITS_ENV}: {e}")))?;
    let mut wasm = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut wasm).map_err(|e| e.to_string())?;
    let engine = wasmtime::Engine::new(&super::engine::compile_config(&limits)).map_err(|e| e.to_string())?;
    let bytes = engine.precompile_component(&wasm).map_err(|e| root_cause(&e))?;
    std::fs::write(out, bytes).map_err(|e| format!("{}: {e}", out.display()))
}

fn root_cause(e: &wasmtime::Error) -> String {
    e.chain().last().map(|c| c.to_string()).unwrap_or_else(|| e.to_string())
}
