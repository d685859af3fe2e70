"""DVC stage deps that cannot drift: every module a stage's entry point imports, at module
level or lazily (its import closure, read from the source), is a dep of that stage, in
both dvc.yaml files. A change there reruns what it can change."""

from __future__ import annotations

import ast
import tomllib
from functools import cache
from pathlib import Path

import pytest
import yaml

from conftest import PROJECT_ROOT

SRC = PROJECT_ROOT / "src"
PIPELINES = {"mall": PROJECT_ROOT, "transactions": PROJECT_ROOT / "transactions"}


def module_file(module: str) -> Path | None:
    """The source file of a ``custseg`` module or package (None when it is not one)."""
    base = SRC.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(tree: ast.Module, package: str) -> set[str]:
    """Modules a file imports, at module level or lazily inside a function (an engine's
    module is imported only when that engine runs, and then the stage runs its code);
    ``if TYPE_CHECKING`` blocks are not imports."""
    found: set[str] = set()
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending += node.orelse
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
        else:
            pending += list(ast.iter_child_nodes(node))
    return {m for m in found if m.split(".")[0] == "custseg" and module_file(m)}


@cache
def imports_of(module: str) -> frozenset[str]:
    path = module_file(module)
    assert path is not None, module
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(_imports(tree, package))


def closure(module: str) -> set[str]:
    """``module`` and every module it imports, with their packages."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        parts = current.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages
        todo += imports_of(current)
    return seen


def entry_points() -> dict[str, str]:
    scripts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    return {name: target.split(":")[0] for name, target in scripts.items()}


def stages() -> list[tuple[str, str]]:
    found = []
    for pipeline, root in PIPELINES.items():
        spec = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))
        found += [(pipeline, name) for name in spec["stages"]]
    return found


def data_files(module: str) -> set[Path]:
    """The files beside a module that it reads at run time (templates, settings files):
    files of its folder, or of a folder within that is not a package, that are not
    Python source and whose name the module's source quotes (a module that only names
    their folder, as a template loader does, reads none of them by itself)."""
    path = module_file(module)
    folder, source = path.parent, path.read_text(encoding="utf-8")
    found = set()
    for candidate in folder.rglob("*"):
        inner = [folder / p for p in candidate.relative_to(folder).parents if str(p) != "."]
        in_package = any((p / "__init__.py").exists() for p in inner)
        data = candidate.suffix not in {".py", ".pyc"} and candidate.name != "py.typed"
        named = f'"{candidate.name}"' in source
        kept = "__pycache__" not in candidate.parts and not in_package
        if candidate.is_file() and data and named and kept:
            found.add(candidate)
    return found


def missing_deps(pipeline: str, stage: str) -> list[str]:
    root = PIPELINES[pipeline]
    spec = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"][stage]
    command = spec["cmd"].split()[0]
    deps = [(root / str(d)).resolve() for d in spec.get("deps", []) if "${" not in str(d)]
    missing = []
    modules = closure(entry_points()[command])
    files = {module_file(m) for m in modules} | set().union(*map(data_files, modules))
    for path in sorted(p.resolve() for p in files):
        if not any(path == d or d in path.parents for d in deps):
            missing.append(str(path.relative_to(PROJECT_ROOT)))
    return missing


@pytest.mark.parametrize(("pipeline", "stage"), stages())
def test_every_module_a_stage_imports_is_one_of_its_deps(pipeline, stage):
    assert missing_deps(pipeline, stage) == [], f"{pipeline} dvc.yaml, stage {stage}"


def test_the_closure_is_read_from_the_source():
    """By hand: select imports the identity module, which imports profiling; validate
    imports the Spark backend lazily, and nothing of the registry."""
    select = closure("custseg.pipeline.select")
    assert {"custseg.domain.identity", "custseg.domain.profiling.naming", "custseg"} <= select
    validate = closure("custseg.pipeline.validate")
    assert "custseg.backends.spark.backend" in validate
    assert "custseg.tracking.registry" not in validate
    templates = SRC / "custseg" / "reporting" / "templates"
    assert data_files("custseg.reporting.report") == {templates / "report.html.j2"}
    assert not data_files("custseg.reporting.figures")  # the sweep draws, it renders no HTML
    assert not data_files("custseg.domain.profiling.naming")
    # the monitoring page's template is read by the monitoring module, not by the loader
    # both share
    assert data_files("custseg.reporting.monitoring") == {templates / "monitoring.html.j2"}
    assert not data_files("custseg.reporting.jinja")


@pytest.mark.parametrize(("pipeline", "stage"), stages())
def test_every_dep_exists(pipeline, stage):
    """A code dep on a moved or deleted file stops `dvc repro` (a missing dependency)."""
    root = PIPELINES[pipeline]
    spec = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"][stage]
    deps = [str(d) for d in spec.get("deps", []) if "src/custseg" in str(d)]
    assert deps, "a stage runs code"
    assert [d for d in deps if not (root / d).exists()] == []


@pytest.mark.parametrize(("pipeline", "stage"), stages())
def test_a_stage_depends_on_no_file_it_does_not_read(pipeline, stage):
    """A template or settings file listed for a stage that never reads it would rerun
    that stage (a sweep, 37 runs) whenever it is edited."""
    root = PIPELINES[pipeline]
    spec = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"][stage]
    modules = closure(entry_points()[spec["cmd"].split()[0]])
    read = {f.resolve() for m in modules for f in data_files(m)}
    listed = [(root / str(d)).resolve() for d in spec.get("deps", []) if "src/custseg" in str(d)]
    data = [d for d in listed if d.is_file() and d.suffix != ".py"]
    assert [str(d.relative_to(PROJECT_ROOT)) for d in data if d not in read] == []
