"""Parity check: loads a strategy component with wasmtime-py (pip install wasmtime, 50.x tested)
under the host's limits (16 MiB memory via MEM=, 512 KiB wasm stack, <=16 core instances), runs a
fixed scenario with fake deterministic crypto, one fresh instance per call as the host does, and
prints every answer, the host calls made and the storage. Diff the Rust and Python outputs:

  python parity.py target/wasm32-wasip2/strategy/strategy_local.wasm > rs.out
  python parity.py target/wasm32-wasip2/strategy/python_local.wasm  > py.out
  diff rs.out py.out   # only serde-vs-python JSON error details differ
"""
import hashlib, json, os, sys, time, wasmtime
from wasmtime import component as C

path = sys.argv[1]
MEM = int(os.environ.get("MEM", 16 << 20))
cfg = wasmtime.Config()
cfg.epoch_interruption = True
cfg.max_wasm_stack = 512 << 10
cfg.wasm_component_model = True
eng = wasmtime.Engine(cfg)
t0 = time.time(); comp = C.Component.from_file(eng, path); t_compile = time.time() - t0
print(f"# compile {t_compile:.2f}s", file=sys.stderr)

STORE = {}
calls = []
quota_fail = [False]

def phc(pw): return "$fake$" + hashlib.sha256(pw.encode()).hexdigest()

linker = C.Linker(eng)
linker.add_wasip2()
with linker.root() as root:
    with root.add_instance("sandgate:strategy/storage@0.1.0") as s:
        s.add_func("get", lambda st, k: (calls.append(("get", k)), OVERLAY.get(k))[1])
        def set_(st, k, v):
            calls.append(("set", k))
            if quota_fail[0]: return "quota exceeded: max_keys"
            OVERLAY[k] = v; return None
        s.add_func("set", set_)
        def del_(st, k):
            calls.append(("delete", k)); return OVERLAY.pop(k, None) is not None
        s.add_func("delete", del_)
        s.add_func("list-keys", lambda st, p, n: sorted(k for k in OVERLAY if k.startswith(p))[:n])
    with root.add_instance("sandgate:strategy/crypto@0.1.0") as c:
        c.add_func("hash-password", lambda st, pw: (calls.append(("hash",)), phc(pw))[1])
        c.add_func("verify-password", lambda st, pw, h: (calls.append(("verify", h[:12])), phc(pw) == h)[1])
        c.add_func("dummy-hash", lambda st: (calls.append(("dummy",)), "$fake$dummy")[1])
        for n in ("hmac-sha256", "hmac-sha1", "hmac-sha512"): c.add_func(n, lambda st, k, d: b"")
        c.add_func("sha256", lambda st, d: hashlib.sha256(d).digest())
        c.add_func("random-bytes", lambda st, n: os.urandom(n))
        c.add_func("constant-time-eq", lambda st, a, b: a == b)
        c.add_func("now-ms", lambda st: int(time.time() * 1000))
    with root.add_instance("sandgate:strategy/log@0.1.0") as l:
        l.add_func("log", lambda st, lvl, msg: print("# log", lvl, msg, file=sys.stderr))
    with root.add_instance("sandgate:strategy/config@0.1.0") as g:
        g.add_func("get", lambda st: "{}")

timings = []
def call(name, *args):
    """One call as the host makes it: a fresh store and instance, writes kept only on Ok."""
    global OVERLAY
    OVERLAY = dict(STORE)
    del calls[:]
    store = wasmtime.Store(eng)
    store.set_limits(memory_size=MEM, table_elements=100_000, instances=16, tables=16, memories=4)
    store.set_wasi(wasmtime.WasiConfig())
    store.set_epoch_deadline(1)  # never incremented here: no CPU cap in this harness
    t0 = time.perf_counter()
    inst = linker.instantiate(store, comp)
    t1 = time.perf_counter()
    iface = inst.get_export_index(store, "sandgate:strategy/authenticator@0.1.0")
    f = inst.get_func(store, inst.get_export_index(store, name, iface))
    try:
        r = f(store, *args)
        f.post_return(store)
    except Exception as e:
        r = f"TRAP {type(e).__name__}: {str(e).splitlines()[0]}"
    t2 = time.perf_counter()
    timings.append((name, t1 - t0, t2 - t1))
    ok = not isinstance(r, (C.Variant,)) and not (isinstance(r, str) and r.startswith("TRAP"))
    if ok:
        STORE.clear(); STORE.update(OVERLAY)
    shown = f"Err({r.tag}: {r.payload})" if isinstance(r, C.Variant) else repr(r)
    shown_args = tuple((a.credentials, a.query) if isinstance(a, C.Record) else a for a in args)
    print(f"{name}{shown_args!r} -> {shown}   host calls: {calls}")
    return r

def LR(creds, query=(), ip=None):
    r = C.Record(); r.credentials = creds; r.query = [tuple(q) for q in query]; setattr(r, "client-ip", ip)
    return r

def dump():
    print("   store:", json.dumps(STORE, sort_keys=True, ensure_ascii=False))

J = json.dumps
call("fields")
call("exists", "k1")
call("create", "k1", J({"username": "alice", "password": "pw1"})); dump()
call("create", "k1", J({"username": "alice2", "password": "pw1"}))
call("create", "k2", J({"username": "alice", "password": "pw2"}))
for creds in [{"username": "alice", "password": "pw1"}, {"username": "alice", "password": "nope"},
              {"username": "nobody", "password": "x"}, {"username": "alice"}, {"username": 5, "password": "pw1"},
              {"username": "", "password": "pw1"}]:
    call("verify", LR(J(creds)))
call("verify", LR("{}", [("username", "alice"), ("password", "pw1")]))
call("verify", LR("not json", [("password", "pw1"), ("username", "alice"), ("username", "zzz")]))
call("verify", LR("[]", [("username", "alice"), ("password", "")]))
for kuid, creds, upd in [("k9", {"username": "x", "password": "y", "kuid": "k9"}, False),
                         ("k9", {"username": 1, "password": "y"}, False),
                         ("k9", {"username": "x", "password": 1}, False),
                         ("k9", {"username": None, "password": "y"}, False),
                         ("k9", {"password": "y"}, False),
                         ("k9", {"username": "x"}, False),
                         ("k9", {"username": "x", "password": ""}, False),
                         ("k9", {}, True),
                         ("k9", {"username": None, "password": None}, True),
                         ("k9", {"username": ""}, True),
                         ("k9", {"password": ""}, True),
                         ("k9", {"username": "alice"}, True),
                         ("k1", {"username": "alice"}, True),
                         ("k9", {"username": "x", "password": "y"}, False)]:
    call("validate", kuid, J(creds), upd)
call("validate", "k9", "[1]", False)
call("validate", "k9", "\"s\"", False)
call("update", "k2", J({"password": "z"}))
call("update", "k1", J({"username": "bob"})); dump()
call("verify", LR(J({"username": "alice", "password": "pw1"})))
call("verify", LR(J({"username": "bob", "password": "pw1"})))
call("update", "k1", J({"password": "pw3"})); dump()
call("update", "k1", J({"username": "bob", "password": "pw4"})); dump()
call("create", "k2", J({"username": "ça-va \"q\" ✓", "password": "p\u00e9"})); dump()
call("get-info", "k2")
call("get-by-id", "ça-va \"q\" ✓")
call("get-by-id", "ghost")
call("get-info", "ghost")
call("exists", "k1")
call("delete", "k1"); dump()
call("delete", "k1")
call("exists", "k1")
quota_fail[0] = True
call("create", "k3", J({"username": "carol", "password": "pw"})); dump()
quota_fail[0] = False
STORE["user:corrupt"] = "{\"kuid\": 5}"; STORE["kuid:kc"] = "12"; STORE["kuid:kd"] = "{"
call("verify", LR(J({"username": "corrupt", "password": "pw"})))
call("get-info", "kc")
call("get-info", "kd")
call("exists", "kc")
call("validate", "k9", "{bad", False)
big = J({"username": "u" * 30000, "password": "p" * 30000})
call("validate", "k9", big, False)
deep = "[" * 120 + "]" * 120
call("validate", "k9", J({"username": "x", "password": "y", "deep": json.loads(deep)}), False)
n = len(timings)
inst_t = sorted(t[1] for t in timings); call_t = sorted(t[2] for t in timings)
print(f"# {n} calls; instantiate median {inst_t[n//2]*1000:.1f} ms max {inst_t[-1]*1000:.1f} ms; "
      f"call median {call_t[n//2]*1000:.2f} ms max {call_t[-1]*1000:.2f} ms", file=sys.stderr)
