"""The customer table validated in Spark (``engine=spark``): same rules, same messages.

Spark reads the CSV as text lines, numbered as a text editor numbers them (the header is
line 1), or a Parquet table's columns as text (rows numbered from 1, files in name order,
as the scikit-learn engine reads them), and every partition is checked by the rules of
:mod:`custseg.storage.data`, called on
its rows (:func:`~custseg.storage.data.check_column`, the same code the scikit-learn engine
runs on the whole table). What each row breaks comes back as flags; Spark counts them
across partitions, finds the first offending lines and the duplicated ids, and the
problems are worded by :mod:`custseg.storage.data`'s message functions. So a file is refused
with the same problems by either engine (tested), and a valid one gives the same table.

The validated table is written by Spark, in line order, as a directory holding one
Parquet file and ``_custseg.json`` (what it was validated from: the source's SHA-256, the
schema and how it is read; Parquet readers skip files whose names start with ``_``).

Limits of this engine, each refused with a clear error that names the lines: the CSV is
UTF-8, and a record is on one line (a quoted value may hold the delimiter, not a line
break).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

import pandas as pd

from custseg.backends.spark.engine import pandas_3_tolerated, spark_session, sql_name
from custseg.config import ColumnSpec, DataConfig, EngineConfig
from custseg.storage.data import (
    _UTF8,
    EMPTY_FILE,
    HEADER_PLACES,
    NO_DATA_ROWS,
    PROFILED_CATEGORIES,
    VALIDATED_SIDECAR,
    ColumnSummary,
    DataInfo,
    DataValidationError,
    Rule,
    as_text,
    check_column,
    check_file,
    column_rules,
    duplicate_ids_message,
    extra_fields_message,
    extra_numbers,
    is_pandas_index,
    is_parquet,
    lines_only,
    normalise_categories,
    number_hints,
    read_header,
    schema_problems,
    source_sha256,
    validated_record,
    where_shown,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

#: the file line of a row (the header is line 1)
LINE = "__custseg_line"
#: the file's text lines as Spark reads them
_TEXT = "value"
_PART = "part-00000.parquet"


@dataclass(frozen=True)
class _Checked:
    """Where a checked row keeps what :func:`_check_rows` found (column names)."""

    name: str  # canonical column
    spec: ColumnSpec
    rules: list[Rule]

    @property
    def raw(self) -> str:
        """The value as written (categorical values under their allowed spelling)."""
        return f"__custseg_raw_{self.name}"

    def flag(self, rule: Rule) -> str:
        """True where the row breaks ``rule``."""
        return f"__custseg_{self.name}_{rule.key}"

    def hint(self, index: int) -> str:
        """True where the value looks like the number format of hint ``index``."""
        return f"__custseg_{self.name}_hint{index}"

    @property
    def normalised(self) -> str:
        """True where the value was rewritten to its allowed spelling."""
        return f"__custseg_{self.name}_normalised"


@dataclass(frozen=True)
class _Layout:
    """What :func:`_check_rows` is given and returns: the header, the schema columns it
    has, the extra columns."""

    header: list[str]
    checked: list[_Checked]
    extras: list[str]
    config: DataConfig
    #: what a row is called in messages: "line" (of a CSV file) or "row" (of a table)
    unit: str = "line"

    @staticmethod
    def extra_raw(index: int) -> str:
        return f"__custseg_extra{index}"

    @staticmethod
    def extra_number(index: int) -> str:
        return f"__custseg_extra{index}_number"

    @staticmethod
    def extra_present(index: int) -> str:
        return f"__custseg_extra{index}_present"

    @staticmethod
    def extra_text(index: int) -> str:
        """True where the value is present and not a number."""
        return f"__custseg_extra{index}_text"

    long_record = "__custseg_long"
    #: a quoted value that does not close on its line (engine=spark reads a record a line)
    unclosed = "__custseg_unclosed"

    def ddl(self) -> str:
        """The Spark schema of :func:`_check_rows`'s output."""
        fields = [(LINE, "long"), (self.long_record, "boolean"), (self.unclosed, "boolean")]
        n_hints = len(number_hints(self.config))
        for c in self.checked:
            kind = "double" if c.spec.kind == "numeric" else "string"
            fields += [(c.name, kind), (c.raw, "string"), (c.normalised, "boolean")]
            fields += [(c.flag(r), "boolean") for r in c.rules]
            if c.spec.kind == "numeric":
                fields += [(c.hint(i), "boolean") for i in range(n_hints)]
        for j in range(len(self.extras)):
            fields += [
                (self.extra_raw(j), "string"),
                (self.extra_number(j), "double"),
                (self.extra_present(j), "boolean"),
                (self.extra_text(j), "boolean"),
            ]
        return ", ".join(f"{sql_name(name)} {kind}" for name, kind in fields)


def _check_rows(batches: Iterator[pd.DataFrame], layout: _Layout) -> Iterator[pd.DataFrame]:
    """Parse and check a partition's CSV lines (``value``, :data:`LINE`): one row per
    record (the header and blank lines dropped) with its values and what it breaks."""
    n = len(layout.header)
    for batch in batches:
        body = batch[batch[LINE] > 1]
        parsed = [_record(t, layout.config.delimiter) for t in body[_TEXT]]
        # a blank line is no record; a line of blanks or of delimiters is (as for pandas)
        keep = [bool(t.strip()) or any(r) for t, (r, _) in zip(body[_TEXT], parsed, strict=True)]
        kept = [p for p, k in zip(parsed, keep, strict=True) if k]
        long = [len(r) > n and any(f.strip() for f in r[n:]) for r, _ in kept]
        raw = pd.DataFrame(
            [(r + [""] * (n - len(r)))[:n] for r, _ in kept], columns=layout.header, dtype=str
        )
        unclosed = [u for _, u in kept]
        yield _check_raw(raw, body.loc[keep, LINE], layout, long, unclosed)


def _record(line: str, delimiter: str) -> tuple[list[str], bool]:
    """The fields of one line, read as pandas reads them, and whether a quoted value is
    left open at its end (the reader then goes on into the next line: a sentinel one)."""
    reader = csv.reader(iter([line, ""]), delimiter=delimiter)
    fields = next(reader, [])
    return fields, reader.line_num > 1


def _check_typed(batches: Iterator[pd.DataFrame], layout: _Layout) -> Iterator[pd.DataFrame]:
    """Check a partition of a Parquet table (its columns and :data:`LINE`, the row
    number), its values as text (:func:`~custseg.storage.data.as_text`, as the scikit-learn
    engine reads them)."""
    for batch in batches:
        raw = pd.DataFrame({h: as_text(batch[h]) for h in layout.header}, index=batch.index)
        yield _check_raw(raw, batch[LINE], layout)


def _check_raw(
    raw: pd.DataFrame,
    lines: pd.Series,
    layout: _Layout,
    long: list[bool] | None = None,
    unclosed: list[bool] | None = None,
) -> pd.DataFrame:
    """The rows of ``raw`` (text, under the file's column names) with their values and
    the rules each breaks (:meth:`_Layout.ddl`); ``long`` and ``unclosed`` flag the CSV
    records with values past the header or an open quote (none: no row)."""
    config = layout.config
    hints = number_hints(config)
    none = [False] * len(raw)
    out: dict[str, object] = {
        LINE: lines.to_numpy(),
        layout.long_record: none if long is None else long,
        layout.unclosed: none if unclosed is None else unclosed,
    }
    for c in layout.checked:
        written = raw[c.spec.source]
        column, _ = normalise_categories(written, c.spec)
        values, masks = check_column(c.spec, column, config)
        out |= {c.name: values, c.raw: column, c.normalised: (column != written)}
        out |= {c.flag(r): masks[r.key] for r in c.rules}
        if c.spec.kind == "numeric":
            stripped = column.str.strip()
            out |= {c.hint(i): stripped.str.fullmatch(p) for i, (p, _) in enumerate(hints)}
    for j, header in enumerate(layout.extras):
        numbers, present = extra_numbers(raw[header])
        out |= {
            layout.extra_raw(j): raw[header],
            layout.extra_number(j): numbers,
            layout.extra_present(j): present,
            layout.extra_text(j): present & numbers.isna(),
        }
    return pd.DataFrame({k: _values(v) for k, v in out.items()})


def _values(values: object) -> object:
    return values.to_numpy() if isinstance(values, pd.Series) else values


def validate_spark(config: DataConfig, engine: EngineConfig) -> tuple[DataFrame, DataInfo]:
    """Validate ``config.path`` (a CSV file, or a Parquet table: ``*.parquet``, a file or a
    directory) in Spark, as :func:`~custseg.storage.data.load_customers` does.

    Returns
    -------
    frame : pyspark.sql.DataFrame
        The validated table (what ``load_customers`` returns, as Spark columns):
        schema columns under their canonical names, then the extra columns, then
        :data:`LINE`, each row's file line (or row number), which gives the file order
        (:func:`write_parquet_dir` writes in it). It is cached: ``unpersist()`` it when
        done (the line numbering's checkpoint goes with the session).
    info : DataInfo
        The file, its SHA-256, the row and column counts and the normalised values.

    Raises
    ------
    DataValidationError
        With the problems ``load_customers`` reports for the same file.
    """
    path = str(config.path)
    session = spark_session(engine)
    try:
        if is_parquet(path):
            checked, layout, structural = _parquet_checked(session, path, config)
        else:
            checked, layout, structural = _csv_checked(session, path, config)
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    checked = checked.persist()
    try:
        validated, info = _validated(checked, layout, path, structural, source_sha256(path))
        validated = validated.persist()
        validated.count()  # from the checked rows' cache, which then goes
        return validated, info
    except DataValidationError:
        raise
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    finally:
        checked.unpersist()


def _unreadable(path: str, exc: Exception) -> Exception:
    """A Parquet table Spark cannot read (no file in a directory, files of other column
    types) as a :class:`DataValidationError` with Spark's reason; any other error as is
    (a failure of custseg's own code in a Python worker is not the data's)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException, PythonException

    if isinstance(exc, DataValidationError) or not is_parquet(path):
        return exc
    if isinstance(exc, Py4JJavaError):
        message = str(exc.java_exception.getMessage() or exc)
    elif isinstance(exc, PySparkException) and not isinstance(exc, PythonException):
        message = str(exc)
    else:
        return exc
    if not any(kind in message for kind in _READ_ERRORS):  # e.g. an executor lost
        return exc
    reason = message.strip().splitlines()[0]
    return DataValidationError(path, [f"cannot read the Parquet table: {reason}"])


#: Spark's error classes of a table it cannot read (any other failure is not the data's)
_READ_ERRORS = ("FAILED_READ_FILE", "UNABLE_TO_INFER_SCHEMA", "PATH_NOT_FOUND", "CANNOT_READ")


def _layout(header: list[str], config: DataConfig, unit: str) -> tuple[_Layout, list[str]]:
    """What the rows of a file with ``header`` are checked for, and its structural problems."""
    structural, extras = schema_problems(header, config, HEADER_PLACES[unit])
    present = [(n, s) for n, s in config.columns.items() if s.source in header]
    checked = [_Checked(n, s, column_rules(n, s)) for n, s in present]
    return _Layout(header, checked, extras, config, unit), structural


def _csv_checked(
    session: SparkSession, path: str, config: DataConfig
) -> tuple[DataFrame, _Layout, list[str]]:
    """A CSV's rows checked (lazily), what they were checked for, its structural problems."""
    local = check_file(path)
    if config.encoding.lower().replace("_", "-") not in _UTF8:
        raise DataValidationError(
            path,
            [
                f"engine=spark reads UTF-8 text, not data.encoding={config.encoding!r}: "
                "save the file as UTF-8, or validate it with engine=sklearn"
            ],
        )
    first = _first_line(local)
    if first is None:
        raise DataValidationError(path, [EMPTY_FILE])
    # a nameless column (a trailing delimiter) is named as pandas names it
    header = [h or f"Unnamed: {i}" for i, h in enumerate(read_header(path, first, config))]
    layout, structural = _layout(header, config, "line")
    numbered, not_utf8 = _numbered(session.read.text(local.resolve().as_uri()))
    if not_utf8:
        raise DataValidationError(path, [_not_utf8(numbered, not_utf8)])
    with pandas_3_tolerated():
        checked = numbered.mapInPandas(partial(_check_rows, layout=layout), layout.ddl())
    return checked, layout, structural


def _parquet_checked(
    session: SparkSession, path: str, config: DataConfig
) -> tuple[DataFrame, _Layout, list[str]]:
    """A Parquet table's rows checked (lazily), numbered from 1 in the order the
    scikit-learn engine reads them (files by name, rows in file order)."""
    from pyspark.sql import functions as F

    if not Path(path).exists():
        check_file(path)  # not found, and how to create it
    frame = session.read.parquet(Path(path).resolve().as_uri())
    # pandas' stored index is not data: the scikit-learn engine drops it too
    columns = [str(c) for c in frame.columns if not is_pandas_index(str(c))]
    layout, structural = _layout(columns, config, "row")
    file, index = "__custseg_file", "__custseg_index"
    tagged = frame.select(
        *[F.col(sql_name(c)) for c in columns],
        F.col("_metadata.file_path").alias(file),
        F.col("_metadata.row_index").alias(index),
    )
    counts = dict(tagged.groupBy(file).count().collect())
    # pyarrow reads a directory's files in the order of their names (Spark's are URIs)
    order = sorted(counts, key=lambda uri: unquote(urlparse(uri).path))
    offset = _offsets(file, [(name, counts[name]) for name in order])
    numbered = tagged.withColumn(LINE, (offset + F.col(index) + 1).cast("long"))
    numbered = numbered.drop(file, index)
    with pandas_3_tolerated():
        checked = numbered.mapInPandas(partial(_check_typed, layout=layout), layout.ddl())
    return checked, layout, structural


def _offsets(key: str, counts: list[tuple[object, int]]) -> Column:
    """The rows before each value of column ``key`` (``counts``: rows per value, in order)."""
    from pyspark.sql import functions as F

    pairs, total = [], 0
    for value, n in counts:
        pairs += [F.lit(value), F.lit(total)]
        total += n
    return F.element_at(F.create_map(*pairs), F.col(key)) if pairs else F.lit(0)


def _first_line(path: Path) -> str | None:
    """The file's first line (the header) without a UTF-8 byte-order mark; None when
    the file holds nothing but blanks."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        first = fh.readline()
        rest = first.strip() or any(line.strip() for line in fh)
    return first.rstrip("\r\n") if rest else None


def _numbered(text: DataFrame) -> tuple[DataFrame, int]:
    """``text`` with each line's number (the first line is 1), and how many lines are not
    UTF-8 text.

    Computed in the JVM: a partition's lines are consecutive, so a line's number is its
    place in its partition plus the lines of the partitions before it (counted per
    partition, with the lines that are not UTF-8, in one pass). The partitions are
    checkpointed first (on the executors), so every later job sees the lines split as
    they were counted: Spark may split a file otherwise in another job. An executor lost
    meanwhile fails the job, loudly, rather than renumbering lines.
    """
    from pyspark.sql import functions as F

    pid, mid = "__custseg_pid", "__custseg_mid"
    tagged = text.withColumn(pid, F.spark_partition_id()).withColumn(
        mid, F.monotonically_increasing_id()
    )
    tagged = tagged.localCheckpoint(eager=True)
    bad = F.count(F.when(~F.is_valid_utf8(_TEXT), 1))
    counts = {p: (n, b) for p, n, b in tagged.groupBy(pid).agg(F.count("*"), bad).collect()}
    offset = _offsets(pid, [(p, counts[p][0]) for p in sorted(counts)])
    # monotonically_increasing_id: the partition id in the upper 31 bits, the place below
    place = F.col(mid) - F.shiftleft(F.col(pid).cast("long"), 33)
    numbered = tagged.select(_TEXT, (offset + place + 1).cast("long").alias(LINE))
    return numbered, sum(b for _, b in counts.values())


def _not_utf8(numbered: DataFrame, count: int) -> str:
    """The problem of a file with ``count`` lines that are not UTF-8 text."""
    from pyspark.sql import functions as F

    lines = _first_lines(numbered, ~F.is_valid_utf8(_TEXT))
    return (
        f"the file is not UTF-8 text, at {lines_only(lines, count)}: save it as UTF-8 "
        "(engine=spark reads UTF-8 only; engine=sklearn reads data.encoding)"
    )


def _validated(
    checked: DataFrame, layout: _Layout, path: str, structural: list[str], sha256: str
) -> tuple[DataFrame, DataInfo]:
    """The validated table of ``checked``, or the problems found, as a
    :class:`DataValidationError`."""
    from pyspark.sql import functions as F

    totals = checked.agg(*_aggregates(layout)).first().asDict()
    if totals["rows"] == 0:
        raise DataValidationError(path, [*structural, NO_DATA_ROWS])
    problems = list(structural)
    if totals["unclosed"]:
        lines = _first_lines(checked, F.col(layout.unclosed))
        raise DataValidationError(path, [_unclosed_message(lines, totals["unclosed"])])
    if totals["long"]:
        lines = _first_lines(checked, F.col(layout.long_record))
        message = extra_fields_message(lines, totals["long"], len(layout.header), layout.config)
        raise DataValidationError(path, [message])
    for c in layout.checked:
        problems += _column_problems(checked, c, totals, layout)
    if problems:
        raise DataValidationError(path, problems)
    columns = [F.col(sql_name(c.name)) for c in layout.checked]
    for j, header in enumerate(layout.extras):
        numeric = totals[f"x{j}_present"] and not totals[f"x{j}_text"]
        chosen = layout.extra_number(j) if numeric else layout.extra_raw(j)
        columns.append(F.col(chosen).alias(header))
    normalised = {c.name: totals[c.normalised] for c in layout.checked if totals[c.normalised]}
    info = DataInfo(path, sha256, totals["rows"], len(columns), normalised)
    return checked.select(*columns, LINE), info


def _unclosed_message(lines: list[int], total: int) -> str:
    return (
        f"{total} row(s) have a quoted value that does not close on its line, at "
        f"{lines_only(lines, total)}: engine=spark reads one record per line; remove the "
        "line breaks inside values, or validate the file with engine=sklearn"
    )


def _aggregates(layout: _Layout) -> list[Column]:
    """Every count :func:`_validated` needs, in one pass."""
    from pyspark.sql import functions as F

    def count(condition: Column) -> Column:
        return F.count(F.when(condition, 1))

    out = [
        F.count(F.lit(1)).alias("rows"),
        count(F.col(layout.long_record)).alias("long"),
        count(F.col(layout.unclosed)).alias("unclosed"),
    ]
    n_hints = len(number_hints(layout.config))
    for c in layout.checked:
        out.append(count(F.col(c.normalised)).alias(c.normalised))
        for rule in c.rules:
            flag = F.col(c.flag(rule))
            out.append(count(flag).alias(c.flag(rule)))
            if rule.key == "number":  # bad values not of each hint's format
                out += [count(flag & ~F.col(c.hint(i))).alias(c.hint(i)) for i in range(n_hints)]
    for j in range(len(layout.extras)):
        present, text = F.col(layout.extra_present(j)), F.col(layout.extra_text(j))
        out += [count(present).alias(f"x{j}_present"), count(text).alias(f"x{j}_text")]
    return out


def _first_lines(frame: DataFrame, condition: Column, *columns: str) -> list[tuple]:
    """(line, *columns) of the first five rows where ``condition`` holds."""
    rows = frame.filter(condition).orderBy(LINE).select(LINE, *columns).limit(5).collect()
    return [tuple(r) for r in rows] if columns else [r[0] for r in rows]


def _column_problems(checked: DataFrame, c: _Checked, totals: dict, layout: _Layout) -> list[str]:
    """The problems of one schema column, worded and ordered as ``load_customers`` does."""
    from pyspark.sql import functions as F

    problems = []
    hints = number_hints(layout.config)
    for rule in c.rules:
        count = totals[c.flag(rule)]
        if not count:
            continue
        shown = _first_lines(checked, F.col(c.flag(rule)), c.raw)
        lines, values = [line for line, _ in shown], [value for _, value in shown]
        where = where_shown(lines, values, count, layout.unit)
        hint = ""
        if rule.key == "number":
            hint = next((h for i, (_, h) in enumerate(hints) if not totals[c.hint(i)]), "")
        problems.append(rule.message(count, where, hint))
    if c.spec.kind == "id":
        problems += _duplicate_ids(checked, c, layout.unit)
    return problems


def _duplicate_ids(checked: DataFrame, c: _Checked, unit: str) -> list[str]:
    """The message of the ids on more than one row, if any (``load_customers``'s)."""
    from pyspark.sql import functions as F

    missing = next(r for r in c.rules if r.key == "missing")
    ids = checked.filter(~F.col(c.flag(missing))).groupBy(F.col(sql_name(c.name)).alias("id"))
    dups = ids.agg(
        F.count(F.lit(1)).alias("n"),
        F.min(LINE).alias("first"),
        F.slice(F.sort_array(F.collect_list(LINE)), 1, 5).alias("lines"),
    ).filter(F.col("n") > 1)
    dups = dups.persist()
    try:
        totals = dups.agg(F.count(F.lit(1)).alias("ids"), F.sum("n").alias("rows")).first()
        if not totals["ids"]:
            return []
        shown = [(r["id"], r["lines"], r["n"]) for r in dups.orderBy("first").limit(5).collect()]
    finally:
        dups.unpersist()
    label = c.rules[0].label
    return [duplicate_ids_message(label, shown, totals["ids"], int(totals["rows"]), unit)]


def write_validated_spark(frame: DataFrame, info: DataInfo, config: DataConfig) -> Path:
    """Write the validated ``frame`` to ``config.validated`` (:func:`write_parquet_dir`),
    with :data:`~custseg.storage.data.VALIDATED_SIDECAR`: what it was validated from."""
    sidecar = {
        "validated_from": json.loads(validated_record(config, info.sha256)),
        "n_rows": info.n_rows,
        "n_columns": info.n_columns,
        "normalised": info.normalised,
    }
    return write_parquet_dir(frame, Path(config.validated), {VALIDATED_SIDECAR: sidecar})


def write_parquet_dir(
    frame: DataFrame, dest: Path, sidecars: dict[str, dict] | None = None
) -> Path:
    """Write ``frame`` to the directory ``dest`` as one Parquet file, in the order of its
    :data:`LINE` (which is not written), and the JSON ``sidecars`` (file name -> content);
    put in place when complete, replacing a file or directory there.

    The same table gives the same bytes (Spark's part file is renamed, its checksums and
    marker files removed).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.tmp"
    # the rows are computed on every partition, then gathered in LINE order (one file)
    ordered = frame.repartition(1).sortWithinPartitions(LINE).drop(LINE)
    try:
        ordered.write.parquet(tmp.resolve().as_uri(), compression="zstd")
        (part,) = sorted(tmp.glob("part-*.parquet"))
        part.rename(tmp / _PART)
        for other in tmp.iterdir():
            if other.name != _PART:
                other.unlink()
        for name, content in (sidecars or {}).items():
            (tmp / name).write_text(json.dumps(content, sort_keys=True, indent=1) + "\n")
        _replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _replace_dir(new: Path, dest: Path) -> None:
    """Put directory ``new`` at ``dest``, replacing a file or directory there."""
    if dest.is_dir() and not dest.is_symlink():
        old = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.old"
        os.replace(dest, old)
        os.replace(new, dest)
        shutil.rmtree(old, ignore_errors=True)
        return
    if dest.exists() or dest.is_symlink():
        dest.unlink()
    os.replace(new, dest)


def spark_column_summary(frame: DataFrame) -> ColumnSummary:
    """The :class:`~custseg.storage.data.ColumnSummary` of a validated ``frame``, computed by
    Spark (one pass for the numbers and distinct counts, one per profiled column)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType

    fields = [f for f in frame.schema.fields if f.name != LINE]
    numeric = [f.name for f in fields if isinstance(f.dataType, NumericType)]
    others = [f.name for f in fields if f.name not in numeric]
    aggregates = [F.min(F.col(sql_name(c))) for c in numeric]
    aggregates += [F.mean(F.col(sql_name(c))) for c in numeric]
    aggregates += [F.max(F.col(sql_name(c))) for c in numeric]
    aggregates += [F.approx_count_distinct(F.col(sql_name(c))) for c in others]
    row = list(frame.agg(*aggregates).first())
    n = len(numeric)
    stats = {c: (row[i], row[n + i], row[2 * n + i]) for i, c in enumerate(numeric)}
    counts = {}
    for j, column in enumerate(others):
        if row[3 * n + j] > 2 * PROFILED_CATEGORIES:  # surely too many: not counted
            continue
        present = frame.filter(F.col(sql_name(column)).isNotNull())
        values = present.groupBy(F.col(sql_name(column))).count().limit(PROFILED_CATEGORIES + 1)
        found = {r[0]: r[1] for r in values.collect()}
        if len(found) <= PROFILED_CATEGORIES:
            counts[column] = found
    return ColumnSummary(stats, counts)
