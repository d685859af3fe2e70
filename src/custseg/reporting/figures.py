"""Figures for model selection and segment inspection.

Every function here is pure: it takes arrays / DataFrames and returns a new
:class:`matplotlib.figure.Figure` built with the object-oriented API (no ``pyplot``, so
there is no global figure registry, no GUI backend is needed and figures are garbage
collected like any other object). Saving and logging are the caller's business, e.g.
``fig.savefig(path)`` or ``mlflow.log_figure(fig, "elbow.png")``.

Style conventions shared by all figures:

* cluster ``i`` is always drawn in colour ``i`` of the qualitative ``tab10`` colormap
  (see :func:`cluster_color`), so a segment has the same colour in every plot;
* known columns get readable axis labels with units (:data:`AXIS_LABELS`);
* legends are placed outside the data area (figure legends in a constrained layout, or in
  an empty panel) so they never cover points.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from custseg.domain.selection import COMPARABLE_CRITERIA, CRITERION, SCORE_CRITERIA

if TYPE_CHECKING:
    from custseg.domain.profiling.profiles import SegmentProfiles

AXIS_LABELS: dict[str, str] = {
    "annual_income": "Annual income (k$)",
    "spending_score": "Spending score (1-100)",
    "age": "Age (years)",
}
"""Readable axis labels (with units) for canonical column names."""

METRIC_INFO: dict[str, tuple[str, bool]] = {"inertia": ("Inertia", False)} | {
    name: (c.title, bool(c.higher_is_better))
    for name, c in CRITERION.items()
    if c.higher_is_better is not None
}
"""Metric name -> (display name, higher is better)."""

#: criteria whose values mean the same in any feature space (scale-free bounded indices):
#: the only ones drawn for several feature sets on one axis (inertia, Calinski-Harabasz and
#: the gap depend on the number of columns)
COMPARABLE_METRICS = COMPARABLE_CRITERIA

_TAB10 = colormaps["tab10"]
_SELECTED_COLOR = "tab:red"
_K_LABEL = "Number of clusters k"


def axis_label(column: str) -> str:
    """Return the readable axis label for ``column`` (the name itself if unknown).

    Parameters
    ----------
    column : str
        Canonical column name, e.g. ``"annual_income"``.

    Returns
    -------
    str
        ``AXIS_LABELS[column]`` when present, else ``column``.
    """
    return AXIS_LABELS.get(column, column)


def cluster_color(cluster: int) -> tuple[float, float, float, float]:
    """Return the RGBA colour of cluster ``cluster`` (``tab10`` colour ``cluster % 10``).

    Parameters
    ----------
    cluster : int
        Cluster id.

    Returns
    -------
    tuple of float
        RGBA colour.
    """
    return tuple(_TAB10(int(cluster) % _TAB10.N))  # type: ignore[return-value]


def _segment_name(cluster: Any, labels_text: Mapping[int, str] | None) -> str:
    if labels_text is not None and cluster in labels_text:
        return str(labels_text[cluster])
    return f"segment {cluster}"


def _as_cluster_id(value: Any) -> Any:
    """Turn numpy integer ids into plain ``int`` (nicer text, dict look-ups)."""
    if isinstance(value, np.integer | int) and not isinstance(value, bool):
        return int(value)
    return value


def _cluster_colors(ids: Sequence[Any]) -> dict[Any, tuple[float, float, float, float]]:
    """Colour per cluster id: colour ``id`` for integer ids, positional otherwise."""
    if all(isinstance(i, int) for i in ids):
        return {i: cluster_color(i) for i in ids}
    return {i: cluster_color(pos) for pos, i in enumerate(ids)}


def _group_color(pos: int) -> tuple[float, float, float, float]:
    """Colour of the ``pos``-th group line: ``tab10`` without red (kept for selected k)."""
    order = (0, 1, 2, 4, 5, 6, 8, 9, 7)
    return tuple(_TAB10(order[pos % len(order)]))  # type: ignore[return-value]


def _integer_k_axis(ax: Axes, ks: Sequence[int]) -> None:
    """Put ticks on integer k values (every k if there are few)."""
    ks_sorted = sorted({int(k) for k in ks})
    if 0 < len(ks_sorted) <= 20:
        ax.set_xticks(ks_sorted)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


# --------------------------------------------------------------------------- model selection


def elbow_plot(
    ks: Sequence[int],
    inertias: Sequence[float],
    selected_k: int | None,
    picks: Mapping[str, int | None] | None = None,
    title: str = "Elbow method",
) -> Figure:
    """Plot inertia against k, marking the selected k and each criterion's pick.

    Parameters
    ----------
    ks : sequence of int
        Numbers of clusters that were fitted.
    inertias : sequence of float
        Inertia (within-cluster sum of squares) for each entry of ``ks``.
    selected_k : int or None
        The chosen k; drawn as a red vertical dashed line annotated ``"selected k = 5"``.
        ``None`` draws no marker.
    picks : mapping of str to int or None, optional
        Criterion name -> k that criterion would pick (``None`` if it picks nothing, e.g.
        no knee found). When given, a narrow strip above the curve shows one row per
        criterion, labelled ``"silhouette: 5"``, with a marker at its pick.
    title : str, default "Elbow method"
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes (the curve), or two when ``picks`` is non-empty (picks strip on top,
        curve below, sharing the k axis).

    Raises
    ------
    ValueError
        If ``ks`` is empty or ``ks`` and ``inertias`` differ in length.
    """
    ks_arr = np.asarray(ks, dtype=float)
    inertia_arr = np.asarray(inertias, dtype=float)
    if ks_arr.ndim != 1 or ks_arr.size == 0:
        raise ValueError("ks must be a non-empty 1-d sequence")
    if inertia_arr.shape != ks_arr.shape:
        raise ValueError(f"ks and inertias differ in length: {ks_arr.size} != {inertia_arr.size}")
    order = np.argsort(ks_arr, kind="stable")
    ks_arr, inertia_arr = ks_arr[order], inertia_arr[order]

    picks = dict(picks or {})
    if picks:
        fig = Figure(figsize=(7.0, 4.6 + 0.28 * len(picks)), layout="constrained")
        ax_picks, ax = fig.subplots(2, 1, sharex=True, height_ratios=[0.45 + 0.3 * len(picks), 4.0])
    else:
        fig = Figure(figsize=(7.0, 4.6), layout="constrained")
        ax = fig.subplots()
        ax_picks = None

    ax.plot(ks_arr, inertia_arr, marker="o", color="tab:blue", label="inertia", zorder=2)
    ax.set_xlabel(_K_LABEL)
    ax.set_ylabel("Inertia (within-cluster sum of squares)")
    ax.grid(True, alpha=0.3)
    _integer_k_axis(ax, [int(k) for k in ks_arr])

    # Headroom above the curve for the "selected k" annotation.
    y_min, y_max = ax.get_ylim()
    ax.set_ylim(y_min, y_max + 0.12 * (y_max - y_min))

    if selected_k is not None:
        _mark_selected_k(ax, ks_arr, inertia_arr, selected_k)
    if ax_picks is not None:
        _picks_strip(ax_picks, picks, selected_k)

    pad = 0.5
    ax.set_xlim(ks_arr.min() - pad, ks_arr.max() + pad)
    fig.suptitle(title)
    return fig


def _mark_selected_k(
    ax: Axes, ks_arr: np.ndarray, inertia_arr: np.ndarray, selected_k: int
) -> None:
    """The selected k on the elbow curve: a dashed line, a ring on its point, a label."""
    ax.axvline(selected_k, color=_SELECTED_COLOR, linestyle="--", linewidth=1.5, zorder=1)
    hit = np.flatnonzero(ks_arr == selected_k)
    if hit.size:
        ax.plot(
            [selected_k],
            [inertia_arr[hit[0]]],
            marker="o",
            markersize=11,
            markerfacecolor="none",
            markeredgecolor=_SELECTED_COLOR,
            markeredgewidth=2,
            linestyle="none",
            zorder=3,
        )
    # Text on the side of the line with more room; at the top, where inertia is low
    # for every k past the first few.
    lo, hi = float(ks_arr.min()), float(ks_arr.max())
    right_side = hi == lo or (selected_k - lo) / (hi - lo) < 0.6
    ax.annotate(
        f"selected k = {selected_k}",
        xy=(selected_k, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(6 if right_side else -6, -6),
        textcoords="offset points",
        ha="left" if right_side else "right",
        va="top",
        color=_SELECTED_COLOR,
        fontweight="bold",
    )


def _picks_strip(ax_picks: Axes, picks: Mapping[str, int | None], selected_k: int | None) -> None:
    """One row per criterion above the elbow curve, a marker at the k it picks."""
    names = list(picks)
    rows = np.arange(len(names))[::-1]  # first criterion on top
    for name, row in zip(names, rows, strict=True):
        k_pick = picks[name]
        if k_pick is None:
            continue
        ax_picks.plot(
            [k_pick],
            [row],
            marker="v",
            markersize=9,
            color="dimgray",
            markeredgecolor="black",
            markeredgewidth=0.6,
            linestyle="none",
        )
    ax_picks.set_yticks(rows, [f"{n}: {'none' if picks[n] is None else picks[n]}" for n in names])
    ax_picks.set_ylim(-0.7, len(names) - 0.3)
    ax_picks.tick_params(axis="x", labelbottom=False)
    ax_picks.tick_params(axis="y", length=0)
    ax_picks.grid(True, axis="x", alpha=0.3)
    ax_picks.set_title("k picked by each criterion", fontsize="medium", loc="left")
    if selected_k is not None:
        ax_picks.axvline(selected_k, color=_SELECTED_COLOR, linestyle="--", linewidth=1.5)


def stability_plot(
    curve: pd.DataFrame, selected_k: int | None, unstable_below: float | None = None
) -> Figure:
    """Stability and the gap statistic against k, side by side.

    Parameters
    ----------
    curve : pandas.DataFrame
        One row per k with ``k``, ``stability``, ``stability_std``, ``min_jaccard``,
        ``gap`` and ``gap_se`` (a sweep curve).
    selected_k : int, optional
        The chosen k, a red dashed line in both panels.
    unstable_below : float, optional
        Jaccard under which a segment counts as unstable, drawn as a dotted line.
    """
    curve = curve.sort_values("k")
    fig = Figure(figsize=(10.4, 3.9), layout="constrained")
    ax_stable, ax_gap = fig.subplots(1, 2)
    _stability_panel(ax_stable, curve, unstable_below)
    _gap_panel(ax_gap, curve)
    for ax in (ax_stable, ax_gap):
        ax.set_xlabel(_K_LABEL)
        ax.grid(True, alpha=0.3)
        _integer_k_axis(ax, curve["k"].astype(int).tolist())
        if selected_k is not None:
            ax.axvline(selected_k, color=_SELECTED_COLOR, linestyle="--", linewidth=1.5)
    return fig


def _stability_panel(ax: Axes, curve: pd.DataFrame, unstable_below: float | None) -> None:
    ks, mean = curve["k"], curve["stability"]
    spread = curve.get("stability_std", pd.Series(0.0, index=curve.index)).fillna(0.0)
    ax.plot(ks, mean, marker="o", color="tab:blue", label="mean ARI of refits")
    ax.fill_between(ks, mean - spread, np.minimum(mean + spread, 1.0), color="tab:blue", alpha=0.15)
    ax.plot(ks, curve["min_jaccard"], marker="s", color="tab:orange", label="least stable segment")
    if unstable_below is not None:
        ax.axhline(unstable_below, color="dimgray", linestyle=":", label="unstable below")
    lowest = np.nanmin(curve[["stability", "min_jaccard"]].to_numpy(float), initial=0.0)
    ax.set_ylim(float(lowest) - 0.02, 1.05)  # ARI can be negative: worse than chance
    ax.set_ylabel("Agreement with the fit (1 = same)")
    ax.set_title("Stability under resampling (higher is better)", fontsize="medium")
    ax.legend(loc="lower left", fontsize="small")


def _gap_panel(ax: Axes, curve: pd.DataFrame) -> None:
    ax.errorbar(
        curve["k"], curve["gap"], yerr=curve["gap_se"], marker="o", color="tab:green", capsize=3
    )
    ax.set_ylabel("Gap (log W of uniform data - log W)")
    ax.set_title("Gap statistic (first k within one error of the next)", fontsize="medium")


def metrics_vs_k_plot(
    table: pd.DataFrame,
    metrics: Sequence[str] = ("inertia", *SCORE_CRITERIA),
    selected_k: int | None = None,
    group_column: str | None = "feature_set",
) -> Figure:
    """Plot each selection metric against k in a grid of subplots.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per fitted model with a ``"k"`` column and one column per metric (e.g. a
        sweep's results table).
    metrics : sequence of str
        Metric columns to plot, one subplot each (2 columns; four metrics give 2x2).
        Subplot titles state whether higher or lower is better for known metrics
        (:data:`METRIC_INFO`).
    selected_k : int, optional
        The chosen k, drawn as a red vertical dashed line in every subplot.
    group_column : str or None, default "feature_set"
        When this column exists in ``table``, one labelled line per group value is drawn
        (same colour for a group in every subplot); otherwise a single line.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(metrics)`` axes; a figure-level legend below the grid when there are
        groups or a selected k.

    Notes
    -----
    Rows sharing ``(group, k)`` (e.g. repeated seeds) are averaged; NaN metric values
    (e.g. silhouette at k = 1) are skipped.

    Raises
    ------
    ValueError
        If ``metrics`` is empty, or ``"k"`` or a metric column is missing.
    """
    metrics = list(metrics)
    if not metrics:
        raise ValueError("metrics must not be empty")
    missing = [c for c in ["k", *metrics] if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks column(s) {missing}; has {list(table.columns)}")

    n = len(metrics)
    ncols = 1 if n == 1 else 2
    nrows = -(-n // ncols)
    fig = Figure(figsize=(5.2 * ncols, 3.4 * nrows + 0.6), layout="constrained")
    grid = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for extra in grid[n:]:
        fig.delaxes(extra)
    axes = grid[:n]

    grouped = group_column is not None and group_column in table.columns
    if grouped:
        groups = sorted(pd.unique(table[group_column].dropna()), key=str)
        parts = [(str(g), table[table[group_column] == g]) for g in groups]
    else:
        parts = [("", table)]

    handles: list[Any] = []
    for ax, metric in zip(axes, metrics, strict=True):
        name, higher_better = METRIC_INFO.get(metric, (metric, None))
        for pos, (label, part) in enumerate(parts):
            series = pd.to_numeric(part[metric], errors="coerce").groupby(part["k"]).mean()
            series = series.dropna().sort_index()
            (line,) = ax.plot(
                series.index.to_numpy(dtype=float),
                series.to_numpy(dtype=float),
                marker="o",
                markersize=4,
                color=_group_color(pos),
                label=label or name,
            )
            if ax is axes[0] and grouped:
                handles.append(line)
        if selected_k is not None:
            vline = ax.axvline(
                selected_k,
                color=_SELECTED_COLOR,
                linestyle="--",
                linewidth=1.3,
                label=f"selected k = {selected_k}",
            )
            if ax is axes[0]:
                handles.append(vline)
        if higher_better is None:
            ax.set_title(name)
        else:
            ax.set_title(f"{name} ({'higher' if higher_better else 'lower'} is better)")
        ax.set_xlabel(_K_LABEL)
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        _integer_k_axis(ax, table["k"].dropna().astype(int).tolist())

    if handles:
        fig.legend(
            handles=handles,
            labels=[h.get_label() for h in handles],
            loc="outside lower center",
            ncols=min(len(handles), 5),
            frameon=False,
        )
    fig.suptitle("Selection metrics vs k")
    return fig


# --------------------------------------------------------------------------- segments


def _subsample(n: int, max_points: int) -> np.ndarray:
    """Sorted row positions of a deterministic (seed 0) uniform subsample of size <= max."""
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(0)
    return np.sort(rng.choice(n, size=max_points, replace=False))


def _marker_size(n_drawn: int) -> float:
    if n_drawn <= 300:
        return 28.0
    if n_drawn <= 2000:
        return 12.0
    return 5.0


def _histograms(values: np.ndarray, codes: np.ndarray, k: int, edges: np.ndarray) -> np.ndarray:
    """``numpy.histogram(values[codes == i], edges)`` of every group ``i`` in ``0..k-1``,
    shape ``(k, len(edges) - 1)``, in one pass over the values (NaN and values outside
    the edges are not counted; the last bin holds its right edge).

    ``edges`` are evenly spaced (:func:`_hist_edges`): a value's bin is computed, then
    moved by one where rounding put it beside its edges, as numpy does for even bins.
    """
    n_bins = len(edges) - 1
    if n_bins < 1 or not np.isfinite(edges).all() or (np.diff(edges) <= 0).any():
        # values too close together for their magnitude (or too far apart): numpy's way
        finite = np.isfinite(values)
        return np.array([np.histogram(values[finite & (codes == i)], edges)[0] for i in range(k)])
    inside = (values >= edges[0]) & (values <= edges[-1])  # False for NaN
    values, codes = values[inside], codes[inside]
    bins = ((values - edges[0]) * (n_bins / (edges[-1] - edges[0]))).astype(np.intp)
    np.clip(bins, 0, n_bins - 1, out=bins)
    bins[values < edges[bins]] -= 1
    bins[(values >= edges[bins + 1]) & (bins != n_bins - 1)] += 1
    flat = np.bincount(codes * n_bins + bins, minlength=k * n_bins)
    return flat.reshape(k, n_bins)


def _hist_edges(values: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.array([0.0, 1.0])
    lo, hi = float(finite.min()), float(finite.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    max_bins = 30
    nbins = int(np.clip(np.sqrt(finite.size), 5, max_bins))
    if np.array_equal(finite, np.round(finite)) and hi - lo < 1e6:
        # Integer data (ages, scores): integer-wide bins centred on the values, otherwise
        # some bins catch one more integer than others and the histogram looks combed.
        width = max(1, int(np.ceil((hi - lo + 1) / nbins)))
        return np.arange(lo - 0.5, hi + 0.5 + width, width, dtype=float)
    return np.linspace(lo, hi, nbins + 1)


@dataclass(frozen=True)
class _Segments:
    """What every layout of :func:`cluster_scatter` draws: the plotted columns, the
    segments with their colours, all rows (for histograms) and the drawn subsample."""

    cols: list[str]
    ids: list[Any]
    raw_ids: np.ndarray
    colors: dict[Any, tuple[float, float, float, float]]
    values: np.ndarray
    labels: np.ndarray
    #: each row's position in ``ids``
    codes: np.ndarray
    drawn: np.ndarray
    centroids: pd.DataFrame | None

    @property
    def draw_values(self) -> np.ndarray:
        return self.values[self.drawn]

    @property
    def draw_labels(self) -> np.ndarray:
        return self.labels[self.drawn]


_SCATTER_KW = {"alpha": 0.75, "linewidths": 0, "zorder": 2}
_CENTROID_KW = {
    "gid": "centroids",
    "marker": "X",
    "s": 220,
    "edgecolors": "black",
    "linewidths": 1.5,
    "zorder": 3,
}


def cluster_scatter(
    data: pd.DataFrame,
    labels: np.ndarray,
    centroids: pd.DataFrame | None = None,
    columns: Sequence[str] | None = None,
    labels_text: Mapping[int, str] | None = None,
    title: str = "",
    max_points: int = 5000,
    sizes: Mapping[int, int] | None = None,
) -> Figure:
    """Scatter customers in original units, coloured by segment, with centroids.

    The layout depends on the number of plotted columns:

    * 1 column: a jittered strip per segment (one row each) along the value axis;
    * 2 columns: a single scatter, x = first column, y = second;
    * more: a pairwise grid, scatter of every pair in the lower triangle, per-segment
      histograms on the diagonal, upper triangle hidden (the legend sits there).

    Parameters
    ----------
    data : pandas.DataFrame
        Customers in ORIGINAL (unscaled) units, one row per label.
    labels : numpy.ndarray
        Segment id of each row (length ``len(data)``).
    centroids : pandas.DataFrame, optional
        Segment centres in original units, indexed by segment id, with (at least) the
        plotted columns. Drawn as large black-edged ``X`` markers in the segment colour.
    columns : sequence of str, optional
        Numeric columns to plot; default: every numeric column of ``data``.
    labels_text : mapping of int to str, optional
        Human-readable segment names; the legend shows ``"<name> (n=size)"`` instead of
        ``"segment i (n=size)"``.
    title : str, default ""
        Figure title; empty gives ``"Customer segments (k = <number of segments>)"``.
    max_points : int, default 5000
        At most this many points are drawn, a deterministic uniform subsample
        (``numpy.random.default_rng(0)``); legend sizes and diagonal histograms use all
        rows.
    sizes : mapping of int to int, optional
        Customers per segment when ``data`` is a sample of them (a table Spark holds):
        the legend's sizes and the title's count of customers; default: ``data``'s. The
        diagonal histograms count ``data``'s rows, and their axis says so when they are
        fewer than the customers.

    Returns
    -------
    matplotlib.figure.Figure
        1 axes for one or two columns, ``p * p`` axes for ``p > 2`` columns (upper
        triangle switched off). Point collections have gid ``"segment-<id>"`` and the
        centroid collection gid ``"centroids"``, so callers and tests can find them.

    Raises
    ------
    ValueError
        If lengths differ, no numeric column is available, a requested column is missing
        or non-numeric, ``centroids`` lacks a plotted column, or ``max_points < 1``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != len(data):
        raise ValueError(f"labels has shape {labels.shape}, expected ({len(data)},)")
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    cols = _scatter_columns(data, columns, centroids)
    segments = _segments(data, labels, cols, centroids, max_points)
    if sizes is None:
        counts = np.bincount(segments.codes, minlength=len(segments.ids))
        sizes = dict(zip(segments.ids, counts.tolist(), strict=True))
    handles = _legend_handles(segments, labels_text, sizes)
    legend_kw = {"handles": handles, "title": "Segment", "frameon": False}
    if not title:
        title = f"Customer segments (k = {len(segments.ids)})"
    n_customers = sum(sizes.values())
    if segments.drawn.size < n_customers:
        title = f"{title}\n{segments.drawn.size:,} of {n_customers:,} customers drawn"
    if len(cols) == 1:
        fig = _strip_figure(segments, legend_kw)
    elif len(cols) == 2:
        fig = _pair_figure(segments, legend_kw)
    else:
        # the histograms count ``data``'s rows: say so when they are a sample of the table
        count_label = "Count" if len(data) >= n_customers else f"Count ({len(data):,}-row sample)"
        fig = _grid_figure(segments, legend_kw, title.count("\n") + 1, count_label)
    fig.suptitle(title)
    return fig


def _scatter_columns(
    data: pd.DataFrame, columns: Sequence[str] | None, centroids: pd.DataFrame | None
) -> list[str]:
    """The columns :func:`cluster_scatter` plots, checked (see its Raises)."""
    if columns is None:
        cols = [c for c in data.select_dtypes(include="number").columns if data[c].dtype != bool]
    else:
        cols = list(columns)
        absent = [c for c in cols if c not in data.columns]
        if absent:
            raise ValueError(f"data lacks column(s) {absent}")
        non_numeric = [
            c for c in cols if not pd.api.types.is_numeric_dtype(data[c]) or data[c].dtype == bool
        ]
        if non_numeric:
            raise ValueError(f"column(s) {non_numeric} are not numeric")
    if not cols:
        raise ValueError("no numeric column to plot")
    if centroids is not None:
        absent = [c for c in cols if c not in centroids.columns]
        if absent:
            raise ValueError(f"centroids lack column(s) {absent}")
    return cols


def _segments(
    data: pd.DataFrame,
    labels: np.ndarray,
    cols: list[str],
    centroids: pd.DataFrame | None,
    max_points: int,
) -> _Segments:
    raw_ids, codes = np.unique(labels, return_inverse=True)
    ids = [_as_cluster_id(i) for i in raw_ids]
    colors = _cluster_colors(ids)
    if centroids is not None:
        for cid in centroids.index:
            colors.setdefault(_as_cluster_id(cid), cluster_color(len(colors)))
    values = data[cols].to_numpy(dtype=float)
    drawn = _subsample(len(data), max_points)
    return _Segments(cols, ids, raw_ids, colors, values, labels, codes, drawn, centroids)


def _legend_handles(
    segments: _Segments, labels_text: Mapping[int, str] | None, sizes: Mapping[int, int]
) -> list[Line2D]:
    """One marker per segment, ``"<name> (n=<size>)"``, then the centroid marker: every
    segment drawn or counted (a small one may have no customer in a drawn sample)."""
    ids = list(segments.ids) + sorted(set(map(_as_cluster_id, sizes)) - set(segments.ids))
    colors = segments.colors
    for cid in ids:
        colors.setdefault(cid, cluster_color(len(colors)))
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="none",
            markersize=8,
            color=colors[cid],
            label=f"{_segment_name(cid, labels_text)} (n={sizes.get(cid, 0)})",
        )
        for cid in ids
    ]
    if segments.centroids is not None:
        centroid = Line2D(
            [],
            [],
            marker="X",
            linestyle="none",
            markersize=11,
            markerfacecolor="lightgray",
            markeredgecolor="black",
            markeredgewidth=1.5,
            label="centroid",
        )
        handles.append(centroid)
    return handles


def _draw_points(ax: Axes, segments: _Segments, x: np.ndarray, y: np.ndarray) -> None:
    """Scatter the drawn rows at ``(x, y)``, one collection per segment."""
    draw_labels = segments.draw_labels
    size = _marker_size(segments.drawn.size)
    for cid, raw in zip(segments.ids, segments.raw_ids, strict=True):
        mask = draw_labels == raw
        color = segments.colors[cid]
        ax.scatter(x[mask], y[mask], s=size, color=color, gid=f"segment-{cid}", **_SCATTER_KW)


def _draw_pair(ax: Axes, segments: _Segments, xi: int, yi: int) -> None:
    """Scatter of column ``xi`` against column ``yi``, with the centroids."""
    values = segments.draw_values
    _draw_points(ax, segments, values[:, xi], values[:, yi])
    centroids = segments.centroids
    if centroids is not None:
        ax.scatter(
            centroids[segments.cols[xi]].to_numpy(dtype=float),
            centroids[segments.cols[yi]].to_numpy(dtype=float),
            c=[segments.colors[_as_cluster_id(c)] for c in centroids.index],
            **_CENTROID_KW,
        )


def _strip_figure(segments: _Segments, legend_kw: dict[str, Any]) -> Figure:
    """One column: a jittered strip per segment, first segment on top."""
    ids = segments.ids
    fig = Figure(figsize=(8.0, 1.2 + 0.55 * len(ids) + 1.0), layout="constrained")
    ax = fig.subplots()
    rows = {cid: row for row, cid in enumerate(ids)}
    row_of = np.array([rows[_as_cluster_id(raw)] for raw in segments.draw_labels], dtype=float)
    jitter = np.random.default_rng(0).uniform(-0.28, 0.28, size=segments.drawn.size)
    _draw_points(ax, segments, segments.draw_values[:, 0], row_of + jitter)
    centroids = segments.centroids
    if centroids is not None:
        known = [c for c in centroids.index if _as_cluster_id(c) in rows]
        ax.scatter(
            centroids.loc[known, segments.cols[0]].to_numpy(dtype=float),
            [rows[_as_cluster_id(c)] for c in known],
            c=[segments.colors[_as_cluster_id(c)] for c in known],
            **_CENTROID_KW,
        )
    ax.set_yticks(list(rows.values()), [str(c) for c in rows])
    ax.set_ylim(len(ids) - 0.5, -0.5)  # first segment on top, like the legend
    ax.set_xlabel(axis_label(segments.cols[0]))
    ax.set_ylabel("Segment")
    ax.grid(True, axis="x", alpha=0.3)
    fig.legend(loc="outside right upper", **legend_kw)
    return fig


def _pair_figure(segments: _Segments, legend_kw: dict[str, Any]) -> Figure:
    """Two columns: one scatter, the legend outside on the right."""
    fig = Figure(figsize=(8.2, 5.6), layout="constrained")
    ax = fig.subplots()
    _draw_pair(ax, segments, 0, 1)
    ax.set_xlabel(axis_label(segments.cols[0]))
    ax.set_ylabel(axis_label(segments.cols[1]))
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside right upper", **legend_kw)
    return fig


#: margins of the pairwise grid, in inches: room for the outer tick labels, the axis
#: labels and a title line (fixed margins instead of a constrained layout: the grid's
#: tick labels are all on its outer edges, and the layout pass cost a quarter of the
#: figure's rendering time, measured)
_GRID_MARGINS = {"left": 0.9, "right": 0.15, "bottom": 0.7, "title_line": 0.25}


def _grid_figure(
    segments: _Segments, legend_kw: dict[str, Any], title_lines: int, count_label: str
) -> Figure:
    """Three or more columns: pairwise scatters below the diagonal, per-segment
    histograms on it (the first one's axis titled ``count_label``), the legend in the
    empty upper triangle."""
    p = len(segments.cols)
    side = 2.5 * p + 0.4
    fig = Figure(figsize=(side, side))
    m = _GRID_MARGINS
    fig.subplots_adjust(
        left=m["left"] / side,
        right=1 - m["right"] / side,
        bottom=m["bottom"] / side,
        top=1 - (0.15 + m["title_line"] * title_lines) / side,
        wspace=0.08,
        hspace=0.08,
    )
    axes = fig.subplots(p, p, sharex="col")
    for i in range(p):
        for j in range(p):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                _draw_histograms(ax, segments, i, count_label)
            else:
                if j > 0:
                    ax.sharey(axes[i, 0])
                _draw_pair(ax, segments, j, i)
                if j == 0:
                    ax.set_ylabel(axis_label(segments.cols[i]))
                else:
                    ax.tick_params(axis="y", labelleft=False)
            ax.grid(True, alpha=0.3)
            if i == p - 1:
                ax.set_xlabel(axis_label(segments.cols[j]))
            else:
                ax.tick_params(axis="x", labelbottom=False)
    # The hidden upper triangle is empty space: the legend goes there.
    axes[0, p - 1].legend(loc="upper right", borderaxespad=0.0, **legend_kw)
    return fig


def _draw_histograms(ax: Axes, segments: _Segments, column: int, count_label: str) -> None:
    """Per-segment histograms of one column over all rows (filled and outlined stairs);
    the first column's axes shows the counts, titled ``count_label``."""
    values = segments.values[:, column]
    edges = _hist_edges(values)
    counts = _histograms(values, segments.codes, len(segments.ids), edges)
    for cid, hist in zip(segments.ids, counts, strict=True):
        ax.stairs(hist, edges, color=segments.colors[cid], fill=True, alpha=0.3)
        ax.stairs(hist, edges, color=segments.colors[cid], linewidth=1.2)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if column == 0:
        ax.set_ylabel(count_label)
    else:
        ax.tick_params(axis="y", left=False, labelleft=False)


def silhouette_diagram(
    sample_silhouettes: np.ndarray, labels: np.ndarray, title: str = ""
) -> Figure:
    """Draw the classic silhouette diagram: sorted per-sample silhouettes by segment.

    Each segment is a band (``fill_betweenx``) whose height is proportional to its size
    and whose horizontal extent shows its members' silhouettes sorted (largest at the
    band's top); the segment id labels the band on the y axis, and a red dashed line
    marks the mean silhouette (value in the legend).

    Parameters
    ----------
    sample_silhouettes : numpy.ndarray
        Silhouette coefficient of each sample (e.g. ``sklearn.metrics.silhouette_samples``).
    labels : numpy.ndarray
        Segment id of each sample, same length.
    title : str, default ""
        Axes title; empty gives ``"Silhouette diagram (k = <number of segments>)"``.

    Returns
    -------
    matplotlib.figure.Figure
        One axes.

    Notes
    -----
    Bands of segments with more than 2000 samples are drawn from 2000 evenly spaced
    quantiles of the sorted values (same shape, bounded drawing cost); band heights
    still reflect the true sizes.

    Raises
    ------
    ValueError
        If the inputs are empty or differ in length.
    """
    sil = np.asarray(sample_silhouettes, dtype=float).ravel()
    labels = np.asarray(labels).ravel()
    if sil.size == 0:
        raise ValueError("sample_silhouettes is empty")
    if sil.shape != labels.shape:
        raise ValueError(
            f"sample_silhouettes and labels differ in length: {sil.size} != {labels.size}"
        )

    raw_ids, codes = np.unique(labels, return_inverse=True)
    ids = [_as_cluster_id(i) for i in raw_ids]
    colors = _cluster_colors(ids)
    gap = max(2.0, 0.02 * sil.size)
    max_vertices = 2000

    # fixed margins (inches: y label and segment ids; title; x label and the legend below)
    # rather than a constrained layout, a third of this figure's rendering time
    width, height = 7.0, 5.2
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.8 / width, right=1 - 0.2 / width, top=1 - 0.4 / height)
    fig.subplots_adjust(bottom=0.95 / height)
    ax = fig.subplots()
    y_lower = gap
    centers = []
    for cid, raw in zip(ids, raw_ids, strict=True):
        member = sil[labels == raw]
        vals = np.sort(member[np.isfinite(member)])  # ascending: widest at the band's top
        n = vals.size
        if n > max_vertices:
            vals = np.quantile(vals, np.linspace(0.0, 1.0, max_vertices))
        ys = np.linspace(y_lower, y_lower + n, vals.size)
        ax.fill_betweenx(
            ys, 0.0, vals, color=colors[cid], alpha=0.8, linewidth=0, gid=f"segment-{cid}"
        )
        centers.append(y_lower + 0.5 * n)
        y_lower += n + gap

    mean = float(np.nanmean(sil))
    ax.axvline(
        mean, color="red", linestyle="--", linewidth=1.5, label=f"mean silhouette = {mean:.3f}"
    )
    ax.axvline(0.0, color="black", linewidth=0.8)
    lo = min(-0.1, float(np.nanmin(sil)) - 0.05)
    ax.set_xlim(lo, 1.0)
    ax.set_ylim(0, y_lower)
    # Segment ids as y tick labels (coloured like their band): laid out with the axes,
    # unlike free text, so they never collide with the y label.
    ax.set_yticks(centers, [str(c) for c in ids], fontweight="bold")
    for tick_label, cid in zip(ax.get_yticklabels(), ids, strict=True):
        tick_label.set_color(colors[cid])
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel("Silhouette coefficient")
    ax.set_ylabel("Segment (band height = size)")
    ax.grid(True, axis="x", alpha=0.3)
    fig.legend(loc="lower center", frameon=False)
    ax.set_title(title or f"Silhouette diagram (k = {len(ids)})")
    return fig


def _format_value(value: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}"


def profile_chart(
    profiles: SegmentProfiles,
    labels_text: Mapping[int, str] | None = None,
    columns: Sequence[str] | None = None,
    threshold: float | None = None,
    title: str = "Segment profiles",
    max_columns: int = 3,
) -> Figure:
    """One panel per segment: how far each attribute's mean is from the whole base.

    Each panel draws a horizontal bar per numeric column whose length is the segment's
    standardised difference ``(segment mean - overall mean) / overall std`` (0 = the
    average customer) and writes the segment mean in original units at the bar's end.
    All panels share the x range, so segments compare at a glance.

    Parameters
    ----------
    profiles : SegmentProfiles
        From :func:`custseg.domain.profiling.profiles.profile_segments`.
    labels_text : mapping of int to str, optional
        Segment names for the panel titles (default ``"segment <id>"``).
    columns : sequence of str, optional
        Numeric columns to draw, top to bottom; default every profiled numeric column.
    threshold : float, optional
        When given, the band ``[-threshold, threshold]`` (the "mid" level of segment
        names) is shaded.
    title : str, default "Segment profiles"
        Figure title.
    max_columns : int, default 3
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per segment (in ascending id order); the bars of segment ``i`` have gid
        ``"profile-<i>"``. Panel titles give the name, size and share, and the most
        frequent value of every categorical column with its share.

    Raises
    ------
    ValueError
        If no numeric column is available or a requested column is not profiled.
    """
    cols = list(profiles.numeric_columns if columns is None else columns)
    if not cols:
        raise ValueError("no numeric column to draw")
    absent = [c for c in cols if c not in profiles.numeric_columns]
    if absent:
        raise ValueError(f"column(s) {absent} are not profiled")
    if max_columns < 1:
        raise ValueError(f"max_columns must be >= 1, got {max_columns}")
    diffs = profiles.wide("std_diff")[cols]
    means = profiles.wide("mean")[cols]
    segments = profiles.segments
    n = len(segments)
    ncols = min(max_columns, n)
    nrows = -(-n // ncols)
    fig = Figure(
        figsize=(4.4 * ncols, (1.5 + 0.42 * len(cols)) * nrows + 0.5), layout="constrained"
    )
    grid = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharex=True)).ravel()
    for extra in grid[n:]:
        extra.set_axis_off()

    finite = diffs.to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    reach = max(1.0, float(np.abs(finite).max()) if finite.size else 1.0)
    if threshold is not None:
        reach = max(reach, float(threshold))
    lim = reach * 1.55  # room for the value labels beyond the longest bar
    y = np.arange(len(cols))
    labels = [axis_label(c) for c in cols]
    for pos, (ax, seg) in enumerate(zip(grid, segments, strict=False)):
        values = diffs.loc[seg].to_numpy(dtype=float)
        drawn = np.nan_to_num(values, nan=0.0)
        if threshold is not None:
            ax.axvspan(-threshold, threshold, color="0.92", zorder=0, linewidth=0)
        ax.axvline(0.0, color="0.35", linewidth=0.9, zorder=1)
        ax.barh(y, drawn, height=0.62, color=cluster_color(seg), gid=f"profile-{seg}", zorder=2)
        for yi, (d, m) in enumerate(zip(drawn, means.loc[seg].to_numpy(dtype=float), strict=True)):
            ax.annotate(
                _format_value(m),
                xy=(d, yi),
                xytext=(4 if d >= 0 else -4, 0),
                textcoords="offset points",
                ha="left" if d >= 0 else "right",
                va="center",
                fontsize="small",
            )
        ax.set_yticks(y, labels if pos % ncols == 0 else [""] * len(cols))
        ax.set_ylim(len(cols) - 0.5, -0.5)  # first column on top
        ax.set_xlim(-lim, lim)
        ax.grid(True, axis="x", alpha=0.3)
        ax.tick_params(axis="y", length=0)
        size = int(profiles.sizes.at[seg, "size"])
        share = float(profiles.sizes.at[seg, "share"])
        detail = f"n={size:,} ({share:.0%})"
        for column in profiles.categorical_columns:
            top = profiles.category_shares(column).loc[seg]
            if len(top):
                value = top.sort_values(ascending=False, kind="stable").index[0]
                detail += f" \u00b7 {value} {top[value]:.0%}"
        name = textwrap.fill(_segment_name(seg, labels_text), width=38)
        ax.set_title(f"{name}\n{detail}", fontsize="medium", color="0.1")
        # a coloured strip under the title ties the panel to the segment colour elsewhere
        ax.spines["top"].set_color(cluster_color(seg))
        ax.spines["top"].set_linewidth(4)
        if pos >= n - ncols:
            ax.set_xlabel("Std. difference from all customers")
            ax.tick_params(axis="x", labelbottom=True)
    fig.suptitle(title)
    return fig
