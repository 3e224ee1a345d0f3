"""The import graph of src/protege: no cycle, and no import from a lower layer to a higher one.

Imports inside functions count: a lazy import is still a dependency, and the one cycle this test
was written against (route -> serve.agent -> route) ran through function-level imports. `from
protege.x import y` is an edge to protege.x.y when y is a module, else to protege.x.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "protege"

# Bottom to top. A module may import its own layer and the ones below it, never one above.
LAYERS = [
    {"protege", "errors", "console", "config", "refs", "project", "artifacts", "dataset", "chains", "replies"},
    {"models", "corpus"},
    {"guard", "traffic"},
    {"synth", "train", "evaluate"},
    {"route"},
    {"serve"},
    {"chat", "cli", "cli_keys", "cli_route", "loop", "doctor", "scaffold"},
]
# Modules that sit below their package: the registry of embedded models is data (names, files,
# sizes) that config's reference check reads; it imports nothing of protege but errors.
MODULE_LAYER = {"protege.models.embedded": 0}


def _name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> nx.DiGraph:
    modules = {_name(p): p for p in SRC.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("protege"):
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("protege")]
            else:
                continue
            for target in targets:
                assert target in modules, f"{name} imports {target}, which is not a module of src/protege"
                if target != name:
                    graph.add_edge(name, target)
    return graph


def layer(module: str) -> int:
    if module in MODULE_LAYER:
        return MODULE_LAYER[module]
    unit = module.split(".")[1] if "." in module else "protege"
    found = [i for i, units in enumerate(LAYERS) if unit in units]
    assert found, f"{module}: its package {unit!r} has no layer in tests/test_architecture.py"
    return found[0]


def test_no_import_cycle():
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c + c[:1]) for c in cycles[:5])


def test_no_import_from_a_lower_layer_to_a_higher_one():
    graph = import_graph()
    upward = sorted(f"{a} -> {b}" for a, b in graph.edges if layer(b) > layer(a))
    assert not upward, "imports that climb a layer:\n" + "\n".join(upward)


def test_every_module_has_a_layer():
    for module in import_graph().nodes:
        layer(module)


@pytest.mark.parametrize("cycle", [("protege.route.collect", "protege.serve.agent")])
def test_the_checker_sees_a_cycle_and_a_climb(cycle):
    """The checks can fail: an edge back from serve to route closes a cycle and climbs a layer."""
    graph = import_graph()
    graph.add_edge(*cycle)
    assert next(nx.simple_cycles(graph), None) is not None
    assert layer(cycle[1]) > layer(cycle[0])


def test_docs_picture_names_every_layer():
    """docs/architecture.md draws the same layers as LAYERS."""
    text = (SRC.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    lines = [line.split() for line in text.split("## Layers", 1)[1].split("```")[1].splitlines() if line.strip()]
    drawn = [set(w for w in words[1:] if w.isidentifier()) for words in lines if words[0].isdigit()]
    below = [set(w for w in words if w.isidentifier()) for words in lines if not words[0].isdigit()]
    drawn[-1] |= below[0] if below else set()  # the bottom layer wraps onto a second line
    assert [units & set().union(*LAYERS) for units in reversed(drawn)] == LAYERS
