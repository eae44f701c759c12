"""Rendering of query output: CSV an RFC 4180 reader splits back into the same fields,
JSON Lines that strict JSON parsers read, and NULL told apart from the empty string.

The independent reader is Python's ``csv`` module; that ``culvert load`` reads the output
back into the same typed values is tests/test_roundtrip.py's subject.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from culvert_cli.output import csv_field, json_value, render_rows

# Every character a str column can hold: all of Unicode but lone surrogates.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
AWKWARD = ["", " ", "a,b", 'say "hi"', '"', "line\nbreak", "cr\ronly", "crlf\r\n", "\t", "\x00"]


def read_csv(lines: list[str]) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(line + "\n" for line in lines), newline="")))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.one_of(TEXT, st.sampled_from(AWKWARD)), min_size=2, max_size=2)))
def test_every_string_survives_an_rfc4180_reader(values):
    rows = [{"a": a, "b": b} for a, b in values]
    assert read_csv(list(render_rows(rows, ["a", "b"], "csv"))) == [["a", "b"], *values]


def test_null_is_the_token_unquoted_and_a_value_equal_to_it_is_quoted():
    assert [csv_field(None), csv_field(None, "NA")] == ["", "NA"]
    assert [csv_field(""), csv_field("NA", "NA"), csv_field("NA")] == ['""', '"NA"', "NA"]
    assert [csv_field(b""), csv_field(b"\x00\xff"), csv_field(b"\xff", "ff")] == [
        '""',
        "00ff",
        '"ff"',
    ]
    # Surrounding whitespace is quoted too: readers that trim fields keep it then.
    assert [csv_field(" x"), csv_field("x\t"), csv_field("x y")] == ['" x"', '"x\t"', "x y"]
    row = {"s": "", "n": None}
    assert list(render_rows([row], ["s", "n"], "csv", "NA")) == ["s,n", '"",NA']
    assert list(render_rows([row], ["s", "n"], "csv")) == ["s,n", '"",']


def test_values_of_every_type_as_csv_fields():
    when = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    fields = [
        csv_field(v)
        for v in (-(2**63), 2**63 - 1, 5e-324, -math.inf, math.nan, True, False, when, b"\x00")
    ]
    assert fields == [
        "-9223372036854775808",
        "9223372036854775807",
        "5e-324",
        "-inf",
        "nan",
        "true",
        "false",
        "2024-05-01T10:00:00.123456Z",
        "00",
    ]


def test_jsonl_is_strict_json_with_non_finite_floats_as_strings():
    when = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    row = {"f": math.nan, "g": math.inf, "h": -math.inf, "z": -0.0, "b": b"", "t": when}
    (line,) = render_rows([row], ["f", "g", "h", "z", "b", "t", "n"], "jsonl")
    # allow_nan=False refuses the NaN/Infinity tokens strict parsers (JavaScript, Go) reject.
    assert json.dumps(json.loads(line), allow_nan=False)
    assert json.loads(line) == {
        "f": "nan", "g": "inf", "h": "-inf", "z": -0.0, "b": "", "t": "2024-05-01T12:00:00+02:00",
        "n": None,
    }  # fmt: skip
    assert json_value(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"


def test_table_shows_null_as_the_token_and_flattens_line_breaks():
    lines = list(render_rows([{"a": "x\ny"}, {}], ["a"], "table", "NULL"))
    assert lines == ["a", "----", "x y", "NULL"]
