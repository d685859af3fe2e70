"""Reading, validating, generating and writing the customer table.

The raw CSV (e.g. the Mall Customers file) is read with every column as text, checked
against the :class:`~custseg.config.DataConfig` schema and returned with canonical column
names, so nothing downstream deals with raw headers or unparsed values.

Line numbers in error messages are the line numbers of the file as a text editor shows
them: the header is line 1, the first data row is line 2.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from custseg.config import ColumnSpec, DataConfig

__all__ = [
    "RAW_COLUMNS",
    "DataInfo",
    "DataValidationError",
    "file_sha256",
    "generate_customers",
    "load_customers",
    "write_csv_atomic",
]

#: Headers of the raw Mall Customers schema, in file order (what the generator writes).
RAW_COLUMNS = ("CustomerID", "Gender", "Age", "Annual Income (k$)", "Spending Score (1-100)")

#: Cell values (compared case-insensitively, after stripping blanks) that mean "missing".
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "#n/a"})

_MAX_EXAMPLES = 5
EMPTY_FILE = "the file is empty (expected a CSV header line and data rows)"
NO_DATA_ROWS = "the file has a header but no data rows"
_HEADER_LINES = 1  # data row i (0-based) is on file line i + 1 + _HEADER_LINES


class DataValidationError(ValueError):
    """The customer table cannot be used; the message lists every problem found.

    Parameters
    ----------
    path : str
        The file that was read.
    problems : list of str
        One human-readable sentence per problem, naming the column (raw header and
        canonical name) and the offending file lines where that applies.
    what : str, default "customer table"
        What the file is, for the first line of the message (e.g. "transaction log").

    Attributes
    ----------
    path : str
        The file that was read.
    problems : list of str
        The problems, in the order they were found.
    """

    def __init__(
        self, path: str | os.PathLike[str], problems: Sequence[str], what: str = "customer table"
    ) -> None:
        self.path = str(path)
        self.problems = list(problems)
        n = len(self.problems)
        head = f"invalid {what} {self.path!r}: {n} problem{'s' if n != 1 else ''}"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


@dataclass(frozen=True)
class DataInfo:
    """What was loaded: the file, the hash of its bytes and the table's shape.

    Attributes
    ----------
    path : str
        The file that was read, as given in the configuration.
    sha256 : str
        Hex SHA-256 of the raw file bytes (identifies the exact data version).
    n_rows : int
        Number of data rows (customers) loaded.
    n_columns : int
        Number of columns of the returned table (schema columns plus extras).
    normalised : dict of str to int
        Canonical column -> number of categorical values rewritten to their allowed
        spelling (``" male "``, ``"MALE"`` or an alias such as ``"m"`` -> ``"Male"``).
    """

    path: str
    sha256: str
    n_rows: int
    n_columns: int
    normalised: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------- loading


def load_customers(config: DataConfig) -> tuple[pd.DataFrame, DataInfo]:
    """Read and validate the customer table described by ``config``.

    Every column is first read as text; each schema column is then checked against its
    :class:`~custseg.config.ColumnSpec`: the source header must be present, no value may
    be missing, ``id`` values must be unique, ``numeric`` values must be finite numbers
    within the inclusive ``min``/``max`` bounds and ``categorical`` values must be one of
    ``allowed``. Completely blank lines are ignored.

    Parameters
    ----------
    config : DataConfig
        Path of the CSV and the schema (canonical name -> column spec).

    Returns
    -------
    frame : pandas.DataFrame
        Schema columns under their canonical names, in schema order, followed by any
        extra (non-schema) columns under their raw names. Numeric schema columns are
        ``float64``, categorical and id columns are strings (ids exactly as written).
        Extra columns whose every non-missing value is a number become ``float64``
        (missing -> NaN); other extras stay strings. The index is a ``RangeIndex``.
    info : DataInfo
        Path, SHA-256 of the file bytes, and the shape of ``frame``.

    Raises
    ------
    DataValidationError
        If the file is missing, empty or not a parsable CSV, has no data rows, lacks a
        schema column, or any value breaks the schema. All value problems are reported
        together, one per line, with the file line numbers of (up to five) offending rows.
    """
    checked = _check_table(config)
    problems = checked.structural + [f.message for f in checked.failures]
    if problems:
        raise DataValidationError(checked.path, problems)
    return checked.table(np.ones(len(checked.raw), dtype=bool))


@dataclass
class Rejects:
    """The rows :func:`load_customers_with_rejects` set aside, and why.

    Attributes
    ----------
    rows : numpy.ndarray of int
        0-based positions of the rejected rows among the file's data rows.
    lines : numpy.ndarray of int
        Their file lines (the header is line 1).
    reasons : list of str
        Per rejected row, every problem found in it (``"Age='-5': below the minimum
        0; Gender='Robot': not among the allowed values ['Female', 'Male']"``).
    kept_lines : numpy.ndarray of int
        The file lines of the rows kept, in the order of the returned table (a later
        check that rejects one of them names the right line).
    """

    rows: np.ndarray
    lines: np.ndarray
    reasons: list[str]
    kept_lines: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


def load_customers_with_rejects(config: DataConfig) -> tuple[pd.DataFrame, DataInfo, Rejects]:
    """Like :func:`load_customers`, but set the rows with bad values aside instead of
    refusing the file.

    A row is rejected when one of its values breaks the schema (missing, not a number,
    out of range, not allowed, a duplicated id: every row carrying it). Problems of the
    whole file (unreadable, a schema column missing, no data rows) still raise.

    Returns
    -------
    frame : pandas.DataFrame
        The valid rows, as :func:`load_customers` returns them (``RangeIndex``).
    info : DataInfo
        As for :func:`load_customers`; ``n_rows`` counts the valid rows only.
    rejects : Rejects
        The rejected rows, their file lines and reasons (empty when all are valid).

    Raises
    ------
    DataValidationError
        If the file as a whole cannot be read as the schema's table.
    """
    checked = _check_table(config)
    if checked.structural:
        raise DataValidationError(checked.path, checked.structural)
    reasons = pd.Series("", index=checked.raw.index, dtype=object)
    for failure in checked.failures:
        shown = [
            f"{failure.column}={v!r}: {failure.reason}"
            for v in checked.raw.loc[failure.mask, failure.column]
        ]
        before = reasons[failure.mask].to_numpy(dtype=object)
        reasons[failure.mask] = [
            f"{b}; {t}" if b else t for b, t in zip(before, shown, strict=True)
        ]
    bad = (reasons != "").to_numpy()
    lines = checked.lines.to_numpy()
    rejects = Rejects(np.flatnonzero(bad), lines[bad], reasons[bad].tolist(), lines[~bad])
    frame, info = checked.table(~bad)
    return frame, info, rejects


@dataclass
class _Failure:
    """One broken rule of one column: the rows breaking it, the file-level message (with
    examples) and the short per-row reason."""

    column: str  # the raw header
    mask: pd.Series
    message: str
    reason: str


@dataclass
class _Checked:
    """A read table and everything wrong with it (see :func:`_check_table`)."""

    path: str
    sha256: str
    raw: pd.DataFrame
    lines: pd.Series
    values: dict[str, pd.Series]
    extras: list[str]
    normalised: dict[str, int]
    structural: list[str]
    failures: list[_Failure]

    def table(self, keep: np.ndarray) -> tuple[pd.DataFrame, DataInfo]:
        """The canonical table of the rows in ``keep`` and its info."""
        out = {name: values[keep] for name, values in self.values.items()}
        for h in self.extras:
            out[h] = _convert_extra(self.raw.loc[keep, h])
        frame = pd.DataFrame(out)
        frame.index = pd.RangeIndex(len(frame))
        return frame, DataInfo(self.path, self.sha256, len(frame), frame.shape[1], self.normalised)


def _check_table(config: DataConfig) -> _Checked:
    """Read ``config.path`` and check it against the schema, without raising for values.

    File-level problems (unreadable or unparsable file, missing or clashing columns, no
    data rows) are in ``structural``; bad values in ``failures``.
    """
    path = str(config.path)
    if is_parquet(path):  # typed columns, as text: the same rules; rows numbered from 1
        raw, sha = parquet_text(path), source_sha256(path)
        unit, first = "row", 1
    else:
        raw_bytes = _read_bytes(path)
        sha = hashlib.sha256(raw_bytes).hexdigest()
        raw = parse_csv(path, raw_bytes, config)
        unit, first = "line", 1 + _HEADER_LINES

    header = [str(c) for c in raw.columns]
    structural, extras = schema_problems(header, config, HEADER_PLACES[unit])
    lines = pd.Series(raw.index.to_numpy() + first, index=raw.index)
    if raw.empty:
        structural.append(NO_DATA_ROWS)
        return _Checked(path, sha, raw, lines, {}, extras, {}, structural, [])

    values: dict[str, pd.Series] = {}
    normalised: dict[str, int] = {}
    failures: list[_Failure] = []
    for name, spec in config.columns.items():
        if spec.source not in header:
            continue
        column, changed = normalise_categories(raw[spec.source], spec)
        if changed:
            normalised[name] = changed
        values[name], found = _validate_column(name, spec, column, lines, config, unit)
        failures.extend(found)
    return _Checked(path, sha, raw, lines, values, extras, normalised, structural, failures)


#: where a file's column names are, in messages: a CSV's header line, a table's columns
HEADER_PLACES = {"line": "line 1 (header)", "row": "the table's columns"}


def schema_problems(
    header: list[str], config: DataConfig, where: str = HEADER_PLACES["line"]
) -> tuple[list[str], list[str]]:
    """What is wrong with a file's ``header`` for the schema (schema columns missing, extra
    columns named like a canonical column), and its extra (non-schema) columns; ``where``
    names the header in messages (:data:`HEADER_PLACES`)."""
    structural: list[str] = []
    sources = {spec.source for spec in config.columns.values()}
    missing = [(name, spec) for name, spec in config.columns.items() if spec.source not in header]
    if missing:
        structural.append(_missing_columns_message(missing, header, where))
    extras = [h for h in header if h not in sources]
    for h in (h for h in extras if h in config.columns):
        structural.append(
            f"column {h!r} is not in the schema but has the same name as the canonical "
            f"column {h!r} (read from {config.columns[h].source!r}); rename one of them"
        )
    return structural, extras


def normalise_categories(raw: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, int]:
    """``raw`` with each value that is an allowed category up to surrounding spaces and
    case, or one of ``spec.aliases`` (compared the same way), rewritten to the allowed
    spelling; and how many values changed. Other values are left for validation to
    refuse. Only categorical columns with ``allowed`` values are normalised.
    """
    if spec.kind != "categorical" or spec.allowed is None:
        return raw, 0
    lookup = {str(a).casefold(): str(a) for a in spec.allowed}
    lookup |= {str(k).strip().casefold(): str(v) for k, v in (spec.aliases or {}).items()}
    mapped = raw.str.strip().str.casefold().map(lookup)
    changed = mapped.notna() & (mapped != raw)
    return raw.where(~changed, mapped), int(changed.sum())


#: the key of the validated table's Parquet metadata recording what it was validated from
_VALIDATED_KEY = b"custseg.validated_from"


#: bump when what :func:`load_customers` returns changes: older files are then not read
_VALIDATED_FORMAT = 1


def validated_record(config: DataConfig, sha256: str) -> bytes:
    """What a validated table depends on: the CSV's bytes, how they are read, the schema."""
    schema = {name: asdict(spec) for name, spec in config.columns.items()}
    csv_format = {
        "delimiter": config.delimiter,
        "decimal": config.decimal,
        "thousands": config.thousands,
        "encoding": config.encoding,
    }
    record = {"format": _VALIDATED_FORMAT, "sha256": sha256, "columns": schema, "csv": csv_format}
    return json.dumps(record, sort_keys=True).encode()


def write_validated(table: pd.DataFrame, info: DataInfo, config: DataConfig) -> Path:
    """Write the validated ``table`` to ``config.validated`` as Parquet, atomically.

    Typed and columnar, it spares later stages parsing and validating the CSV text again
    (:func:`load_table`). Its metadata records the source's SHA-256 and the schema it was
    validated against. The same table gives the same bytes.
    """
    import pyarrow as pa

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    metadata = {
        **(arrow.schema.metadata or {}),
        _VALIDATED_KEY: validated_record(config, info.sha256),
    }
    dest = Path(config.validated)
    _write_arrow_atomic(arrow.replace_schema_metadata(metadata), dest)
    return dest


def write_parquet_atomic(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``df`` as one Parquet file (zstd) to ``path`` atomically, as
    :func:`write_csv_atomic` writes a CSV: the same frame gives the same bytes."""
    import pyarrow as pa

    _write_arrow_atomic(pa.Table.from_pandas(df, preserve_index=False), Path(path))


def _write_arrow_atomic(arrow, dest: Path) -> None:
    """Write an Arrow table as Parquet to ``dest`` via a temporary file moved into place
    (replacing a file, or the directory engine=spark writes)."""
    import pyarrow.parquet as pq

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        pq.write_table(arrow, tmp_name, compression="zstd")
        with open(tmp_name, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_name, 0o644)
        if dest.is_dir() and not dest.is_symlink():  # engine=spark's directory
            shutil.rmtree(dest)
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_table(config: DataConfig) -> tuple[pd.DataFrame, DataInfo]:
    """The validated customer table: the same as :func:`load_customers`, but fast.

    Reads ``config.validated`` (written by ``custseg-validate``, as one Parquet file, or by
    Spark as a directory) when it is the validation of the current bytes of
    ``config.path`` under the current schema (checked by hash); otherwise (absent, or
    stale: the data or schema changed since) validates the CSV.
    """
    info = current_validated(config)
    if info is not None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(config.validated).to_pandas(), info
        except (OSError, pa.ArrowException):  # unreadable: validate the CSV
            pass
    return load_customers(config)


#: what a validated directory (written by Spark) holds besides its Parquet file
VALIDATED_SIDECAR = "_custseg.json"


def current_validated(config: DataConfig) -> DataInfo | None:
    """What ``config.validated`` holds when it is the validation of the current bytes of
    ``config.path`` under the current schema (checked by hash, from the Parquet footer or a
    directory's :data:`VALIDATED_SIDECAR` alone: the table is not read); None when it is
    absent, stale or unreadable."""
    validated = Path(config.validated)
    if not Path(config.path).exists():
        return None
    if validated.is_dir():
        return _current_directory(config, validated)
    if not validated.is_file():
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        footer = pq.read_metadata(validated)
        recorded = (footer.schema.to_arrow_schema().metadata or {}).get(_VALIDATED_KEY)
        sha = source_sha256(config.path)
    except (OSError, pa.ArrowException):  # unreadable or not Parquet
        return None
    if recorded != validated_record(config, sha):
        return None
    return DataInfo(str(config.path), sha, footer.num_rows, footer.num_columns)


def _current_directory(config: DataConfig, validated: Path) -> DataInfo | None:
    """:func:`current_validated` of a directory written by Spark."""
    try:
        sidecar = json.loads((validated / VALIDATED_SIDECAR).read_text(encoding="utf-8"))
        sha = source_sha256(config.path)
        recorded = json.dumps(sidecar["validated_from"], sort_keys=True).encode()
        shape = int(sidecar["n_rows"]), int(sidecar["n_columns"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if recorded != validated_record(config, sha):
        return None
    return DataInfo(str(config.path), sha, *shape)


#: the most distinct values a column may have for its value counts to be profiled
PROFILED_CATEGORIES = 20


@dataclass(frozen=True)
class ColumnSummary:
    """A validated table's columns in brief.

    Attributes
    ----------
    numeric : dict
        Numeric column -> (min, mean, max).
    categories : dict
        Every other column with at most :data:`PROFILED_CATEGORIES` distinct values ->
        value -> count.
    """

    numeric: dict[str, tuple[float, float, float]]
    categories: dict[str, dict[str, int]]


def column_summary(table: pd.DataFrame) -> ColumnSummary:
    """The :class:`ColumnSummary` of a validated ``table``."""
    numeric = table.select_dtypes("number")
    stats = {c: (numeric[c].min(), numeric[c].mean(), numeric[c].max()) for c in numeric.columns}
    counts = {
        column: table[column].value_counts().to_dict()
        for column in table.select_dtypes(exclude="number").columns
        if table[column].nunique() <= PROFILED_CATEGORIES
    }
    return ColumnSummary(stats, counts)


def is_parquet(path: str | Path) -> bool:
    """Whether ``data.path`` names a Parquet table (a file or a directory of files)."""
    return str(path).rstrip("/").endswith(".parquet")


def source_sha256(path: str | Path) -> str:
    """SHA-256 of a data source: a file's bytes, or a directory's files (each one's name
    and hash, in name order; names starting with ``.`` or ``_`` are not data)."""
    p = Path(path)
    if not p.is_dir():
        return file_sha256(p)
    digest = hashlib.sha256()
    for f in sorted(p.rglob("*")):
        parts = f.relative_to(p).parts
        if f.is_file() and not any(part.startswith((".", "_")) for part in parts):
            digest.update(f"{'/'.join(parts)}\0{file_sha256(f)}\n".encode())
    return digest.hexdigest()


def as_text(values: pd.Series) -> pd.Series:
    """A typed column as the text a CSV would hold: missing values empty, numbers as
    Python writes them; the rules of the CSV columns then apply unchanged."""
    present = values.notna()
    text = values.astype(object).where(present, "").map(str)
    return text.astype(str)


def parquet_text(path: str) -> pd.DataFrame:
    """A Parquet table (file or directory) with every column as text (:func:`as_text`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not Path(path).exists():
        check_file(path)  # says it is not found, and how to create it
    try:
        table = pq.read_table(path)
        # pandas' stored index is not data (and would renumber the rows): dropped
        table = table.drop([c for c in table.column_names if is_pandas_index(c)])
        frame = table.to_pandas(ignore_metadata=True)
    except (OSError, pa.ArrowException) as exc:
        raise DataValidationError(path, [f"cannot read the Parquet table: {exc}"]) from exc
    return pd.DataFrame({str(c): as_text(frame[c]) for c in frame.columns})


def source_columns(config: DataConfig) -> list[str]:
    """The column names ``config.path`` has (its header, or the Parquet table's schema)."""
    path = config.path
    if is_parquet(path):
        import pyarrow.parquet as pq

        if not Path(path).exists():
            check_file(path)
        try:
            return [str(c) for c in pq.read_schema(_first_parquet(Path(path))).names]
        except OSError as exc:
            raise DataValidationError(path, [f"cannot read the Parquet table: {exc}"]) from exc
    data = _read_bytes(path)
    first = _decode(path, data[: data.find(b"\n") if b"\n" in data else len(data)], config.encoding)
    return read_header(path, first.strip("\r\ufeff"), config)


def _first_parquet(path: Path) -> Path:
    if not path.is_dir():
        return path
    files = sorted(f for f in path.rglob("*.parquet") if not f.name.startswith((".", "_")))
    return files[0] if files else path


def batch_config(config: DataConfig, required: Sequence[str]) -> DataConfig:
    """``config`` without the schema columns its file lacks, except the ``required`` ones
    (and the id): a batch may hold only the columns a model reads. The columns it has are
    validated as always; a missing required one refuses the file, by name."""
    present = set(source_columns(config))
    keep = {*required, *config.not_profiled}
    columns = {n: spec for n, spec in config.columns.items() if spec.source in present or n in keep}
    return dataclasses.replace(config, columns=columns)


def is_pandas_index(column: str) -> bool:
    """Whether a Parquet column is an unnamed index pandas stored (``__index_level_0__``)."""
    return re.fullmatch(r"__index_level_\d+__", column) is not None


def _read_bytes(path: str) -> bytes:
    p = check_file(path)
    try:
        return p.read_bytes()
    except OSError as exc:
        raise DataValidationError(path, [f"cannot read the file: {exc}"]) from exc


def check_file(path: str) -> Path:
    """``path`` as a :class:`~pathlib.Path`, when it is a regular file.

    Raises
    ------
    DataValidationError
        When it does not exist (saying how to create it) or is not a regular file.
    """
    p = Path(path)
    if not p.exists():
        raise DataValidationError(
            path,
            [
                f"file not found: {path!r} (resolved to {str(p.resolve())!r}); create it with "
                f"`custseg generate --out {path}` or copy a customer CSV there"
            ],
        )
    if not p.is_file():
        raise DataValidationError(path, [f"{path!r} is not a regular file"])
    return p


def require_input(path: str | Path, key: str) -> None:
    """Refuse a batch to score or monitor that is not there, naming the setting that gave
    it (no suggestion to generate data into the file the user meant to read).

    Raises
    ------
    DataValidationError
        When ``path`` does not exist.
    """
    p = Path(path)
    if not p.exists():
        raise DataValidationError(
            str(path),
            [f"file not found: {str(path)!r} (resolved to {str(p.resolve())!r}); check {key}"],
        )


def _decode(path: str, data: bytes, encoding: str) -> str:
    """``data`` as text in ``encoding`` (a UTF-8 byte-order mark is dropped)."""
    try:
        return data.decode("utf-8-sig" if encoding.lower().replace("_", "-") in _UTF8 else encoding)
    except LookupError as exc:
        raise DataValidationError(path, [f"unknown data.encoding={encoding!r}"]) from exc
    except UnicodeDecodeError as exc:
        hint = "save it as UTF-8 CSV, or set data.encoding to the file's encoding"
        if encoding.lower() in _UTF8 and _decodes(data, "cp1252"):
            hint = (
                "it reads as cp1252 (Windows Western European, a superset of latin-1): if "
                "that is its encoding, set data.encoding=cp1252"
            )
        raise DataValidationError(
            path, [f"the file is not {encoding} text ({exc.reason} at byte {exc.start}); {hint}"]
        ) from exc


_UTF8 = ("utf-8", "utf8", "utf-8-sig")


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _delimiter_hint(header_line: str, config: DataConfig) -> str | None:
    """What delimiter the header line uses, when it is not ``data.delimiter`` but another
    common one splits it into the schema's columns."""
    sources = {spec.source for spec in config.columns.values()}
    if not sources:  # no column known: nothing to recognise the header by
        return None
    for candidate, shown in ((",", ","), (";", ";"), ("\t", "\\t"), ("|", "|")):
        if candidate != config.delimiter and sources <= set(
            next(csv.reader([header_line], delimiter=candidate), [])
        ):
            return f"the header looks {shown!r}-delimited: set data.delimiter='{shown}'"
    return None


def parse_csv(path: str, data: bytes, config: DataConfig) -> pd.DataFrame:
    """Parse CSV bytes into an all-string frame; drop blank lines, keep line numbering."""
    if not data.strip():
        raise DataValidationError(path, [EMPTY_FILE])
    text = _decode(path, data, config.encoding)
    try:
        return _parse_text(path, text, config)
    except csv.Error as exc:  # e.g. a stray carriage return or NUL byte in a field
        raise DataValidationError(path, [f"not a parsable CSV file: {exc}"]) from exc


def read_header(path: str, line: str, config: DataConfig) -> list[str]:
    """The column names of a header ``line``.

    Raises
    ------
    DataValidationError
        When another common delimiter splits it into the schema's columns (with the
        setting to change), or a column name is repeated.
    """
    header = next(csv.reader([line], delimiter=config.delimiter), [])
    if hint := _delimiter_hint(line, config):
        raise DataValidationError(path, [f"line 1 (header): {hint}"])
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataValidationError(
            path, [f"line 1 (header): duplicated column name(s) {', '.join(map(repr, dupes))}"]
        )
    return header


def _parse_text(path: str, text: str, config: DataConfig) -> pd.DataFrame:
    """:func:`parse_csv` of decoded text."""
    header = read_header(path, text.partition("\n")[0].strip("\r"), config)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            raw = pd.read_csv(
                io.StringIO(text),
                sep=config.delimiter,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,
                index_col=False,  # a trailing comma on every line is not an index column
            )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise DataValidationError(path, [f"not a parsable CSV file: {exc}"]) from exc
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        # pandas dropped fields beyond the header; only empty ones (trailing commas) may go
        long_lines = _lines_with_extra_fields(text, len(header), config.delimiter)
        if long_lines:
            message = extra_fields_message(long_lines, len(long_lines), len(header), config)
            raise DataValidationError(path, [message])
    raw = raw.fillna("")  # short rows leave NaN even with na_filter=False
    # blank lines (kept so that row i is file line i + 2) are not customers; a record of
    # empty fields (",,,,") is, and fails validation as missing values
    empty = (raw == "").all(axis=1)
    if not empty.any():  # the usual case: no line to look at
        return raw
    lines = text.splitlines()[1:]
    blank = empty & pd.Series(
        [i < len(lines) and not lines[i].strip() for i in range(len(raw))], index=raw.index
    )
    return raw.loc[~blank] if blank.any() else raw


def extra_fields_message(
    lines: Sequence[int], total: int, n_columns: int, config: DataConfig
) -> str:
    """The message of ``total`` records with values beyond the ``n_columns`` of the
    header, the first of them on ``lines``."""
    shown = ", ".join(map(str, lines[:_MAX_EXAMPLES]))
    more = f" and {total - _MAX_EXAMPLES} more" if total > _MAX_EXAMPLES else ""
    return (
        f"{total} row(s) have more fields than the {n_columns} header columns, at line "
        f"{shown}{more} (a delimiter {config.delimiter!r} inside a value needs double quotes)"
    )


def _lines_with_extra_fields(text: str, n_columns: int, delimiter: str) -> list[int]:
    """File lines of records with non-empty fields beyond the ``n_columns`` of the header."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    next(reader, None)
    return [
        reader.line_num
        for record in reader
        if len(record) > n_columns and any(field.strip() for field in record[n_columns:])
    ]


def _missing_columns_message(
    missing: list[tuple[str, ColumnSpec]], header: list[str], where: str
) -> str:
    parts = []
    folded = {h.strip().casefold(): h for h in header}
    for name, spec in missing:
        part = f"{spec.source!r} ({name})"
        near = folded.get(spec.source.strip().casefold())
        if near is not None:
            part += f" [did you mean {near!r}?]"
        parts.append(part)
    found = ", ".join(map(repr, header)) if header else "none"
    return f"{where}: missing required column(s) {', '.join(parts)}; columns found: {found}"


#: plain decimal numbers, which pandas and Arrow read to the same float (tested)
_PLAIN_NUMBER = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"


def _to_number(values: pd.Series, config: DataConfig) -> pd.Series:
    """Numbers written with ``data.thousands`` separators and the ``data.decimal`` mark;
    NaN where a value is not a number.

    A column of plain decimal numbers only (the usual case) is cast by Arrow, 20 times
    faster than ``pandas.to_numeric`` (1M values: 0.04 s instead of 0.9 s); any other
    column goes through ``pandas.to_numeric``, which marks each value it cannot read.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if config.thousands:
        values = values.str.replace(config.thousands, "", regex=False)
    if config.decimal != ".":
        values = values.str.replace(config.decimal, ".", regex=False)
    text = pa.array(values, type=pa.string())
    plain = pc.all(pc.match_substring_regex(text, _PLAIN_NUMBER)).as_py() is not False
    # "-0": pandas reads 0 or -0.0 depending on the column's other values, Arrow -0.0
    if plain and not pc.any(pc.match_substring_regex(text, "^-0+$")).as_py():
        numbers = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        return pd.Series(numbers, index=values.index, name=values.name, dtype="float64")
    return pd.to_numeric(values, errors="coerce").astype("float64")


#: what non-numbers may all look like, with what to set then: (pattern, applies when, hint)
NUMBER_HINTS: tuple[tuple[str, str, str], ...] = (
    (
        r"-?\d{1,3}(,\d{3})+(\.\d+)?",
        "thousands",
        " (they look like numbers with thousands separators: set data.thousands=',')",
    ),
    (
        r"-?\d+,\d+",
        "decimal",
        " (they look like numbers with a decimal comma: set data.decimal=',')",
    ),
)


def number_hints(config: DataConfig) -> list[tuple[str, str]]:
    """The :data:`NUMBER_HINTS` that apply under ``config``: (pattern, hint)."""
    applies = {"thousands": config.thousands is None, "decimal": config.decimal == "."}
    return [(pattern, hint) for pattern, when, hint in NUMBER_HINTS if applies[when]]


def number_hint(bad: pd.Series, config: DataConfig) -> str:
    """What the non-numbers (stripped) look like, when all of them look like one number
    format."""
    for pattern, hint in number_hints(config):
        if bad.str.fullmatch(pattern).all():
            return hint
    return ""


@dataclass(frozen=True)
class Rule:
    """One rule of one schema column, as reported: the file-level message of the rows that
    break it, and the short reason given for each such row.

    Attributes
    ----------
    key : str
        Which rule: ``missing``, ``number``, ``min``, ``max`` or ``allowed``.
    column : str
        The raw header.
    label : str
        ``"column 'Age' (age)"``.
    noun : str
        What a breaking row is called, counted in the message (``"missing value"``).
    reason : str
        The per-row reason (``"below the minimum 0"``).
    detail : str
        What follows the count in the message (``" below the minimum 0"``).
    """

    key: str
    column: str
    label: str
    noun: str
    reason: str
    detail: str = ""

    def message(self, count: int, where: str, hint: str = "") -> str:
        """``"column 'Age' (age): 2 values below the minimum 0 at line 3 ('-5'), ..."``."""
        return f"{self.label}: {_count(count, self.noun)}{self.detail} at {where}{hint}"


def column_rules(name: str, spec: ColumnSpec) -> list[Rule]:
    """The rules a schema column's values are checked by, in the order they are reported
    (ids are also checked for uniqueness across rows: :func:`duplicate_ids_message`)."""
    label = f"column {spec.source!r} ({name})"
    rules = [Rule("missing", spec.source, label, "missing value", "missing")]
    if spec.kind == "numeric":
        expected = " (expected a finite number)"
        rules.append(
            Rule("number", spec.source, label, "non-numeric value", "not a number", expected)
        )
        if spec.min is not None:
            low = f"below the minimum {spec.min:g}"
            rules.append(Rule("min", spec.source, label, "value", low, f" {low}"))
        if spec.max is not None:
            high = f"above the maximum {spec.max:g}"
            rules.append(Rule("max", spec.source, label, "value", high, f" {high}"))
    elif spec.kind == "categorical" and spec.allowed is not None:
        not_allowed = f"not among the allowed values {[str(a) for a in spec.allowed]}"
        rules.append(Rule("allowed", spec.source, label, "value", not_allowed, f" {not_allowed}"))
    return rules


def check_column(
    spec: ColumnSpec, raw: pd.Series, config: DataConfig
) -> tuple[pd.Series, dict[str, pd.Series]]:
    """One schema column's values (numbers as ``float64``, NaN where not one; other kinds
    stripped text) and, per rule key of :func:`column_rules`, the rows breaking it.

    ``raw`` is the column as read (categorical values already normalised). Works on any
    slice of the rows (uniqueness of ids is checked across rows elsewhere).
    """
    values = raw.str.strip()
    is_missing = values.str.lower().isin(MISSING_TOKENS)
    present = ~is_missing
    masks = {"missing": is_missing}
    if spec.kind == "numeric":
        nums = _to_number(values.where(present, ""), config).where(present)
        bad = present & ~np.isfinite(nums)
        masks["number"] = bad
        ok = present & ~bad
        if spec.min is not None:
            masks["min"] = ok & (nums < spec.min)
        if spec.max is not None:
            masks["max"] = ok & (nums > spec.max)
        return nums, masks
    if spec.kind == "categorical" and spec.allowed is not None:
        masks["allowed"] = present & ~values.isin([str(a) for a in spec.allowed])
    return values.astype(str), masks


def _validate_column(
    name: str,
    spec: ColumnSpec,
    raw: pd.Series,
    lines: pd.Series,
    config: DataConfig,
    unit: str = "line",
) -> tuple[pd.Series, list[_Failure]]:
    """Check one schema column; return its converted values and the rules broken (rows
    named by ``lines``, as ``unit`` N: file lines of a CSV, rows of a Parquet table)."""
    values, masks = check_column(spec, raw, config)
    failures: list[_Failure] = []
    for rule in column_rules(name, spec):
        mask = masks[rule.key]
        if not mask.any():
            continue
        hint = number_hint(raw[mask].str.strip(), config) if rule.key == "number" else ""
        message = rule.message(int(mask.sum()), _where(lines[mask], raw[mask], unit), hint)
        failures.append(_Failure(spec.source, mask, message, rule.reason))
    if spec.kind == "id":
        label = column_rules(name, spec)[0].label
        present = values.where(~masks["missing"])
        failures.extend(_duplicate_ids(label, spec.source, present, lines, unit))
    return values, failures


def _duplicate_ids(
    label: str, source: str, ids: pd.Series, lines: pd.Series, unit: str = "line"
) -> list[_Failure]:
    """The rows whose (present) id another row has too."""
    dup = ids.notna() & ids.duplicated(keep=False)
    if not dup.any():
        return []
    dup_ids = ids[dup]
    uniq = pd.unique(dup_ids)
    shown = []
    for v in uniq[:_MAX_EXAMPLES]:
        on = lines[dup_ids.index[dup_ids.to_numpy() == v]].to_numpy()
        shown.append((v, on, len(on)))
    message = duplicate_ids_message(label, shown, len(uniq), int(dup.sum()), unit)
    return [_Failure(source, dup, message, DUPLICATE_ID_REASON)]


#: the per-row reason of a duplicated id
DUPLICATE_ID_REASON = "the id is on another row too"


def duplicate_ids_message(
    label: str,
    shown: Sequence[tuple[object, Sequence[int], int]],
    n_ids: int,
    n_rows: int,
    unit: str = "line",
) -> str:
    """The message of ``n_ids`` ids found on more than one row (``n_rows`` rows in all):
    ``shown`` holds the first (at most five) ids with their first file lines and how many
    lines each is on."""
    examples = [f"{v!r} on {lines_only(ln, n, unit)}" for v, ln, n in shown[:_MAX_EXAMPLES]]
    more = f" and {n_ids - _MAX_EXAMPLES} more" if n_ids > _MAX_EXAMPLES else ""
    return (
        f"{label}: ids must be unique; {_count(n_ids, 'duplicated id')} "
        f"on {n_rows} rows: {'; '.join(examples)}{more}"
    )


def _convert_extra(raw: pd.Series) -> pd.Series:
    """Extra column: ``float64`` if every non-missing value is a number, else strings."""
    nums, present = extra_numbers(raw)
    if not present.any() or nums[present].isna().any():
        return raw.astype(str)
    return nums


def extra_numbers(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """An extra column's values as ``float64`` (NaN where missing or not a number) and
    where a value is present (not missing)."""
    values = raw.str.strip()
    present = ~values.str.lower().isin(MISSING_TOKENS)
    nums = pd.to_numeric(values.where(present), errors="coerce").astype("float64")
    return nums, present


def _count(n: int | np.integer, noun: str) -> str:
    n = int(n)
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _show(value: object, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 4] + "...'"


def _where(lines: pd.Series, raw: pd.Series, unit: str = "line") -> str:
    """``line 3 ('abc'), line 9 ('x') and 4 more`` for the first offending rows."""
    shown = lines.to_numpy()[:_MAX_EXAMPLES], raw.to_numpy()[:_MAX_EXAMPLES]
    return where_shown(*shown, len(lines), unit)


def where_shown(
    lines: Sequence[int], values: Sequence[object], total: int, unit: str = "line"
) -> str:
    """``line 3 ('abc'), line 9 ('x') and 4 more``: the first offending rows' lines (or
    another ``unit``: rows) and values (at most five are shown) out of ``total``."""
    shown = [
        f"{unit} {int(a)} ({_show(v)})"
        for a, v in zip(lines[:_MAX_EXAMPLES], values[:_MAX_EXAMPLES], strict=False)
    ]
    extra = total - len(shown)
    return ", ".join(shown) + (f" and {extra} more" if extra > 0 else "")


def lines_only(lines: Sequence[int], total: int, unit: str = "line") -> str:
    """``line 3, line 9 and 4 more``: the first (at most five) of ``total`` lines."""
    shown = ", ".join(f"{unit} {int(a)}" for a in lines[:_MAX_EXAMPLES])
    extra = total - min(len(lines), _MAX_EXAMPLES)
    return shown + (f" and {extra} more" if extra > 0 else "")


# ------------------------------------------------------------------------- generation

# Five Mall-Customers-like segments: share, income mean/sd (k$), score mean/sd, age mean/sd.
_SEGMENTS = np.array(
    [
        # share, inc_mu, inc_sd, score_mu, score_sd, age_mu, age_sd
        [0.11, 26.0, 7.0, 20.0, 7.0, 45.0, 13.0],  # low income, low spending
        [0.11, 26.0, 7.0, 79.0, 7.0, 25.0, 5.0],  # low income, high spending (young)
        [0.40, 55.0, 8.0, 50.0, 6.0, 43.0, 14.0],  # middle of the road (older, wide)
        [0.19, 87.0, 8.0, 82.0, 7.0, 33.0, 4.0],  # high income, high spending
        [0.19, 88.0, 8.0, 17.0, 8.0, 41.0, 11.0],  # high income, low spending
    ]
)
_FEMALE_SHARE = 0.56
#: the generated segments by name (income level, spending level), in the rows' order above
GENERATED_SEGMENTS = ("low-low", "low-high", "mid-mid", "high-high", "high-low")
#: the generated numeric columns a drift may shift, by short name
SHIFTABLE = {"age": RAW_COLUMNS[2], "income": RAW_COLUMNS[3], "spending": RAW_COLUMNS[4]}


def grown_shares(segment: str, points: float) -> np.ndarray:
    """The generator's segment shares with ``segment``'s grown by ``points`` percentage
    points (negative: shrunk), the others scaled to make up the difference."""
    shares = _SEGMENTS[:, 0].copy()
    if segment not in GENERATED_SEGMENTS:
        raise ValueError(
            f"unknown segment {segment!r}; choose one of {', '.join(GENERATED_SEGMENTS)}"
        )
    i = GENERATED_SEGMENTS.index(segment)
    target = shares[i] + points / 100
    if not 0 <= target <= 1:
        raise ValueError(
            f"{segment}'s share {100 * shares[i]:.0f}% {points:+g} points is not a share"
        )
    others = np.arange(len(shares)) != i
    shares[others] *= (1 - target) / shares[others].sum()
    shares[i] = target
    return shares


def shifted(table: pd.DataFrame, column: str, sds: float) -> pd.DataFrame:
    """``table`` with the generated numeric ``column`` (a :data:`SHIFTABLE` name) moved by
    ``sds`` of its standard deviations, rounded as generated (values may then leave the
    schema's range: validation refuses those rows)."""
    if column not in SHIFTABLE:
        raise ValueError(f"unknown column {column!r}; choose one of {', '.join(SHIFTABLE)}")
    raw = SHIFTABLE[column]
    values = table[raw].to_numpy(dtype=float)
    out = table.copy()
    out[raw] = np.rint(values + sds * values.std()).astype(np.int64)
    return out


def _segment_counts(n_rows: int, shares: np.ndarray) -> np.ndarray:
    """Split ``n_rows`` into integer counts proportional to ``shares`` (largest remainder)."""
    exact = shares / shares.sum() * n_rows
    counts = np.floor(exact).astype(np.int64)
    short = n_rows - int(counts.sum())
    if short:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def generate_customers(n_rows: int, seed: int, shares: np.ndarray | None = None) -> pd.DataFrame:
    """Generate a synthetic customer table like the Mall Customers data.

    Customers come from five compact segments in (annual income, spending score):
    low/low (~11%), low/high (~11%), mid/mid (~40%), high/high (~19%) and high/low (~19%),
    so that KMeans with k=5 on income and spending recovers them. Ages depend on the
    segment, ~56% of customers are female. Segment sizes are exact proportions (largest
    remainder) and rows are shuffled so segments are interleaved; ids are ``1..n_rows`` in
    row order. Fully vectorised: millions of rows take about a second.

    Parameters
    ----------
    n_rows : int
        Number of customers (>= 1).
    seed : int
        Seed of :func:`numpy.random.default_rng`; the same ``(n_rows, seed)`` gives the
        same table.
    shares : ndarray, optional
        Other shares of the five segments (:func:`grown_shares`), for a drifted batch.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RAW_COLUMNS` (the raw file schema): ``CustomerID`` (int64, 1..n),
        ``Gender`` (``"Female"``/``"Male"``), ``Age`` (int64 in [18, 70]),
        ``Annual Income (k$)`` (int64 in [15, 140]), ``Spending Score (1-100)``
        (int64 in [1, 99]).

    Raises
    ------
    ValueError
        If ``n_rows`` < 1.
    """
    n_rows = int(n_rows)
    if n_rows < 1:
        raise ValueError(f"n_rows must be >= 1, got {n_rows}")
    rng = np.random.default_rng(seed)
    counts = _segment_counts(n_rows, _SEGMENTS[:, 0] if shares is None else shares)
    segment = rng.permutation(np.repeat(np.arange(len(_SEGMENTS), dtype=np.int64), counts))
    params = _SEGMENTS[segment]  # (n_rows, 7)

    z = rng.standard_normal((n_rows, 3))
    income = np.clip(np.rint(params[:, 1] + params[:, 2] * z[:, 0]), 15, 140)
    score = np.clip(np.rint(params[:, 3] + params[:, 4] * z[:, 1]), 1, 99)
    age = np.clip(np.rint(params[:, 5] + params[:, 6] * z[:, 2]), 18, 70)
    female = rng.random(n_rows) < _FEMALE_SHARE
    gender = pd.Categorical.from_codes(female.astype(np.int8), categories=["Male", "Female"])

    return pd.DataFrame(
        {
            RAW_COLUMNS[0]: np.arange(1, n_rows + 1, dtype=np.int64),
            RAW_COLUMNS[1]: np.asarray(gender, dtype=object),
            RAW_COLUMNS[2]: age.astype(np.int64),
            RAW_COLUMNS[3]: income.astype(np.int64),
            RAW_COLUMNS[4]: score.astype(np.int64),
        }
    )


# ---------------------------------------------------------------------------- writing


def _has_carriage_return(df: pd.DataFrame) -> bool:
    """Whether any text cell or column name of ``df`` contains ``"\\r"``."""
    if any("\r" in str(name) for name in df.columns):
        return True
    for name in df.columns:
        column = df[name]
        if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            continue
        if column.astype("string").str.contains("\r", regex=False).fillna(False).any():
            return True
    return False


def write_csv_atomic(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``df`` as CSV to ``path`` atomically.

    The table is written to a temporary file in the destination directory, flushed to
    disk and moved over ``path`` with :func:`os.replace`, so readers never see a
    half-written file. Parent directories are created. The same frame always gives
    byte-identical files (no index, ``"\\n"`` line endings, UTF-8).

    Parameters
    ----------
    df : pandas.DataFrame
        The table to write (its index is not written).
    path : str or pathlib.Path
        Destination file.

    Raises
    ------
    OSError
        If the directory cannot be created or the file cannot be written; no temporary
        file is left behind.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            # csv quotes a field holding "\n" but not one holding a lone "\r", which
            # readers take as a line break: quote every field in that (rare) case
            quoting = csv.QUOTE_ALL if _has_carriage_return(df) else csv.QUOTE_MINIMAL
            df.to_csv(fh, index=False, lineterminator="\n", quoting=quoting)
            fh.flush()
            os.fsync(fh.fileno())
        mode = dest.stat().st_mode & 0o777 if dest.exists() else 0o644
        os.chmod(tmp, mode)  # mkstemp creates 0600; give the data file normal permissions
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def file_sha256(path: str | Path) -> str:
    """Return the hex SHA-256 of the file's bytes.

    Parameters
    ----------
    path : str or pathlib.Path
        File to hash (read in 1 MiB chunks).

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
