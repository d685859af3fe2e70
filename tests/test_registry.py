"""The registry gate, alias promotion and ``custseg promote`` on a real sqlite MLflow store."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.pipeline import make_pipeline

from custseg import cli
from custseg.domain.algorithms import make_kmeans
from custseg.domain.clustering import FitResult, fit_model, segment_model
from custseg.domain.features import FeatureSet, ModelParams, build_preprocess
from custseg.storage.data import generate_customers, load_customers, write_csv_atomic
from custseg.tracking.registry import (
    FORCED_TAG,
    PromotionError,
    alias_history,
    champion_uri,
    champion_version,
    load_segment_names,
    promote,
    register_champion,
    rollback,
)
from custseg.tracking.runs import log_segment_model, setup_experiment

from conftest import compose_settings

INCOME_SPENDING = FeatureSet("income_spending", numeric=["annual_income", "spending_score"])
TAGS = {
    "data_sha256": "ab" * 32,
    "git_commit": "0123456789abcdef0123456789abcdef01234567",
    "feature_set": "income_spending",
    "k": "5",
    "selection_method": "elbow",
}


# ------------------------------------------------------------------------ shared helpers


def customer_table(directory: Path, rows: int = 200, seed: int = 1) -> pd.DataFrame:
    """Generated customers written as CSV and loaded (validated) like training data."""
    path = directory / f"customers-{rows}-{seed}.csv"
    write_csv_atomic(generate_customers(rows, seed), path)
    settings = compose_settings()
    table, info = load_customers(dataclasses.replace(settings.data, path=str(path)))
    table.attrs["data_sha256"] = info.sha256  # what models fitted on it record
    return table


def log_model_run(
    experiment_id: str,
    table: pd.DataFrame,
    k: int,
    *,
    feature_set: FeatureSet = INCOME_SPENDING,
    metadata: dict | None = None,
    status: str = "FINISHED",
    with_model: bool = True,
) -> tuple[str, FitResult]:
    """Fit ``feature_set`` at ``k``, log metrics (+ the model) in a run ending ``status``.

    With ``metadata`` (segment names) the model is a custseg segmentation model; without,
    a plain scikit-learn pipeline, as a model from outside custseg would be.
    """
    result = fit_model(table, feature_set, "standard", ModelParams(n_init=4), k)
    run = mlflow.start_run(experiment_id=experiment_id, run_name=f"{feature_set.name}-k{k}")
    mlflow.log_metrics({name: float(value) for name, value in result.metrics.items()})
    mlflow.log_params({"feature_set": feature_set.name, "k": k})
    if with_model and metadata is not None:
        names = {int(i): n for i, n in metadata["segment_names"].items()}
        sha = table.attrs.get("data_sha256", "")
        log_segment_model(segment_model(result, "standard", names, data_sha256=sha))
    elif with_model:
        example = table[feature_set.columns].head(3)
        pipeline = make_pipeline(
            build_preprocess(feature_set, "standard"), make_kmeans(ModelParams(n_init=4), k)
        ).fit(table)
        mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=infer_signature(example, pipeline.predict(example)),
            serialization_format="skops",
            pip_requirements=["scikit-learn", "skops"],
        )
    mlflow.end_run(status)
    return run.info.run_id, result


def segment_metadata(k: int) -> dict:
    return {"segment_names": {str(i): f"Segment {i}" for i in range(k)}}


@dataclass
class Store:
    uri: str
    table: pd.DataFrame
    runs: dict[str, str] = field(default_factory=dict)
    fits: dict[str, FitResult] = field(default_factory=dict)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    """One sqlite store with runs of every kind; each test registers its own model name."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    experiment_id = setup_experiment(uri, "customer-segmentation", str(root / "mlruns"))
    table = customer_table(root)
    s = Store(uri, table)
    for key, k in (("k5", 5), ("k2", 2)):
        s.runs[key], s.fits[key] = log_model_run(
            experiment_id, table, k, metadata=segment_metadata(k)
        )
    s.runs["failed"], _ = log_model_run(experiment_id, table, 3, status="FAILED")
    s.runs["no_model"], _ = log_model_run(experiment_id, table, 4, with_model=False)
    with_loyalty = table.assign(loyalty=np.linspace(0, 1, len(table)))
    loyalty = FeatureSet("loyalty", numeric=["annual_income", "spending_score", "loyalty"])
    s.runs["loyalty"], _ = log_model_run(experiment_id, with_loyalty, 3, feature_set=loyalty)
    numeric_gender = table.assign(gender=(table["gender"] == "Female").astype(float))
    gender = FeatureSet("gender_as_number", numeric=["spending_score", "gender"])
    s.runs["gender_number"], _ = log_model_run(experiment_id, numeric_gender, 3, feature_set=gender)
    return s


@pytest.fixture(autouse=True)
def _use_store(store: Store) -> None:
    mlflow.set_tracking_uri(store.uri)


@pytest.fixture
def name() -> str:
    """A registered model name of this test's own."""
    return f"segmentation-{uuid.uuid4().hex[:8]}"


def registered_versions(name: str) -> list:
    return MlflowClient().search_model_versions(f"name='{name}'")


# ---------------------------------------------------------------------------------- gate


def test_gate_registers_a_good_run_with_alias_and_tags(store, name):
    version = register_champion(store.runs["k5"], name, "champion", store.table, TAGS)

    assert str(version.version) == "1"
    assert version.status == "READY"
    assert version.run_id == store.runs["k5"]
    assert version.aliases == ["champion"]
    assert version.tags == TAGS
    assert champion_version(name, "champion").version == version.version

    model = mlflow.pyfunc.load_model(champion_uri(name, "champion"))
    assert champion_uri(name, "champion") == f"models:/{name}@champion"
    expected = store.fits["k5"].predict(store.table)
    scored = model.predict(store.table)
    np.testing.assert_array_equal(scored["segment"].to_numpy(), expected)
    names = {i: f"Segment {i}" for i in range(5)}
    assert scored["segment_name"].tolist() == [names[i] for i in expected]
    assert load_segment_names(model) == names


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ("failed", r"run \w+ is FAILED, not FINISHED"),
        ("no_model", r"no loadable model at runs:/\w+/model"),
        ("loyalty", r"column 'loyalty' \(double\) is missing"),
        ("gender_number", r"column 'gender': the model expects numbers \(double\) but"),
    ],
)
def test_gate_refuses_and_registers_nothing(store, name, run, message):
    with pytest.raises(PromotionError, match=message):
        register_champion(store.runs[run], name, "champion", store.table, TAGS)
    assert registered_versions(name) == []
    assert champion_version(name, "champion") is None


def test_gate_refuses_an_unknown_run(store, name):
    with pytest.raises(PromotionError, match="run 0123abcd does not exist"):
        register_champion("0123abcd", name, "champion", store.table, TAGS)
    assert registered_versions(name) == []


def test_gate_refuses_an_empty_table(store, name):
    with pytest.raises(PromotionError, match="no rows"):
        register_champion(store.runs["k5"], name, "champion", store.table.iloc[:0], TAGS)
    assert registered_versions(name) == []


# ----------------------------------------------------------------------------- promotion


def silhouette(store: Store, key: str) -> float:
    return store.fits[key].metrics["silhouette"]


def test_promote_moves_refuses_worse_and_force_overrides(store, name):
    assert silhouette(store, "k5") > silhouette(store, "k2")  # the premise of this test
    register_champion(store.runs["k2"], name, "champion", store.table, {"k": "2"})

    # a run without a version: registered through the gate, tags copied from the run
    moved = promote(name, "champion", run_id=store.runs["k5"], data=store.table)
    assert (str(moved.version), moved.aliases) == ("2", ["champion"])
    assert moved.run_id == store.runs["k5"]
    assert moved.tags == {"feature_set": "income_spending", "k": "5"}
    assert FORCED_TAG not in moved.tags

    with pytest.raises(
        PromotionError, match=r"silhouette=0\.\d+ is worse than 0\.\d+ of .*@champion \(version 2"
    ):
        promote(name, "champion", version="1")
    assert champion_version(name, "champion").version == moved.version

    forced = promote(name, "champion", version="1", force=True)
    assert str(forced.version) == "1" and forced.aliases == ["champion"]
    assert "is worse than" in forced.tags[FORCED_TAG]
    assert len(registered_versions(name)) == 2  # nothing registered twice


def test_promote_by_run_reuses_its_version_and_is_a_no_op_on_the_holder(store, name):
    register_champion(store.runs["k5"], name, "champion", store.table, TAGS)
    again = promote(name, "champion", run_id=store.runs["k5"])
    assert str(again.version) == "1"
    assert len(registered_versions(name)) == 1


def test_promote_lower_is_better(store, name):
    k5, k2 = store.fits["k5"].metrics, store.fits["k2"].metrics
    assert k5["davies_bouldin"] < k2["davies_bouldin"]
    register_champion(store.runs["k5"], name, "champion", store.table, TAGS)
    register_champion(store.runs["k2"], name, "challenger", store.table, {"k": "2"})
    with pytest.raises(PromotionError, match="lower is better"):
        promote(name, "champion", version="2", metric="davies_bouldin", higher_is_better=False)
    # by inertia (lower is better, and always lower with more clusters) k=5 beats k=2 too,
    # but moving the challenger alias to version 1 is an improvement
    assert k5["inertia"] < k2["inertia"]
    moved = promote(name, "challenger", version="1", metric="inertia", higher_is_better=False)
    assert sorted(moved.aliases) == ["challenger", "champion"]


def test_promote_refuses_when_a_metric_is_missing_unless_forced(store, name):
    register_champion(store.runs["k5"], name, "champion", store.table, TAGS)
    register_champion(store.runs["k2"], name, "challenger", store.table, {"k": "2"})
    with pytest.raises(PromotionError, match="metric 'accuracy' is missing for version 2 .* and"):
        promote(name, "champion", version="2", metric="accuracy")
    forced = promote(name, "champion", version="2", metric="accuracy", force=True)
    assert "missing" in forced.tags[FORCED_TAG]


def test_promote_without_a_champion_sets_the_alias(store, name):
    moved = promote(name, "champion", run_id=store.runs["k5"])
    assert str(moved.version) == "1" and moved.aliases == ["champion"]


@pytest.mark.parametrize(
    ("run", "message"),
    [("failed", "is FAILED, not FINISHED"), ("no_model", "no loadable model")],
)
def test_promote_gates_an_unregistered_run(store, name, run, message):
    register_champion(store.runs["k2"], name, "champion", store.table, {"k": "2"})
    with pytest.raises(PromotionError, match=message):
        promote(name, "champion", run_id=store.runs[run], force=True)
    assert len(registered_versions(name)) == 1


def test_promote_checks_the_data_when_given(store, name):
    with pytest.raises(PromotionError, match="'loyalty'"):
        promote(name, "champion", run_id=store.runs["loyalty"], data=store.table)
    assert registered_versions(name) == []


def test_promote_unknown_version_or_bad_arguments(store, name):
    with pytest.raises(PromotionError, match=f"no registered model '{name}'"):
        promote(name, "champion", version="1")
    register_champion(store.runs["k5"], name, "champion", store.table, TAGS)
    with pytest.raises(PromotionError, match=r"has no version 7 \(versions: 1\)"):
        promote(name, "champion", version="7")
    with pytest.raises(ValueError, match="exactly one"):
        promote(name, "champion")
    with pytest.raises(ValueError, match="exactly one"):
        promote(name, "champion", version="1", run_id=store.runs["k5"])


def test_alias_moves_leave_a_trail_and_rollback_restores_the_previous_holder(
    store, name, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    register_champion(store.runs["k2"], name, "champion", store.table, {"k": "2"})
    promote(name, "champion", run_id=store.runs["k5"], data=store.table)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    forced = promote(name, "champion", version="1", force=True)

    history = alias_history(name, "champion")
    assert [(m["from"], m["to"], m["by"]) for m in history] == [
        (None, "1", "alice"), ("1", "2", "alice"), ("2", "1", "bob"),
    ]  # fmt: skip
    assert history[0]["why"] == "registered through the gate"
    assert history[1]["why"] == "promoted: not worse on silhouette"
    assert history[2]["why"] == f"promoted, forced: {forced.tags[FORCED_TAG]}"
    times = [datetime.fromisoformat(m["at"]) for m in history]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)

    # roll back bob's forced move: @champion is version 2 again, and that is a move too
    back = rollback(name, "champion", data=store.table)
    assert str(back.version) == "2" and back.aliases == ["champion"]
    last = alias_history(name, "champion")[-1]
    assert (last["from"], last["to"], last["by"], last["why"]) == (
        "1", "2", "bob", "rollback from version 1",
    )  # fmt: skip
    assert [m["alias"] for m in alias_history(name)] == ["champion"] * 4


def test_rollback_without_an_earlier_holder_is_refused(store, name):
    with pytest.raises(PromotionError, match="cannot roll back: there is no registered model"):
        rollback(name, "champion")
    register_champion(store.runs["k5"], name, "champion", store.table, TAGS)
    with pytest.raises(PromotionError, match="no earlier holder of the alias is recorded"):
        rollback(name, "champion")
    assert str(champion_version(name, "champion").version) == "1"


# ----------------------------------------------------------------------------------- CLI


def run_cli(store: Store, name: str, *args: str) -> int:
    root = Path(store.uri.removeprefix("sqlite:///")).parent
    options = ["--model-name", name, "--tracking-uri", store.uri]
    options += [
        "--data",
        str(root / "customers-200-1.csv"),
        "--catalog",
        str(root / f"{name}.json"),
    ]
    return cli.main(["promote", *args, *options])


def test_cli_promote_prints_the_move_and_exits_1_on_refusal(store, name, capsys):
    from custseg.storage.data import file_sha256

    # version 1 of the table run_cli promotes on (a rollback to it needs no --force)
    today = file_sha256(Path(store.uri.removeprefix("sqlite:///")).parent / "customers-200-1.csv")
    register_champion(
        store.runs["k5"], name, "champion", store.table, {**TAGS, "data_sha256": today}
    )
    register_champion(store.runs["k2"], name, "challenger", store.table, {"k": "2"})
    capsys.readouterr()

    assert run_cli(store, name, "--version", "2") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"custseg promote: refused: cannot move {name}@champion to version 2")
    assert "use --force" in err
    assert champion_version(name, "champion").version == 1

    assert run_cli(store, name, "--version", "2", "--force") == 0
    out, _ = capsys.readouterr()
    s5, s2 = silhouette(store, "k5"), silhouette(store, "k2")
    assert out.startswith(
        f"moved {name}@champion: version 1 (run {store.runs['k5']}, silhouette={s5:.4f}) -> "
        f"version 2 (run {store.runs['k2']}, silhouette={s2:.4f}) (forced: "
    )
    # a promoted challenger is no longer the challenger: the alias goes, on the trail
    assert out.endswith(f"removed {name}@challenger (version 2 is @champion)\n")
    assert champion_version(name, "challenger") is None
    (removal,) = [m for m in alias_history(name, "challenger") if m["to"] is None]
    assert removal["from"] == "2" and removal["why"].startswith("custseg promote: version 2")

    assert run_cli(store, name, "--run-id", store.runs["k2"]) == 0
    assert "already points at version 2" in capsys.readouterr().out

    assert run_cli(store, name, "--run-id", store.runs["k5"], "--alias", "best") == 0
    assert f"moved {name}@best: nothing -> version 1" in capsys.readouterr().out

    # --rollback: @champion back where it was before its last move (version 1)
    assert run_cli(store, name, "--rollback") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"moved {name}@champion: version 2 (run {store.runs['k2']}")
    assert f"-> version 1 (run {store.runs['k5']}" in out


def test_cli_promote_without_a_store_says_so(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "mlflow.db"
    code = cli.main(["promote", "--version", "1", "--tracking-uri", f"sqlite:///{missing}"])
    assert code == 1
    assert "no MLflow store" in capsys.readouterr().err
    assert not missing.exists()


def test_cli_promote_needs_a_version_or_a_run(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["promote"])
    assert exit_info.value.code == 2
    assert "one of the arguments --version --run-id --rollback is required" in (
        capsys.readouterr().err
    )


def test_cli_promote_refuses_a_model_that_cannot_score_the_customer_table(store, name, capsys):
    """The gate checks the signature against the data, not just the model's own example."""
    register_champion(store.runs["k5"], name, "champion", store.table, TAGS)
    assert run_cli(store, name, "--run-id", store.runs["loyalty"], "--force") == 1
    assert "loyalty" in capsys.readouterr().err
    assert str(champion_version(name, "champion").version) == "1"


def test_promote_refuses_a_model_trained_on_other_data_unless_forced(store, name):
    register_champion(store.runs["k5"], name, "champion", store.table, TAGS)
    register_champion(
        store.runs["k2"], name, "challenger", store.table, {**TAGS, "data_sha256": "cd" * 32}
    )
    with pytest.raises(PromotionError, match="another data"):
        promote(name, "champion", version="2", higher_is_better=False)  # whichever is worse
    forced = promote(name, "champion", version="2", force=True)
    assert "another data" in forced.tags[FORCED_TAG]


def test_rollback_to_a_model_of_other_data_needs_force(store, name):
    """Issue 29: --rollback moved @champion back to a model of other data without a word."""
    register_champion(
        store.runs["k5"], name, "champion", store.table, {**TAGS, "data_sha256": "cd" * 32}
    )
    promote(name, "champion", run_id=store.runs["k2"], force=True, data=store.table)
    today = "ab" * 32  # the customer table now: version 2's data, not version 1's
    with pytest.raises(PromotionError, match=r"trained on other data \(sha256 cdcdcdcdcdcd"):
        rollback(name, "champion", data=store.table, data_sha256=today)
    assert str(champion_version(name, "champion").version) == "2"
    back = rollback(name, "champion", data=store.table, data_sha256=today, force=True)
    assert str(back.version) == "1"
    assert (
        alias_history(name, "champion")[-1]["why"] == "rollback from version 2, forced: other data"
    )


def test_cli_promote_says_when_newer_data_skipped_the_comparison(store, name, capsys):
    """Issue 29: a promotion for newer data printed silhouettes of two different tables
    and succeeded without a word; it says so, and compares both on the table now."""
    from custseg.storage.data import file_sha256

    root = Path(store.uri.removeprefix("sqlite:///")).parent
    today = file_sha256(root / "customers-200-1.csv")  # the table run_cli promotes on
    register_champion(
        store.runs["k5"], name, "champion", store.table, {**TAGS, "data_sha256": "cd" * 32}
    )
    register_champion(
        store.runs["k2"], name, "challenger", store.table, {**TAGS, "data_sha256": today}
    )
    capsys.readouterr()
    assert run_cli(store, name, "--version", "2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"moved {name}@champion: version 1 (run ")
    note = next(line for line in lines if line.startswith("note: "))
    assert note.startswith(
        "note: version 2 was trained on newer data, so the gate did not compare silhouette "
        "(the values above are of two different tables); on the customer table now, "
        "silhouette: version 1 0."
    )
    assert ", version 2 0." in note


# ------------------------------------------------------- promoting a sweep run end to end


def test_a_promoted_sweep_run_scores_with_names_and_becomes_the_catalog(tmp_path, capsys):
    """Issue #7: a sweep child promoted by run id carries segment names and stable ids."""
    from custseg.pipeline.predict import run_predict
    from custseg.pipeline.sweep import run_sweep
    from custseg.storage.outputs import read_segment_model

    csv_path = tmp_path / "customers.csv"
    write_csv_atomic(generate_customers(150, seed=4), csv_path)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings = compose_settings(
        [
            f"data.path={csv_path}",
            f"tracking.tracking_uri={store}",
            f"tracking.artifact_location={tmp_path / 'mlruns'}",
            f"sweep.output_dir={tmp_path / 'sweeps'}",
            "sweep.feature_sets=[income_spending]",
            "sweep.k_max=5",
        ]
    )
    outcome = run_sweep(settings, progress=False)
    child = outcome.summary.set_index("k").loc[4, "run_id"]
    catalog = tmp_path / "catalog.json"
    args = ["--run-id", child, "--tracking-uri", store, "--data", str(csv_path)]
    assert cli.main(["promote", *args, "--catalog", str(catalog)]) == 0
    out = capsys.readouterr().out
    assert "updated" in out and str(catalog) in out and "git add" in out

    mlflow.set_tracking_uri(store)
    champion = champion_version("customer-segmentation", "champion")
    assert champion.tags["k"] == "4" and champion.tags["fingerprint"]
    written = read_segment_model(catalog)
    assert written.fingerprint == champion.tags["fingerprint"]
    assert sorted(written.segments) == [0, 1, 2, 3]

    scored_settings = compose_settings(
        [
            f"tracking.tracking_uri={store}",
            f"predict.input={csv_path}",
            f"predict.output={tmp_path / 'scored.csv'}",
        ]
    )
    result = run_predict(scored_settings)
    scored = pd.read_csv(result.output)
    names = dict(zip(scored["segment"], scored["segment_name"], strict=True))
    assert names == written.segment_names  # every customer named, as the catalog says
    assert result.version is not None and str(result.version.version) == str(champion.version)


def test_a_retrain_on_the_current_data_replaces_a_champion_of_older_data(store, name):
    """Metrics of other data are not comparable; a model of today's data is the newer result."""
    old = {**TAGS, "data_sha256": "cd" * 32}
    register_champion(store.runs["k5"], name, "champion", store.table, old)
    register_champion(store.runs["k2"], name, "challenger", store.table, TAGS)
    moved = promote(name, "champion", version="2", data_sha256=TAGS["data_sha256"])
    assert str(moved.version) == "2" and FORCED_TAG not in moved.tags
    # but not a model of yet other data, nor without knowing the current data
    register_champion(store.runs["k5"], name, "champion", store.table, old)
    with pytest.raises(PromotionError, match="another data"):
        promote(name, "champion", version="2")
