"""The segment report on disk and in MLflow: HTML, Markdown, assignment CSV and metrics.

Rendering is pure string work (jinja2 with autoescaping for HTML); writing is all or
nothing: every file is rendered in memory first, then staged as a temporary file next to
its destination and moved into place with :func:`os.replace` only when all staged
writes succeeded. A failure leaves the previous outputs (or none) and no temporary files.

The HTML is self-contained: figures are embedded as base64 PNG ``data:`` URIs, the CSS is
inline, there are no scripts, fonts or remote resources, and a Content-Security-Policy
forbids loading any (the page opens offline and inside MLflow's artifact viewer).

Everything in the report comes from versioned inputs (data, params, code, the segment
catalog), so the same inputs give the same bytes: registry facts that change outside git
(version numbers, run links, who holds ``@champion`` right now) are in the untracked
status file that ``custseg-publish`` writes, not here.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from custseg.domain.identity import moving
from custseg.domain.profiling.naming import SegmentDescription
from custseg.domain.profiling.profiles import SegmentProfiles
from custseg.domain.selection import CRITERION_LABELS, METHOD_TEXT, ordered_picks
from custseg.reporting.figures import axis_label, cluster_color
from custseg.reporting.jinja import TEMPLATES
from custseg.storage.assignments import csv_text
from custseg.storage.data import DataInfo, write_csv_atomic
from custseg.storage.outputs import StaleInputError, read_json
from custseg.storage.paths import REPORT_FILES, STATUS_FILE

log = logging.getLogger(__name__)

__all__ = [
    "ReportInputs",
    "ReportPaths",
    "figure_data_uri",
    "changes_summary",
    "method_sentence",
    "read_curve_file",
    "read_selection",
    "render_html",
    "render_markdown",
    "segment_metrics",
    "segment_sizes",
    "write_report",
]

#: keys ``models/selection.json`` must have for a report
SELECTION_KEYS = (
    "feature_set",
    "features",
    "k",
    "method",
    "picks",
    "data_sha256",
    "fingerprint",
)


#: ``model.name`` -> how the report names the algorithm
MODEL_NAMES = {"kmeans": "k-means", "kprototypes": "k-prototypes (means and modes)"}

#: figure key -> (section title, alt text); figures are shown in this order
FIGURES = {
    "scatter": ("Segments in original units", "Scatter of customers coloured by segment"),
    "profiles": (
        "Segment profiles",
        "Per segment: standardised difference of each attribute mean from all customers",
    ),
    "elbow": ("Why k = {k}", "Inertia against k with the k each criterion picks"),
    "stability": (
        "How stable the segments are",
        "Stability of refits on resampled customers and the gap statistic against k",
    ),
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
    record = read_json(path)
    missing = [key for key in SELECTION_KEYS if key not in record]
    if missing:
        raise StaleInputError(f"{path} lacks key(s) {missing}; rerun custseg-select")
    return record


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
    changes : mapping
        What changed since the catalog's champion
        (:func:`custseg.domain.identity.compare_models`, ``models/changes.json``).
    champion_names : mapping of int to str
        Segment names of the catalog's champion (for the transition table).
    catalog : str
        Path of the segment catalog, as shown to the reader.
    key_columns : sequence of str
        Numeric columns whose segment means go in the tables; default all profiled.
    statistic : {"mean", "median"}
        The statistic the segment table shows: the one names are read from
        (:func:`custseg.domain.profiling.naming.level_statistic`).
    """

    selection: Mapping[str, Any]
    data: DataInfo
    profiles: SegmentProfiles
    descriptions: Mapping[int, SegmentDescription]
    figures: Mapping[str, Figure] = field(default_factory=dict)
    changes: Mapping[str, Any] = field(default_factory=lambda: {"reference": "none"})
    champion_names: Mapping[int, str] = field(default_factory=dict)
    catalog: str = "catalog/champion.json"
    key_columns: Sequence[str] | None = None
    statistic: str = "mean"

    @property
    def columns(self) -> list[str]:
        return list(self.profiles.numeric_columns if self.key_columns is None else self.key_columns)


def method_sentence(selection: Mapping[str, Any]) -> str:
    """Why k was chosen, e.g. ``"k = 5 was chosen by the elbow method (...); silhouette
    and Davies-Bouldin agree, Calinski-Harabasz would pick 9."``"""
    k, method = int(selection["k"]), str(selection["method"])
    recorded = ordered_picks(dict(selection.get("picks") or {}))
    picks = {c: v for c, v in recorded.items() if c != method}
    text = f"k = {k} was chosen by {METHOD_TEXT.get(method, method)}"
    if selection.get("fallback"):
        text += f" ({selection['fallback']})"
    agree = [CRITERION_LABELS.get(c, c) for c, v in picks.items() if v == k]
    why_not = dict(selection.get("unpicked") or {})
    differ = [
        f"{CRITERION_LABELS.get(c, c)} would pick {v}"
        if v is not None
        else f"{CRITERION_LABELS.get(c, c)} picks none ({why_not.get(c, 'no pick')})"
        for c, v in picks.items()
        if v != k
    ]
    parts = []
    if agree:
        parts.append(f"{_join(agree)} {'agrees' if len(agree) == 1 else 'agree'}")
    if differ:
        parts.append(_join(differ))
    text += "; " + ", ".join(parts) if parts else ""
    stable = stability_clause(selection.get("trust") or {}, selection.get("segment_names") or {})
    return text + (f"; {stable}" if stable else "") + "."


def stability_clause(trust: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """How stable the chosen segments are, e.g. ``"bootstrap refits reproduce the
    segments (mean ARI 0.99 over 20 resamples), and every segment is stable (lowest
    Jaccard 0.97)"``;
    empty when stability was not estimated."""
    if trust.get("stability") is None:
        return ""
    jaccard = {s: j for s, j in dict(trust.get("jaccard") or {}).items() if j is not None}
    head = (
        f"{trust.get('resampling', 'bootstrap')} refits agree with the segments "
        f"(mean ARI {float(trust['stability']):.2f} over {trust.get('resamples', '?')} resamples)"
    )
    unstable = [str(s) for s in trust.get("unstable") or []]
    if unstable:
        listed = _join([f"{names.get(s, 'segment ' + s)} ({jaccard[s]:.2f})" for s in unstable])
        return (
            f"{head}, but {listed} {'is' if len(unstable) == 1 else 'are'} unstable "
            f"(Jaccard below {float(trust['unstable_jaccard']):.2f}): act on "
            f"{'it' if len(unstable) == 1 else 'them'} with care"
        )
    if jaccard:
        return f"{head}, and every segment is stable (lowest Jaccard {min(jaccard.values()):.2f})"
    return head


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
    means = profiles.wide(inputs.statistic)
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
                **_segment_trust(inputs.selection, seg),
            }
        )
    return sorted(rows, key=lambda r: (-r["size"], r["segment"]))


def _segment_trust(selection: Mapping[str, Any], segment: int) -> dict[str, Any]:
    """A segment's Jaccard stability as shown (``"0.97"``, or ``"n/a"``) and whether it is
    flagged unstable."""
    jaccard, unstable = segment_stability(selection)
    value = jaccard.get(int(segment))
    return {
        "jaccard": "n/a" if value is None else f"{float(value):.2f}",
        "unstable": int(segment) in unstable,
    }


def segment_stability(selection: Mapping[str, Any]) -> tuple[dict[int, float | None], set[int]]:
    """Each segment's Jaccard (None if unknown) and the unstable segments, from a selection
    record (empty for a record written before stability existed)."""
    trust = selection.get("trust") or {}
    jaccard = {int(s): j for s, j in dict(trust.get("jaccard") or {}).items()}
    return jaccard, {int(s) for s in trust.get("unstable") or []}


def _fmt(value: float) -> str:
    value = float(value)
    if not np.isfinite(value):
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.1f}"


def _metadata(inputs: ReportInputs) -> list[tuple[str, str]]:
    champion = inputs.changes.get("reference_fingerprint")
    return [
        ("Data file", inputs.data.path),
        ("Data SHA-256", inputs.data.sha256),
        ("Customers", f"{inputs.data.n_rows:,}"),
        (
            "Algorithm",
            MODEL_NAMES.get(model := str(inputs.selection.get("model", "kmeans")), model),
        ),
        ("Model fingerprint", str(inputs.selection["fingerprint"])),
        ("Segment catalog", inputs.catalog),
        ("Champion fingerprint", str(champion) if champion else "none"),
    ]


def champion_status(inputs: ReportInputs) -> tuple[str, bool]:
    """One sentence on how this model relates to the champion, and whether to warn."""
    changes, catalog = inputs.changes, inputs.catalog
    status = changes.get("reference", "none")
    text, warn = _champion_sentence(changes, catalog, status)
    identity = changes.get("identity") or {}
    if fresh := identity.get("fresh"):
        first = min(identity.get("new_ids") or [0])
        text = (
            f"First model of this data: no segment carries an id over from the champion "
            f"in {catalog} ({fresh}); its segments are numbered from {first}. " + text
        )
    return text, warn


def _champion_sentence(changes: Mapping[str, Any], catalog: str, status: str) -> tuple[str, bool]:
    if status == "same":
        return f"This model is the champion recorded in {catalog}.", False
    if status == "none":
        return (
            f"No champion is recorded yet ({catalog} is absent): publishing this model "
            "(make run) makes it the champion and writes the catalog.",
            False,
        )
    if status == "incomparable":
        return (
            f"This model is not the champion recorded in {catalog}, which reads columns this "
            "table lacks; scoring keeps using the champion until this model is promoted.",
            True,
        )
    return (
        f"This model differs from the champion recorded in {catalog}: "
        f"{moving(changes['moved'])} ({changes['moved_share']:.1%} of them; adjusted Rand "
        f"index {changes['adjusted_rand']:.3f}). Scoring (@champion, "
        "custseg-predict) keeps using the champion until this model is promoted "
        "(custseg promote).",
        True,
    )


def changes_summary(inputs: ReportInputs) -> dict[str, Any] | None:
    """The "What changed since the champion" tables, or None when there is nothing to compare.

    Returns
    -------
    dict or None
        ``header`` (new segment labels), ``rows`` (champion segment label + counts),
        ``shifts`` (one row per kept segment: name and centroid shift per column),
        ``new`` and ``dropped`` (labels).
    """
    changes = inputs.changes
    if changes.get("reference") != "different":  # the champion's own model: nothing moved
        return None
    names = {seg: d.name for seg, d in inputs.descriptions.items()}
    old_names = dict(inputs.champion_names)
    transitions = changes["transitions"]
    header = [f"{names.get(s, '?')} ({s})" for s in transitions["to"]]
    rows = [
        {"label": f"{old_names.get(s, '?')} ({s})", "counts": [f"{n:,}" for n in counts]}
        for s, counts in zip(transitions["from"], transitions["counts"], strict=True)
    ]
    shifts, new, renamed = [], [], []
    for seg, info in sorted(changes["segments"].items(), key=lambda kv: int(kv[0])):
        label = f"{names.get(int(seg), '?')} ({seg})"
        if info["status"] != "kept":
            new.append(label)
            continue
        if shift := info.get("centroid_shift"):
            shifts.append({"label": label, "values": [f"{shift[c]:+.1f}" for c in shift]})
        was_persona = ((changes.get("identity") or {}).get("renamed_personas") or {}).get(seg)
        renamed += _renamed(label, info, was_persona)
    dropped = [f"{old_names.get(s, '?')} ({s})" for s in changes.get("dropped", [])]
    kept = [v for v in changes["segments"].values() if v.get("centroid_shift")]
    shift_columns = list(kept[0]["centroid_shift"]) if kept else []
    return {
        "events": [_event_text(e, old_names, names) for e in changes.get("events") or []],
        "renamed": renamed,
        "header": header,
        "rows": rows,
        "shift_columns": [axis_label(c) for c in shift_columns],
        "shifts": shifts,
        "new": new,
        "dropped": dropped,
        "adjusted_rand": changes["adjusted_rand"],
        "moved": changes["moved"],
        "moving": moving(changes["moved"]),
    }


def _caption(key: str, statistic: str) -> str:
    """A figure's caption; the profile chart's says where names come from."""
    if key == "profiles" and statistic == "median":
        return (
            "Bars: how far a segment's mean is from the average customer, in standard "
            "deviations; numbers: the segment means in original units. Names are read from "
            "where each segment's median falls among all customers (quintiles), shown in "
            "the table above."
        )
    return _CAPTIONS[key]


def _renamed(label: str, info: Mapping[str, Any], was_persona: str | None) -> list[str]:
    """``"<label>: renamed, was '...'"`` lines of a kept segment whose name changed with
    its numbers, or whose persona no longer holds (``was_persona``)."""
    out = []
    if was := info.get("was_name"):
        out.append(f"{label}: renamed, was “{was}”")
    if was_persona:
        out.append(f"{label}: persona renamed, was {was_persona}")
    return out


def _event_text(
    event: Mapping[str, Any], old_names: Mapping[int, str], names: Mapping[int, str]
) -> str:
    """``"Mid income, mid spending (2) split into A (5) and B (6)"`` / ``"... merged into ..."``."""
    before = _join([f"{old_names.get(s, '?')} ({s})" for s in event["from"]])
    after = _join([f"{names.get(s, '?')} ({s})" for s in event["to"]])
    verb = "split into" if event["event"] == "split" else "merged into"
    return f"{before} {verb} {after}"


def _data_warning(inputs: ReportInputs) -> str | None:
    expected = inputs.selection.get("data_sha256")
    if expected and expected != inputs.data.sha256:
        return (
            f"The data file changed since the model was selected (selection: "
            f"{str(expected)[:12]}..., now: {inputs.data.sha256[:12]}...); rerun the pipeline."
        )
    return None


_HTML = TEMPLATES.get_template("report.html.j2")

_CAPTIONS = {
    "scatter": "Each point is a customer; crosses are segment centres. Legend: segment names "
    "and sizes.",
    "profiles": "Bars: how far a segment's mean is from the average customer, in standard "
    "deviations (the shaded band is the 'mid' level used in names); numbers: the segment "
    "means in original units.",
    "elbow": "Inertia (within-cluster sum of squares) for every k of the sweep; the strip "
    "above shows the k each criterion picks, the red line the chosen k.",
    "stability": "Left: how well refits on bootstrap samples of the customers reproduce the "
    "segments (mean adjusted Rand index, band: one standard deviation) and the least stable "
    "segment's Jaccard; the dotted line is the 'unstable' threshold. Right: the gap "
    "statistic with its standard error.",
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
                    "caption": _caption(key, inputs.statistic),
                    "uri": figure_data_uri(inputs.figures[key], dpi=dpi),
                }
            )
    overall = inputs.profiles.overall
    champion_text, champion_warn = champion_status(inputs)
    return _HTML.render(
        k=int(sel["k"]),
        feature_set=str(sel["feature_set"]),
        feature_labels=_join([axis_label(str(c)) for c in sel["features"]]),
        n_customers=inputs.profiles.n_customers,
        data_warning=_data_warning(inputs),
        column_labels=[_split_unit(axis_label(c)) for c in inputs.columns],
        rows=_segment_rows(inputs),
        overall_means=[_fmt(overall.at[c, inputs.statistic]) for c in inputs.columns],
        statistic=inputs.statistic,
        figures=figures,
        method_text=method_sentence(sel),
        metadata=_metadata(inputs),
        champion_text=champion_text,
        champion_warn=champion_warn,
        changes=changes_summary(inputs),
        status_file=str(STATUS_FILE),
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
    head = ["Segment", "Persona", "Customers", "Share", "Stability (Jaccard)"]
    stat = inputs.statistic.capitalize()
    head += [_md(f"{stat} {_lower_first(axis_label(c))}") for c in columns]
    head += ["Recommendation"]
    align = ["---", "---", "---:", "---:", "---:"] + ["---:"] * len(columns) + ["---"]
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
    champion_text, champion_warn = champion_status(inputs)
    lines += [f"> {'**Not the champion.** ' if champion_warn else ''}{_md(champion_text)}", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for row in _segment_rows(inputs):
        cells = [
            f"**{_md(row['name'])}** (segment {row['segment']})",
            _md(row["persona"]),
            f"{row['size']:,}",
            f"{row['share']:.1%}",
            row["jaccard"] + (" **unstable**" if row["unstable"] else ""),
            *row["means"],
            _md(row["recommendation"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if changes := changes_summary(inputs):
        lines += [
            "",
            f"**What changed since the champion:** {moving(changes['moved'])} (adjusted "
            f"Rand index {changes['adjusted_rand']:.3f}).",
            "",
            "| Champion segment | " + " | ".join(_md(h) for h in changes["header"]) + " |",
            "|---|" + "---:|" * len(changes["header"]),
        ]
        lines += [
            f"| {_md(r['label'])} | " + " | ".join(r["counts"]) + " |" for r in changes["rows"]
        ]
        notes = changes["events"] + changes["renamed"]
        if changes["new"]:
            notes.append(f"New segments: {', '.join(changes['new'])}")
        lines += ["", *(f"- {_md(text)}." for text in notes)] if notes else []
    lines += [
        "",
        f"Data {_code(inputs.data.path)} (sha256 {_code(inputs.data.sha256[:12])}), "
        f"model fingerprint {_code(str(sel['fingerprint'])[:12])}.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------- tables and JSON


def segment_metrics(profiles: SegmentProfiles, selection: Mapping[str, Any]) -> dict[str, Any]:
    """Headline figures for ``dvc metrics``: the smallest and largest segment's share and
    the least stable segment's Jaccard; and per segment (a list, which ``dvc metrics show``
    leaves out so it stays narrow) its Jaccard stability and whether it is unstable.

    The per-segment sizes are in :func:`segment_sizes` (a DVC plot).
    """
    shares = profiles.sizes["share"].astype(float)
    jaccard, unstable = segment_stability(selection)
    known = [j for j in jaccard.values() if j is not None]
    return {
        "min_share": round(float(shares.min()), 6),
        "max_share": round(float(shares.max()), 6),
        "min_jaccard": min(known) if known else None,
        "segments": [
            {"segment": int(s), "jaccard": jaccard.get(int(s)), "unstable": int(s) in unstable}
            for s in profiles.segments
        ],
    }


def segment_sizes(
    profiles: SegmentProfiles, descriptions: Mapping[int, SegmentDescription]
) -> pd.DataFrame:
    """Per segment: id, name, size and share (``dvc plots`` draws it as bars)."""
    return pd.DataFrame(
        {
            "segment": [int(s) for s in profiles.segments],
            "name": [csv_text(descriptions[s].name) for s in profiles.segments],
            "size": [int(profiles.sizes.at[s, "size"]) for s in profiles.segments],
            "share": [round(float(profiles.sizes.at[s, "share"]), 6) for s in profiles.segments],
        }
    )


# ---------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class ReportPaths:
    """Where the report files were written."""

    html: Path
    markdown: Path
    assignments: Path
    sizes: Path
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
    write_assignments: Callable[[Path], None],
    metrics: Mapping[str, Any],
    sizes: pd.DataFrame | None = None,
) -> ReportPaths:
    """Write the report files, all or nothing.

    HTML, Markdown and metrics JSON are staged as temporary files next to their
    destinations; the assignment CSV is then written (atomically, by
    ``write_assignments``); only when all of that succeeded are the staged files moved
    into place. On any failure every staged file is removed and no
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
    write_assignments : callable
        Writes the assignments CSV (:func:`assignments_table`'s) atomically to the path it
        is given (the engine that holds the table writes it).
    metrics : mapping
        From :func:`segment_metrics` (written indented with sorted keys).
    sizes : DataFrame, optional
        From :func:`segment_sizes` (``segment_sizes.csv``; not written when None).

    Returns
    -------
    ReportPaths
    """
    out = Path(output_dir)
    paths = ReportPaths(
        html=out / REPORT_FILES["html"],
        markdown=out / REPORT_FILES["markdown"],
        assignments=out / REPORT_FILES["assignments"],
        sizes=out / REPORT_FILES["sizes"],
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
        write_assignments(paths.assignments)
        if sizes is not None:
            write_csv_atomic(sizes, paths.sizes)
        for tmp, dest in staged:
            os.replace(tmp, dest)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return paths
