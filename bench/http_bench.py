#!/usr/bin/env python3
"""HTTP load benchmark for Sandgate (`make bench`), 127.0.0.1 only, bounded in time.

Starts a release server (built with the `bench-native` feature, which adds a native apikey
login path for comparison), drives it with wrk, and writes docs/performance.md together with
the sandbox micro-benchmark's output. Everything compared is measured in this one run.

Scenarios: the HTTP floor (GET /_healthcheck), POST /_login/apikey (sandboxed) and
/_login/apikey-native, POST /_login/local (argon2id), peak RSS with 256 connections logging in,
apikey throughput while an infinite-loop strategy is hammered, start-up time to healthy with 1
and 20 strategies, and upload-to-first-login for a ~200 KB component.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("SANDGATE_BIN", ROOT / "target/release/sandgate"))
WASM = ROOT / "target/wasm32-wasip2/strategy"
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
SECRET = "bench-secret-0123456789abcdef-0123456789"
MICRO = Path(os.environ.get("BENCH_MICRO_OUT", ROOT / "target/bench-micro.txt"))
OUT = Path(os.environ.get("BENCH_OUT", ROOT / "docs/performance.md"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir, config=""):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        cfg = Path(data_dir) / "bench.toml"
        cfg.write_text(f'[tokens]\nsecret = "{SECRET}"\n[login]\nmax_failures = 0\n{config}')
        env = dict(os.environ, SANDGATE_LISTEN=f"127.0.0.1:{self.port}", SANDGATE_DATA_DIR=str(data_dir),
                   SANDGATE_CONFIG=str(cfg), SANDGATE_LOG="warn", RUST_BACKTRACE="0")
        t0 = time.perf_counter()
        # The server's log goes to a file: a pipe nobody drains would fill and block it.
        self.log = open(Path(data_dir) / "server.log", "ab")
        self.proc = subprocess.Popen([str(BIN), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=self.log)
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"sandgate exited: {(Path(data_dir) / 'server.log').read_text()}")
            try:
                if urllib.request.urlopen(self.base + "/_healthcheck", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.002)
        self.startup = time.perf_counter() - t0

    def call(self, method, path, body=None, token=None, raw=None, ctype="application/json"):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("content-type", ctype)
        if token:
            req.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read())

    def peak_rss_mib(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wrk(base, path, body=None, connections=64, threads=2, seconds=SECONDS):
    script = None
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if body is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                     f"wrk.body = {json.dumps(json.dumps(body))}\n")
        script.close()
        args += ["-s", script.name]
    out = subprocess.run(args + [base + path], capture_output=True, text=True, timeout=seconds + 60).stdout
    if script:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        lat[pct] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    return {"rps": rps, "p50": lat.get("50", float("nan")), "p99": lat.get("99", float("nan")), "non2xx": errors}


def setup(server):
    server.call("POST", "/_createFirstAdmin/admin",
                {"credentials": {"local": {"username": "admin", "password": "admin-password"}}})
    admin = server.call("POST", "/_login/local", {"username": "admin", "password": "admin-password"})["result"]["jwt"]
    return admin


def register(server, admin, name, file, query=""):
    raw = (WASM / f"{file}.wasm").read_bytes()
    r = server.call("PUT", f"/strategies/{name}{query}", raw=raw, token=admin, ctype="application/wasm")
    assert r["status"] == 200, r
    return r


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk is missing (make bench installs it with apt-get)")
    results = {}
    work = Path(tempfile.mkdtemp(prefix="sandgate-bench-"))

    # --- throughput and latency -------------------------------------------------------------
    srv = Server(work / "main")
    results["startup_1"] = srv.startup
    admin = setup(srv)
    register(srv, admin, "apikey", "strategy_apikey")
    key = "bench-key-0123456789-abcdefghijklmnop"
    srv.call("POST", "/users/bot/_create", {"content": {"profileIds": ["default"]},
                                            "credentials": {"apikey": {"key": key}, "local": {"username": "bot", "password": "pw"}}}, admin)
    assert srv.call("POST", "/_login/apikey", {"key": key})["status"] == 200
    assert srv.call("POST", "/_login/apikey-native", {"key": key})["status"] == 200, "build with --features bench-native"
    results["floor"] = wrk(srv.base, "/_healthcheck")
    results["apikey"] = wrk(srv.base, "/_login/apikey", {"key": key})
    results["apikey_native"] = wrk(srv.base, "/_login/apikey-native", {"key": key})
    results["local"] = wrk(srv.base, "/_login/local", {"username": "bot", "password": "pw"}, connections=4)
    # Twice the strategy's max_concurrent_calls (16): the excess waits for a permit (queue_ms),
    # it is not refused; non-2xx counts what was.
    results["local_32"] = wrk(srv.base, "/_login/local", {"username": "bot", "password": "pw"}, connections=32)
    # Sandboxed against native at 1 connection, in alternating rounds: a 10 s run on its own
    # moves by more than the 5 % it is compared with. The median of per-round p50 ratios.
    creds = {"username": "bot", "password": "pw"}
    rounds = [(wrk(srv.base, "/_login/local", creds, connections=1, threads=1, seconds=max(SECONDS // 2, 3)),
               wrk(srv.base, "/_login/local-native", creds, connections=1, threads=1, seconds=max(SECONDS // 2, 3)))
              for _ in range(3)]
    results["local_c1_ratios"] = sorted(a["p50"] / b["p50"] for a, b in rounds)
    results["local_c1"], results["local_native_c1"] = rounds[1]

    # --- memory: a fresh server, 256 connections logging in with apikey ----------------------
    mem = Server(work / "mem")
    mem_admin = setup(mem)
    register(mem, mem_admin, "apikey", "strategy_apikey")
    mem.call("POST", "/users/bot/_create", {"content": {"profileIds": ["default"]}, "credentials": {"apikey": {"key": key}}}, mem_admin)
    results["apikey_256"] = wrk(mem.base, "/_login/apikey", {"key": key}, connections=256)
    results["rss_peak_mib"] = mem.peak_rss_mib()
    mem.stop()

    # --- under attack: an infinite-loop strategy hammered in parallel ------------------------
    # The baseline with the same wrk settings as the measurement under attack.
    results["apikey_1t"] = wrk(srv.base, "/_login/apikey", {"key": key}, connections=64, threads=1)
    register(srv, admin, "chaos", "hostile_chaos")
    attack_script = work / "attack.lua"
    attack_script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                             'wrk.body = \'{"mode":"loop"}\'\n')
    attack = subprocess.Popen(["wrk", "-t1", "-c8", f"-d{SECONDS + 2}s", "-s", str(attack_script), srv.base + "/_login/chaos"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(1)
    results["apikey_attack"] = wrk(srv.base, "/_login/apikey", {"key": key}, connections=64, threads=1)
    attack_out = attack.communicate(timeout=SECONDS + 60)[0]
    m = re.search(r"Requests/sec:\s+([\d.]+)", attack_out)
    results["attack_rps"] = float(m.group(1)) if m else float("nan")

    # --- start-up with 20 strategies (compiled cache warm) -----------------------------------
    for i in range(19):
        register(srv, admin, f"s{i:02d}", "strategy_apikey" if i % 2 else "strategy_totp")
    srv.stop()
    times = []
    for _ in range(5):
        s20 = Server(work / "main")
        times.append(s20.startup)
        n = len(s20.call("GET", "/strategies", token=s20.call("POST", "/_login/local", {"username": "admin", "password": "admin-password"})["result"]["jwt"])["result"])
        s20.stop()
    results["startup_20"] = sorted(times)[len(times) // 2]
    results["startup_20_count"] = n
    times = []
    for i in range(5):
        s1 = Server(work / f"one{i}")
        times.append(s1.startup)
        s1.stop()
    results["startup_1"] = sorted(times)[len(times) // 2]

    # --- upload of a ~200 KB component to the first successful login (fresh cache) ------------
    up = []
    for i in range(3):
        fresh = Server(work / f"fresh{i}")
        admin = setup(fresh)
        size = (WASM / "hostile_chaos.wasm").stat().st_size
        t0 = time.perf_counter()
        register(fresh, admin, "fresh", "hostile_chaos")
        fresh.call("POST", "/users/u/_create", {"content": {"profileIds": ["default"]}, "credentials": {"fresh": {}}}, admin)
        r = fresh.call("POST", "/_login/fresh", {"mode": "ok", "kuid": "u"})
        up.append(time.perf_counter() - t0)
        assert r["status"] == 200, r
        fresh.stop()
    results["upload_to_login"] = sorted(up)[1]
    results["upload_size"] = size
    shutil.rmtree(work, ignore_errors=True)
    write_report(results)


# Written by hand from a `perf record` under load (2026-11-28); kept in every report.
ANALYSIS = """## What is missed, and what the profile shows

- **apikey throughput ≥ 0.85 × native, ≥ 10 × Express, ≥ 0.6 × the floor: missed** (figures
  above and in "Side by side"). Since issue 10 nothing of a request leaves the reactor (no
  thread hop, async wasmtime calls, users, links and strategy values from memory), and the
  profile is flat. `perf record --call-graph dwarf` of apikey logins at 32 connections
  (2026-12-02 04:26 UTC, 8.8k logins/s, sandgate's own CPU = 100 %):
  - 30 % the aftercare of each call: dropping the call's Store 10 % (returning the instance to
    the pool: `pagemap_scan` ioctl and reset 5 %, decommit queue 2 %) and building the next
    fresh instance 15 % (`instantiate_async`: imports, funcrefs, module registration);
  - 25 % the HTTP request and response in Sandgate's code (parsing, routing, the envelope,
    `Tokens::issue` 4 %, the JWT signature 2 %), 15 % the kernel's `writev` on loopback;
  - the call itself ≈ 10 % (the fiber switch, four host calls, the guest), malloc/free ≈ 10 %
    across everything.
  A fresh instance per call (nothing a call leaves survives to the next) is what costs the
  most against a native server that only does a map lookup; it is the isolation guarantee, so
  it stays. What could still go: the per-call instantiation work that does not depend on the
  call (wasmtime could reuse more of an instance's setup), and allocations on the HTTP path.
- **`GET /_healthcheck` ≥ 0.9 × the native trivial route: missed** (see "Side by side"). Its
  profile before the last changes: routing split every route's pattern per request (6 %), the
  envelope was built as a JSON tree before being written (6 %), a `getrandom` system call per
  request id (2 %), the strategies listed and sorted to be counted (2 %). All four are fixed
  (routes split once, the envelope serialized from the response, a thread-local CSPRNG, a
  count); what is left is Kuzzle's envelope and headers (request id, CORS) that the baseline
  does not write, and warp's per-request filters (a clone of the header map, the body stream).
- Tried, kept: the pooling allocator, `InstancePre`, `concurrency_support(false)`, epoch (not
  fuel); fresh instances built ahead and a call's Store dropped *after the response*, now in a
  task of its own that holds the request's permit (each instance still serves exactly one call;
  the request path is "take a ready instance, call it"); `linear_memory_keep_resident` 4 MiB;
  strategies linked with a 128 KiB wasm stack; `table_keep_resident` 64 KiB; one argon2
  buffer per core; `pagemap_scan` (Linux 6.18, see "Measured choice" below).
- Tried, dropped: background builder and reaper threads (two cross-thread wake-ups per call).
- "Start-up with the bundled strategy only" is slower than with 22 strategies because those
  servers start on an empty data directory: the bundled component is compiled, not loaded
  from the cache.

"""


def write_report(r):
    micro = MICRO.read_text() if MICRO.exists() else "(micro-benchmark output missing)\n"
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "unknown CPU")
    load = os.getloadavg()
    floor, api, nat, loc = r["floor"], r["apikey"], r["apikey_native"], r["local"]
    m = re.search(r"local verify, native\s+median\s+([\d.]+)", micro)
    argon_us = float(m.group(1)) if m else float("nan")
    m = re.search(r"apikey verify, sandboxed, request path\s+median\s+([\d.]+)", micro)
    cycle_us = float(m.group(1)) if m else float("nan")

    def row(name, w):
        return f"| {name} | {w['rps']:.0f} | {w['p50']:.2f} | {w['p99']:.2f} | {w['non2xx']} |"

    def verdict(ok):
        return "met" if ok else "**missed**"

    local_ratio = r["local_c1_ratios"][1]
    local_vs_hash = r["local_c1"]["p50"] * 1000 / argon_us if argon_us == argon_us else float("nan")
    targets = [
        ("sandbox cycle for apikey ≤ 10 µs (median)", f"{cycle_us:.1f} µs", cycle_us <= 10),
        ("apikey login ≥ 0.85 × native", f"{api['rps'] / nat['rps']:.2f} ×", api["rps"] / nat["rps"] >= 0.85),
        ("apikey login ≥ 0.6 × /_healthcheck", f"{api['rps'] / floor['rps']:.2f} ×", api["rps"] / floor["rps"] >= 0.6),
        ("local login within 5 % of argon2id (p50, 1 connection, sandboxed / native login, median of 3 alternating rounds)", f"{local_ratio:.3f} × (rounds: {', '.join(f'{x:.3f}' for x in r['local_c1_ratios'])})", local_ratio <= 1.05),
        ("start-up to healthy with 20 strategies ≤ 150 ms", f"{r['startup_20'] * 1000:.0f} ms", r["startup_20"] <= 0.150),
        ("upload of a ~200 KB component to first login ≤ 400 ms", f"{r['upload_to_login'] * 1000:.0f} ms", r["upload_to_login"] <= 0.400),
        ("RSS ≤ 150 MiB with 256 connections logging in", f"{r['rss_peak_mib']:.0f} MiB", r["rss_peak_mib"] <= 150),
        ("apikey under attack (8 connections on an infinite loop) ≥ 0.5 × alone (same wrk settings)", f"{r['apikey_attack']['rps'] / r['apikey_1t']['rps']:.2f} ×", r['apikey_attack']['rps'] / r['apikey_1t']['rps'] >= 0.5),
    ]
    text = f"""# Performance

Measured by `make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, on this machine:
{os.cpu_count()} cores ({cpu}), load average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}.
**The machine is shared and noisy: only ratios measured side by side in one run compare.**
Absolute figures move by ±30 % between runs.

## Targets

| target | measured | |
|---|---|---|
""" + "\n".join(f"| {n} | {v} | {verdict(ok)} |" for n, v, ok in targets) + "\n\n" + ANALYSIS + f"""## HTTP load (wrk, {SECONDS} s each, 2 threads, 64 connections unless noted; latencies in ms)

| scenario | requests/s | p50 | p99 | non-2xx |
|---|---|---|---|---|
{row('GET /_healthcheck (the HTTP floor)', floor)}
{row('POST /_login/apikey (sandboxed)', api)}
{row('POST /_login/apikey-native (same logic, native)', nat)}
{row('POST /_login/local (argon2id, 4 connections)', loc)}
{row('POST /_login/local (32 connections: twice max_concurrent_calls)', r['local_32'])}
{row('POST /_login/local (1 connection; the middle of 3 alternating rounds)', r['local_c1'])}
{row('POST /_login/local-native (same logic, native, 1 connection; same round)', r['local_native_c1'])}
{row('POST /_login/apikey, 256 connections', r['apikey_256'])}
{row('POST /_login/apikey (1 thread), alone', r['apikey_1t'])}
{row('POST /_login/apikey (1 thread) while an infinite loop is hammered', r['apikey_attack'])}

- apikey / floor: **{api['rps'] / floor['rps']:.2f}**; apikey / native: **{api['rps'] / nat['rps']:.2f}**
- local login at 1 connection against the hash alone (the micro-benchmark's native verify,
  {argon_us / 1000:.2f} ms): {local_vs_hash:.3f} × (a different process and minute: indicative only)
- The attack: 8 connections looping on `POST /_login/chaos {{"mode":"loop"}}` (each call stopped
  at its 100 ms CPU budget), {r['attack_rps']:.0f} attacks/s answered meanwhile.
- Peak RSS (VmHWM) of a fresh server after {SECONDS} s of 256 connections logging in with apikey:
  **{r['rss_peak_mib']:.0f} MiB**.
- Start-up to healthy (median of 5): {r['startup_1'] * 1000:.0f} ms with the bundled strategy only,
  {r['startup_20'] * 1000:.0f} ms with {r['startup_20_count']} registered strategies (compiled cache warm).
- Upload of a {r['upload_size'] // 1000} KB component (fresh cache: validation + compilation) → a user with
  credentials → first successful login: {r['upload_to_login'] * 1000:.0f} ms (median of 3).

## Sandbox micro-benchmark (`cargo bench -p sandgate --bench sandbox`)

```
{micro.strip()}
```

## Reproduce

```sh
make bench            # builds release (with the bench-native feature), installs wrk if missing,
                      # runs the micro-benchmark, then this HTTP benchmark; rewrites this file
BENCH_SECONDS=30 make bench   # longer runs
```
"""
    # Hand-written notes (side-by-side comparisons, measured choices) and the side-by-side
    # section of bench/side_by_side.py survive a rewrite: they are kept between their markers.
    previous = OUT.read_text() if OUT.exists() else ""
    for begin, end in (("<!-- notes -->", "<!-- /notes -->"), ("<!-- side-by-side -->", "<!-- /side-by-side -->"),
                       ("<!-- cluster -->", "<!-- /cluster -->"), ("<!-- js -->", "<!-- /js -->")):
        if begin in previous and end in previous:
            kept = previous[previous.index(begin):previous.index(end) + len(end)]
            text = text.replace("## HTTP load", kept + "\n\n## HTTP load", 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)


def publish(begin, end, lines):
    """Closes a section's `lines` (which start with `begin`) with `end`, prints it and writes it
    into docs/performance.md."""
    section = "\n".join(lines + ["", end, ""])
    print(section)
    write_section(begin, end, section)


def write_section(begin, end, section):
    """Puts `section` (which starts with `begin` and ends with `end`) into docs/performance.md:
    in place of the previous one, else before the HTTP load figures, else at the end."""
    text = OUT.read_text() if OUT.exists() else ""
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) + 1:]
    elif "## HTTP load" in text:
        text = text.replace("## HTTP load", section + "\n## HTTP load", 1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    OUT.write_text(text)


if __name__ == "__main__":
    main()
