#!/usr/bin/env python3
"""Import-cycle check for the modules of the `sandgate` library crate.

    python3 tools/check_cycles.py runtime/src      # check a crate's src/ directory
    python3 tools/check_cycles.py -v runtime/src   # ... and show where each cycle edge comes from
    python3 tools/check_cycles.py --self-test      # check the checker on small made-up crates

Why: the crate is built in layers (core types at the bottom, then storage, tokens and
the sandbox, then the services, the controllers, and the API on top), and the layers
must point one way: a module may name the modules below it, never the ones above. When
two modules name each other, directly or around a longer loop, they are two rooms that
depend on each other: neither can be understood, tested or changed on its own, and the
layering is gone. rustc accepts such cycles without a word, so this script looks for
them. `make lint` and `make test` run it.

What counts as an import, in short:
  * Every file is a module: `lib.rs` is `crate`, `x/mod.rs` is `crate::x`, `x/y.rs` is
    `crate::x::y`. `main.rs` (and `bin/`) are the binary crate and are skipped. Inline
    `mod name { ... }` blocks (such as `#[cfg(test)] mod tests`) belong to their file.
  * Comments, doc comments, string, byte-string, raw-string and char literals are
    removed first, so paths written in them do not count (lifetimes are not chars).
  * Paths come from `use` trees (grouped, nested, renamed, globbed, `pub use`, ...) and
    from paths written in code (`crate::a::f()`, `super::X`, `self::y::Z`, and
    `child::f()` where `child` is a `mod child;` declared in the same file).
  * `crate::` is the crate root, each `super::` goes up one module from where it is
    written (in an inline `mod tests` of `x/y.rs`, `super` is `crate::x::y` itself),
    `self::` is the current module. Paths of other crates (std, serde, ...) are ignored.
  * A path names the module of the LONGEST prefix that is a module file:
    `crate::sandbox::Strategy` names `crate::sandbox`. A module naming itself is no edge.
  * `mod child;` is not an edge (owning is not importing); but a parent that uses or
    re-exports a child's items (`pub use child::Thing;`) has an edge to the child, and
    a child that names its parent's items (`use super::Thing;`) has one to the parent,
    so a `mod.rs` that re-exports from a child that uses `super::` is a cycle, on purpose.

Rooms: the same imports, between the crate root's children (`crate::api` stands for every
module under `api/`; lib.rs, the index, is none). Two rooms that import each other through
different files make no module cycle, yet the layers are gone: that fails too (checked once
the modules have no cycle, since a module cycle is already a room cycle or lies within one).

Cycles are the strongly connected components of that graph (Tarjan). For every knot of
modules the script prints cycles through it, one per line as `a -> b -> a`: every pair
of modules that import each other directly, and a shortest cycle through each other
module of the knot, so every module that is part of the knot shows up at least once.
A `mod x;` whose file is missing (rustc would refuse it; seen mid-move) is reported on
stderr, and paths into it count as its parent's. It exits 1 if there is any cycle, 0 if
none, 2 on a usage error. Standard library only.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections import deque
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field

# --------------------------------------------------------------------------------------
# Lexing: Rust source to a list of tokens, without comments and literals.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tok:
    kind: str  # "id" (identifier or keyword, `$crate` included) or "p" (punctuation)
    text: str
    line: int


def _is_id_start(c: str) -> bool:
    return c == "_" or c.isalpha()


def _is_id_char(c: str) -> bool:
    return c == "_" or c.isalnum()


def tokenize(src: str) -> list[Tok]:
    """Identifiers and punctuation of `src`; comments, literals, numbers and lifetimes dropped."""
    toks: list[Tok] = []
    i, n, line = 0, len(src), 1

    def skip_quoted(j: int) -> int:
        """`j` is just after an opening `"`; returns the index just after the closing one."""
        nonlocal line
        while j < n:
            c = src[j]
            if c == "\\":
                if j + 1 < n and src[j + 1] == "\n":
                    line += 1
                j += 2
                continue
            if c == "\n":
                line += 1
            elif c == '"':
                return j + 1
            j += 1
        return n

    def skip_raw(j: int) -> int:
        """`j` is at the `#`s or `"` after an `r`/`br`/`cr` prefix; returns the index after the literal."""
        nonlocal line
        hashes = 0
        while j < n and src[j] == "#":
            hashes += 1
            j += 1
        j += 1  # the opening quote
        closing = '"' + "#" * hashes
        end = src.find(closing, j)
        end = n if end < 0 else end + len(closing)
        line += src.count("\n", j, end)
        return end

    def skip_char(j: int) -> int | None:
        """`j` is at a `'`. The index after the char literal there, or None if it is a lifetime/label."""
        if j + 1 < n and src[j + 1] == "\\":
            end = src.find("'", j + 3)  # j+2 is the escaped character itself (maybe a quote)
            return n if end < 0 else end + 1
        if j + 2 < n and src[j + 2] == "'" and src[j + 1] != "\n":
            return j + 3
        return None

    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif src.startswith("//", i):
            end = src.find("\n", i)
            i = n if end < 0 else end
        elif src.startswith("/*", i):
            depth, i = 1, i + 2  # Rust block comments nest
            while i < n and depth:
                if src.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif src.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if src[i] == "\n":
                        line += 1
                    i += 1
        elif c == '"':
            i = skip_quoted(i + 1)
        elif c == "'":
            end = skip_char(i)
            if end is not None:
                i = end
            else:  # lifetime or loop label: `'a`, `'static`, `'outer:`
                i += 1
                while i < n and _is_id_char(src[i]):
                    i += 1
        elif c.isdigit():
            while i < n and (_is_id_char(src[i])):
                i += 1
        elif _is_id_start(c):
            j = i
            while j < n and _is_id_char(src[j]):
                j += 1
            word, nxt = src[i:j], src[j] if j < n else ""
            if word in ("r", "br", "cr") and (nxt == '"' or (nxt == "#" and _raw_string_follows(src, j))):
                i = skip_raw(j)
            elif word in ("b", "c") and nxt == '"':
                i = skip_quoted(j + 1)
            elif word == "b" and nxt == "'":
                end = skip_char(j)
                i = end if end is not None else j + 1
            elif word == "r" and nxt == "#" and j + 1 < n and _is_id_start(src[j + 1]):
                k = j + 1  # raw identifier r#type
                while k < n and _is_id_char(src[k]):
                    k += 1
                toks.append(Tok("id", src[j + 1 : k], line))
                i = k
            else:
                toks.append(Tok("id", word, line))
                i = j
        elif c == "$" and src.startswith("$crate", i) and not (i + 6 < n and _is_id_char(src[i + 6])):
            toks.append(Tok("id", "$crate", line))
            i += 6
        elif src.startswith("::", i):
            toks.append(Tok("p", "::", line))
            i += 2
        else:
            toks.append(Tok("p", c, line))
            i += 1
    return toks


def _raw_string_follows(src: str, j: int) -> bool:
    while j < len(src) and src[j] == "#":
        j += 1
    return j < len(src) and src[j] == '"'


# --------------------------------------------------------------------------------------
# Collecting the paths a file names.
# --------------------------------------------------------------------------------------

PATH_ROOTS = ("crate", "$crate", "super", "self")


@dataclass
class Ref:
    scope: tuple[str, ...]  # logical module where the path is written (inline mods included)
    path: list[str]  # segments as written
    line: int
    children: list[tuple[tuple[str, ...], frozenset[str]]]  # (scope, its child mods), innermost first


def _parse_use_tree(toks: list[Tok], i: int, prefix: list[str], out: list[tuple[list[str], int]]) -> int:
    """Parse one use tree at toks[i]; append (path, line) for each leaf; return the index after it."""
    n = len(toks)
    path = list(prefix)
    if i < n and toks[i].text == "::":  # `use ::std::x` — another crate
        path.append("::")
        i += 1
    while i < n:
        t = toks[i]
        if t.kind == "id":
            path.append(t.text)
            i += 1
            if i < n and toks[i].text == "::":
                i += 1
                continue
            if i < n and toks[i].text == "as":
                i += 2  # `as name` / `as _`
            out.append((path, t.line))
            return i
        if t.text == "*":
            out.append((path, t.line))
            return i + 1
        if t.text == "{":
            i += 1
            while i < n and toks[i].text != "}":
                if toks[i].text == ",":
                    i += 1
                    continue
                before = i
                i = _parse_use_tree(toks, i, path, out)
                if i == before:  # malformed; do not loop forever
                    i += 1
            return i + 1
        return i  # unexpected token: end of tree
    return i


def collect_refs(toks: list[Tok], file_module: tuple[str, ...]) -> tuple[list[Ref], list[tuple[tuple[str, ...], int]]]:
    """Every crate-relative path written in one file, with the scope it is written in; and the
    `mod x;` declarations (module path, line) of the file, so that missing files can be reported."""
    refs: list[Ref] = []
    decls: list[tuple[tuple[str, ...], int]] = []
    n = len(toks)

    # First pass: which child modules each scope declares (`mod x;` or inline `mod x {`).
    children: dict[tuple[str, ...], set[str]] = {file_module: set()}
    stack: list[tuple[str, int]] = []  # inline mods: (name, brace depth inside it)
    depth = 0
    for k, t in enumerate(toks):
        if t.text == "{":
            depth += 1
        elif t.text == "}":
            depth -= 1
            while stack and depth < stack[-1][1]:
                stack.pop()
        elif t.kind == "id" and t.text == "mod" and k + 2 < n and toks[k + 1].kind == "id":
            scope = file_module + tuple(name for name, _ in stack)
            children.setdefault(scope, set()).add(toks[k + 1].text)
            if toks[k + 2].text == ";" and not _after_path_attr(toks, k):
                decls.append((scope + (toks[k + 1].text,), t.line))
            if toks[k + 2].text == "{":
                stack.append((toks[k + 1].text, depth + 1))
                children.setdefault(scope + (toks[k + 1].text,), set())

    def chain(scope: tuple[str, ...]) -> list[tuple[tuple[str, ...], frozenset[str]]]:
        # Innermost scope first, outward to the file's module (an inline `mod tests` with
        # `use super::*;` sees its file's children too).
        out = []
        while len(scope) >= len(file_module):
            out.append((scope, frozenset(children.get(scope, ()))))
            scope = scope[:-1]
        return out

    # Second pass: use trees and inline paths.
    stack, depth, k = [], 0, 0
    while k < n:
        t = toks[k]
        scope = file_module + tuple(name for name, _ in stack)
        if t.text == "{":
            depth += 1
        elif t.text == "}":
            depth -= 1
            while stack and depth < stack[-1][1]:
                stack.pop()
        elif t.kind == "id" and t.text == "mod" and k + 2 < n and toks[k + 1].kind == "id":
            if toks[k + 2].text == "{":
                stack.append((toks[k + 1].text, depth + 1))
            k += 2  # `mod x;` is not an import; the `{` of `mod x {` is seen next round
            continue
        elif t.kind == "id" and t.text == "use" and (k == 0 or toks[k - 1].text != "::"):
            leaves: list[tuple[list[str], int]] = []
            k = _parse_use_tree(toks, k + 1, [], leaves)
            ch = chain(scope)
            for path, line in leaves:
                if path and path[-1] == "self":  # `use a::b::{self, X}`
                    path = path[:-1]
                if path:
                    refs.append(Ref(scope, path, line, ch))
            continue
        elif t.kind == "id" and k + 2 < n and toks[k + 1].text == "::" and toks[k + 2].kind == "id":
            prev = toks[k - 1].text if k else ""
            is_vis = prev == "in" and k >= 3 and toks[k - 2].text == "(" and toks[k - 3].text == "pub"
            ch = chain(scope)
            if prev != "::" and not is_vis and (t.text in PATH_ROOTS or any(t.text in c for _, c in ch)):
                path, j = [t.text], k + 1
                while j + 1 < n and toks[j].text == "::" and toks[j + 1].kind == "id":
                    path.append(toks[j + 1].text)
                    j += 2
                refs.append(Ref(scope, path, t.line, ch))
                k = j
                continue
        k += 1
    return refs, decls


def _after_path_attr(toks: list[Tok], k: int) -> bool:
    """Whether the `mod` at toks[k] (after an optional visibility) carries a `#[path = ...]` attribute."""
    j = k - 1
    if j >= 0 and toks[j].text == ")":  # pub(crate) / pub(super) / pub(in ...)
        while j >= 0 and toks[j].text != "(":
            j -= 1
        j -= 1
    if j >= 0 and toks[j].text == "pub":
        j -= 1
    # attributes, innermost last: `# [ ... ]`, strings already gone
    while j >= 0 and toks[j].text == "]":
        depth, j = 1, j - 1
        while j >= 0 and depth:
            depth += {"]": 1, "[": -1}.get(toks[j].text, 0)
            j -= 1
        if j + 2 < len(toks) and toks[j + 2].text == "path":
            return True
        if j >= 0 and toks[j].text == "#":
            j -= 1
        else:
            break
    return False


def resolve(ref: Ref) -> tuple[str, ...] | None:
    """The absolute path (starting with "crate") that `ref` names, or None for other crates."""
    path, first = ref.path, ref.path[0]
    if first in ("crate", "$crate"):
        return ("crate",) + tuple(path[1:])
    if first in ("super", "self"):
        base, i = ref.scope, 0
        while i < len(path) and path[i] in ("super", "self"):
            if path[i] == "super":
                if len(base) <= 1:
                    return None  # `super` of the crate root: not valid Rust
                base = base[:-1]
            i += 1
        return base + tuple(path[i:])
    for scope, names in ref.children:
        if first in names:
            return scope + tuple(path)
    return None


# --------------------------------------------------------------------------------------
# The crate: module files, edges, cycles.
# --------------------------------------------------------------------------------------


@dataclass
class Graph:
    modules: dict[str, str] = field(default_factory=dict)  # module path -> file (relative)
    edges: dict[str, set[str]] = field(default_factory=dict)
    where: dict[tuple[str, str], tuple[str, int, str]] = field(default_factory=dict)  # first sighting
    missing: list[str] = field(default_factory=list)  # `mod x;` without a file (rustc would refuse)

    @property
    def n_edges(self) -> int:
        return sum(len(v) for v in self.edges.values())


def module_of(rel: str) -> tuple[str, ...] | None:
    parts = rel.replace(os.sep, "/").split("/")
    if parts == ["main.rs"] or parts[0] == "bin":
        return None  # the binary crate
    if parts == ["lib.rs"]:
        return ("crate",)
    stem = parts[-1][: -len(".rs")]
    mod = parts[:-1] if stem == "mod" else parts[:-1] + [stem]
    return ("crate",) + tuple(mod)


def build_graph(src_dir: str) -> Graph:
    g = Graph()
    files: list[tuple[str, tuple[str, ...]]] = []
    for root, dirs, names in os.walk(src_dir):
        dirs.sort()
        for name in sorted(names):
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, name), src_dir)
            mod = module_of(rel)
            if mod is None:
                continue
            key = "::".join(mod)
            if key in g.modules:
                print(f"warning: {rel} and {g.modules[key]} are both {key}", file=sys.stderr)
                continue
            g.modules[key] = rel
            files.append((rel, mod))
    for key in g.modules:
        g.edges[key] = set()
    for rel, mod in files:
        with open(os.path.join(src_dir, rel), encoding="utf-8") as f:
            src = f.read()
        this = "::".join(mod)
        refs, decls = collect_refs(tokenize(src), mod)
        for decl, line in decls:
            if "::".join(decl) not in g.modules:
                g.missing.append(f"{rel}:{line} declares `mod {decl[-1]};` but there is no file for {'::'.join(decl)}")
        for ref in refs:
            target = resolve(ref)
            if target is None:
                continue
            for cut in range(len(target), 0, -1):  # longest prefix that is a module file
                key = "::".join(target[:cut])
                if key in g.modules:
                    break
            else:
                continue
            if key != this:
                g.edges[this].add(key)
                g.where.setdefault((this, key), (rel, ref.line, "::".join(ref.path)))
    return g


def tarjan(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components, iteratively (no recursion limit to hit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    sccs: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                sccs.append(sorted(comp))
    return sccs


def shortest_cycle_through(v: str, members: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest cycle v -> ... -> v inside `members` (BFS); [] if there is none."""
    prev: dict[str, str] = {}
    queue = deque([v])
    seen = {v}
    while queue:
        u = queue.popleft()
        for w in sorted(edges[u]):
            if w not in members:
                continue
            if w == v:
                path = [u]
                while path[-1] != v:
                    path.append(prev[path[-1]])
                return path[::-1]
            if w not in seen:
                seen.add(w)
                prev[w] = u
                queue.append(w)
    return []


def _canonical(cycle: list[str]) -> tuple[str, ...]:
    k = cycle.index(min(cycle))
    return tuple(cycle[k:] + cycle[:k])


def find_cycles(g: Graph) -> list[list[str]]:
    """For every knot: each pair that imports each other, plus a shortest cycle through each other member."""
    found: list[tuple[str, ...]] = []
    for comp in tarjan(sorted(g.modules), g.edges):
        if len(comp) < 2:
            continue
        members = set(comp)
        mine: dict[tuple[str, ...], None] = {}
        for a in comp:
            for b in sorted(g.edges[a]):
                if a < b and b in members and a in g.edges[b]:
                    mine[(a, b)] = None
        covered = {m for c in mine for m in c}
        for v in comp:
            if v not in covered:
                cyc = _canonical(shortest_cycle_through(v, members, g.edges))
                mine.setdefault(cyc, None)
                covered.update(cyc)
        found.extend(sorted(mine, key=lambda c: (len(c), c)))
    return [list(c) for c in found]


def rooms(g: Graph) -> Graph:
    """The same imports between rooms: the crate root's children (`crate::api` holds
    `crate::api::table`, ...). The root itself (lib.rs, the index) is no room."""

    def room(m: str) -> str | None:
        parts = m.split("::")
        return "::".join(parts[:2]) if len(parts) > 1 else None

    r = Graph()
    for m in g.modules:
        if room(m):
            r.modules.setdefault(room(m), "")
            r.edges.setdefault(room(m), set())
    for a, bs in g.edges.items():
        for b in bs:
            ra, rb = room(a), room(b)
            if ra and rb and ra != rb:
                r.edges[ra].add(rb)
                r.where.setdefault((ra, rb), g.where[(a, b)])
    return r


def check(src_dir: str, verbose: bool = False) -> int:
    g = build_graph(src_dir)
    if not g.modules:
        print(f"error: no Rust module files under {src_dir}", file=sys.stderr)
        return 2
    for msg in g.missing:
        print(f"warning: {msg}; paths into it count as its parent", file=sys.stderr)
    cycles = find_cycles(g)
    r = rooms(g)
    # Module cycles first: each one is a room cycle too, or lies within one room.
    room_cycles = [] if cycles else find_cycles(r)
    if not cycles and not room_cycles:
        print(f"no import cycle among {len(g.modules)} modules ({g.n_edges} imports), nor among their {len(r.modules)} rooms")
        return 0
    for graph, found, what in ((g, cycles, "modules"), (r, room_cycles, "rooms (top-level folders and files)")):
        for cyc in found:
            print(" -> ".join(cyc + [cyc[0]]))
            if verbose:
                for a, b in zip(cyc, cyc[1:] + cyc[:1]):
                    rel, line, text = graph.where[(a, b)]
                    print(f"    {a} -> {b}: {rel}:{line} names {text}")
        if found:
            print(f"{len(found)} import cycle(s): the {what} above import each other")
    return 1


# --------------------------------------------------------------------------------------
# Self-test.
# --------------------------------------------------------------------------------------


def _make_crate(root: str, files: dict[str, str]) -> str:
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return root


def self_test() -> int:
    checks: list[tuple[str, dict[str, str], object]] = []

    def edges_of(g: Graph) -> set[tuple[str, str]]:
        return {(a, b) for a, bs in g.edges.items() for b in bs}

    # (1) A tree with no cycle passes (inline test modules' `super::*` is no edge upward,
    # `super` in x/mod.rs is the crate root, `mod` declarations are no edges).
    tree = {
        "lib.rs": "pub mod a;\npub mod b;\npub mod c;\npub use a::Top;\n",
        "main.rs": "use sandgate::a::Top;\nfn main() { sandgate::b::run(); }\n",
        "a.rs": "use crate::b::X;\nuse crate::c::d::Y;\npub struct Top;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
        "b.rs": "pub struct X;\npub fn run() {}\n",
        "c/mod.rs": "pub mod d;\nuse super::b;\n",
        "c/d.rs": "pub struct Y;\nfn f() -> std::io::Result<()> { Ok(()) }\n",
    }

    def t1(g: Graph, cycles, code, out):
        want = {("crate", "crate::a"), ("crate::a", "crate::b"), ("crate::a", "crate::c::d"), ("crate::c", "crate::b")}
        assert code == 0 and not cycles, f"expected a pass, got exit {code}: {out!r}"
        assert edges_of(g) == want, f"edges {sorted(edges_of(g))} != {sorted(want)}"
        assert out == "no import cycle among 5 modules (4 imports), nor among their 3 rooms\n", repr(out)

    checks.append(("(1) a tree with no cycle passes", tree, t1))

    # (2) A two-file cycle fails and names both modules.
    two = {
        "lib.rs": "pub mod a;\npub mod b;\n",
        "a.rs": "use crate::b::X;\npub struct Y;\n",
        "b.rs": "pub struct X;\npub fn f() -> crate::a::Y { crate::a::Y }\n",
    }

    def t2(g, cycles, code, out):
        assert code == 1, f"expected exit 1, got {code}"
        assert cycles == [["crate::a", "crate::b"]], f"cycles {cycles}"
        assert out.splitlines() == [
            "crate::a -> crate::b -> crate::a",
            "1 import cycle(s): the modules above import each other",
        ], repr(out)

    checks.append(("(2) a two-file cycle fails and names both", two, t2))

    # (3) Parent/child cycle: mod.rs re-exports from a child that says `use super::...`.
    parent = {
        "lib.rs": "pub mod x;\n",
        "x/mod.rs": "pub mod y;\npub mod z;\npub use y::Thing;\npub struct Other;\n",
        "x/y.rs": "use super::Other;\npub struct Thing;\n",
        "x/z.rs": "pub fn f() {}\n",
    }

    def t3(g, cycles, code, out):
        assert code == 1, f"expected exit 1, got {code}"
        assert cycles == [["crate::x", "crate::x::y"]], f"cycles {cycles}"
        assert ("crate::x", "crate::x::z") not in edges_of(g), "`pub mod z;` counted as an import"

    checks.append(("(3) a parent/child cycle through super:: and pub use fails", parent, t3))

    # (4) Paths inside comments, doc comments and literals are no edges; lifetimes and
    # char literals do not swallow the code after them.
    literals = {
        "lib.rs": "pub mod a;\npub mod b;\npub mod c;\n",
        "a.rs": (
            "//! see crate::b\n"
            "// crate::b::X\n"
            "/* crate::b /* nested crate::b */ still a comment crate::b */\n"
            "/// [`crate::b::X`]\n"
            "#[doc = \"crate::b::X\"]\n"
            "pub fn f<'a>(s: &'a str) -> &'a str {\n"
            "    let _ = \"crate::b::X and \\\" crate::b\";\n"
            "    let _ = r\"crate::b\";\n"
            "    let _ = r#\"crate::b \" crate::b\"#;\n"
            "    let _ = b\"crate::b\";\n"
            "    let _ = ['\"', '\\'', 'x', '\\u{22}'];\n"
            "    let _ = \"crate::b\";\n"
            "    'outer: loop { break 'outer; }\n"
            "    crate::c::g();\n"
            "    s\n"
            "}\n"
        ),
        "b.rs": "pub struct X;\nuse crate::a::f;\n",
        "c.rs": "pub fn g() {}\n",
    }

    def t4(g, cycles, code, out):
        assert ("crate::a", "crate::b") not in edges_of(g), "a comment or string made an edge a -> b"
        assert ("crate::a", "crate::c") in edges_of(g), "the code after a lifetime / char literal was lost"
        assert code == 0 and not cycles, f"expected a pass, got exit {code}: {out!r}"

    checks.append(("(4) paths in comments and strings are no edges", literals, t4))

    # (5) Grouped and nested use trees; the longest existing module wins.
    grouped = {
        "lib.rs": "pub mod a;\npub mod b;\npub mod m;\n",
        "a.rs": "pub struct X;\n",
        "b/mod.rs": "pub mod c;\n",
        "b/c.rs": "pub struct Y;\n",
        "m.rs": "use crate::{a::X, b::{c::Y}};\n",
    }

    def t5(g, cycles, code, out):
        got = {b for a, b in edges_of(g) if a == "crate::m"}
        assert got == {"crate::a", "crate::b::c"}, f"edges from crate::m: {sorted(got)}"

    checks.append(("(5) grouped use yields crate::a and crate::b::c", grouped, t5))

    # (6) Other forms: pub(crate) use, renames, globs, `self`, `super::super`, child paths,
    # $crate, raw identifiers, and `pub(in crate::x)` (a visibility, not an import).
    forms = {
        "lib.rs": "pub mod p;\npub mod q;\nmacro_rules! m { () => { $crate::q::go() } }\n",
        "p/mod.rs": "mod k;\nfn f() { k::run(); }\n",
        "p/k.rs": "pub(crate) use super::super::q::{self as qq, *};\npub(in crate::p) fn run() {}\n",
        "q.rs": "pub fn go() {}\nfn r#type() { self::go() }\n",
    }

    def t6(g, cycles, code, out):
        want = {("crate", "crate::q"), ("crate::p", "crate::p::k"), ("crate::p::k", "crate::q")}
        assert edges_of(g) == want, f"edges {sorted(edges_of(g))} != {sorted(want)}"

    checks.append(("(6) other use forms resolve", forms, t6))

    # (7) A longer knot: every module in it is reported, each line is a real cycle.
    knot = {
        "lib.rs": "pub mod a;\npub mod b;\npub mod c;\npub mod d;\n",
        "a.rs": "use crate::b::X;\n",
        "b.rs": "use crate::c::X;\nuse crate::a::X;\n",
        "c.rs": "use crate::d::X;\n",
        "d.rs": "use crate::b::X;\n",
    }

    def t7(g, cycles, code, out):
        assert code == 1, f"expected exit 1, got {code}"
        assert cycles == [["crate::a", "crate::b"], ["crate::b", "crate::c", "crate::d"]], f"cycles {cycles}"
        for cyc in cycles:
            for x, y in zip(cyc, cyc[1:] + cyc[:1]):
                assert y in g.edges[x], f"{x} -> {y} is not an edge"

    checks.append(("(7) every module of a larger knot is named", knot, t7))

    # (8) A `mod x;` without its file is reported (paths into it fall back to the parent);
    # one with a `#[path]` attribute is not.
    missing = {
        "lib.rs": "pub mod a;\npub mod gone;\n#[path = \"elsewhere.rs\"]\nmod moved;\n",
        "a.rs": "use crate::gone::X;\n",
    }

    def t8(g, cycles, code, out):
        assert g.missing == ["lib.rs:2 declares `mod gone;` but there is no file for crate::gone"], f"{g.missing}"
        assert edges_of(g) == {("crate::a", "crate")}, f"edges {sorted(edges_of(g))}"

    checks.append(("(8) a declared module without a file is reported", missing, t8))

    # (9) Two rooms that import each other through different files: no module cycle, but a
    # room cycle (`a::x` needs `b::y`, which needs `a::z`).
    knot = {
        "lib.rs": "pub mod a;\npub mod b;\n",
        "a/mod.rs": "pub mod x;\npub mod z;\n",
        "a/x.rs": "use crate::b::y::Q;\n",
        "a/z.rs": "pub struct Z;\n",
        "b/mod.rs": "pub mod y;\n",
        "b/y.rs": "pub struct Q;\npub fn f() -> crate::a::z::Z { crate::a::z::Z }\n",
    }

    def t9(g, cycles, code, out):
        assert not cycles, f"no module cycle expected: {cycles}"
        assert code == 1, f"expected a failure, got exit {code}: {out!r}"
        assert "crate::a -> crate::b -> crate::a" in out and "the rooms" in out, repr(out)

    checks.append(("(9) rooms that import each other fail", knot, t9))

    passed = 0
    for name, files, test in checks:
        with tempfile.TemporaryDirectory(prefix="check_cycles_") as tmp:
            src = _make_crate(tmp, files)
            try:
                g = build_graph(src)
                cycles = find_cycles(g)
                buf = io.StringIO()
                with redirect_stdout(buf), redirect_stderr(io.StringIO()):
                    code = check(src)
                test(g, cycles, code, buf.getvalue())
            except AssertionError as e:
                print(f"self-test: check {name} FAILED: {e}")
                return 1
        passed += 1
    print(f"self-test: {passed} checks passed")
    return 0


def main(argv: list[str]) -> int:
    args = [a for a in argv if a not in ("-v", "--verbose")]
    verbose = len(args) != len(argv)
    if args == ["--self-test"]:
        return self_test()
    if len(args) != 1 or args[0].startswith("-"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    if not os.path.isdir(args[0]):
        print(f"error: {args[0]} is not a directory", file=sys.stderr)
        return 2
    return check(args[0], verbose)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
