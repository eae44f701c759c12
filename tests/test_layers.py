"""The house rules, read from the code: layers point down, no circles, small one-job rooms.

Every ``import`` of the library and the CLI is read with :mod:`ast` (imports inside functions
too: a lazy import is still an arrow), and checked against the layer order below. A module
may import a module of a lower layer, or one in its own package; never one above, and never
a module of another package on its own floor.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Bottom to top. A module's layer is that of its longest matching prefix.
LAYERS: list[tuple[str, ...]] = [
    ("culvert_py.errors", "culvert_py.clock"),
    ("culvert_py.arguments",),
    ("culvert_py.values",),  # the encoding floor's ground: what encoding checks values with
    ("culvert_py.encoding", "culvert_py.codecs", "culvert_py.text"),
    ("culvert_py.encoders",),  # one type's encoder/decoder resolved once, for hot paths
    ("culvert_py.store",),
    ("culvert_py.predicate",),
    ("culvert_py.adopted",),  # what an adopted table declares, checked for the schema
    ("culvert_py.lifespan",),  # a table's ttl / age_off declaration, checked for the schema
    ("culvert_py.schema",),
    ("culvert_py.adopted_rows",),  # the bytes of adopted rows, for layout
    ("culvert_py.entries",),  # the entries a row owns, for layout (which re-exports them)
    ("culvert_py.layout", "culvert_py.meta"),
    ("culvert_py.expiry", "culvert_py.frames"),  # row lifespans; Arrow batches of rows
    ("culvert_py.write", "culvert_py.query", "culvert_py.stats"),
    ("culvert_py.ageoff", "culvert_py.load"),  # below table: age_off, put_dataframe use them
    ("culvert_py.table",),
    ("culvert_py.client",),
    ("culvert_py.ops",),
    ("culvert_py.spark",),  # Spark jobs over ops, load and queries (the [spark] extra)
    ("culvert_py",),  # the package's public face (__init__)
    ("culvert_cli",),
]

#: Library modules may not grow past this (the house style says ~500).
MAX_LINES = 520


def _modules() -> dict[str, Path]:
    found = {}
    for base, package in ((ROOT / "culvert_py", "culvert_py"), (ROOT / "cli", "culvert_cli")):
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _room(module: str) -> str:
    """The prefix that names a module's room: its package for package modules."""
    best = ""
    for layer in LAYERS:
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best = prefix
    return best


def _layer(module: str) -> int:
    room = _room(module)
    return next(i for i, layer in enumerate(LAYERS) if room in layer)


def _imports(module: str) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                names = [".".join([*base, node.module] if node.module else base)]
            else:
                names = [node.module or ""]
            # ``from culvert_py.query import planner`` imports the module culvert_py.query.planner
            names += [f"{names[0]}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name in MODULES and name != module:
                found.add(name)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def test_every_module_has_a_layer():
    unplaced = [m for m in MODULES if not _room(m)]
    assert not unplaced, f"modules outside every layer: {unplaced}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module):
    wrong = []
    for target in GRAPH[module]:
        same_room = _room(target) == _room(module)
        if target == "culvert_py" and module.startswith("culvert_cli"):
            continue
        if not same_room and _layer(target) >= _layer(module):
            wrong.append(f"{target} (layer {_layer(target)})")
    assert not wrong, f"{module} (layer {_layer(module)}) imports upwards or sideways: {wrong}"


def test_there_are_no_import_circles():
    circles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                circles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not circles, f"import circles: {circles}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_are_small_and_say_their_one_job(module):
    path = MODULES[module]
    text = path.read_text()
    lines = text.count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (> {MAX_LINES})"
    doc = ast.get_docstring(ast.parse(text))
    assert doc, f"{path.relative_to(ROOT)} has no module docstring"
    first = doc.strip().splitlines()[0]
    assert " and " not in f" {first} ", f"{path.relative_to(ROOT)}: two jobs in {first!r}"


def test_the_executor_takes_data_sources_not_the_facade():
    tree = ast.parse(MODULES["culvert_py.query.executor"].read_text())
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    attributes = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert "IndexedTable" not in names
    assert "_entries" not in attributes and "writer" not in attributes
