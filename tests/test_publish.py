"""``custseg-publish``: registration by fingerprint and the champion/challenger policy."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from custseg.backends.local import PandasTable
from custseg.domain.clustering import fit_model
from custseg.domain.identity import compare_models, identify
from custseg.domain.segment_model import SegmentModel
from custseg.pipeline.publish import PUBLISHED_FILE, format_outcome, run_publish
from custseg.pipeline.select import identify_segments
from custseg.storage.data import generate_customers, load_customers, write_csv_atomic
from custseg.storage.outputs import (
    StaleInputError,
    read_segment_model,
    write_json_atomic,
    write_segment_model,
)
from custseg.storage.paths import CHANGES_FILE, MODEL_FILE, SELECTION_RECORD

from conftest import compose_settings

MODEL = "customer-segmentation"


class Project:
    """A project directory (the test's cwd) with data and a sqlite store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        write_csv_atomic(generate_customers(160, seed=8), root / "data" / "customers.csv")
        self.settings = compose_settings(
            [
                f"tracking.tracking_uri=sqlite:///{root / 'mlflow.db'}",
                f"tracking.artifact_location={root / 'mlruns'}",
            ]
        )
        self.table, self.info = load_customers(self.settings.data)

    def select(self, k: int) -> SegmentModel:
        """Write models/ as the select stage would, matched to the current catalog."""
        s = self.settings
        result = fit_model(self.table, s.features, "standard", s.model, k)
        reference = read_segment_model(s.catalog.path, missing_ok=True)
        swept, _ = identify(result, self.table, s.personas, "standard", self.info.sha256)
        customers = PandasTable(self.table, self.info, s.model.random_state)
        model = identify_segments(customers, swept, reference, s).model
        write_segment_model(model, MODEL_FILE)
        write_json_atomic({"method": "elbow", "k": k}, SELECTION_RECORD)
        write_json_atomic(compare_models(reference, model, self.table), CHANGES_FILE)
        return model

    def aliases(self) -> dict[str, str]:
        aliases = MlflowClient().get_registered_model(MODEL).aliases
        return {alias: str(version) for alias, version in aliases.items()}

    def versions(self) -> list[str]:
        found = MlflowClient().search_model_versions(f"name='{MODEL}'")
        return sorted((str(v.version) for v in found), key=int)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Project:
    monkeypatch.chdir(tmp_path)  # the stages read and write relative to the project root
    return Project(tmp_path)


def test_first_publish_makes_the_champion_and_writes_the_catalog(project):
    model = project.select(5)
    outcome = run_publish(project.settings)
    assert outcome.registered.created and outcome.catalog_written
    assert project.aliases() == {"champion": "1"}
    assert read_segment_model("catalog/champion.json") == model
    version = MlflowClient().get_model_version(MODEL, "1")
    assert version.tags["fingerprint"] == model.fingerprint
    assert MlflowClient().get_run(version.run_id).data.params["transforms"] == "none"
    assert json.loads(PUBLISHED_FILE.read_text()) == {
        "fingerprint": model.fingerprint,
        "model_name": MODEL,
    }
    status = json.loads(Path("status/registry.json").read_text())
    assert status["version"] == "1" and status["aliases"] == {"champion": "1"}
    assert "commit it" in format_outcome(outcome, project.settings)

    # the same model again (a rerun, --force, another clone): no new version
    again = run_publish(project.settings)
    assert not again.registered.created and project.versions() == ["1"]


def test_a_different_model_is_a_challenger_until_promoted(project):
    project.select(5)
    run_publish(project.settings)
    catalog_before = Path("catalog/champion.json").read_bytes()
    project.select(4)  # e.g. a param edited in the workspace
    outcome = run_publish(project.settings)
    assert project.aliases() == {"champion": "1", "challenger": "2"}
    assert Path("catalog/champion.json").read_bytes() == catalog_before
    assert "custseg promote --version 2" in format_outcome(outcome, project.settings)


def test_an_experiment_never_moves_the_champion(project):
    project.select(5)
    run_publish(project.settings)
    project.select(3)
    run_publish(project.settings, experiment="exp-123")
    assert project.aliases() == {"champion": "1", "challenger": "2"}
    # even with no catalog at all, an experiment only makes a challenger
    Path("catalog/champion.json").unlink()
    project.select(6)
    run_publish(project.settings, experiment="exp-456")
    assert project.aliases() == {"champion": "1", "challenger": "3"}
    assert not Path("catalog/champion.json").exists()


def test_the_champion_follows_the_catalog(project):
    """A catalog from git (e.g. a teammate's promotion) is the champion, registered if needed."""
    first = project.select(5)
    run_publish(project.settings)
    other = project.select(3)
    write_segment_model(other, "catalog/champion.json")  # as if promoted elsewhere
    first_again = project.select(5)  # the workspace model, now matched to the new catalog
    run_publish(project.settings)
    aliases = project.aliases()
    champion = MlflowClient().get_model_version(MODEL, aliases["champion"])
    assert champion.tags["fingerprint"] == other.fingerprint
    assert aliases["challenger"] != aliases["champion"]
    assert first_again.fingerprint != first.fingerprint or first_again == first


def test_a_model_of_other_data_is_refused_before_anything_is_logged(project):
    project.select(5)
    write_csv_atomic(generate_customers(160, seed=9), Path("data/customers.csv"))
    settings = compose_settings(
        [
            f"tracking.tracking_uri=sqlite:///{project.root / 'mlflow.db'}",
            f"tracking.artifact_location={project.root / 'mlruns'}",
        ]
    )
    with pytest.raises(StaleInputError, match="other data"):
        run_publish(settings)
    assert not (project.root / "mlflow.db").exists()
    assert not PUBLISHED_FILE.exists()


@pytest.fixture(autouse=True)
def _reset_tracking_uri():
    yield
    mlflow.set_tracking_uri(None)


def test_a_lost_catalog_moves_nothing_once_there_is_a_champion(project):
    project.select(5)
    run_publish(project.settings)
    Path("catalog/champion.json").unlink()
    project.select(4)
    outcome = run_publish(project.settings)
    assert project.aliases() == {"champion": "1", "challenger": "2"}
    assert not Path("catalog/champion.json").exists()
    assert any("promote" in note for note in outcome.notes)


def test_the_workspace_model_holding_champion_but_not_the_catalog_becomes_challenger(project):
    project.select(5)
    run_publish(project.settings)
    other = project.select(3)
    MlflowClient().set_registered_model_alias(MODEL, "champion", "1")  # as before
    write_segment_model(other, "catalog/champion.json")
    project.select(5)  # the old champion's model again (matched to the new catalog)
    run_publish(project.settings)
    aliases = project.aliases()
    assert set(aliases) == {"champion", "challenger"}  # the workspace model keeps an alias
