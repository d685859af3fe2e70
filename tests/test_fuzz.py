"""Fuzzing the customer-table reader: any bytes give a table or a clear validation error.

Property-based (hypothesis): random bytes, and random mutations of a valid export (bytes
deleted, inserted, replaced, lines duplicated or cut, another delimiter or encoding),
under every file-format setting. The outcome must be a validated table or a
:class:`~custseg.storage.data.DataValidationError` whose message names the file, never another
exception. Seeded (``derandomize``) so CI runs the same examples every time.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custseg.storage.data import DataValidationError, generate_customers, load_customers

from conftest import compose_settings

FUZZ = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

DATA = compose_settings().data
FORMATS = [
    {},
    {"delimiter": ";", "decimal": ","},
    {"thousands": ","},
    {"encoding": "cp1252"},
    {"delimiter": "\t"},
]
VALID = generate_customers(12, seed=1).to_csv(index=False).encode("utf-8")


def check_reads_or_refuses(path: Path, data: bytes, fmt: dict) -> None:
    path.write_bytes(data)
    config = dataclasses.replace(DATA, path=str(path), **fmt)
    try:
        table, info = load_customers(config)
    except DataValidationError as exc:
        assert str(path) in str(exc) and exc.problems and all(exc.problems)
        return
    # a table that validated is a table of the schema: no missing values, right types
    assert info.n_rows == len(table) > 0
    assert list(table.columns[: len(DATA.columns)]) == list(DATA.columns)
    for name, spec in DATA.columns.items():
        if spec.kind == "numeric":
            assert table[name].dtype == np.float64 and np.isfinite(table[name]).all()
        else:
            assert pd.api.types.is_string_dtype(table[name]) and (table[name] != "").all()


@FUZZ
@given(data=st.binary(max_size=3000), fmt=st.sampled_from(FORMATS))
def test_random_bytes(tmp_path, data, fmt):
    check_reads_or_refuses(tmp_path / "fuzz.csv", data, fmt)


@st.composite
def mutated_export(draw) -> bytes:
    """A valid export with a few random edits."""
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["delete", "insert", "replace", "line", "delimiter", "latin"]))
        if edit == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=20))
        elif edit == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif edit == "line":
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i] if draw(st.booleans()) else lines[i][: len(lines[i]) // 2])
            data = bytearray(b"\n".join(lines))
        elif edit == "delimiter":
            data = bytearray(bytes(data).replace(b",", draw(st.sampled_from([b";", b"\t", b"|"]))))
        elif edit == "latin":
            data[at:at] = "Zoé,Müller".encode(draw(st.sampled_from(["cp1252", "utf-8"])))
    return bytes(data)


@FUZZ
@given(data=mutated_export(), fmt=st.sampled_from(FORMATS))
def test_mutated_exports(tmp_path, data, fmt):
    check_reads_or_refuses(tmp_path / "fuzz.csv", data, fmt)


def test_the_unmutated_export_reads(tmp_path):
    """The fuzzers start from a table that validates (so mutations test the reader)."""
    path = tmp_path / "valid.csv"
    path.write_bytes(VALID)
    table, _ = load_customers(dataclasses.replace(DATA, path=str(path)))
    assert len(table) == 12


@pytest.mark.parametrize(
    "data",
    [b"\x00\x00\x00", b"\xff\xfe\x00C", b'"', b"CustomerID\n\n\n", b"a,b\n" * 3, b"\r\r\r"],
)
def test_pathological_files(tmp_path, data):
    check_reads_or_refuses(tmp_path / "odd.csv", data, {})
