"""The folder tree is the architecture: each top-level folder of ``src/custseg`` imports
only the folders after it in :data:`ORDER` (docs/architecture.md), lazy imports included."""

from __future__ import annotations

import ast

import pytest

from conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src" / "custseg"
#: from the entry points down to the pure domain (docs/architecture.md)
ORDER = [
    "cli",
    "pipeline",
    "ops",
    "tracking",
    "backends",
    "reporting",
    "storage",
    "config",
    "domain",
]
#: importable from anywhere
SHARED = {"errors", "custseg"}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "custseg"


def imports() -> list[tuple[str, str, str]]:
    """(importing module, its room, the room it imports) for every custseg import."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                if target.split(".")[0] == "custseg" and room(target) != room(module):
                    found.append((module, room(module), room(target)))
    return found


def test_every_room_is_in_the_order():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("_")}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert folders | modules == set(ORDER) | SHARED - {"custseg"}


@pytest.mark.parametrize("module, source, target", imports())
def test_imports_flow_one_way(module, source, target):
    if target in SHARED:
        return
    assert ORDER.index(source) < ORDER.index(target), f"{module} imports {target}"


def module_imports() -> dict[str, set[str]]:
    """Every custseg module -> the custseg modules it imports (lazily too), not counting
    a module's own parent packages."""
    files = {
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in PACKAGE.rglob("*.py")
    }
    edges: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                edges[module] |= {
                    n
                    for n in names
                    if n in files and not module.startswith(f"{n}.") and n != module
                }
    return edges


def test_no_import_cycle_among_modules():
    edges = module_imports()
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            assert state.get(target) != 1, " -> ".join([*path, module, target])
            if target not in state:
                visit(target, [*path, module])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [])
