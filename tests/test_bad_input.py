"""Every bad input is a clean error: the documented type, one line, and nothing changed.

Table-driven: each public API entry point (the :class:`~culvert_py.table.IndexedTable` and
:class:`~culvert_py.client.Client` methods, the build functions) and each CLI command is fed
malformed arguments. The API part runs on both stores; the CLI part on SQLite, and a few
cases once against HBase. "Nothing changed" is checked on the store itself: every cell of
every table involved, with its timestamp, before and after.

The policy: a malformed argument (wrong type, shape or range, a forged cursor, a key that is
not of the key's form or too long) raises :class:`~culvert_py.errors.ArgumentError`; a row
*value* a column cannot hold stays an :class:`~culvert_py.errors.EncodingError` (the
loader's reject reason), a well-formed name the schema lacks a ``SchemaError`` or, inside a
query, a ``QueryError``, as does anything about the content of a query text.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from click.testing import CliRunner

from culvert_cli import index as index_cli
from culvert_cli import main as cli
from culvert_py import ops as build
from culvert_py.client import Client, connect
from culvert_py.errors import (
    ArgumentError,
    CulvertError,
    EncodingError,
    QueryError,
    SchemaError,
)
from culvert_py.layout import MAX_KEY_BYTES
from culvert_py.store import open_store
from tests.conftest import PEOPLE_TOML, hbase_test_url

ROWS = [
    {"id": f"u{i}", "name": f"n{i}", "age": i % 7, "city": ["Oslo", "Lima"][i % 2], "bio": "a b"}
    for i in range(20)
]
HUGE = "x" * (MAX_KEY_BYTES + 100)


def snapshot(store, table: str | None = None) -> dict:
    """Every cell (with its timestamp) of every table, or of ``table`` and its indexes."""
    names = store.list_tables()
    if table is not None:
        names = [n for n in names if n == table or n.startswith(f"{table}.")]
    return {n: list(store.table(n).scan(include_timestamp=True)) for n in names}


def forge(cursor: str, position: object) -> str:
    """``cursor`` with its position replaced (the fingerprint kept)."""
    doc = json.loads(base64.urlsafe_b64decode(cursor))
    doc["p"] = position
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


#: Plans forced where the planner might choose otherwise: on a table this small a probe
#: rightly finds a full scan cheaper than the index.
FORCED = {"index": "by_age"}


def cursors(people) -> dict[str, str]:
    """Real cursors of an index plan, a full scan, a union and a sort (page size 2)."""
    out = {}
    for kind, where, order in [
        ("index", "age >= 1", None),
        ("full", None, None),
        ("union", "age = 1 OR city = 'Oslo'", None),
        ("sort", "age >= 1", "name"),
    ]:
        result = people.query(where, order_by=order, limit=2, use_index=FORCED.get(kind))
        list(result)
        assert result.cursor is not None
        out[kind] = result.cursor
    return out


# -- the API ---------------------------------------------------------------------------------

#: (what, call(people, client, cursors), expected type, message fragment)
Case = tuple[str, Callable, type, str]

API_CASES: list[Case] = [
    # writes
    ("put a list", lambda p, c, k: p.put(["a"]), ArgumentError, "put: expected a row dict"),
    ("put a string", lambda p, c, k: p.put("u1"), ArgumentError, "got str 'u1'"),
    ("put None", lambda p, c, k: p.put(None), ArgumentError, "put: expected a row dict"),
    (
        "put_many of non-dicts",
        lambda p, c, k: p.put_many([{"id": "new1"}, 5]),
        ArgumentError,
        "put_many: expected row dicts, got int 5",
    ),
    ("put_many a string", lambda p, c, k: p.put_many("ab"), ArgumentError, "rows='ab'"),
    ("put_many one dict", lambda p, c, k: p.put_many({"id": "z"}), ArgumentError, "put(row)"),
    ("put_many an int", lambda p, c, k: p.put_many(5), ArgumentError, "iterable of row dicts"),
    (
        "put_many batch_size 0",
        lambda p, c, k: p.put_many([{"id": "new1"}], batch_size=0),
        ArgumentError,
        "batch_size=0",
    ),
    (
        "put_many bulk 'yes'",
        lambda p, c, k: p.put_many([{"id": "new1"}], bulk="yes"),
        ArgumentError,
        "bulk='yes'",
    ),
    (
        "put a float row key",
        lambda p, c, k: p.put({"id": 1.5}),
        EncodingError,
        "column 'id': expected str, got float 1.5",
    ),
    (
        "put an oversized row key",
        lambda p, c, k: p.put({"id": HUGE}),
        EncodingError,
        f"row key takes {len(HUGE) + 3:,} bytes, more than HBase's 32,767",
    ),
    (
        "put an oversized indexed value",
        lambda p, c, k: p.put({"id": "new2", "city": HUGE}),
        EncodingError,
        ".by_city: entry key takes",
    ),
    (
        "put an unknown column",
        lambda p, c, k: p.put({"id": "new3", "agee": 1}),
        SchemaError,
        "unknown column 'agee'",
    ),
    ("delete a float", lambda p, c, k: p.delete(1.5), ArgumentError, "key 1.5: column 'id'"),
    (
        "delete a list",
        lambda p, c, k: p.delete(["u1", "u2"]),
        ArgumentError,
        "key ['u1', 'u2']: expected one str value for row key column 'id', got a list of 2",
    ),
    ("delete None", lambda p, c, k: p.delete(None), ArgumentError, "'id' is missing or null"),
    ("delete huge", lambda p, c, k: p.delete(HUGE), ArgumentError, "row key takes"),
    ("delete_many a string", lambda p, c, k: p.delete_many("u1"), ArgumentError, "keys='u1'"),
    (
        "delete_many a row dict",
        lambda p, c, k: p.delete_many({"id": "u1"}),
        ArgumentError,
        "(for one: delete(key))",
    ),
    (
        "delete_many with a bad key after good ones",
        lambda p, c, k: p.delete_many(["u1", "u2", 3]),
        ArgumentError,
        "key 3: column 'id': expected str",
    ),
    (
        "delete_many batch_size -1",
        lambda p, c, k: p.delete_many(["u1"], batch_size=-1),
        ArgumentError,
        "batch_size=-1",
    ),
    # reads
    ("get a float", lambda p, c, k: p.get(1.5), ArgumentError, "got float 1.5"),
    ("get a list", lambda p, c, k: p.get(["u1"]), ArgumentError, "got a list of 1"),
    ("get huge", lambda p, c, k: p.get(HUGE), ArgumentError, "more than HBase's 32,767"),
    (
        "get columns='id'",
        lambda p, c, k: p.get("u1", columns="id"),
        ArgumentError,
        "columns='id': expected a list of names; for one column pass ['id']",
    ),
    ("get columns=[1]", lambda p, c, k: p.get("u1", columns=[1]), ArgumentError, "got 1"),
    ("get_many a string", lambda p, c, k: p.get_many("u1"), ArgumentError, "(for one: get(key))"),
    ("get_many None", lambda p, c, k: p.get_many(None), ArgumentError, "keys=None"),
    ("scan_rows batch 0", lambda p, c, k: list(p.scan_rows(0)), ArgumentError, "batch_size=0"),
    # queries
    (
        "order_by a 1-tuple",
        lambda p, c, k: p.query(order_by=("age",)),
        ArgumentError,
        "order_by=('age',): expected a column name or (column, descending)",
    ),
    (
        "order_by ('age', 'yes')",
        lambda p, c, k: p.query(order_by=("age", "yes")),
        ArgumentError,
        "descending True or False",
    ),
    ("order_by 5", lambda p, c, k: p.query(order_by=5), ArgumentError, "order_by=5"),
    ("order_by unknown", lambda p, c, k: p.query(order_by="agee"), QueryError, "'agee'"),
    ("cursor 5", lambda p, c, k: p.query(cursor=5), ArgumentError, "cursor=5: expected"),
    ("cursor garbage", lambda p, c, k: p.query(cursor="garbage"), ArgumentError, "malformed"),
    ("cursor empty", lambda p, c, k: p.query(cursor=""), ArgumentError, "malformed cursor"),
    (
        "cursor not ASCII",
        lambda p, c, k: p.query(cursor="é"),
        ArgumentError,
        "malformed cursor",
    ),
    (
        "cursor of base64 non-JSON",
        lambda p, c, k: p.query(cursor=base64.urlsafe_b64encode(b"\xff\x00").decode()),
        ArgumentError,
        "malformed cursor",
    ),
    (
        "cursor of JSON without the fields",
        lambda p, c, k: p.query(cursor=base64.urlsafe_b64encode(b"[1, 2]").decode()),
        ArgumentError,
        "malformed cursor",
    ),
    (
        "cursor of another query",
        lambda p, c, k: p.query("age >= 2", cursor=k["index"]),
        ArgumentError,
        "belongs to a different query",
    ),
    ("limit 'abc'", lambda p, c, k: p.query(limit="abc"), ArgumentError, "limit='abc'"),
    ("limit -1", lambda p, c, k: p.query(limit=-1), ArgumentError, "expected an integer >= 0"),
    ("limit True", lambda p, c, k: p.query(limit=True), ArgumentError, "limit=True"),
    ("limit 1.5", lambda p, c, k: p.query(limit=1.5), ArgumentError, "limit=1.5"),
    (
        "columns 'id'",
        lambda p, c, k: p.query(columns="id"),
        ArgumentError,
        "columns='id': expected a list of column names; for one column pass ['id']",
    ),
    ("columns 5", lambda p, c, k: p.query(columns=5), ArgumentError, "columns=5"),
    ("use_index 5", lambda p, c, k: p.query(use_index=5), ArgumentError, "use_index=5"),
    ("use_index unknown", lambda p, c, k: p.query(use_index="nope"), QueryError, "'nope'"),
    ("where 5", lambda p, c, k: p.query(5), ArgumentError, "where=5"),
    ("where empty", lambda p, c, k: p.query(""), QueryError, "syntax error at 1:1"),
    ("where unknown column", lambda p, c, k: p.query("agee > 1"), QueryError, "'agee' at 1:1"),
    ("plan limit -1", lambda p, c, k: p.plan(limit=-1), ArgumentError, "limit=-1"),
    ("explain columns 'id'", lambda p, c, k: p.explain(columns="id"), ArgumentError, "'id'"),
    ("explain analyze 'yes'", lambda p, c, k: p.explain(analyze="yes"), ArgumentError, "analyze"),
    ("lookup no values", lambda p, c, k: p.lookup("by_age"), ArgumentError, "expected 1 value"),
    (
        "lookup too many values",
        lambda p, c, k: p.lookup("by_city_joined", "Oslo", None, 3),
        ArgumentError,
        "expected 1 to 2 values for (city, joined), got 3",
    ),
    ("lookup wrong type", lambda p, c, k: p.lookup("by_age", "x"), ArgumentError, "expected int"),
    (
        "lookup a text index with an int",
        lambda p, c, k: p.lookup("bio_words", 5),
        ArgumentError,
        "a text index takes one str word",
    ),
    ("lookup index 5", lambda p, c, k: p.lookup(5, 1), ArgumentError, "index=5"),
    (
        "lookup covered 'yes'",
        lambda p, c, k: p.lookup("by_age", 1, covered="yes"),
        ArgumentError,
        "covered='yes'",
    ),
    ("lookup unknown index", lambda p, c, k: p.lookup("nope", 1), SchemaError, "unknown index"),
    # the client
    ("Client workers 0", lambda p, c, k: Client(c.store, workers=0), ArgumentError, "workers=0"),
    (
        "Client pipeline_depth '4'",
        lambda p, c, k: Client(c.store, pipeline_depth="4"),
        ArgumentError,
        "pipeline_depth='4'",
    ),
    ("connect url 5", lambda p, c, k: connect(5), ArgumentError, "url=5"),
    ("table 5", lambda p, c, k: c.table(5), ArgumentError, "name=5"),
    ("table unknown", lambda p, c, k: c.table("ghost_table"), SchemaError, "'ghost_table'"),
    ("drop_table None", lambda p, c, k: c.drop_table(None), ArgumentError, "name=None"),
    ("apply_schema 5", lambda p, c, k: c.apply_schema(5), ArgumentError, "source=5"),
    # build, verify, repair, drop
    (
        "build workers 0",
        lambda p, c, k: build.build_index(c, p.name, "by_age", workers=0),
        ArgumentError,
        "workers=0: expected an integer >= 1",
    ),
    (
        "build shard (2, 2)",
        lambda p, c, k: build.build_index(c, p.name, "by_age", shard=(2, 2)),
        ArgumentError,
        "shard=(2, 2): expected (i, n) with 0 <= i < n <= 4096",
    ),
    (
        "build shard (0, 1000000)",
        lambda p, c, k: build.build_index(c, p.name, "by_age", shard=(0, 1_000_000)),
        ArgumentError,
        "n <= 4096",
    ),
    (
        "build shard ' 0/2'",
        lambda p, c, k: build.build_index(c, p.name, "by_age", shard=" 0/2"),
        ArgumentError,
        "shard=' 0/2'",
    ),
    (
        "build shard of floats",
        lambda p, c, k: build.build_index(c, p.name, "by_age", shard=(0.0, 2.0)),
        ArgumentError,
        "shard=(0.0, 2.0)",
    ),
    (
        "build grace_seconds -1",
        lambda p, c, k: build.build_index(c, p.name, "by_age", grace_seconds=-1),
        ArgumentError,
        "grace_seconds=-1",
    ),
    (
        "build grace_seconds nan",
        lambda p, c, k: build.build_index(c, p.name, "by_age", grace_seconds=float("nan")),
        ArgumentError,
        "finite number of seconds",
    ),
    (
        "build batch_size '10'",
        lambda p, c, k: build.build_index(c, p.name, "by_age", batch_size="10"),
        ArgumentError,
        "batch_size='10'",
    ),
    (
        "build progress 5",
        lambda p, c, k: build.build_index(c, p.name, "by_age", progress=5),
        ArgumentError,
        "progress=5",
    ),
    (
        "build resume 'yes'",
        lambda p, c, k: build.build_index(c, p.name, "by_age", resume="yes"),
        ArgumentError,
        "resume='yes'",
    ),
    (
        "build index None",
        lambda p, c, k: build.build_index(c, p.name, None),
        ArgumentError,
        "index=None",
    ),
    (
        "build unknown index",
        lambda p, c, k: build.build_index(c, p.name, "nope"),
        SchemaError,
        "unknown index 'nope'",
    ),
    (
        "rebuild shard (1, 1)",
        lambda p, c, k: build.rebuild_index(c, p.name, "by_age", shard=(1, 1)),
        ArgumentError,
        "shard=(1, 1)",
    ),
    (
        "rebuild workers True",
        lambda p, c, k: build.rebuild_index(c, p.name, "by_age", workers=True),
        ArgumentError,
        "workers=True",
    ),
    (
        "verify sample -1",
        lambda p, c, k: build.verify_index(c, p.name, "by_age", sample=-1),
        ArgumentError,
        "sample=-1",
    ),
    (
        "verify settle_seconds -1",
        lambda p, c, k: build.verify_index(c, p.name, "by_age", settle_seconds=-1),
        ArgumentError,
        "settle_seconds=-1",
    ),
    (
        "repair 'yes'",
        lambda p, c, k: build.verify_index(c, p.name, "by_age", repair="yes"),
        ArgumentError,
        "repair='yes'",
    ),
    (
        "drop grace_seconds -1",
        lambda p, c, k: build.drop_index(c, p.name, "by_age", grace_seconds=-1),
        ArgumentError,
        "grace_seconds=-1",
    ),
    (
        "drop table 5",
        lambda p, c, k: build.drop_index(c, 5, "by_age"),
        ArgumentError,
        "table=5",
    ),
]


def _forged_cursor_cases() -> list[Case]:
    """A real cursor of each plan kind with its position replaced by a wrong one."""
    wrong = {
        "index": [None, 5, [], [0], [1, "20"], [-1, "20"], [True, "20"], [0, "zz"], [0, "2"],
                  [0, "00"], [0, " 20"], ["f", "20"], ["s", 1]],
        "full": [None, [], ["f"], ["f", ""], ["f", "zz"], ["f", "AB"], ["f", 5], [0, "75"],
                 ["s", 1], {"f": "75"}],
        "union": [[2, [0, "20"]], [0, "20"], [0, ["f", "20"]], [0, [0, "zz"]], [-1, [0, "20"]],
                  [0], ["s", 1], [0, [0, "20"], 1]],
        "sort": [["s", -1], ["s", "3"], ["s", 1.5], ["s", True], ["f", 3], [0, "20"], ["s"]],
    }  # fmt: skip
    cases: list[Case] = []
    for kind, positions in wrong.items():
        where, order = {
            "index": ("age >= 1", None),
            "full": (None, None),
            "union": ("age = 1 OR city = 'Oslo'", None),
            "sort": ("age >= 1", "name"),
        }[kind]
        for position in positions:
            cases.append(
                (
                    f"{kind} cursor with position {position!r}",
                    lambda p, c, k, w=where, o=order, kd=kind, pos=position: list(
                        p.query(w, order_by=o, cursor=forge(k[kd], pos), use_index=FORCED.get(kd))
                    ),
                    ArgumentError,
                    "does not fit this query's plan",
                )
            )
    return cases


def test_every_api_entry_point_refuses_malformed_arguments_cleanly(people, db, store):
    people.put_many(ROWS)
    real = cursors(people)
    before = snapshot(store, people.name)
    states_before = _applied(db, people.name)
    failures = []
    for what, call, expected, fragment in API_CASES + _forged_cursor_cases():
        try:
            call(people, db, real)
        except CulvertError as exc:
            message = str(exc)
            if type(exc) is not expected:
                failures.append(f"{what}: {type(exc).__name__} instead of {expected.__name__}")
            elif fragment not in message:
                failures.append(f"{what}: {message!r} lacks {fragment!r}")
            elif "\n" in message or not message.strip():
                failures.append(f"{what}: not one line: {message!r}")
        except Exception as exc:  # any other type is the failure under test
            failures.append(f"{what}: {type(exc).__name__}: {exc}")
        else:
            failures.append(f"{what}: no error")
        if snapshot(store, people.name) != before:
            failures.append(f"{what}: changed the store")
            before = snapshot(store, people.name)
    assert not failures, "\n".join(failures)
    assert _applied(db, people.name) == states_before


def test_argument_error_is_a_value_error_for_callers_that_caught_that(people):
    with pytest.raises(ValueError, match="limit=-1"):
        people.query(limit=-1)


def test_a_valid_cursor_of_every_plan_kind_still_resumes(people):
    people.put_many(ROWS)
    for where, order in [
        ("age >= 1", None),
        (None, None),
        ("age = 1 OR city = 'Oslo'", None),
        ("age >= 1", "name"),
    ]:
        whole = list(people.query(where, order_by=order))
        first = people.query(where, order_by=order, limit=2)
        pages = list(first)
        pages += list(people.query(where, order_by=order, cursor=first.cursor))
        assert sorted(r["id"] for r in pages) == sorted(r["id"] for r in whole)


def test_a_bad_row_in_a_batch_writes_nothing_of_that_batch(people, store):
    before = snapshot(store, people.name)
    with pytest.raises(ArgumentError):
        people.put_many([{"id": "ok1"}, {"id": "ok2"}, "not a row"])
    with pytest.raises(EncodingError, match="entry key takes"):
        people.put_many([{"id": "ok3"}, {"id": "ok4", "name": "n", "city": HUGE}])
    assert snapshot(store, people.name) == before
    assert people.get_many(["ok1", "ok2", "ok3", "ok4"]) == [None] * 4


# Bad values the primary row alone (or a partial-index predicate, or the tokenizer) would
# meet: every value is encoded before the first write, so nothing is left behind.


def test_a_value_only_the_primary_row_holds_is_refused_before_anything_is_written(people, store):
    before = snapshot(store, people.name)
    with pytest.raises(EncodingError, match="expected float"):
        people.put({"id": "n5", "score": "x"})
    assert snapshot(store, people.name) == before


@pytest.mark.parametrize("row", [{"id": "n4", "active": "yes"}, {"id": "n6", "bio": 5}])
def test_a_value_of_the_wrong_type_is_an_encoding_error(people, store, row):
    with pytest.raises(EncodingError):
        people.put(row)


def _applied(db, table: str):
    _, schema, states = db.meta.load()
    return schema.tables.get(table), {k: v for k, v in states.items() if k[0] == table}


# -- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def cli_store(tmp_path):
    """A SQLite store file with the people table (20 rows): ``(url, cursors)``."""
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    with connect(url) as db:
        db.apply_schema(PEOPLE_TOML)
        people = db.table("people")
        people.put_many(ROWS)
        real = cursors(people)
    return url, real


def run_cli(url: str, args: list[str], input: str | None = None):
    return CliRunner().invoke(cli.main, ["--store", url, *args], input=input)


def assert_one_error_line(result, starts: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert starts in lines[0], (starts, lines[0])
    assert "Traceback" not in result.output and "Traceback" not in result.stderr


def _cli_cases(tmp: str, real: dict[str, str]) -> list[tuple[list[str], str]]:
    csv = f"{tmp}/more.csv"
    with open(csv, "w") as f:
        f.write("id,age\nz1,3\n")
    return [
        (["query", "people", "--limit", "abc"], "error: --limit: 'abc' is not a valid integer"),
        (["query", "people", "--limit", "-1"], "error: people: limit=-1"),
        (["query", "people", "--format", "xml"], "error: --format: 'xml' is not one of"),
        (["query", "people", "--cursor", "garbage"], "error: people: malformed cursor"),
        (["query", "people", "--cursor", ""], "error: people: malformed cursor"),
        (
            ["query", "people", "age >= 2", "--cursor", real["index"], "--use-index", "by_age"],
            "different query",
        ),
        (
            [
                "query",
                "people",
                "age >= 1",
                "--cursor",
                forge(real["index"], [0, "zz"]),
                "--use-index",
                "by_age",
            ],
            "fit",
        ),
        (
            [
                "query",
                "people",
                "age >= 1",
                "--cursor",
                forge(real["index"], [7, "20"]),
                "--use-index",
                "by_age",
            ],
            "fit",
        ),
        (
            [
                "query",
                "people",
                "age >= 1",
                "--cursor",
                forge(real["index"], "x"),
                "--use-index",
                "by_age",
            ],
            "fit",
        ),
        (["query", "people", "--cursor", forge(real["full"], ["f", "ZZ"])], "fit"),
        (["query", "people", "--cursor", forge(real["full"], ["s", 3])], "fit"),
        (["query", "ghost"], "error: unknown table 'ghost'"),
        (["query", "people", ""], "error: syntax error at 1:1"),
        (["query", "people", "   "], "error: syntax error"),
        (["query", "people", "agee > 1"], "error: unknown column 'agee' at 1:1"),
        (["query", "people", "--use-index", "nope"], "unknown index 'nope'"),
        (["query", "people", "--order-by", "nope"], "unknown column 'nope'"),
        (["query", "people", "--desc"], "--desc needs --order-by"),
        (["query", "people", "--bogus"], "error: no such option"),
        (["query"], "error: missing argument 'TABLE'"),
        (["get", "people", "nope"], "error: people: 1 key(s) not found: nope"),
        (["get", "people"], "error: missing argument 'KEYS...'"),
        (["get", "people", HUGE], "more than HBase's 32,767"),
        (["get", "ghost", "u1"], "error: unknown table 'ghost'"),
        (["get", "people", "u1", "--format", "xml"], "error: --format: 'xml' is not one of"),
        (["index", "bogus", "people"], "error: ACTION: 'bogus' is not one of"),
        (["index", "build", "people", "--shard", " 0/2"], "error: --shard ' 0/2': expected I/N"),
        (["index", "build", "people", "--shard", "0/2 "], "error: --shard '0/2 '"),
        (["index", "build", "people", "--shard", "0/1000000"], "0 <= I < N <= 4096"),
        (["index", "build", "people", "--shard", "3/2"], "error: --shard '3/2'"),
        (["index", "build", "people", "--shard", "0/0"], "error: --shard '0/0'"),
        (["index", "build", "people", "--shard", "-1/2"], "error: --shard '-1/2'"),
        (["index", "build", "people", "--shard", "a/b"], "error: --shard 'a/b'"),
        (["index", "build", "people", "--shard", "١/٢"], "error: --shard"),
        (["index", "build", "people", "--workers", "0"], "error: --workers: 0 is not in the"),
        (["index", "drop", "people"], "would drop all 5 indexes of people"),
        (["index", "drop", "people", "by_age"], "would drop index people.by_age; pass --yes"),
        (["index", "rebuild", "people", "by_age"], "would rebuild index people.by_age"),
        (["index", "verify", "people", "nope"], "unknown index 'nope'"),
        (["index", "list"], "error: missing argument 'TABLE'"),
        (["schema", "apply", tmp], "error: FILE: file"),
        (["schema", "apply", "/nonexistent.toml"], "cannot read"),
        (["schema", "apply", PEOPLE_TOML, "--workers", "0"], "error: --workers"),
        (["schema", "show", "ghost"], "unknown table 'ghost'"),
        (["schema", "ddl", tmp], "error: FILE: file"),
        (["load", "people", csv, "--format", "xml"], "error: --format: 'xml' is not one of"),
        (["load", "people", csv, "--workers", "0"], "workers=0"),
        (["load", "people", csv, "--batch-size", "x"], "error: --batch-size: 'x' is not"),
        (["load", "ghost", csv], "unknown table 'ghost'"),
        (["load", "people", tmp], "is a directory"),
        (["stats", "ghost"], "unknown table 'ghost'"),
        (["nosuch"], "error: no such command 'nosuch'"),
    ]


def test_every_cli_command_fed_bad_arguments_prints_one_error_line(cli_store, tmp_path):
    url, real = cli_store
    cases = _cli_cases(str(tmp_path), real)
    with open_store(url) as store:
        before = snapshot(store)
    failures = []
    for args, starts in cases:
        result = run_cli(url, args)
        try:
            assert_one_error_line(result, starts)
        except AssertionError as exc:
            failures.append(f"{args[:4]}: {exc}")
        with open_store(url) as store:
            if snapshot(store) != before:
                failures.append(f"{args[:4]}: changed the store")
                before = snapshot(store)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("store_url", "message"),
    [
        ("nonsense", "accepted forms"),
        ("hbase://127.0.0.1:notaport", "error: "),
        ("sqlite:///nonexistent-dir/x.db", "error: "),
    ],
)
def test_a_malformed_store_url_is_one_error_line(store_url, message):
    assert_one_error_line(run_cli(store_url, ["info"]), message)


def test_help_still_works_and_no_args_shows_the_usage():
    result = CliRunner().invoke(cli.main, ["query", "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output and "--limit" in result.output
    assert "Commands:" in CliRunner().invoke(cli.main, []).output


def test_debug_shows_the_traceback_of_a_culvert_error(cli_store):
    url, _ = cli_store
    result = CliRunner().invoke(
        cli.main, ["--debug", "--store", url, "query", "people", "--limit", "-1"]
    )
    assert isinstance(result.exception, ArgumentError)


def test_get_prints_the_rows_found_then_names_the_missing_keys(cli_store):
    url, _ = cli_store
    result = run_cli(url, ["get", "people", "u1", "nope", "u2", "gone", "--format", "jsonl"])
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["u1", "u2"]
    assert_one_error_line(result, "error: people: 2 key(s) not found: nope, gone")


def test_destructive_index_commands_ask_on_a_terminal_and_need_yes_elsewhere(
    cli_store, monkeypatch
):
    url, _ = cli_store
    # No writers run here: skip the grace periods drop and rebuild wait for them.
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    with open_store(url) as store:
        before = snapshot(store)
    assert_one_error_line(run_cli(url, ["index", "drop", "people"]), "pass --yes")
    monkeypatch.setattr(index_cli, "_interactive", lambda: True)
    declined = run_cli(url, ["index", "drop", "people", "by_age"], input="n\n")
    prompt, error = declined.stderr.splitlines()
    assert prompt.startswith("drop index people.by_age? [y/N]")
    assert error == "error: index drop: not confirmed; index people.by_age left as it was"
    assert declined.exit_code == 2
    with open_store(url) as store:
        assert snapshot(store) == before
    accepted = run_cli(url, ["index", "drop", "people", "by_age"], input="y\n")
    assert accepted.exit_code == 0 and "dropped people.by_age" in accepted.stdout
    monkeypatch.setattr(index_cli, "_interactive", lambda: False)
    forced = run_cli(url, ["index", "drop", "people", "by_city", "--yes"])
    assert forced.exit_code == 0 and "dropped people.by_city" in forced.stdout
    with connect(url) as db:
        assert set(db.table("people").definition.indexes) == {
            "by_city_joined",
            "bio_words",
            "active_by_score",
        }
    rebuilt = run_cli(url, ["index", "rebuild", "people", "bio_words", "--yes"])
    assert rebuilt.exit_code == 0 and "index ACTIVE" in rebuilt.stdout


@pytest.mark.hbase
@pytest.mark.parametrize("store", ["hbase"], indirect=True)
def test_cli_errors_on_hbase_are_one_line_and_change_nothing(people, store):
    people.put_many(ROWS)
    real = cursors(people)
    url = hbase_test_url()
    before = snapshot(store, people.name)
    name = people.name
    for args, starts in [
        (["query", name, "--limit", "abc"], "error: --limit: 'abc' is not a valid integer"),
        (
            [
                "query",
                name,
                "age >= 1",
                "--cursor",
                forge(real["index"], [0, "zz"]),
                "--use-index",
                "by_age",
            ],
            "fit",
        ),
        (["index", "drop", name], f"would drop all 5 indexes of {name} (by_city,"),
        (["index", "build", name, "--shard", " 0/2"], "error: --shard ' 0/2'"),
        (["get", name, "nope"], f"error: {name}: 1 key(s) not found: nope"),
    ]:
        assert_one_error_line(run_cli(url, args), starts)
    assert snapshot(store, people.name) == before
