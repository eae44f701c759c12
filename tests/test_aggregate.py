"""Aggregates (count, group-by count, min, max, distinct): exact against a brute-force oracle.

On SQLite and the real HBase, over rows with NULLs in every column, a partial index, a text
index, and entries a crashed writer left unverified (stale ones of updated rows, orphans of
rows never written, entries of half-deleted rows). The oracle (tests/oracle.py) reads only
the primary rows.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from culvert_py.errors import ArgumentError, QueryError
from culvert_py.layout import STATE_COLUMN, UNVERIFIED
from culvert_py.query.aggregate import INDEX_PATH, ROWS_PATH
from tests.oracle import aggregate_oracle
from tests.test_adopt import adopted, build_all, foreign, java_cells  # noqa: F401 (fixtures)
from tests.test_write import crash_after, person

WORDS = ["hbase", "tea", "loves", "wörds", "absent"]
CITIES = ["Oslo", "Lima", "Zürich", "it's", "São Paulo", "Nowhere"]
AGES = [-6, -5, 0, 16, 17, 30, 64, 65, 66]

WHERES = st.one_of(
    st.none(),
    st.sampled_from(AGES).map(lambda a: f"age > {a}"),
    st.tuples(st.sampled_from(AGES), st.sampled_from(AGES)).map(
        lambda ab: f"age BETWEEN {min(ab)} AND {max(ab)}"
    ),
    st.sampled_from(CITIES).map(lambda c: "city = '" + c.replace("'", "''") + "'"),
    st.sampled_from(["city IS NULL", "age IS NULL", "age IS NOT NULL", "active = true"]),
    st.sampled_from(WORDS).map(lambda w: f"CONTAINS(bio, '{w}')"),
    st.sampled_from([-2.0, 0.0, 2.5]).map(lambda s: f"active = true AND score > {s}"),
    st.sampled_from(AGES).map(lambda a: f"city = 'Oslo' AND age >= {a}"),  # no one index
    st.sampled_from(AGES).map(lambda a: f"age < {a} OR city = 'Lima'"),  # a union
    st.just("age > 5 AND age < 3"),  # a contradiction
)
AGGREGATES = st.one_of(
    st.tuples(st.just("count"), st.sampled_from([None, "city", "age", "active", "name"])),
    st.tuples(st.sampled_from(["min", "max"]), st.sampled_from(["age", "score", "city", "name"])),
    st.tuples(st.just("distinct"), st.sampled_from(["city", "age", "score", "joined"])),
)


def run(table, kind, column, where, limit=None):
    if kind == "count":
        return table.count(where, group_by=column)
    if kind == "distinct":
        return table.distinct(column, where, limit)
    return getattr(table, kind)(column, where)


def load_with_crashes(people, seed: int) -> None:
    """Rows, then updates and deletes whose writers crash at each protocol step."""
    rnd = random.Random(seed)
    people.put_many([person(i, rnd) for i in range(150)])
    for step in ("unverified", "primary", "read"):
        for write in (
            lambda: people.put_many([person(rnd.randrange(170), rnd) for _ in range(25)]),
            lambda: people.delete_many([f"p{rnd.randrange(150):04d}" for _ in range(10)]),
        ):
            people.refresh()  # the writer of the current schema generation is the one hooked
            people.writer.on_step = crash_after(step)
            with pytest.raises(Exception, match=step):
                write()
            people.writer.on_step = None
    people.put_many([person(rnd.randrange(170), rnd) for _ in range(20)])


def unverified_entries(store, people) -> int:
    return sum(
        cells.get(STATE_COLUMN) == UNVERIFIED
        for index in people.definition.indexes.values()
        for _, cells in store.table(index.hbase_table).scan()
    )


def test_aggregates_equal_the_oracle_after_crashed_writers(people, store):
    load_with_crashes(people, 11)
    assert unverified_entries(store, people) > 20  # the crashes really left some behind
    rows = list(people.scan_rows())
    paths: set[str] = set()

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(where=WHERES, aggregate=AGGREGATES, limit=st.none() | st.integers(0, 4))
    def check(where, aggregate, limit):
        kind, column = aggregate
        limit = limit if kind == "distinct" else None
        want = aggregate_oracle(people.definition, rows, kind, column, where, limit)
        got = run(people, kind, column, where, limit)
        assert got == want, f"{kind}({column}) where {where} limit {limit}"
        if isinstance(want, dict):
            assert list(got) == sorted(got, key=lambda v: (v is not None, v))  # value order
        paths.add(people.plan_aggregate(kind, where, column, limit).path)

    check()
    assert paths == {INDEX_PATH, ROWS_PATH}

    # With statistics the plans may change (a whole-index scan against a fetch); the
    # answers may not.
    people.refresh_stats()
    for kind, column, where in [
        ("count", None, None),
        ("count", "city", "age BETWEEN 0 AND 30"),
        ("count", None, "city = 'Oslo' AND age >= 17"),
        ("max", "age", "active = true AND score > 0.0"),
        ("distinct", "city", "age > 16"),
    ]:
        want = aggregate_oracle(people.definition, rows, kind, column, where)
        assert run(people, kind, column, where) == want, f"{kind}({column}) where {where}"


COVERED = [
    ("count", None, "age BETWEEN 17 AND 30", "by_age"),
    ("count", None, None, "by_city"),
    ("count", "city", None, "by_city"),
    ("count", "city", "city = 'Oslo'", "by_city"),
    ("count", None, "CONTAINS(bio, 'tea')", "bio_words"),
    ("count", None, "active = true AND score > 0.0", "active_by_score"),
    ("count", "name", "age > 16", "by_age"),  # name is included in by_age's entries
    ("min", "age", None, "by_age"),
    ("max", "score", "active = true", "active_by_score"),
    ("distinct", "city", None, "by_city"),
]


def test_covered_aggregates_read_entries_never_rows(people, store):
    rnd = random.Random(3)
    rows = [person(i, rnd) for i in range(80)]
    people.put_many(rows)
    answers = {}
    for kind, column, where, index in COVERED:
        agg = people.plan_aggregate(kind, where, column)
        assert (agg.path, agg.plan.source.index.name) == (INDEX_PATH, index), agg.reason
        answers[kind, column, where] = run(people, kind, column, where)
        assert answers[kind, column, where] == aggregate_oracle(
            people.definition, rows, kind, column, where
        )
    # Take the primary rows away behind the index: answers from verified entries alone do
    # not change, so no primary row was read.
    primary = store.table(people.definition.hbase_table)
    primary.delete_many([k for k, _ in primary.scan()], 2**62)
    assert people.get("p0000") is None
    for (kind, column, where), want in answers.items():
        assert run(people, kind, column, where) == want, f"{kind}({column}) where {where}"


def test_explain_says_which_path_and_why(people):
    people.put_many([person(i, random.Random(i)) for i in range(30)])
    agg = people.plan_aggregate("count", "city = 'Oslo' AND age > 3")
    assert agg.path == ROWS_PATH and "lack age" in agg.reason
    text = people.explain_aggregate("count", "active", "age > 3", analyze=True)
    assert text.startswith("Aggregate count group by active of ")
    assert "from rows" in text and "(then fetch rows)" in text and "| result {" in text
    text = people.explain_aggregate("count", "city", None)
    assert "from index entries: every entry of index by_city" in text
    assert "(covered, no primary fetch)" in text and "full scan" not in text


def test_min_and_max_read_one_entry_per_bucket_end_and_skip_crashed_ones(people):
    people.put_many([{"id": f"m{i:04d}", "age": i % 500} for i in range(600)])
    buckets = people.definition.indexes["by_age"].buckets
    for kind, want in (("min", 11), ("max", 499)):
        assert getattr(people, kind)("age", "age > 10") == want
        text = people.explain_aggregate(kind, "age", "age > 10", analyze=True)
        read = int(text.split(" entries read")[0].rsplit(", ", 1)[1].replace(",", ""))
        assert read == buckets and "stops at the first entry that passes" in text, text
    # Crashed writers leave unverified entries at both ends: a row never written (age
    # 10,000), and a row moved from the top (499) to the bottom (-1) whose write stopped
    # after the primary row: its old entry is stale, its new one unverified but live.
    crashes = [("unverified", {"id": "x1", "age": 10_000}), ("primary", {"id": "m0499", "age": -1})]
    for step, change in crashes:
        people.refresh()
        people.writer.on_step = crash_after(step)
        with pytest.raises(Exception, match=step):
            people.put(change)
        people.writer.on_step = None
    assert (people.min("age"), people.max("age")) == (-1, 498)
    assert (people.min("age", "age > 10"), people.max("age", "age < 10000")) == (11, 498)
    text = people.explain_aggregate("max", "age", None, analyze=True)
    assert "from index entries" in text and "| result 498" in text


def test_adopted_tables_trust_no_entry(store, adopted, tmp_path):  # noqa: F811
    client, name, hbase = adopted
    build_all(client, name, tmp_path)
    table = client.table(name)
    before = table.count("age BETWEEN 20 AND 30")
    agg = table.plan_aggregate("count", "age BETWEEN 20 AND 30")
    assert agg.path == ROWS_PATH and "adopted" in agg.reason
    # The application moves one row out of the range behind culvert_py's back (no sync):
    # its entry is still verified, and still not counted, because every row is checked.
    inside = next(table.query("age BETWEEN 20 AND 30", columns=["user_id"]))["user_id"]
    store.table(hbase).put_many([(inside.encode(), java_cells({"age": 99}))], 2**62)
    assert table.count("age BETWEEN 20 AND 30") == before - 1


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda t: t.count(group_by="nope"), QueryError, "unknown column 'nope' in group_by"),
        (lambda t: t.count(group_by=3), ArgumentError, "group_by=3: expected a name"),
        (lambda t: t.min(None), ArgumentError, "min: column=None: expected a name"),
        (lambda t: t.distinct("city", limit=-1), ArgumentError, "limit=-1: expected an integer"),
        (lambda t: t.count("agee > 3"), QueryError, "unknown column 'agee'"),
        (lambda t: t.count(5), ArgumentError, "where=5"),
        (lambda t: t.explain_aggregate("sum", "age"), ArgumentError, "aggregate 'sum'"),
        (lambda t: t.plan_aggregate("max", None, "age", 3), ArgumentError, "distinct only"),
    ],
)
@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # argument checks: one store
def test_malformed_aggregates_are_refused_at_the_door(people, call, error, message):
    with pytest.raises(error, match=message):
        call(people)
