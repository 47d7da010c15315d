"""The package reads from the top down: the import graph of ``ccdsl/`` against the layer order ARCHITECTURE.md
declares.

Every ``import`` and ``from … import`` of a ccdsl module counts, at module level or inside a function (a lazy import
is still a dependency), except those under ``if TYPE_CHECKING:``, which never run.  A module may import from its own
layer and the layers below it; the graph must have no circle.  ``KNOWN_CLIMBS`` lists the imports that still climb,
each with its reason; the test fails when one of them is gone (so the list only shrinks) and when a new one appears.
"""

from __future__ import annotations

import ast
import re
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ccdsl"

# Bottom first.  A pattern names a module, or a package's modules with ``.*``.  ARCHITECTURE.md's "Layers" section
# lists the same names in the same order (test_architecture_lists_the_layers).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundations", ("ccdsl.errors", "ccdsl.version", "ccdsl._resources", "ccdsl.datadir", "ccdsl.burstable",
                     "ccdsl.parameters", "ccdsl.fabric", "ccdsl.catalog.facts", "ccdsl.catalog.schema",
                     "ccdsl.catalog.shares", "ccdsl.catalog.freshness")),
    ("values", ("ccdsl.taxonomy", "ccdsl.contract", "ccdsl.resolution", "ccdsl.security")),
    ("language", ("ccdsl.language", "ccdsl.language.*")),
    ("catalog", ("ccdsl.catalog", "ccdsl.catalog.*")),
    ("resolver", ("ccdsl.resolver", "ccdsl.resolver.*")),
    ("executor values and records", ("ccdsl.executor.model", "ccdsl.executor.state", "ccdsl.executor.results",
                                     "ccdsl.executor._rank", "ccdsl.executor._hold", "ccdsl.executor._tree",
                                     "ccdsl.executor.lines",
                                     "ccdsl.executor.parallel", "ccdsl.executor.program", "ccdsl.executor.config",
                                     "ccdsl.executor.watchdog", "ccdsl.executor.shm")),
    ("transport and machines", ("ccdsl.executor.ssh", "ccdsl.executor.access", "ccdsl.executor.nodedir",
                                "ccdsl.executor.providers", "ccdsl.executor.providers.*")),
    ("services", ("ccdsl.executor.mpi", "ccdsl.executor.mpirun", "ccdsl.executor.fabric_check",
                  "ccdsl.executor.workdir", "ccdsl.executor.engines", "ccdsl.executor.guard",
                  "ccdsl.executor.cost")),
    ("facade", ("ccdsl.executor.lifecycle", "ccdsl.executor.cluster", "ccdsl.executor.deploy", "ccdsl.executor")),
    ("commands", ("ccdsl.commands", "ccdsl.commands.*")),
    ("entry points", ("ccdsl", "ccdsl.cli", "ccdsl.__main__")),
]

KNOWN_CLIMBS: dict[tuple[str, str], str] = {}


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_only(tree: ast.AST) -> set[int]:
    """The ids of import nodes under ``if TYPE_CHECKING:``."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skip.update(id(n) for n in ast.walk(inner))
    return skip


def imports(known: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the ccdsl modules it imports (``from pkg import name`` counts as pkg.name when that is a module)."""

    def owner(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_only(tree)
        found: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                found.update(t for a in node.names if a.name.startswith("ccdsl") and (t := owner(a.name)))
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("ccdsl"):
                found.update(t for a in node.names if (t := owner(f"{node.module}.{a.name}")))
        found.discard(module)
        graph[module] = found
    return graph


def layer_of(module: str) -> int:
    for rank, (_, patterns) in enumerate(LAYERS):
        if any(fnmatchcase(module, p) for p in patterns):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and to ARCHITECTURE.md")


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            advanced = False
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def climbs(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a)}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return imports(modules())


def test_every_module_has_a_layer(graph):
    for module in graph:
        layer_of(module)


def test_no_import_climbs_to_a_higher_layer(graph):
    new = sorted(climbs(graph) - set(KNOWN_CLIMBS))
    assert not new, "imports from a lower layer to a higher one: " + "; ".join(
        f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})" for a, b in new)


def test_known_climbs_still_exist(graph):
    """An entry whose import is gone must leave the list, so the list records what is left to do."""
    gone = sorted(set(KNOWN_CLIMBS) - climbs(graph))
    assert not gone, f"these imports no longer climb; remove them from KNOWN_CLIMBS: {gone}"


def test_no_circle_once_the_known_climbs_are_removed(graph):
    pruned = {a: {b for b in targets if (a, b) not in KNOWN_CLIMBS} for a, targets in graph.items()}
    assert circles(pruned) == []


def test_the_checker_sees_circles_and_climbs():
    """The graph code itself, on a package written for the purpose (so a broken walker cannot pass silently)."""
    known = {"ccdsl.errors", "ccdsl.executor.cluster", "ccdsl.executor.workdir", "ccdsl.language.parser"}
    g = {"ccdsl.executor.workdir": {"ccdsl.executor.cluster"}, "ccdsl.executor.cluster": {"ccdsl.executor.workdir"},
         "ccdsl.errors": set(), "ccdsl.language.parser": {"ccdsl.errors"}}
    assert set(g) == known
    assert circles(g) == [["ccdsl.executor.cluster", "ccdsl.executor.workdir"]]
    assert climbs(g) == {("ccdsl.executor.workdir", "ccdsl.executor.cluster")}


def test_imports_reads_lazy_imports_and_skips_type_checking(tmp_path):
    pkg = tmp_path / "ccdsl"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                      "    from ccdsl.sub import b\n\ndef f():\n    from ccdsl import errors\n")
    (pkg / "sub" / "b.py").write_text("import ccdsl.sub.a\n")
    g = imports(modules(pkg))
    assert g["ccdsl.sub.a"] == {"ccdsl.errors"}
    assert g["ccdsl.sub.b"] == {"ccdsl.sub.a"}


def test_architecture_lists_the_layers():
    """ARCHITECTURE.md's "Layers" section names every layer, bottom first, with the modules of LAYERS."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| ([^|]+?) \| ([^|]+?) \|", section, re.M)
    assert [(int(n), name.strip()) for n, name, _ in rows] == [(i, name) for i, (name, _) in enumerate(LAYERS)]
    for (_, _, listed), (_, patterns) in zip(rows, LAYERS):
        assert re.findall(r"`([^`]+)`", listed) == list(patterns)


def test_architecture_has_a_line_per_module():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("## Modules", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^- `([a-z_.]+)`: \S", section, re.M)
    assert sorted(listed) == sorted(modules()), "ARCHITECTURE.md's module list differs from ccdsl/"


KNOWN_PRIVATE_USES: dict[tuple[str, str], str] = {}


def private_uses(known: dict[str, Path]) -> set[tuple[str, str]]:
    """(module, other.module._name) for every underscored name a module takes from another ccdsl module: imported
    by name, or read as an attribute of an imported module.  Underscored *modules* (``_rank``, ``_tree``) are files
    the executor ships to nodes, not private names, and dunders are not private."""

    def private(name: str) -> bool:
        return name.startswith("_") and not name.startswith("__")

    found: set[tuple[str, str]] = set()
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("ccdsl"):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    if full in known:
                        aliases[a.asname or a.name] = full
                    elif private(a.name) and node.module != module:
                        found.add((module, full))
            elif isinstance(node, ast.Import):
                aliases.update({a.asname: a.name for a in node.names if a.asname and a.name in known})
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and private(node.attr) and aliases[node.value.id] != module):
                found.add((module, f"{aliases[node.value.id]}.{node.attr}"))
    return found


def test_no_module_takes_another_modules_private_names():
    uses = private_uses(modules())
    new = sorted(uses - set(KNOWN_PRIVATE_USES))
    assert not new, f"underscored names used outside their module (make them public or keep them home): {new}"
    gone = sorted(set(KNOWN_PRIVATE_USES) - uses)
    assert not gone, f"no longer used across modules; remove them from KNOWN_PRIVATE_USES: {gone}"


def test_private_uses_sees_imports_and_attributes(tmp_path):
    pkg = tmp_path / "ccdsl"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def _x():\n    pass\n")
    (pkg / "b.py").write_text("from ccdsl.a import _x\nfrom ccdsl import a as mod\nmod._y()\n")
    assert private_uses(modules(pkg)) == {("ccdsl.b", "ccdsl.a._x"), ("ccdsl.b", "ccdsl.a._y")}
