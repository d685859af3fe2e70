"""The segment report: rendering, files, MLflow artifacts and headless Chromium.

Inputs are real and small: a generated customer table, a pipeline fitted on it and saved
with ``mlflow.sklearn.save_model``, a sweep curve, a selection record and a sqlite MLflow
store in a temporary directory.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
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

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from custseg.core.clustering import fit_kmeans
from custseg.core.features import build_pipeline
from custseg.core.profiling import PersonaRule
from custseg.io.data import (
    DataInfo,
    file_sha256,
    generate_customers,
    load_customers,
    write_csv_atomic,
)
from custseg.io.outputs import write_curve
from custseg.io.report import (
    ReportInputs,
    assignments_table,
    log_report_artifacts,
    method_sentence,
    neutralize_cell,
    read_selection,
    render_html,
    render_markdown,
    run_url,
    segment_metrics,
    write_report,
)
from custseg.io.tracking import MODEL_REQUIREMENTS
from custseg.stages.report import ReportOutcome, run_report

from conftest import compose_settings

FORMULA_IDS = ["=1+1", "+x", "-2", "@a"]  # survive loading (ids are stripped)
N_CUSTOMERS = 120
K = 5


@dataclass
class Project:
    """A project-like directory with the outputs of the earlier stages."""

    root: Path
    csv: Path
    model_dir: Path
    sweeps: Path
    feature_set: str
    features: list[str]

    def selection(self, run_id: str = "0" * 32, experiment_id: str = "0", **extra) -> dict:
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
            "run_id": run_id,
            "experiment_id": experiment_id,
            "tracking_uri": "sqlite:///mlflow.db",
            "model_name": "customer-segmentation",
            "model_version": "1",
            "data_sha256": file_sha256(self.csv),
            "n_rows": N_CUSTOMERS,
            "git_commit": "0123abc",
        } | extra

    def write_selection(self, path: Path, **kwargs) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.selection(**kwargs)), encoding="utf-8")
        return path

    def settings(self, out: Path, tracking_uri: str | None = None, overrides=()):
        uri = tracking_uri or f"sqlite:///{out / 'mlflow.db'}"
        return compose_settings(
            [
                f"features={self.feature_set}",
                f"data.path={self.csv}",
                f"sweep.output_dir={self.sweeps}",
                f"report.output_dir={out / 'reports'}",
                f"report.metrics_file={out / 'metrics' / 'segments.json'}",
                f"tracking.tracking_uri={uri}",
                *overrides,
            ]
        )


def build_project(root: Path, feature_set: str = "income_spending") -> Project:
    raw = generate_customers(N_CUSTOMERS, seed=11)
    raw["CustomerID"] = raw["CustomerID"].astype(str).astype(object)
    raw.loc[: len(FORMULA_IDS) - 1, "CustomerID"] = FORMULA_IDS
    csv_path = root / "data" / "customers.csv"
    write_csv_atomic(raw, csv_path)
    settings = compose_settings([f"features={feature_set}", f"data.path={csv_path}"])
    table, _ = load_customers(settings.data)
    fs = settings.features
    rows = [
        {
            "feature_set": fs.name,
            "k": k,
            **fit_kmeans(table, fs, "standard", settings.model, k).metrics,
        }
        for k in range(2, 8)
    ]
    sweeps = root / "sweeps"
    write_curve(pd.DataFrame(rows), sweeps, fs.name)
    model_dir = root / "models" / "segmentation"
    pipeline = build_pipeline(fs, "standard", settings.model, K).fit(table)
    # explicit requirements: inferring them costs MLflow seconds per model
    mlflow.sklearn.save_model(pipeline, str(model_dir), pip_requirements=list(MODEL_REQUIREMENTS))
    return Project(root, csv_path, model_dir, sweeps, fs.name, fs.columns)


def make_run(store: Path) -> tuple[str, str, str]:
    """A finished run in a fresh sqlite store: (tracking URI, experiment id, run id)."""
    uri = f"sqlite:///{store / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(
        "segments", artifact_location=(store / "mlruns").as_uri()
    )
    run = client.create_run(experiment_id)
    client.set_terminated(run.info.run_id, "FINISHED")
    return uri, experiment_id, run.info.run_id


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    return build_project(tmp_path_factory.mktemp("project"))


@dataclass
class Rendered:
    project: Project
    out: Path
    outcome: ReportOutcome
    tracking_uri: str
    experiment_id: str
    run_id: str
    end_time_before: int

    def text(self, name: str) -> str:
        return (self.out / "reports" / name).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def rendered(project, tmp_path_factory) -> Rendered:
    """One full run_report against a real sqlite store with a real (finished) run."""
    out = tmp_path_factory.mktemp("out")
    uri, experiment_id, run_id = make_run(out)
    end_time = MlflowClient(tracking_uri=uri).get_run(run_id).info.end_time
    selection = project.write_selection(
        out / "selection.json", run_id=run_id, experiment_id=experiment_id
    )
    outcome = run_report(project.settings(out, uri), project.model_dir, selection)
    return Rendered(project, out, outcome, uri, experiment_id, run_id, end_time)


def data_info(project: Project) -> DataInfo:
    return DataInfo(str(project.csv), file_sha256(project.csv), N_CUSTOMERS, 5)


# ---------------------------------------------------------------------- the whole flow


def test_report_writes_every_file_and_logs_them_to_the_run(rendered):
    paths = rendered.outcome.paths
    for path in [paths.html, paths.markdown, paths.assignments, paths.metrics]:
        assert path.is_file() and path.stat().st_size > 0
    assert rendered.outcome.logged
    client = MlflowClient(tracking_uri=rendered.tracking_uri)
    logged = {a.path for a in client.list_artifacts(rendered.run_id, "report")}
    assert logged == {
        "report/segments.html",
        "report/segments.md",
        "report/segment_assignments.csv",
    }
    run = client.get_run(rendered.run_id)
    assert run.info.status == "FINISHED"  # log_artifact leaves the run as it was
    assert run.info.end_time == rendered.end_time_before


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
    assert len(sources) == 3  # scatter, profiles, elbow
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert f"k = {K} was chosen by the elbow method" in page


def test_html_references_no_remote_resource_except_the_mlflow_link(rendered):
    page = rendered.text("segments.html")
    link = f"http://127.0.0.1:5000/#/experiments/{rendered.experiment_id}/runs/{rendered.run_id}"
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls == {link}
    assert f'<a href="{link}">' in page
    for forbidden in ("<script", "<link", "<iframe", "@import", "url(", 'src="http', "//fonts"):
        assert forbidden not in page.lower()
    assert "Content-Security-Policy" in page


def test_html_shows_run_metadata(rendered):
    page = rendered.text("segments.html")
    for value in [file_sha256(rendered.project.csv), "0123abc", rendered.run_id]:
        assert value in page


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
    assert f"/#/experiments/{rendered.experiment_id}/runs/{rendered.run_id}" in text


def read_csv_cells(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_assignment_csv_keeps_every_customer_with_safe_ids(rendered):
    cells = read_csv_cells(rendered.outcome.paths.assignments)
    assert cells[0] == ["customer_id", "segment", "segment_name"]
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


def test_metrics_are_numeric_sizes_and_shares(rendered):
    metrics = json.loads(rendered.outcome.paths.metrics.read_text(encoding="utf-8"))
    assert metrics["k"] == K and metrics["n_customers"] == N_CUSTOMERS
    segments = metrics["segments"]
    assert sum(s["size"] for s in segments.values()) == N_CUSTOMERS
    assert sum(s["share"] for s in segments.values()) == pytest.approx(1.0, abs=1e-5)
    counts = np.bincount(rendered.outcome.labels, minlength=K)
    assert {int(i): s["size"] for i, s in segments.items()} == dict(enumerate(counts.tolist()))


@pytest.mark.parametrize("feature_set", ["age_spending", "all"])
def test_report_works_for_other_feature_sets(tmp_path, feature_set):
    project = build_project(tmp_path / "p", feature_set)
    selection = project.write_selection(tmp_path / "selection.json")
    outcome = run_report(project.settings(tmp_path), project.model_dir, selection)
    page = outcome.paths.html.read_text(encoding="utf-8")
    assert len({d.name for d in outcome.descriptions.values()}) == K
    assert all(html.escape(d.name) in page for d in outcome.descriptions.values())
    assert page.count('<img src="data:image/png;base64,') == 3


# -------------------------------------------------------------------------- MLflow


def test_missing_run_warns_and_still_writes(project, tmp_path, caplog):
    uri, experiment_id, _ = make_run(tmp_path)
    selection = project.write_selection(
        tmp_path / "selection.json", run_id="f" * 32, experiment_id=experiment_id
    )
    with caplog.at_level("WARNING", logger="custseg.io.report"):
        outcome = run_report(project.settings(tmp_path, uri), project.model_dir, selection)
    assert not outcome.logged
    assert outcome.paths.html.is_file() and outcome.paths.assignments.is_file()
    assert any("f" * 32 in r.getMessage() and "not found" in r.getMessage() for r in caplog.records)


def test_missing_store_warns_and_creates_nothing(tmp_path, caplog):
    store = tmp_path / "absent" / "mlflow.db"
    report = tmp_path / "segments.md"
    report.write_text("x", encoding="utf-8")
    with caplog.at_level("WARNING", logger="custseg.io.report"):
        assert not log_report_artifacts(f"sqlite:///{store}", "a" * 32, [report])
    assert not store.exists()
    assert any("does not exist" in r.getMessage() for r in caplog.records)


# -------------------------------------------------------------------------- all or nothing


def test_failed_write_leaves_no_file_and_no_temporary(project, tmp_path):
    blocker = tmp_path / "metrics"
    blocker.write_text("a regular file where a directory is needed", encoding="utf-8")
    selection = project.write_selection(tmp_path / "models" / "selection.json")
    settings = project.settings(tmp_path)  # metrics file goes below tmp_path/metrics/
    with pytest.raises(OSError):
        run_report(settings, project.model_dir, selection)
    reports = tmp_path / "reports"
    assert not reports.exists() or list(reports.iterdir()) == []
    assert blocker.read_text(encoding="utf-8").startswith("a regular file")


def test_failed_rewrite_keeps_the_previous_report_intact(tmp_path):
    out, metrics = tmp_path / "reports", tmp_path / "metrics" / "segments.json"
    frame = pd.DataFrame({"customer_id": ["1"], "segment": [0], "segment_name": ["A"]})
    write_report(out, metrics, "<p>old</p>", "old", frame, {"k": 1})
    before = {p: p.read_bytes() for p in [*out.iterdir(), metrics]}
    # the assignment CSV cannot be written (its path is a directory): nothing may change
    (out / "segment_assignments.csv").unlink()
    (out / "segment_assignments.csv").mkdir()
    del before[out / "segment_assignments.csv"]
    with pytest.raises(OSError):
        write_report(out, metrics, "<p>new</p>", "new", frame, {"k": 2})
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
        run_report(project.settings(tmp_path), project.model_dir, selection)
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
    assert len(re.findall(r"(?<!\\)\|", row)) == len(re.findall(r"(?<!\\)\|", text.splitlines()[4]))


def test_changed_data_is_flagged(rendered):
    inputs = hostile_inputs(rendered)
    inputs.selection = {**inputs.selection, "data_sha256": "1" * 64}
    assert "The data file changed since the model was selected" in render_html(inputs)
    assert "> **Warning:**" in render_markdown(inputs)


@pytest.mark.parametrize(
    "base, expected",
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000/#/experiments/3/runs/abc"),
        ("https://mlflow.example.com/", "https://mlflow.example.com/#/experiments/3/runs/abc"),
        ("javascript:alert(1)", None),
        ("", None),
    ],
)
def test_run_url(base, expected):
    assert run_url(base, "3", "abc") == expected


@pytest.mark.parametrize(
    "picks, method, expected",
    [
        (
            {"elbow": 5, "silhouette": 5, "calinski_harabasz": 9, "davies_bouldin": 5},
            "elbow",
            "k = 5 was chosen by the elbow method (the knee of the inertia curve, found with "
            "kneedle); silhouette and Davies-Bouldin agree, Calinski-Harabasz would pick 9.",
        ),
        (
            {"elbow": None, "silhouette": 5},
            "silhouette",
            "k = 5 was chosen by the highest silhouette score; elbow would pick None.",
        ),
    ],
)
def test_method_sentence(picks, method, expected):
    assert method_sentence({"k": 5, "method": method, "picks": picks}) == expected


def test_segment_metrics_round_shares():
    from custseg.core.profiling import profile_segments

    profiles = profile_segments(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), np.array([0, 0, 1]), ["x"])
    assert segment_metrics(profiles) == {
        "k": 2,
        "n_customers": 3,
        "segments": {"0": {"size": 2, "share": 0.666667}, "1": {"size": 1, "share": 0.333333}},
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
    selection = project.write_selection(tmp_path / "selection.json")
    outcome = run_report(settings, project.model_dir, selection)
    assert {d.persona for d in outcome.descriptions.values()} == {"Everyone"}
    assert "Send the catalogue." in outcome.paths.markdown.read_text(encoding="utf-8")


def test_console_script_is_registered():
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("custseg-report") == "custseg.stages.report:main"


# ----------------------------------------------------------------- headless Chromium

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
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
    assert len(result["images"]) == 3
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
    assert len(widths) == 4 and widths.count(0) == 2
    assert any("Content Security Policy" in line for line in console)
