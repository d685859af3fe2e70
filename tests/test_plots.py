"""Tests for custseg.reporting.figures: structure and plotted values of every figure."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib import colormaps
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from custseg.reporting import figures as plots

# ----------------------------------------------------------------------------- fixtures

CENTERS = {0: (25.0, 20.0, 80.0), 1: (45.0, 55.0, 50.0), 2: (35.0, 90.0, 15.0)}
COLS3 = ["age", "annual_income", "spending_score"]


@pytest.fixture
def tiny() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Three clusters of 4 customers each (plus a non-numeric gender column)."""
    offsets = np.array([[-1.0, -2.0, 1.0], [1.0, 2.0, -1.0], [-2.0, 1.0, 2.0], [2.0, -1.0, -2.0]])
    rows, labels = [], []
    for cid, center in CENTERS.items():
        rows.append(np.asarray(center) + offsets)
        labels += [cid] * len(offsets)
    data = pd.DataFrame(np.vstack(rows), columns=COLS3)
    data["gender"] = ["Male", "Female"] * 6
    labels_arr = np.asarray(labels)
    centroids = data[COLS3].groupby(labels_arr).mean()
    return data, labels_arr, centroids


@pytest.fixture
def sweep_table() -> pd.DataFrame:
    """A sweep results table: two feature sets x k = 2..6."""
    recs = []
    for fs, scale in [("income_spending", 1.0), ("age_income_spending", 2.0)]:
        for k in range(2, 7):
            recs.append(
                {
                    "feature_set": fs,
                    "k": k,
                    "inertia": scale * 100.0 / k,
                    "silhouette": 0.3 + 0.05 * k / scale,
                    "calinski_harabasz": scale * 10.0 * k,
                    "davies_bouldin": 1.0 / (k * scale),
                }
            )
    return pd.DataFrame(recs)


# ----------------------------------------------------------------------------- helpers


def _all_texts(fig: Figure) -> list[str]:
    """Every visible string: titles, labels, tick labels, annotations, legends."""
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text()]


def _legend_texts(fig: Figure) -> list[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [t.get_text() for leg in legends for t in leg.get_texts()]


def _vlines_at(ax, x: float) -> list[Line2D]:
    """Dashed vertical lines (axvline) at data x."""
    return [
        line
        for line in ax.get_lines()
        if line.get_linestyle() == "--"
        and np.allclose(np.asarray(line.get_xdata(), dtype=float), x)
        and len(line.get_xdata()) == 2
    ]


def _points(ax, prefix: str = "segment-") -> dict[str, np.ndarray]:
    return {
        c.get_gid(): np.asarray(c.get_offsets())
        for c in ax.collections
        if isinstance(c, PathCollection) and (c.get_gid() or "").startswith(prefix)
    }


def _save_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# ----------------------------------------------------------------------------- helpers API


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("annual_income", "Annual income (k$)"),
        ("spending_score", "Spending score (1-100)"),
        ("age", "Age (years)"),
        ("tenure", "tenure"),
    ],
)
def test_axis_label(column: str, expected: str) -> None:
    assert plots.axis_label(column) == expected


@pytest.mark.parametrize("cluster", [0, 3, 9, 13])
def test_cluster_color_is_tab10_index(cluster: int) -> None:
    assert plots.cluster_color(cluster) == tuple(colormaps["tab10"](cluster % 10))


def test_module_does_not_import_pyplot() -> None:
    code = "import sys, custseg.reporting.figures; sys.exit('matplotlib.pyplot' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ----------------------------------------------------------------------------- elbow


def test_elbow_plot_curve_selected_line_and_annotation() -> None:
    ks, inertias = [4, 2, 3, 5, 6], [40.0, 100.0, 60.0, 30.0, 25.0]  # unsorted on purpose
    fig = plots.elbow_plot(ks, inertias, selected_k=4)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    curve = next(line for line in ax.get_lines() if line.get_label() == "inertia")
    np.testing.assert_array_equal(curve.get_xdata(), [2, 3, 4, 5, 6])
    np.testing.assert_array_equal(curve.get_ydata(), [100.0, 60.0, 40.0, 30.0, 25.0])
    assert len(_vlines_at(ax, 4)) == 1
    assert not _vlines_at(ax, 5)
    assert "selected k = 4" in [t.get_text() for t in ax.texts]
    assert fig.get_suptitle() == "Elbow method"
    assert ax.get_xlabel() == "Number of clusters k"
    assert ax.get_ylabel().startswith("Inertia")


def test_elbow_plot_without_selection_has_no_vertical_line() -> None:
    fig = plots.elbow_plot([2, 3, 4], [9.0, 5.0, 4.0], selected_k=None, title="Custom")
    ax = fig.axes[0]
    assert all(len(line.get_xdata()) != 2 or line.get_linestyle() != "--" for line in ax.lines)
    assert not any("selected" in t for t in _all_texts(fig))
    assert fig.get_suptitle() == "Custom"


def test_elbow_plot_picks_strip() -> None:
    picks = {"elbow": 3, "silhouette": 4, "davies_bouldin": None}
    fig = plots.elbow_plot([2, 3, 4, 5], [9.0, 5.0, 4.0, 3.5], selected_k=3, picks=picks)
    assert len(fig.axes) == 2
    strip, main = fig.axes
    labels = [t.get_text() for t in strip.get_yticklabels()]
    assert labels == ["elbow: 3", "silhouette: 4", "davies_bouldin: none"]
    # One marker per non-None pick, at the picked k, on the row of its label.
    markers = [line for line in strip.get_lines() if line.get_marker() == "v"]
    row_of = {t.get_text(): t.get_position()[1] for t in strip.get_yticklabels()}
    got = sorted((float(m.get_xdata()[0]), float(m.get_ydata()[0])) for m in markers)
    assert got == sorted([(3.0, row_of["elbow: 3"]), (4.0, row_of["silhouette: 4"])])
    # The selected k line crosses both panels.
    assert _vlines_at(strip, 3) and _vlines_at(main, 3)


def test_elbow_plot_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        plots.elbow_plot([2, 3, 4], [1.0, 2.0], selected_k=3)


# ----------------------------------------------------------------------------- metrics vs k


@pytest.mark.parametrize(
    ("metrics", "n_axes"),
    [
        (("inertia", "silhouette", "calinski_harabasz", "davies_bouldin"), 4),
        (("silhouette", "davies_bouldin", "inertia"), 3),
        (("silhouette",), 1),
    ],
)
def test_metrics_vs_k_axes_count(sweep_table: pd.DataFrame, metrics, n_axes: int) -> None:
    fig = plots.metrics_vs_k_plot(sweep_table, metrics=metrics)
    assert len(fig.axes) == n_axes


def test_metrics_vs_k_default_grid_is_2x2(sweep_table: pd.DataFrame) -> None:
    fig = plots.metrics_vs_k_plot(sweep_table)
    geometries = {ax.get_subplotspec().get_geometry()[:2] for ax in fig.axes}
    assert geometries == {(2, 2)}


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("silhouette", "higher is better"),
        ("calinski_harabasz", "higher is better"),
        ("davies_bouldin", "lower is better"),
        ("inertia", "lower is better"),
    ],
)
def test_metrics_vs_k_titles_state_direction(
    sweep_table: pd.DataFrame, metric: str, direction: str
) -> None:
    fig = plots.metrics_vs_k_plot(sweep_table, metrics=[metric])
    assert direction in fig.axes[0].get_title()


def test_metrics_vs_k_one_line_per_group_with_table_values(sweep_table: pd.DataFrame) -> None:
    fig = plots.metrics_vs_k_plot(sweep_table, selected_k=4)
    default_metrics = ["inertia", "silhouette", "calinski_harabasz", "davies_bouldin"]
    for ax, metric in zip(fig.axes, default_metrics, strict=True):
        data_lines = [line for line in ax.get_lines() if line.get_linestyle() != "--"]
        assert sorted(line.get_label() for line in data_lines) == [
            "age_income_spending",
            "income_spending",
        ]
        for line in data_lines:
            expected = sweep_table[sweep_table["feature_set"] == line.get_label()]
            np.testing.assert_array_equal(line.get_xdata(), expected["k"])
            np.testing.assert_allclose(line.get_ydata(), expected[metric])
        assert len(_vlines_at(ax, 4)) == 1
    legend = _legend_texts(fig)
    assert {"age_income_spending", "income_spending", "selected k = 4"} <= set(legend)
    # A group keeps its colour in every subplot.
    colors = {
        line.get_label(): line.get_color()
        for line in fig.axes[0].get_lines()
        if line.get_linestyle() != "--"
    }
    for ax in fig.axes[1:]:
        for line in ax.get_lines():
            if line.get_linestyle() != "--":
                assert line.get_color() == colors[line.get_label()]


def test_metrics_vs_k_without_group_column_draws_one_averaged_line(
    sweep_table: pd.DataFrame,
) -> None:
    fig = plots.metrics_vs_k_plot(sweep_table, metrics=["inertia"], group_column=None)
    (line,) = fig.axes[0].get_lines()
    expected = sweep_table.groupby("k")["inertia"].mean()
    np.testing.assert_array_equal(line.get_xdata(), expected.index)
    np.testing.assert_allclose(line.get_ydata(), expected.to_numpy())


def test_metrics_vs_k_missing_column_raises(sweep_table: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="gap_statistic"):
        plots.metrics_vs_k_plot(sweep_table, metrics=["silhouette", "gap_statistic"])


# ----------------------------------------------------------------------------- cluster scatter


def test_cluster_scatter_two_columns(tiny) -> None:
    data, labels, centroids = tiny
    cols = ["annual_income", "spending_score"]
    fig = plots.cluster_scatter(data, labels, centroids, columns=cols)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    pts = _points(ax)
    assert sorted(pts) == ["segment-0", "segment-1", "segment-2"]
    assert sum(len(p) for p in pts.values()) == len(data) == 12
    for cid in CENTERS:
        np.testing.assert_allclose(pts[f"segment-{cid}"], data.loc[labels == cid, cols])
    (cent,) = _points(ax, "centroids").values()
    np.testing.assert_allclose(cent, centroids[cols])
    assert ax.get_xlabel() == "Annual income (k$)"
    assert ax.get_ylabel() == "Spending score (1-100)"
    assert _legend_texts(fig) == [
        "segment 0 (n=4)",
        "segment 1 (n=4)",
        "segment 2 (n=4)",
        "centroid",
    ]


def test_cluster_scatter_colors_follow_cluster_ids(tiny) -> None:
    data, labels, _ = tiny
    fig = plots.cluster_scatter(data, labels + 3, columns=["age", "spending_score"])
    for gid, coll in {c.get_gid(): c for c in fig.axes[0].collections}.items():
        cid = int(gid.split("-")[1])
        np.testing.assert_allclose(coll.get_facecolor()[0][:3], plots.cluster_color(cid)[:3])


def test_cluster_scatter_labels_text_and_default_columns(tiny) -> None:
    data, labels, centroids = tiny
    names = {0: "young spenders", 2: "careful earners"}
    fig = plots.cluster_scatter(data, labels, centroids, labels_text=names, title="Segments")
    legend = _legend_texts(fig)
    assert "young spenders (n=4)" in legend
    assert "segment 1 (n=4)" in legend
    assert "careful earners (n=4)" in legend
    assert fig.get_suptitle() == "Segments"
    # Default columns: the three numeric ones (gender is skipped) -> 3x3 grid.
    assert len(fig.axes) == 9


def test_cluster_scatter_pairwise_grid(tiny) -> None:
    data, labels, centroids = tiny
    fig = plots.cluster_scatter(data, labels, centroids, columns=COLS3)
    assert len(fig.axes) == 9
    grid = np.array(fig.axes).reshape(3, 3)
    for i in range(3):
        for j in range(3):
            ax = grid[i, j]
            if j > i:
                assert not ax.axison
            elif i == j:
                assert not _points(ax)
                assert len(ax.patches) == 2 * len(CENTERS)  # filled + outline stairs each
                total = sum(p.get_data().values.sum() for p in ax.patches[::2])
                assert total == len(data)
            else:
                pts = _points(ax)
                assert sum(len(p) for p in pts.values()) == 12
                np.testing.assert_allclose(
                    pts["segment-1"], data.loc[labels == 1, [COLS3[j], COLS3[i]]]
                )
                (cent,) = _points(ax, "centroids").values()
                np.testing.assert_allclose(cent, centroids[[COLS3[j], COLS3[i]]])
    assert grid[2, 0].get_xlabel() == "Age (years)"
    assert grid[2, 0].get_ylabel() == "Spending score (1-100)"


def test_cluster_scatter_one_column_strip(tiny) -> None:
    data, labels, centroids = tiny
    fig = plots.cluster_scatter(data, labels, centroids, columns=["age"])
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    pts = _points(ax)
    assert sum(len(p) for p in pts.values()) == 12
    for row, cid in enumerate(CENTERS):
        xy = pts[f"segment-{cid}"]
        np.testing.assert_allclose(xy[:, 0], data.loc[labels == cid, "age"])
        assert np.all(np.abs(xy[:, 1] - row) < 0.5)  # jitter stays within its row
    (cent,) = _points(ax, "centroids").values()
    np.testing.assert_allclose(cent[:, 0], centroids["age"])
    assert ax.get_xlabel() == "Age (years)"


def test_cluster_scatter_subsamples_but_legend_uses_full_sizes() -> None:
    rng = np.random.default_rng(1)
    sizes = {0: 12_000, 1: 5_000, 2: 3_000}
    labels = np.concatenate([np.full(n, cid) for cid, n in sizes.items()])
    data = pd.DataFrame(
        {
            "annual_income": rng.normal(60, 20, labels.size),
            "spending_score": rng.normal(50, 20, labels.size),
        }
    )
    fig = plots.cluster_scatter(data, labels, max_points=500)
    pts = _points(fig.axes[0])
    assert sum(len(p) for p in pts.values()) == 500
    assert all(len(p) > 0 for p in pts.values())
    assert _legend_texts(fig) == ["segment 0 (n=12000)", "segment 1 (n=5000)", "segment 2 (n=3000)"]
    assert "500 of 20,000" in fig.get_suptitle()
    # Drawn points are real rows of their own segment, and the subsample is deterministic.
    for cid in sizes:
        own = data.loc[labels == cid].to_numpy()
        drawn = pts[f"segment-{cid}"]
        assert (drawn[:, None, :] == own[None, :, :]).all(axis=2).any(axis=1).all()
    again = _points(plots.cluster_scatter(data, labels, max_points=500).axes[0])
    for gid in pts:
        np.testing.assert_array_equal(pts[gid], again[gid])


def test_cluster_scatter_of_a_sample_counts_every_customer() -> None:
    """A table Spark holds is drawn from the driver's sample: the legend and the title
    count every customer (``sizes``), and a segment no sampled customer is in keeps its
    legend entry."""
    rng = np.random.default_rng(2)
    labels = np.repeat([4, 9], [300, 100])
    data = pd.DataFrame({"x": rng.normal(size=400), "y": rng.normal(size=400)})
    sizes = {4: 600_000, 9: 399_000, 17: 1_000}
    fig = plots.cluster_scatter(data, labels, max_points=200, sizes=sizes)
    assert _legend_texts(fig) == [
        "segment 4 (n=600000)",
        "segment 9 (n=399000)",
        "segment 17 (n=1000)",
    ]
    assert "200 of 1,000,000 customers drawn" in fig.get_suptitle()
    assert sum(len(p) for p in _points(fig.axes[0]).values()) == 200


@pytest.mark.parametrize(
    ("sizes", "count_label"),
    [
        (None, "Count"),
        ({0: 4, 1: 4, 2: 4}, "Count"),
        ({0: 40, 1: 4, 2: 4}, "Count (12-row sample)"),
    ],
)
def test_grid_histograms_say_when_they_count_a_sample(tiny, sizes, count_label) -> None:
    # the diagonal counts the rows given: a Spark table's sample, not its customers
    data, labels, centroids = tiny
    fig = plots.cluster_scatter(data, labels, centroids, columns=COLS3, sizes=sizes)
    grid = np.array(fig.axes).reshape(3, 3)
    assert grid[0, 0].get_ylabel() == count_label


@pytest.mark.parametrize("n_points", [10, 5000])
def test_cluster_scatter_under_cap_draws_everything(n_points: int) -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, n_points)
    data = pd.DataFrame(rng.normal(size=(n_points, 2)), columns=["x", "y"])
    fig = plots.cluster_scatter(data, labels, max_points=5000)
    assert sum(len(p) for p in _points(fig.axes[0]).values()) == n_points
    assert fig.axes[0].get_xlabel() == "x"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"columns": ["gender"]}, "not numeric"),
        ({"columns": ["income"]}, "lacks column"),
        ({"max_points": 0}, "max_points"),
    ],
)
def test_cluster_scatter_rejects_bad_arguments(tiny, kwargs, match: str) -> None:
    data, labels, _ = tiny
    with pytest.raises(ValueError, match=match):
        plots.cluster_scatter(data, labels, **kwargs)


def test_cluster_scatter_rejects_label_length_mismatch(tiny) -> None:
    data, labels, _ = tiny
    with pytest.raises(ValueError, match="labels"):
        plots.cluster_scatter(data, labels[:-1])


# ----------------------------------------------------------------------------- silhouette


def test_silhouette_diagram_bands_mean_line_and_ids() -> None:
    labels = np.repeat([0, 1, 2], [4, 4, 6])
    sil = np.array([0.5, 0.7, 0.6, 0.8, 0.1, -0.05, 0.3, 0.2, 0.9, 0.85, 0.4, 0.6, 0.7, 0.75])
    fig = plots.silhouette_diagram(sil, labels)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    bands = {c.get_gid(): c for c in ax.collections if isinstance(c, PolyCollection)}
    assert sorted(bands) == ["segment-0", "segment-1", "segment-2"]
    for cid, size in [(0, 4), (1, 4), (2, 6)]:
        verts = bands[f"segment-{cid}"].get_paths()[0].vertices
        assert np.ptp(verts[:, 1]) == pytest.approx(size)  # band height = cluster size
        assert verts[:, 0].max() == pytest.approx(sil[labels == cid].max())
        assert verts[:, 0].min() == pytest.approx(min(0.0, sil[labels == cid].min()))
    mean = sil.mean()
    red = [line for line in _vlines_at(ax, mean) if line.get_color() == "red"]
    assert len(red) == 1
    assert f"mean silhouette = {mean:.3f}" in _legend_texts(fig)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2"]
    assert ax.get_xlim()[0] <= -0.1


def test_silhouette_diagram_bounds_vertices_for_large_clusters() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 100_000)
    sil = rng.uniform(-0.2, 0.9, labels.size)
    fig = plots.silhouette_diagram(sil, labels, title="big")
    assert fig.axes[0].get_title() == "big"
    for coll in fig.axes[0].collections:
        if isinstance(coll, PolyCollection):
            verts = coll.get_paths()[0].vertices
            assert len(verts) < 5000
            size = int((labels == int(coll.get_gid().split("-")[1])).sum())
            assert np.ptp(verts[:, 1]) == pytest.approx(size)


def test_silhouette_diagram_rejects_length_mismatch() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        plots.silhouette_diagram(np.zeros(3), np.zeros(4))


# ----------------------------------------------------------------------------- saving


FIGURE_FACTORIES = {
    "elbow": lambda d, lab, c: plots.elbow_plot([2, 3, 4], [9.0, 5.0, 4.0], 3, picks={"sil": 3}),
    "metrics": lambda d, lab, c: plots.metrics_vs_k_plot(
        pd.DataFrame({"k": [2, 3, 4], "inertia": [9.0, 5.0, 4.0], "silhouette": [0.4, 0.6, 0.5]}),
        metrics=["inertia", "silhouette"],
        selected_k=3,
    ),
    "scatter1": lambda d, lab, c: plots.cluster_scatter(d, lab, c, columns=["age"]),
    "scatter2": lambda d, lab, c: plots.cluster_scatter(d, lab, c, columns=COLS3[1:]),
    "scatter3": lambda d, lab, c: plots.cluster_scatter(d, lab, c),
    "silhouette": lambda d, lab, c: plots.silhouette_diagram(np.linspace(-0.1, 0.9, 12), lab),
}


@pytest.mark.parametrize("name", sorted(FIGURE_FACTORIES))
def test_figures_save_to_png(tiny, name: str) -> None:
    fig = FIGURE_FACTORIES[name](*tiny)
    assert isinstance(fig, Figure)
    png = _save_png(fig)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 1000


@pytest.mark.parametrize("seed", range(5))
def test_segment_histograms_are_numpys(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(50, 20, 3000), int(rng.integers(0, 2)))
    values[rng.integers(0, 3000, 20)] = np.nan
    codes = rng.integers(0, 4, 3000)
    edges = plots._hist_edges(values)
    counts = plots._histograms(values, codes, 4, edges)
    for i in range(4):
        own = values[codes == i]
        expected, _ = np.histogram(own[np.isfinite(own)], bins=edges)
        np.testing.assert_array_equal(counts[i], expected)
    inner = edges[1:-1]  # values on the edges, and beyond them (not counted)
    on_edges = np.concatenate([edges, [edges[0] - 1, edges[-1] + 1]])
    counts = plots._histograms(on_edges, np.zeros(len(on_edges), dtype=int), 1, edges)
    np.testing.assert_array_equal(counts[0], np.histogram(on_edges, bins=edges)[0])
    assert counts.sum() == len(inner) + 2


@pytest.mark.parametrize(
    "values",
    [
        np.array([1e16, 1e16 + 2, 1e16 + 4]),  # edges that repeat
        1.86678978e12 + np.random.default_rng(1).normal(0, 1e-4, 20),
        np.full(5, 1e17),  # no edges at all
    ],
)
def test_segment_histograms_of_values_too_close_for_their_magnitude(values) -> None:
    codes = np.arange(len(values)) % 2
    edges = plots._hist_edges(values)
    counts = plots._histograms(values, codes, 2, edges)
    for i in range(2):
        np.testing.assert_array_equal(counts[i], np.histogram(values[codes == i], edges)[0])
