"""One catalog of output paths: what both dvc.yaml files declare per stage is what
:func:`custseg.storage.paths.stage_outputs` says the stages write."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from custseg.storage.paths import REPORT_FILES, stage_outputs

from conftest import PROJECT_ROOT, compose_settings

PIPELINES = {
    "mall": (PROJECT_ROOT, []),
    "transactions": (PROJECT_ROOT / "transactions", ["pipeline=transactions"]),
}


def declared(root: Path) -> dict[str, set[str]]:
    """Each stage's ``outs``, ``metrics`` and ``plots`` in ``root/dvc.yaml``, with its vars."""
    spec = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))
    values = {}
    for var in spec.get("vars", []):
        file, key = var.rsplit(":", 1)
        values[key] = yaml.safe_load((root / file).read_text(encoding="utf-8"))[key]
    found = {}
    for stage, body in spec["stages"].items():
        entries = [e for kind in ("outs", "metrics", "plots") for e in body.get(kind) or []]
        names = [e if isinstance(e, str) else next(iter(e)) for e in entries]
        for key, value in values.items():
            names = [n.replace("${" + key + "}", str(value)) for n in names]
        found[stage] = {Path(n).as_posix() for n in names}
    return found


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_dvc_declares_what_the_stages_write(pipeline):
    root, overrides = PIPELINES[pipeline]
    assert declared(root) == stage_outputs(compose_settings(overrides))


def test_the_report_writes_its_files_where_the_catalog_says(tmp_path):
    """By hand: a moved report directory moves the report's outputs, not the others."""
    settings = compose_settings([f"report.output_dir={tmp_path.as_posix()}/out"])
    report = stage_outputs(settings)["report"]
    assert {f"{tmp_path.as_posix()}/out/{name}" for name in REPORT_FILES.values()} <= report
    assert stage_outputs(settings)["select"] == stage_outputs(compose_settings())["select"]
    assert "rfm" not in stage_outputs(settings)
