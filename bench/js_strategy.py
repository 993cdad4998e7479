#!/usr/bin/env python3
"""The JavaScript `local` against the Rust one (`make bench`), with the server's own sandbox
through `sandgate strategy check` and `sandgate strategy run` (release build):

- size of the component;
- compile time: `strategy check` (validation, compilation in the compiler child, the first
  `fields` call), median of interleaved runs;
- per call: CPU charged and wall time of `verify` (an unknown user or a wrong password: the
  host's argon2 is parked time, not CPU) and of `exists` (no hash). The first call after the
  upload builds its own instance (cold); the steady figures are medians of the following
  calls, each finding a fresh instance built ahead, as on a server;
- the memory cap it needs: the smallest `limits.memory_bytes` (in 256 KiB steps) under which
  `strategy check` accepts it, and the peak linear memory of its calls.

Writes its section between the js markers of docs/performance.md.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import http_bench as hb  # noqa: E402  (BIN, OUT, write_section)

ROOT = Path(__file__).resolve().parent.parent
WASM = ROOT / "target/wasm32-wasip2/strategy"
COMPONENTS = {"Rust local": WASM / "strategy_local.wasm", "JavaScript local": WASM / "js_local.wasm"}
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CALLS = 30
BEGIN, END = "<!-- js -->", "<!-- /js -->"
ENV = {**os.environ, "SANDGATE_LOG": "error"}


def sandgate(*args, cwd):
    return subprocess.run([str(hb.BIN), "strategy", *map(str, args)], capture_output=True, text=True, env=ENV,
                          cwd=cwd, timeout=300)


def check_seconds(wasm, cwd):
    started = time.perf_counter()
    out = sandgate("check", wasm, cwd=cwd)
    if out.returncode != 0:
        sys.exit(f"{wasm}: {out.stderr}")
    return time.perf_counter() - started


def accepted_under(wasm, memory_bytes, cwd):
    return sandgate("check", wasm, "--limits", json.dumps({"memory_bytes": memory_bytes}), cwd=cwd).returncode == 0


def memory_floor(wasm, cwd):
    step = 256 << 10
    low, high = 1, 64  # in steps: 256 KiB .. 16 MiB
    while low < high:
        mid = (low + high) // 2
        if accepted_under(wasm, mid * step, cwd):
            high = mid
        else:
            low = mid + 1
    return low * step


def calls(wasm, cwd):
    # First: a login of an unknown user, the first call after the upload (cold).
    cases = [{"call": "verify", "credentials": {"username": "nobody", "password": "pw"}}]
    cases += [{"call": "create", "kuid": "alice", "credentials": {"username": "alice", "password": "pw"}}]
    cases += [{"call": "verify", "credentials": {"username": "alice", "password": "wrong"}} for _ in range(CALLS)]
    cases += [{"call": "exists", "kuid": "alice"} for _ in range(CALLS)]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cases, f)
    out = sandgate("run", wasm, "--calls", f.name, "--json", cwd=cwd)
    os.unlink(f.name)
    if out.returncode != 0:
        sys.exit(f"{wasm}: {out.stderr}")
    ran = [json.loads(line) for line in out.stdout.splitlines()]
    first, steady = ran[0], ran[2:]
    per = {"first": {"cpu": first["cpu_ms"], "wall": first["wall_ms"]}}
    for call in ("verify", "exists"):
        rows = [r for r in steady if r["call"] == call]
        per[call] = {"cpu": statistics.median(r["cpu_ms"] for r in rows),
                     "wall": statistics.median(r["wall_ms"] for r in rows)}
    per["peak"] = max(r["peak_memory_bytes"] for r in ran)
    return per


def main():
    if not hb.BIN.exists():
        sys.exit(f"{hb.BIN}: build it first (cargo build --release -p sandgate)")
    cwd = tempfile.mkdtemp(prefix="sandgate-js-bench-")
    compile_s = {name: [] for name in COMPONENTS}
    measured = {name: [] for name in COMPONENTS}
    order = list(COMPONENTS)
    for _ in range(ROUNDS):
        for name in order:
            compile_s[name].append(check_seconds(COMPONENTS[name], cwd))
            measured[name].append(calls(COMPONENTS[name], cwd))
        order.reverse()
    floors = {name: memory_floor(wasm, cwd) for name, wasm in COMPONENTS.items()}
    hb.shutil.rmtree(cwd, ignore_errors=True)

    def med(name, call, key):
        return statistics.median(m[call][key] for m in measured[name])

    lines = [BEGIN, "## The JavaScript strategy against the Rust one", "",
             f"Measured by `make bench` (`bench/js_strategy.py`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"release build, {ROUNDS} interleaved rounds (medians). Per call, in one `sandgate strategy run`: "
             "the first call after the upload (a login of an unknown user, building its own instance), then "
             f"{CALLS} logins with a wrong password and {CALLS} `exists`, each finding a fresh instance built ahead.", "",
             "| | " + " | ".join(COMPONENTS) + " |", "|---|" + "---|" * len(COMPONENTS)]

    def row(label, cell):
        lines.append(f"| {label} | " + " | ".join(cell(name) for name in COMPONENTS) + " |")

    row("component size", lambda n: f"{COMPONENTS[n].stat().st_size / 1024:.0f} KiB")
    row("upload check (compile + first call)", lambda n: f"{statistics.median(compile_s[n]) * 1000:.0f} ms")
    row("first call after the upload (`verify`, instance built): CPU", lambda n: f"{med(n, 'first', 'cpu'):.3f} ms")
    row("first call after the upload: wall", lambda n: f"{med(n, 'first', 'wall'):.3f} ms")
    for call, what in (("verify", "`verify`, wrong password"), ("exists", "`exists` (no hash)")):
        row(f"{what}: CPU, steady", lambda n, c=call: f"{med(n, c, 'cpu'):.3f} ms")
        row(f"{what}: wall, steady", lambda n, c=call: f"{med(n, c, 'wall'):.3f} ms")
    row("peak linear memory of a call", lambda n: f"{max(m['peak'] for m in measured[n]) / 1024:.0f} KiB")
    row("smallest `limits.memory_bytes` an upload accepts it under (its `fields` call)",
        lambda n: f"{floors[n] / 1024:.0f} KiB")
    hb.publish(BEGIN, END, lines)


if __name__ == "__main__":
    main()
