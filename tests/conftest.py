"""Shared fixtures: real Hydra composition, the seed data location, a temp MLflow store, a
clone after `make run`, and the examples of the README and docs/ that tests check."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from custseg.config import EngineConfig, Settings, to_settings
from custseg.domain.features import FeatureSet
from custseg.storage.data import generate_customers, load_customers, write_csv_atomic

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = PROJECT_ROOT / "conf"
SEED_CSV = PROJECT_ROOT.parent / "shared" / "data" / "mall_customers.csv"
VENV_BIN = Path(sys.executable).parent


#: the test session's Spark: two cores, an explicit small heap, pinned partitions
SPARK_LOCAL = EngineConfig(name="spark", master="local[2]", driver_memory="1g", partitions=4)

#: a numeric and a mixed (numeric and categorical) feature set of the Mall table
MALL_FEATURE_SETS = [
    pytest.param(
        FeatureSet("income_spending", numeric=["annual_income", "spending_score"]), id="numeric"
    ),
    pytest.param(
        FeatureSet(
            "all", numeric=["age", "annual_income", "spending_score"], categorical=["gender"]
        ),
        id="mixed",
    ),
]


def compose_config(overrides: list[str] | None = None):
    """Compose ``conf/config.yaml`` in-process with Hydra, as the entry points do."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides or [])


def compose_settings(overrides: list[str] | None = None) -> Settings:
    return to_settings(compose_config(overrides))


@pytest.fixture(scope="session")
def seed_csv() -> Path:
    """The real Mall Customers table, read from ../shared (never copied into the repo).

    Skipped where ../shared is absent, except under CI (``CI=true``), where that fails.
    """
    if not SEED_CSV.exists():
        message = f"seed data not found at {SEED_CSV} (the shared folder is absent)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return SEED_CSV


@pytest.fixture
def generated_csv(tmp_path: Path) -> Path:
    """200 customers from the embedded generator (seed 7), as ``tmp_path/customers.csv``."""
    path = tmp_path / "customers.csv"
    write_csv_atomic(generate_customers(200, seed=7), path)
    return path


@pytest.fixture
def tracking_overrides(tmp_path: Path) -> list[str]:
    """Hydra overrides that point MLflow at a fresh sqlite store inside ``tmp_path``."""
    return [
        f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"tracking.artifact_location={tmp_path / 'mlruns'}",
    ]


def with_data_path(settings: Settings, path: Path) -> Settings:
    return dataclasses.replace(settings, data=dataclasses.replace(settings.data, path=str(path)))


def identified(
    table: pd.DataFrame,
    k: int,
    reference,
    settings: Settings | None = None,
    feature_set: FeatureSet | None = None,
    fresh: bool = False,
):
    """What the sweep and select stages do to a fit of ``table``: name it (canonical
    ids), then carry identity over from ``reference`` by the customers they share.

    Returns the :class:`~custseg.domain.identity.Identity` and the final model's profiles.
    """
    from custseg.domain.clustering import fit_model
    from custseg.domain.features import ModelParams
    from custseg.domain.identity import carry_identity, identify, transitions
    from custseg.domain.profiling.profiles import profile_columns, profile_segments

    settings = settings or compose_settings()
    fs = feature_set or FeatureSet("income_spending", numeric=["annual_income", "spending_score"])
    result = fit_model(table, fs, "standard", ModelParams(), k)
    swept = identify(result, table, settings.personas, "standard", "sha", ["customer_id"])[0]
    numeric, categorical = profile_columns(table, fs, ["customer_id"])
    profiles = profile_segments(table, swept.predict(table), numeric, categorical)
    found = carry_identity(
        swept,
        profiles,
        settings.personas,
        reference,
        lambda: transitions(reference, swept, table),
        settings.identity.min_overlap,
        fresh,
    )
    final = profile_segments(table, found.model.predict(table), numeric, categorical)
    return found, final


def named_reference(table: pd.DataFrame, sample_size: int = 1000, seed: int = 42):
    """Five named segments of ``table`` on income x spending and their reference profile
    (every Mall column monitored), as the select stage builds them: (model, reference)."""
    import numpy as np

    from custseg.domain.monitoring.reference import ReferenceParams, model_reference

    model = identified(table, 5, None)[0].model
    ids = model.predict(table)
    reference = model_reference(
        model, table, dict(zip(*np.unique(ids, return_counts=True), strict=True)),
        numeric=["annual_income", "spending_score", "age"], categorical=["gender"],
        silhouette=0.5, params=ReferenceParams(sample_size=sample_size, bins=10, seed=seed),
    )  # fmt: skip
    return model, reference


def generated_table(directory: Path, rows: int, seed: int) -> pd.DataFrame:
    """``rows`` generated customers written to ``directory`` and loaded (validated)."""
    path = directory / f"customers-{rows}-{seed}.csv"
    write_csv_atomic(generate_customers(rows, seed=seed), path)
    table, _ = load_customers(dataclasses.replace(compose_settings().data, path=str(path)))
    return table


#: headless Chromium without network chatter, for the report and MLflow UI tests
CHROMIUM_BASE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def spark():
    """The process's SparkSession on local[2], started once for the whole test session.

    Skipped without pyspark (the ``spark`` extra), except under CI (``CI=true``), where
    that fails: ``make test`` installs it from the lock file.
    """
    try:
        import pyspark  # noqa: F401
    except ModuleNotFoundError:
        message = "pyspark is not installed: pip install -e '.[spark]' (make install does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from custseg.backends.spark.engine import spark_session

    start = time.perf_counter()
    session = spark_session(SPARK_LOCAL)
    print(f"Spark session started in {time.perf_counter() - start:.1f} s")
    return session


# ------------------------------------------------------------------ a clone after make run


#: what make passes to the commands it runs, so that a make they start is a sub-make
MAKE_NESTING = {"MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"}


def run(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """Run a command as a user would, with the project's venv first on PATH (and not as a
    sub-make of `make test`: a nested make would print its directory and share flags)."""
    inherited = {k: v for k, v in os.environ.items() if k not in MAKE_NESTING}
    environment = {**inherited, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **env}
    result = subprocess.run(cmd, cwd=cwd, env=environment, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def project_files() -> list[str]:
    """Files a clone would have: tracked plus new, minus what .gitignore excludes."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [f for f in out.split("\0") if f and (PROJECT_ROOT / f).is_file()]


def make_clone(parent: Path) -> Path:
    """A fresh clone of the project (as committed plus working changes) in a new git repo."""
    repo = parent / "clone"
    for name in project_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / name, repo / name)
    run(["git", "init", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "clone"], repo)
    run(["git", "config", "user.name", "t"], repo)  # dvc exp run commits
    run(["git", "config", "user.email", "t@t"], repo)
    return repo


#: what `make run` printed in the `published` clone, kept beside it (not in it: git clean)
MAKE_RUN_OUTPUT = "make-run.out"


@pytest.fixture(scope="session")
def published(tmp_path_factory) -> Path:
    """A fresh clone after `make run` (the README's first command), sharing this venv.

    Built once per test process: under xdist the files that use it run on one worker
    (:func:`pytest_xdist_make_scheduler`). tests/test_dvc.py moves its aliases and
    experiments; other tests only read it (the registry, what `make run` printed:
    :func:`make_run_output`, DVC's cache) and write outside it.
    """
    repo = make_clone(tmp_path_factory.mktemp("published"))
    (repo / ".venv").symlink_to(VENV_BIN.parent)
    os.utime(repo / ".venv" / ".installed")  # installed: make must not reinstall into it
    done = run(["make", "run"], repo)
    (repo.parent / MAKE_RUN_OUTPUT).write_text(done.stdout, encoding="utf-8")
    return repo


def make_run_output(published: Path) -> str:
    """What `make run` printed (stdout) when the ``published`` clone was built."""
    return (published.parent / MAKE_RUN_OUTPUT).read_text(encoding="utf-8")


#: test files that share a session fixture too costly to build twice (``published``: a
#: `make run`), by the file whose xdist worker they run on
SAME_WORKER = {"tests/test_docs.py": "tests/test_dvc.py"}


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with the files of :data:`SAME_WORKER` on one worker.

    Session fixtures live once per xdist worker, so two files on two workers would each
    build ``published``; any other ``--dist`` mode is left to xdist.
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedFixtureScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return SAME_WORKER.get(scope, scope)

    return SharedFixtureScheduling(config, log)


# ------------------------------------------------------------- examples of the docs


#: the pages whose examples are checked: the README and every page of docs/
def doc_pages() -> list[Path]:
    """README.md and docs/*.md, in that order."""
    return [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]


#: the line right above a block that shows output: which test checks it
OUTPUT_MARKER = re.compile(r"^<!-- output: (?P<test>tests/[\w/]+\.py::\w+) -->$")
_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+)(?P<info>[^`]*)$")


@dataclasses.dataclass(frozen=True)
class DocBlock:
    """A fenced block or a table of a page.

    Attributes
    ----------
    page : Path
        The Markdown file.
    line : int
        Line of the opening fence, or of the table's first row (1-based).
    kind : str
        The fence's info string (``"bash"``, ``"text"``, ...; ``""`` when it has none), or
        ``"table"``.
    text : str
        The lines inside the fence (its indentation removed), or the table's rows, each
        ending with a newline.
    checked_by : str or None
        The test its marker names (``tests/test_x.py::test_name``), if it has one.
    """

    page: Path
    line: int
    kind: str
    text: str
    checked_by: str | None

    def where(self) -> str:
        return f"{self.page.relative_to(PROJECT_ROOT)}:{self.line}"


def page_blocks(page: Path) -> list[DocBlock]:
    """The fenced blocks and tables of ``page``, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        above = OUTPUT_MARKER.match(lines[i - 1]) if i else None
        checked_by = above["test"] if above else None
        if fence := _FENCE.match(lines[i]):
            end = i + 1
            while end < len(lines) and lines[end].strip() != fence["fence"]:
                end += 1
            body = [line[len(fence["indent"]) :] for line in lines[i + 1 : end]]
            text = "".join(f"{line}\n" for line in body)
            blocks.append(DocBlock(page, i + 1, fence["info"].strip(), text, checked_by))
            i = end + 1
        elif lines[i].lstrip().startswith("|"):
            end = i
            while end < len(lines) and lines[end].lstrip().startswith("|"):
                end += 1
            text = "".join(f"{line.strip()}\n" for line in lines[i:end])
            blocks.append(DocBlock(page, i + 1, "table", text, checked_by))
            i = end
        else:
            i += 1
    return blocks


def doc_blocks() -> list[DocBlock]:
    """Every fenced block and table of :func:`doc_pages`."""
    return [block for page in doc_pages() for block in page_blocks(page)]


def current_test() -> str:
    """The running test as a marker names it: ``tests/test_x.py::test_name``."""
    nodeid = os.environ["PYTEST_CURRENT_TEST"].rsplit(" ", 1)[0]
    return nodeid.split("[", 1)[0]


def shown_outputs(test: str | None = None) -> list[str]:
    """The blocks of the README and docs/ whose marker names ``test`` (default: the
    running test), in page order; fails when there is none."""
    test = test or current_test()
    shown = [block.text for block in doc_blocks() if block.checked_by == test]
    assert shown, f"no block of README.md or docs/ is marked <!-- output: {test} -->"
    return shown


def masked(text: str, *patterns: str) -> str:
    """``text`` with every match of each regular expression replaced by ``...``: what the
    docs write for the parts that vary by nature (run ids, hashes, temporary paths)."""
    for pattern in patterns:
        text = re.sub(pattern, "...", text)
    return text


#: an MLflow run id, a model fingerprint (12 hex digits after "fingerprint ")
RUN_ID = r"\b[0-9a-f]{32}\b"
FINGERPRINT = r"(?<=fingerprint )[0-9a-f]{12}\b"


def assert_shows(output: str, shown: str) -> None:
    """``shown`` (a block of the docs) is a run of whole lines of ``output``."""
    have, want = output.splitlines(), shown.splitlines()
    runs = (have[i : i + len(want)] for i in range(len(have) - len(want) + 1))
    assert want in runs, f"the docs show\n{shown}\nbut the command printed\n{output}"
