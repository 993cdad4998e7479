#!/usr/bin/env python3
"""Sandgate on PostgreSQL (`make bench`, after side_by_side.py).

- One node on PostgreSQL against the same node on its SQLite file: apikey and local logins in
  interleaved rounds with the same wrk settings, both nodes up at once.
- Two nodes on one database: the time from a logout sent to node A until node B refuses the
  token (B polled over one keep-alive connection), median and max over 100 tries.

PostgreSQL comes from Debian's package (`make postgres` installs it), in a temporary directory
on a free port of 127.0.0.1, as the `postgres` user when run as root. Writes its section
between the cluster markers of docs/performance.md.
"""

import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import http_bench as hb  # noqa: E402  (Server, wrk, setup, register)

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TRIES = int(os.environ.get("BENCH_PROPAGATION_TRIES", "100"))
SECONDS = hb.SECONDS
KEY = "bench-key-0123456789-abcdefghijklmnop"
BEGIN, END = "<!-- cluster -->", "<!-- /cluster -->"


class Postgres:
    """A throwaway PostgreSQL cluster (trust authentication, 127.0.0.1 only)."""

    def __init__(self):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
        if not bins:
            sys.exit("PostgreSQL is not installed (make postgres installs Debian's postgresql)")
        self.bin = bins[-1].parent
        # A directory of its own, owned by the user the server runs as (PostgreSQL refuses
        # root): mkdtemp's 0700 parent would shut that user out of anything below it.
        self.work = Path(hb.tempfile.mkdtemp(prefix="sandgate-bench-pg-"))
        work = self.work
        self.dir = work / "pg"
        self.port = hb.free_port()
        as_root = os.geteuid() == 0
        self.prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        if as_root:
            subprocess.run(["chown", "postgres:postgres", str(work)], check=True)
        self.run("initdb", "-D", self.dir, "-U", "sandgate", "--auth=trust", "-E", "UTF8")
        self.run("pg_ctl", "-D", self.dir, "-l", Path(work) / "pg.log", "-w", "start", "-o",
                 f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''")
        self.url = f"postgres://sandgate@127.0.0.1:{self.port}/postgres"

    def run(self, tool, *args):
        subprocess.run(self.prefix + [str(self.bin / tool)] + [str(a) for a in args], check=True,
                       stdout=subprocess.DEVNULL, timeout=120)

    def stop(self):
        self.run("pg_ctl", "-D", self.dir, "-m", "fast", "-w", "stop")
        hb.shutil.rmtree(self.work, ignore_errors=True)


def prepare(server):
    admin = hb.setup(server)
    hb.register(server, admin, "apikey", "strategy_apikey")
    server.call("POST", "/users/bot/_create", {"content": {"profileIds": ["default"]},
                                               "credentials": {"apikey": {"key": KEY}, "local": {"username": "bot", "password": "pw"}}}, admin)
    for path, body in (("/_login/apikey", {"key": KEY}), ("/_login/local", {"username": "bot", "password": "pw"})):
        r = server.call("POST", path, body)
        assert r["status"] == 200, (server.base, path, r)
    return admin


def logins(servers):
    """Interleaved rounds of apikey (32 connections) and local (4 connections) logins."""
    scenarios = {"apikey": ("/_login/apikey", {"key": KEY}, 32),
                 "local": ("/_login/local", {"username": "bot", "password": "pw"}, 4)}
    for base in servers.values():
        for path, body, connections in scenarios.values():
            hb.wrk(base, path, body, connections=connections, seconds=2)
    order, rounds = list(servers), []
    print(f"PostgreSQL against SQLite: {ROUNDS} rounds, wrk -t2 -d{SECONDS}s, 127.0.0.1")
    for i in range(ROUNDS):
        got = {}
        for scenario, (path, body, connections) in scenarios.items():
            for name in order:
                w = hb.wrk(servers[name], path, body, connections=connections)
                got[(name, scenario)] = w
                print(f"  round {i + 1} {scenario:7} {name:9} {w['rps']:9.0f} req/s  p50 {w['p50']:7.2f} ms  "
                      f"p99 {w['p99']:7.2f} ms  non-2xx {w['non2xx']}", flush=True)
        order = order[1:] + order[:1]
        rounds.append(got)
    return rounds


def propagation(a, b):
    """Milliseconds from a logout sent to A until B refuses the token, per try."""
    poll = http.client.HTTPConnection("127.0.0.1", b.port, timeout=10)
    times = []
    for _ in range(TRIES):
        token = a.call("POST", "/_login/apikey", {"key": KEY})["result"]["jwt"]
        body = json.dumps({"token": token})

        def valid():
            poll.request("POST", "/_checkToken", body, {"content-type": "application/json"})
            return json.loads(poll.getresponse().read())["result"]["valid"]

        assert valid(), "B accepts A's token before the logout"
        started = time.perf_counter()
        assert a.call("POST", "/_logout", {}, token)["status"] == 200
        while valid():
            if time.perf_counter() - started > 10:
                sys.exit("B still accepts the token 10 s after the logout on A")
        times.append((time.perf_counter() - started) * 1000)
    poll.close()
    return times


def main():
    work = Path(hb.tempfile.mkdtemp(prefix="sandgate-cluster-bench-"))
    pg = Postgres()
    store = f'[store]\nurl = "{pg.url}"\n'
    servers = []
    try:
        for name, config in (("sqlite", ""), ("a", store), ("b", store)):
            servers.append(hb.Server(work / name, config))
        sqlite, node_a, node_b = servers
        prepare(sqlite)
        prepare(node_a)
        rounds = logins({"sqlite": sqlite.base, "postgres": node_a.base})
        times = propagation(node_a, node_b)
    finally:
        for server in servers:
            server.stop()
        pg.stop()
    hb.shutil.rmtree(work, ignore_errors=True)
    report(rounds, times)


def report(rounds, times):
    def ratios(scenario):
        return [r[("postgres", scenario)]["rps"] / r[("sqlite", scenario)]["rps"] for r in rounds]

    lines = [BEGIN, "## One node on PostgreSQL, and two nodes on one database", "",
             f"Measured by `make bench` (`bench/cluster_bench.py`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}:",
             f"a node on PostgreSQL (a local server in a temporary directory) and a node on its SQLite file, both up",
             f"at once, in {len(rounds)} interleaved rounds of `wrk -t2 -d{SECONDS}s` (apikey at 32 connections, local at 4).", "",
             "| login (median of per-round ratios) | per round | PostgreSQL / SQLite |", "|---|---|---|"]
    for scenario in ("apikey", "local"):
        values = ratios(scenario)
        lines.append(f"| {scenario} | {' / '.join(f'{v:.2f}' for v in values)} | {statistics.median(values):.2f} × |")
    lines += ["", "| round | login | SQLite req/s | PostgreSQL req/s | PostgreSQL p99 ms | non-2xx |", "|---|---|---|---|---|---|"]
    for i, r in enumerate(rounds):
        for scenario in ("apikey", "local"):
            s, p = r[("sqlite", scenario)], r[("postgres", scenario)]
            lines.append(f"| {i + 1} | {scenario} | {s['rps']:.0f} | {p['rps']:.0f} | {p['p99']:.2f} | {s['non2xx'] + p['non2xx']} |")
    ordered = sorted(times)
    lines += ["", f"Revocation across nodes, {len(times)} tries: a token logged out on node A is refused by node B",
              f"**{statistics.median(times):.1f} ms** after the logout was sent (median; p90 {ordered[int(len(ordered) * 0.9) - 1]:.1f} ms, "
              f"max {max(times):.1f} ms; the logout's own round trip included). The guarantee is 1 s."]
    hb.publish(BEGIN, END, lines)


if __name__ == "__main__":
    main()
