"""The segment report: rendering, files, bit-identical output and headless Chromium.

Inputs are real and small: a generated customer table, a model fitted on it and written
as the select stage writes it (``models/segmentation.json``), a sweep curve, a selection
record and the comparison with the champion of a segment catalog.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import html
import json
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custseg.domain.clustering import fit_model
from custseg.domain.identity import compare_models, identify
from custseg.domain.profiling.rules import PersonaRule
from custseg.domain.selection import criteria_picks, votes
from custseg.pipeline.report import ReportOutcome, run_report
from custseg.pipeline.sweep import fit_and_trust
from custseg.reporting.report import (
    ReportInputs,
    method_sentence,
    read_selection,
    render_html,
    render_markdown,
    segment_metrics,
    write_report,
)
from custseg.storage.assignments import assignments_table, csv_texts, neutralize_cell
from custseg.storage.data import (
    DataInfo,
    file_sha256,
    generate_customers,
    load_customers,
    write_csv_atomic,
)
from custseg.storage.outputs import (
    StaleInputError,
    write_curve,
    write_json_atomic,
    write_segment_model,
)

from conftest import CHROMIUM_BASE_FLAGS, compose_settings

FORMULA_IDS = ["=1+1", "+x", "-2", "@a"]  # survive loading (ids are stripped)
N_CUSTOMERS = 120
K = 5


@dataclass
class Project:
    """A project-like directory with the outputs of the earlier stages."""

    root: Path
    csv: Path
    model_file: Path
    changes: Path
    sweeps: Path
    feature_set: str
    features: list[str]
    fingerprint: str

    def selection(self, **extra) -> dict:
        return {
            "feature_set": self.feature_set,
            "features": self.features,
            "k": K,
            "method": "elbow",
            "picks": {
                "elbow": K,
                "silhouette": K,
                "calinski_harabasz": 7,
                "davies_bouldin": None,
            },
            "data_sha256": file_sha256(self.csv),
            "n_rows": N_CUSTOMERS,
            "fingerprint": self.fingerprint,
        } | extra

    def write_selection(self, path: Path, **kwargs) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.selection(**kwargs)), encoding="utf-8")
        return path

    def settings(self, out: Path, overrides=(), catalog: Path | None = None):
        """Settings writing under ``out``; no champion unless ``catalog`` is given."""
        catalog = catalog or self.root / "absent-catalog.json"
        return compose_settings(
            [
                f"features={self.feature_set}",
                f"data.path={self.csv}",
                f"sweep.output_dir={self.sweeps}",
                f"report.output_dir={out / 'reports'}",
                f"report.metrics_file={out / 'metrics' / 'segments.json'}",
                f"catalog.path={catalog}",
                *overrides,
            ]
        )

    def report(
        self, out: Path, settings=None, changes: Path | None = None, **record
    ) -> ReportOutcome:
        selection = self.write_selection(out / "selection.json", **record)
        return run_report(
            settings or self.settings(out), self.model_file, selection, changes or self.changes
        )


def build_project(root: Path, feature_set: str = "income_spending") -> Project:
    raw = generate_customers(N_CUSTOMERS, seed=11)
    raw["CustomerID"] = raw["CustomerID"].astype(str).astype(object)
    raw.loc[: len(FORMULA_IDS) - 1, "CustomerID"] = FORMULA_IDS
    csv_path = root / "data" / "customers.csv"
    write_csv_atomic(raw, csv_path)
    settings = compose_settings([f"features={feature_set}", f"data.path={csv_path}"])
    table, info = load_customers(settings.data)
    fs = settings.features
    rows = [
        {"feature_set": fs.name, "k": k, **fit_and_trust(table, fs, k, settings)[0].metrics}
        for k in range(2, 8)
    ]
    curve = pd.DataFrame(rows)
    curve["votes"] = votes(criteria_picks(curve), curve["k"])
    sweeps = root / "sweeps"
    write_curve(curve, sweeps, fs.name)
    result = fit_model(table, fs, "standard", settings.model, K)
    model, _ = identify(result, table, settings.personas, "standard", info.sha256)
    model_file, changes = root / "models" / "segmentation.json", root / "models" / "changes.json"
    write_segment_model(model, model_file)
    write_json_atomic(compare_models(None, model, table), changes)
    return Project(
        root, csv_path, model_file, changes, sweeps, fs.name, fs.columns, model.fingerprint
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    return build_project(tmp_path_factory.mktemp("project"))


@dataclass
class Rendered:
    project: Project
    out: Path
    outcome: ReportOutcome

    def text(self, name: str) -> str:
        return (self.out / "reports" / name).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def rendered(project, tmp_path_factory) -> Rendered:
    """One full run_report of the project's outputs."""
    out = tmp_path_factory.mktemp("out")
    return Rendered(project, out, project.report(out))


def data_info(project: Project) -> DataInfo:
    return DataInfo(str(project.csv), file_sha256(project.csv), N_CUSTOMERS, 5)


# ---------------------------------------------------------------------- the whole flow


def test_report_writes_every_file_and_touches_no_tracking_store(rendered):
    paths = rendered.outcome.paths
    for path in [paths.html, paths.markdown, paths.assignments, paths.sizes, paths.metrics]:
        assert path.is_file() and path.stat().st_size > 0
    assert list(rendered.out.rglob("mlflow.db")) == []


def test_the_same_inputs_give_the_same_bytes(rendered, tmp_path):
    """DVC-tracked outputs depend on data, params and code only: a rerun is bit-identical."""
    again = rendered.project.report(tmp_path, settings=rendered.project.settings(tmp_path))
    for name in ["segments.html", "segments.md", "segment_assignments.csv", "segment_sizes.csv"]:
        assert (tmp_path / "reports" / name).read_bytes() == (
            rendered.out / "reports" / name
        ).read_bytes(), name
    assert again.paths.metrics.read_bytes() == rendered.outcome.paths.metrics.read_bytes()


def test_no_temporary_files_are_left(rendered):
    leftovers = [p for p in rendered.out.rglob("*.tmp")]
    assert leftovers == []


def test_html_names_every_segment_and_embeds_every_image(rendered):
    page = rendered.text("segments.html")
    names = [d.name for d in rendered.outcome.descriptions.values()]
    assert len(set(names)) == K
    for d in rendered.outcome.descriptions.values():
        assert html.escape(d.name) in page
        assert html.escape(d.persona) in page
        assert html.escape(d.recommendation) in page
    sources = re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", page)
    assert len(sources) == 4  # scatter, profiles, elbow, stability
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert f"k = {K} was chosen by the elbow method" in page


def test_unstable_segments_are_flagged_in_the_report_and_metrics(rendered, tmp_path):
    """Segment-level trust: each segment's Jaccard in the table, those below the threshold
    flagged where marketing reads (HTML, Markdown) and in metrics/ for DVC."""
    project = rendered.project
    segments = sorted(rendered.outcome.descriptions)
    shaky = segments[1]
    jaccard = {str(s): (0.41 if s == shaky else 0.93) for s in segments}
    trust = {
        "stability": 0.8,
        "resamples": 20,
        "resampling": "bootstrap",
        "jaccard": jaccard,
        "unstable_jaccard": 0.6,
        "unstable": [shaky],
    }
    names = {str(s): d.name for s, d in rendered.outcome.descriptions.items()}
    outcome = project.report(
        tmp_path, settings=project.settings(tmp_path), trust=trust, segment_names=names
    )
    page = (tmp_path / "reports" / "segments.html").read_text(encoding="utf-8")
    assert page.count('<span class="flag">unstable</span>') == 1
    assert page.count('<td class="num">0.93</td>') == K - 1
    name = outcome.descriptions[shaky].name
    assert f"but {html.escape(name)} (0.41) is unstable" in page
    markdown = (tmp_path / "reports" / "segments.md").read_text(encoding="utf-8")
    assert markdown.count("0.41 **unstable**") == 1
    metrics = json.loads(outcome.paths.metrics.read_text(encoding="utf-8"))
    assert metrics["min_jaccard"] == 0.41
    flagged = [row["segment"] for row in metrics["segments"] if row["unstable"]]
    assert flagged == [shaky]
    assert {str(r["segment"]): r["jaccard"] for r in metrics["segments"]} == jaccard


def test_html_references_no_remote_resource(rendered):
    page = rendered.text("segments.html")
    assert re.findall(r"https?://[^\s\"'<>]+", page) == []
    for forbidden in ("<script", "<link", "<iframe", "@import", "url(", 'src="http', "//fonts"):
        assert forbidden not in page.lower()
    assert "Content-Security-Policy" in page


def test_html_shows_provenance_from_versioned_inputs_only(rendered):
    page = rendered.text("segments.html")
    for value in [file_sha256(rendered.project.csv), rendered.project.fingerprint]:
        assert value in page
    assert "status/registry.json" in page  # where run ids and versions are


def test_markdown_has_one_table_row_per_segment(rendered):
    text = rendered.text("segments.md")
    lines = text.splitlines()
    assert lines[0] == f"## Customer segments: k = {K} (`{rendered.project.feature_set}`)"
    header = next(i for i, line in enumerate(lines) if line.startswith("| Segment | Persona |"))
    assert re.fullmatch(r"\|(---:?\|)+", lines[header + 1])
    rows = lines[header + 2 : header + 2 + K]
    assert all(r.startswith("| **") and r.endswith(" |") for r in rows)
    columns = lines[header].count(" | ") + 1
    sizes = rendered.outcome.profiles.sizes["size"]
    for d in rendered.outcome.descriptions.values():
        (row,) = [r for r in rows if r.startswith(f"| **{d.name}** (segment {d.segment})")]
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert len(cells) == columns
        assert cells[1] == d.persona
        assert cells[2] == f"{sizes[d.segment]:,}"
    assert "elbow method" in text
    assert f"model fingerprint `{rendered.project.fingerprint[:12]}`" in text


def read_csv_cells(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_assignment_csv_keeps_every_customer_with_safe_ids(rendered):
    cells = read_csv_cells(rendered.outcome.paths.assignments)
    assert cells[0] == ["customer_id", "segment", "segment_name", "persona"]
    body = cells[1:]
    assert len(body) == N_CUSTOMERS
    table, _ = load_customers(rendered.project.settings(rendered.out).data)
    expected_ids = [neutralize_cell(v) for v in table["customer_id"]]
    assert [r[0] for r in body] == expected_ids
    assert [r[0] for r in body[: len(FORMULA_IDS)]] == ["'" + v for v in FORMULA_IDS]
    names = {d.segment: d.name for d in rendered.outcome.descriptions.values()}
    labels = rendered.outcome.labels
    assert [int(r[1]) for r in body] == labels.tolist()
    assert [r[2] for r in body] == [names[s] for s in labels.tolist()]
    personas = {d.segment: d.persona for d in rendered.outcome.descriptions.values()}
    assert [r[3] for r in body] == [personas[s] for s in labels.tolist()]


def test_metrics_are_flat_and_sizes_are_a_plot_table(rendered):
    metrics = json.loads(rendered.outcome.paths.metrics.read_text(encoding="utf-8"))
    counts = np.bincount(rendered.outcome.labels, minlength=K)
    assert metrics == {
        "min_share": round(counts.min() / N_CUSTOMERS, 6),
        "max_share": round(counts.max() / N_CUSTOMERS, 6),
        # a selection record without stability (as written before it existed)
        "min_jaccard": None,
        "segments": [{"segment": s, "jaccard": None, "unstable": False} for s in range(K)],
    }
    sizes = pd.read_csv(rendered.outcome.paths.sizes)
    assert list(sizes.columns) == ["segment", "name", "size", "share"]
    assert dict(zip(sizes["segment"], sizes["size"], strict=True)) == dict(
        enumerate(counts.tolist())
    )
    names = {d.segment: d.name for d in rendered.outcome.descriptions.values()}
    assert dict(zip(sizes["segment"], sizes["name"], strict=True)) == names


@pytest.mark.parametrize("feature_set", ["age_spending", "all"])
def test_report_works_for_other_feature_sets(tmp_path, feature_set):
    project = build_project(tmp_path / "p", feature_set)
    outcome = project.report(tmp_path)
    page = outcome.paths.html.read_text(encoding="utf-8")
    assert len({d.name for d in outcome.descriptions.values()}) == K
    assert all(html.escape(d.name) in page for d in outcome.descriptions.values())
    assert page.count('<img src="data:image/png;base64,') == 4


# ------------------------------------------------------------- the champion and changes


def test_without_a_champion_the_report_says_so(rendered):
    page = rendered.text("segments.html")
    assert "No champion is recorded yet" in page
    assert 'id="changes"' not in page


def test_a_different_champion_is_flagged_with_what_changed(project, tmp_path):
    """The report compares with the catalog's champion (versioned input) and says so on top."""
    settings = project.settings(tmp_path, catalog=tmp_path / "catalog.json")
    table, info = load_customers(settings.data)
    model = json.loads(project.model_file.read_text(encoding="utf-8"))
    # the champion: the same data clustered with k=4 (its ids and names are the reference)
    result = fit_model(table, settings.features, "standard", settings.model, 4)
    champion, _ = identify(result, table, settings.personas, "standard", info.sha256)
    write_segment_model(champion, settings.catalog.path)
    from custseg.domain.segment_model import SegmentModel

    new = SegmentModel.from_dict(model)
    changes = tmp_path / "changes.json"
    write_json_atomic(compare_models(champion, new, table), changes)
    outcome = project.report(tmp_path, settings=settings, changes=changes)
    page = outcome.paths.html.read_text(encoding="utf-8")
    top = page[: page.index('id="segments"')]
    assert "Not the champion." in top and str(settings.catalog.path) in top
    assert "What changed since the champion" in page
    section = page[page.index('id="changes"') :]
    for name in champion.names:
        assert html.escape(name) in section  # rows: the champion's segments
    expected = json.loads(changes.read_text(encoding="utf-8"))
    assert f"{expected['moved']:,} customers change segment" in section
    markdown = outcome.paths.markdown.read_text(encoding="utf-8")
    assert "**Not the champion.**" in markdown and "What changed since the champion" in markdown


def test_splits_merges_renames_and_a_fresh_catalog_are_said(project, tmp_path):
    """What changed names splits, merges and renamed segments by name, and a first model
    of new data says so on top (changes as custseg-select records them)."""
    settings = project.settings(tmp_path, catalog=tmp_path / "catalog.json")
    from custseg.domain.segment_model import SegmentModel

    new = SegmentModel.from_json(project.model_file.read_text(encoding="utf-8"))
    renamed = new.relabel(
        {s: s for s in new.segments},
        {0: "Old zero", 1: "Old one"} | {s: n for s, n in new.segment_names.items() if s > 1},
    )
    write_segment_model(renamed, settings.catalog.path)
    table, _ = load_customers(settings.data)
    changes = compare_models(renamed, new, table)
    changes["events"] = [
        {"event": "split", "from": [0], "to": [1, 2]},
        {"event": "merge", "from": [0, 1], "to": [3]},
    ]
    path = tmp_path / "changes.json"
    write_json_atomic(changes, path)
    names = new.segment_names
    page = project.report(tmp_path, settings=settings, changes=path).paths.html
    section = page.read_text(encoding="utf-8").split('id="changes"')[1]
    assert html.escape(f"Old zero (0) split into {names[1]} (1) and {names[2]} (2)") in section
    assert html.escape(f"Old zero (0) and Old one (1) merged into {names[3]} (3)") in section
    assert html.escape(f"{names[1]} (1): renamed, was \u201cOld one\u201d") in section

    changes["identity"] = {"carried": False, "fresh": "catalog.fresh is set"}
    write_json_atomic(changes, path)
    page = project.report(tmp_path, settings=settings, changes=path).paths.html
    top = page.read_text(encoding="utf-8").split('id="segments"')[0]
    assert "First model of this data" in top and "catalog.fresh is set" in top


def test_a_model_whose_names_contradict_the_numbers_is_refused(project, tmp_path):
    """Names are facts: a model whose names say the opposite of the table is never reported."""
    from custseg.domain.segment_model import SegmentModel

    model = SegmentModel.from_json(project.model_file.read_text(encoding="utf-8"))
    income = model.centroid_table()["annual_income"]
    low, high = income.idxmin(), income.idxmax()
    names = model.segment_names | {low: "High income", high: "Low income"}
    lying = tmp_path / "lying.json"
    write_segment_model(model.relabel({s: s for s in model.segments}, names), lying)
    selection = project.write_selection(tmp_path / "selection.json")
    settings = project.settings(tmp_path)
    with pytest.raises(StaleInputError, match="segment names contradict the numbers"):
        run_report(settings, lying, selection, project.changes)
    assert not (tmp_path / "reports" / "segments.html").exists()


def test_the_champion_itself_is_reported_as_such(project, tmp_path):
    settings = project.settings(tmp_path, catalog=tmp_path / "catalog.json")
    shutil.copy(project.model_file, settings.catalog.path)
    table, _ = load_customers(settings.data)
    from custseg.storage.outputs import read_segment_model

    model = read_segment_model(project.model_file)
    changes = tmp_path / "changes.json"
    write_json_atomic(compare_models(model, model, table), changes)
    outcome = project.report(tmp_path, settings=settings, changes=changes)
    page = outcome.paths.html.read_text(encoding="utf-8")
    assert "This model is the champion recorded in" in page
    assert "Not the champion." not in page
    # the champion's own model: said on top, and no identity matrix of +0.0 shifts
    assert 'id="changes"' not in page and "change segment" not in page
    markdown = outcome.paths.markdown.read_text(encoding="utf-8")
    assert "What changed since the champion" not in markdown


# -------------------------------------------------------------------------- all or nothing


def test_failed_write_leaves_no_file_and_no_temporary(project, tmp_path):
    blocker = tmp_path / "metrics"
    blocker.write_text("a regular file where a directory is needed", encoding="utf-8")
    settings = project.settings(tmp_path)  # metrics file goes below tmp_path/metrics/
    with pytest.raises(OSError):
        project.report(tmp_path, settings=settings)
    reports = tmp_path / "reports"
    assert not reports.exists() or list(reports.iterdir()) == []
    assert blocker.read_text(encoding="utf-8").startswith("a regular file")


def test_failed_rewrite_keeps_the_previous_report_intact(tmp_path):
    out, metrics = tmp_path / "reports", tmp_path / "metrics" / "segments.json"
    frame = pd.DataFrame({"customer_id": ["1"], "segment": [0], "segment_name": ["A"]})
    assignments = functools.partial(write_csv_atomic, frame)
    write_report(out, metrics, "<p>old</p>", "old", assignments, {"k": 1})
    before = {p: p.read_bytes() for p in [*out.iterdir(), metrics]}
    # the assignment CSV cannot be written (its path is a directory): nothing may change
    (out / "segment_assignments.csv").unlink()
    (out / "segment_assignments.csv").mkdir()
    del before[out / "segment_assignments.csv"]
    with pytest.raises(OSError):
        write_report(out, metrics, "<p>new</p>", "new", assignments, {"k": 2})
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["segments.html", "segments.md", "segment_assignments.csv"]
    )
    assert list(tmp_path.rglob("*.tmp")) == []


def test_missing_sweep_curve_stops_before_writing(project, tmp_path):
    selection = project.write_selection(
        tmp_path / "selection.json", feature_set="not_swept", features=project.features
    )
    with pytest.raises(FileNotFoundError, match="run the sweep"):
        run_report(project.settings(tmp_path), project.model_file, selection, project.changes)
    assert not (tmp_path / "reports").exists()
    assert not (tmp_path / "metrics").exists()


# ------------------------------------------------------------------------ the pieces


@pytest.mark.parametrize(
    "value, expected",
    [
        ("=1+1", "'=1+1"),
        ("+x", "'+x"),
        ("-2", "'-2"),
        ("@a", "'@a"),
        ("\tX", "'\tX"),
        ("\rY", "'\rY"),
        ("Alice", "Alice"),
        ("1", "1"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_neutralize_cell(value, expected):
    assert neutralize_cell(value) == expected


def test_a_column_of_ids_is_made_safe_as_each_cell_is():
    """The assignments' ids are made safe in one vectorised pass: the same text as the
    cell-by-cell rule, whatever the values (missing, numbers, line breaks)."""
    values = [None, float("nan"), pd.NA, 1.5, 7, True, "=1+1", "+x", "-3", "@a", "\tq"]
    values += ["\rz", "a\r\nb", "a\rb", "a\nb", "ok", "'q", "", "é=", "x=\r"]
    expected = [neutralize_cell(v).replace("\r\n", "\n").replace("\r", "\n") for v in values]
    assert csv_texts(values).tolist() == expected


@pytest.mark.parametrize("value", ["=1+1", "+x", "-2", "@a", "\tX", "\rY"])
def test_assignment_csv_neutralises_ids_and_names(tmp_path, value):
    frame = assignments_table([value, "ok"], np.array([1, 0]), {0: "Fine", 1: value})
    path = tmp_path / "a.csv"
    write_csv_atomic(frame, path)
    cells = read_csv_cells(path)
    # a carriage return reads back as a line break inside the (quoted) cell
    safe = "'" + value.replace("\r", "\n")
    assert cells == [
        ["customer_id", "segment", "segment_name"],
        [safe, "1", safe],
        ["ok", "0", "Fine"],
    ]


def test_assignments_without_ids_number_the_rows():
    frame = assignments_table(None, np.array([0, 0, 1]), {0: "A", 1: "B"})
    assert frame.columns.tolist() == ["row", "segment", "segment_name"]
    assert frame["row"].tolist() == ["1", "2", "3"]


def test_assignments_need_a_name_for_every_segment():
    with pytest.raises(ValueError, match=r"segment\(s\) \[2\]"):
        assignments_table(["a", "b"], np.array([0, 2]), {0: "A"})


def hostile_inputs(rendered: Rendered) -> ReportInputs:
    descriptions = dict(rendered.outcome.descriptions)
    first = min(descriptions)
    descriptions[first] = dataclasses.replace(
        descriptions[first],
        name="<script>alert(1)</script> | *x*",
        recommendation='Say "hi" & <b>buy</b>',
    )
    return ReportInputs(
        selection=rendered.outcome.selection,
        data=data_info(rendered.project),
        profiles=rendered.outcome.profiles,
        descriptions=descriptions,
    )


def test_html_escapes_every_text(rendered):
    page = render_html(hostile_inputs(rendered))
    assert "<script" not in page and "<b>buy" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Say &#34;hi&#34; &amp; &lt;b&gt;buy&lt;/b&gt;" in page


def test_markdown_escapes_cells(rendered):
    text = render_markdown(hostile_inputs(rendered))
    row = next(line for line in text.splitlines() if "alert" in line)
    assert r"\<script\>alert(1)\</script\> \| \*x\*" in row
    header = next(line for line in text.splitlines() if line.startswith("| Segment | Persona |"))
    assert len(re.findall(r"(?<!\\)\|", row)) == len(re.findall(r"(?<!\\)\|", header))


def test_changed_data_is_flagged(rendered):
    inputs = hostile_inputs(rendered)
    inputs.selection = {**inputs.selection, "data_sha256": "1" * 64}
    assert "The data file changed since the model was selected" in render_html(inputs)
    assert "> **Warning:**" in render_markdown(inputs)


@pytest.mark.parametrize(
    "picks, method, expected",
    [
        (
            {"elbow": 5, "silhouette": 5, "calinski_harabasz": 9, "davies_bouldin": 5},
            "elbow",
            "k = 5 was chosen by the elbow method (the knee of the inertia curve, found with "
            "kneedle); silhouette and Davies-Bouldin agree, Calinski-Harabasz would pick 9.",
        ),
        (  # issue 29: no bare "None": the reason the criterion has no pick
            {"elbow": None, "silhouette": 5},
            "silhouette",
            "k = 5 was chosen by the highest silhouette score; elbow picks none (no knee in "
            "k = 2..4).",
        ),
        (  # issue 29: a k chosen by hand says so, beside what the criteria pick
            {"elbow": 4, "silhouette": 5},
            "forced",
            "k = 5 was chosen by hand (selection.k), not by the criteria; silhouette agrees, "
            "elbow would pick 4.",
        ),
    ],
)
def test_method_sentence(picks, method, expected):
    unpicked = {c: "no knee in k = 2..4" for c, v in picks.items() if v is None}
    record = {"k": 5, "method": method, "picks": picks, "unpicked": unpicked}
    assert method_sentence(record) == expected


TRUST = {
    "stability": 0.987,
    "resamples": 20,
    "resampling": "bootstrap",
    "jaccard": {"0": 0.99, "1": 0.52, "2": 0.97},
    "unstable_jaccard": 0.6,
    "unstable": [1],
}


@pytest.mark.parametrize(
    "trust, ending",
    [
        (
            TRUST,
            "; bootstrap refits agree with the segments (mean ARI 0.99 over 20 resamples), but "
            "Bargain hunters (0.52) is unstable (Jaccard below 0.60): act on it with care.",
        ),
        (
            {**TRUST, "unstable": []},
            "; bootstrap refits agree with the segments (mean ARI 0.99 over 20 resamples), and "
            "every segment is stable (lowest Jaccard 0.52).",
        ),
        ({**TRUST, "stability": None}, "."),  # not estimated: nothing said
    ],
)
def test_method_sentence_says_which_criteria_agreed_and_how_stable(trust, ending):
    record = {
        "k": 3,
        "method": "consensus",
        "picks": {"elbow": 3, "silhouette": 3, "gap": 2, "stability": 3},
        "trust": trust,
        "segment_names": {"1": "Bargain hunters"},
    }
    assert method_sentence(record) == (
        "k = 3 was chosen by consensus (the k most criteria pick); elbow, silhouette and "
        "stability agree, gap statistic would pick 2" + ending
    )


def test_segment_metrics_round_shares():
    from custseg.domain.profiling.profiles import profile_segments

    profiles = profile_segments(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), np.array([0, 0, 1]), ["x"])
    trust = {"jaccard": {"0": 0.95, "1": 0.5}, "unstable": [1]}
    assert segment_metrics(profiles, {"trust": trust}) == {
        "min_share": 0.333333,
        "max_share": 0.666667,
        "min_jaccard": 0.5,
        "segments": [
            {"segment": 0, "jaccard": 0.95, "unstable": False},
            {"segment": 1, "jaccard": 0.5, "unstable": True},
        ],
    }


@pytest.mark.parametrize(
    "content, error, message",
    [
        (None, FileNotFoundError, "custseg-select"),
        ("{not json", ValueError, "not valid JSON"),
        ('{"k": 5}', ValueError, "lacks key"),
    ],
)
def test_read_selection_errors(tmp_path, content, error, message):
    path = tmp_path / "selection.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(error, match=message):
        read_selection(path)


def test_persona_texts_come_from_the_settings(project, tmp_path):
    settings = project.settings(tmp_path)
    everyone = PersonaRule("Everyone", {}, "All of them.", "Send the catalogue.")
    settings = dataclasses.replace(
        settings, personas=dataclasses.replace(settings.personas, personas=[everyone])
    )
    # personas are given by select (stored in the model): a model of other rules is refused
    with pytest.raises(StaleInputError, match=r"persona\(s\) \[.*\] are not in the persona"):
        project.report(tmp_path, settings=settings)
    table, info = load_customers(settings.data)
    result = fit_model(table, settings.features, "standard", settings.model, K)
    model, _ = identify(result, table, settings.personas, "standard", info.sha256)
    model_file = tmp_path / "everyone.json"
    write_segment_model(model, model_file)
    selection = project.write_selection(tmp_path / "selection.json")
    outcome = run_report(settings, model_file, selection, project.changes)
    rules = settings.personas
    assert {rules.persona_rule(d.persona).name for d in outcome.descriptions.values()} == {
        "Everyone"
    }
    # five segments under one persona are told apart
    assert len({d.persona for d in outcome.descriptions.values()}) == K
    assert "Send the catalogue." in outcome.paths.markdown.read_text(encoding="utf-8")


def test_console_script_is_registered():
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("custseg-report") == "custseg.pipeline.report:main"


# ----------------------------------------------------------------- headless Chromium

CHROMIUM_FLAGS = [
    *CHROMIUM_BASE_FLAGS,
    # the probe page reads the report's DOM from an iframe (both are file:// URLs)
    "--allow-file-access-from-files",
    # console messages go to stderr as "...:CONSOLE:<line>] "<message>", source: ..."
    "--enable-logging=stderr",
    "--v=0",
    # let the page finish loading and decoding before the DOM is dumped
    "--virtual-time-budget=10000",
]

PROBE_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>probe</title></head><body>
<iframe id="report" src="REPORT_URL" style="width:1200px;height:900px"></iframe>
<script>
window.addEventListener("load", function () {
  var out = document.createElement("pre");
  out.id = "probe";
  try {
    var doc = document.getElementById("report").contentDocument;
    var images = Array.prototype.map.call(doc.images, function (img) {
      return {alt: img.alt, complete: img.complete, width: img.naturalWidth};
    });
    out.textContent = JSON.stringify({title: doc.title, images: images});
  } catch (e) {
    out.textContent = JSON.stringify({error: String(e)});
  }
  document.body.appendChild(out);
});
</script>
</body></html>
"""


def chromium_probe(chromium: str, report: Path, workdir: Path) -> tuple[dict, list[str]]:
    """Load ``report`` in headless Chromium: (probe result, console lines)."""
    probe = workdir / f"probe-{report.stem}.html"
    probe.write_text(PROBE_PAGE.replace("REPORT_URL", report.as_uri()), encoding="utf-8")
    command = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={workdir / 'chromium-profile'}",
        "--dump-dom",
        probe.as_uri(),
    ]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a timeout kills every child
    )
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("headless Chromium did not finish within 90 s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # leftover helpers of this browser only
    match = re.search(r'<pre id="probe">(.*?)</pre>', out, re.S)
    assert match, f"probe result missing (exit {proc.returncode}); stderr tail:\n{err[-2000:]}"
    console = [line for line in err.splitlines() if ":CONSOLE" in line]
    return json.loads(html.unescape(match.group(1))), console


@pytest.mark.slow
def test_report_loads_in_headless_chromium(rendered, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium package)")
    report = rendered.outcome.paths.html
    result, console = chromium_probe(chromium, report, tmp_path)
    assert "error" not in result, result
    assert result["title"].startswith(f"Customer segments: k = {K}")
    assert len(result["images"]) == 4  # scatter, profiles, elbow, stability
    broken = [img for img in result["images"] if not (img["complete"] and img["width"] > 0)]
    assert broken == []
    assert console == []

    # the probe does see failures: a corrupt image and a blocked remote one
    page = report.read_text(encoding="utf-8")
    page = re.sub(r"data:image/png;base64,[^\"]+", "data:image/png;base64,AAAA", page, count=1)
    page = page.replace("</main>", '<img src="https://example.invalid/x.png" alt="remote"></main>')
    broken_report = tmp_path / "broken.html"
    broken_report.write_text(page, encoding="utf-8")
    result, console = chromium_probe(chromium, broken_report, tmp_path)
    widths = [img["width"] for img in result["images"]]
    assert len(widths) == 5 and widths.count(0) == 2
    assert any("Content Security Policy" in line for line in console)
