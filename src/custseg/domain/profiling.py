"""Segment insights: profiles, readable names, personas and recommendations.

Pure: DataFrames and arrays in, DataFrames and dataclasses out (no files, no MLflow, no
Hydra). The rule dataclasses (:class:`NamingRules` and its parts) are plain dataclasses so
the typed configuration can use them (``conf/personas/default.yaml`` fills them).

How a segment is described
--------------------------
1. :func:`profile_segments` summarises each segment in original units: size and share,
   mean / median / quartiles of every numeric column, the category mix of every
   categorical column, and the *standardised difference* of each segment mean from the
   whole customer base, ``(segment mean - overall mean) / overall std`` (sample std,
   ``ddof=1``; 0 when the column is constant).
2. :func:`segment_levels` turns standardised differences into level words: ``"high"``
   when it is above ``+threshold``, ``"low"`` when below ``-threshold``, else ``"mid"``
   (``threshold`` = :attr:`NamingRules.level_threshold`, 0.5 standard deviations by
   default). Segment means are compared with the spread of individual customers, so a
   segment is "high income" when its average customer earns clearly more than the
   average customer of the base, whatever the number of segments.
3. :func:`name_segments` builds a name from the levels of the clustering columns
   (``"High income, low spending"``), makes names unique, and picks a persona with its
   recommendation from the rule table (first matching rule wins).

Uniqueness of names (deterministic; depends only on the profiles, never on segment ids):

a. segments sharing a name get, group by group, the phrase of the first other attribute
   (numeric columns not in the name, in :attr:`NamingRules.name_order` then table order;
   then distinctive categories) whose level differs within the group, e.g.
   ``"..., younger"`` / ``"..., older"``; repeated while it splits the group further;
b. a pair still tied gets a relative qualifier on the column where the two differ most,
   ``"(lower income)"`` / ``"(higher income)"``, or ``"(younger of the two)"`` /
   ``"(older of the two)"`` when that column is already part of the name;
c. last resort: a numeric suffix ``"(1)"``, ``"(2)"``... ordered by that same column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from custseg.domain.features import FeatureSet

LEVELS = ("low", "mid", "high")
"""Level words of a segment on a column, from worst to best (or below to above the base)."""

SCORES = (1, 2, 3, 4, 5)
"""Quintile scores of a segment on a column, 5 the best (the classic RFM scores)."""

LEVEL_METHODS = ("std_diff", "quintile")
"""How levels are found: standardised difference of means, or quintile score of medians."""

DIRECTIONS = ("", "higher", "lower")
"""Which values of a column are better: none declared, higher ones, lower ones."""

MISSING_CATEGORY = "(missing)"
"""Category value used for missing cells of a categorical column."""

# A non-numeric column with at most this many distinct values is profiled as categorical.
MAX_CATEGORIES = 20

__all__ = [
    "DIRECTIONS",
    "LEVELS",
    "LEVEL_METHODS",
    "SCORES",
    "AttributeWords",
    "NamingRules",
    "PersonaRule",
    "Earlier",
    "SegmentDescription",
    "SegmentProfiles",
    "describe_segments",
    "level_statistic",
    "name_contradictions",
    "is_outlier",
    "outlier_name",
    "name_segments",
    "profile_columns",
    "profile_segments",
    "segment_levels",
    "segment_scores",
    "segment_table",
]


# ------------------------------------------------------------------------------ rules


@dataclass
class AttributeWords:
    """How one column is worded in segment names.

    Every field is optional; empty strings fall back to the generic wording built from
    ``label`` (``"low income"``, ``"lower income"``).

    Parameters
    ----------
    label : str
        Noun for the column, e.g. ``"income"``; default: the column name with
        underscores as spaces.
    low, mid, high : str
        The whole phrase for that level, e.g. ``low: younger`` for ``age``; default
        ``"<level> <label>"``.
    lower, higher : str
        Relative phrases that split two otherwise identical segments, e.g.
        ``higher: older``; default ``"lower <label>"`` / ``"higher <label>"``.
    values : dict of str to str
        Categorical columns: category value -> word used in names (``Female: women``);
        default: the value itself.
    better : {"", "higher", "lower"}
        Which values of the column are better for the business, e.g. ``lower`` for
        ``recency_days`` (days since the last order). When declared, levels and scores
        read in that direction: ``high`` and score 5 are the *best* segments (for
        recency: the most recent), so ``low: lapsed, high: recent`` words it right.
        Relative phrases (``lower``/``higher``) keep the column's own direction.
    """

    label: str = ""
    low: str = ""
    mid: str = ""
    high: str = ""
    lower: str = ""
    higher: str = ""
    values: dict[str, str] = field(default_factory=dict)
    better: str = ""


@dataclass
class PersonaRule:
    """One row of the persona table.

    Parameters
    ----------
    name : str
        Persona name, e.g. ``"Premium"``.
    when : dict
        Conditions, all of which must hold: numeric column -> level (``"low"``,
        ``"mid"``, ``"high"``), quintile score (``1``..``5``, 5 the best; see
        :func:`segment_scores`) or a list of them. A condition on a column the profile
        lacks never holds. An empty mapping always matches.
    description : str
        One sentence describing the persona.
    recommendation : str
        Marketing recommendation for segments of this persona.
    """

    name: str = "???"
    when: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    recommendation: str = ""


@dataclass
class NamingRules:
    """Everything that turns profiles into names, personas and recommendations.

    Parameters
    ----------
    level_threshold : float
        A standardised difference above ``+level_threshold`` is ``"high"``, below
        ``-level_threshold`` ``"low"``, otherwise ``"mid"``.
    dominance : float
        A category appears in a name (``"mostly women"``) when its share in the segment
        is at least this and its share in the whole base is below it.
    name_order : list of str
        Columns in the order their phrases appear in names (and are tried when making
        names unique); columns not listed follow in their table order.
    attributes : dict of str to AttributeWords
        Wording per column.
    personas : list of PersonaRule
        The rule table; the first rule whose conditions hold gives the persona.
    default_persona : PersonaRule
        Used when no rule matches (its ``when`` is ignored).
    fallback_name : str
        Name of a segment none of whose name columns says anything (e.g. only
        categorical columns without a dominant category).
    level_method : {"std_diff", "quintile"}
        ``std_diff``: levels from the standardised difference of the segment mean
        (:func:`segment_levels`); right for roughly symmetric columns such as age or
        income. ``quintile``: levels from the quintile score of the segment median
        among all customers (scores 1-2 low, 3 mid, 4-5 high; :func:`segment_scores`);
        right for heavy-tailed columns such as spend, where a few big customers make
        every other segment "mid" by standard deviations.
    outlier_share : float
        Segments holding less than this share of the customers are outlier groups:
        named ``"Outlier group: <name>"`` with :attr:`outlier_persona`, never with a
        marketing persona (0 turns this off).
    outlier_persona : PersonaRule
        Persona of outlier groups (its ``when`` is ignored).
    level_hysteresis : float
        How far a segment that survives a retrain keeps its earlier level word past the
        level's boundary, as a fraction of the way from the boundary to the whole base's
        average (0: never; must be below 1, so a kept word never contradicts the
        numbers). With ``level_threshold`` 0.5 and 0.2, a segment called "high income"
        stays so while its standardised difference is above 0.4.
    """

    level_threshold: float = 0.5
    dominance: float = 0.75
    name_order: list[str] = field(default_factory=list)
    attributes: dict[str, AttributeWords] = field(default_factory=dict)
    personas: list[PersonaRule] = field(default_factory=list)
    default_persona: PersonaRule = field(
        default_factory=lambda: PersonaRule(
            name="General",
            description="No distinctive income or spending pattern.",
            recommendation="Use broad, general-interest campaigns and watch how they respond.",
        )
    )
    fallback_name: str = "Typical customers"
    level_method: str = "std_diff"
    outlier_share: float = 0.0
    outlier_persona: PersonaRule = field(
        default_factory=lambda: PersonaRule(
            name="Outlier group",
            description="Too few customers to act on as a segment.",
            recommendation="Review these customers one by one; do not target them as a segment.",
        )
    )
    level_hysteresis: float = 0.2

    def problems(self) -> list[str]:
        """Every invalid setting, as ``"<key>: <reason>"`` (empty when valid)."""
        found = []
        if not (np.isfinite(self.level_threshold) and self.level_threshold > 0):
            found.append(f"level_threshold: must be > 0, got {self.level_threshold!r}")
        if not 0.5 < self.dominance <= 1.0:
            found.append(f"dominance: must be in (0.5, 1], got {self.dominance!r}")
        if self.level_method not in LEVEL_METHODS:
            found.append(f"level_method: {self.level_method!r}; use one of {list(LEVEL_METHODS)}")
        if not 0.0 <= self.level_hysteresis < 1.0:
            found.append(f"level_hysteresis: must be in [0, 1), got {self.level_hysteresis!r}")
        if not 0.0 <= self.outlier_share < 0.5:
            found.append(f"outlier_share: must be in [0, 0.5), got {self.outlier_share!r}")
        for column, words in self.attributes.items():
            if words.better not in DIRECTIONS:
                found.append(
                    f"attributes.{column}.better: {words.better!r}; use higher, lower or leave "
                    "it out"
                )
        found += self._rule_problems()
        return found

    def _rule_problems(self) -> list[str]:
        found = []
        rules = [(f"personas[{i}]", r) for i, r in enumerate(self.personas)]
        named = [*rules, ("default_persona", self.default_persona)]
        for key, rule in [*named, ("outlier_persona", self.outlier_persona)]:
            if not str(rule.name).strip() or rule.name == "???":
                found.append(f"{key}.name: must not be empty")
        for key, rule in rules:
            for column, allowed in rule.when.items():
                bad = [v for v in _as_levels(allowed) if v not in _CONDITIONS]
                if bad or not _as_levels(allowed):
                    found.append(
                        f"{key}.when.{column}: {allowed!r}; use one of {list(LEVELS)}, a score "
                        f"{list(SCORES)} or a list of them"
                    )
        return found

    def words(self, column: str) -> AttributeWords:
        """The wording of ``column`` (generic wording when it has no entry)."""
        return self.attributes.get(column) or AttributeWords()

    def persona_rule(
        self,
        persona: str,
        levels: Mapping[str, str] | None = None,
        scores: Mapping[str, int] | None = None,
    ) -> PersonaRule:
        """The rule of a persona as a model stores it (``"Hibernating, higher spend"`` is
        ``Hibernating``'s: the longest rule name it starts with); of several rules with
        that name, the first that holds for a segment's ``levels`` and ``scores`` (else
        the first). The default persona when no rule has that name."""
        found = self._rules_of(persona)
        if not found:
            return self.default_persona
        longest = max(len(r.name) for r in found)
        named = [r for r in found if len(r.name) == longest]
        if levels is not None:
            holding = [r for r in named if _holds(r, levels, scores or {})]
            named = holding or named
        return named[0]

    def has_persona(self, persona: str) -> bool:
        """Whether ``persona`` (as a model stores it) is one of these rules' personas."""
        return bool(self._rules_of(persona))

    def _rules_of(self, persona: str) -> list[PersonaRule]:
        rules = [*self.personas, self.outlier_persona, self.default_persona]
        return [r for r in rules if persona == r.name or persona.startswith(f"{r.name}, ")]


#: what a persona condition may name: a level word or a quintile score (as text)
_CONDITIONS = (*LEVELS, *(str(score) for score in SCORES))


def _as_levels(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    return [str(value)]


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class SegmentProfiles:
    """Per-segment summaries of a customer table, in tidy (long) DataFrames.

    Attributes
    ----------
    sizes : DataFrame
        Index ``segment`` (int, ascending); columns ``size`` (int) and ``share``
        (fraction of all customers, float in [0, 1]).
    numeric : DataFrame
        One row per (segment, numeric column): columns ``segment``, ``column``,
        ``mean``, ``median``, ``q1``, ``q3`` (original units; missing values skipped),
        ``std_diff`` ((segment mean - overall mean) / overall std) and ``pct`` (where
        the segment median falls among all customers, as a mid-rank percentile in
        [0, 1]: tied customers count half).
    categorical : DataFrame
        One row per (segment, categorical column, value): columns ``segment``,
        ``column``, ``value`` (str; missing cells are ``"(missing)"``), ``count`` and
        ``share`` (within the segment). Values absent from a segment have count 0.
    overall : DataFrame
        Index ``column`` (the numeric columns); columns ``mean``, ``std`` (ddof=1),
        ``median``, ``q1``, ``q3`` over the whole base.
    overall_categorical : DataFrame
        Columns ``column``, ``value``, ``count``, ``share`` over the whole base.
    numeric_columns, categorical_columns : tuple of str
        The profiled columns, in the order given.
    """

    sizes: pd.DataFrame
    numeric: pd.DataFrame
    categorical: pd.DataFrame
    overall: pd.DataFrame
    overall_categorical: pd.DataFrame
    numeric_columns: tuple[str, ...]
    categorical_columns: tuple[str, ...]

    @property
    def segments(self) -> list[int]:
        """Segment ids, ascending."""
        return [int(s) for s in self.sizes.index]

    @property
    def n_customers(self) -> int:
        """Number of customers profiled."""
        return int(self.sizes["size"].sum())

    def wide(self, stat: str = "mean") -> pd.DataFrame:
        """One numeric statistic as a segment x column table.

        Parameters
        ----------
        stat : {"mean", "median", "q1", "q3", "std_diff", "pct"}
            The statistic.

        Returns
        -------
        DataFrame
            Index ``segment``, one column per numeric column (in profile order).
        """
        if stat not in ("mean", "median", "q1", "q3", "std_diff", "pct"):
            raise ValueError(f"unknown statistic {stat!r}")
        table = self.numeric.pivot(index="segment", columns="column", values=stat)
        return table.reindex(index=self.segments, columns=list(self.numeric_columns))

    def category_shares(self, column: str) -> pd.DataFrame:
        """Share of each value of ``column`` per segment (segment x value)."""
        part = self.categorical[self.categorical["column"] == column]
        if part.empty:
            raise ValueError(f"{column!r} is not a profiled categorical column")
        table = part.pivot(index="segment", columns="value", values="share")
        return table.reindex(index=self.segments).fillna(0.0)


def profile_columns(
    table: pd.DataFrame, feature_set: FeatureSet | None = None, exclude: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """Choose the columns to profile: the clustering ones first, then every other one.

    Parameters
    ----------
    table : DataFrame
        Customer table (canonical names, plus any extra columns).
    feature_set : FeatureSet, optional
        The clustering columns; they come first, in their order.
    exclude : sequence of str
        Columns never profiled (e.g. the customer id).

    Returns
    -------
    numeric, categorical : list of str
        Numeric columns: the feature set's numeric ones, then every other numeric
        (non-boolean) column. Categorical: the feature set's categorical ones, then every
        other non-numeric column with at most 20 distinct values that is not unique per
        row (identifiers are never profiled).
    """
    numeric_kind = {
        c: pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])
        for c in table.columns
    }
    return choose_profile_columns(
        numeric_kind,
        lambda column: int(table[column].nunique(dropna=False)),
        len(table),
        feature_set,
        exclude,
    )


def choose_profile_columns(
    numeric_kind: Mapping[str, bool],
    n_distinct: Callable[[str], int],
    n_rows: int,
    feature_set: FeatureSet | None = None,
    exclude: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """:func:`profile_columns` of a table described, not held: ``numeric_kind`` says
    which of its columns (in order) are numeric and not boolean, ``n_distinct(column)``
    counts a column's distinct values (a missing value is one; any count above
    :data:`MAX_CATEGORIES` may be given for more), ``n_rows`` its customers."""
    skip = set(exclude)
    numeric = [c for c in (feature_set.numeric if feature_set else []) if c not in skip]
    categorical = [c for c in (feature_set.categorical if feature_set else []) if c not in skip]
    for column, is_numeric in numeric_kind.items():
        if column in skip or column in numeric or column in categorical:
            continue
        if is_numeric:
            numeric.append(column)
            continue
        distinct = n_distinct(column)
        if distinct <= MAX_CATEGORIES and not (n_rows > 1 and distinct == n_rows):
            categorical.append(column)
    return numeric, categorical


def profile_segments(
    table: pd.DataFrame,
    labels: np.ndarray,
    numeric_columns: Sequence[str],
    categorical_columns: Sequence[str] = (),
) -> SegmentProfiles:
    """Summarise every segment of ``table`` (see :class:`SegmentProfiles`).

    Parameters
    ----------
    table : DataFrame
        Customers in original units, one row per label.
    labels : array-like of int
        Segment id of each row.
    numeric_columns : sequence of str
        Columns summarised by mean, median, quartiles and standardised difference; may
        include columns not used for clustering.
    categorical_columns : sequence of str
        Columns summarised by their value mix.

    Returns
    -------
    SegmentProfiles
        Only segments that have members appear.

    Raises
    ------
    ValueError
        If the table is empty, lengths differ, labels are not integers, or a column is
        missing or (for ``numeric_columns``) not numeric.
    """
    labels = np.asarray(labels)
    if len(table) == 0:
        raise ValueError("cannot profile an empty table")
    if labels.ndim != 1 or labels.shape[0] != len(table):
        raise ValueError(f"labels has shape {labels.shape}, expected ({len(table)},)")
    if not np.issubdtype(labels.dtype, np.integer):
        as_int = labels.astype(np.int64) if np.issubdtype(labels.dtype, np.number) else None
        if as_int is None or not np.array_equal(as_int, labels):
            raise ValueError(f"labels must be integer segment ids, got dtype {labels.dtype}")
        labels = as_int
    numeric_columns = list(numeric_columns)
    categorical_columns = list(categorical_columns)
    missing = [c for c in [*numeric_columns, *categorical_columns] if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks column(s) {missing}")
    wrong = [
        c
        for c in numeric_columns
        if not pd.api.types.is_numeric_dtype(table[c]) or pd.api.types.is_bool_dtype(table[c])
    ]
    if wrong:
        raise ValueError(f"column(s) {wrong} are not numeric")

    segment = pd.Series(labels.astype(np.int64), index=table.index, name="segment")
    aggregates = _table_aggregates(table, segment, numeric_columns, categorical_columns)
    return profiles_from(aggregates, numeric_columns, categorical_columns)


@dataclass(frozen=True)
class ProfileAggregates:
    """What :class:`SegmentProfiles` are made of, counted where the customers are: by
    :func:`profile_segments` on a table in memory, by an engine's aggregations on a table
    it holds (the same numbers, then the same :func:`profiles_from`).

    Attributes
    ----------
    sizes : Series
        Customers per segment id (ascending ids; segments with members only).
    overall : DataFrame
        Index: the numeric columns; columns ``mean``, ``std`` (ddof=1), ``median``,
        ``q1``, ``q3`` over every customer (missing values skipped).
    means, medians, q1, q3 : DataFrame
        Per segment (index as ``sizes``), per numeric column (columns).
    pct : DataFrame
        Where each segment's median falls among all customers (mid-rank percentile,
        see :func:`_median_percentiles`), same shape.
    categories : dict of str to DataFrame
        Per categorical column: customers per segment (index as ``sizes``) and value
        text (columns, :func:`_category_codes`'s texts), every value some customer has.
    """

    sizes: pd.Series
    overall: pd.DataFrame
    means: pd.DataFrame
    medians: pd.DataFrame
    q1: pd.DataFrame
    q3: pd.DataFrame
    pct: pd.DataFrame
    categories: dict[str, pd.DataFrame]


def _table_aggregates(
    table: pd.DataFrame, segment: pd.Series, numeric: list[str], categorical: list[str]
) -> ProfileAggregates:
    """:class:`ProfileAggregates` of a table in memory (``segment``: each row's id)."""
    sizes = segment.value_counts().sort_index()
    segments = sizes.index
    values = table[numeric].astype(float)
    codes = np.searchsorted(segments.to_numpy(), segment.to_numpy())
    quartiles = OrderStatistics.of(values.to_numpy(), codes, len(sizes))
    overall = pd.DataFrame(
        {
            "mean": values.mean(),
            "std": values.std(ddof=1),
            "median": quartiles.overall[:, 1],
            "q1": quartiles.overall[:, 0],
            "q3": quartiles.overall[:, 2],
        },
        index=pd.Index(numeric, name="column"),
    )

    def frame(statistic: int) -> pd.DataFrame:
        return pd.DataFrame(quartiles.groups[:, statistic, :].T, index=segments, columns=numeric)

    medians = frame(1)
    categories = {}
    for column in categorical:
        column_codes, texts = _category_codes(table[column])
        cells = codes * len(texts) + column_codes
        counts = np.bincount(cells, minlength=len(segments) * len(texts))
        categories[column] = pd.DataFrame(
            counts.reshape(len(segments), len(texts)), index=segments, columns=texts
        )
    return ProfileAggregates(
        sizes=sizes,
        overall=overall,
        means=values.groupby(segment).mean(),
        medians=medians,
        q1=frame(0),
        q3=frame(2),
        pct=_median_percentiles(values, medians),
        categories=categories,
    )


def profiles_from(
    aggregates: ProfileAggregates,
    numeric_columns: Sequence[str],
    categorical_columns: Sequence[str] = (),
) -> SegmentProfiles:
    """:class:`SegmentProfiles` of segments counted as ``aggregates``."""
    numeric_columns, categorical_columns = list(numeric_columns), list(categorical_columns)
    counts = aggregates.sizes
    sizes = pd.DataFrame(
        {"size": counts.astype(np.int64).to_numpy(), "share": (counts / counts.sum()).to_numpy()},
        index=pd.Index([int(i) for i in counts.index], name="segment"),
    )
    categorical, overall_categorical = _categorical_long(aggregates, categorical_columns)
    return SegmentProfiles(
        sizes=sizes,
        numeric=_numeric_long(aggregates, numeric_columns),
        categorical=categorical,
        overall=aggregates.overall,
        overall_categorical=overall_categorical,
        numeric_columns=tuple(numeric_columns),
        categorical_columns=tuple(categorical_columns),
    )


def _numeric_long(aggregates: ProfileAggregates, columns: list[str]) -> pd.DataFrame:
    """One row per segment and numeric column."""
    out_columns = ["segment", "column", "mean", "median", "q1", "q3", "std_diff", "pct"]
    if not columns:
        return pd.DataFrame(columns=out_columns)
    overall = aggregates.overall
    stats = {
        "mean": aggregates.means,
        "median": aggregates.medians,
        "q1": aggregates.q1,
        "q3": aggregates.q3,
    }
    std = overall["std"].where(overall["std"] > 0)
    diff = (stats["mean"] - overall["mean"]) / std
    # a constant column: every segment equals the base
    constant = overall["std"].fillna(0.0) == 0
    diff.loc[:, constant[constant].index] = diff.loc[:, constant[constant].index].fillna(0.0)
    stats["std_diff"] = diff
    stats["pct"] = aggregates.pct
    rows = []
    for seg in aggregates.sizes.index:
        for column in columns:
            rows.append(
                {"segment": int(seg), "column": column}
                | {name: float(frame.at[seg, column]) for name, frame in stats.items()}
            )
    return pd.DataFrame(rows, columns=out_columns)


@dataclass(frozen=True)
class OrderStatistics:
    """First quartile, median and third quartile of each column, within each group and
    over all rows, missing values skipped.

    To the bit as pandas computes them (``groupby(...).quantile()``/``median()`` and
    ``DataFrame.quantile()``/``median()``, linear interpolation), from one sort per
    column and group (pandas sorts the whole column once per statistic: on 1M
    customers this is four times faster, and a sweep profiles every fit).

    Attributes
    ----------
    groups : ndarray of shape (n_columns, 3, n_groups)
        ``groups[c, :, g]``: column ``c``'s (q1, median, q3) in group ``g``; NaN where
        the group has no value.
    overall : ndarray of shape (n_columns, 3)
        The same over all rows.
    """

    groups: np.ndarray
    overall: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray, codes: np.ndarray, n_groups: int) -> OrderStatistics:
        """The statistics of ``values`` (rows x columns), row ``i`` in group ``codes[i]``
        (``0 <= codes < n_groups``)."""
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(n_groups + 1))
        groups = np.full((values.shape[1], 3, n_groups), np.nan)
        overall = np.full((values.shape[1], 3), np.nan)
        for c in range(values.shape[1]):
            column = values[:, c]
            known = np.sort(column[~np.isnan(column)])
            if len(known):  # as numpy (DataFrame.quantile and median call it)
                q1, q3 = np.quantile(known, [0.25, 0.75])
                overall[c] = (q1, np.median(known), q3)
            by_group = column[order]
            for g in range(n_groups):
                part = by_group[bounds[g] : bounds[g + 1]]
                groups[c, :, g] = _group_quartiles(np.sort(part[~np.isnan(part)]))
        return cls(groups, overall)


def _group_quartiles(known: np.ndarray) -> tuple[float, float, float]:
    """(q1, median, q3) of sorted values as pandas' groupby computes them: a quantile
    ``v[i] + (v[i + 1] - v[i]) * frac`` at position ``q * (n - 1)``, the median of an even
    count ``(a + b) / 2``."""
    n = len(known)
    if n == 0:
        return np.nan, np.nan, np.nan

    def quantile(q: float) -> float:
        position = q * (n - 1)
        i, frac = int(position), position % 1
        value = float(known[i])
        return value if frac == 0.0 else value + (float(known[i + 1]) - value) * frac

    middle = n // 2
    median = known[middle] if n % 2 else (known[middle - 1] + known[middle]) / 2
    return quantile(0.25), float(median), quantile(0.75)


def _median_percentiles(values: pd.DataFrame, medians: pd.DataFrame) -> pd.DataFrame:
    """Mid-rank percentile of each segment median among all customers, per column.

    ``(#below + #at_or_below) / (2 n)``: a median shared by many customers (one order,
    the most common frequency) sits in the middle of its tie, not at its top. Counted by
    comparison (no sort of the column: a sweep profiles the same table for every fit).
    """
    out = pd.DataFrame(np.nan, index=medians.index, columns=medians.columns)
    for column in medians.columns:
        known = values[column].to_numpy(dtype=float)
        known = known[~np.isnan(known)]
        for seg, m in medians[column].items():
            if len(known) and not np.isnan(m):
                below, upto = np.count_nonzero(known < m), np.count_nonzero(known <= m)
                out.at[seg, column] = (below + upto) / (2.0 * len(known))
    return out


def _categorical_long(
    aggregates: ProfileAggregates, columns: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per segment and over all customers, the customers of each value of each
    categorical column: the most common value first (ties: by text)."""
    rows, overall_rows = [], []
    for column in columns:
        counts = aggregates.categories[column]
        values = [str(v) for v in counts.columns]
        matrix = counts.to_numpy(dtype=np.int64)
        total = matrix.sum(axis=0)
        n_rows = int(total.sum())
        order = sorted(range(len(values)), key=lambda i: (-int(total[i]), values[i]))
        categories = [values[i] for i in order]
        for i in order:
            overall_rows.append(
                {
                    "column": column,
                    "value": values[i],
                    "count": int(total[i]),
                    "share": float(total[i] / n_rows),
                }
            )
        matrix = matrix[:, order]
        for s, seg in enumerate(counts.index):
            n = int(matrix[s].sum())
            for value, count in zip(categories, matrix[s].tolist(), strict=True):
                rows.append(
                    {
                        "segment": int(seg),
                        "column": column,
                        "value": value,
                        "count": count,
                        "share": count / n if n else 0.0,
                    }
                )
    long_cols = ["segment", "column", "value", "count", "share"]
    return (
        pd.DataFrame(rows, columns=long_cols),
        pd.DataFrame(overall_rows, columns=long_cols[1:]),
    )


def _category_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each row's category as a code into the category texts (``str`` of the value,
    :data:`MISSING_CATEGORY` for a missing cell; values with the same text are one)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = [str(u) for u in uniques]
    if (codes < 0).any():
        texts.append(MISSING_CATEGORY)
        codes = np.where(codes < 0, len(texts) - 1, codes)
    distinct, remap = np.unique(np.array(texts, dtype=object), return_inverse=True)
    return remap[codes], [str(t) for t in distinct]


# ------------------------------------------------------------------------------ names


@dataclass(frozen=True)
class SegmentDescription:
    """What a segment is called and what to do with it.

    Attributes
    ----------
    segment : int
        Segment (cluster) id.
    name : str
        Unique, readable name, e.g. ``"High income, low spending"``.
    persona : str
        Persona name from the rule table, e.g. ``"Careful"``.
    description : str
        The persona's one-sentence description.
    recommendation : str
        Marketing recommendation of the persona.
    levels : dict of str to str
        Level (``"low"``, ``"mid"``, ``"high"``) of every profiled numeric column.
    scores : dict of str to int
        Quintile score (1..5, 5 the best) of every profiled numeric column
        (:func:`segment_scores`).
    was_persona : str
        The persona the segment had in the earlier version when it no longer meets that
        persona's rule (``"renamed: was ..."``); ``""`` otherwise.
    """

    segment: int
    name: str
    persona: str
    description: str
    recommendation: str
    levels: dict[str, str]
    scores: dict[str, int] = field(default_factory=dict)
    was_persona: str = ""


@dataclass(frozen=True)
class Earlier:
    """What a surviving segment was called in the earlier version (the champion).

    Attributes
    ----------
    levels : dict of str to str
        Its level word per column (:attr:`SegmentModel.levels`); empty when unknown.
    persona : str
        Its persona (:attr:`SegmentModel.personas`); ``""`` when unknown.
    """

    levels: dict[str, str] = field(default_factory=dict)
    persona: str = ""


def segment_levels(profiles: SegmentProfiles, threshold: float = 0.5) -> pd.DataFrame:
    """Level word of each segment's standardised difference, per numeric column.

    Parameters
    ----------
    profiles : SegmentProfiles
        The profiles.
    threshold : float, default 0.5
        ``std_diff > threshold`` is ``"high"``, ``std_diff < -threshold`` is ``"low"``,
        anything else (including NaN) ``"mid"``.

    Returns
    -------
    DataFrame
        Segment x numeric column, values in :data:`LEVELS`.
    """
    diff = profiles.wide("std_diff")
    levels = pd.DataFrame("mid", index=diff.index, columns=diff.columns, dtype=object)
    levels[diff > threshold] = "high"
    levels[diff < -threshold] = "low"
    return levels


def segment_scores(profiles: SegmentProfiles, rules: NamingRules) -> pd.DataFrame:
    """Quintile score (1..5) of each segment per numeric column, 5 the best.

    The score of a segment is the quintile its median falls in among all customers,
    ``ceil(5 * pct)`` (``pct`` from :class:`SegmentProfiles`), read in the column's
    declared direction (:attr:`AttributeWords.better`): for ``better: lower`` (recency)
    the lowest medians score 5. A column without a direction scores low values 1.
    A segment without a median scores 3.
    """
    pct = profiles.wide("pct")
    raw = np.ceil(pct * len(SCORES)).clip(1, len(SCORES)).fillna(3).astype("int64")
    for column in raw.columns:
        if rules.words(column).better == "lower":
            raw[column] = len(SCORES) + 1 - raw[column]
    return raw


def _levels(
    profiles: SegmentProfiles,
    rules: NamingRules,
    scores: pd.DataFrame,
    earlier: Mapping[int, Mapping[str, str]] | None = None,
) -> pd.DataFrame:
    """The level words of every segment and column under ``rules.level_method``.

    With a declared direction the words read that way (``high`` = better). A word never
    contradicts the statistic the method reads (:func:`level_statistic`): ``high`` only
    where the segment's value is above the whole base's, ``low`` only below. A segment
    with ``earlier`` words (it survived a retrain) keeps each while its value stays
    within :attr:`NamingRules.level_hysteresis` of that level's band.
    """
    if rules.level_method == "quintile":
        words = {1: "low", 2: "low", 3: "mid", 4: "high", 5: "high"}
        levels = scores.apply(lambda column: column.map(words)).astype(object)
    else:
        levels = segment_levels(profiles, rules.level_threshold)
        flip = {"low": "high", "mid": "mid", "high": "low"}
        for column in levels.columns:
            if rules.words(column).better == "lower":
                levels[column] = levels[column].map(flip)
    diff = _oriented_diff(profiles, rules)
    # never a word the numbers contradict: high only above all customers, low only below
    contradicts = ((levels == "high") & ~(diff > 0)) | ((levels == "low") & ~(diff < 0))
    fresh = levels.mask(contradicts, "mid")
    return _keep_earlier(fresh, earlier or {}, diff, profiles, rules)


def _keep_earlier(
    fresh: pd.DataFrame,
    earlier: Mapping[int, Mapping[str, str]],
    diff: pd.DataFrame,
    profiles: SegmentProfiles,
    rules: NamingRules,
) -> pd.DataFrame:
    """``fresh`` levels with the ``earlier`` words of surviving segments kept where their
    value is within the hysteresis band, agrees with the base (high above, low below) and
    keeps the segments in order (a higher word never on a lower value)."""
    position, (low, high, half) = _positions(profiles, rules)
    levels = fresh.copy()
    kept: set[tuple[int, str]] = set()
    for seg, words in earlier.items():
        for column, word in words.items():
            if seg not in levels.index or column not in levels.columns or word not in LEVELS:
                continue
            x, d = position.at[seg, column], diff.at[seg, column]
            agrees = word == "mid" or (d > 0 if word == "high" else d < 0)
            if (
                word != fresh.at[seg, column]
                and agrees
                and _within(word, x, low, high, half, rules)
            ):
                levels.at[seg, column] = word
                kept.add((seg, column))
    while bad := _out_of_order(levels, diff, kept):
        for seg, column in bad:
            levels.at[seg, column] = fresh.at[seg, column]
            kept.discard((seg, column))
    return levels


_RANK = {"low": 0, "mid": 1, "high": 2}


def _out_of_order(
    levels: pd.DataFrame, diff: pd.DataFrame, kept: set[tuple[int, str]]
) -> set[tuple[int, str]]:
    """Kept words that put a segment's word above another's on a value that is not."""
    bad = set()
    for seg, column in kept:
        rank, value = _RANK[levels.at[seg, column]], diff.at[seg, column]
        for other in levels.index:
            other_rank, other_value = _RANK[levels.at[other, column]], diff.at[other, column]
            if (rank > other_rank and not value > other_value) or (
                rank < other_rank and not value < other_value
            ):
                bad.add((seg, column))
    return bad


def level_statistic(rules: NamingRules) -> str:
    """The segment statistic level words are read from, and reports show beside them:
    ``"mean"`` (``std_diff``) or ``"median"`` (``quintile``)."""
    return "median" if rules.level_method == "quintile" else "mean"


def _positions(
    profiles: SegmentProfiles, rules: NamingRules
) -> tuple[pd.DataFrame, tuple[float, float, float]]:
    """Where each segment sits per column, oriented so that higher reads ``high``, and
    the level bands' edges ``(low below, high above, half-width of mid)``."""
    if rules.level_method == "quintile":
        position, edges, centre = profiles.wide("pct"), (0.4, 0.6, 0.1), 0.5
    else:
        t = rules.level_threshold
        position, edges, centre = profiles.wide("std_diff"), (-t, t, t), 0.0
    for column in position.columns:
        if rules.words(column).better == "lower":
            position[column] = 2 * centre - position[column]
    return position, edges


def _within(level: str, x: float, low: float, high: float, half: float, rules: NamingRules) -> bool:
    """Whether position ``x`` is still within the hysteresis band of ``level``."""
    margin = rules.level_hysteresis * half
    if not np.isfinite(x):
        return False
    if level == "high":
        return x > high - margin
    if level == "low":
        return x < low + margin
    return low - margin <= x <= high + margin


def _oriented_diff(profiles: SegmentProfiles, rules: NamingRules) -> pd.DataFrame:
    """Per segment and column: the :func:`level_statistic` minus all customers', read in
    the column's direction (``better: lower`` flips), so that above 0 reads ``high``."""
    stat = level_statistic(rules)
    values = profiles.wide(stat)
    diff = values - profiles.overall[stat].reindex(values.columns)
    for column in diff.columns:
        if rules.words(column).better == "lower":
            diff[column] = -diff[column]
    return diff


def _numeric_phrase(words: AttributeWords, column: str, level: str) -> str:
    custom = getattr(words, level)
    return custom or f"{level} {_label(words, column)}"


def _relative_phrase(words: AttributeWords, column: str, higher: bool) -> str:
    custom = words.higher if higher else words.lower
    return custom or f"{'higher' if higher else 'lower'} {_label(words, column)}"


def _label(words: AttributeWords, column: str) -> str:
    return words.label or column.replace("_", " ")


def _category_phrase(
    profiles: SegmentProfiles, rules: NamingRules, column: str, segment: int
) -> str:
    """``"mostly women"`` / ``"all women"`` for a distinctive dominant category, else ``""``."""
    part = profiles.categorical
    part = part[(part["column"] == column) & (part["segment"] == segment)]
    if part.empty:
        return ""
    top = part.sort_values(["share", "value"], ascending=[False, True]).iloc[0]
    overall = profiles.overall_categorical
    base = overall[(overall["column"] == column) & (overall["value"] == top["value"])]
    base_share = float(base["share"].iloc[0]) if len(base) else 0.0
    if top["share"] < rules.dominance or base_share >= rules.dominance:
        return ""
    word = rules.words(column).values.get(top["value"], str(top["value"]))
    return f"{'all' if top['share'] >= 1.0 else 'mostly'} {word}"


def _ordered(columns: Sequence[str], order: Sequence[str]) -> list[str]:
    """``columns`` with those listed in ``order`` first (in that order), then the rest."""
    first = [c for c in order if c in columns]
    return first + [c for c in columns if c not in first]


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def name_segments(
    profiles: SegmentProfiles,
    rules: NamingRules,
    name_columns: Sequence[str] | None = None,
    earlier: Mapping[int, Earlier] | None = None,
) -> dict[int, SegmentDescription]:
    """Name every segment, give it a persona and a recommendation.

    Parameters
    ----------
    profiles : SegmentProfiles
        From :func:`profile_segments`.
    rules : NamingRules
        Thresholds, wording and the persona table (``conf/personas/default.yaml``).
    name_columns : sequence of str, optional
        Columns the base name is made of, normally the clustering features; ordered by
        ``rules.name_order``. Default: the profiled numeric columns listed in
        ``rules.name_order``, or every profiled numeric column if none is listed.
    earlier : mapping of int to Earlier, optional
        For segments that survived a retrain (by their id in ``profiles``): the level
        words and persona of the earlier version. Level words are kept within
        :attr:`NamingRules.level_hysteresis`; a persona is kept while the segment still
        meets its rule, otherwise derived again (``was_persona`` says what it was).

    Returns
    -------
    dict of int to SegmentDescription
        One entry per profiled segment, ascending ids; names are pairwise distinct, and
        so are personas (a persona two segments share is qualified by the column where
        they differ most: ``"Hibernating, higher spend"``).

    Notes
    -----
    The base name joins one phrase per name column with ``", "`` and capitalises it,
    e.g. ``"High income, low spending"``; categorical name columns contribute only a
    distinctive dominant category (``"mostly women"``). See the module docstring for how
    ties are broken. Personas use the levels and scores of every profiled numeric column.
    Segments below ``rules.outlier_share`` of the customers are outlier groups.
    """
    earlier = dict(earlier or {})
    numeric = list(profiles.numeric_columns)
    name_columns = _name_columns(profiles, rules, name_columns)
    scores = segment_scores(profiles, rules)
    kept_levels = {seg: e.levels for seg, e in earlier.items()}
    namer = _Namer(profiles, rules, _levels(profiles, rules, scores, kept_levels))
    names = namer.unique_names(name_columns)
    out = {}
    for seg in profiles.segments:
        seg_levels = {c: str(namer.levels.at[seg, c]) for c in numeric}
        seg_scores = {c: int(scores.at[seg, c]) for c in numeric}
        rule, name = _match_persona(rules, seg_levels, seg_scores), names[seg]
        was = ""
        if is_outlier(float(profiles.sizes.at[seg, "share"]), rules):
            rule, name = rules.outlier_persona, outlier_name(name, True, rules)
        elif seg in earlier and earlier[seg].persona:
            before = rules.persona_rule(earlier[seg].persona, seg_levels, seg_scores)
            ordinary = before not in (rules.default_persona, rules.outlier_persona)
            if ordinary and _holds(before, seg_levels, seg_scores):
                rule = before
            elif before.name != rule.name:
                was = earlier[seg].persona
        out[seg] = SegmentDescription(
            segment=seg,
            name=name,
            persona=rule.name,
            description=rule.description,
            recommendation=rule.recommendation,
            levels=seg_levels,
            scores=seg_scores,
            was_persona=was,
        )
    return _distinct_personas(out, namer)


def _distinct_personas(
    described: dict[int, SegmentDescription], namer: _Namer
) -> dict[int, SegmentDescription]:
    """Personas two or more segments share, told apart by the numeric column where
    they differ most: ``"<persona>, lower <label>"`` / ``"..., higher <label>"`` for a
    pair, ``"<persona>, <label> rank i of n"`` (ascending) for more."""
    by_persona: dict[str, list[int]] = {}
    for seg, d in described.items():
        by_persona.setdefault(d.persona, []).append(seg)
    out = dict(described)
    for persona, group in by_persona.items():
        if len(group) < 2:
            continue
        rules, diffs = namer.rules, namer.diffs
        column = _most_different(diffs, group, _ordered(namer.numeric, rules.name_order))
        if column is None:
            sizes = namer.profiles.sizes
            ordered = sorted(group, key=lambda s: (-sizes.at[s, "size"], s))
            tags = [f"{i} of {len(group)}" for i in range(1, len(group) + 1)]
        else:
            words = rules.words(column)
            ordered = sorted(group, key=lambda s: (diffs.at[s, column], s))
            if len(group) == 2:
                tags = [_relative_phrase(words, column, higher) for higher in (False, True)]
            else:
                label = _label(words, column)
                tags = [f"{label} rank {i} of {len(group)}" for i in range(1, len(group) + 1)]
        for seg, tag in zip(ordered, tags, strict=True):
            out[seg] = replace(out[seg], persona=f"{persona}, {tag}")
    return out


def is_outlier(share: float, rules: NamingRules) -> bool:
    """Whether a segment holding ``share`` of the customers is an outlier group."""
    return share < rules.outlier_share


def outlier_name(name: str, outlier: bool, rules: NamingRules) -> str:
    """``name`` with the outlier-group prefix (``"Outlier group: "``) when ``outlier``,
    without it otherwise: a segment kept from an earlier model (same id, same name) is
    labelled by its current share."""
    prefix = f"{rules.outlier_persona.name}: "
    base = name.removeprefix(prefix)
    return prefix + base if outlier else base


def _name_columns(
    profiles: SegmentProfiles, rules: NamingRules, name_columns: Sequence[str] | None
) -> list[str]:
    """The columns base names are made of, in ``rules.name_order`` (see :func:`name_segments`)."""
    numeric = list(profiles.numeric_columns)
    if name_columns is None:
        listed = [c for c in rules.name_order if c in numeric]
        name_columns = listed or numeric
    known = set(numeric) | set(profiles.categorical_columns)
    unknown = [c for c in name_columns if c not in known]
    if unknown:
        raise ValueError(f"name column(s) {unknown} are not in the profiles")
    return _ordered(list(name_columns), rules.name_order)


class _Namer:
    """Phrases and unique names of the segments of one set of profiles."""

    def __init__(self, profiles: SegmentProfiles, rules: NamingRules, levels: pd.DataFrame):
        self.profiles, self.rules, self.levels = profiles, rules, levels
        self.numeric = list(profiles.numeric_columns)
        self.diffs = profiles.wide("std_diff")

    def phrase(self, column: str, seg: int) -> str:
        """The words of one column for one segment (``""`` when it says nothing)."""
        if column in self.numeric:
            level = self.levels.at[seg, column]
            return _numeric_phrase(self.rules.words(column), column, level)
        return _category_phrase(self.profiles, self.rules, column, seg)

    def unique_names(self, name_columns: list[str]) -> dict[int, str]:
        """Base names, then the three tie-breaking steps of the module docstring."""
        parts = {
            seg: [p for c in name_columns if (p := self.phrase(c, seg))]
            for seg in self.profiles.segments
        }
        names = {
            seg: _capitalise(", ".join(p)) or self.rules.fallback_name for seg, p in parts.items()
        }
        self._add_extras(names, parts, name_columns)
        for group in _duplicate_groups(names):
            self._qualify(names, group, name_columns)
        # a suffixed name could (in contrived configs) equal another name: keep suffixing
        while dupes := _duplicate_groups(names):
            for group in dupes:
                for i, s in enumerate(sorted(group)[1:], start=2):
                    names[s] = f"{names[s]} ({i})"
        return names

    def _add_extras(
        self, names: dict[int, str], parts: dict[int, list[str]], name_columns: list[str]
    ) -> None:
        """(a) extra attributes, group by group, while they split the group."""
        extra = _ordered([c for c in self.numeric if c not in name_columns], self.rules.name_order)
        extra += [c for c in self.profiles.categorical_columns if c not in name_columns]
        used: dict[int, set[str]] = {seg: set() for seg in names}
        progress = True
        while progress:
            progress = False
            for group in _duplicate_groups(names):
                for column in extra:
                    if any(column in used[s] for s in group):
                        continue
                    phrases = {s: self.phrase(column, s) for s in group}
                    if len(set(phrases.values())) < 2:
                        continue
                    for s in group:
                        used[s].add(column)
                        if phrases[s]:
                            parts[s].append(phrases[s])
                            names[s] = _capitalise(", ".join(parts[s]))
                    progress = True
                    break

    def _qualify(self, names: dict[int, str], group: list[int], name_columns: list[str]) -> None:
        """(b) a pair gets a relative qualifier; (c) anything larger a numeric suffix."""
        diffs = self.diffs
        column = _most_different(diffs, group, _ordered(self.numeric, self.rules.name_order))
        if column is None:
            sizes = self.profiles.sizes
            ordered = sorted(group, key=lambda s: (-sizes.at[s, "size"], s))
        else:
            ordered = sorted(group, key=lambda s: (diffs.at[s, column], s))
        distinct = column is not None and diffs.loc[ordered, column].nunique() == len(group)
        base = names[group[0]]
        if len(group) == 2 and distinct:
            words = self.rules.words(column)
            # "Mid spending, older (younger of the two)", not "..., older (younger)"
            tail = " of the two" if column in name_columns else ""
            for s, higher in zip(ordered, (False, True), strict=True):
                names[s] = f"{base} ({_relative_phrase(words, column, higher)}{tail})"
        else:
            for i, s in enumerate(ordered, start=1):
                names[s] = f"{base} ({i})"


def _duplicate_groups(names: Mapping[int, str]) -> list[list[int]]:
    """Groups (>= 2 segments) sharing a name, ordered by name: independent of ids."""
    by_name: dict[str, list[int]] = {}
    for seg, name in names.items():
        by_name.setdefault(name, []).append(seg)
    return [sorted(group) for _, group in sorted(by_name.items()) if len(group) > 1]


def _most_different(diffs: pd.DataFrame, group: list[int], columns: list[str]) -> str | None:
    """The numeric column whose standardised differences spread most within ``group``."""
    best, best_spread = None, 0.0
    for column in columns:
        values = diffs.loc[group, column].to_numpy(dtype=float)
        if not np.all(np.isfinite(values)):
            continue
        spread = float(values.max() - values.min())
        if spread > best_spread + 1e-12:
            best, best_spread = column, spread
    return best


def _match_persona(
    rules: NamingRules, levels: Mapping[str, str], scores: Mapping[str, int]
) -> PersonaRule:
    """The first rule whose every condition (a level word or a score) holds."""
    for rule in rules.personas:
        if _holds(rule, levels, scores):
            return rule
    return rules.default_persona


def _holds(rule: PersonaRule, levels: Mapping[str, str], scores: Mapping[str, int]) -> bool:
    """Whether every condition of ``rule`` holds for a segment's levels and scores."""

    def holds(column: str, allowed: Any) -> bool:
        wanted = _as_levels(allowed)
        return column in levels and (levels[column] in wanted or str(scores.get(column)) in wanted)

    return all(holds(column, allowed) for column, allowed in rule.when.items())


def name_contradictions(
    profiles: SegmentProfiles, names: Mapping[int, str], rules: NamingRules
) -> list[str]:
    """Every way ``names`` contradict the numbers of ``profiles`` (empty when none do).

    A name's level phrases (``"high income"``, ``"recent"``; :class:`AttributeWords`)
    are read back: a segment called ``high`` on a column must have its mean above the
    whole base's mean or its median above the base's median (``low``: below), read in
    the column's direction (``better: lower`` flips); and on the statistic names are
    read from (:func:`level_statistic`), a segment with a higher word (high over mid over
    low) must sit above every segment with a lower one. Qualifiers in parentheses and
    category phrases are not levels; a named segment absent from ``profiles`` is one.
    """
    said = _levels_said(profiles, names, rules)
    found = [
        f"segment {seg} ({names[seg]!r}) has no customers in this table"
        for seg in sorted(set().union(*(s.keys() for s in said.values())) - set(profiles.segments))
    ]
    if found:
        return found
    diff = _oriented_diff(profiles, rules)
    for column in profiles.numeric_columns:
        levels = said.get(column, {})
        found += [_side_problem(profiles, rules, column, s, lv, names) for s, lv in levels.items()]
        found += _order_problems(diff[column], column, levels, names)
    return [f for f in found if f]


def _side_problem(
    profiles: SegmentProfiles,
    rules: NamingRules,
    column: str,
    seg: int,
    level: str,
    names: Mapping[int, str],
) -> str:
    """Why a ``high``/``low`` word disagrees with the whole base on both the mean and the
    median, or ``""``."""
    if level == "mid":
        return ""
    sign = -1.0 if rules.words(column).better == "lower" else 1.0
    values = {stat: profiles.wide(stat).at[seg, column] for stat in ("mean", "median")}
    overall = {stat: profiles.overall.at[column, stat] for stat in values}
    above = [sign * (values[stat] - overall[stat]) for stat in values]
    if any(a > 0 for a in above) if level == "high" else any(a < 0 for a in above):
        return ""
    return (
        f"segment {seg} ({names[seg]!r}) is called {level} on {column}, but its mean "
        f"{values['mean']:.4g} and median {values['median']:.4g} are not "
        f"{'above' if level == 'high' else 'below'} all customers' "
        f"({overall['mean']:.4g}, {overall['median']:.4g})"
    )


def _order_problems(
    diff: pd.Series, column: str, levels: Mapping[int, str], names: Mapping[int, str]
) -> list[str]:
    """Pairs where a higher word sits on a value (``diff``, :func:`_oriented_diff`) that
    is not higher."""
    return [
        f"segment {a} ({names[a]!r}) is called {word_a} on {column} and segment "
        f"{b} ({names[b]!r}) {word_b}, but the first does not sit above the second"
        for a, word_a in levels.items()
        for b, word_b in levels.items()
        if _RANK[word_a] > _RANK[word_b] and not diff.at[a] > diff.at[b]
    ]


def _levels_said(
    profiles: SegmentProfiles, names: Mapping[int, str], rules: NamingRules
) -> dict[str, dict[int, str]]:
    """Column -> segment -> the level its name states (phrases of :func:`_numeric_phrase`)."""
    phrases = {
        _numeric_phrase(rules.words(c), c, level).casefold(): (c, level)
        for c in profiles.numeric_columns
        for level in LEVELS
    }
    prefix = f"{rules.outlier_persona.name}: "
    said: dict[str, dict[int, str]] = {}
    for seg, name in names.items():
        base = name.removeprefix(prefix).split(" (")[0]
        for part in base.split(", "):
            if (hit := phrases.get(part.strip().casefold())) is not None:
                said.setdefault(hit[0], {})[int(seg)] = hit[1]
    return said


# ------------------------------------------------------------------------ convenience


def describe_segments(
    table: pd.DataFrame,
    labels: np.ndarray,
    feature_set: FeatureSet,
    rules: NamingRules,
    exclude: Sequence[str] = (),
) -> dict[int, SegmentDescription]:
    """Profile and name the segments of a fitted model in one call.

    Profiles the feature set's columns and every other usable column of ``table``
    (:func:`profile_columns`), then names the segments after the feature set's columns.

    Parameters
    ----------
    table : DataFrame
        The customer table the labels belong to.
    labels : array-like of int
        Segment of each row (e.g. ``pipeline.predict(table)``).
    feature_set : FeatureSet
        The clustering columns (they make up the names).
    rules : NamingRules
        ``settings.personas``.
    exclude : sequence of str
        Columns not to profile (e.g. the id column; unique identifiers are skipped
        anyway).

    Returns
    -------
    dict of int to SegmentDescription
        See :func:`name_segments`.
    """
    numeric, categorical = profile_columns(table, feature_set, exclude)
    profiles = profile_segments(table, labels, numeric, categorical)
    return name_segments(profiles, rules, feature_set.columns)


def segment_table(
    profiles: SegmentProfiles,
    descriptions: Mapping[int, SegmentDescription],
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per segment, for reports.

    Parameters
    ----------
    profiles : SegmentProfiles
        The profiles.
    descriptions : mapping of int to SegmentDescription
        From :func:`name_segments`.
    columns : sequence of str, optional
        Numeric columns whose means are included; default every profiled one.

    Returns
    -------
    DataFrame
        Columns ``segment``, ``name``, ``persona``, ``size``, ``share``, then
        ``mean_<column>`` for each column, then ``recommendation``; rows by ascending
        segment id.
    """
    columns = list(profiles.numeric_columns if columns is None else columns)
    means = profiles.wide("mean")
    rows = []
    for seg in profiles.segments:
        d = descriptions[seg]
        row: dict[str, Any] = {
            "segment": seg,
            "name": d.name,
            "persona": d.persona,
            "size": int(profiles.sizes.at[seg, "size"]),
            "share": float(profiles.sizes.at[seg, "share"]),
        }
        row |= {f"mean_{c}": float(means.at[seg, c]) for c in columns}
        row["recommendation"] = d.recommendation
        rows.append(row)
    return pd.DataFrame(rows)
