"""Links into the MLflow UI: the URL builders, the experiment tag, the sweep summary, and
a real MLflow UI in headless Chromium opening the printed link on the runs table."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from custseg.domain.selection import Selection
from custseg.pipeline.sweep import SweepOutcome, format_summary
from custseg.tracking.runs import setup_experiment
from custseg.tracking.ui import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    experiment_url,
    experiments_url,
    find_experiment_url,
    model_url,
    run_url,
)

from conftest import CHROMIUM_BASE_FLAGS, compose_settings

ML = "workflowType=machine_learning"
#: the Mall pipeline's `make ui` (tracking.ui_port)
DEFAULT_UI_BASE = compose_settings().mlflow_ui

# ----------------------------------------------------------------- URL builders


@pytest.mark.parametrize(
    ("base", "experiment_id", "expected"),
    [
        ("http://127.0.0.1:5000", "1", f"http://127.0.0.1:5000/#/experiments/1?{ML}"),
        ("http://127.0.0.1:5000/", "42", f"http://127.0.0.1:5000/#/experiments/42?{ML}"),
        (" https://mlflow.example.com/ui/ ", "7", f"https://mlflow.example.com/ui/#/experiments/7?{ML}"),
        ("http://h:1", "a/b?c", f"http://h:1/#/experiments/a%2Fb%3Fc?{ML}"),
    ],
)  # fmt: skip
def test_experiment_url(base, experiment_id, expected):
    assert experiment_url(base, experiment_id) == expected


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://127.0.0.1:5000", f"http://127.0.0.1:5000/#/experiments?{ML}"),
        ("http://127.0.0.1:5000//", f"http://127.0.0.1:5000/#/experiments?{ML}"),
    ],
)
def test_experiments_url(base, expected):
    assert experiments_url(base) == expected


@pytest.mark.parametrize(
    ("experiment_id", "run_id", "expected"),
    [
        ("3", "abc123", f"{DEFAULT_UI_BASE}/#/experiments/3/runs/abc123?{ML}"),
        (3, "r#1", f"{DEFAULT_UI_BASE}/#/experiments/3/runs/r%231?{ML}"),
    ],
)
def test_run_url(experiment_id, run_id, expected):
    assert run_url(DEFAULT_UI_BASE + "/", experiment_id, run_id) == expected


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        ("customer-segmentation", 2, f"{DEFAULT_UI_BASE}/#/models/customer-segmentation/versions/2?{ML}"),
        ("team/segments v1", "10", f"{DEFAULT_UI_BASE}/#/models/team%2Fsegments%20v1/versions/10?{ML}"),
    ],
)  # fmt: skip
def test_model_url(name, version, expected):
    assert model_url(DEFAULT_UI_BASE, name, version) == expected


def test_find_experiment_url_without_a_store_gives_the_list_and_creates_nothing(tmp_path):
    db = tmp_path / "missing" / "mlflow.db"
    assert find_experiment_url(f"sqlite:///{db}", "x", "http://h:1") == experiments_url(
        "http://h:1"
    )
    assert not db.parent.exists()


def test_sweep_summary_prints_the_link_once():
    settings = compose_settings(["report.mlflow_ui=http://mlflow.example.com:8080/"])
    outcome = SweepOutcome(
        experiment_id="17",
        parent_run_id="parent123",
        summary=pd.DataFrame({"feature_set": ["all"], "k": [2], "run_id": ["child1"]}),
        selections={"all": Selection(k=2, method="elbow", picks={"elbow": 2})},
        final_feature_set="all",
        selected_run_id="child1",
    )
    text = format_summary(outcome, settings)
    link = f"http://mlflow.example.com:8080/#/experiments/17?{ML}"
    assert text.count(link) == 1 and text.count("#/experiments") == 1
    assert (
        "make ui" in text
        and f"mlflow ui --backend-store-uri {settings.tracking.tracking_uri}" in text
    )
    assert "parent123" in text


# ----------------------------------------------------------------- a real MLflow UI

RUN_NAMES = ("ui-probe-run-aurora", "ui-probe-run-borealis")

#: seconds for ``mlflow server`` to answer /health (12-18 s idle; over a minute seen
#: on a loaded 2-core machine)
SERVER_START_TIMEOUT = 240

CHROMIUM_FLAGS = [
    *CHROMIUM_BASE_FLAGS,
    # virtual time stands still while fetches are pending: the SPA renders its API data
    "--virtual-time-budget=15000",
]


@dataclass
class UiStore:
    """A sqlite store behind a running MLflow UI."""

    tracking_uri: str
    ui_base: str
    experiment_id: str
    run_ids: dict[str, str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (uvicorn and its workers), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def ui_store(tmp_path_factory) -> Iterator[UiStore]:
    """An experiment made by custseg's ``setup_experiment`` with two finished runs, served
    by ``mlflow server`` (the app of ``mlflow ui``, one worker) on a free local port."""
    root = tmp_path_factory.mktemp("mlflow-ui")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    previous_uri = mlflow.get_tracking_uri()
    try:
        experiment_id = setup_experiment(tracking_uri, "custseg-ui-probe", str(root / "mlruns"))
    finally:
        mlflow.set_tracking_uri(previous_uri)
    client = MlflowClient(tracking_uri)
    run_ids = {}
    for name in RUN_NAMES:
        run = client.create_run(experiment_id, run_name=name)
        client.log_metric(run.info.run_id, "silhouette", 0.5)
        client.set_terminated(run.info.run_id)
        run_ids[name] = run.info.run_id

    port = _free_port()
    log_path = root / "server.log"
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [str(mlflow_bin), "server", "--backend-store-uri", tracking_uri,
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            cwd=root,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: teardown ends every worker
        )  # fmt: skip
    ui_base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log_path.read_text()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{ui_base}/health", timeout=2) as response,
            ):
                if response.status == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow server not ready after {SERVER_START_TIMEOUT} s:\n"
                    + log_path.read_text()[-3000:]
                )
            time.sleep(0.5)
        yield UiStore(tracking_uri, ui_base, experiment_id, run_ids)
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        reason = "chromium is not installed (.ci/run installs Debian's chromium package)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def dump_dom(chromium: str, url: str, workdir: Path) -> str:
    """The DOM of ``url`` after the page settled, in a fresh profile (no remembered UI mode)."""
    profile = workdir / f"chromium-profile-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"headless Chromium did not finish {url} within 90 s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # leftover helpers of this browser only
    assert "<body" in out, f"no DOM for {url} (exit {proc.returncode}); stderr:\n{err[-2000:]}"
    return out


def _menu_has_models(dom: str) -> bool:
    """The model-training side bar has a "Models" entry; the GenAI one has none."""
    return re.search(r">\s*Models\s*<", dom) is not None


@pytest.mark.slow
def test_setup_experiment_tags_the_experiment_kind(ui_store):
    client = MlflowClient(ui_store.tracking_uri)
    experiment = client.get_experiment(ui_store.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"

    # an experiment made before the tag gets it on the next sweep
    client.delete_experiment_tag(ui_store.experiment_id, EXPERIMENT_KIND_TAG)
    previous_uri = mlflow.get_tracking_uri()
    try:
        again = setup_experiment(ui_store.tracking_uri, experiment.name, "unused")
    finally:
        mlflow.set_tracking_uri(previous_uri)
    assert again == ui_store.experiment_id
    assert client.get_experiment(again).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND

    found = find_experiment_url(ui_store.tracking_uri, experiment.name, ui_store.ui_base)
    assert found == experiment_url(ui_store.ui_base, ui_store.experiment_id)
    missing = find_experiment_url(ui_store.tracking_uri, "no-such-experiment", ui_store.ui_base)
    assert missing == experiments_url(ui_store.ui_base)


@pytest.mark.slow
def test_experiment_link_opens_the_runs_table(ui_store, chromium, tmp_path):
    dom = dump_dom(chromium, experiment_url(ui_store.ui_base, ui_store.experiment_id), tmp_path)
    for name in RUN_NAMES:
        assert name in dom, f"run {name!r} not in the rendered page (not the runs table?)"
    assert _menu_has_models(dom)

    # why the link carries workflowType: without it a fresh browser lands on the GenAI
    # traces overview, tag or not (MLflow 3.17)
    plain = f"{ui_store.ui_base}/#/experiments/{ui_store.experiment_id}"
    dom = dump_dom(chromium, plain, tmp_path)
    assert not any(name in dom for name in RUN_NAMES) and not _menu_has_models(dom), (
        "the bare experiment URL now shows the runs: MLflow's default UI mode changed"
    )


@pytest.mark.slow
def test_run_link_opens_the_run_page(ui_store, chromium, tmp_path):
    name = RUN_NAMES[0]
    link = run_url(ui_store.ui_base, ui_store.experiment_id, ui_store.run_ids[name])
    dom = dump_dom(chromium, link, tmp_path)
    assert name in dom and ui_store.run_ids[name] in dom
    assert _menu_has_models(dom)


def test_each_pipeline_has_its_own_ui_port_and_links():
    """Issue 29: both pipelines' `make ui` served port 5000 and printed the same link."""
    mall, rfm = compose_settings(), compose_settings(["pipeline=transactions"])
    assert (mall.tracking.ui_port, rfm.tracking.ui_port) == (5000, 5002)
    assert mall.mlflow_ui == "http://127.0.0.1:5000" and rfm.mlflow_ui == "http://127.0.0.1:5002"


def test_make_uis_port_check_refuses_a_port_in_use(capsys):
    """`make ui` first asks for its port: a listening server there fails it, loudly; a
    port of closed connections (TIME_WAIT) is free."""
    import socket

    from custseg.tracking.ui import main, port_in_use

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers (uvicorn) do
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        assert port_in_use(port)
        assert main(["--free-port", f"tracking.ui_port={port}"]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"make ui: error: port {port} on 127.0.0.1 is in use")
        accepted.close()  # the server closes first: its side sits in TIME_WAIT
        client.close()
    time.sleep(0.3)  # the close handshake on loopback
    with socket.socket() as plain, pytest.raises(OSError):  # TIME_WAIT holds the port...
        plain.bind(("127.0.0.1", port))
    assert not port_in_use(port)  # ... for a bind without SO_REUSEADDR only
    assert main(["--free-port", f"tracking.ui_port={port}"]) == 0
    assert capsys.readouterr().out == f"{port}\n"
