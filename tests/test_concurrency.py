"""Several processes on one local tracking store, as a team on one machine (real processes)."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from custseg.storage.data import generate_customers, write_csv_atomic

from conftest import VENV_BIN, assert_shows, make_clone, masked, shown_outputs

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


def runs_with_status(db: Path, status: str) -> list[str]:
    """Run ids with ``status``, read without MLflow (read-only, gentle on the writer)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute("select run_uuid from runs where status = ?", (status,))
            return [r[0] for r in rows]
    except sqlite3.Error:  # not created yet
        return []


def start_full_sweep(repo: Path) -> subprocess.Popen:
    """The default sweep (36 fits): long enough to be caught in the middle."""
    return subprocess.Popen(
        [str(VENV_BIN / "custseg-sweep"), "sweep.output_dir=out-full"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: kill -9 reaches the workers too
    )


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.slow
def test_runs_left_running_by_kill_9_are_marked_killed_by_the_next_sweep(project):
    import os
    import signal

    from mlflow import MlflowClient

    db = project / "mlflow.db"
    victim = start_full_sweep(project)
    wait_for(lambda: len(runs_with_status(db, "FINISHED")) >= 2)  # in the middle
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=60)
    stale = runs_with_status(db, "RUNNING")
    assert stale, "kill -9 should have left the parent run RUNNING"

    rerun = start_sweep(project, "rerun")
    output = rerun.communicate(timeout=300)[0]
    assert rerun.returncode == 0, output
    assert f"marked {len(stale)} run(s) KILLED" in output
    (shown,) = shown_outputs()  # docs/troubleshooting.md: the count and the ids masked
    assert_shows(masked(output, r"(?<=marked )\d+(?= run)", r"(?<=a power cut\): ).+"), shown)
    assert runs_with_status(db, "RUNNING") == []
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    for run_id in stale:
        run = client.get_run(run_id)
        assert run.info.status == "KILLED"
        assert "ended without closing this run" in run.data.tags["custseg.stale"]


@pytest.mark.slow
def test_a_live_sweep_is_never_taken_for_a_dead_one(project):
    """Two sweeps at once: the second must not mark the first one's open runs KILLED."""
    db = project / "mlflow.db"
    first = start_full_sweep(project)
    wait_for(lambda: len(runs_with_status(db, "RUNNING")) >= 1)
    open_runs = runs_with_status(db, "RUNNING")
    second = start_sweep(project, "second")
    output = second.communicate(timeout=300)[0]
    assert second.returncode == 0, output
    assert "KILLED" not in output
    first_output = first.communicate(timeout=600)[0]
    assert first.returncode == 0, first_output
    assert runs_with_status(db, "KILLED") == []
    assert set(open_runs) <= set(runs_with_status(db, "FINISHED"))
