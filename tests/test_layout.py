"""The layout shows the architecture (../shared/DESIGN.md, README "Layout"): dependencies
point one way (api, dashboard and notifications import events; events imports none of
them; the dashboard imports neither the API nor notifications, which reads through the
dashboard's selectors), no module imports itself back through others, and no module
grows past what one reader can hold (500 lines, migrations aside)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("events", "dashboard", "api", "notifications", "flakyboard")
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports, at any depth of its code (lazy imports too)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # `from package import module` imports the module; `from module import name` the module.
            targets = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: imports_of(name, path, modules()) for name, path in modules().items()}


@pytest.mark.parametrize(
    "importer, forbidden",
    [
        ("events", ("dashboard", "api", "notifications")),
        ("dashboard", ("api", "notifications")),
        ("notifications", ("api",)),
    ],
)
def test_dependencies_point_one_way(importer, forbidden):
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if name.split(".")[0] == importer
        for target in targets
        if target.split(".")[0] in forbidden
    )
    assert wrong == []


def test_no_import_cycle():
    """A depth-first search over the module graph: a module on the current path reached
    again is a cycle (a package's __init__ importing its own modules is not one)."""
    state: dict[str, str] = {}
    cycles = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(GRAPH[name]):
            if name.startswith(target + "."):  # a module importing its package's __init__
                continue
            if state.get(target) == "open":
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_no_module_over_the_size_one_reader_holds():
    long = {
        name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_graph_sees_the_imports():
    # The checks above are only as good as the graph: it must see these known edges.
    assert "events.projection.fold" in GRAPH["events.trunk.registry"]
    assert "events.trunk.classify" in GRAPH["events.projection.projector"]
    assert any(t.startswith("events") for t in GRAPH["dashboard.selectors.status"])
