"""Several processes on one local tracking store, as a team on one machine (real processes)."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from custseg.io.data import generate_customers, write_csv_atomic
from test_dvc import VENV_BIN, make_clone

SMALL_SWEEP = ["sweep.feature_sets=[income_spending]", "sweep.k_max=4", "sweep.n_jobs=1"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    repo = make_clone(tmp_path)
    write_csv_atomic(generate_customers(200, seed=3), repo / "data" / "customers.csv")
    return repo


def start_sweep(repo: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(VENV_BIN / "custseg-sweep"), *SMALL_SWEEP, f"sweep.output_dir=out-{name}"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def runs_by_status(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("select status, count(*) from runs group by status"))


@pytest.mark.slow
def test_four_sweeps_started_at_once_on_a_fresh_store_all_finish(project):
    """Each creates the experiment in the same fresh sqlite store at the same moment (MLflow's
    schema migration alone fails when run twice at once)."""
    assert not (project / "mlflow.db").exists()
    sweeps = [start_sweep(project, str(i)) for i in range(4)]
    outputs = [p.communicate(timeout=300)[0] for p in sweeps]
    assert [p.returncode for p in sweeps] == [0] * 4, "\n\n".join(outputs)
    assert runs_by_status(project / "mlflow.db") == {"FINISHED": 4 * (1 + 3)}


@pytest.mark.slow
def test_a_reader_polling_every_20_ms_does_not_lock_out_the_sweep(project):
    """A busy reader (the MLflow UI refreshing, a teammate's query) reads the store while a
    sweep writes to it: no "database is locked"."""
    db = project / "mlflow.db"
    stop, reads, errors = threading.Event(), [0], []

    def poll() -> None:
        while not stop.is_set():
            try:
                with sqlite3.connect(db, timeout=0.1) as conn:
                    conn.execute("select count(*) from runs").fetchone()
                    conn.execute("select count(*) from metrics").fetchone()
                reads[0] += 1
            except sqlite3.OperationalError as exc:  # not created yet, or busy
                errors.append(str(exc))
            time.sleep(0.02)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        sweeps = [start_sweep(project, str(i)) for i in range(2)]
        outputs = [p.communicate(timeout=300)[0] for p in sweeps]
    finally:
        stop.set()
        reader.join()
    assert [p.returncode for p in sweeps] == [0, 0], "\n\n".join(outputs)
    assert not any("locked" in o for o in outputs)
    assert reads[0] > 20  # the reader really ran alongside
    assert runs_by_status(db) == {"FINISHED": 2 * (1 + 3)}
