"""The executor on both stores: cursors resume on every plan kind, stale entries are dropped,
analyze counters add up."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from culvert_py.clock import now_ms
from culvert_py.layout import STATE_COLUMN, VERIFIED, IndexKeys, entries_of, primary_key
from culvert_py.predicate import matches, normalize, parse
from culvert_py.query.executor import FETCH_BATCH, QueryExecutor
from culvert_py.query.plan import NO_INDEX, Empty, FullScan, IndexScan, Intersect, Plan, Union
from culvert_py.query.planner import Planner

_BASE = datetime(2020, 1, 1, tzinfo=UTC)


def _rows(n: int) -> list[dict]:
    return [
        {
            "id": f"p{i:05d}",
            "name": f"name{(i * 7919) % n:05d}",
            "age": i % 100,
            "city": "Oslo" if i % 2 else f"c{(i // 2) % 10}",
            "joined": _BASE + timedelta(hours=i),
            "score": (i % 13) / 2,
            "active": i % 3 == 0,
            "bio": "loves tea" if i % 5 == 0 else "quiet",
        }
        for i in range(n)
    ]


@pytest.fixture
def filled(people):
    people.put_many(_rows(300))
    return people


def _run(table, plan: Plan, cursor=None):
    return QueryExecutor(table.store, table.definition, table.client.executor).run(plan, cursor)


def _paged(table, plan: Plan, size: int) -> list[dict]:
    plan.limit = size
    rows, cursor = [], None
    while True:
        result = _run(table, plan, cursor)
        page = list(result)
        assert len(page) <= size
        rows += page
        cursor = result.cursor
        if cursor is None:
            return rows
        assert page, "a cursor after an empty page would loop"


def _expected(table, where) -> list[dict]:
    predicate = normalize(parse(where, dict(table.definition.columns)))
    return [r for r in _rows(300) if matches(predicate, r)]


def _plans(table) -> dict[str, tuple[str, Plan]]:
    guess = Planner(table.definition, table.states, None, False)
    city = table.plan("city = 'Oslo' AND age >= 50", use_index="by_city")
    age = table.plan("city = 'Oslo' AND age >= 50", use_index="by_age")
    both = Intersect(city.source, [age.source])
    intersect = Plan(city.table, both, city.predicate, None, None, None, None, [])
    return {
        "full": ("age >= 40", table.plan("age >= 40", use_index=NO_INDEX)),
        "index": ("city = 'Oslo'", table.plan("city = 'Oslo'", use_index="by_city")),
        "intersect": ("city = 'Oslo' AND age >= 50", intersect),
        "union": ("city = 'c3' OR age = 7", guess.plan("city = 'c3' OR age = 7")),
        "sorted": ("age < 30", table.plan("age < 30", order_by="name", use_index=NO_INDEX)),
        "empty": ("age > 5 AND age < 3", table.plan("age > 5 AND age < 3")),
    }


_KINDS = {
    "full": FullScan,
    "index": IndexScan,
    "intersect": Intersect,
    "union": Union,
    "sorted": FullScan,
    "empty": Empty,
}


@pytest.mark.parametrize("kind", sorted(_KINDS))
def test_cursors_resume_after_the_last_row_on_every_plan_kind(filled, kind):
    where, plan = _plans(filled)[kind]
    assert isinstance(plan.source, _KINDS[kind])
    whole = list(_run(filled, plan))
    ids = [r["id"] for r in whole]
    expected = _expected(filled, where)
    if plan.order_by is None:
        assert sorted(ids) == sorted(r["id"] for r in expected)
    else:
        assert ids == [r["id"] for r in sorted(expected, key=lambda r: r[plan.order_by[0]])]
    for size in (1, 7, 64):
        paged = [r["id"] for r in _paged(filled, plan, size)]
        assert paged == ids, f"{kind}: pages of {size} differ from one run"


def test_a_stale_entry_is_dropped_by_the_ownership_check(filled):
    # An entry the row does not own (its city is not 'Bergen'), written behind the library's
    # back, marked verified: the row fetched for it must disown it.
    row = dict(_rows(300)[1])
    pk = primary_key(filled.definition, row)
    index = filled.definition.indexes["by_city"]
    keys = IndexKeys(filled.definition, index)
    ghost = entries_of(filled.definition, index, {**row, "city": "Bergen"}, pk, keys)
    cells = {
        key: {c: v for c, v in covered.items() if v is not None} | {STATE_COLUMN: VERIFIED}
        for key, covered in ghost.items()
    }
    filled.store.table(index.hbase_table).put_many(cells.items(), now_ms())
    plan = filled.plan("city = 'Bergen'", use_index="by_city")
    assert isinstance(plan.source, IndexScan)
    assert list(_run(filled, plan)) == []
    assert plan.source.entries_read == len(ghost)  # read, then dropped
    assert list(filled.query("city = 'Oslo'", use_index="by_city")) == _expected(
        filled, "city = 'Oslo'"
    )


def test_analyze_counters_add_up_under_parallel_buckets(people):
    people.put_many(_rows(2500))
    buckets = people.definition.indexes["by_city"].buckets
    assert buckets > 1
    runs = []
    for _ in range(2):
        plan = people.explain("city = 'Oslo'", use_index="by_city", analyze=True).plan
        runs.append(plan)
        scan = plan["source"]
        assert scan["type"] == "IndexScan" and not scan["covered"]
        assert plan["actual_rows"] == 1250
        assert scan["entries_read"] >= plan["actual_rows"]
        # Each bucket opens a scanner and fetches at least one batch; each chunk of
        # entries is one batched primary get.
        least = 2 * buckets + math.ceil(scan["entries_read"] / FETCH_BATCH)
        assert scan["rpcs"] >= least
        assert plan["source"]["rpcs"] > 0
    # Counting from pool threads loses no increments: the same query counts the same.
    assert runs[0]["source"]["rpcs"] == runs[1]["source"]["rpcs"]
    assert runs[0]["source"]["entries_read"] == runs[1]["source"]["entries_read"]


def test_a_limited_query_reads_only_the_entries_it_returns_unless_some_are_stale(people):
    people.put_many(_rows(2500))
    plan = people.plan("city = 'Oslo'", use_index="by_city")
    everything = [r["id"] for r in _run(people, plan)]
    for limit in (1, 10, 50):
        plan = people.plan("city = 'Oslo'", use_index="by_city", limit=limit)
        assert [r["id"] for r in _run(people, plan)] == everything[:limit]
        # the merge hands the first fetch exactly `limit` entries, and they all hold
        assert plan.source.entries_read == limit
    # Stale entries among the first ones: the query still fills its page, in order.
    index = people.definition.indexes["by_city"]
    keys = IndexKeys(people.definition, index)
    ghosts = {}
    for row in _rows(2500)[:40:2]:  # rows of cities c0..c9, indexed under 'Oslo' here
        pk = primary_key(people.definition, row)
        for key in entries_of(people.definition, index, {**row, "city": "Oslo"}, pk, keys):
            ghosts[key] = {STATE_COLUMN: VERIFIED}
    people.store.table(index.hbase_table).put_many(ghosts.items(), now_ms())
    plan = people.plan("city = 'Oslo'", use_index="by_city", limit=30)
    assert [r["id"] for r in _run(people, plan)] == everything[:30]
    assert plan.source.entries_read >= 30
