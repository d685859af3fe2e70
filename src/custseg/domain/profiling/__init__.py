"""Segment insights: profiles, readable names, personas and recommendations.

Three modules, imported one way: :mod:`.rules` (the naming rules, plain dataclasses the
typed configuration fills) <- :mod:`.profiles` (per-segment summaries) <- :mod:`.naming`
(level words, names, personas, the checks that names agree with the numbers).

Pure: DataFrames and arrays in, DataFrames and dataclasses out (no files, no MLflow, no
Hydra). The rule dataclasses (:class:`~custseg.domain.profiling.rules.NamingRules` and its parts) are plain dataclasses so
the typed configuration can use them (``conf/personas/default.yaml`` fills them).

How a segment is described
--------------------------
1. :func:`~custseg.domain.profiling.profiles.profile_segments` summarises each segment in original units: size and share,
   mean / median / quartiles of every numeric column, the category mix of every
   categorical column, and the *standardised difference* of each segment mean from the
   whole customer base, ``(segment mean - overall mean) / overall std`` (sample std,
   ``ddof=1``; 0 when the column is constant).
2. :func:`~custseg.domain.profiling.naming.segment_levels` turns standardised differences into level words: ``"high"``
   when it is above ``+threshold``, ``"low"`` when below ``-threshold``, else ``"mid"``
   (``threshold`` = :attr:`NamingRules.level_threshold`, 0.5 standard deviations by
   default). Segment means are compared with the spread of individual customers, so a
   segment is "high income" when its average customer earns clearly more than the
   average customer of the base, whatever the number of segments.
3. :func:`~custseg.domain.profiling.naming.name_segments` builds a name from the levels of the clustering columns
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
