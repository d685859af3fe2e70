"""The segment report on disk and in MLflow: HTML, Markdown, assignment CSV and metrics.

Rendering is pure string work (jinja2 with autoescaping for HTML); writing is all or
nothing: every file is rendered in memory first, then staged as a temporary file next to
its destination and moved into place with :func:`os.replace` only when all staged
writes succeeded. A failure leaves the previous outputs (or none) and no temporary files.

The HTML is self-contained: figures are embedded as base64 PNG ``data:`` URIs, the CSS is
inline, there are no scripts, fonts or remote resources, and a Content-Security-Policy
forbids loading any (the page opens offline and inside MLflow's artifact viewer). The only
URL in it is the link to the selected run in the MLflow UI.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import jinja2
import mlflow.sklearn
import numpy as np
import pandas as pd
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline

from custseg.core.plots import axis_label, cluster_color
from custseg.core.profiling import SegmentDescription, SegmentProfiles
from custseg.io.data import DataInfo, write_csv_atomic
from custseg.io.outputs import StaleInputError

log = logging.getLogger(__name__)

__all__ = [
    "FORMULA_PREFIXES",
    "REPORT_FILES",
    "ReportInputs",
    "ReportPaths",
    "assignments_table",
    "figure_data_uri",
    "load_model_dir",
    "log_report_artifacts",
    "method_sentence",
    "neutralize_cell",
    "read_curve_file",
    "read_selection",
    "render_html",
    "render_markdown",
    "run_url",
    "segment_metrics",
    "write_report",
]

#: file names inside the report directory
REPORT_FILES = {
    "html": "segments.html",
    "markdown": "segments.md",
    "assignments": "segment_assignments.csv",
}

#: cells starting with one of these are read as formulas by spreadsheet programs
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

#: keys ``models/selection.json`` must have for a report
SELECTION_KEYS = (
    "feature_set",
    "features",
    "k",
    "method",
    "picks",
    "run_id",
    "experiment_id",
    "data_sha256",
)

METHOD_TEXT = {
    "elbow": "the elbow method (the knee of the inertia curve, found with kneedle)",
    "silhouette": "the highest silhouette score",
    "calinski_harabasz": "the highest Calinski-Harabasz score",
    "davies_bouldin": "the lowest Davies-Bouldin index",
}

CRITERION_NAMES = {
    "elbow": "elbow",
    "silhouette": "silhouette",
    "calinski_harabasz": "Calinski-Harabasz",
    "davies_bouldin": "Davies-Bouldin",
}

#: figure key -> (section title, alt text); figures are shown in this order
FIGURES = {
    "scatter": ("Segments in original units", "Scatter of customers coloured by segment"),
    "profiles": (
        "Segment profiles",
        "Per segment: standardised difference of each attribute mean from all customers",
    ),
    "elbow": ("Why k = {k}", "Inertia against k with the k each criterion picks"),
}


# ------------------------------------------------------------------------------ inputs


def read_selection(path: str | Path) -> dict[str, Any]:
    """Read ``models/selection.json`` written by ``custseg-select``.

    Raises
    ------
    FileNotFoundError
        When the file is missing (the select stage has not run).
    ValueError
        When it is not JSON or lacks a required key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run custseg-select first (or dvc repro)")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StaleInputError(f"{path} is not valid JSON: {exc}") from exc
    missing = [key for key in SELECTION_KEYS if key not in record]
    if missing:
        raise StaleInputError(f"{path} lacks key(s) {missing}; rerun custseg-select")
    return record


def load_model_dir(path: str | Path) -> Pipeline:
    """Load the fitted pipeline from an MLflow model directory (``models/segmentation``).

    Raises
    ------
    FileNotFoundError
        When ``path`` has no ``MLmodel`` file.
    """
    path = Path(path)
    if not (path / "MLmodel").is_file():
        raise FileNotFoundError(
            f"{path} is not an MLflow model directory: run custseg-select first (or dvc repro)"
        )
    return mlflow.sklearn.load_model(str(path))


def read_curve_file(path: str | Path) -> pd.DataFrame:
    """Read a sweep curve (``sweeps/<feature set>/curve.csv``), sorted by k.

    Raises
    ------
    FileNotFoundError
        When the sweep has not written it.
    ValueError
        When it lacks the ``k`` or ``inertia`` column.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the sweep first (or dvc repro)")
    curve = pd.read_csv(path)
    missing = [c for c in ("k", "inertia") if c not in curve.columns]
    if missing:
        raise StaleInputError(f"{path} lacks column(s) {missing}; rerun the sweep")
    return curve.sort_values("k").reset_index(drop=True)


# ----------------------------------------------------------------------------- content


@dataclass
class ReportInputs:
    """Everything the report shows, computed by the caller.

    Attributes
    ----------
    selection : mapping
        The record of ``models/selection.json``.
    data : DataInfo
        The table the labels were computed on.
    profiles : SegmentProfiles
        Profiles of the training customers.
    descriptions : mapping of int to SegmentDescription
        Names, personas and recommendations.
    figures : mapping of str to Figure
        Any of ``"scatter"``, ``"profiles"``, ``"elbow"`` (see :data:`FIGURES`).
    mlflow_ui : str
        Base URL of the MLflow UI for the run link (only ``http``/``https``).
    key_columns : sequence of str
        Numeric columns whose segment means go in the tables; default all profiled.
    """

    selection: Mapping[str, Any]
    data: DataInfo
    profiles: SegmentProfiles
    descriptions: Mapping[int, SegmentDescription]
    figures: Mapping[str, Figure] = field(default_factory=dict)
    mlflow_ui: str = "http://127.0.0.1:5000"
    key_columns: Sequence[str] | None = None

    @property
    def columns(self) -> list[str]:
        return list(self.profiles.numeric_columns if self.key_columns is None else self.key_columns)


def run_url(mlflow_ui: str, experiment_id: str, run_id: str) -> str | None:
    """``{mlflow_ui}/#/experiments/<experiment>/runs/<run>``, or None for a non-http base."""
    base = str(mlflow_ui).strip().rstrip("/")
    parsed = urlparse(base)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return None
    return f"{base}/#/experiments/{quote(str(experiment_id))}/runs/{quote(str(run_id))}"


def method_sentence(selection: Mapping[str, Any]) -> str:
    """Why k was chosen, e.g. ``"k = 5 was chosen by the elbow method (...); silhouette
    and Davies-Bouldin agree, Calinski-Harabasz would pick 9."``"""
    k, method = int(selection["k"]), str(selection["method"])
    picks = {c: v for c, v in dict(selection.get("picks") or {}).items() if c != method}
    text = f"k = {k} was chosen by {METHOD_TEXT.get(method, method)}"
    if selection.get("fallback"):
        text += f" ({selection['fallback']})"
    agree = [CRITERION_NAMES.get(c, c) for c, v in picks.items() if v == k]
    differ = [f"{CRITERION_NAMES.get(c, c)} would pick {v}" for c, v in picks.items() if v != k]
    parts = []
    if agree:
        parts.append(f"{_join(agree)} {'agrees' if len(agree) == 1 else 'agree'}")
    if differ:
        parts.append(_join(differ))
    return text + ("; " + ", ".join(parts) if parts else "") + "."


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def figure_data_uri(fig: Figure, dpi: int = 100) -> str:
    """The figure as a ``data:image/png;base64,...`` URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _segment_rows(inputs: ReportInputs) -> list[dict[str, Any]]:
    """Report rows, largest segment first (ties by id)."""
    profiles = inputs.profiles
    means = profiles.wide("mean")
    rows = []
    for seg in profiles.segments:
        d = inputs.descriptions[seg]
        rows.append(
            {
                "segment": seg,
                "name": d.name,
                "persona": d.persona,
                "description": d.description,
                "recommendation": d.recommendation,
                "size": int(profiles.sizes.at[seg, "size"]),
                "share": float(profiles.sizes.at[seg, "share"]),
                "color": to_hex(cluster_color(seg)),
                "means": [_fmt(means.at[seg, c]) for c in inputs.columns],
            }
        )
    return sorted(rows, key=lambda r: (-r["size"], r["segment"]))


def _fmt(value: float) -> str:
    value = float(value)
    if not np.isfinite(value):
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.1f}"


def _metadata(inputs: ReportInputs) -> list[tuple[str, str]]:
    sel = inputs.selection
    rows = [
        ("Data file", inputs.data.path),
        ("Data SHA-256", inputs.data.sha256),
        ("Customers", f"{inputs.data.n_rows:,}"),
        ("Git commit", str(sel.get("git_commit") or "unknown")),
        ("MLflow experiment", str(sel["experiment_id"])),
        ("MLflow run", str(sel["run_id"])),
    ]
    if sel.get("model_name"):
        version = sel.get("model_version")
        rows.append(("Registered model", f"{sel['model_name']} v{version or '?'}"))
    if sel.get("tracking_uri"):
        rows.append(("Tracking URI", str(sel["tracking_uri"])))
    return rows


def _data_warning(inputs: ReportInputs) -> str | None:
    expected = inputs.selection.get("data_sha256")
    if expected and expected != inputs.data.sha256:
        return (
            f"The data file changed since the model was selected (selection: "
            f"{str(expected)[:12]}..., now: {inputs.data.sha256[:12]}...); rerun the pipeline."
        )
    return None


_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)

_HTML = _ENV.from_string(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>Customer segments: k = {{ k }} ({{ feature_set }})</title>
<style>
  :root { color-scheme: light; }
  body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
         margin: 0; background: #f6f7f9; color: #1d232b; line-height: 1.45; }
  main { max-width: 1160px; margin: 0 auto; padding: 28px 24px 48px; }
  h1 { margin: 0 0 4px; font-size: 1.75rem; }
  h2 { margin: 0 0 12px; font-size: 1.2rem; }
  .lead { margin: 0 0 20px; color: #4a5563; }
  section { background: #fff; border: 1px solid #e2e5ea; border-radius: 8px; padding: 18px 20px; margin: 0 0 20px; }
  .warning { background: #fff6e5; border-color: #f0c36d; }
  table { border-collapse: collapse; width: 100%; font-size: 0.92rem; }
  th, td { border-bottom: 1px solid #e7e9ee; padding: 7px 8px; text-align: left; vertical-align: top; }
  th { background: #f1f3f6; font-weight: 600; }
  td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
  th.num { text-align: right; }
  .table-wrap { overflow-x: auto; }
  .col-name { min-width: 11em; }
  .col-persona { min-width: 10em; }
  .col-rec { min-width: 14em; }
  .unit { font-weight: 400; white-space: nowrap; }
  .swatch { display: inline-block; width: 0.8em; height: 0.8em; border-radius: 2px; margin-right: 6px; vertical-align: baseline; }
  .name { font-weight: 600; }
  .muted { color: #5b6573; font-size: 0.85rem; }
  figure { margin: 0; }
  img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
  figcaption { color: #5b6573; font-size: 0.85rem; margin-top: 6px; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; font-size: 0.92rem; }
  dt { font-weight: 600; }
  dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-all; }
  a { color: #1f5fbf; }
</style>
</head>
<body>
<main>
<h1>Customer segments</h1>
<p class="lead">{{ "{:,}".format(n_customers) }} customers in {{ k }} segments, clustered on
{{ feature_labels }} (feature set <code>{{ feature_set }}</code>).</p>
{% if data_warning %}<section class="warning"><strong>Warning:</strong> {{ data_warning }}</section>{% endif %}
<section id="segments">
<h2>Segments</h2>
<div class="table-wrap"><table>
<thead><tr><th class="col-name">Segment</th><th class="col-persona">Persona</th><th class="num">Customers</th><th class="num">Share</th>
{% for label, unit in column_labels %}<th class="num">{{ label }}{% if unit %}<br><span class="unit">{{ unit }}</span>{% endif %}<br><span class="muted">mean</span></th>{% endfor %}
<th class="col-rec">Recommendation</th></tr></thead>
<tbody>
{% for row in rows %}<tr>
<td><span class="swatch" style="background: {{ row.color }}"></span><span class="name">{{ row.name }}</span><br><span class="muted">segment {{ row.segment }}</span></td>
<td><strong>{{ row.persona }}</strong><br><span class="muted">{{ row.description }}</span></td>
<td class="num">{{ "{:,}".format(row.size) }}</td>
<td class="num">{{ "{:.1%}".format(row.share) }}</td>
{% for value in row.means %}<td class="num">{{ value }}</td>{% endfor %}
<td>{{ row.recommendation }}</td>
</tr>
{% endfor %}</tbody>
<tfoot><tr><td colspan="2"><span class="muted">All customers</span></td><td class="num">{{ "{:,}".format(n_customers) }}</td><td class="num">100%</td>
{% for value in overall_means %}<td class="num">{{ value }}</td>{% endfor %}<td></td></tr></tfoot>
</table></div>
</section>
{% for fig in figures %}<section id="{{ fig.key }}">
<h2>{{ fig.title }}</h2>
{% if fig.key == "elbow" %}<p>{{ method_text }}</p>{% endif %}
<figure><img src="{{ fig.uri }}" alt="{{ fig.alt }}"><figcaption>{{ fig.caption }}</figcaption></figure>
</section>
{% endfor %}<section id="run">
<h2>Run</h2>
<dl>
{% for key, value in metadata %}<dt>{{ key }}</dt><dd>{{ value }}</dd>
{% endfor %}{% if link %}<dt>MLflow UI</dt><dd><a href="{{ link }}">{{ link }}</a></dd>
{% endif %}</dl>
</section>
</main>
</body>
</html>
"""
)

_CAPTIONS = {
    "scatter": "Each point is a customer; crosses are segment centres. Legend: segment names "
    "and sizes.",
    "profiles": "Bars: how far a segment's mean is from the average customer, in standard "
    "deviations (the shaded band is the 'mid' level used in names); numbers: the segment "
    "means in original units.",
    "elbow": "Inertia (within-cluster sum of squares) for every k of the sweep; the strip "
    "above shows the k each criterion picks, the red line the chosen k.",
}


def _split_unit(label: str) -> tuple[str, str]:
    """``"Annual income (k$)"`` -> ``("Annual income", "(k$)")`` for two-line headers."""
    head, sep, unit = label.partition(" (")
    return (head, f"({unit}") if sep and label.endswith(")") else (label, "")


def render_html(inputs: ReportInputs, dpi: int = 100) -> str:
    """The self-contained HTML report (see the module docstring)."""
    sel = inputs.selection
    figures = []
    for key, (title, alt) in FIGURES.items():
        if key in inputs.figures:
            figures.append(
                {
                    "key": key,
                    "title": title.format(k=int(sel["k"])),
                    "alt": alt,
                    "caption": _CAPTIONS[key],
                    "uri": figure_data_uri(inputs.figures[key], dpi=dpi),
                }
            )
    overall = inputs.profiles.overall
    return _HTML.render(
        k=int(sel["k"]),
        feature_set=str(sel["feature_set"]),
        feature_labels=_join([axis_label(str(c)) for c in sel["features"]]),
        n_customers=inputs.profiles.n_customers,
        data_warning=_data_warning(inputs),
        column_labels=[_split_unit(axis_label(c)) for c in inputs.columns],
        rows=_segment_rows(inputs),
        overall_means=[_fmt(overall.at[c, "mean"]) for c in inputs.columns],
        figures=figures,
        method_text=method_sentence(sel),
        metadata=_metadata(inputs),
        link=run_url(inputs.mlflow_ui, sel["experiment_id"], sel["run_id"]),
    )


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\|*_`[]<>"} | {"\n": " ", "\r": " ", "\t": " "})


def _md(text: Any) -> str:
    """Text safe inside a Markdown table cell (pipes, emphasis, links, HTML escaped)."""
    return str(text).translate(_MD_SPECIAL)


def _code(text: Any) -> str:
    """An inline code span (backticks inside become quotes; no escapes apply in code)."""
    return "`" + " ".join(str(text).replace("`", "'").split()) + "`"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def render_markdown(inputs: ReportInputs) -> str:
    """A Markdown summary for pull requests: k, method, the segment table, provenance."""
    sel = inputs.selection
    k = int(sel["k"])
    columns = inputs.columns
    head = ["Segment", "Persona", "Customers", "Share"]
    head += [_md(f"Mean {_lower_first(axis_label(c))}") for c in columns]
    head += ["Recommendation"]
    align = ["---", "---", "---:", "---:"] + ["---:"] * len(columns) + ["---"]
    lines = [
        f"## Customer segments: k = {k} ({_code(sel['feature_set'])})",
        "",
        f"{inputs.profiles.n_customers:,} customers, clustered on "
        f"{_join([_md(axis_label(str(c))) for c in sel['features']])}. "
        f"{_md(method_sentence(sel))}",
        "",
    ]
    if warning := _data_warning(inputs):
        lines += [f"> **Warning:** {_md(warning)}", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for row in _segment_rows(inputs):
        cells = [
            f"**{_md(row['name'])}** (segment {row['segment']})",
            _md(row["persona"]),
            f"{row['size']:,}",
            f"{row['share']:.1%}",
            *row["means"],
            _md(row["recommendation"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    commit = sel.get("git_commit") or "unknown"
    run = _code(sel["run_id"])
    if link := run_url(inputs.mlflow_ui, sel["experiment_id"], sel["run_id"]):
        run = f"[{run}]({link})"
    lines += [
        "",
        f"Data {_code(inputs.data.path)} (sha256 {_code(inputs.data.sha256[:12])}), "
        f"commit {_code(commit)}, MLflow run {run}.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------- tables and JSON


def _csv_text(value: Any) -> str:
    """A formula-safe text cell whose line breaks are all ``\\n``.

    :func:`~custseg.io.data.write_csv_atomic` ends lines with ``\\n``, and Python's CSV
    writer then quotes fields containing ``\\n`` but not a lone ``\\r``, which would split
    the row when read back; so carriage returns become ``\\n`` (after neutralising).
    """
    return neutralize_cell(value).replace("\r\n", "\n").replace("\r", "\n")


def neutralize_cell(value: Any) -> str:
    """The cell as text, with a leading ``'`` if a spreadsheet could read it as a formula.

    Values starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
    (:data:`FORMULA_PREFIXES`) are prefixed with a single quote; others are unchanged.
    """
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def assignments_table(
    ids: Sequence[Any] | None,
    labels: np.ndarray,
    names: Mapping[int, str],
    id_column: str = "customer_id",
) -> pd.DataFrame:
    """One row per customer: id, segment id and segment name, formula-safe.

    Parameters
    ----------
    ids : sequence, optional
        Customer ids in row order; ``None`` numbers the rows ``1..n`` (column ``row``).
    labels : array-like of int
        Segment of each customer.
    names : mapping of int to str
        Segment names.
    id_column : str, default "customer_id"
        Header of the id column.

    Returns
    -------
    DataFrame
        Columns ``<id_column>`` (text), ``segment`` (int), ``segment_name`` (text), in the
        input order; ids and names pass through :func:`neutralize_cell`, and carriage
        returns inside them become ``\\n`` so the CSV reads back row for row.
    """
    labels = np.asarray(labels).astype(np.int64)
    if ids is None:
        id_column, id_values = "row", [str(i) for i in range(1, len(labels) + 1)]
    else:
        id_values = [_csv_text(v) for v in ids]
        if len(id_values) != len(labels):
            raise ValueError(f"{len(id_values)} ids but {len(labels)} labels")
    safe_names = {int(s): _csv_text(n) for s, n in names.items()}
    unknown = sorted(set(labels.tolist()) - set(safe_names))
    if unknown:
        raise ValueError(f"no name for segment(s) {unknown}")
    return pd.DataFrame(
        {
            id_column: pd.Series(id_values, dtype=object),
            "segment": labels,
            "segment_name": pd.Series([safe_names[s] for s in labels.tolist()], dtype=object),
        }
    )


def segment_metrics(profiles: SegmentProfiles) -> dict[str, Any]:
    """Numeric per-segment sizes and shares for ``dvc metrics`` (stable, rounded)."""
    segments = {}
    for seg in profiles.segments:
        segments[str(seg)] = {
            "size": int(profiles.sizes.at[seg, "size"]),
            "share": round(float(profiles.sizes.at[seg, "share"]), 6),
        }
    return {"k": len(segments), "n_customers": profiles.n_customers, "segments": segments}


# ---------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class ReportPaths:
    """Where the report files were written."""

    html: Path
    markdown: Path
    assignments: Path
    metrics: Path

    @property
    def artifacts(self) -> list[Path]:
        """The files logged to MLflow."""
        return [self.html, self.markdown, self.assignments]


def _stage(text: str, dest: Path) -> Path:
    """Write ``text`` to a temporary file next to ``dest``; return the temporary path."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_report(
    output_dir: str | Path,
    metrics_file: str | Path,
    html: str,
    markdown: str,
    assignments: pd.DataFrame,
    metrics: Mapping[str, Any],
) -> ReportPaths:
    """Write the report files, all or nothing.

    HTML, Markdown and metrics JSON are staged as temporary files next to their
    destinations; the assignment CSV is then written with
    :func:`custseg.io.data.write_csv_atomic`; only when all of that succeeded are the
    staged files moved into place. On any failure every staged file is removed and no
    destination changes (except, in the unlikely case that a same-directory rename fails
    after the CSV was written, the CSV).

    Parameters
    ----------
    output_dir : path
        Directory for ``segments.html``, ``segments.md`` and ``segment_assignments.csv``.
    metrics_file : path
        JSON file for the per-segment metrics.
    html, markdown : str
        Rendered documents.
    assignments : DataFrame
        From :func:`assignments_table`.
    metrics : mapping
        From :func:`segment_metrics` (written indented with sorted keys).

    Returns
    -------
    ReportPaths
    """
    out = Path(output_dir)
    paths = ReportPaths(
        html=out / REPORT_FILES["html"],
        markdown=out / REPORT_FILES["markdown"],
        assignments=out / REPORT_FILES["assignments"],
        metrics=Path(metrics_file),
    )
    texts = [
        (paths.html, html),
        (paths.markdown, markdown),
        (paths.metrics, json.dumps(metrics, indent=2, sort_keys=True) + "\n"),
    ]
    staged: list[tuple[Path, Path]] = []
    try:
        for dest, text in texts:
            staged.append((_stage(text, dest), dest))
        write_csv_atomic(assignments, paths.assignments)
        for tmp, dest in staged:
            os.replace(tmp, dest)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return paths


# ----------------------------------------------------------------------------- MLflow


def _missing_sqlite_store(tracking_uri: str) -> Path | None:
    """The sqlite file of a ``sqlite:///`` URI when it does not exist (else None)."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    path = Path(tracking_uri[len(prefix) :])
    return None if path.exists() else path


def log_report_artifacts(tracking_uri: str, run_id: str, paths: Sequence[str | Path]) -> bool:
    """Log the report files as artifacts under ``report/`` of the run ``run_id``.

    Uses :meth:`MlflowClient.log_artifact`, so the run's status and end time are not
    touched. When the store or the run does not exist (e.g. a fresh clone with another
    ``mlflow.db``), logs a warning and returns False; nothing is created.

    Returns
    -------
    bool
        True when the artifacts were logged.
    """
    missing = _missing_sqlite_store(tracking_uri)
    if missing is not None:
        log.warning(
            "MLflow store %s does not exist: the report was written but not logged to run %s "
            "(rerun custseg-select to create the run)",
            missing,
            run_id,
        )
        return False
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        client.get_run(run_id)
    except MlflowException as exc:
        log.warning(
            "MLflow run %s not found in %s (%s): the report was written but not logged; "
            "rerun custseg-select to create the run",
            run_id,
            tracking_uri,
            exc.error_code,
        )
        return False
    for path in paths:
        client.log_artifact(run_id, str(path), "report")
    return True
