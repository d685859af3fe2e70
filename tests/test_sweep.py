"""The sweep against a real sqlite MLflow store in tmp_path."""

from __future__ import annotations

import dataclasses
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from custseg.domain.clustering import fit_model, segment_model
from custseg.pipeline.sweep import format_summary, run_sweep
from custseg.storage.data import DataValidationError
from custseg.storage.outputs import CURVE_COLUMNS, read_segment_model
from custseg.tracking.runs import FINGERPRINT_TAG, ROLE_TAG

from conftest import RUN_ID, assert_shows, compose_settings, masked, shown_outputs, with_data_path

CHILD_METRICS = {
    "inertia", "silhouette", "calinski_harabasz", "davies_bouldin", "n_iter", "fit_seconds",
    "min_cluster_size", "max_cluster_size", "stability", "stability_std", "stability_resamples",
    "min_jaccard", "gap", "gap_se",
}  # fmt: skip


@pytest.fixture
def tracking_overrides(tracking_overrides, tmp_path):
    """The temp MLflow store, and sweep curves written below tmp_path too."""
    return [*tracking_overrides, f"sweep.output_dir={tmp_path / 'sweeps'}"]


def runs_of(experiment_id: str):
    return MlflowClient().search_runs([experiment_id], max_results=1000)


def artifact_paths(run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in MlflowClient().list_artifacts(run_id, path):
        found |= artifact_paths(run_id, item.path) if item.is_dir else {item.path}
    return found


def test_small_sweep_logs_exact_runs_metrics_and_artifacts(generated_csv, tracking_overrides):
    settings = with_data_path(
        compose_settings(
            [
                *tracking_overrides,
                "sweep.k_min=2",
                "sweep.k_max=4",
                "sweep.feature_sets=[income_spending,all]",
                "+feature_catalog.all.transforms={annual_income: log1p}",
            ]
        ),
        generated_csv,
    )
    outcome = run_sweep(settings, progress=False)

    runs = runs_of(outcome.experiment_id)
    parent = [r for r in runs if r.info.run_id == outcome.parent_run_id][0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == outcome.parent_run_id]
    assert len(runs) == 1 + 6
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert sorted((r.data.params["feature_set"], int(r.data.params["k"])) for r in children) == [
        ("all", 2), ("all", 3), ("all", 4),
        ("income_spending", 2), ("income_spending", 3), ("income_spending", 4),
    ]  # fmt: skip

    child = next(
        r for r in children if (r.data.params["feature_set"], r.data.params["k"]) == ("all", "2")
    )
    # scores, stability and gap, and each segment's Jaccard stability
    assert set(child.data.metrics) == CHILD_METRICS | {"jaccard_segment_0", "jaccard_segment_1"}
    assert 0 <= child.data.metrics["min_jaccard"] <= child.data.metrics["jaccard_segment_0"] <= 1
    assert child.data.tags["fit_health"] == "ok"
    assert child.data.params["features"] == "age,annual_income,spending_score,gender"
    assert {(r.data.params["feature_set"], r.data.params["transforms"]) for r in children} == {
        ("all", "annual_income=log1p"),
        ("income_spending", "none"),
    }
    assert child.data.params["scaler"] == "standard"
    assert child.data.params["model.n_init"] == "10"
    assert child.data.params["n_rows"] == "200"
    assert child.data.params["data_sha256"] == parent.data.tags["data.sha256"]
    assert artifact_paths(child.info.run_id) == {"plots/clusters.png", "plots/silhouette.png"}

    # parent: what each criterion picks, the selected k and run, plots and the table
    assert parent.data.metrics["selected_k"] == outcome.selected_k
    assert parent.data.tags["selected_run_id"] == outcome.selected_run_id
    assert artifact_paths(outcome.parent_run_id) >= {
        "plots/elbow_income_spending.png", "plots/elbow_all.png", "plots/metrics_vs_k.png",
        "sweep_summary.csv", "sweep_summary.json", "criteria_picks.json",
    }  # fmt: skip
    picks = json.loads(
        mlflow.artifacts.load_text(f"runs:/{outcome.parent_run_id}/criteria_picks.json")
    )
    assert set(picks) == {"income_spending", "all"}
    assert set(picks["all"]) == {
        "elbow", "silhouette", "calinski_harabasz", "davies_bouldin", "gap", "stability",
    }  # fmt: skip
    # the chosen k refitted with 3 other seeds, compared with the model
    assert 0 < parent.data.metrics["seed_ari_min"] <= parent.data.metrics["seed_ari_mean"] <= 1
    assert parent.data.params["trust.resamples"] == "20"
    summary = pd.read_csv(
        mlflow.artifacts.download_artifacts(f"runs:/{outcome.parent_run_id}/sweep_summary.csv")
    )
    assert len(summary) == 6 and set(summary["run_id"]) == {r.info.run_id for r in children}

    # the child's model scores raw customer rows (canonical names, extra columns ignored)
    model_info = mlflow.models.get_model_info(f"runs:/{child.info.run_id}/model")
    assert [c.name for c in model_info.signature.inputs] == [
        "age", "annual_income", "spending_score", "gender",
    ]  # fmt: skip
    model = mlflow.pyfunc.load_model(f"runs:/{child.info.run_id}/model")
    rows = pd.DataFrame(
        {"customer_id": ["a", "b"], "gender": ["Male", "Female"], "age": [30.0, 60.0],
         "annual_income": [20.0, 120.0], "spending_score": [90.0, 5.0]}
    )  # fmt: skip
    scored = model.predict(rows)
    assert set(scored["segment"]) <= {0, 1}
    # every logged model names its segments, and loads from its own code and JSON
    names = model.metadata.metadata["segment_names"]
    assert set(names) == {"0", "1"}
    assert scored["segment_name"].tolist() == [names[str(s)] for s in scored["segment"]]
    # and refuses rows outside the data schema, naming the row, column and value
    rows.loc[1, "age"] = 130.0
    with pytest.raises(MlflowException, match=r"row 1: age=130.0: above the maximum 120"):
        model.predict(rows)
    pyfunc = model_info.flavors["python_function"]
    assert pyfunc["loader_module"] == "mlflow.pyfunc.loaders.code_model"  # no pickle
    requirements = mlflow.artifacts.load_text(
        f"runs:/{child.info.run_id}/model/requirements.txt"
    ).split()
    assert all("==" in line for line in requirements)
    assert {line.split("==")[0] for line in requirements} == {"mlflow", "pandas", "numpy"}

    assert parent.info.run_name.startswith("sweep-2sets-")
    summary_text = format_summary(outcome, settings)
    assert "Sweep finished: 6 runs" in summary_text
    assert summary_text.count("<- final model") == 1

    # one deterministic curve per feature set for DVC: no run ids, no timings
    for name in ("income_spending", "all"):
        curve = pd.read_csv(Path(settings.sweep.output_dir) / name / "curve.csv")
        assert list(curve.columns) == list(CURVE_COLUMNS)
        assert curve["k"].tolist() == [2, 3, 4]
        expected = summary[summary["feature_set"] == name].sort_values("k")
        np.testing.assert_allclose(curve["inertia"], expected["inertia"])


def test_the_runs_of_a_dvc_experiment_carry_its_name(
    generated_csv, tracking_overrides, monkeypatch
):
    """Issue 29: parents all named sweep-4sets-<time>, nothing linking them to the names
    DVC gave the experiments, and child names cut off before the k in the UI."""
    monkeypatch.setenv("DVC_EXP_NAME", "tall-mink")
    overrides = [*tracking_overrides, "sweep.k_min=2", "sweep.k_max=3"]
    settings = with_data_path(compose_settings(overrides), generated_csv)
    settings = dataclasses.replace(
        settings, sweep=dataclasses.replace(settings.sweep, feature_sets=["income_spending"])
    )
    outcome = run_sweep(settings, progress=False)
    runs = runs_of(outcome.experiment_id)
    names = sorted(r.info.run_name for r in runs)
    assert names == ["k2 income_spending", "k3 income_spending", "sweep-income_spending-tall-mink"]
    assert {r.data.tags.get("custseg.dvc_exp") for r in runs} == {"tall-mink"}


def test_input_example_holds_no_customer_row():
    table = pd.DataFrame(
        {"customer_id": ["1", "2", "3", "4"], "gender": ["Male", "Male", "Female", "Female"],
         "age": [20.0, 22.0, 60.0, 64.0], "annual_income": [10.0, 12.0, 90.0, 94.0]}
    )  # fmt: skip
    from custseg.domain.features import FeatureSet, ModelParams

    fs = FeatureSet("x", numeric=["age", "annual_income"], categorical=["gender"])
    result = fit_model(table, fs, "standard", ModelParams(n_init=2), 2)
    example = segment_model(result, "standard", {0: "a", 1: "b"}).input_example()
    assert list(example.columns) == ["age", "annual_income", "gender"]
    assert sorted(example.to_dict("records"), key=lambda r: r["age"]) == [
        {"age": 21.0, "annual_income": 11.0, "gender": "Male"},
        {"age": 62.0, "annual_income": 92.0, "gender": "Female"},
    ]
    raw = {tuple(r) for r in table[["age", "annual_income", "gender"]].itertuples(index=False)}
    assert not raw & {tuple(r) for r in example.itertuples(index=False)}


def test_bad_data_fails_before_any_run(tmp_path, tracking_overrides):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)\n"
        "1,Male,27,44,52\n2,Female,33,58,181\n"
    )
    settings = with_data_path(compose_settings(tracking_overrides), bad)
    with pytest.raises(DataValidationError, match=r"Spending Score \(1-100\)[\s\S]*line 3"):
        run_sweep(settings, progress=False)
    assert not (tmp_path / "mlflow.db").exists()  # nothing was started, nothing to clean up


def test_failure_mid_sweep_leaves_no_run_running(tmp_path, generated_csv, tracking_overrides):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("artifacts cannot be written below a file")
    overrides = [o for o in tracking_overrides if not o.startswith("tracking.artifact_location")]
    settings = with_data_path(
        compose_settings(
            [*overrides, f"tracking.artifact_location={blocker / 'mlruns'}", "sweep.k_max=3",
             "sweep.feature_sets=[income_spending]"]
        ),
        generated_csv,
    )  # fmt: skip
    with pytest.raises(Exception, match="not-a-directory"):
        run_sweep(settings, progress=False)
    mlflow.set_tracking_uri(settings.tracking.tracking_uri)
    experiment = MlflowClient().get_experiment_by_name(settings.tracking.experiment_name)
    statuses = [r.info.status for r in runs_of(experiment.experiment_id)]
    assert statuses and set(statuses) == {"FAILED"}


@pytest.mark.slow
def test_seed_data_default_sweep_selects_five_segments(seed_csv, tracking_overrides):
    settings = with_data_path(compose_settings(tracking_overrides), seed_csv)
    outcome = run_sweep(settings, progress=False)

    assert len(outcome.summary) == 36
    assert outcome.final_feature_set == "income_spending"
    assert outcome.selected_k == 5
    picks = outcome.selections["income_spending"].picks
    assert outcome.selections["income_spending"].method == "consensus"
    assert sum(k == 5 for k in picks.values()) >= 4, picks  # a clear majority, not a tie
    selected = outcome.summary.set_index("run_id").loc[outcome.selected_run_id]
    assert (selected["feature_set"], selected["k"]) == ("income_spending", 5)

    # the classic five segments of the Mall table, whatever ids KMeans gave them
    model = mlflow.pyfunc.load_model(f"runs:/{outcome.selected_run_id}/model")
    table = pd.read_csv(seed_csv).rename(
        columns={"Annual Income (k$)": "annual_income", "Spending Score (1-100)": "spending_score"}
    )
    scored = model.predict(table[["annual_income", "spending_score"]].astype(float))
    sizes = np.bincount(scored["segment"])
    assert sorted(sizes.tolist()) == [22, 23, 35, 39, 81]
    runs = runs_of(outcome.experiment_id)
    assert len(runs) == 37 and {r.info.status for r in runs} == {"FINISHED"}
    # the five segments are stable: bootstrap refits find each of them again
    assert selected["stability"] > 0.95
    child = next(r for r in runs if r.info.run_id == outcome.selected_run_id)
    assert all(child.data.metrics[f"jaccard_segment_{i}"] > 0.9 for i in range(5))
    parent = next(r for r in runs if r.info.run_id == outcome.parent_run_id)
    assert parent.data.metrics["seed_ari_min"] > 0.95


def count_runs_read_only(db: Path, status: str | None = None) -> int:
    """Runs in an MLflow sqlite store (only those with ``status`` if given), read without
    MLflow (which would migrate the schema concurrently with the process under test)."""
    query = "select count(*) from runs" + (" where status = ?" if status else "")
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute(query, (status,) if status else ()).fetchone()[0]
    except sqlite3.Error:  # not created yet, or tables still being created
        return 0


def terminate_when(
    command: list[str], cwd: Path, ready: Callable[[], bool], poll_seconds: float
) -> tuple[int, str]:
    """Start ``command``, send SIGTERM once ``ready()`` holds; its exit code and output.

    Poll gently (>= 0.1 s): each ``ready()`` read of the sqlite store briefly locks it, and
    a writer that finds it locked fails ("database is locked").
    """
    proc = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and not ready():
            time.sleep(poll_seconds)
        assert proc.poll() is None, f"{command[0]} ended before it could be interrupted"
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, output


def count_rows_read_only(db: Path, table: str) -> int:
    """Rows of a table of an MLflow sqlite store, read without MLflow (0 before it exists)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute(f"select count(*) from {table}").fetchone()[0]
    except sqlite3.Error:
        return 0


def kill_9_when(command: list[str], cwd: Path, ready: Callable[[], bool]) -> bool:
    """Start ``command`` and SIGKILL it once ``ready()`` holds; whether it was still
    running then (a fast process may have finished first)."""
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and not ready():
            time.sleep(0.05)
        killed = proc.poll() is None
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return killed


@pytest.mark.slow  # three custseg-publish processes
def test_kill_9_during_publish_leaves_nothing_half_registered(
    tmp_path, generated_csv, tracking_overrides
):
    """kill -9 of custseg-publish while its final run is open, then again once a model
    version exists: no version without its tags, no alias on a model that does not
    load, and the next publish completes with one version, @champion on it."""
    overrides = [f"data.path={generated_csv}", *tracking_overrides, "sweep.k_max=5"]
    settings = compose_settings([*overrides, "sweep.feature_sets=[income_spending]"])
    run_sweep(with_data_path(settings, generated_csv), progress=False)
    bin_dir = Path(sys.executable).parent
    hydra_dir = f"hydra.run.dir={tmp_path / 'outputs'}"
    subprocess.run(
        [str(bin_dir / "custseg-select"), *overrides, hydra_dir],
        cwd=tmp_path, check=True, capture_output=True,
    )  # fmt: skip
    db = tmp_path / "mlflow.db"
    publish = [str(bin_dir / "custseg-publish"), *overrides, hydra_dir]

    # 1. while the final run is open (model being logged): nothing registered
    assert kill_9_when(publish, tmp_path, lambda: count_runs_read_only(db, "RUNNING") > 0)
    assert count_rows_read_only(db, "model_versions") == 0
    assert not (tmp_path / "catalog").exists()
    # 2. as soon as a version exists (the alias may not be set yet)
    kill_9_when(publish, tmp_path, lambda: count_rows_read_only(db, "model_versions") > 0)

    mlflow.set_tracking_uri(f"sqlite:///{db}")
    client = MlflowClient()
    model = read_segment_model(tmp_path / "models" / "segmentation.json")
    for version in client.search_model_versions("name='customer-segmentation'"):
        assert version.status == "READY"
        assert version.tags[FINGERPRINT_TAG] == model.fingerprint  # tags came with it
    for alias, number in client.get_registered_model("customer-segmentation").aliases.items():
        loaded = mlflow.pyfunc.load_model(f"models:/customer-segmentation/{number}")
        assert loaded.predict(model.input_example())["segment"].tolist(), alias

    # 3. the next publish completes: the killed runs are KILLED, one version, @champion
    done = subprocess.run(publish, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    experiment = client.get_experiment_by_name("customer-segmentation")
    statuses = [r.info.status for r in runs_of(experiment.experiment_id)]
    assert "RUNNING" not in statuses and statuses.count("KILLED") >= 1
    versions = client.search_model_versions("name='customer-segmentation'")
    assert len(versions) == 1
    champion = client.get_model_version_by_alias("customer-segmentation", "champion")
    assert champion.version == versions[0].version
    assert champion.tags[FINGERPRINT_TAG] == model.fingerprint
    assert read_segment_model(tmp_path / "catalog" / "champion.json") == model
    scored = mlflow.pyfunc.load_model("models:/customer-segmentation@champion").predict(
        model.input_example()
    )
    assert scored["segment"].tolist() == model.segments

    # 4. a kill between moving @champion and writing the catalog (the window step 2 may
    # or may not hit) leaves the champion without its catalog: the next publish writes it
    (tmp_path / "catalog" / "champion.json").unlink()
    done = subprocess.run(publish, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert read_segment_model(tmp_path / "catalog" / "champion.json") == model
    assert len(client.search_model_versions("name='customer-segmentation'")) == 1


def few_distinct_customers(path: Path, n: int = 120) -> Path:
    """``n`` customers with 8 distinct (gender, age, income, score) rows."""
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {
            "CustomerID": range(1, n + 1),
            "Gender": rng.choice(["Female", "Male"], n),
            "Age": 30,
            "Annual Income (k$)": rng.choice([20, 100], n),
            "Spending Score (1-100)": rng.choice([10, 90], n),
        }
    ).to_csv(path, index=False)
    return path


@pytest.mark.slow  # a custseg-sweep process: its exit status is what users see
def test_one_failing_fit_does_not_lose_the_others(tmp_path, tracking_overrides):
    # k-prototypes cannot make 9 segments of 8 distinct customers; k=7 and k=8 work (k=7
    # stops at max_iter=1: a fit_health warning, not a failure)
    data = few_distinct_customers(tmp_path / "few.csv")
    script = Path(sys.executable).parent / "custseg-sweep"
    command = [
        str(script), f"data.path={data}", *tracking_overrides, "model=kprototypes",
        "model.n_init=2", "features=all", "sweep.feature_sets=[all]", "sweep.k_min=7",
        "sweep.k_max=9", "sweep.n_jobs=2", "model.max_iter=1",
        f"hydra.run.dir={tmp_path / 'outputs'}",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)

    assert done.returncode == 1, done.stderr
    assert "custseg-sweep: error: 1 of 3 fits failed; the other 2 are logged" in done.stderr
    assert (
        "  - all k=9: ValueError: k-prototypes found 8 segments for k=9: the table has 8 "
        "distinct customers on these columns; lower sweep.k_max (run "
    ) in done.stderr
    assert "Traceback" not in done.stderr
    assert "fit all k=7: stopped at max_iter=1 before converging" in done.stderr
    for shown in shown_outputs():  # docs/troubleshooting.md, the run ids masked
        assert_shows(masked(done.stderr, RUN_ID), shown)
    assert not (tmp_path / "sweeps").exists()  # no curve or model of a partial sweep

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = MlflowClient().get_experiment_by_name("customer-segmentation")
    runs = {r.data.tags.get("mlflow.runName"): r for r in runs_of(experiment.experiment_id)}
    parent = next(r for r in runs.values() if r.data.tags.get(ROLE_TAG) == "sweep")
    assert parent.info.status == "FAILED"
    assert {name: r.info.status for name, r in runs.items() if r is not parent} == {
        "k7 all": "FINISHED", "k8 all": "FINISHED", "k9 all": "FAILED",
    }  # fmt: skip
    failed = runs["k9 all"]
    assert failed.data.tags["fit_error"].startswith("ValueError: k-prototypes found 8 segments")
    assert failed.data.params["k"] == "9"
    assert failed.info.run_id in done.stderr
    error = mlflow.artifacts.load_text(f"runs:/{failed.info.run_id}/error.txt")
    assert error.startswith("Traceback") and "k-prototypes found 8 segments" in error


@pytest.mark.slow
def test_sigterm_mid_sweep_marks_runs_failed(tmp_path, generated_csv, tracking_overrides):
    """`kill` (SIGTERM) of a running sweep leaves every run FAILED, none RUNNING."""
    script = Path(sys.executable).parent / "custseg-sweep"
    hydra_dir = f"hydra.run.dir={tmp_path / 'outputs'}"
    db = tmp_path / "mlflow.db"
    returncode, output = terminate_when(  # once a few child runs exist
        [str(script), f"data.path={generated_csv}", *tracking_overrides, hydra_dir],
        tmp_path, lambda: count_runs_read_only(db) >= 3, poll_seconds=0.5,
    )  # fmt: skip
    assert returncode == 128 + signal.SIGTERM, output
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    experiment = MlflowClient().get_experiment_by_name("customer-segmentation")
    runs = runs_of(experiment.experiment_id)
    assert runs, output
    assert {r.info.status for r in runs} <= {"FINISHED", "FAILED"}, output
    # the signal may land between two child runs, so only the parent is sure to have failed
    parents = [r for r in runs if r.data.tags.get(ROLE_TAG) == "sweep"]
    assert [r.info.status for r in parents] == ["FAILED"], output


@pytest.mark.slow
def test_sigterm_during_publish_marks_the_final_run_failed(
    tmp_path, generated_csv, tracking_overrides
):
    """`kill` of custseg-publish while its final run is open ends that run FAILED."""
    overrides = [f"data.path={generated_csv}", *tracking_overrides, "sweep.k_max=6"]
    settings = compose_settings([*overrides, "sweep.feature_sets=[income_spending]"])
    run_sweep(with_data_path(settings, generated_csv), progress=False)
    db = tmp_path / "mlflow.db"
    sweep_runs = count_runs_read_only(db)
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "custseg-select"), *overrides, f"hydra.run.dir={tmp_path / 'outputs'}"],
        cwd=tmp_path, check=True, capture_output=True,
    )  # fmt: skip
    assert count_runs_read_only(db) == sweep_runs  # select logs nothing

    script = bin_dir / "custseg-publish"
    returncode, output = terminate_when(  # once its final run is open
        [str(script), *overrides, f"hydra.run.dir={tmp_path / 'outputs'}"],
        tmp_path, lambda: count_runs_read_only(db, "RUNNING") > 0, poll_seconds=0.2,
    )  # fmt: skip
    assert returncode == 128 + signal.SIGTERM, output
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    experiment = MlflowClient().get_experiment_by_name("customer-segmentation")
    runs = runs_of(experiment.experiment_id)
    final = [r for r in runs if r.data.tags.get(ROLE_TAG) == "final"]
    assert len(runs) == sweep_runs + 1 and [r.info.status for r in final] == ["FAILED"], output
    # nothing half-published: no version, no alias, no catalog, no status
    assert MlflowClient().search_model_versions("name='customer-segmentation'") == []
    assert not (tmp_path / "catalog").exists() and not (tmp_path / "status").exists()


@pytest.mark.slow
def test_select_refuses_models_swept_with_other_settings(
    tmp_path, generated_csv, tracking_overrides
):
    """A sweep with another scaler leaves models that select must not take."""
    overrides = [f"data.path={generated_csv}", *tracking_overrides, "sweep.k_max=6"]
    unscaled = compose_settings([*overrides, "preprocess.scaler=none"])
    run_sweep(with_data_path(unscaled, generated_csv), progress=False)
    runs_before = count_runs_read_only(tmp_path / "mlflow.db")

    script = Path(sys.executable).parent / "custseg-select"
    result = subprocess.run(
        [str(script), *overrides, f"hydra.run.dir={tmp_path / 'outputs'}"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "was fitted with other settings or data (scaler differ" in result.stderr
    assert count_runs_read_only(tmp_path / "mlflow.db") == runs_before  # nothing logged
    assert not (tmp_path / "models").exists()


def test_select_refuses_a_swept_model_of_other_transforms():
    from custseg.domain.features import FeatureSet, ModelParams
    from custseg.pipeline.select import _check_feature_set
    from custseg.storage.outputs import StaleInputError

    table = pd.DataFrame({"age": [20.0, 22.0, 60.0, 64.0], "annual_income": [1.0, 2.0, 9.0, 9.5]})
    logged = FeatureSet("x", numeric=["age", "annual_income"], transforms={"age": "log1p"})
    result = fit_model(table, logged, "standard", ModelParams(n_init=2), 2)
    model = segment_model(result, "standard", {0: "a", 1: "b"})
    _check_feature_set(model, logged)
    plain = FeatureSet("x", numeric=["age", "annual_income"], transforms={"age": "none"})
    with pytest.raises(StaleInputError, match=r"transforms \{'age': 'log1p'\}, the config none"):
        _check_feature_set(model, plain)
