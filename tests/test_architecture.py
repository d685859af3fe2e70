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
