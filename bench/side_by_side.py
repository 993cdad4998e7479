#!/usr/bin/env python3
"""Sandgate side by side with two baselines outside it (`make bench`, after http_bench.py).

- baseline-native (bench/baseline-native): a minimal warp server doing the apikey and local
  logins' work natively (SHA-256 lookup, constant-time compare, HS256 JWT with ring, the
  envelope; argon2id with Sandgate's parameters on a blocking pool);
- baseline-node (bench/baseline-node): Express + Passport (passport-local, a custom API-key
  strategy) + jsonwebtoken, installed with `npm ci` from its lock file.

The three run at once on 127.0.0.1 and are measured in interleaved rounds with the same wrk
settings (`-t2 -c32`); each round rotates which server goes first. Prints every run, the
ratios per round and their medians, and writes them between the side-by-side markers of
docs/performance.md (appended if the markers are missing).
"""

import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import http_bench as hb  # noqa: E402  (Server, wrk, setup, register)

ROOT = hb.ROOT
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = hb.SECONDS
NATIVE = Path(os.environ.get("BASELINE_NATIVE_BIN", ROOT / "target/release/baseline-native"))
NODE_DIR = ROOT / "bench/baseline-node"
KEY = "bench-key-0123456789-abcdefghijklmnop"
BEGIN, END = "<!-- side-by-side -->", "<!-- /side-by-side -->"


def wait_up(base, proc, what):
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"{what} exited")
        try:
            if urllib.request.urlopen(base + "/_healthcheck", timeout=1).status == 200:
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not come up")


def baseline(cmd, cwd, what):
    port = hb.free_port()
    # NODE_ENV=production: how Express is deployed (it matters little for these routes).
    env = dict(os.environ, BASELINE_LISTEN=f"127.0.0.1:{port}", BASELINE_KEY=KEY, BASELINE_USER="bot:pw",
               NODE_ENV="production")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_up(base, proc, what)
    return base, proc


def main():
    if not NATIVE.exists():
        sys.exit(f"{NATIVE} is missing (make bench builds it: cargo build --release -p baseline-native)")
    if not (NODE_DIR / "node_modules").exists():
        sys.exit("bench/baseline-node/node_modules is missing (make bench runs npm ci there)")
    work = Path(hb.tempfile.mkdtemp(prefix="sandgate-side-"))
    sg = hb.Server(work / "sandgate")
    admin = hb.setup(sg)
    hb.register(sg, admin, "apikey", "strategy_apikey")
    sg.call("POST", "/users/bot/_create", {"content": {"profileIds": ["default"]},
                                           "credentials": {"apikey": {"key": KEY}, "local": {"username": "bot", "password": "pw"}}}, admin)
    native, native_proc = baseline([str(NATIVE)], ROOT, "baseline-native")
    node, node_proc = baseline(["node", "server.js"], NODE_DIR, "baseline-node")
    servers = {"sandgate": sg.base, "native": native, "node": node}
    scenarios = {
        "health": ("/_healthcheck", None),
        "apikey": ("/_login/apikey", {"key": KEY}),
        "local": ("/_login/local", {"username": "bot", "password": "pw"}),
    }
    for name, base in servers.items():
        for scenario, (path, body) in scenarios.items():
            r = hb.json.loads(urllib.request.urlopen(urllib.request.Request(
                base + path, data=None if body is None else hb.json.dumps(body).encode(),
                headers={"content-type": "application/json"}), timeout=10).read())
            assert r["status"] == 200, (name, scenario, r)
    # Warm-up, not recorded: Node's JIT, the servers' first connections and allocations.
    for name, base in servers.items():
        for scenario, (path, body) in scenarios.items():
            hb.wrk(base, path, body, connections=32, threads=2, seconds=2)
    rounds = []
    order = list(servers)
    print(f"Side by side: {ROUNDS} rounds, wrk -t2 -c32 -d{SECONDS}s, 127.0.0.1")
    for i in range(ROUNDS):
        got = {}
        for scenario, (path, body) in scenarios.items():
            for name in order:
                w = hb.wrk(servers[name], path, body, connections=32, threads=2)
                got[(name, scenario)] = w
                print(f"  round {i + 1} {scenario:7} {name:9} {w['rps']:9.0f} req/s  p50 {w['p50']:7.2f} ms  "
                      f"p99 {w['p99']:7.2f} ms  non-2xx {w['non2xx']}", flush=True)
        order = order[1:] + order[:1]
        rounds.append(got)
    for proc in (native_proc, node_proc):
        proc.terminate()
        proc.wait(timeout=10)
    sg.stop()
    hb.shutil.rmtree(work, ignore_errors=True)
    report(rounds)


def report(rounds):
    def ratio(r, a, b, scenario):
        return r[(a, scenario)]["rps"] / r[(b, scenario)]["rps"]

    def med(values):
        return statistics.median(values)

    figures = {
        "health": [ratio(r, "sandgate", "native", "health") for r in rounds],
        "apikey": [ratio(r, "sandgate", "native", "apikey") for r in rounds],
        "apikey_node": [ratio(r, "sandgate", "node", "apikey") for r in rounds],
        "local": [ratio(r, "sandgate", "native", "local") for r in rounds],
        "local_non2xx": [r[("sandgate", "local")]["non2xx"] for r in rounds],
    }
    targets = [
        ("`GET /_healthcheck` ≥ 0.9 × the native baseline's trivial route", figures["health"], 0.9),
        ("apikey login ≥ 0.85 × the native baseline", figures["apikey"], 0.85),
        ("apikey login ≥ 10 × Express/Passport", figures["apikey_node"], 10),
        ("`local` login ≥ 0.95 × the native baseline", figures["local"], 0.95),
    ]
    lines = [BEGIN, "## Side by side with baselines outside Sandgate", "",
             f"Measured by `make bench` (`bench/side_by_side.py`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}:",
             f"{len(rounds)} interleaved rounds, each server in turn with `wrk -t2 -c32 -d{SECONDS}s` on 127.0.0.1,",
             "the three servers up at once. `native` is `bench/baseline-native` (warp + ring + argon2, the same",
             "work natively), `node` is `bench/baseline-node` (Express + Passport + jsonwebtoken).", "",
             "| target (median of per-round ratios) | per round | median | |", "|---|---|---|---|"]
    for name, values, goal in targets:
        per = " / ".join(f"{v:.2f}" for v in values)
        lines.append(f"| {name} | {per} | {med(values):.2f} × | {'met' if med(values) >= goal else '**missed**'} |")
    non2xx = figures["local_non2xx"]
    lines.append(f"| `local` login, 32 connections: 0 non-2xx | {' / '.join(map(str, non2xx))} | {med(non2xx):.0f} | "
                 f"{'met' if max(non2xx) == 0 else '**missed**'} |")
    lines += ["", "| round | scenario | sandgate req/s | native req/s | node req/s | sandgate non-2xx |", "|---|---|---|---|---|---|"]
    for i, r in enumerate(rounds):
        for scenario in ("health", "apikey", "local"):
            lines.append(f"| {i + 1} | {scenario} | {r[('sandgate', scenario)]['rps']:.0f} | {r[('native', scenario)]['rps']:.0f} | "
                         f"{r[('node', scenario)]['rps']:.0f} | {r[('sandgate', scenario)]['non2xx']} |")
    hb.publish(BEGIN, END, lines)


if __name__ == "__main__":
    main()
