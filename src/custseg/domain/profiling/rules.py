"""The naming rules: level words, attribute words and persona rules (``conf/personas/``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LEVELS = ("low", "mid", "high")
"""Level words of a segment on a column, from worst to best (or below to above the base)."""

SCORES = (1, 2, 3, 4, 5)
"""Quintile scores of a segment on a column, 5 the best (the classic RFM scores)."""

LEVEL_METHODS = ("std_diff", "quintile")
"""How levels are found: standardised difference of means, or quintile score of medians."""

DIRECTIONS = ("", "higher", "lower")
"""Which values of a column are better: none declared, higher ones, lower ones."""


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
        :func:`~custseg.domain.profiling.naming.segment_scores`) or a list of them. A condition on a column the profile
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
        (:func:`~custseg.domain.profiling.naming.segment_levels`); right for roughly symmetric columns such as age or
        income. ``quintile``: levels from the quintile score of the segment median
        among all customers (scores 1-2 low, 3 mid, 4-5 high; :func:`~custseg.domain.profiling.naming.segment_scores`);
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
            holding = [r for r in named if rule_holds(r, levels, scores or {})]
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


def rule_holds(rule: PersonaRule, levels: Mapping[str, str], scores: Mapping[str, int]) -> bool:
    """Whether every condition of ``rule`` holds for a segment's levels and scores."""

    def holds(column: str, allowed: Any) -> bool:
        wanted = _as_levels(allowed)
        return column in levels and (levels[column] in wanted or str(scores.get(column)) in wanted)

    return all(holds(column, allowed) for column, allowed in rule.when.items())
