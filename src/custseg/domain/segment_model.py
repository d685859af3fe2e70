"""A fitted segmentation as plain data: transforms, scaler, encoder, centroids, segment ids
and names.

:class:`SegmentModel` is the one description of a model that everything shares: the
select stage writes it (``models/segmentation.json``, tracked by DVC), the MLflow pyfunc
model scores with it, the segment catalog (the promoted champion, tracked by git) is one,
and its :attr:`~SegmentModel.fingerprint` identifies a model in the registry.

It serialises to canonical JSON (sorted keys, floats rounded to :data:`SIGNIFICANT_DIGITS`
significant digits), so the same fit always gives the same bytes, whatever the run, the
host or the time. This module needs only numpy and pandas: it is shipped inside every
logged model and loads in a fresh environment without custseg or scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

#: name of the JSON description among a logged model's artifacts
ARTIFACT_KEY = "segment_model"
#: the artifact of a registered model with its reference profile (custseg-monitor's baseline)
REFERENCE_KEY = "reference_profile"
#: format version of the JSON description
FORMAT_VERSION = 1
#: floats are stored with this many significant digits: far below any segment boundary
#: that matters, far above the last-bit noise of a parallel floating-point sum
SIGNIFICANT_DIGITS = 10


def squared_distances(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared distance of every row of ``X`` to every row of ``centres``, ``(n, k)``.

    The squares are added one column after another, in column order, whatever the
    arrays' memory layout (numpy's ``sum`` adds in blocks or in a row depending on it):
    so the engine scoring in Spark adds them in the same order and gets the same bits.
    """
    X = np.asarray(X, dtype=float)
    centres = np.asarray(centres, dtype=float)
    out = np.zeros((X.shape[0], centres.shape[0]))
    for j in range(X.shape[1]):
        diff = X[:, j, None] - centres[None, :, j]
        out += diff * diff
    return out


def nearest_centres(
    X: np.ndarray, centres: np.ndarray, chunk: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of every row of ``X`` (ties: the lower one) and its squared distance,
    ``chunk`` rows at a time (bounded memory). The one nearest-centre rule of every model
    (fits, refits and scoring)."""
    rows = np.empty(len(X), dtype=np.int64)
    best = np.empty(len(X), dtype=float)
    for start in range(0, len(X), chunk):
        distances = squared_distances(X[start : start + chunk], centres)
        rows[start : start + len(distances)] = distances.argmin(axis=1)
        best[start : start + len(distances)] = distances.min(axis=1)
    return rows, best


#: per-column transforms a model applies before its scaler (``"none"`` is no entry at all)
TRANSFORM_KINDS = ("log1p", "quantile", "rfm_score")
#: number of stored edges of an ``rfm_score`` transform (scores 1..5)
RFM_EDGES = 4


def uniform_ranks(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Ranks in ``[0, 1]`` of ``values`` among reference ``quantiles`` (non-decreasing).

    As scikit-learn's ``QuantileTransformer(output_distribution="uniform")``: linear
    interpolation onto an even grid of ``[0, 1]``, averaged in both directions so that
    repeated quantiles (ties) map to the middle of their run; the lowest quantile maps to
    0, the highest to 1, and values outside the reference range are clipped.
    """
    x = np.asarray(values, dtype=float)
    grid = np.linspace(0.0, 1.0, len(quantiles))
    ranks = 0.5 * (np.interp(x, quantiles, grid) - np.interp(-x, -quantiles[::-1], -grid[::-1]))
    ranks[x == quantiles[-1]] = 1.0
    ranks[x == quantiles[0]] = 0.0
    return ranks


def rfm_bins(values: np.ndarray, edges: list[float | None]) -> np.ndarray:
    """Score 1 plus the number of ``edges`` that ``values`` exceed (``None``: always)."""
    x = np.asarray(values, dtype=float)
    scores = np.ones(len(x))
    for edge in edges:
        scores += np.ones(len(x)) if edge is None else x > edge
    return scores


def apply_transform(spec: Mapping[str, Any], values: np.ndarray) -> np.ndarray:
    """``values`` of one column through the fitted transform ``spec``.

    Parameters
    ----------
    spec : mapping
        ``{"kind": "log1p"}``, ``{"kind": "quantile", "quantiles": [...]}`` or
        ``{"kind": "rfm_score", "edges": [e2, e3, e4, e5]}`` (see
        :attr:`SegmentModel.transforms`).
    values : ndarray of shape (n,)
    """
    kind = spec["kind"]
    if kind == "log1p":
        return np.log1p(np.asarray(values, dtype=float))
    if kind == "quantile":
        return uniform_ranks(values, np.asarray(spec["quantiles"], dtype=float))
    if kind == "rfm_score":
        return rfm_bins(values, spec["edges"])
    raise ValueError(f"unknown transform {kind!r}; choose one of {TRANSFORM_KINDS}")


def invert_transform(spec: Mapping[str, Any], values: np.ndarray) -> np.ndarray:
    """Transformed ``values`` back to the column's units: ``expm1`` for ``log1p``, the
    reference quantiles interpolated at the rank for ``quantile``; an ``rfm_score`` is a
    bin, not a value, so a score stays a score (1..5)."""
    x = np.asarray(values, dtype=float)
    if spec["kind"] == "log1p":
        return np.expm1(x)
    if spec["kind"] == "quantile":
        quantiles = np.asarray(spec["quantiles"], dtype=float)
        return np.interp(x, np.linspace(0.0, 1.0, len(quantiles)), quantiles)
    return x


def transform_problem(spec: Mapping[str, Any]) -> str | None:
    """Why ``spec`` is not a fitted transform :func:`apply_transform` can apply, if it isn't."""
    kind = spec.get("kind")
    if kind not in TRANSFORM_KINDS:
        return f"kind {kind!r} is not one of {TRANSFORM_KINDS}"
    if kind == "quantile":
        quantiles = np.asarray(spec.get("quantiles", []), dtype=float)
        if len(quantiles) == 0 or np.any(np.diff(quantiles) < 0):
            return "quantile needs a non-empty, non-decreasing list of quantiles"
    if kind == "rfm_score":
        edges = spec.get("edges", [])
        if len(edges) != RFM_EDGES:
            return f"rfm_score needs {RFM_EDGES} edges (null: every value passes it)"
    return None


def _canonical_transform(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` as plain JSON values. Its numbers are data values or fixed interpolations
    of them (no parallel sum, so no last-bit noise): they are stored exactly, never
    rounded, so a training value equal to an edge stays on the same side of it."""
    kind = spec.get("kind")
    out: dict[str, Any] = {"kind": kind if kind is None else str(kind)}
    if "quantiles" in spec:
        out["quantiles"] = [float(q) for q in spec["quantiles"]]
    if "edges" in spec:
        out["edges"] = [None if e is None else float(e) for e in spec["edges"]]
    return out


class InputError(ValueError):
    """Rows a model refuses to score (outside the schema's ranges or allowed values)."""


#: the columns :meth:`SegmentModel.score` returns (``persona`` when the model has personas)
SEGMENT_COLUMN = "segment"
SEGMENT_NAME_COLUMN = "segment_name"
PERSONA_COLUMN = "persona"
#: offending rows a message shows
_SHOWN_PROBLEMS = 5


def _numeric_checks(
    values: pd.Series, bounds: list[float | None] | None, transform: str | None = None
) -> list[tuple[np.ndarray, str]]:
    absent = values.isna().to_numpy()
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(numbers)
    checks = [(absent, "missing"), (~absent & ~finite, "not a finite number")]
    low, high = bounds if bounds is not None else (None, None)
    with np.errstate(invalid="ignore"):
        if low is not None:
            checks.append((finite & (numbers < low), f"below the minimum {low:g}"))
        if high is not None:
            checks.append((finite & (numbers > high), f"above the maximum {high:g}"))
        if transform == "log1p":
            checks.append((finite & (numbers < 0), "below 0, and its log1p transform needs >= 0"))
    return checks


def _categorical_checks(
    values: pd.Series, allowed: list[str] | None
) -> list[tuple[np.ndarray, str]]:
    absent = values.isna().to_numpy()
    checks = [(absent, "missing")]
    if allowed is not None:
        unknown = ~absent & ~values.astype("string").isin(allowed).to_numpy(dtype=bool)
        checks.append((unknown, f"not among the allowed values {list(allowed)}"))
    return checks


def _add_reason(
    reasons: pd.Series, mask: np.ndarray, column: str, values: pd.Series, why: str
) -> None:
    """Append ``column=<value>: why`` to the reasons of the rows in ``mask``."""
    if not mask.any():
        return
    shown = values.to_numpy(dtype=object)[mask]
    text = [f"{column}: {why}" if pd.isna(v) else f"{column}={v!r}: {why}" for v in shown]
    before = reasons.to_numpy(dtype=object)[mask]
    reasons.iloc[np.flatnonzero(mask)] = [
        f"{b}; {t}" if b else t for b, t in zip(before, text, strict=True)
    ]


def _problems_message(problems: pd.Series, n_rows: int) -> str:
    shown = "; ".join(f"row {row}: {why}" for row, why in problems.iloc[:_SHOWN_PROBLEMS].items())
    more = len(problems) - _SHOWN_PROBLEMS
    return f"{len(problems)} of {n_rows} rows cannot be scored (rows are 0-based): {shown}" + (
        f"; and {more} more rows" if more > 0 else ""
    )


def round_significant(value: float) -> float:
    """``value`` rounded to :data:`SIGNIFICANT_DIGITS` significant digits.

    What a tracked output stores of a float that a parallel sum computed (centroids,
    inertia): the last bits of such a sum depend on the number of threads, the rounded
    value does not.
    """
    return float(f"{float(value):.{SIGNIFICANT_DIGITS}g}")


def _round_all(values: Any) -> Any:
    if isinstance(values, list | tuple | np.ndarray):
        return [_round_all(v) for v in values]
    return round_significant(values)


@dataclass(frozen=True)
class SegmentModel:
    """Nearest-centroid scoring of customers in a scaled, one-hot encoded feature space.

    Parameters
    ----------
    feature_set : str
        Name of the feature set, e.g. ``"income_spending"``.
    numeric : list of str
        Numeric input columns, scaled as ``(x - center) / scale``.
    categorical : list of str
        Categorical input columns, one-hot encoded over ``categories`` (an unknown
        category encodes as all zeros).
    center, scale : list of float
        Per numeric column.
    categories : dict of str to list of str
        Known categories of each categorical column, in encoding order.
    centroids : list of list of float
        One row per segment, in the encoded space (numeric columns first).
    segments : list of int
        Segment id of each centroid row (stable across versions, see
        :mod:`custseg.domain.identity`).
    names : list of str
        Segment name of each centroid row.
    data_sha256 : str
        Hash of the table the model was fitted on (part of its identity).
    scaler : str
        Name of the scaler the parameters came from (informative).
    categorical_scale : float
        Factor of the one-hot columns (the weight of categorical columns, see
        :func:`custseg.domain.features.categorical_scale`); left out of the JSON when 1.
    limits : dict of str to [min, max]
        Inclusive bounds of numeric input columns (``None``: unbounded), from the data
        schema: :meth:`score` refuses a row outside them. Left out of the JSON when empty.
    allowed : dict of str to list of str
        Allowed values of categorical input columns, from the data schema (may include
        categories the fit never saw); left out of the JSON when empty.
    transforms : dict of str to dict
        Fitted transform of numeric input columns, applied before ``(x - center) /
        scale`` (:func:`apply_transform`): ``{"kind": "log1p"}``, ``{"kind":
        "quantile", "quantiles": [...]}`` (reference quantiles at an even grid of ranks
        ``0..1``) or ``{"kind": "rfm_score", "edges": [e2, e3, e4, e5]}`` (score 1 plus the
        number of edges a value exceeds; ``null``: every value does). A column without
        one is only scaled. Left out of the JSON when empty.
    personas : list of str
        Persona of each centroid row (``"Careful"``), unique within the model; carried
        with the segment's id while the segment still meets the persona's rule (see
        :mod:`custseg.domain.identity`). Left out of the JSON when empty (models written
        before personas were stored).
    levels : list of dict of str to str
        Level word (``"low"``, ``"mid"``, ``"high"``) of each profiled numeric column per
        centroid row, as the name reads it: what the next version's names start from
        (hysteresis). Left out of the JSON when empty.
    next_id : int
        The smallest id a new segment of a later version may take: above every id this
        model's line of versions has given out, so an id dropped on the way is never
        given to another segment. Stored (and kept in the JSON) only when above the
        largest id plus one; see :attr:`first_free_id`.
    """

    feature_set: str
    numeric: list[str]
    categorical: list[str]
    center: list[float]
    scale: list[float]
    categories: dict[str, list[str]]
    centroids: list[list[float]]
    segments: list[int]
    names: list[str]
    data_sha256: str = ""
    scaler: str = "standard"
    format_version: int = field(default=FORMAT_VERSION)
    categorical_scale: float = 1.0
    limits: dict[str, list[float | None]] = field(default_factory=dict)
    allowed: dict[str, list[str]] = field(default_factory=dict)
    transforms: dict[str, dict[str, Any]] = field(default_factory=dict)
    personas: list[str] = field(default_factory=list)
    levels: list[dict[str, str]] = field(default_factory=list)
    next_id: int = 0

    def __post_init__(self) -> None:
        # canonical from the start: the model in memory scores exactly like its JSON
        for key in ("center", "scale", "centroids", "categorical_scale"):
            object.__setattr__(self, key, _round_all(getattr(self, key)))
        transforms = {str(c): _canonical_transform(t) for c, t in self.transforms.items()}
        object.__setattr__(self, "transforms", transforms)
        object.__setattr__(self, "segments", [int(s) for s in self.segments])
        above = max(self.segments, default=-1) + 1
        object.__setattr__(self, "next_id", int(self.next_id) if self.next_id > above else 0)
        k = len(self.centroids)
        if not (len(self.segments) == len(self.names) == k) or k == 0:
            raise ValueError(
                f"a segment model needs one id and one name per centroid: {k} centroids, "
                f"{len(self.segments)} ids, {len(self.names)} names"
            )
        if len(set(self.segments)) != k:
            raise ValueError(f"segment ids must be distinct, got {self.segments}")
        for key in ("personas", "levels"):
            if getattr(self, key) and len(getattr(self, key)) != k:
                raise ValueError(f"{key} need one entry per centroid (or none)")
        if len(self.center) != len(self.numeric) or len(self.scale) != len(self.numeric):
            raise ValueError("center and scale need one value per numeric column")
        width = len(self.numeric) + sum(len(self.categories[c]) for c in self.categorical)
        if any(len(row) != width for row in self.centroids):
            raise ValueError(f"every centroid needs {width} coordinates")
        if not set(self.limits) <= set(self.numeric) or any(
            len(bounds) != 2 for bounds in self.limits.values()
        ):
            raise ValueError("limits need [min, max] per numeric input column")
        if not set(self.allowed) <= set(self.categorical):
            raise ValueError("allowed values are for categorical input columns only")
        if not set(self.transforms) <= set(self.numeric):
            raise ValueError("transforms are for numeric input columns only")
        for column, spec in self.transforms.items():
            if problem := transform_problem(spec):
                raise ValueError(f"transform of {column!r}: {problem}")

    # ----------------------------------------------------------------- properties
    @property
    def columns(self) -> list[str]:
        """Input columns, numeric first."""
        return [*self.numeric, *self.categorical]

    @property
    def k(self) -> int:
        return len(self.centroids)

    @property
    def segment_names(self) -> dict[int, str]:
        """Segment id -> name, ascending ids."""
        return dict(sorted(zip(self.segments, self.names, strict=True)))

    @property
    def first_free_id(self) -> int:
        """The smallest id a new segment of a later version may take (:attr:`next_id`)."""
        return max(self.next_id, max(self.segments) + 1)

    @property
    def segment_personas(self) -> dict[int, str]:
        """Segment id -> persona, ascending ids (empty for a model without personas)."""
        if not self.personas:
            return {}
        return dict(sorted(zip(self.segments, self.personas, strict=True)))

    @property
    def segment_levels(self) -> dict[int, dict[str, str]]:
        """Segment id -> level word per column (empty for a model without levels)."""
        if not self.levels:
            return {}
        return dict(sorted(zip(self.segments, self.levels, strict=True)))

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON: equal for equal models (and equal data)."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    # ------------------------------------------------------------------- scoring
    def transform(self, table: pd.DataFrame) -> np.ndarray:
        """The encoded feature matrix of ``table`` (columns by name; others ignored)."""
        missing = [c for c in self.columns if c not in table.columns]
        if missing:
            raise KeyError(f"the table lacks column(s) {missing} that the model uses")
        parts = []
        if self.numeric:
            parts.append(self.encode_numeric(table[self.numeric].to_numpy(dtype=float)))
        for column in self.categorical:
            parts.append(self._one_hot(table[column], self.categories[column]))
        return np.hstack(parts) if parts else np.empty((len(table), 0))

    def _one_hot(self, values: pd.Series, categories: list[str]) -> np.ndarray:
        """``values`` (as text) one-hot over ``categories``, times :attr:`categorical_scale`;
        a value outside them (or missing) is a row of zeros."""
        # factorized first: a few distinct values to look up, not one string per row
        codes, distinct = pd.factorize(values)
        position = {category: i for i, category in enumerate(categories)}
        # the last entry is the code of a missing value (-1)
        lookup = np.array([position.get(str(v), -1) for v in distinct] + [-1], dtype=np.int64)
        columns = lookup[codes]
        out = np.zeros((len(values), len(categories)))
        known = columns >= 0
        out[np.flatnonzero(known), columns[known]] = self.categorical_scale
        return out

    def encode_numeric(self, values: np.ndarray, transformed: bool = False) -> np.ndarray:
        """Numeric input columns ``(n, len(numeric))`` in the encoded space: each column
        through its transform, then ``(x - center) / scale``.

        Parameters
        ----------
        transformed : bool
            The values are already transformed where a transform has no inverse (an
            ``rfm_score`` column holds scores, as :meth:`centroid_table` gives them).
        """
        out = np.array(values, dtype=float)
        for i, column in enumerate(self.numeric):
            spec = self.transforms.get(column)
            if spec is not None and not (transformed and spec["kind"] == "rfm_score"):
                out[:, i] = apply_transform(spec, out[:, i])
        return (out - np.asarray(self.center)) / np.asarray(self.scale)

    def decode_numeric(self, encoded: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`encode_numeric` (``transformed=True``): encoded numeric
        coordinates back to the columns' units (scores for ``rfm_score`` columns)."""
        out = np.asarray(encoded, dtype=float) * np.asarray(self.scale) + np.asarray(self.center)
        for i, column in enumerate(self.numeric):
            if column in self.transforms:
                out[:, i] = invert_transform(self.transforms[column], out[:, i])
        return out

    @property
    def transform_kinds(self) -> dict[str, str]:
        """Each transformed numeric column's transform kind, in column order (as a feature
        set's ``transforms``)."""
        return {c: self.transforms[c]["kind"] for c in self.numeric if c in self.transforms}

    @property
    def score_columns(self) -> list[str]:
        """Numeric columns with an ``rfm_score`` transform: :meth:`centroid_table` gives
        their scores (1..5), not values in the column's units."""
        return [c for c, t in self.transforms.items() if t["kind"] == "rfm_score"]

    def distances(self, table: pd.DataFrame) -> np.ndarray:
        """Squared distance of every row to every centroid, shape ``(n_rows, k)``."""
        return squared_distances(self.transform(table), np.asarray(self.centroids, dtype=float))

    def nearest(self, table: pd.DataFrame, chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
        """Nearest centroid row of every customer (ties: the lower row) and its squared distance.

        Encodes ``chunk`` rows at a time, so memory stays bounded on large tables.
        """
        centroids = np.asarray(self.centroids, dtype=float)
        rows = np.empty(len(table), dtype=np.int64)
        dist = np.empty(len(table), dtype=float)
        for start in range(0, len(table), chunk):
            part = self.transform(table.iloc[start : start + chunk])
            stop = start + len(part)
            rows[start:stop], dist[start:stop] = nearest_centres(part, centroids, chunk)
        return rows, dist

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        """Segment id of every customer (int64)."""
        return np.asarray(self.segments, dtype=np.int64)[self.nearest(table)[0]]

    def input_problems(self, table: pd.DataFrame) -> pd.Series:
        """Why rows of ``table`` cannot be scored: the row position -> its reasons.

        A numeric input must be a finite number within :attr:`limits`; a categorical
        input must be present and, when the schema lists them, one of :attr:`allowed`.
        Only the offending rows are in the result (empty: every row can be scored); each
        reason names the column and the value, e.g. ``"age=-5.0: below the minimum 0"``
        or ``"gender: missing"``.
        """
        missing = [c for c in self.columns if c not in table.columns]
        if missing:
            raise InputError(f"the input lacks column(s) {missing} that the model uses")
        reasons = pd.Series("", index=pd.RangeIndex(len(table)), dtype=object)
        for column in self.numeric:
            kind = self.transforms.get(column, {}).get("kind")
            for mask, why in _numeric_checks(table[column], self.limits.get(column), kind):
                _add_reason(reasons, mask, column, table[column], why)
        for column in self.categorical:
            for mask, why in _categorical_checks(table[column], self.allowed.get(column)):
                _add_reason(reasons, mask, column, table[column], why)
        return reasons[reasons != ""]

    def score(self, table: pd.DataFrame) -> pd.DataFrame:
        """Segment id and name of every customer, after checking every row.

        Returns
        -------
        DataFrame
            Columns ``segment`` (int64), ``segment_name`` and, when the model has
            personas, ``persona``; one row per input row.

        Raises
        ------
        InputError
            If a row cannot be scored (see :meth:`input_problems`): the message names
            the rows (0-based positions), columns, values and reasons. Nothing is scored.
        """
        problems = self.input_problems(table)
        if len(problems):
            raise InputError(_problems_message(problems, len(table)))
        ids = self.predict(table)
        out = {SEGMENT_COLUMN: ids}
        out[SEGMENT_NAME_COLUMN] = _lookup(self.segment_names, ids)
        if self.personas:
            out[PERSONA_COLUMN] = _lookup(self.segment_personas, ids)
        return pd.DataFrame(out)

    def inertia(self, table: pd.DataFrame) -> float:
        """Sum of squared distances of the customers to their nearest centroid."""
        return float(self.nearest(table)[1].sum())

    # ---------------------------------------------------------- original units
    def centroid_table(self) -> pd.DataFrame:
        """Centroids in the table's units, indexed by segment id.

        Numeric columns are mapped back through the scaler and their transform
        (:meth:`decode_numeric`; an ``rfm_score`` column gives the mean score, see
        :attr:`score_columns`); a categorical column gives the share of each category
        (``"<column>=<category>"``).
        """
        C = np.asarray(self.centroids, dtype=float)
        n = len(self.numeric)
        decoded = self.decode_numeric(C[:, :n])
        data: dict[str, np.ndarray] = {c: decoded[:, i] for i, c in enumerate(self.numeric)}
        offset = len(self.numeric)
        for column in self.categorical:
            for category in self.categories[column]:
                data[f"{column}={category}"] = C[:, offset]
                offset += 1
        index = pd.Index(self.segments, name="segment")
        return pd.DataFrame(data, index=index).sort_index()

    def input_example(self) -> pd.DataFrame:
        """One synthetic row per segment (centroid in original units, dominant category).

        An ``rfm_score`` column holds the centroid's score (1..5): a valid input, though
        not a typical value of the segment, which a quintile score does not determine.
        """
        centroids = self.centroid_table()
        example = pd.DataFrame(index=centroids.index)
        for column in self.numeric:
            example[column] = centroids[column].round(2)
        for column in self.categorical:
            shares = centroids[[f"{column}={c}" for c in self.categories[column]]].to_numpy()
            example[column] = [self.categories[column][i] for i in shares.argmax(axis=1)]
        return example.reset_index(drop=True)

    # ----------------------------------------------------------------- relabel
    def relabel(
        self,
        ids: Mapping[int, int],
        names: Mapping[int, str],
        personas: Mapping[int, str] | None = None,
        levels: Mapping[int, Mapping[str, str]] | None = None,
    ) -> SegmentModel:
        """The same model with new segment ids and names, rows in ascending new id.

        Parameters
        ----------
        ids : mapping of int to int
            Current segment id -> new id.
        names : mapping of int to str
            New segment id -> name.
        personas, levels : mapping of new segment id to persona / level words, optional
            Default: the model's own, carried to the new ids.
        """
        new = [ids[s] for s in self.segments]
        order = np.argsort(new, kind="stable")
        if personas is None:
            personas = {ids[s]: p for s, p in self.segment_personas.items()}
        if levels is None:
            levels = {ids[s]: lv for s, lv in self.segment_levels.items()}
        return replace(
            self,
            centroids=[self.centroids[i] for i in order],
            segments=[int(new[i]) for i in order],
            names=[str(names[new[i]]) for i in order],
            personas=[str(personas[new[i]]) for i in order] if personas else [],
            levels=[{str(c): str(v) for c, v in levels[new[i]].items()} for i in order]
            if levels
            else [],
        )

    # ---------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict[str, Any]:
        """Plain data (floats already rounded: the canonical form).

        ``categorical_scale`` is left out when 1 (no categorical column, or unweighted),
        ``limits``, ``allowed`` and ``transforms`` when empty, so a model keeps the
        bytes, and the fingerprint, it had before the keys existed.
        """
        data = asdict(self)
        if data["categorical_scale"] == 1.0:
            del data["categorical_scale"]
        if not data["next_id"]:
            del data["next_id"]
        for key in ("limits", "allowed", "transforms", "personas", "levels"):
            # the bytes of a model from before the key
            if not data[key]:
                del data[key]
        return data

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, rounded floats, two-space indent, final newline."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentModel:
        """Inverse of :meth:`to_dict` (a round trip is exact).

        Raises
        ------
        ValueError
            If the description is of another format version or inconsistent.
        """
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"segment model format {version!r} is not supported (expected {FORMAT_VERSION})"
            )
        try:
            model = cls(
                feature_set=str(data["feature_set"]),
                numeric=[str(c) for c in data["numeric"]],
                categorical=[str(c) for c in data["categorical"]],
                center=list(data["center"]),
                scale=list(data["scale"]),
                categories={str(k): [str(v) for v in vs] for k, vs in data["categories"].items()},
                centroids=[list(row) for row in data["centroids"]],
                segments=[int(s) for s in data["segments"]],
                names=[str(n) for n in data["names"]],
                data_sha256=str(data.get("data_sha256", "")),
                scaler=str(data.get("scaler", "")),
                categorical_scale=float(data.get("categorical_scale", 1.0)),
                limits={str(k): list(v) for k, v in data.get("limits", {}).items()},
                allowed={str(k): [str(v) for v in vs] for k, vs in data.get("allowed", {}).items()},
                transforms={str(k): dict(v) for k, v in data.get("transforms", {}).items()},
                personas=[str(p) for p in data.get("personas", [])],
                levels=[{str(c): str(v) for c, v in lv.items()} for lv in data.get("levels", [])],
                next_id=int(data.get("next_id", 0)),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed segment model description: {exc!r}") from exc
        return model

    @classmethod
    def from_json(cls, text: str) -> SegmentModel:
        return cls.from_dict(json.loads(text))


def _lookup(values: Mapping[int, str], ids: np.ndarray) -> list[str]:
    return [values[int(i)] for i in ids]


def canonical_order(centroids: pd.DataFrame) -> list[int]:
    """Row positions of ``centroids`` (original units) in a deterministic order.

    Sorted by the coordinates column by column (rounded, so last-bit noise cannot swap
    two rows): with no earlier version to match, ids follow this order.
    """
    keys = centroids.to_numpy(dtype=float).round(6)
    return sorted(range(len(keys)), key=lambda i: tuple(keys[i]))
