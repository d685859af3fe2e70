"""A team on one tracking server: PostgreSQL + `mlflow server` with basic auth, started by
`custseg server start` (what `make server` runs) once for the whole test session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from custseg.storage.data import generate_customers, write_csv_atomic
from test_serve import free_port

from conftest import VENV_BIN, assert_shows, make_clone, masked, shown_outputs

MODEL = "customer-segmentation"
EXPERIMENT = "customer-segmentation"
SERVER_VARIABLES = (
    "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
    "CUSTSEG_TRACKING",
)  # fmt: skip


@dataclass
class TeamServer:
    """The running stack: its folder, the admin's exports, how long it took to start and
    what its commands printed (``"start"``, ``"add-user alice"``)."""

    root: Path
    admin: dict[str, str]
    start_seconds: float
    printed: dict[str, str]

    def env(self, user: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a process run as ``user`` (default: the admin)."""
        base = {k: v for k, v in os.environ.items() if k not in SERVER_VARIABLES}
        path = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"
        return {**base, **self.admin, **(user or {}), "PATH": path}

    def sign_in(self, monkeypatch, user: dict[str, str] | None = None) -> MlflowClient:
        """An MLflow client of this process signed in as ``user`` (MLflow reads the
        credentials from the environment on every request; restored after the test)."""
        env = self.env(user)
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            monkeypatch.setenv(name, env[name])
        return MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])


def exports(text: str) -> dict[str, str]:
    """The ``export NAME=value`` lines of a command's output, as a dict."""
    pairs = [line.removeprefix("export ").split("=", 1) for line in text.splitlines()]
    return {p[0]: p[1] for p in pairs if len(p) == 2 and p[0] in SERVER_VARIABLES}


def custseg(*args: str, env: dict[str, str], cwd: Path | None = None):
    return subprocess.run(
        [str(VENV_BIN / "custseg"), *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="session")
def team_server():
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")) and not shutil.which("initdb"):
        message = "PostgreSQL is not installed (.ci/run installs Debian's package)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    # PostgreSQL runs as an unprivileged user, who must be able to enter the folder
    root = Path(tempfile.mkdtemp(prefix="custseg-server-"))
    root.chmod(0o711)
    where = ["--dir", str(root / "server"), "--port", str(free_port()),
             "--pg-port", str(free_port())]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in SERVER_VARIABLES}
    started = time.monotonic()
    done = custseg("server", "start", *where, env=env)
    seconds = time.monotonic() - started
    try:
        assert done.returncode == 0, done.stderr
        admin = exports(done.stdout)
        assert set(admin) == set(SERVER_VARIABLES), done.stdout
        up = custseg("server", "status", "--dir", where[1], env=env)  # ports remembered
        assert up.stdout.splitlines()[:2] == ["PostgreSQL: running", "mlflow server: running"]
        assert f"MLflow on {admin['MLFLOW_TRACKING_URI']}" in up.stdout
        again = custseg("server", "start", "--dir", where[1], env=env)  # idempotent
        assert again.returncode == 0 and exports(again.stdout) == admin, again.stderr
        yield TeamServer(root, admin, seconds, {"start": done.stdout})
    finally:
        stopped = custseg("server", "stop", "--dir", where[1], env=env)  # ports remembered
        shutil.rmtree(root, ignore_errors=True)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr


@pytest.fixture(scope="session")
def alice(team_server) -> dict[str, str]:
    """A scientist, added by the admin as docs/team-server.md says."""
    done = custseg("team", "add-user", "alice", "--role", "scientist", env=team_server.env())
    assert done.returncode == 0, done.stderr
    team_server.printed["add-user alice"] = done.stdout
    user = exports(done.stdout)
    assert user["MLFLOW_TRACKING_USERNAME"] == "alice"
    return user


@pytest.mark.slow
def test_the_docs_show_what_server_start_and_add_user_print(team_server, alice):
    """docs/team-server.md: what `custseg server start` (make server) and `custseg team
    add-user alice` printed for this session's server. The generated passwords are masked;
    the server's folder is shown as .../.server and its free ports as the defaults."""
    ports = json.loads((team_server.root / "server" / "ports.json").read_text())

    def as_documented(printed: str) -> str:
        text = masked(printed, r"(?<=MLFLOW_TRACKING_PASSWORD=)\S+")
        text = text.replace(str(team_server.root / "server"), ".../.server")
        text = text.replace(f"127.0.0.1:{ports['port']}", "127.0.0.1:5055")
        return text.replace(f"127.0.0.1:{ports['pg_port']}", "127.0.0.1:55432")

    printed = team_server.printed
    assert shown_outputs() == [
        as_documented(printed["start"]),
        as_documented(printed["add-user alice"]),
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("credentials", "refused"),
    [
        ({"MLFLOW_TRACKING_PASSWORD": "not-her-password"}, "refused user 'alice': the user name"),
        ({"MLFLOW_TRACKING_USERNAME": "", "MLFLOW_TRACKING_PASSWORD": ""}, "refused a request "
         "without credentials: the user name or password is missing or wrong"),
    ],
)  # fmt: skip
def test_wrong_or_missing_credentials_get_one_line_not_a_traceback(
    team_server, alice, tmp_path, credentials, refused
):
    write_csv_atomic(generate_customers(50, seed=1), tmp_path / "customers.csv")
    env = team_server.env({**alice, **credentials})
    for command in (
        ["custseg-sweep", "data.path=customers.csv", "sweep.k_max=3"],
        ["custseg-predict", "data.path=customers.csv", "predict.input=customers.csv"],
    ):
        done = subprocess.run(
            [str(VENV_BIN / command[0]), *command[1:]], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert f"{command[0]}: error: the tracking server" in done.stderr
        assert refused in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_two_sweeps_at_once_and_a_busy_reader(team_server, alice, tmp_path, monkeypatch):
    """Two users sweep at the same moment while a third process polls the runs every
    20 ms: every run is logged, nothing fails (no "database is locked" on PostgreSQL)."""
    sweep = [
        str(VENV_BIN / "custseg-sweep"),
        "sweep.k_max=4",
        "sweep.feature_sets=[income_spending]",
    ]
    procs = []
    for name, user in (("admin", None), ("alice", alice)):
        folder = tmp_path / name
        folder.mkdir()
        write_csv_atomic(generate_customers(200, seed=len(procs) + 1), folder / "customers.csv")
        command = [*sweep, "data.path=customers.csv", f"sweep.output_dir={folder / 'sweeps'}"]
        procs.append(subprocess.Popen(
            command, cwd=folder, env=team_server.env(user), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        ))  # fmt: skip

    reader = team_server.sign_in(monkeypatch)  # as the admin
    errors: list[str] = []
    reads = 0
    stop = threading.Event()

    def poll() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                experiment = reader.get_experiment_by_name(EXPERIMENT)
                if experiment is not None:
                    reader.search_runs([experiment.experiment_id], max_results=100)
                reads += 1
            except Exception as exc:  # every failure counts
                errors.append(repr(exc))
            time.sleep(0.02)

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    finally:
        stop.set()
        thread.join()
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert errors == [] and reads > 20

    experiment = reader.get_experiment_by_name(EXPERIMENT)
    runs = reader.search_runs([experiment.experiment_id], max_results=1000)
    parents = {r.info.run_id for r in runs if r.data.tags.get("custseg.role") == "sweep"}
    ours = [r for r in runs if r.info.run_id in parents
            or r.data.tags.get("mlflow.parentRunId") in parents]  # fmt: skip
    assert len(parents) >= 2
    assert {r.info.status for r in ours} == {"FINISHED"}
    assert len(ours) >= 2 * (1 + 3)  # two parents, three fits each


@pytest.mark.slow
def test_make_run_against_the_server_and_a_teammate(team_server, alice, tmp_path, monkeypatch):
    """The owner runs the whole pipeline against the server and pushes the DVC outputs;
    a teammate's clone pulls them, is up to date, sees the runs and the champion, scores
    with it, and may not promote."""
    owner = make_clone(tmp_path / "owner")
    (owner / ".venv").symlink_to(VENV_BIN.parent)
    os.utime(owner / ".venv" / ".installed")  # installed: make must not reinstall into it
    done = subprocess.run(
        ["make", "run", "TRACKING=server"], cwd=owner, env=team_server.env(),
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # where runs go is not part of what DVC hashes: the committed dvc.lock stays right
    status = subprocess.run(["git", "status", "--porcelain"], cwd=owner, capture_output=True,
                            text=True).stdout  # fmt: skip
    assert status == "", status
    admin = team_server.sign_in(monkeypatch)
    champion = admin.get_model_version_by_alias(MODEL, "champion")
    catalog = (owner / "catalog" / "champion.json").read_bytes()
    assert champion.tags["fingerprint"] == sha256(catalog)
    tags = sorted(admin.get_registered_model(MODEL).tags.items())
    moves = [json.loads(value) for key, value in tags if key.startswith("custseg.alias_move.")]
    assert (moves[-1]["alias"], moves[-1]["to"], moves[-1]["by"]) == (
        "champion",
        str(champion.version),
        "admin",
    )  # fmt: skip: who moved @champion, on the server

    # a shared DVC remote (a local folder standing in for the team's bucket)
    remote = tmp_path / "remote"
    dvc = str(VENV_BIN / "dvc")
    for command in (["remote", "add", "--local", "-d", "team", str(remote)], ["push"]):
        subprocess.run([dvc, *command], cwd=owner, check=True, capture_output=True)
    mate = make_clone(tmp_path / "alice")
    env = team_server.env(alice)
    for command in (["remote", "add", "--local", "-d", "team", str(remote)], ["pull"]):
        subprocess.run([dvc, *command], cwd=mate, env=env, check=True, capture_output=True)
    for output in ("models/segmentation.json", "reports/segments.md", "data/customers.csv",
                   "sweeps/income_spending/curve.csv", "validated/customers.parquet"):  # fmt: skip
        assert (mate / output).read_bytes() == (owner / output).read_bytes(), output
    # nothing is recomputed: only publish runs (a side effect on the registry, never
    # restored from a cache), finds the version on the server and changes nothing
    repro = subprocess.run([dvc, "repro"], cwd=mate, env=env, capture_output=True, text=True)
    assert repro.returncode == 0, repro.stdout + repro.stderr
    ran = [line for line in repro.stdout.splitlines() if line.startswith("Running stage")]
    assert ran == ["Running stage 'publish':"], repro.stdout
    up_to_date = subprocess.run([dvc, "status"], cwd=mate, env=env, capture_output=True, text=True)
    assert "Data and pipelines are up to date" in up_to_date.stdout, up_to_date.stdout
    assert [v.version for v in admin.search_model_versions(f"name='{MODEL}'")] == [champion.version]

    # the teammate sees the owner's runs and the champion, and scores with it
    teammate = team_server.sign_in(monkeypatch, alice)
    experiment = teammate.get_experiment_by_name(EXPERIMENT)
    runs = teammate.search_runs([experiment.experiment_id], max_results=1000)
    assert any(r.data.tags.get("custseg.role") == "final" for r in runs)
    assert teammate.get_model_version_by_alias(MODEL, "champion").version == champion.version
    scored = subprocess.run(
        [str(VENV_BIN / "custseg-predict"), "predict.input=data/customers.csv"],
        cwd=mate, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    assert f"models:/{MODEL}@champion (version {champion.version})" in scored.stdout
    # ... and monitors the batch in the monitoring experiment add-user granted, but may
    # not tag the version with the verdict (an owner's call): said, not fatal
    lines = scored.stdout.splitlines()
    assert lines[1].startswith(
        f"monitoring: stable -> monitoring/customers.json; version {champion.version} was not "
        "tagged with the verdict: "
    ), lines
    monitoring = teammate.get_experiment_by_name(f"{EXPERIMENT}-monitoring")
    (monitored,) = teammate.search_runs([monitoring.experiment_id])
    assert monitored.info.status == "FINISHED"

    # ... but promoting is the owners' call: refused, with who lacks what
    sweep_run = next(r for r in runs if r.data.tags.get("custseg.role") == "fit")
    refused = custseg("promote", "--run-id", sweep_run.info.run_id, env=env, cwd=mate)
    assert refused.returncode == 1
    assert "alice may not register versions of 'customer-segmentation'" in refused.stderr
    assert "Traceback" not in refused.stderr
    port = team_server.admin["MLFLOW_TRACKING_URI"].rsplit(":", 1)[1]  # docs: the default
    (shown,) = shown_outputs()  # docs/team-server.md
    assert_shows(refused.stderr.replace(f"127.0.0.1:{port}", "127.0.0.1:5055"), shown)
    assert teammate.get_model_version_by_alias(MODEL, "champion").version == champion.version
    # and so is registering a new model: the publish stage stops with the same message
    model_file = mate / "models" / "segmentation.json"
    renamed = json.loads(model_file.read_text())
    renamed["names"][0] = "Renamed"  # another model: a new version would be needed
    model_file.write_text(json.dumps(renamed, indent=2, sort_keys=True) + "\n")
    published = subprocess.run(
        [str(VENV_BIN / "custseg-publish")], cwd=mate, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert published.returncode == 1, published.stdout + published.stderr
    assert "custseg-publish: error: alice may not register versions" in published.stderr
    assert len(admin.search_model_versions(f"name='{MODEL}'")) == 1

    # an owner promotes as on sqlite: the sweep run registered through the gate, forced
    # (a k the criteria did not pick is worse), then rolled back, both moves on the trail
    env = team_server.env()
    other_k = next(r for r in runs if r.data.tags.get("custseg.role") == "fit"
                   and r.data.params.get("k") == "3")  # fmt: skip
    forced = custseg("promote", "--run-id", other_k.info.run_id, "--force", env=env, cwd=owner)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith(f"moved {MODEL}@champion: version {champion.version} (run ")
    back = custseg("promote", "--rollback", env=env, cwd=owner)
    assert back.returncode == 0, back.stderr
    admin = team_server.sign_in(monkeypatch)
    assert admin.get_model_version_by_alias(MODEL, "champion").version == champion.version
    tags = sorted(admin.get_registered_model(MODEL).tags.items())
    moves = [json.loads(value) for key, value in tags if key.startswith("custseg.alias_move.")]
    assert [m["why"].split(":")[0] for m in moves[-2:]] == [
        "promoted, forced",
        "rollback from version 2",
    ]


def sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
