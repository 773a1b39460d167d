#!/usr/bin/env python3
"""No import cycles: between the workspace's crates, and between the
modules of each crate.

    python3 scripts/check-cycles.py [-v]

Crates: the graph of `[dependencies]` between workspace members (cargo
refuses a cycle there, but a dev-dependency can close one; this checks
normal dependencies only, as a cycle among them would make layering a lie).

Modules: for each module of each crate (the crate root included), its child
modules are nodes; an edge A -> B says code in A's subtree names an item of
B's subtree, through `crate::`, `super::` or `self::` paths, `use` trees
included, and through the items a parent re-exports (`pub use b::X` in the
parent makes `crate::X` a use of `b`). A module naming its own ancestor
(`super::Error`) is not an edge between siblings, and `#[cfg(test)] mod
tests` blocks are left out: tests may reach anywhere. Prints every cycle
(as a strongly connected component) and exits 1 if there is one.
"""

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from rust_sources import IDENT, blank_test_modules  # noqa: E402


def workspace_crates():
    """(package name, crate dir, [source roots]) of every member and the root binary."""
    manifest = tomllib.loads((ROOT / "Cargo.toml").read_text())
    crates = []
    for member in manifest["workspace"]["members"]:
        d = ROOT / member
        m = tomllib.loads((d / "Cargo.toml").read_text())
        crates.append((m["package"]["name"], d, m))
    crates.append((manifest["package"]["name"], ROOT, manifest))
    return crates


def crate_cycles(crates):
    names = {name for name, _, _ in crates}
    graph = {}
    for name, _, m in crates:
        deps = m.get("dependencies", {})
        out = set()
        for key, spec in deps.items():
            package = spec.get("package", key) if isinstance(spec, dict) else key
            if isinstance(spec, dict) and spec.get("workspace"):
                ws = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["dependencies"].get(key, {})
                package = ws.get("package", key) if isinstance(ws, dict) else key
            if package in names and package != name:
                out.add(package)
        graph[name] = out
    return graph, [c for c in sccs(graph) if len(c) > 1]


def strip_tests_and_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return blank_test_modules(text)


def expand_use_tree(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = re.sub(r"\s+", "", tree)
    tree = re.sub(r"\bas" + IDENT, "", tree)

    def expand(s):
        if "{" not in s:
            return [s]
        k = s.index("{")
        prefix, body = s[:k], s[k + 1 : s.rindex("}")]
        parts, depth, cur = [], 0, ""
        for ch in body:
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += {"{": 1, "}": -1}.get(ch, 0)
            cur += ch
        parts.append(cur)
        return [p for part in parts if part for p in expand(prefix + part)]

    return expand(tree)


class Crate:
    def __init__(self, name, root_file):
        self.name = name
        self.files = {}  # module path tuple -> source text (tests stripped)
        self.reexports = {}  # module path -> {name: child module}
        self.load(root_file, ())

    def load(self, file, path):
        text = strip_tests_and_comments(file.read_text())
        self.files[path] = text
        is_dir_owner = file.name in ("lib.rs", "main.rs", "mod.rs")
        base = file.parent if is_dir_owner else file.parent / file.stem
        children = set()
        for m in re.finditer(r"(?:^|\n)\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", text):
            child = m.group(1)
            children.add(child)
            for candidate in (base / f"{child}.rs", base / child / "mod.rs"):
                if candidate.exists():
                    self.load(candidate, path + (child,))
                    break
        exports = {}
        for m in re.finditer(r"pub(?:\([^)]*\))?\s+use\s+([^;]+);", text):
            for p in expand_use_tree(m.group(1)):
                segs = [s for s in p.split("::") if s not in ("self",)]
                if segs and segs[0] in children and len(segs) > 1:
                    exports[segs[-1]] = segs[0]
        self.reexports[path] = exports

    def resolve(self, module, segs):
        """A path as used in `module` -> the module path it reaches (longest known prefix)."""
        if not segs:
            return None
        if segs[0] == "crate":
            base, rest = (), segs[1:]
        elif segs[0] == "super":
            base, rest = module, segs
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
        elif segs[0] == "self":
            base, rest = module, segs[1:]
        else:
            return None
        target = base
        for s in rest:
            if target + (s,) in self.files:
                target = target + (s,)
            elif s in self.reexports.get(target, {}):
                target = target + (self.reexports[target][s],)
            else:
                break
        return target

    def edges(self):
        """(from module, to module) for every path that names another module."""
        found = set()
        path_re = re.compile(r"\b((?:crate|super|self)(?:::" + IDENT + r")+)")
        for module, text in self.files.items():
            paths = []
            for m in re.finditer(r"\buse\s+([^;]+);", text):
                paths += expand_use_tree(m.group(1))
            paths += [m.group(1) for m in path_re.finditer(text)]
            for p in paths:
                target = self.resolve(module, p.split("::"))
                if target is not None and target != module:
                    found.add((module, target))
        return found

    def sibling_cycles(self):
        """For each parent module: cycles among its children."""
        graphs = {}
        for src, dst in self.edges():
            # The deepest common ancestor; the two children of it on each side.
            k = 0
            while k < min(len(src), len(dst)) and src[k] == dst[k]:
                k += 1
            if k == len(src) or k == len(dst):
                continue  # an ancestor and its descendant
            parent = src[:k]
            graphs.setdefault(parent, {}).setdefault(src[k], set()).add(dst[k])
        cycles = []
        for parent, graph in sorted(graphs.items()):
            for c in sccs(graph):
                if len(c) > 1:
                    cycles.append((parent, sorted(c), graph))
        return cycles, graphs


def sccs(graph):
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    nodes = set(graph) | {d for ds in graph.values() for d in ds}

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    verbose = "-v" in sys.argv
    crates = workspace_crates()
    failed = False
    graph, cycles = crate_cycles(crates)
    for c in cycles:
        failed = True
        print(f"crate cycle: {' <-> '.join(sorted(c))}")
    if verbose:
        for name in sorted(graph):
            print(f"{name} -> {', '.join(sorted(graph[name])) or '-'}")
    modules = 0
    for name, d, m in crates:
        roots = []
        if (d / "src/lib.rs").exists():
            roots.append(("lib", d / "src/lib.rs"))
        if (d / "src/main.rs").exists():
            roots.append(("bin", d / "src/main.rs"))
        for kind, root_file in roots:
            crate = Crate(name, root_file)
            modules += len(crate.files)
            cyc, graphs = crate.sibling_cycles()
            for parent, comp, g in cyc:
                failed = True
                where = "::".join(parent) or "(root)"
                print(f"module cycle in {name} ({kind}) under {where}:")
                for a in comp:
                    print(f"    {a} -> {', '.join(sorted(b for b in g[a] if b in comp))}")
    if failed:
        sys.exit(1)
    print(f"no cycles: {len(crates)} crates, {modules} modules")


if __name__ == "__main__":
    main()
