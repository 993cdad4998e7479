"""Lists a component's core modules (memory/table minimums) and its component-level imports/exports.

Usage: python inspect_component.py <component.wasm>   (needs `pip install wasmtime`, 50.x tested)
"""
import sys, wasmtime
from wasmtime import component as C

def leb(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1
        r |= (x & 0x7f) << s; s += 7
        if x < 0x80: return r, i

def walk(b, depth=0, out=None):
    """Collect core modules and count sections of a component binary (recursive)."""
    out = out if out is not None else {"modules": [], "core_instance_sections": 0, "components": 0, "core_instances": 0}
    i = 8
    while i < len(b):
        sid = b[i]; i += 1
        size, i = leb(b, i)
        body = b[i:i+size]
        if sid == 1:
            out["modules"].append((depth, body))
        elif sid == 2:
            n, _ = leb(body, 0); out["core_instances"] += n
        elif sid == 4:
            out["components"] += 1
            walk(body, depth + 1, out)
        i += size
    return out

path = sys.argv[1]
wasm = open(path, "rb").read()
info = walk(wasm)
print(f"size: {len(wasm)} bytes; nested components: {info['components']}; core instance entries: {info['core_instances']}; core modules: {len(info['modules'])}")
eng = wasmtime.Engine()
for n, (depth, m) in enumerate(info["modules"]):
    mod = wasmtime.Module(eng, m)
    mems, tables = [], []
    for imp in mod.imports:
        t = imp.type
        if isinstance(t, wasmtime.MemoryType): mems.append(("import", imp.module, imp.name, t.limits.min, t.limits.max))
        if isinstance(t, wasmtime.TableType): tables.append(("import", imp.module, imp.name, t.limits.min, t.limits.max))
    for ex in mod.exports:
        t = ex.type
        if isinstance(t, wasmtime.MemoryType): mems.append(("export", ex.name, t.limits.min, t.limits.max))
        if isinstance(t, wasmtime.TableType): tables.append(("export", ex.name, t.limits.min, t.limits.max))
    print(f"module {n} (depth {depth}): {len(m)} bytes, imports={len(mod.imports)}, exports={len(mod.exports)}; memories(pages of 64KiB)={mems}; tables={tables}")
ct = C.Component(eng, wasm).type
print("component imports:")
for name in sorted(ct.imports(eng)):
    print("  ", name)
print("component exports:", sorted(ct.exports(eng)))
