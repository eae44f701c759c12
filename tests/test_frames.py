"""DataFrames in and out: Parquet and frames loaded, answers as Arrow and pandas, on both stores.

What a table must hold is the input itself (later rows of a key winning); what a query must
return is computed here by filtering that input in Python (the brute-force oracle), and both
are compared value by value, NaN as a marker, datetimes as instants.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from culvert_py import col
from culvert_py.errors import ArgumentError, LoadError, MissingDependencyError
from culvert_py.frames import arrow_schema, require
from culvert_py.load import load_file
from culvert_py.schema import parse_schema

from .conftest import STORE_KINDS, hbase_test_url
from .test_cli import ROOT, culvert

COLUMNS = {"id": "str", "i": "int", "f": "float", "s": "str", "b": "bytes", "t": "bool"}
COLUMNS["d"] = "datetime"
PLUS2 = timezone(timedelta(hours=2))
MINUS530 = timezone(-timedelta(hours=5, minutes=30))
#: The input schema of generated Parquet files: datetimes written with an offset of their own.
INPUT = pa.schema(
    [
        ("id", pa.string()),
        ("i", pa.int64()),
        ("f", pa.float64()),
        ("s", pa.string()),
        ("b", pa.binary()),
        ("t", pa.bool_()),
        ("d", pa.timestamp("us", tz="+02:00")),
    ]
)
EDGES = [
    {"id": "null", "i": None, "f": None, "s": None, "b": None, "t": None, "d": None},
    {"id": "max", "i": 2**63 - 1, "f": math.inf, "s": "", "b": b"", "t": True,
     "d": datetime.max.replace(tzinfo=UTC)},
    {"id": "min", "i": -(2**63), "f": -math.inf, "s": "\x00", "b": b"\x00", "t": False,
     "d": datetime.min.replace(tzinfo=UTC)},
    {"id": "nan", "i": 0, "f": math.nan, "s": "a\x00b\U0001f600", "b": b"\x00\xff\x00",
     "t": None, "d": datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=PLUS2)},
    {"id": "", "i": -1, "f": -0.0, "s": " ", "b": b"\xff", "t": True,
     "d": datetime(1969, 12, 31, 23, 0, tzinfo=MINUS530)},
    {"id": "a\x00", "i": 1, "f": 5e-324, "s": "x" * 300, "b": bytes(range(256)), "t": False,
     "d": datetime(1970, 1, 1, tzinfo=UTC)},
]  # fmt: skip


@pytest.fixture
def every(db):
    """A table of every column type, with a range index on ``i`` and a term index on ``s``."""
    name = f"every_{uuid.uuid4().hex[:10]}"
    db.apply_schema(parse_schema({"tables": {name: {
        "row_key": ["id"], "salt_buckets": 4, "columns": COLUMNS,
        "indexes": {"by_i": {"kind": "range", "columns": ["i"]},
                    "by_s": {"kind": "term", "columns": ["s"]}},
    }}}))  # fmt: skip
    yield db.table(name)
    db.drop_table(name)


def marked(value: object) -> object:
    """A value as compared: NaN as a marker (NaN != NaN), -0.0 as 0.0 (the encoding's)."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def by_id(rows: list[dict]) -> dict:
    """``{id: row}`` with every column present (NULL as None), values as compared."""
    return {r["id"]: {c: marked(r.get(c)) for c in COLUMNS} for r in rows}


def expected(rows: list[dict]) -> dict:
    """What a load of ``rows`` leaves: the last row of each key."""
    out = {}
    for row in rows:
        out[row["id"]] = row
    return by_id(list(out.values()))


def write_parquet(path, rows: list[dict], schema=INPUT, row_group_size=None):
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=row_group_size)
    return path


ids = st.text(st.characters(codec="utf-8"), max_size=6)
row_values = st.fixed_dictionaries(
    {
        "i": st.none() | st.integers(-(2**63), 2**63 - 1) | st.sampled_from([-(2**63), 2**63 - 1]),
        "f": st.none() | st.floats(allow_nan=True, allow_infinity=True),
        "s": st.none() | st.text(st.characters(codec="utf-8"), max_size=8),
        "b": st.none() | st.binary(max_size=8),
        "t": st.none() | st.booleans(),
        "d": st.none()
        | st.datetimes(
            min_value=datetime(1, 1, 2),
            max_value=datetime(9999, 12, 30),
            timezones=st.sampled_from([UTC, PLUS2, MINUS530]),
        ),
    }
)
frames_of_rows = st.lists(st.tuples(ids, row_values), max_size=25).map(
    lambda pairs: [{"id": k, **v} for k, v in pairs]
)


# -- Parquet load -> query -> Arrow (both stores) ----------------------------------------------


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=frames_of_rows, bound=st.integers(-(2**63), 2**63 - 1))
@example(rows=EDGES, bound=0)
def test_parquet_load_query_arrow_round_trip(every, tmp_path, rows, bound):
    path = write_parquet(tmp_path / "in.parquet", rows, row_group_size=7)
    report = load_file(every, path, batch_size=10)
    try:
        assert (report.read, report.loaded, report.rejected) == (len(rows), len(rows), 0)
        want = expected(rows)
        table = every.query().to_arrow(batch_size=4)
        assert table.schema == arrow_schema(every.definition)
        got = by_id(table.to_pylist())
        assert got == want
        # Through the range index: the oracle filters the input.
        ranged = every.query(f"i >= {bound}").to_arrow()
        assert by_id(ranged.to_pylist()) == {
            k: r for k, r in want.items() if r["i"] is not None and r["i"] >= bound
        }
        # And through the term index, on a value some row has.
        values = [r["s"] for r in want.values() if r["s"] is not None]
        if values:
            hits = every.query(col("s") == values[0]).to_arrow().to_pylist()
            assert by_id(hits) == {k: r for k, r in want.items() if r["s"] == values[0]}
    finally:
        every.delete_many(r["id"] for r in rows)


def test_arrow_answers_are_typed_even_when_empty(every):
    table = every.query("i > 5").to_arrow()
    assert table.num_rows == 0 and table.schema == arrow_schema(every.definition)
    assert table.schema.field("d").type == pa.timestamp("us", tz="UTC")
    picked = every.query("i > 5", columns=["d", "id"]).to_pandas()
    assert list(picked.columns) == ["d", "id"] and len(picked) == 0
    assert str(picked["d"].dtype) == "datetime64[us, UTC]"


def test_iter_batches_streams_the_answer(every):
    rows = [{"id": f"k{n:03}", "i": n, "s": "x"} for n in range(23)]
    every.put_many(rows)
    result = every.query("i >= 0", columns=["id", "i"])
    batches = result.iter_batches(5)
    first = next(batches)
    # Only the first batch was taken from the query: the rest is still to come.
    assert first.num_rows == 5 and result.plan.actual_rows <= 6
    rest = list(batches)
    assert [b.num_rows for b in rest] == [5, 5, 5, 3]
    got = pa.Table.from_batches([first, *rest]).to_pylist()
    assert sorted((r["id"], r["i"]) for r in got) == [(r["id"], r["i"]) for r in rows]
    assert all(b.schema.names == ["id", "i"] for b in rest)
    with pytest.raises(ArgumentError, match="batch_size"):
        every.query().iter_batches(0)


# -- put_dataframe -> to_pandas (both stores) --------------------------------------------------


#: The edge rows as a frame holds them: the extreme datetimes moved in by hours, so that
#: they stay inside ``datetime`` in a +02:00 column too.
FRAME_EDGES = [
    {**r, "d": max(min(r["d"], datetime(9999, 12, 31, 21, tzinfo=UTC)),
                   datetime(1, 1, 1, 3, tzinfo=UTC))} if r["d"] is not None else r
    for r in EDGES
]  # fmt: skip


def edge_frame() -> pd.DataFrame:
    """The edge rows as a pandas frame of nullable dtypes (Float64 keeps NaN apart from NA)."""
    rows = FRAME_EDGES
    f = [r["f"] for r in rows]
    return pd.DataFrame(
        {
            "id": pd.array([r["id"] for r in rows], dtype="str"),
            "i": pd.array([r["i"] for r in rows], dtype="Int64"),
            "f": pd.arrays.FloatingArray(
                np.array([0.0 if v is None else v for v in f]), np.array([v is None for v in f])
            ),
            "s": pd.array([r["s"] for r in rows], dtype="str"),
            "b": pd.Series([r["b"] for r in rows], dtype=object),
            "t": pd.array([r["t"] for r in rows], dtype="boolean"),
            "d": pd.Series(
                [None if r["d"] is None else r["d"].astimezone(UTC) for r in rows],
                dtype="datetime64[us, UTC]",
            ).dt.tz_convert("+02:00"),
        }
    )


def frame_rows(frame: pd.DataFrame) -> dict:
    """A frame's rows as compared, read through Arrow (which keeps NaN and NA apart)."""
    return by_id(pa.Table.from_pandas(frame, preserve_index=False).to_pylist())


def test_put_dataframe_then_to_pandas_round_trip(every):
    frame = edge_frame()
    report = every.put_dataframe(frame, batch_size=2)
    assert (report.read, report.loaded, report.rejected) == (6, 6, 0)
    back = every.query().to_pandas()
    assert {c: str(t) for c, t in back.dtypes.items()} == {
        "id": "str", "i": "Int64", "f": "Float64", "s": "str", "b": "object",
        "t": "boolean", "d": "datetime64[us, UTC]",
    }  # fmt: skip
    assert frame_rows(back) == frame_rows(frame) == expected(FRAME_EDGES)
    nan_row = back.set_index("id").loc["nan"]
    assert math.isnan(nan_row["f"]) and back.set_index("id")["f"].isna().sum() == 1
    # The answer goes back in as it came out: a second table from it holds the same rows.
    again = every.query().to_pandas()
    again["id"] = again["id"] + "/2"
    every.put_dataframe(again)
    copies = every.query().to_arrow().to_pylist()
    assert len(copies) == 12


def test_put_dataframe_takes_arrow_tables_and_named_indexes(every):
    table = pa.Table.from_pylist(EDGES[:3], schema=INPUT)
    every.put_dataframe(table)
    plain = pd.DataFrame({"id": ["p", "q"], "f": [1.5, float("nan")]}).set_index("id")
    every.put_dataframe(plain)  # in a plain float64 column pandas means NaN as missing
    got = by_id(every.query().to_arrow().to_pylist())
    assert {k: got[k] for k in ("null", "max", "min")} == expected(EDGES[:3])
    assert (got["p"]["f"], got["q"]["f"]) == (1.5, None)
    with pytest.raises(ArgumentError, match="expected a pandas DataFrame"):
        every.put_dataframe([{"id": "x"}])
    with pytest.raises(LoadError, match="cannot convert the DataFrame"):
        mixed = pd.Series([1, "x"], dtype=object)
        every.put_dataframe(pd.DataFrame({"id": ["m", "n"], "i": mixed}))


# -- rejects, bad columns, resume, progress (SQLite: bookkeeping, not the store) ---------------


@pytest.fixture
def local_every(tmp_path):
    from culvert_py.client import Client
    from culvert_py.store import open_store

    with open_store(f"sqlite:///{tmp_path / 'local.db'}") as store:
        client = Client(store, close_store=False)
        client.apply_schema(parse_schema({"tables": {"every": {
            "row_key": ["id"], "columns": COLUMNS,
            "indexes": {"by_i": {"kind": "range", "columns": ["i"]}},
        }}}))  # fmt: skip
        yield client.table("every")
        client.close()


def rejects(report) -> dict[int, dict]:
    with open(report.rejects_path, encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    assert all(set(d) == {"line", "raw", "reason"} for d in docs)
    return {d["line"]: d for d in docs}


def test_bad_parquet_rows_go_to_the_rejects_file(local_every, tmp_path):
    schema = pa.schema(
        [("id", pa.string()), ("i", pa.uint64()), ("d", pa.string()), ("b", pa.string())]
    )
    rows = [
        {"id": "ok1", "i": 5, "d": "2024-01-01T10:00:00+02:00", "b": "00ff"},
        {"id": None, "i": 1, "d": None, "b": None},
        {"id": "big", "i": 2**64 - 1, "d": None, "b": None},
        {"id": "naive", "i": 1, "d": "2024-01-01T10:00:00", "b": None},
        {"id": "hex", "i": 1, "d": None, "b": "zz"},
        {"id": "ok2", "i": None, "d": None, "b": "0x"},
    ]
    path = write_parquet(tmp_path / "bad.parquet", rows, schema)
    report = load_file(local_every, path)
    assert (report.read, report.loaded, report.rejected) == (6, 2, 4)
    bad = rejects(report)
    assert sorted(bad) == [2, 3, 4, 5]
    assert "row-key column 'id' is NULL" in bad[2]["reason"]
    assert "out of range" in bad[3]["reason"] and json.loads(bad[3]["raw"])["id"] == "big"
    assert "no UTC offset" in bad[4]["reason"]
    assert "column 'b'" in bad[5]["reason"]
    got = by_id(local_every.query().to_arrow().to_pylist())
    assert set(got) == {"ok1", "ok2"}
    assert got["ok1"]["d"] == datetime(2024, 1, 1, 8, tzinfo=UTC) and got["ok1"]["b"] == b"\x00\xff"
    assert got["ok2"]["b"] == b""
    # A timestamp beyond datetime's range is one reject, not a failed batch.
    far = pa.table(
        {"id": ["far", "near"], "d": pa.array([300_000_000_000, 0], pa.timestamp("s", tz="UTC"))}
    )
    pq.write_table(far, tmp_path / "far.parquet")
    report = load_file(local_every, tmp_path / "far.parquet")
    assert (report.loaded, report.rejected) == (1, 1) and list(rejects(report)) == [1]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"id": pa.array(["a"]), "nope": pa.array([1])}, "unknown column(s) 'nope'"),
        ({"i": pa.array([1])}, "row-key column(s) 'id' missing"),
        ({"id": pa.array(["a"]), "i": pa.array(["1"])}, "Arrow type string cannot hold int"),
        (
            {"id": pa.array(["a"]), "d": pa.array([0], pa.timestamp("us"))},
            "give it a time zone",
        ),
    ],
)
def test_parquet_columns_that_make_every_row_bad_stop_the_load(
    local_every, tmp_path, columns, message
):
    pq.write_table(pa.table(columns), tmp_path / "x.parquet")
    with pytest.raises(LoadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_file(local_every, tmp_path / "x.parquet")
    assert local_every.query().to_arrow().num_rows == 0
    with pytest.raises(LoadError, match="cannot read"):
        (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
        load_file(local_every, tmp_path / "junk.parquet")


class Crash(Exception):
    """Stands for the process dying."""


def test_parquet_and_frame_loads_resume_after_a_crash(local_every, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a frame's default rejects file is <name>.rejects.jsonl here
    rows = [{"id": f"r{n % 90:03}", "i": n, "s": f"v{n}"} for n in range(120)]
    rows[50]["id"] = None  # one reject
    path = write_parquet(tmp_path / "crash.parquet", rows, row_group_size=16)
    calls = []

    def die_after_three(done: int, total: int) -> None:
        calls.append((done, total))
        if len(calls) == 3:
            raise Crash

    with pytest.raises(Crash):
        load_file(local_every, path, batch_size=20, progress=die_after_three)
    # Batches of 20 good rows: the reject (row 51) makes the third end at row 61.
    assert [c[0] for c in calls] == [20, 40, 61] and calls[0][1] == 120
    report = load_file(local_every, path, batch_size=20, resume=True)
    assert (report.skipped, report.read) == (61, 59)
    assert report.rejected + report.rejected_earlier == 1 and list(rejects(report)) == [51]
    good = [r for r in rows if r["id"] is not None]
    assert by_id(local_every.query().to_arrow().to_pylist()) == expected(good)

    local_every.delete_many(r["id"] for r in good)
    frame = pd.DataFrame(rows)
    calls.clear()
    with pytest.raises(Crash):
        local_every.put_dataframe(
            frame, name="f1", batch_size=20, progress=die_after_three,
            rejects_path=tmp_path / "f1.rejects.jsonl",
        )  # fmt: skip
    report = local_every.put_dataframe(
        frame, name="f1", batch_size=20, resume=True, rejects_path=tmp_path / "f1.rejects.jsonl"
    )
    assert (report.skipped, report.read, report.rejected_earlier + report.rejected) == (61, 59, 1)
    assert by_id(local_every.query().to_arrow().to_pylist()) == expected(good)
    # A complete load leaves no checkpoint; an interrupted one resumes only the same rows.
    calls.clear()
    with pytest.raises(Crash):
        local_every.put_dataframe(frame, name="f2", batch_size=20, progress=die_after_three)
    with pytest.raises(LoadError, match="changed"):
        local_every.put_dataframe(frame.iloc[:10], name="f2", resume=True)
    with pytest.raises(ArgumentError, match="name"):
        local_every.put_dataframe(frame, name="")


def test_a_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingDependencyError, match=r"pip install culvert_py\[dataframe\]"):
        require("pyarrow")


def test_the_core_import_path_leaves_pyarrow_and_pandas_out():
    code = (
        "import sys, culvert_py, culvert_py.client, culvert_py.load, culvert_cli.main\n"
        "assert not {'pyarrow', 'pandas'} & set(sys.modules), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


# -- the CLI (both stores) ---------------------------------------------------------------------


@pytest.fixture(params=STORE_KINDS)
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cli.db'}"
    return hbase_test_url()


def test_cli_parquet_output_loads_back(store_url, tmp_path):
    name = f"every_{uuid.uuid4().hex[:10]}"
    schema = tmp_path / "every.toml"
    columns = "\n".join(f'{c} = "{t}"' for c, t in COLUMNS.items())
    schema.write_text(
        f'[tables.{name}]\nrow_key = ["id"]\nsalt_buckets = 2\n[tables.{name}.columns]\n'
        f'{columns}\n[tables.{name}.indexes.by_i]\nkind = "range"\ncolumns = ["i"]\n'
    )
    culvert(store_url, "schema", "apply", str(schema))
    try:
        source = write_parquet(tmp_path / "in.parquet", EDGES)
        culvert(store_url, "load", name, str(source))
        out = tmp_path / "out.parquet"
        proc = culvert(store_url, "query", name, "--format", "parquet", "--output", str(out))
        assert "wrote 6 rows" in proc.stderr
        assert by_id(pq.read_table(out).to_pylist()) == expected(EDGES)
        ranged = tmp_path / "ranged.parquet"
        culvert(store_url, "query", name, "i > 0", "--columns", "id,i", "--format", "parquet",
                "--output", str(ranged))  # fmt: skip
        assert sorted(pq.read_table(ranged).to_pylist(), key=lambda r: r["i"]) == [
            {"id": "a\x00", "i": 1}, {"id": "max", "i": 2**63 - 1}
        ]  # fmt: skip
        # What came out loads back over the same rows and changes none.
        culvert(store_url, "load", name, str(out), "--format", "parquet")
        from culvert_py.client import connect

        with connect(store_url) as db:
            assert by_id(db.table(name).query().to_arrow().to_pylist()) == expected(EDGES)
        bad = culvert(store_url, "query", name, "--format", "parquet", check=2)
        assert bad.stderr.strip().splitlines() == [
            "error: --format parquet needs --output FILE (Parquet is not text)"
        ]
        rejected = write_parquet(tmp_path / "rej.parquet", [{"id": None, "i": 1}])
        proc = culvert(store_url, "load", name, str(rejected), check=2)
        assert proc.stderr.strip().splitlines()[-1].startswith("error: 1 row(s) rejected")
    finally:
        from culvert_py.client import connect

        with connect(store_url) as db:
            db.drop_table(name)


def test_cli_names_the_extra_when_pyarrow_is_missing(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    culvert(url, "schema", "apply", "schemas/examples/people.toml")
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from culvert_cli.main import main\n"
        f"main(['--store', {url!r}, 'query', 'people', '--format', 'parquet', "
        f"'--output', {str(tmp_path / 'o.parquet')!r}])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: pyarrow is not installed; DataFrames and Parquet need the 'dataframe' extra: "
        "pip install culvert_py[dataframe]"
    ]
