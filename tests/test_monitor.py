"""``custseg-monitor``: a batch judged against the champion's reference profile, with a
real MLflow store, real files and the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from custseg.domain.monitoring.reference import ReferenceParams, model_reference
from custseg.pipeline.monitor import run_monitor
from custseg.storage.data import (
    DataValidationError,
    file_sha256,
    generate_customers,
    write_csv_atomic,
    write_parquet_atomic,
)
from custseg.tracking.monitoring import VERDICT_TAG
from custseg.tracking.registry import ModelNotFoundError, register_champion
from custseg.tracking.runs import log_fit_run, setup_experiment
from test_registry import TAGS, customer_table

from conftest import compose_settings, named_reference

MODEL = "customer-segmentation"
INCOME = "Annual Income (k$)"


class MonitoredStore:
    """A store whose @champion (version 1) carries its reference profile, and whose @old
    (version 2) was registered without one, as before custseg kept them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        experiment_id = setup_experiment(self.uri, MODEL, str(root / "mlruns"))
        table = customer_table(root, rows=300, seed=1)
        self.model, self.reference = named_reference(table)
        for alias, reference in (("champion", self.reference), ("old", None)):
            run_id = log_fit_run(
                self.model,
                images={},
                metrics={"silhouette": 0.5},
                run_name=f"final-{alias}",
                params={"k": 5},
                tags={},
                experiment_id=experiment_id,
                reference=reference,
            )
            register_champion(run_id, MODEL, alias, table, TAGS)

    def settings(self, batch: Path, *overrides: str):
        return compose_settings(
            [
                f"tracking.tracking_uri={self.uri}",
                f"catalog.path={self.root / 'no-catalog.json'}",
                f"monitor.input={batch}",
                f"monitor.output_dir={batch.parent / 'monitoring'}",
                *overrides,
            ]
        )


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> MonitoredStore:
    return MonitoredStore(tmp_path_factory.mktemp("monitor-store"))


def batch_file(
    folder: Path, name: str, rows: int = 400, seed: int = 5, income: float = 0.0, columns=None
) -> Path:
    """``rows`` new generated customers as raw CSV, incomes shifted by ``income``."""
    table = generate_customers(rows, seed=seed)
    table[INCOME] = table[INCOME] + income
    if columns is not None:
        table = table[columns]
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    (write_parquet_atomic if path.suffix == ".parquet" else write_csv_atomic)(table, path)
    return path


def test_a_batch_is_reported_logged_and_the_version_tagged(store, tmp_path):
    batch = batch_file(tmp_path / "in", "week1.csv")
    outcome = run_monitor(store.settings(batch))
    report = outcome.report
    assert outcome.json_path == tmp_path / "in" / "monitoring" / "week1.json"
    assert json.loads(outcome.json_path.read_text()) == report
    assert report["verdict"] == "stable", report["reasons"]
    assert set(report["columns"]) == {"annual_income", "spending_score", "age", "gender"}
    assert all(set(e) >= {"name", "drifted"} for e in report["segments"].values())
    assert report["model"] == {
        "uri": f"models:/{MODEL}@champion", "version": "1", "fingerprint": store.model.fingerprint
    }  # fmt: skip
    assert report["batch"]["sha256"] == file_sha256(batch)
    html = outcome.html_path.read_text(encoding="utf-8")
    assert len(html.encode()) < 1_000_000 and "<script" not in html and "http" not in html
    assert all(name in html for name in store.model.segment_names.values())

    client = MlflowClient(store.uri)
    experiment = client.get_experiment_by_name(f"{MODEL}-monitoring")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["custseg.model_version"] == "1"
    assert run.data.tags["fingerprint"] == store.model.fingerprint  # as on every custseg run
    assert run.data.tags["custseg.batch_sha256"] == file_sha256(batch)
    segment = next(iter(report["segments"]))
    expected = {
        "drift.annual_income.wasserstein_norm", "drift.annual_income.p_value",
        "psi.annual_income", "drift.gender.jensen_shannon", f"segment.{segment}.share",
        f"segment.{segment}.share_delta", f"segment.{segment}.beyond_p95", "verdict_level",
    }  # fmt: skip
    assert expected <= set(run.data.metrics)
    assert run.data.metrics[f"segment.{segment}.share"] == report["segments"][segment]["share"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"week1.json", "week1.html"}
    assert client.get_model_version(MODEL, "1").tags[VERDICT_TAG] == "stable"


def test_the_json_is_the_same_bytes_for_the_same_model_and_batch(store, tmp_path):
    batch = batch_file(tmp_path, "again.csv", income=8.0)
    first = run_monitor(store.settings(batch)).json_path.read_bytes()
    assert run_monitor(store.settings(batch)).json_path.read_bytes() == first


def test_a_model_registered_without_a_reference_says_so_in_one_line(store, tmp_path):
    batch = batch_file(tmp_path, "b.csv")
    with pytest.raises(ModelNotFoundError) as caught:
        run_monitor(store.settings(batch, "tracking.alias=old"))
    message = str(caught.value)
    assert "\n" not in message and "has no reference profile" in message
    assert "make run" in message and "monitor.model=models/segmentation.json" in message
    assert not (tmp_path / "monitoring").exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_batch_of_only_the_models_columns_is_monitored(store, tmp_path, suffix):
    columns = ["CustomerID", INCOME, "Spending Score (1-100)"]
    batch = batch_file(tmp_path, f"narrow{suffix}", columns=columns)
    report = run_monitor(store.settings(batch)).report
    assert report["quality"]["absent"] == ["age", "gender"]
    assert report["columns"]["gender"] == {"status": "absent", "drifted": False}
    assert report["columns"]["annual_income"]["status"] == "compared"


def test_a_batch_without_a_models_column_is_refused_by_name(store, tmp_path):
    batch = batch_file(tmp_path, "no-income.csv", columns=["CustomerID", "Spending Score (1-100)"])
    with pytest.raises(DataValidationError, match="Annual Income"):
        run_monitor(store.settings(batch))
    assert not (tmp_path / "monitoring").exists()


def test_bad_rows_are_refused_and_counted_with_their_lines(store, tmp_path):
    batch = batch_file(tmp_path, "bad.csv", rows=100)
    lines = batch.read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[3], "abc", 1)  # income of line 4
    lines[7] = ",".join([*lines[7].split(",")[:4], "-5"])  # spending of line 8
    batch.write_text("\n".join(lines) + "\n")
    report = run_monitor(store.settings(batch)).report
    refused = report["quality"]["refused"]
    assert refused["rows"] == 2 and report["customers"] == 98
    assert [r.split(":")[0] for r in refused["first"]] == ["line 4", "line 8"]


def test_a_store_that_cannot_log_only_warns_and_keeps_the_json(store, tmp_path):
    """A model description with its profile beside it, and a store that cannot be opened."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "segmentation.json").write_text(store.model.to_json())
    (models / "reference.json").write_text(json.dumps(store.reference))
    batch = batch_file(tmp_path, "offline.csv")
    (tmp_path / "a-file").write_text("not a folder")
    settings = store.settings(
        batch,
        f"monitor.model={models / 'segmentation.json'}",
        f"tracking.tracking_uri=sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}",
    )
    outcome = run_monitor(settings)
    assert outcome.json_path.is_file() and outcome.report["model"]["version"] is None
    assert len(outcome.notes) == 1 and "was not logged" in outcome.notes[0]


def test_a_profile_of_another_model_is_refused(store, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "segmentation.json").write_text(store.model.to_json())
    (models / "reference.json").write_text(json.dumps(store.reference | {"fingerprint": "f" * 64}))
    batch = batch_file(tmp_path, "x.csv")
    with pytest.raises(ModelNotFoundError, match="describes another model"):
        run_monitor(store.settings(batch, f"monitor.model={models / 'segmentation.json'}"))


def run_entry_point(
    store: MonitoredStore, cwd: Path, *overrides: str
) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "custseg-monitor"
    return subprocess.run(
        [str(script), f"tracking.tracking_uri={store.uri}", *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow  # three processes that import MLflow and Hydra
def test_the_entry_point_prints_the_verdict_and_fails_on_request(store, tmp_path):
    batch = batch_file(tmp_path, "richer.csv", income=25.0)
    done = run_entry_point(store, tmp_path, f"monitor.input={batch}")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == (
        f"{batch}: resegment (400 customers, model models:/{MODEL}@champion, version 1)"
    )
    assert any("annual_income drifted up by" in line for line in lines[1:-1])
    assert lines[-1] == "report: monitoring/richer.json and monitoring/richer.html"
    assert (tmp_path / "monitoring" / "richer.html").is_file()

    failed = run_entry_point(store, tmp_path, f"monitor.input={batch}", "monitor.fail_on=watch")
    assert failed.returncode == 3 and failed.stdout == done.stdout

    wrong = run_entry_point(store, tmp_path, f"monitor.input={batch}", "monitor.fail_on=stable")
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("custseg-monitor: error: monitor.fail_on='stable'")


def predict_settings(store: MonitoredStore, batch: Path, *overrides: str):
    return store.settings(
        batch, f"predict.input={batch}", f"predict.output={batch.with_suffix('.scored.csv')}",
        *overrides,
    )  # fmt: skip


def test_scoring_a_batch_monitors_it_too(store, tmp_path):
    from custseg.pipeline.predict import run_predict

    batch = batch_file(tmp_path, "scored-week.csv", income=25.0)
    outcome = run_predict(predict_settings(store, batch))
    json_path = tmp_path / "monitoring" / "scored-week.json"
    lines = outcome.summary().splitlines()
    assert lines[1].startswith("monitoring: resegment (") and lines[1].endswith(f" -> {json_path}")
    by_predict = json_path.read_bytes()
    assert run_monitor(store.settings(batch)).json_path.read_bytes() == by_predict


def test_scoring_never_fails_for_monitoring(store, tmp_path):
    from custseg.pipeline.predict import run_predict

    batch = batch_file(tmp_path, "old-model.csv")
    outcome = run_predict(predict_settings(store, batch, "tracking.alias=old"))
    assert batch.with_suffix(".scored.csv").is_file()
    assert outcome.monitoring.startswith("not monitored: model models:/") and (
        "has no reference profile" in outcome.monitoring
    )
    skipped = run_predict(predict_settings(store, batch, "predict.monitor=false"))
    assert skipped.monitoring is None and "monitoring" not in skipped.summary()


def test_a_transaction_log_is_monitored_on_its_customers_as_of_a_day(tmp_path, monkeypatch):
    """pipeline=transactions: the log's customers as of its last day (or monitor.as_of)."""
    import dataclasses

    from custseg.domain.clustering import fit_model, segment_model
    from custseg.domain.features import ModelParams
    from custseg.domain.profiling.profiles import profile_columns
    from custseg.storage.data import load_customers
    from custseg.storage.transactions import generate_transactions, log_customers

    monkeypatch.chdir(tmp_path)
    log = tmp_path / "log.csv"
    write_csv_atomic(generate_transactions(300, seed=9), log)
    rfm = compose_settings(["pipeline=transactions"])
    write_csv_atomic(log_customers(log, rfm.transactions, rfm.data).table, tmp_path / "c.csv")
    table, _ = load_customers(dataclasses.replace(rfm.data, path=str(tmp_path / "c.csv")))
    fit = fit_model(table, rfm.features, "standard", ModelParams(n_init=2), 4)
    model = segment_model(fit, "standard", {i: f"S{i}" for i in range(4)})
    numeric, categorical = profile_columns(table, rfm.features, rfm.data.not_profiled)
    ids = model.predict(table)
    reference = model_reference(
        model, table, dict(zip(*np.unique(ids, return_counts=True), strict=True)),
        numeric=numeric, categorical=categorical, silhouette=None,
        params=ReferenceParams(sample_size=1000, bins=10, seed=1),
    )  # fmt: skip
    (tmp_path / "segmentation.json").write_text(model.to_json())
    (tmp_path / "reference.json").write_text(json.dumps(reference))

    def monitor(*overrides: str) -> dict:
        settings = compose_settings(
            [
                "pipeline=transactions",
                f"monitor.input={log}",
                f"monitor.model={tmp_path / 'segmentation.json'}",
                f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                *overrides,
            ]
        )
        return run_monitor(settings).report

    same = monitor()
    assert same["verdict"] == "stable" and same["customers"] == len(table)
    assert same["batch"]["sha256"] == file_sha256(log)
    earlier = monitor("monitor.as_of=2025-06-30")
    assert earlier["customers"] < len(table) and earlier["verdict"] != "stable"


def test_refused_rows_are_said_and_never_carry_a_customer_id(store, tmp_path):
    """A batch with a tenth of its rows refused is at least `watch`, says why, and the
    reasons that go to MLflow hold no id; a batch with every row refused is not
    `insufficient` (a scheduler's fail_on=watch catches it)."""
    batch = batch_file(tmp_path, "many-bad.csv", rows=100)
    lines = batch.read_text().splitlines()
    for i in range(1, 11):  # ten rows with an income below the schema's minimum
        fields = lines[i].split(",")
        lines[i] = ",".join([*fields[:3], "-1", *fields[4:]])
    lines[2] = lines[1].split(",", 1)[0] + "," + lines[2].split(",", 1)[1]  # a duplicated id
    batch.write_text("\n".join(lines) + "\n")
    outcome = run_monitor(store.settings(batch))
    report = outcome.report
    assert report["quality"]["refused"]["rows"] == 10
    assert report["verdict"] != "stable"
    assert report["reasons"][0] == {
        "level": "watch",
        "text": "10 of 100 rows (10%) were refused (values the schema or the model does not "
        "accept: quality.refused)",
    }
    assert (
        outcome.summary()
        .splitlines()[0]
        .endswith(f"(90 customers, 10 rows refused, model models:/{MODEL}@champion, version 1)")
    )
    text = outcome.json_path.read_text() + outcome.html_path.read_text()
    assert "CustomerID=" not in text and "the id is on another row too" in text

    every = batch_file(tmp_path, "all-bad.csv", rows=60, income=-500.0)
    report = run_monitor(store.settings(every)).report
    assert (report["customers"], report["quality"]["refused"]["rows"]) == (0, 60)
    assert report["verdict"] == "watch" and "60 of 60 rows" in report["reasons"][0]["text"]
