"""Which plan the planner picks for representative queries, from real statistics."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from culvert_py.errors import QueryError
from culvert_py.query.planner import NO_INDEX, Empty, FullScan, IndexScan, Intersect, Union


@pytest.fixture
def stocked(people):
    """2,000 people: age uniform 0-99, city 'Oslo' for half and c00-c49 (1% each) for the
    rest, names unique and unindexed; statistics collected."""
    rnd = random.Random(7)
    base = datetime(2020, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(2000):
        rows.append(
            {
                "id": f"p{i:05d}",
                "name": f"name{i}",
                "age": rnd.randrange(100),
                "city": "Oslo" if i % 2 else f"c{(i // 2) % 50:02d}",
                "joined": base + timedelta(hours=i),
                "score": rnd.random() * 10,
                "active": rnd.random() < 0.5,
                "bio": "loves tea" if i % 97 == 0 else rnd.choice(["hbase fan", "quiet"]),
            }
        )
    people.put_many(rows)
    people.refresh_stats()
    return people


def source(table, where, **kw):
    return table.plan(where, **kw).source


def test_rare_value_uses_an_index_and_common_value_scans(stocked):
    rare = source(stocked, "city = 'c07'")
    assert isinstance(rare, IndexScan) and rare.index.columns[0] == "city"
    assert rare.est_entries == pytest.approx(20, rel=1.0)
    common = source(stocked, "city = 'Oslo'")
    assert isinstance(common, FullScan)


def test_covered_query_needs_no_primary_fetch(stocked):
    plan = source(stocked, "age = 5", columns=["id", "age", "name"])
    assert isinstance(plan, IndexScan) and plan.index.name == "by_age" and plan.covered
    assert not source(stocked, "age = 5").covered  # all columns: not covered
    rows = list(stocked.query("age = 5", columns=["id", "age", "name"]))
    assert rows and all(set(r) == {"id", "age", "name"} for r in rows)


def test_two_selective_predicates_intersect(stocked):
    where = "age < 5 AND city IN ('c01', 'c02', 'c03', 'c04', 'c05')"
    plan = source(stocked, where)
    assert isinstance(plan, Intersect)
    names = {plan.driver.index.name, plan.probes[0].index.name}
    assert "by_age" in names
    expected = [r["id"] for r in stocked.query(where, use_index=NO_INDEX)]
    assert sorted(r["id"] for r in stocked.query(where)) == sorted(expected)


def test_unindexed_column_is_a_full_scan_with_a_server_filter(stocked, store):
    plan = source(stocked, "name = 'name5'")
    assert isinstance(plan, FullScan)
    if "server_filter" in store.capabilities:
        assert plan.filter is not None and b"SingleColumnValueFilter" in plan.filter
    assert [r["id"] for r in stocked.query("name = 'name5'")] == ["p00005"]


def test_contradictions_read_nothing(stocked):
    for where in ("age > 5 AND age < 3", "age = 1 AND age = 2", "city = 'a' AND city LIKE 'b%'"):
        assert isinstance(source(stocked, where), Empty)
        assert list(stocked.query(where)) == []


def test_partial_index_only_when_the_query_implies_its_where(stocked):
    assert not (
        isinstance(p := source(stocked, "score > 9.9"), IndexScan)
        and p.index.name == "active_by_score"
    )
    plan = source(stocked, "score > 9.9 AND active = true")
    assert isinstance(plan, IndexScan) and plan.index.name == "active_by_score"
    point = source(stocked, "score = 5.0 AND active = true")
    assert len({b for r in point.ranges for b in r.buckets}) == 1  # value salt: one bucket


def test_text_or_and_in_lists(stocked):
    text = source(stocked, "CONTAINS(bio, 'tea')")
    assert isinstance(text, IndexScan) and text.index.kind == "text"
    union = source(stocked, "age = 1 OR city = 'c03'")
    assert isinstance(union, Union) and len(union.branches) == 2
    assert all(isinstance(b.source, IndexScan) for b in union.branches)
    inlist = source(stocked, "age IN (1, 2, 3)")
    assert isinstance(inlist, IndexScan) and len(inlist.ranges) == 3
    one_or_full = source(stocked, "age = 1 OR name = 'x'")
    assert isinstance(one_or_full, FullScan)


def test_hints(stocked):
    assert isinstance(source(stocked, "age = 5", use_index=NO_INDEX), FullScan)
    forced = source(stocked, "city = 'Oslo'", use_index="by_city")
    assert isinstance(forced, IndexScan) and forced.index.name == "by_city"
    with pytest.raises(QueryError, match="cannot answer"):
        stocked.plan("age = 5", use_index="by_city")
    with pytest.raises(QueryError, match="unknown index"):
        stocked.plan("age = 5", use_index="nope")


def test_building_indexes_are_not_used(stocked, db):
    db.meta.set_state(stocked.name, "by_age", "BUILDING")
    stocked.refresh()
    plan = source(stocked, "age = 5")
    assert not (isinstance(plan, IndexScan) and plan.index.name == "by_age")
    db.meta.set_state(stocked.name, "by_age", "ACTIVE")


def test_order_by_an_indexed_column_needs_no_sort(stocked):
    plan = stocked.plan("age > 90", order_by="age")
    assert isinstance(plan.source, IndexScan) and plan.sort is None
    ages = [r["age"] for r in stocked.query("age > 90", order_by="age")]
    assert ages == sorted(ages) and ages
    sorted_plan = stocked.plan("age > 90", order_by="name")
    assert sorted_plan.sort == ("name", False)


def test_explain_text_structure_and_analyze(stocked):
    explanation = stocked.explain("city = 'c07' AND age >= 0")
    assert "IndexScan" in explanation.text and "bucket" in explanation.text
    assert explanation.plan["source"]["type"] in ("IndexScan", "Intersect")
    analyzed = stocked.explain("city = 'c07'", analyze=True)
    assert "actual" in analyzed.text and "rpcs" in analyzed.text
    assert analyzed.plan["actual_rows"] == len(list(stocked.query("city = 'c07'")))
    full = stocked.explain("name = 'name5'")
    assert "FullScan" in full.text
