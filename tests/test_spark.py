"""Spark jobs on the real HBase in local mode: write, build, verify/repair, read, retries.

One SparkSession serves the whole test session (``local[2,2]``: two worker threads, two
attempts per task, so a task failed on purpose is retried). pyspark, Java or HBase missing
is a failure, never a skip. Every answer is compared with a brute-force oracle over the
primary rows. The plan cutting of :mod:`culvert_py.spark.read` is also checked without
Spark, as a property over random predicates on SQLite.
"""

from __future__ import annotations

import os
import random
import tomllib
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from culvert_py.client import Client
from culvert_py.clock import now_ms
from culvert_py.layout import STATE_COLUMN, VERIFIED, IndexKeys, primary_key
from culvert_py.load.records import Reject
from culvert_py.meta import ACTIVE, BUILDING
from culvert_py.predicate import matches, parse
from culvert_py.query.executor import QueryExecutor
from culvert_py.schema import parse_schema
from culvert_py.spark.read import _pieces, _RangeStore
from culvert_py.spark.rows import RowTyper
from culvert_py.store import open_store
from tests.conftest import PEOPLE_TOML, hbase_test_url
from tests.oracle import assert_indexes_exact

CITIES = ("Oslo", "Lima", "London", None)
WORDS = ("chess", "sailing", "jazz", "tea")
PEOPLE_COLUMNS = "id string, name string, age long, score double, city string, "
PEOPLE_COLUMNS += "joined timestamp, active boolean, bio string"


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession for every Spark test; fails loudly without pyspark or Java."""
    try:
        from culvert_py.spark import SparkMissing, spark_session
    except ImportError as exc:
        pytest.fail(f"culvert_py.spark needs pyspark: pip install -e '.[test]' ({exc})")
    try:
        session = spark_session("local[2,2]", app_name="culvert-tests")
    except SparkMissing as exc:
        pytest.fail(f"Spark does not start here (pyspark and Java 17 needed): {exc}")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def hbase_url():
    return hbase_test_url()


@pytest.fixture
def hdb(hbase_url):
    client = Client(open_store(hbase_url), workers=8)
    yield client
    client.close()


def _people_schema(name: str, extra_index: bool = False):
    with open(PEOPLE_TOML, "rb") as f:
        data = tomllib.load(f)
    spec = data["tables"]["people"]
    if extra_index:
        spec["indexes"]["by_name"] = {"kind": "term", "columns": ["name"], "include": ["age"]}
    return parse_schema({"tables": {name: spec}})


@pytest.fixture
def people_name(hdb):
    name = f"spk_{uuid.uuid4().hex[:10]}"
    hdb.apply_schema(_people_schema(name))
    yield name
    hdb.drop_table(name)


def _rows(n: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    return [
        {
            "id": f"u{i:04}",
            "name": f"person {rnd.randrange(40)}",
            "age": rnd.choice([None, *range(18, 60)]),
            "score": rnd.choice([None, float("-inf"), -1.5, 0.0, 2.25, 7.0]),
            "city": rnd.choice(CITIES),
            "joined": base + timedelta(hours=rnd.randrange(5000)),
            "active": rnd.choice([True, False, None]),
            "bio": " ".join(rnd.sample(WORDS, rnd.randrange(3))) or None,
        }
        for i in range(n)
    ]


def _tuple(row: dict) -> tuple:
    return tuple(row[c] for c in ("id", "name", "age", "score", "city", "joined", "active", "bio"))


def _from_spark(row) -> dict:
    """A collected Spark row as the dict culvert returns (Spark's naive local time → UTC)."""
    out = row.asDict()
    for column, value in out.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            out[column] = value.astimezone(UTC)
    return out


def _fault_hook(tmp_path: Path):
    """A task hook that kills the first attempt of the first task to finish a batch.

    The task that wins the ``fault`` file (created exclusively, across executor processes)
    raises after its first checkpointed batch; any later attempt of a task marks
    ``retried-<partition>``, so the test can see that Spark ran it again.
    """
    from pyspark import TaskContext

    def hook(number: int, _done: int) -> None:
        if TaskContext.get().attemptNumber() > 0:
            (tmp_path / f"retried-{number}").touch()
            return
        try:
            fd = os.open(tmp_path / "fault", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, str(number).encode())
        os.close(fd)
        raise RuntimeError("fault drill: the first attempt of this task dies here")

    return hook


def _assert_retried(tmp_path: Path) -> None:
    failed = int((tmp_path / "fault").read_text())
    assert (tmp_path / f"retried-{failed}").exists(), "Spark did not run the failed task again"


# -------------------------------------------------------------------------- no Spark needed


def test_row_typer_types_by_schema_and_names_every_bad_column():
    definition = _people_schema("t").table("t")
    fields = [("id", "string"), ("age", "string"), ("score", "long"), ("joined", "timestamp")]
    typer = RowTyper(definition, fields)
    naive = datetime(2024, 5, 1, 10, 0)  # Spark's local time for a TimestampType value
    pk, row = typer.row({"id": "a", "age": " 42 ", "score": 3, "joined": naive})
    assert row == {"id": "a", "age": 42, "score": 3.0, "joined": naive.astimezone(UTC)}
    assert pk == primary_key(definition, row)
    with pytest.raises(Reject) as bad:
        typer.row({"id": "b", "age": "forty", "score": 1, "joined": None})
    assert "column 'age': expected int, got 'forty'" in str(bad.value)
    with pytest.raises(Reject, match="row-key column 'id' is NULL"):
        typer.row({"id": None, "age": None, "score": None, "joined": None})


def test_row_typer_refuses_a_dataframe_no_row_of_which_could_load():
    definition = _people_schema("t").table("t")
    from culvert_py.errors import SchemaError

    with pytest.raises(SchemaError, match="'nickname' not in the table"):
        RowTyper(definition, [("id", "string"), ("nickname", "string")])
    with pytest.raises(SchemaError, match="lacks row-key column"):
        RowTyper(definition, [("age", "long")])
    with pytest.raises(SchemaError, match="Spark type boolean cannot hold int"):
        RowTyper(definition, [("id", "string"), ("age", "boolean")])


def test_jobs_refuse_malformed_arguments_before_touching_spark():
    from culvert_py.errors import ArgumentError
    from culvert_py.spark import build_index, read, write

    with pytest.raises(ArgumentError, match="expected a store URL"):
        write(None, "people.db", "people")
    with pytest.raises(ArgumentError, match="mode='fast': expected one of safe, bulk"):
        write(None, "sqlite:///x.db", "people", mode="fast")
    with pytest.raises(ArgumentError, match="batch_size=0"):
        write(None, "sqlite:///x.db", "people", batch_size=0)
    with pytest.raises(ArgumentError, match="expected a store URL"):
        build_index(None, 42, "people", "by_age")
    with pytest.raises(ArgumentError, match="columns='id'"):
        read(None, "sqlite:///x.db", "people", columns="id")


_PREDICATES = st.lists(
    st.sampled_from(
        [
            "age >= 30",
            "age BETWEEN 20 AND 25",
            "city = 'Oslo'",
            "city IN ('Lima', 'London')",
            "CONTAINS(bio, 'chess')",
            "score > 0",
            "active = true AND score >= 2.25",
            "name = 'person 3'",
            "age IS NULL",
            "age > 50 AND age < 40",
        ]
    ),
    min_size=1,
    max_size=3,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=_PREDICATES, glue=st.sampled_from([" AND ", " OR "]))
def test_plan_pieces_partition_the_answer_exactly(people, parts, glue):
    """Running every piece on its own gives the query's rows, each exactly once."""
    if not hasattr(people, "_spark_rows"):
        people._spark_rows = _rows(240, seed=7)
        people.put_many(people._spark_rows)
    where = glue.join(f"({p})" for p in parts)
    plan = people.plan(where)
    store = people.store
    definition = people.definition
    ranges = [(b"", b"u0100"), (b"u0100", b"u0170"), (b"u0170", b"")]
    got = []
    for source, bounds in _pieces(plan.source, lambda: ranges):
        view = store if bounds is None else _RangeStore(store, definition.hbase_table, bounds)
        executor = QueryExecutor(view, definition, people.client.executor)
        got += [r["id"] for r in executor.run(replace(plan, source=source))]
    predicate = parse(where, dict(definition.columns))
    want = sorted(r["id"] for r in people._spark_rows if matches(predicate, r))
    assert sorted(got) == want


# ------------------------------------------------------------------------ Spark on HBase


@pytest.mark.hbase
def test_write_loads_good_rows_rejects_bad_ones_and_survives_a_retried_task(
    spark, hbase_url, hdb, people_name, tmp_path
):
    from culvert_py.spark import write

    rows = _rows(240, seed=1)
    good = spark.createDataFrame([_tuple(r) for r in rows], PEOPLE_COLUMNS).repartition(3)
    bad = spark.createDataFrame(
        [("x1", "forty", "1.5"), (None, "3", "2"), ("x2", "41", "many"), ("x3", "7", "-inf")],
        "id string, age string, score string",
    )
    report = write(good, hbase_url, people_name, batch_size=25, on_batch=_fault_hook(tmp_path))
    _assert_retried(tmp_path)
    assert (report.rows, report.written, report.rejected) == (240, 240, 0)
    assert len(report.tasks) == 3
    more = write(bad, hbase_url, people_name, mode="bulk", rejects=str(tmp_path / "rejects"))
    assert (more.rows, more.written, more.rejected) == (4, 1, 3)
    reasons = {r["reason"] for r in more.rejects.collect()}
    assert reasons == {
        "column 'age': expected int, got 'forty'",
        "row-key column 'id' is NULL",
        "column 'score': expected float, got 'many'",
    }
    assert spark.read.json(str(tmp_path / "rejects")).count() == 3
    table = hdb.table(people_name)
    rows.append({"id": "x3", "age": 7, "score": float("-inf")})
    got = {r["id"]: r for r in table.scan_rows()}
    assert set(got) == {r["id"] for r in rows}
    for row in rows[:-1]:
        assert got[row["id"]] == {c: v for c, v in row.items() if v is not None}
    assert got["x3"]["age"] == 7
    assert assert_indexes_exact(table, rows) > 0


@pytest.mark.hbase
def test_build_over_a_populated_table_with_a_retried_task_leaves_verify_clean(
    spark, hbase_url, hdb, people_name, tmp_path
):
    from culvert_py.spark import build_index, verify_index

    table = hdb.table(people_name)
    rows = _rows(400, seed=2)
    table.put_many(rows)
    hdb.apply_schema(_people_schema(people_name, extra_index=True))
    assert hdb.meta.state_since(people_name, "by_name")[0] == BUILDING
    hook = _fault_hook(tmp_path)
    report = build_index(
        spark, hbase_url, people_name, "by_name", grace_seconds=0, batch_size=40, on_batch=hook
    )
    _assert_retried(tmp_path)
    assert report.state_after == ACTIVE
    assert len(report.tasks) > 2  # the plan's ranges became several tasks
    assert hdb.meta.state_since(people_name, "by_name")[0] == ACTIVE
    check = verify_index(spark, hbase_url, people_name, "by_name", batch_size=100)
    assert check.clean and check.rows_checked == 400 and check.entries_checked == 400
    again = build_index(spark, hbase_url, people_name, "by_name")
    assert again.rows_scanned == 0 and again.state_after == ACTIVE
    table.refresh()
    assert assert_indexes_exact(table, rows) > 0


@pytest.mark.hbase
def test_verify_counts_damage_done_behind_the_librarys_back_and_repair_fixes_it(
    spark, hbase_url, hdb, people_name
):
    from culvert_py.spark import repair_index, verify_index

    table = hdb.table(people_name)
    rows = _rows(200, seed=3)
    table.put_many(rows)
    definition = table.definition
    index = definition.indexes["by_age"]
    keys = IndexKeys(definition, index)
    entries = hdb.store.table(index.hbase_table)
    with_age = [r for r in rows if r["age"] is not None]
    lost = with_age[:5]
    entries.delete_many(
        [k for r in lost for k in keys.entry_keys(r, primary_key(definition, r))], now_ms()
    )
    stale = dict(with_age[5], age=99)
    orphan = keys.entry_keys(stale, primary_key(definition, stale))
    entries.put_many([(k, {STATE_COLUMN: VERIFIED}) for k in orphan], now_ms())

    found = verify_index(spark, hbase_url, people_name, "by_age", settle_seconds=0)
    assert (found.missing, found.orphan) == (5, 1)
    fixed = repair_index(spark, hbase_url, people_name, "by_age", settle_seconds=0)
    assert fixed.repaired == 6
    after = verify_index(spark, hbase_url, people_name, "by_age", settle_seconds=0)
    assert after.clean and after.rows_checked == 200
    assert assert_indexes_exact(table, rows) > 0


@pytest.mark.hbase
def test_read_answers_equal_the_oracle(spark, hbase_url, hdb, people_name):
    from culvert_py.spark import read

    table = hdb.table(people_name)
    rows = _rows(300, seed=4)
    table.put_many(rows)
    for where, columns in [
        ("age >= 30 AND city = 'Oslo'", None),  # intersection or index scan + residual
        ("CONTAINS(bio, 'chess') OR age < 20", ["id", "age", "bio"]),  # union
        ("age BETWEEN 25 AND 35", ["id", "age", "name"]),  # covered range
        ("score > 0", None),  # full scan
        ("age > 50 AND age < 40", None),  # contradiction: no partition at all
        (None, ["id", "joined"]),  # every row
    ]:
        frame = read(spark, hbase_url, people_name, where, columns)
        got = sorted((_from_spark(r) for r in frame.collect()), key=lambda r: r["id"])
        predicate = parse(where, dict(table.definition.columns)) if where else None
        want = [
            {c: r[c] for c in (columns or r)}
            for r in rows
            if predicate is None or matches(predicate, r)
        ]
        assert got == sorted(want, key=lambda r: r["id"]), where


# -------------------------------------------------------------------------------- the CLI


@pytest.mark.hbase
def test_cli_load_then_verify_on_spark(spark, hbase_url, hdb, people_name, tmp_path):
    from click.testing import CliRunner

    from culvert_cli.main import main

    path = tmp_path / "people.csv"
    lines = ["id,name,age,city"] + [f"c{i:03},n{i},{20 + i % 30},Oslo" for i in range(30)]
    path.write_text("\n".join([*lines, "c999,bad,old,Lima"]) + "\n")
    runner = CliRunner()
    loaded = runner.invoke(main, ["--store", hbase_url, "load", people_name, str(path), "--spark"])
    assert loaded.exit_code == 2, loaded.output
    assert "read 31 / loaded 30 / rejected 1" in loaded.stdout
    assert loaded.stderr.strip().splitlines() == [
        f"error: 1 row(s) rejected; reasons in {path}.rejects"
    ]
    rows = list(hdb.table(people_name).scan_rows())
    assert sorted(r["id"] for r in rows) == [f"c{i:03}" for i in range(30)]
    checked = runner.invoke(
        main, ["--store", hbase_url, "index", "verify", people_name, "by_age", "--spark"]
    )
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.startswith(f"{people_name}.by_age: clean: 30 rows and 30 entries")


@pytest.mark.hbase
def test_cli_spark_refuses_an_action_without_a_spark_form(hbase_url, people_name):
    from click.testing import CliRunner

    from culvert_cli.main import main

    result = CliRunner().invoke(
        main, ["--store", hbase_url, "index", "drop", people_name, "by_age", "--yes", "--spark"]
    )
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: index drop: --spark runs only")
