"""``mlflow models serve`` answers REST scoring requests for the registered champion."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest

from custseg.domain.clustering import fit_model
from custseg.domain.identity import identify
from custseg.storage.data import generate_customers, load_customers, write_csv_atomic
from custseg.tracking.registry import champion_uri, register_champion
from custseg.tracking.runs import log_segment_model, setup_experiment

from conftest import compose_settings

HOST = "127.0.0.1"
MODEL = "customer-segmentation"
STARTUP_TIMEOUT = 90  # seconds for the server to answer /ping
REQUEST_TIMEOUT = 30


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def http(url: str, payload: dict | None = None, timeout: float = REQUEST_TIMEOUT):
    """GET (or POST ``payload`` as JSON) and return ``(status, body text)``."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read().decode()


def wait_until_up(proc: subprocess.Popen, url: str, log_file: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{log_file.read_text()}")
        try:
            if http(url, timeout=2)[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"no answer on {url} within {STARTUP_TIMEOUT} s:\n{log_file.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    """Terminate the server and its workers (its own process group), then kill if needed."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)
    except ProcessLookupError:
        pass


@pytest.mark.slow
def test_served_champion_scores_like_the_local_pipeline(tmp_path):
    # a real store with a registered champion, as the select stage leaves it
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = setup_experiment(
        tracking_uri, "customer-segmentation", str(tmp_path / "mlruns")
    )
    settings = compose_settings()
    csv_path = tmp_path / "customers.csv"
    write_csv_atomic(generate_customers(200, 1), csv_path)
    table, info = load_customers(dataclasses.replace(settings.data, path=str(csv_path)))
    result = fit_model(table, settings.features, "standard", settings.model, 5)
    schema = settings.data.input_schema(settings.features.numeric, settings.features.categorical)
    model, _ = identify(result, table, settings.personas, "standard", info.sha256, **schema)
    labels = model.predict(table)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        log_segment_model(model)
    register_champion(
        run.info.run_id, MODEL, "champion", table, {"data_sha256": info.sha256, "k": "5"}
    )

    # three customers from three different segments, as raw canonical rows
    rows = [int(np.flatnonzero(labels == segment)[0]) for segment in (0, 2, 4)]
    customers = table.iloc[rows]
    expected = model.score(customers).to_dict("records")
    assert len({row["segment"] for row in expected}) == 3
    # and one customer outside the schema's ranges: [-5, 500] (income, score)
    nonsense = customers.iloc[:2].copy()
    nonsense.loc[nonsense.index[1], ["annual_income", "spending_score"]] = [-5.0, 500.0]

    port = free_port()
    base = f"http://{HOST}:{port}"
    mlflow_script = Path(sys.executable).parent / "mlflow"
    log_file = tmp_path / "serve.log"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        # the model loads from its code and JSON: nothing is unpickled
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [
        str(mlflow_script), "models", "serve", "-m", champion_uri(MODEL, "champion"),
        "--env-manager", "local", "-h", HOST, "-p", str(port), "-w", "1",
    ]  # fmt: skip
    with log_file.open("w") as log:
        proc = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() ends the workers too
        )
    try:
        wait_until_up(proc, f"{base}/ping", log_file)
        status, body = http(f"{base}/invocations", split_payload(customers))
        refused = refusal(f"{base}/invocations", split_payload(nonsense))
    finally:
        stop(proc)

    assert status == 200, body
    assert json.loads(body) == {"predictions": expected}  # ids and names
    assert refused.code == 400
    error = json.loads(refused.read().decode())
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "1 of 2 rows cannot be scored" in error["message"]
    reasons = "annual_income=-5.0: below the minimum 0; spending_score=500.0: above the maximum 100"
    assert f"row 1: {reasons}" in error["message"]


def split_payload(frame) -> dict:
    """``frame`` as a ``dataframe_split`` request body."""
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}


def refusal(url: str, payload: dict) -> urllib.error.HTTPError:
    """The HTTP error a request that must fail gets (fails the test if it succeeds)."""
    with pytest.raises(urllib.error.HTTPError) as caught:
        http(url, payload)
    return caught.value
