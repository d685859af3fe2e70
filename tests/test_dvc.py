"""The DVC pipeline, run for real by `dvc` in a temporary git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import PROJECT_ROOT, compose_settings

VENV_BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """Run a command as a user would, with the project's venv first on PATH."""
    environment = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **env}
    result = subprocess.run(cmd, cwd=cwd, env=environment, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def project_files() -> list[str]:
    """Files a clone would have: tracked plus new, minus what .gitignore excludes."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [f for f in out.split("\0") if f and (PROJECT_ROOT / f).is_file()]


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A fresh clone of the project (as committed plus working changes) in a new git repo."""
    repo = tmp_path / "clone"
    for name in project_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / name, repo / name)
    run(["git", "init", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "clone"], repo)
    return repo


def test_embedded_default_matches_data_dvc(clone):
    """A fresh clone regenerates exactly the data version that data.dvc records."""
    assert not (clone / "data").exists()
    run(["custseg", "generate"], clone)
    run(["dvc", "add", "data"], clone)  # re-hashes the directory and rewrites data.dvc
    diff = subprocess.run(
        ["git", "diff", "--exit-code", "data.dvc"], cwd=clone, capture_output=True
    )
    assert diff.returncode == 0, diff.stdout.decode()


def test_push_pull_round_trip_through_a_local_remote(clone, tmp_path):
    run(["custseg", "generate"], clone)
    run(["dvc", "add", "data"], clone)
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "--local", "-d", "storage", str(remote)], clone)
    run(["dvc", "push", "data.dvc"], clone)
    original = (clone / "data/customers.csv").read_bytes()
    shutil.rmtree(clone / "data")
    shutil.rmtree(clone / ".dvc" / "cache")
    run(["dvc", "pull", "data.dvc"], clone)
    assert (clone / "data/customers.csv").read_bytes() == original
    # the remote is configured in .dvc/config.local, which git does not track
    assert "storage" not in (clone / ".dvc/config").read_text()


def dvc_yaml() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())


def test_sweep_stages_cover_the_configured_feature_sets():
    settings = compose_settings()
    stages = dvc_yaml()["stages"]
    assert stages["sweep"]["foreach"] == "${feature_sets}"
    curves = {f"${{output_dir}}/{name}/curve.csv" for name in settings.sweep.feature_sets}
    assert curves <= set(stages["select"]["deps"])
    assert curves <= set(stages["report"]["deps"])


@pytest.mark.parametrize("stage", ["validate", "sweep", "select", "report"])
def test_stage_params_are_per_key_and_exist_in_conf(stage):
    """Every param a stage lists names a real conf file (and real keys), never all of conf/."""
    spec = dvc_yaml()["stages"][stage]
    spec = spec.get("do", spec)
    for entry in spec["params"]:
        assert isinstance(entry, dict), f"{stage}: param {entry!r} must name its conf file"
        for path, keys in entry.items():
            path = path.replace("${item}", "income_spending")
            conf = yaml.safe_load((PROJECT_ROOT / path).read_text())
            for key in keys or []:
                assert key in conf, f"{stage}: {path} has no key {key!r}"
    assert all(not str(dep).startswith("conf") for dep in spec["deps"])


def _centroids(model_dir: Path):
    import mlflow.sklearn

    return mlflow.sklearn.load_model(str(model_dir))[-1].cluster_centers_


@pytest.mark.slow
def test_repro_on_seed_data_registers_a_reproducible_five_segment_champion(clone, seed_csv):
    """Issue #3, done-when: seed data -> `dvc repro` -> champion k=5; `--force` reproduces it."""
    import json

    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient

    # read the seed where it lies (never copied into the project), as README shows with -S
    run(["custseg", "generate"], clone)  # data/ of data.dvc, a dep of every stage
    data_conf = clone / "conf/data/mall_customers.yaml"
    text = data_conf.read_text()
    assert "path: data/customers.csv\n" in text
    data_conf.write_text(text.replace("path: data/customers.csv\n", f"path: {seed_csv}\n", 1))
    run(["dvc", "repro"], clone)
    assert "up to date" in run(["dvc", "status"], clone).stdout

    selection = json.loads((clone / "models/selection.json").read_text())
    assert (selection["feature_set"], selection["k"], selection["method"]) == (
        "income_spending", 5, "elbow",
    )  # fmt: skip
    client = MlflowClient(tracking_uri=f"sqlite:///{clone / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("customer-segmentation", "champion")
    assert champion.run_id == selection["run_id"]
    assert champion.tags["k"] == "5"
    assert champion.tags["feature_set"] == "income_spending"
    assert champion.tags["selection_method"] == "elbow"
    assert champion.tags["data_sha256"] == selection["data_sha256"]
    assert champion.tags["git_commit"].startswith(
        run(["git", "rev-parse", "HEAD"], clone).stdout.strip()
    )
    assignments = pd.read_csv(clone / "reports/segment_assignments.csv")
    assert sorted(assignments["segment"].value_counts()) == [22, 23, 35, 39, 81]
    assert len(set(selection["segment_names"].values())) == 5

    first = {
        "metrics": (clone / "metrics/selection.json").read_text(),
        "segments": (clone / "metrics/segments.json").read_text(),
        "assignments": (clone / "reports/segment_assignments.csv").read_bytes(),
        "centroids": _centroids(clone / "models/segmentation"),
    }
    # again from scratch, on one thread instead of the machine's default
    run(["dvc", "repro", "--force"], clone, OMP_NUM_THREADS="1")
    assert (clone / "metrics/selection.json").read_text() == first["metrics"]
    assert (clone / "metrics/segments.json").read_text() == first["segments"]
    assert (clone / "reports/segment_assignments.csv").read_bytes() == first["assignments"]
    np.testing.assert_array_equal(_centroids(clone / "models/segmentation"), first["centroids"])
    assert "up to date" in run(["dvc", "status"], clone).stdout
    second = client.get_model_version_by_alias("customer-segmentation", "champion")
    assert int(second.version) == int(champion.version) + 1


@pytest.mark.slow
def test_exp_run_set_param_edits_the_conf_file_the_stages_read(clone):
    """`dvc exp run -S conf/...:key=value` changes what the Hydra entry points compose."""
    import json

    run(["custseg", "generate"], clone)
    run(["dvc", "exp", "run", "-S", "conf/sweep/default.yaml:k_max=4"], clone)
    curve = (clone / "sweeps/income_spending/curve.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in curve[1:]] == ["2", "3", "4"]
    picks = json.loads((clone / "metrics/selection.json").read_text())["picks"]
    assert all(2 <= k <= 4 for k in picks.values())
    assert "k_max: 4" in (clone / "conf/sweep/default.yaml").read_text()
