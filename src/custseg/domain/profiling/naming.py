"""Level words, names and personas of segments, read from their profiles; and the
check that a model's names agree with the numbers shown beside them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from custseg.domain.features import FeatureSet
from custseg.domain.profiling.profiles import SegmentProfiles, profile_columns, profile_segments
from custseg.domain.profiling.rules import (
    LEVELS,
    SCORES,
    AttributeWords,
    NamingRules,
    PersonaRule,
    rule_holds,
)


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
            if ordinary and rule_holds(before, seg_levels, seg_scores):
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
        if rule_holds(rule, levels, scores):
            return rule
    return rules.default_persona


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
