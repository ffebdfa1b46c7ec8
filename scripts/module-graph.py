#!/usr/bin/env python3
"""The module graph of each crate (issue 19, "Measure").

For every workspace crate with a library, the top-level modules of
`src/` (a `foo.rs` or `foo/mod.rs` and everything below it) and which of
them each one names through `crate::<module>` or `super::<module>` in
non-test code. Prints each crate's cycles: groups of top-level modules
that reach each other (strongly connected components), with the edges
inside them, so one can judge whether a rename or a moved type would
remove the cycle. Exit status 0; it reports, it does not judge.

    scripts/module-graph.py            every crate
    scripts/module-graph.py host sim   those crates (directory names)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# `#[cfg(test)] mod tests { ... }` blocks are cut out (by brace depth).
CFG_TEST = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{")
# Paths that name a top-level module: crate::x, also inside `use crate::{x, y::z}`.
CRATE_PATH = re.compile(r"\bcrate::(\{[^;]*?\}|\w+)", re.S)
SUPER_PATH = re.compile(r"\bsuper::(\w+)")


def strip_tests(text: str) -> str:
    out, i = [], 0
    for m in CFG_TEST.finditer(text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def top_modules(src: Path) -> dict[str, list[Path]]:
    mods: dict[str, list[Path]] = {}
    for p in sorted(src.iterdir()):
        if p.suffix == ".rs" and p.stem not in ("lib", "main"):
            mods.setdefault(p.stem, []).append(p)
        elif p.is_dir() and p.name != "bin":
            files = sorted(p.rglob("*.rs"))
            if files:
                mods.setdefault(p.name, []).extend(files)
    return mods


def names(body: str) -> set[str]:
    found = set()
    for m in CRATE_PATH.finditer(body):
        g = m.group(1)
        if g.startswith("{"):
            # crate::{a, b::c, d::{e, f}}: the first segment of each item at depth 1
            depth, item = 0, ""
            for ch in g[1:-1] + ",":
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                if ch == "," and depth == 0:
                    first = item.strip().split("::")[0].strip()
                    if first:
                        found.add(first)
                    item = ""
                else:
                    item += ch
        else:
            found.add(g)
    return found


def graph(crate_dir: Path) -> dict[str, set[str]]:
    src = crate_dir / "src"
    mods = top_modules(src)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, files in mods.items():
        for f in files:
            body = strip_tests(strip_comments(f.read_text()))
            targets = names(body)
            # super:: from a top-level module's own file is the crate root.
            if f.parent == src or f == src / mod / "mod.rs":
                targets |= set(SUPER_PATH.findall(body))
            for t in targets:
                if t in mods and t != mod:
                    edges[mod].add(t)
    return edges


def sccs(edges: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    members = re.search(r"members\s*=\s*\[([^\]]*)\]", (ROOT / "Cargo.toml").read_text())
    crates = [c.strip().strip('"') for c in members.group(1).split(",") if c.strip()]
    if len(sys.argv) > 1:
        crates = [c for c in crates if c in sys.argv[1:]]
    total = 0
    for c in crates:
        d = ROOT / c
        if not (d / "src" / "lib.rs").exists():
            continue
        edges = graph(d)
        cycles = sccs(edges)
        total += len(cycles)
        n_edges = sum(len(v) for v in edges.values())
        print(f"{c}: {len(edges)} modules, {n_edges} edges, {len(cycles)} cycle(s)")
        for comp in cycles:
            print(f"  cycle: {' '.join(comp)}")
            for a in comp:
                inner = sorted(edges[a] & set(comp))
                if inner:
                    print(f"    {a} -> {', '.join(inner)}")
    print(f"total: {total} cycle(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
