"""The DVC pipeline, run for real by `dvc` in a temporary git repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import PROJECT_ROOT, VENV_BIN, compose_settings, make_clone, run


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    return make_clone(tmp_path)


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


def dvc_yaml(project: str = ".") -> dict:
    return yaml.safe_load((PROJECT_ROOT / project / "dvc.yaml").read_text())


#: (DVC project, stage) of both pipelines: the Mall one and the RFM one in transactions/
STAGES = [
    *((".", s) for s in ("validate", "sweep", "select", "report", "publish")),
    *(("transactions", s) for s in ("rfm", "validate", "sweep", "select", "report", "publish")),
]


@pytest.mark.parametrize("config", [".dvc/config", "transactions/.dvc/config"])
def test_the_documented_way_back_to_main_leaves_nothing_staged(tmp_path, config):
    """After a `dvc repro` on new data (which the project's DVC config stages), the way
    back of the README and docs/dvc.md, `git checkout HEAD -- .`, restores dvc.lock and
    the .dvc file, index included (issue 29: `git checkout -- .` left them staged)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo)
    shutil.copy(PROJECT_ROOT / config, repo / ".dvc" / "config")
    (repo / "data").mkdir()
    (repo / "data" / "customers.csv").write_text("id\n1\n")
    (repo / "dvc.yaml").write_text(
        "stages:\n  copy:\n    cmd: cp data/customers.csv out.csv\n"
        "    deps: [data]\n    outs: [out.csv]\n"
    )
    run(["dvc", "add", "-q", "data"], repo)
    run(["dvc", "repro", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "main"], repo)
    # your own data, as docs/data.md says, and a rerun
    (repo / "data" / "customers.csv").write_text("id\n1\n2\n")
    run(["dvc", "add", "-q", "data"], repo)
    run(["dvc", "repro", "-q"], repo)
    run(["git", "checkout", "HEAD", "--", "."], repo)
    run(["dvc", "checkout", "-q"], repo)
    assert run(["git", "status", "--porcelain"], repo).stdout == ""
    assert (repo / "data" / "customers.csv").read_text() == "id\n1\n"


def test_sweep_stage_covers_the_configured_feature_sets():
    """One sweep stage: it lists every swept feature set's file as a param (edit one, the
    sweep reruns), and writes the whole output directory that select and report read."""
    settings = compose_settings()
    stages = dvc_yaml()["stages"]
    param_files = {path for entry in stages["sweep"]["params"] for path in entry}
    assert {f"conf/features/{name}.yaml" for name in settings.sweep.feature_sets} <= param_files
    assert stages["sweep"]["outs"] == ["${output_dir}"]
    assert "${output_dir}" in stages["select"]["deps"]
    assert "${output_dir}" in stages["report"]["deps"]


@pytest.mark.parametrize("project, stage", STAGES)
def test_stage_params_are_per_key_and_exist_in_conf(project, stage):
    """Every param a stage lists names a real conf file (and real keys), never all of conf/."""
    spec = dvc_yaml(project)["stages"][stage]
    spec = spec.get("do", spec)
    for entry in spec["params"]:
        assert isinstance(entry, dict), f"{stage}: param {entry!r} must name its conf file"
        for path, keys in entry.items():
            path = path.replace("${item}", "income_spending")
            conf = yaml.safe_load((PROJECT_ROOT / project / path).read_text())
            for key in keys or []:
                assert key in conf, f"{stage}: {path} has no key {key!r}"
    assert all("conf/" not in str(dep) for dep in spec["deps"])


def test_the_rfm_pipeline_tracks_every_swept_feature_set_and_the_final_one():
    """Edit any RFM feature set and the sweep reruns; edit the final one and select does."""
    settings = compose_settings(["pipeline=transactions"])
    stages = dvc_yaml("transactions")["stages"]

    def files(stage: str) -> set[str]:
        return {path for entry in stages[stage]["params"] for path in entry}

    swept = {f"../conf/features/{fs.name}.yaml" for fs in settings.swept_feature_sets()}
    assert swept <= files("sweep")
    assert f"../conf/features/{settings.features.name}.yaml" in files("select")
    assert "../conf/pipeline/transactions.yaml" in files("sweep") & files("select")
    assert all(cmd["cmd"].endswith("pipeline=transactions") for cmd in stages.values())


def git_status(repo: Path) -> str:
    """``git status --porcelain``: empty when nothing is modified or untracked-and-unignored."""
    return run(["git", "status", "--porcelain"], repo).stdout


def assert_clean(repo: Path) -> None:
    """The state a user wants after any pipeline command: git clean, DVC up to date."""
    assert git_status(repo) == "", run(["git", "diff", "HEAD"], repo).stdout[:4000]
    assert "Data and pipelines are up to date" in run(["dvc", "status"], repo).stdout


class Registry:
    """Read-only view of a clone's MLflow registry."""

    def __init__(self, repo: Path, name: str = "customer-segmentation") -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
        self.name = name

    def versions(self) -> list[str]:
        found = self.client.search_model_versions(f"name='{self.name}'")
        return sorted((v.version for v in found), key=int)

    def alias(self, alias: str):
        return self.client.get_model_version_by_alias(self.name, alias)


def fingerprint(path: Path) -> str:
    from custseg.domain.segment_model import SegmentModel

    return SegmentModel.from_json(path.read_text(encoding="utf-8")).fingerprint


@pytest.mark.slow
def test_make_run_on_a_fresh_clone_leaves_nothing_to_commit(published):
    """Issue #7: bit-identical DVC outputs, the committed dvc.lock already right."""
    repo = published
    assert_clean(repo)
    registry = Registry(repo)
    champion = registry.alias("champion")
    assert registry.versions() == [champion.version]
    # the champion is the model of models/, which is the committed catalog's model
    assert champion.tags["fingerprint"] == fingerprint(repo / "models/segmentation.json")
    assert champion.tags["fingerprint"] == fingerprint(repo / "catalog/champion.json")
    head = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    assert champion.tags["git_commit"] == head  # not "-dirty": DVC's rewrites do not count
    status = json.loads((repo / "status/registry.json").read_text(encoding="utf-8"))
    assert status["aliases"] == {"champion": str(champion.version)}
    assert "workflowType=machine_learning" in status["links"]["runs"]
    shown = run(["dvc", "metrics", "show"], repo).stdout.splitlines()
    assert len(shown) == 4 and max(map(len, shown)) <= 120  # fits a terminal

    # again from scratch, on one thread: same bytes, no new version
    run(["dvc", "repro", "--force"], repo, OMP_NUM_THREADS="1")
    assert_clean(repo)
    assert registry.versions() == [champion.version]
    # and the lock file's outputs can be checked out
    run(["git", "checkout", "dvc.lock"], repo)
    run(["dvc", "checkout"], repo)
    assert_clean(repo)


@pytest.mark.slow
def test_scoring_says_which_version_and_writes_outside_git(published):
    repo = published
    result = run(["custseg-predict", "predict.input=data/customers.csv"], repo)
    champion = Registry(repo).alias("champion")
    assert f"(version {champion.version})" in result.stdout
    scored = (repo / "scores" / "customers.scored.csv").read_text(encoding="utf-8")
    assert scored.splitlines()[0].endswith(",segment,segment_name,persona")
    assert git_status(repo) == ""


@pytest.mark.slow
def test_experiments_register_challengers_and_never_move_the_champion(published):
    repo = published
    registry = Registry(repo)
    champion = registry.alias("champion")
    before = registry.versions()

    run(["dvc", "exp", "run", "-S", "conf/sweep/default.yaml:k_max=4"], repo)
    challenger = registry.alias("challenger")
    assert registry.alias("champion").version == champion.version
    assert registry.versions() == [*before, challenger.version]
    assert challenger.tags["k"] == "4"
    # the same experiment again: an unchanged model registers nothing
    run(["dvc", "exp", "run", "-S", "conf/sweep/default.yaml:k_max=4"], repo)
    assert registry.versions() == [*before, challenger.version]
    assert registry.alias("champion").version == champion.version

    # back to main, as docs/dvc.md says: git and DVC clean, champion untouched
    run(["git", "checkout", "HEAD", "--", "."], repo)
    run(["dvc", "checkout"], repo)
    run(["dvc", "repro"], repo)
    assert_clean(repo)
    assert registry.alias("champion").version == champion.version
    assert len(run(["dvc", "exp", "list", "--name-only"], repo).stdout.split()) == 2


@pytest.mark.slow
def test_seed_data_experiment_gives_the_five_reference_segments(published, seed_csv):
    """Issue #3 on the real Mall table, read where it lies, as an experiment: @challenger."""
    repo = published
    registry = Registry(repo)
    champion = registry.alias("champion")
    run(["dvc", "exp", "run", "-S", f"conf/data/mall_customers.yaml:path={seed_csv}"], repo)
    selection = json.loads((repo / "models/selection.json").read_text())
    assert (selection["feature_set"], selection["k"], selection["method"]) == (
        "income_spending", 5, "consensus",
    )  # fmt: skip
    assert sum(k == 5 for k in selection["picks"].values()) >= 4, selection["picks"]
    assert selection["trust"]["unstable"] == []  # the five reference segments are stable
    assert registry.alias("champion").version == champion.version  # never moved by an exp
    challenger = registry.alias("challenger")
    assert challenger.tags["fingerprint"] == selection["fingerprint"]
    assignments = pd.read_csv(repo / "reports/segment_assignments.csv")
    assert sorted(assignments["segment"].value_counts()) == [22, 23, 35, 39, 81]
    assert len(set(selection["segment_names"].values())) == 5
    # the report says it is not the champion, and what would change
    page = (repo / "reports/segments.html").read_text(encoding="utf-8")
    assert "Not the champion." in page


@pytest.mark.slow
def test_a_dvc_repro_killed_mid_sweep_recovers_on_the_next(tmp_path):
    """kill -9 of `dvc repro` (and its stage and workers) in the middle of the sweep: the
    next `dvc repro` completes, marks the dead runs KILLED, leaves none RUNNING, and git
    and DVC end clean."""
    import signal
    import sqlite3
    import time

    repo = make_clone(tmp_path)
    run(["custseg", "generate"], repo)
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    victim = subprocess.Popen(
        ["dvc", "repro"], cwd=repo, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    db = repo / "mlflow.db"

    def finished_runs() -> int:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                query = "select count(*) from runs where status = 'FINISHED'"
                return conn.execute(query).fetchone()[0]
        except sqlite3.Error:
            return 0

    deadline = time.monotonic() + 300
    while finished_runs() < 2:
        assert victim.poll() is None and time.monotonic() < deadline, "no sweep to interrupt"
        time.sleep(0.2)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=60)

    rerun = run(["dvc", "repro"], repo)
    assert "run(s) KILLED" in rerun.stderr + rerun.stdout
    assert_clean(repo)
    with sqlite3.connect(db) as conn:
        statuses = dict(conn.execute("select status, count(*) from runs group by status"))
    assert "RUNNING" not in statuses and statuses.get("KILLED", 0) >= 1
    assert (repo / "models" / "segmentation.json").is_file()


@pytest.fixture(scope="module")
def published_rfm(tmp_path_factory) -> Path:
    """A fresh clone after `make run DATA=transactions` (docs/rfm.md's first command)."""
    repo = make_clone(tmp_path_factory.mktemp("published_rfm"))
    (repo / ".venv").symlink_to(VENV_BIN.parent)
    os.utime(repo / ".venv" / ".installed")
    run(["make", "run", "DATA=transactions"], repo)
    return repo


@pytest.mark.slow
def test_make_run_data_transactions_gives_rfm_segments_on_a_fresh_clone(published_rfm):
    """Issue 13: the generated log, the RFM pipeline of transactions/, RFM names and
    recommendations, no named segment under the outlier share, the champion registered."""
    repo, rfm = published_rfm, published_rfm / "transactions"
    settings = compose_settings(["pipeline=transactions"])
    assert (rfm / settings.transactions.path).is_file()  # written by make, matches data.dvc
    assert git_status(repo) == ""
    assert "Data and pipelines are up to date" in run(["dvc", "status"], rfm).stdout
    assert not (repo / "models" / "segmentation.json").exists()  # the Mall pipeline: untouched

    registry = Registry(rfm, settings.tracking.registered_model_name)
    champion = registry.alias("champion")
    assert registry.versions() == [champion.version]
    assert champion.tags["fingerprint"] == fingerprint(rfm / "catalog/champion.json")
    params = registry.client.get_run(champion.run_id).data.params
    assert params["transforms"] == settings.features.transforms_label != "none"
    # custseg promote in transactions/ is the RFM pipeline's (its model, its table)
    promoted = run(["custseg", "promote", "--version", str(champion.version)], rfm).stdout
    assert f"transaction-segmentation@champion already points at version {champion.version}" in (
        promoted
    )

    sizes = pd.read_csv(rfm / "reports/segment_sizes.csv")
    small = sizes[sizes["share"] < settings.personas.outlier_share]
    assert small["name"].str.startswith("Outlier group").all()
    report = (rfm / "reports/segments.md").read_text(encoding="utf-8")
    rfm_personas = {rule.name for rule in settings.personas.personas}
    named = {p for p in rfm_personas if p in report}
    assert len(named) >= 3, report[:2000]
    assert "Win them back" in report or "Reward them" in report

    # the RFM table again from the log: same bytes (the as-of date is config, not today)
    run(["dvc", "repro", "--force", "--single-item", "rfm"], rfm)
    assert git_status(repo) == ""
    assert "Data and pipelines are up to date" in run(["dvc", "status"], rfm).stdout
