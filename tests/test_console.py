"""``quiet_console``: MLflow's INFO lines and artifact progress bars off, warnings kept."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from custseg.pipeline.console import PROGRESS_BAR_ENV, QUIET_LOGGERS, quiet_console


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_levels(monkeypatch):
    """Each test starts from MLflow's default (INFO), without the two variables, and leaves
    levels and environment as they were."""
    for name in ("MLFLOW_LOGGING_LEVEL", PROGRESS_BAR_ENV):
        monkeypatch.setenv(name, "")  # recorded, so whatever the test sets is undone
        monkeypatch.delenv(name)
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
    yield
    for logger, level in zip(loggers, before, strict=True):
        logger.setLevel(level)


def test_info_is_dropped_and_warnings_still_show(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    quiet_console()
    for name in ("mlflow", "mlflow.store.db.utils", "alembic.runtime.migration"):
        logger = logging.getLogger(name)
        assert not logger.isEnabledFor(logging.INFO), name
        assert logger.isEnabledFor(logging.WARNING), name


def test_an_explicit_mlflow_logging_level_wins(monkeypatch):
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "DEBUG")
    quiet_console()
    assert logging.getLogger("mlflow").isEnabledFor(logging.INFO)


def test_progress_bars_off_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    quiet_console()
    assert os.environ[PROGRESS_BAR_ENV] == "false"


def test_progress_bars_left_alone_on_a_terminal_or_when_set(monkeypatch):
    monkeypatch.setattr("sys.stderr", Terminal())
    quiet_console()
    assert PROGRESS_BAR_ENV not in os.environ

    monkeypatch.setattr("sys.stderr", io.StringIO())
    monkeypatch.setenv(PROGRESS_BAR_ENV, "true")
    quiet_console()
    assert os.environ[PROGRESS_BAR_ENV] == "true"


@pytest.mark.slow  # one small sweep in a subprocess (creates an MLflow store): ~20 s
def test_a_sweep_into_a_log_prints_its_summary_and_nothing_else(
    tmp_path, generated_csv, tracking_overrides
):
    """As DVC or CI runs it (stderr not a terminal): no MLflow INFO lines (a new store
    logs two), no progress bar, no Hydra log file or outputs/ directory."""
    script = Path(sys.executable).parent / "custseg-sweep"
    overrides = ["sweep.feature_sets=[income_spending]", "sweep.k_max=3"]
    done = subprocess.run(
        [str(script), f"data.path={generated_csv}", *tracking_overrides, *overrides],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Sweep finished: 2 runs"), done.stdout
    # warnings may show (stderr is theirs); MLflow's INFO lines and the progress bar may not
    assert " INFO " not in done.stderr, done.stderr
    assert "sweep:" not in done.stderr and "fit/s" not in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "customers.csv", "mlflow.db", "mlruns", "sweeps",
    ]  # fmt: skip
