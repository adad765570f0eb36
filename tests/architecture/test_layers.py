"""The rooms of `app/` and the direction of their imports, read from the source with `ast`.

Each room may import only rooms in lower layers (or itself). This keeps the arrows of
docs/architecture.md true and rules out import cycles between rooms and between modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"

# Lower number = lower layer. A room imports only rooms with a number <= its own; rooms on
# the same number may not import each other.
LAYERS = {
    "config": 0,
    "configuration": 0,
    "timestamps": 0,
    "stats": 0,
    "flags": 1,
    "access": 1,
    "storage": 2,
    "changes": 3,
    "metrics": 3,
    "ingest": 4,
    "detection": 4,
    "rollback": 5,
    "incidents": 6,
    "rollout": 7,
    "review": 8,
    "investigate": 8,
    "lake": 8,
    "demo": 9,
    "commands": 10,
    "cli": 11,
    "ui": 11,
    "__main__": 12,
}


def _room(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "app" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> set[str]:
    """Every `app.*` module a file imports, wherever in the file (lazy imports count)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("app.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "app":
                found |= {f"app.{a.name}" for a in node.names}
            elif node.module.startswith("app."):
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _module_name(path: Path) -> str:
    rel = path.relative_to(APP.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in APP.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        graph[name] = {m for m in _imports(path) if m in files and m != name}
    return graph


def test_every_room_has_a_layer():
    rooms = {p.name for p in APP.iterdir() if p.is_dir() and not p.name.startswith("__")}
    rooms |= {p.stem for p in APP.glob("*.py") if not p.name.startswith("__")}
    assert rooms <= set(LAYERS), f"rooms without a layer: {sorted(rooms - set(LAYERS))}"


def test_rooms_import_only_lower_layers():
    wrong = []
    for module, deps in _graph().items():
        room = _room(module)
        if room is None:
            continue
        for dep in deps:
            other = _room(dep)
            if other is None or other == room:
                continue
            if LAYERS[other] >= LAYERS[room]:
                wrong.append(f"{module} -> {dep}")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles_between_modules():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep) :] + [dep] if dep in stack else [node, dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_logic_knows_nothing_of_streamlit():
    offenders = [
        str(p.relative_to(APP.parent))
        for p in APP.rglob("*.py")
        if "ui" not in p.relative_to(APP).parts[:1]
        and any(m == "streamlit" or m.startswith("streamlit.") for m in _all_imports(p))
    ]
    assert not offenders


def test_pages_run_no_sql():
    views = APP / "ui" / "views"
    offenders = [
        p.name
        for p in views.glob("*.py")
        if any(w in p.read_text() for w in (".execute(", ".sql(", "store.rows(", "store.query("))
    ]
    assert not offenders, f"pages that run SQL themselves: {offenders}"


def _all_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out
