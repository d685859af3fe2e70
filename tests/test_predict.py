"""``custseg-predict``: scoring a CSV of new customers with a registered model."""

from __future__ import annotations

import csv
import dataclasses
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from custseg.config import ConfigError
from custseg.domain.clustering import fit_model, segment_model
from custseg.domain.features import FeatureSet, ModelParams
from custseg.pipeline.predict import run_predict
from custseg.storage.data import (
    DataValidationError,
    generate_customers,
    load_customers,
    write_csv_atomic,
)
from custseg.tracking.registry import ModelNotFoundError, register_champion
from custseg.tracking.runs import save_segment_model, setup_experiment
from test_registry import TAGS, customer_table, log_model_run, segment_metadata

from conftest import compose_settings, with_data_path

MODEL = "customer-segmentation"


class Registry:
    """A store with ``MODEL``: version 1 (k=5, segment names) is @champion, version 2
    (k=3, no names) is @plain."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        experiment_id = setup_experiment(self.uri, "customer-segmentation", str(root / "mlruns"))
        table = customer_table(root)
        run_id, self.fit = log_model_run(experiment_id, table, 5, metadata=segment_metadata(5))
        register_champion(run_id, MODEL, "champion", table, TAGS)
        plain_run, _ = log_model_run(experiment_id, table, 3)
        register_champion(plain_run, MODEL, "plain", table, {"k": "3"})

    def settings(self, input_csv: Path, output: Path | None = None, *overrides: str, catalog=None):
        """Scoring settings; the catalog is absent (no champion recorded) unless given.
        Scoring only: monitoring while scoring is tested in test_monitor.py."""
        return compose_settings(
            [
                f"tracking.tracking_uri={self.uri}",
                "predict.monitor=false",
                f"catalog.path={catalog or self.root / 'no-catalog.json'}",
                f"predict.input={input_csv}",
                *([f"predict.output={output}"] if output is not None else []),
                *overrides,
            ]
        )


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Registry:
    return Registry(tmp_path_factory.mktemp("predict-store"))


@pytest.fixture
def new_customers(tmp_path: Path) -> Path:
    return write_new_customers(tmp_path)


def write_new_customers(tmp_path: Path) -> Path:
    """60 new customers in file order 60..1, with an extra free-text column that needs
    quoting, and a blank line (not a customer) in the middle."""
    table = generate_customers(60, seed=3).iloc[::-1].reset_index(drop=True)
    table.insert(2, "Note", [f'"vip", since {2000 + i}' if i % 7 == 0 else "" for i in range(60)])
    path = tmp_path / "incoming" / "new_customers.csv"
    path.parent.mkdir()
    text = table.to_csv(index=False, lineterminator="\n")
    lines = text.splitlines(keepends=True)
    path.write_text("".join([*lines[:30], "\n", *lines[30:]]), encoding="utf-8")
    return path


def read_text_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_scores_every_row_in_order_with_the_original_columns(registry, new_customers, tmp_path):
    output = tmp_path / "out" / "scored.csv"
    settings = registry.settings(new_customers, output)
    outcome = run_predict(settings)

    scored = read_text_table(output)
    original = read_text_table(new_customers)
    assert len(original) == 60
    assert list(scored.columns) == [*original.columns, "segment", "segment_name"]
    pd.testing.assert_frame_equal(scored[original.columns], original)  # text kept as written
    assert scored["CustomerID"].tolist() == [str(i) for i in range(60, 0, -1)]

    table, _ = load_customers(with_data_path(settings, new_customers).data)
    expected = registry.fit.predict(table)
    np.testing.assert_array_equal(scored["segment"].astype(int), expected)
    assert (scored["segment_name"] == "Segment " + scored["segment"]).all()

    assert outcome.version is not None and str(outcome.version.version) == "1"
    counts = np.bincount(expected, minlength=5)
    per_segment = ", ".join(f"{s}={n}" for s, n in enumerate(counts) if n)
    assert outcome.summary() == (
        f"scored 60 customers with model models:/{MODEL}@champion (version 1) -> {output}; "
        f"customers per segment: {per_segment}"
    )
    assert files_in(output.parent) == ["scored.csv"]


def test_no_segment_name_without_names_in_the_model(registry, new_customers, tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)  # the default output is relative to the project root
    settings = registry.settings(new_customers, None, f"predict.model_uri=models:/{MODEL}@plain")
    outcome = run_predict(settings)
    # without predict.output: scores/ (git-ignored) in the project, nothing next to the input
    assert outcome.output == Path("scores/new_customers.scored.csv")
    assert files_in(project / "scores") == ["new_customers.scored.csv"]
    assert files_in(new_customers.parent) == ["new_customers.csv"]
    scored = read_text_table(outcome.output)
    assert list(scored.columns)[-2:] == ["Spending Score (1-100)", "segment"]
    assert set(scored["segment"]) <= {"0", "1", "2"}
    assert "note: the model carries no segment names" in outcome.summary()  # not silently
    assert str(outcome.version.version) == "2"


def test_any_model_uri_scores(registry, new_customers, tmp_path):
    run_id = mlflow.MlflowClient(registry.uri).get_model_version(MODEL, "1").run_id
    output = tmp_path / "by_run.csv"
    settings = registry.settings(new_customers, output, f"predict.model_uri=runs:/{run_id}/model")
    outcome = run_predict(settings)
    assert outcome.version is None
    assert "segment_name" in read_text_table(output).columns
    assert outcome.summary().startswith(
        f"scored 60 customers with model runs:/{run_id}/model (no registry version) -> {output}; "
    )

    # a model directory (as custseg-select writes models/segmentation)
    model_dir = mlflow.artifacts.download_artifacts(
        f"runs:/{run_id}/model", dst_path=str(tmp_path / "dir"), tracking_uri=registry.uri
    )
    output = tmp_path / "by_path.csv"
    outcome = run_predict(
        registry.settings(new_customers, output, f"predict.model_uri={model_dir}")
    )
    assert outcome.version is None
    assert outcome.summary().startswith(
        f"scored 60 customers with model {model_dir} (no registry version) -> {output}; "
    )
    assert read_text_table(output).equals(read_text_table(tmp_path / "by_run.csv"))


def test_invalid_input_raises_and_writes_nothing(registry, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)\n"
        "1,Male,27,44,52\n2,Robot,33,58,181\n"
    )
    output = tmp_path / "scored.csv"
    with pytest.raises(DataValidationError) as error:
        run_predict(registry.settings(bad, output))
    message = str(error.value)
    assert "2 problems" in message and "'Robot'" in message and "'181'" in message
    assert files_in(tmp_path) == ["bad.csv"]


HEADER = "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100),Note\n"
MIXED = [  # file lines 2..8: four rows with bad values, three good ones
    "1,Male,27,44,52,ok",
    "2,Robot,-5,58,50,two problems",
    "3,Female,33,58,181,score out of range",
    "4, female ,41,90,12,normalised: good",
    "5,Male,,70,40,missing age",
    "6,Female,35,20,77,ok",
    "6,Male,50,30,30,id of line 7 again",
]


def test_rejects_option_scores_the_good_rows_and_sets_the_others_aside(registry, tmp_path):
    source = tmp_path / "mixed.csv"
    source.write_text(HEADER + "\n".join(MIXED) + "\n")
    output, rejects = tmp_path / "out" / "scored.csv", tmp_path / "out" / "rejects.csv"
    outcome = run_predict(registry.settings(source, output, f"predict.rejects={rejects}"))

    scored = read_text_table(output)
    assert scored["CustomerID"].tolist() == ["1", "4"]
    assert scored["Gender"].tolist() == ["Male", " female "]  # as written
    assert (scored["segment_name"] == "Segment " + scored["segment"]).all()
    rejected = read_text_table(rejects)
    assert list(rejected.columns) == ["line", "reason", *read_text_table(source).columns]
    assert rejected["line"].tolist() == ["3", "4", "6", "7", "8"]
    assert rejected["Note"].tolist() == [
        "two problems", "score out of range", "missing age", "ok", "id of line 7 again",
    ]  # fmt: skip
    reasons = rejected.set_index("line")["reason"]
    assert reasons["3"] == (
        "Gender='Robot': not among the allowed values ['Female', 'Male']; "
        "Age='-5': below the minimum 0"
    )
    assert reasons["4"] == "Spending Score (1-100)='181': above the maximum 100"
    assert reasons["6"] == "Age='': missing"
    assert reasons["7"] == reasons["8"] == "CustomerID='6': the id is on another row too"
    assert outcome.summary().endswith(f"; rejected 5 rows -> {rejects}")
    assert files_in(output.parent) == ["rejects.csv", "scored.csv"]


def test_rejects_include_rows_outside_the_models_own_ranges(registry, tmp_path):
    # a model fitted under a narrower schema (income up to 60k$) than today's data config
    settings = compose_settings()
    table = customer_table(tmp_path).query("annual_income <= 60").reset_index(drop=True)
    result = fit_model(table, settings.features, "standard", ModelParams(n_init=2), 3)
    narrow = dataclasses.replace(
        segment_model(result, "standard", {i: f"S{i}" for i in range(3)}),
        limits={"annual_income": [0, 60]},
    )
    save_segment_model(narrow, tmp_path / "narrow")
    source = tmp_path / "new.csv"
    # a blank line (not a customer) before the refused rows: their lines are still right
    source.write_text(HEADER + "1,Male,27,44,52,x\n\n2,Male,27,61.5,52,y\n3,Male,27,200,52,z\n")
    rejects = tmp_path / "rejects.csv"
    overrides = [f"predict.model_uri={tmp_path / 'narrow'}", f"predict.rejects={rejects}"]
    run_predict(registry.settings(source, tmp_path / "scored.csv", *overrides))

    assert read_text_table(tmp_path / "scored.csv")["CustomerID"].tolist() == ["1"]
    rejected = read_text_table(rejects)
    assert rejected["line"].tolist() == ["4", "5"]
    assert rejected["reason"].tolist() == [
        "the model's schema: annual_income=61.5: above the maximum 60",
        "the model's schema: annual_income=200.0: above the maximum 60",
    ]

    # without the option, the model refuses the whole batch and nothing is written
    with pytest.raises(ValueError, match=r"2 of 3 rows cannot be scored.*row 1: annual_income"):
        run_predict(registry.settings(source, tmp_path / "all.csv", overrides[0]))
    assert not (tmp_path / "all.csv").exists()


def test_no_good_row_writes_the_rejects_and_fails(registry, tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text(HEADER + MIXED[1] + "\n" + MIXED[2] + "\n")
    output, rejects = tmp_path / "scored.csv", tmp_path / "rejects.csv"
    with pytest.raises(ValueError, match=r"no row of .*bad\.csv can be scored: all 2 rows are in"):
        run_predict(registry.settings(source, output, f"predict.rejects={rejects}"))
    assert read_text_table(rejects)["line"].tolist() == ["2", "3"]
    assert not output.exists()
    with pytest.raises(ConfigError, match="would overwrite the input or output"):
        run_predict(registry.settings(source, output, f"predict.rejects={output}"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (  # issue 29: an alias of a model that has others is not created by `dvc repro`
            ["tracking.alias=nope"],
            rf"models:/{MODEL}@nope does not exist: registered model '{MODEL}' has no alias "
            r"'nope' \(aliases: @champion -> version 1, @plain -> version 2\); point it at a "
            r"version with `custseg promote --alias nope --version N`$",
        ),
        (  # ... and a near-miss is a typo
            ["tracking.alias=champoin"],
            rf"models:/{MODEL}@champoin does not exist: registered model '{MODEL}' has no "
            r"alias 'champoin' \(aliases: .*\); did you mean @champion\?$",
        ),
        (
            ["tracking.registered_model_name=other"],
            r"models:/other@champion does not exist: there is no registered model 'other'",
        ),
        (
            [f"predict.model_uri=models:/{MODEL}/9"],
            rf"models:/{MODEL}/9 does not exist: registered model '{MODEL}' has no version 9 "
            r"\(versions: 1, 2\)",
        ),
    ],
)
def test_missing_model_or_alias_is_a_clear_error(
    registry, new_customers, tmp_path, overrides, message
):
    output = tmp_path / "scored.csv"
    output.write_text("the previous result\n")
    with pytest.raises(ModelNotFoundError, match=message):
        run_predict(registry.settings(new_customers, output, *overrides))
    assert output.read_text() == "the previous result\n"  # untouched
    assert files_in(tmp_path) == ["incoming", "scored.csv"]


def test_missing_store_is_a_clear_error_and_not_created(new_customers, tmp_path):
    db = tmp_path / "elsewhere" / "mlflow.db"
    settings = compose_settings(
        [f"tracking.tracking_uri=sqlite:///{db}", f"predict.input={new_customers}"]
    )
    with pytest.raises(ModelNotFoundError, match=r"no MLflow store at sqlite:///.*`dvc repro`"):
        run_predict(settings)
    assert not db.parent.exists()


def test_a_model_that_cannot_score_the_input_leaves_no_output(registry, tmp_path):
    # a model trained on a column the customer schema does not have
    experiment_id = setup_experiment(
        registry.uri, "customer-segmentation", str(tmp_path / "mlruns")
    )
    table = customer_table(tmp_path).assign(loyalty=1.0)
    loyalty = FeatureSet("loyalty", numeric=["annual_income", "loyalty"])
    run_id, _ = log_model_run(experiment_id, table, 2, feature_set=loyalty)
    source = tmp_path / "in" / "customers.csv"
    source.parent.mkdir()
    generate_customers(10, 4).to_csv(source, index=False)
    output = tmp_path / "in" / "scored.csv"
    with pytest.raises(ValueError, match=r"cannot score .*customers\.csv: .*'loyalty'"):
        run_predict(registry.settings(source, output, f"predict.model_uri=runs:/{run_id}/model"))
    assert files_in(source.parent) == ["customers.csv"]


def test_config_errors(registry, new_customers):
    with pytest.raises(ConfigError, match="predict.input is required"):
        run_predict(compose_settings([f"tracking.tracking_uri={registry.uri}"]))
    with pytest.raises(ConfigError, match="would overwrite the input"):
        run_predict(registry.settings(new_customers, new_customers))


def test_refuses_to_overwrite_an_input_column(registry, tmp_path):
    source = tmp_path / "rescored.csv"
    generate_customers(10, 4).assign(segment=1).to_csv(source, index=False)
    with pytest.raises(ValueError, match=r"already has column\(s\) \['segment'\]"):
        run_predict(registry.settings(source, tmp_path / "out.csv"))
    assert files_in(tmp_path) == ["rescored.csv"]


def run_entry_point(registry: Registry, cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "custseg-predict"
    return subprocess.run(
        [str(script), f"tracking.tracking_uri={registry.uri}", "predict.monitor=false", *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow  # two processes that import MLflow, sklearn and Hydra: ~20 s
def test_entry_point_prints_a_summary_or_the_error(registry, new_customers, tmp_path):
    done = run_entry_point(registry, tmp_path, f"predict.input={new_customers}")
    assert done.returncode == 0, done.stderr
    # no MLflow INFO lines and no download progress bar in a log (warnings may show)
    assert " INFO " not in done.stderr and "Downloading artifacts" not in done.stderr, done.stderr
    summary = done.stdout.strip().splitlines()
    assert len(summary) == 1
    output = Path("scores/new_customers.scored.csv")  # the default, in the working directory
    assert summary[0].startswith(
        f"scored 60 customers with model models:/{MODEL}@champion (version 1) -> {output};"
    )
    with (tmp_path / output).open(newline="") as fh:
        assert sum(1 for _ in csv.reader(fh)) == 61
    assert files_in(tmp_path) == ["incoming", "scores"]  # no Hydra outputs/ or .log file

    failed = run_entry_point(
        registry, tmp_path, f"predict.input={new_customers}", "tracking.alias=nope",
        f"predict.output={tmp_path / 'never.csv'}",
    )  # fmt: skip
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"custseg-predict: error: models:/{MODEL}@nope does not exist")
    assert not (tmp_path / "never.csv").exists()


def test_a_champion_other_than_the_catalog_is_flagged(registry, new_customers, tmp_path):
    """Scoring never disagrees silently with the champion recorded in the catalog."""
    from custseg.domain.segment_model import SegmentModel

    catalog = tmp_path / "catalog.json"
    other = SegmentModel(
        feature_set="x", numeric=["annual_income"], categorical=[], center=[0.0],
        scale=[1.0], categories={}, centroids=[[1.0]], segments=[0], names=["All"],
    )  # fmt: skip
    catalog.write_text(other.to_json(), encoding="utf-8")
    settings = registry.settings(new_customers, tmp_path / "out.csv", catalog=catalog)
    summary = run_predict(settings).summary()
    assert "(version 1)" in summary
    assert f"is not the champion recorded in {catalog}" in summary


def test_a_transaction_log_is_scored_per_customer_on_its_rfm_values(tmp_path, monkeypatch):
    """pipeline=transactions: predict.input is a log; each customer gets the segment of
    their RFM values as of the log's last day (or predict.as_of)."""
    from custseg.storage.data import write_csv_atomic
    from custseg.storage.transactions import generate_transactions, log_customers

    monkeypatch.chdir(tmp_path)
    log = tmp_path / "log.csv"
    write_csv_atomic(generate_transactions(150, seed=9), log)
    rfm = compose_settings(["pipeline=transactions"])
    customers = log_customers(log, rfm.transactions, rfm.data)
    write_csv_atomic(customers.table, tmp_path / "customers.csv")
    table, _ = load_customers(dataclasses.replace(rfm.data, path=str(tmp_path / "customers.csv")))
    fit = fit_model(table, rfm.features, "standard", ModelParams(n_init=2), 4)
    model = segment_model(fit, "standard", {i: f"S{i}" for i in range(4)})
    (tmp_path / "model.json").write_text(model.to_json(), encoding="utf-8")

    def score(*overrides: str):
        output = tmp_path / "scored.csv"
        settings = compose_settings(
            [
                "pipeline=transactions",
                f"predict.input={log}",
                f"predict.output={output}",
                f"predict.model_uri={tmp_path / 'model.json'}",
                *overrides,
            ]
        )
        return run_predict(settings), read_text_table(output)

    outcome, scored = score()
    assert scored["customer_id"].tolist() == table["customer_id"].tolist()  # one row each
    assert scored["segment"].astype(int).tolist() == model.predict(table).tolist()
    last_day = customers.as_of
    assert f"{len(table)} customers on their RFM values as of {last_day}" in outcome.notes[0]

    # as of an earlier day: recency counts to that day, later lines are left out
    outcome, earlier = score("predict.as_of=2025-06-30")
    assert "as of 2025-06-30" in outcome.notes[0] and "transactions after it" in outcome.notes[0]
    assert len(earlier) < len(scored)


def test_a_batch_needs_only_the_models_columns(registry, tmp_path):
    """The income x spending champion scores customers without age and gender (issue 29:
    it refused them, naming columns it does not read); its own columns stay required."""
    table = generate_customers(40, seed=5)[
        ["CustomerID", "Annual Income (k$)", "Spending Score (1-100)"]
    ]
    source = tmp_path / "narrow.csv"
    write_csv_atomic(table, source)
    outcome = run_predict(registry.settings(source, tmp_path / "narrow.scored.csv"))
    scored = read_text_table(tmp_path / "narrow.scored.csv")
    assert list(scored.columns[:3]) == list(table.columns) and len(scored) == 40
    assert sum(outcome.counts.values()) == 40

    write_csv_atomic(table.drop(columns=["Annual Income (k$)"]), source)
    with pytest.raises(DataValidationError, match="Annual Income"):
        run_predict(registry.settings(source, tmp_path / "never.csv"))
    assert not (tmp_path / "never.csv").exists()
