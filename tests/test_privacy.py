"""Customer-level data stays out of the tracking store (issue 10, privacy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from custseg.storage.data import generate_customers, write_csv_atomic
from test_dvc import make_clone, run

#: a marker no other text of the project contains, in every customer id
MARKER = "QZXCUSTOMER"


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.slow
def test_no_customer_id_reaches_the_tracking_store(tmp_path):
    """The whole pipeline and a scoring run on a table whose ids carry a marker: the marker
    is in the customer-level DVC outputs, and nowhere in the MLflow store (database,
    artifacts, logged models and reports) or the commands' output."""
    repo = make_clone(tmp_path)
    raw = generate_customers(200, seed=5)
    raw["CustomerID"] = [f"{MARKER}-{i:05d}" for i in range(1, 201)]
    write_csv_atomic(raw, repo / "data" / "customers.csv")
    args = ["sweep.k_max=6"]
    outputs = [
        run(command, repo)
        for command in (
            ["custseg-validate"],
            ["custseg-sweep", *args],
            ["custseg-select", *args],
            ["custseg-report", *args],
            ["custseg-publish", *args],
            ["custseg-predict", "predict.input=data/customers.csv"],
        )
    ]
    # the marker is findable where customer-level data belongs
    assert MARKER in (repo / "reports" / "segment_assignments.csv").read_text(encoding="utf-8")
    assert MARKER in (repo / "scores" / "customers.scored.csv").read_text(encoding="utf-8")

    store = [repo / "mlflow.db", *files_under(repo / "mlruns")]
    assert len(store) > 50  # runs, models, plots, reports: the scan covers real artifacts
    leaks = [str(p.relative_to(repo)) for p in store if MARKER.encode() in p.read_bytes()]
    assert leaks == []
    for result in outputs:
        assert MARKER not in result.stdout + result.stderr
