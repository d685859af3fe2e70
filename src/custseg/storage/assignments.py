"""The per-customer assignments CSV (id, segment, name, persona), safe to open in a
spreadsheet: a cell a spreadsheet could run as a formula gets a leading quote."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: a cell starting with one of these reads as a formula in a spreadsheet
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: Any) -> str:
    """A formula-safe text cell whose line breaks are all ``\\n``.

    :func:`~custseg.storage.data.write_csv_atomic` ends lines with ``\\n``, and Python's CSV
    writer then quotes fields containing ``\\n`` but not a lone ``\\r``, which would split
    the row when read back; so carriage returns become ``\\n`` (after neutralising).
    """
    return neutralize_cell(value).replace("\r\n", "\n").replace("\r", "\n")


def csv_texts(values: Sequence[Any]) -> pd.Series:
    """:func:`csv_text` of every value, as a column of text (vectorised: a report's
    assignments hold one id per customer)."""
    text = pd.Series([str(v) for v in values], dtype="string[pyarrow]")
    risky = text.str.startswith(FORMULA_PREFIXES).to_numpy(dtype=bool)
    text = text.where(~risky, "'" + text)
    text = text.str.replace("\r\n", "\n", regex=False).str.replace("\r", "\n", regex=False)
    return text.astype(object)


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
    personas: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """One row per customer: id, segment id, segment name and persona, formula-safe.

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
    personas : mapping of int to str, optional
        Segment personas (a model stored before personas has none: no column).

    Returns
    -------
    DataFrame
        Columns ``<id_column>`` (text), ``segment`` (int), ``segment_name`` (text) and
        ``persona`` (text, when given), in the input order; ids and names pass through :func:`neutralize_cell`, and carriage
        returns inside them become ``\\n`` so the CSV reads back row for row.
    """
    labels = np.asarray(labels).astype(np.int64)
    if ids is None:
        id_column, id_values = "row", [str(i) for i in range(1, len(labels) + 1)]
    else:
        id_values = csv_texts(ids)
        if len(id_values) != len(labels):
            raise ValueError(f"{len(id_values)} ids but {len(labels)} labels")
    safe_names = {int(s): csv_text(n) for s, n in names.items()}
    unknown = sorted(set(np.unique(labels).tolist()) - set(safe_names))
    if unknown:
        raise ValueError(f"no name for segment(s) {unknown}")
    columns = {
        id_column: pd.Series(id_values, dtype=object),
        "segment": labels,
        "segment_name": _names_of(labels, safe_names),
    }
    if personas:
        columns["persona"] = _names_of(labels, {int(s): csv_text(p) for s, p in personas.items()})
    return pd.DataFrame(columns)


def _names_of(labels: np.ndarray, names: Mapping[int, str]) -> pd.Series:
    """The name of every label's segment (text)."""
    segments = np.array(sorted(names), dtype=np.int64)
    column = np.array([names[int(s)] for s in segments], dtype=object)
    return pd.Series(column[np.searchsorted(segments, labels)], dtype=object)
