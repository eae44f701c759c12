"""What ``culvert query --format csv|jsonl`` writes, ``culvert load`` reads back: same rows.

Rows go into one table through the API, out through the CLI's ``query``, into a second table
of the same schema through the CLI's ``load``, and the two tables must hold equal rows (NaN
equal to NaN), for every column type, NULL in every column, and CSV with and without a NULL
token. A fixed set of edge values runs on both stores; generated rows (hypothesis) on SQLite.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from culvert_cli.main import main
from culvert_py.ops import verify_index
from culvert_py.schema import parse_schema

COLUMNS = {
    "k": "int",
    "i": "int",
    "f": "float",
    "s": "str",
    "b": "bytes",
    "flag": "bool",
    "t": "datetime",
}
VALUE_COLUMNS = [c for c in COLUMNS if c != "k"]
#: (format, --null token) of each export and load.
FORMATS = [("csv", None), ("csv", "NA"), ("jsonl", None)]

INTS = [0, 1, -1, 2**63 - 1, -(2**63 - 1), -(2**63), 10**18]
FLOATS = [
    0.0, -0.0, 1.5, -2.25, 0.1, 1e16, 123456789.123456789, math.nan, math.inf, -math.inf,
    5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1.7976931348623157e308,
]  # fmt: skip
STRS = [
    "", " ", "   ", "  padded  ", "NA", "null", "NULL", "a,b", ",", 'q"uote', '"', '""',
    '"quoted"', "line\nbreak", "\n", "cr\ronly", "\r", "crlf\r\n", "tab\there", "\t",
    "ünïcødé 日本語 🎉", "\x00", "nul\x00mid", "\\x00", "0x", "true", "nan", "-", "\ufeffbom",
    "line\u2028sep", "\x85", "\x1c", "=1+1", "x" * 300,
]  # fmt: skip
BYTES = [b"", b"\x00", b"\x00\x00", b"\xff\x00\xfe", bytes(range(256)), b"NA", b",\n"]
BOOLS = [True, False]
DATETIMES = [
    datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC),
    datetime(2024, 5, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))),
    datetime(2024, 5, 1, 0, 0, tzinfo=timezone(-timedelta(hours=23, minutes=59))),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime.min.replace(tzinfo=UTC),
    datetime.max.replace(tzinfo=UTC),
]
EDGES = {"i": INTS, "f": FLOATS, "s": STRS, "b": BYTES, "flag": BOOLS, "t": DATETIMES}


def edge_rows() -> list[dict]:
    """Every edge value of every column at least once; each column NULL in some rows."""
    count = max(len(v) for v in EDGES.values())
    rows = [{"k": n, **{c: v[n % len(v)] for c, v in EDGES.items()}} for n in range(count)]
    for j, column in enumerate(VALUE_COLUMNS):
        row = {"k": count + j, **{c: v[j % len(v)] for c, v in EDGES.items()}}
        row[column] = None
        rows.append(row)
    rows.append({"k": -1, **dict.fromkeys(VALUE_COLUMNS)})
    return rows


def apply_tables(db, names: list[str]) -> None:
    """Tables of one schema, with a term index on the str column and a composite range index
    on (datetime, float), so the loads write entries of every awkward value too."""
    indexes = {
        "by_s": {"kind": "term", "columns": ["s"]},
        "by_t_f": {"kind": "range", "columns": ["t", "f"], "include": ["b"]},
    }
    spec = {"row_key": ["k"], "columns": COLUMNS, "salt_buckets": 2, "indexes": indexes}
    db.apply_schema(parse_schema({"tables": {n: dict(spec) for n in names}}))


def contents(table) -> dict[int, dict]:
    """Rows by key, NaN replaced by a marker (NaN != NaN)."""

    def same(value):
        return "NaN" if isinstance(value, float) and math.isnan(value) else value

    return {r["k"]: {c: same(v) for c, v in r.items()} for r in table.scan_rows()}


def culvert(url: str, *args: str) -> bytes:
    """Run the CLI in-process; its stdout, which must be the whole output on success."""
    result = CliRunner().invoke(main, ["--store", url, *args], catch_exceptions=False)
    assert result.exit_code == 0, f"culvert {' '.join(args)}: {result.output}{result.stderr}"
    return result.stdout_bytes


def export_and_load(url: str, source: str, target: str, fmt: str, null, folder: Path) -> None:
    token = ["--null", null] if null else []
    out = culvert(url, "query", source, "--format", fmt, *token)
    path = folder / f"{target}.{fmt}"
    path.write_bytes(out)
    culvert(url, "load", target, str(path), *token)


@pytest.fixture
def tables(db, store):
    """A source table and one target table per format; dropped afterwards."""
    names = [f"rt_{uuid.uuid4().hex[:8]}" for _ in range(1 + len(FORMATS))]
    apply_tables(db, names)
    yield [db.table(n) for n in names]
    for name in names:
        db.drop_table(name)


def test_edge_values_of_every_type_round_trip_in_every_format(db, store, tables, tmp_path):
    source, *targets = tables
    rows = edge_rows()
    source.put_many(rows)
    expected = contents(source)
    assert len(expected) == len(rows)
    for (fmt, null), target in zip(FORMATS, targets, strict=True):
        export_and_load(store.url, source.name, target.name, fmt, null, tmp_path)
        assert contents(target) == expected, f"{fmt} --null {null}"
        for index in ("by_s", "by_t_f"):  # entries of every awkward value, written by the load
            report = verify_index(db, target.name, index, workers=2)
            assert report.clean and report.missing == report.orphan == 0, report.summary()


def test_microseconds_and_offsets_survive_as_the_same_instant(db, store, tables, tmp_path):
    source, *targets = tables
    when = datetime(2024, 5, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    source.put({"k": 1, "t": when})
    for (fmt, null), target in zip(FORMATS, targets, strict=True):
        export_and_load(store.url, source.name, target.name, fmt, null, tmp_path)
        got = target.get(1)["t"]
        assert got == when and got.microsecond == 999999 and got.utcoffset() == timedelta(0)


# -- generated rows (SQLite) -----------------------------------------------------------

AWARE = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(-(24 * 60 - 1), 24 * 60 - 1),
)
VALUES = {
    "i": st.integers(-(2**63), 2**63 - 1),
    "f": st.floats(allow_nan=True, allow_infinity=True),
    "s": st.text(st.characters(exclude_categories=("Cs",)), max_size=20) | st.sampled_from(STRS),
    "b": st.binary(max_size=20),
    "flag": st.booleans(),
    "t": AWARE,
}
ROW = st.fixed_dictionaries({c: st.none() | s for c, s in VALUES.items()})


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'roundtrip.db'}"


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(ROW, min_size=1, max_size=6), form=st.sampled_from(FORMATS))
def test_generated_rows_round_trip(sqlite_url, tmp_path, rows, form):
    from culvert_py.client import connect

    fmt, null = form
    source, target = (f"rt_{uuid.uuid4().hex[:8]}" for _ in range(2))
    with connect(sqlite_url) as db:
        apply_tables(db, [source, target])
        db.table(source).put_many([{"k": n, **row} for n, row in enumerate(rows)])
        export_and_load(sqlite_url, source, target, fmt, null, tmp_path)
        db.table(target).refresh()
        assert contents(db.table(target)) == contents(db.table(source))
