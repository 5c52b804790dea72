#!/usr/bin/env python3
"""Checks that the daemon's top-level modules (src/<module>/ and src/<module>.rs) import each
other one way: builds the graph of `crate::<module>` references between them, comments and doc
comments ignored, and exits 1 naming every cycle it finds (each strongly connected component of
more than one module, with one cycle through it and the references that make it).

It also checks the stack drawn in docs/architecture.md: each module has a level in STACK below,
and a module may import only modules of its own level or lower ones (within a level, the cycle
check keeps the imports one way). A new top-level module must be given a level here.

Usage: hack/module-cycles.py [SRC_DIR] [--graph]
  SRC_DIR  the crate's source directory (default: src/ beside this script's parent)
  --graph  also print every edge, `from -> to (file:line, ...)`

Python 3 standard library only. Strings and character literals are blanked before matching, so
`"crate::x"` in a message is not a reference; `use crate::{a, b::c}` counts a and b.
"""

import os
import re
import sys
from collections import defaultdict

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"

# The stack, top first (docs/architecture.md, "Layers"): a module imports its own level or lower.
STACK = [
    ("entry points", ["cli", "daemon", "oci_cli"]),
    ("handlers and start-up", ["server", "streaming", "recovery", "error", "lifecycle",
                               "metrics"]),
    ("lifecycle", ["sandbox", "container"]),
    ("pod context and layers", ["pod", "layers"]),
    ("tables, names and paths", ["engine"]),
    ("records", ["store"]),
    ("leaves", ["runtimes", "image", "network", "oci", "monitor", "oci_runtime", "userns",
                "config", "reference", "api", "logging", "proc_info", "telemetry",
                "validate", "events", "heap", "phases"]),
]
LEVEL = {m: len(STACK) - i for i, (_, mods) in enumerate(STACK) for m in mods}
LEVEL_NAME = {len(STACK) - i: name for i, (name, _) in enumerate(STACK)}


def strip_comments_and_strings(text):
    """Blanks comments (line, doc, nested block), string and char literals, keeping newlines so
    line numbers stay right."""
    out = []
    i, n = 0, len(text)
    depth = 0  # block comment nesting
    while i < n:
        c = text[i]
        if depth:
            if text.startswith("/*", i):
                depth += 1
                i += 2
            elif text.startswith("*/", i):
                depth -= 1
                i += 2
            else:
                out.append("\n" if c == "\n" else " ")
                i += 1
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
            continue
        if text.startswith("/*", i):
            depth = 1
            i += 2
            continue
        # raw strings r"..", r#".."#, br#".."#
        m = re.match(r'b?r(#*)"', text[i:i + 300])
        if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
            continue
        if c == "'":
            # a char literal ('a', '\n', '\u{..}'), not a lifetime ('a)
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 16])
            if m:
                out.append(" " * m.end())
                i += m.end()
                continue
        out.append(c)
        i += 1
    return "".join(out)


def top_modules(src):
    mods = set()
    for entry in os.listdir(src):
        path = os.path.join(src, entry)
        if os.path.isdir(path):
            if os.path.exists(os.path.join(path, "mod.rs")):
                mods.add(entry)
        elif entry.endswith(".rs") and entry not in ("lib.rs", "main.rs"):
            mods.add(entry[:-3])
    return mods


def module_of(src, path):
    rel = os.path.relpath(path, src).split(os.sep)
    if len(rel) == 1:
        return rel[0][:-3]
    return rel[0]


def references(code):
    """(module, offset) for every `crate::<module>` and each head of `crate::{a, b::c}`."""
    for m in re.finditer(r"\bcrate\s*::\s*(\{|" + IDENT + ")", code):
        if m.group(1) != "{":
            yield m.group(1), m.start()
            continue
        # a grouped use: the first path segment of each top-level item of the braces
        depth, j, item_start = 1, m.end(), m.end()
        heads = []
        while j < len(code) and depth:
            ch = code[j]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if (ch == "," and depth == 1) or depth == 0:
                h = re.match(r"\s*(" + IDENT + ")", code[item_start:j])
                if h:
                    heads.append(h.group(1))
                item_start = j + 1
            j += 1
        for h in heads:
            yield h, m.start()


def build_graph(src):
    mods = top_modules(src)
    edges = defaultdict(lambda: defaultdict(list))  # from -> to -> [file:line]
    for root, _dirs, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            if os.path.relpath(path, src) in ("lib.rs", "main.rs"):
                continue
            origin = module_of(src, path)
            if origin not in mods:
                continue
            with open(path, encoding="utf-8") as fh:
                code = strip_comments_and_strings(fh.read())
            for target, offset in references(code):
                if target in mods and target != origin:
                    line = code.count("\n", 0, offset) + 1
                    edges[origin][target].append(
                        f"{os.path.relpath(path, src)}:{line}")
    return mods, edges


def strongly_connected(nodes, edges):
    """Tarjan's algorithm, iterative; components of more than one node."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def one_cycle(comp, edges):
    """A shortest cycle through the component's first module (breadth-first)."""
    members = set(comp)
    start = comp[0]
    prev = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(edges[node]):
            if nxt not in members:
                continue
            if nxt == start:
                path = [node]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if nxt not in prev:
                prev[nxt] = node
                queue.append(nxt)
    return comp + [start]


def main(argv):
    show_graph = "--graph" in argv
    args = [a for a in argv if not a.startswith("--")]
    src = args[0] if args else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "src")
    src = os.path.normpath(src)
    mods, edges = build_graph(src)
    if show_graph:
        for a in sorted(edges):
            for b in sorted(edges[a]):
                where = edges[a][b]
                print(f"{a} -> {b} ({', '.join(where[:3])}"
                      f"{', …' if len(where) > 3 else ''})")
    comps = strongly_connected(mods, edges)
    upward = [(a, b) for a in sorted(edges) for b in sorted(edges[a])
              if a in LEVEL and b in LEVEL and LEVEL[a] < LEVEL[b]]
    unplaced = sorted(m for m in mods if m not in LEVEL)
    for m in unplaced:
        print(f"module-cycles: the module `{m}` has no level in STACK (hack/module-cycles.py)")
    for a, b in upward:
        where = edges[a][b]
        print(f"module-cycles: `{a}` ({LEVEL_NAME[LEVEL[a]]}) imports `{b}` "
              f"({LEVEL_NAME[LEVEL[b]]}), a higher level: {', '.join(where[:4])}")
    if not comps:
        if unplaced or upward:
            return 1
        print(f"module-cycles: no import cycle between the {len(mods)} top-level modules of {src}"
              f", and each imports only its level or lower ones")
        return 0
    print(f"module-cycles: {len(comps)} import cycle(s) between top-level modules of {src}:")
    for comp in comps:
        cycle = one_cycle(comp, edges)
        print(f"  cycle: {' -> '.join(cycle)}   (modules involved: {', '.join(comp)})")
        for a, b in zip(cycle, cycle[1:]):
            where = edges[a][b]
            print(f"    {a} -> {b}: {', '.join(where[:4])}"
                  f"{f' (+{len(where) - 4} more)' if len(where) > 4 else ''}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
