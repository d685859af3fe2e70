"""The console scripts as a user runs them: errors a user can fix get one clear message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from custseg.storage.outputs import CURVE_COLUMNS

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("program", "overrides", "expected"),
    [
        ("custseg-validate", ["data.path={missing}"], "file not found"),
        ("custseg-sweep", ["data.path={missing}"], "file not found"),
        ("custseg-sweep", ["model.n_init=0"], "model.n_init"),
        ("custseg-select", ["sweep.output_dir={tmp}/nowhere"], "not found"),
        ("custseg-report", ["sweep.output_dir={tmp}/nowhere"], "not found"),
        ("custseg-select", ["sweep.output_dir={stale}", "data.path={data}"], "rerun the sweep"),
        # issue 29: the batch to score is named, never a file to generate data into
        ("custseg-predict", ["predict.input={missing}"], "file not found: '{missing}'"),
        ("custseg-monitor", ["monitor.input={missing}"], "; check monitor.input\n"),
        # issue 29: a key typo is named with the close keys, not Hydra's "use +key"
        (
            "custseg-predict",
            ["predict.inptu={missing}"],
            "unknown key 'predict.inptu': did you mean predict.input?",
        ),
    ],
)
def test_user_errors_exit_1_with_one_message_and_no_traceback(
    tmp_path, generated_csv, program, overrides, expected
):
    values = {"missing": tmp_path / "missing.csv", "tmp": tmp_path, "data": generated_csv}
    if "{stale}" in " ".join(overrides):  # a curve of an older, shorter k range
        curve = tmp_path / "stale" / "income_spending" / "curve.csv"
        curve.parent.mkdir(parents=True)
        curve.write_text(",".join(CURVE_COLUMNS) + "\n" + "2" + ",1" * 7 + "\n")
        values |= {"stale": curve.parent.parent, "data": generated_csv}
    args = [o.format(**values) for o in overrides]
    tracking = [
        f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"tracking.artifact_location={tmp_path / 'mlruns'}",
        f"hydra.run.dir={tmp_path / 'outputs'}",
    ]
    result = subprocess.run(
        [str(BIN / program), *args, *tracking], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"{program}: error: "), result.stderr
    assert expected.format(**values) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    if program in ("custseg-predict", "custseg-monitor"):
        assert "custseg generate" not in result.stderr


@pytest.mark.parametrize(
    ("stage", "unused"),
    [
        ("validate", ["mlflow", "sklearn", "matplotlib", "scipy"]),
        ("rfm", ["mlflow", "sklearn", "matplotlib", "scipy"]),
        ("select", ["mlflow", "sklearn", "matplotlib", "scipy"]),
        ("report", ["mlflow", "sklearn", "scipy.optimize"]),
        # publish tracks, but draws and renders nothing unless it registers a new version
        ("publish", ["sklearn", "matplotlib", "jinja2", "scipy.optimize"]),
    ],
)
def test_stage_imports_only_what_it_uses(stage: str, unused: list[str]) -> None:
    # start-up is most of a small table's pipeline time (issue 8): MLflow alone takes
    # 1.5-2.5 s to import, so the stages that never track must not import it
    code = (
        f"import sys, custseg.pipeline.{stage}; print([m for m in {unused!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_generate_refuses_a_drift_without_its_unit(tmp_path):
    out = tmp_path / "x.csv"
    done = subprocess.run(
        [str(BIN / "custseg"), "generate", "--drift", "income=+1", "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0 and "--drift 'income=+1': write NAME=+Nsd" in done.stderr
    assert not out.exists()
