"""Which plan the planner picks for representative queries, from real statistics."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from culvert_py.encoding import prefix_successor
from culvert_py.errors import QueryError
from culvert_py.layout import IndexKeys
from culvert_py.meta import ACTIVE, BUILDING
from culvert_py.predicate import Or, col, matches
from culvert_py.query.plan import NO_INDEX, Empty, FullScan, IndexScan, Intersect, Union
from culvert_py.query.planner import Planner
from culvert_py.schema import parse_schema
from culvert_py.stats import IndexStats, TableStats


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
    # Forcing it would read an incomplete index: refused, rather than rows silently missing.
    with pytest.raises(QueryError, match=rf"{stocked.name}\.by_age is BUILDING.*index build"):
        stocked.query("age = 5", use_index="by_age")
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


# -- key ranges are exact, disjoint and ordered (no store needed) ------------------------------

_GRID = parse_schema(
    {
        "tables": {
            "grid": {
                "row_key": ["id"],
                "columns": {"id": "str", "a": "int", "b": "int", "c": "str"},
                "indexes": {
                    "a_up": {"kind": "range", "columns": ["a"]},
                    "a_down": {"kind": "range", "columns": ["a"], "descending": ["a"]},
                    "a_b": {"kind": "range", "columns": ["a", "b"], "descending": ["b"]},
                    "c_words": {"kind": "text", "columns": ["c"]},
                },
            }
        }
    }
).tables["grid"]
_DOMAIN = [None, -2, -1, 0, 1, 2, 3]
_ALL_ACTIVE = {name: "ACTIVE" for name in _GRID.indexes}


def _one_column_leaves(column: str):
    value = st.sampled_from(_DOMAIN[1:])
    return st.one_of(
        st.builds(lambda v: col(column) == v, value),
        st.builds(lambda op, v: getattr(col(column), op)(v), st.sampled_from(OPS), value),
        st.builds(lambda lo, hi: col(column).between(lo, hi), value, value),
        st.builds(lambda vs: col(column).isin(vs), st.lists(value, min_size=1, max_size=4)),
        st.just(col(column).is_null()),
        st.just(col(column).is_not_null()),
    )


OPS = ["__lt__", "__le__", "__gt__", "__ge__"]


def _disjunction(column: str):
    return st.lists(_one_column_leaves(column), min_size=1, max_size=4).map(
        lambda leaves: leaves[0] if len(leaves) == 1 else Or(tuple(leaves))
    )


def _keys_in(scan: IndexScan, key: bytes) -> int:
    return sum(r.start <= key and (r.stop is None or key < r.stop) for r in scan.ranges)


def _assert_disjoint_and_exact(plan, index: str, columns: list[str], predicate) -> None:
    keys = IndexKeys(_GRID, _GRID.indexes[index])
    pk = b"\x40pk\x00\x01"
    source = plan.source
    for values in itertools.product(_DOMAIN, repeat=len(columns)):
        row = {c: v for c, v in zip(columns, values, strict=True) if v is not None}
        key = keys.encode_values(list(values)) + pk
        hits = 0 if isinstance(source, Empty) else _keys_in(source, key)
        assert hits <= 1, f"{predicate}: key of {row} is in {hits} ranges"
        assert hits == matches(plan.predicate, row), f"{predicate}: {row} misplaced"


@settings(max_examples=300, deadline=None)
@given(_disjunction("a"), st.sampled_from(["a_up", "a_down"]), st.booleans())
def test_an_or_on_one_column_becomes_disjoint_exact_ranges(predicate, index, desc):
    # Exact: an entry is in some range iff its value matches; disjoint: in at most one, so no
    # row comes twice (`age BETWEEN 30 AND 31 OR age = 30` read the overlap twice).
    plan = Planner(_GRID, _ALL_ACTIVE, None, False).plan(
        predicate, order_by=("a", desc), use_index=index
    )
    _assert_disjoint_and_exact(plan, index, ["a"], predicate)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(_DOMAIN[1:]), min_size=1, max_size=3, unique=True),
    _disjunction("b"),
)
def test_in_lists_on_a_composite_index_multiply_out_to_disjoint_exact_ranges(firsts, second):
    predicate = col("a").isin(firsts) & second
    plan = Planner(_GRID, _ALL_ACTIVE, None, False).plan(predicate, use_index="a_b")
    _assert_disjoint_and_exact(plan, "a_b", ["a", "b"], predicate)
    if isinstance(plan.source, IndexScan):
        assert plan.source.point_counts[0] == len(firsts)


def test_points_inside_ranges_merge_and_adjacent_points_stay_points():
    planner = Planner(_GRID, _ALL_ACTIVE, None, False)
    merged = planner.plan("a BETWEEN 0 AND 1 OR a = 0", use_index="a_up").source
    assert isinstance(merged, IndexScan) and len(merged.ranges) == 1
    everything = planner.plan("a IS NOT NULL OR a = 2", use_index="a_up").source
    assert len(everything.ranges) == 1 and everything.ranges[0].stop is None
    # Two adjacent points stay two, so the next index column still narrows them.
    points = planner.plan("a IN (1, 2) AND b = 3", use_index="a_b").source
    assert points.point_counts == [2, 1] and len(points.ranges) == 2


# -- one order whatever the plan ---------------------------------------------------------------


def test_index_order_is_claimed_only_when_it_is_value_then_row_key():
    planner = Planner(_GRID, _ALL_ACTIVE, None, False)
    # Last index column, earlier ones pinned: the index order is (b, row key).
    assert planner.plan("a = 1", order_by=("b", True), use_index="a_b").sort is None
    # A later column is not pinned: ties on a would come in b order, not row-key order.
    assert planner.plan("a > 1", order_by="a", use_index="a_b").sort == ("a", False)
    assert planner.plan("a = 1 AND b = 2", order_by="a", use_index="a_b").sort is None
    # An earlier column with two values: b is not sorted across them.
    assert planner.plan("a IN (1, 2)", order_by=("b", True), use_index="a_b").sort is not None
    # The direction must match the index.
    assert planner.plan("a > 1", order_by=("a", True), use_index="a_up").sort is not None
    assert planner.plan("a > 1", order_by=("a", True), use_index="a_down").sort is None


def test_a_descending_index_scans_its_nulls_last():
    planner = Planner(_GRID, _ALL_ACTIVE, None, False)
    every = "a IS NULL OR a IS NOT NULL"
    scan = planner.plan(every, order_by=("a", True), use_index="a_down").source
    null = IndexKeys(_GRID, _GRID.indexes["a_down"]).encode_values([None])
    assert isinstance(scan, IndexScan) and scan.ranges[-1].start == null
    assert all(r.start > null for r in scan.ranges[:-1])
    composite = planner.plan("a = 1", order_by=("b", True), use_index="a_b").source
    prefix = IndexKeys(_GRID, _GRID.indexes["a_b"]).encode_values([1])
    assert [(r.start, r.stop) for r in composite.ranges] == [
        (prefix + b"\x01", prefix_successor(prefix)),
        (prefix, prefix + b"\x01"),  # the NULLs of b (nothing sorts between prefix and them)
    ]


def test_forcing_an_index_that_is_not_active_is_refused_with_what_to_do():
    for state, action in (("BUILDING", "build"), ("DISABLED", "rebuild")):
        planner = Planner(_GRID, {**_ALL_ACTIVE, "a_up": state}, None, False)
        message = f"grid.a_up is {state}, not ACTIVE.*`culvert index {action} grid a_up`"
        with pytest.raises(QueryError, match=message):
            planner.plan("a = 1", use_index="a_up")
        assert planner.plan("a = 1", use_index="a_down").source.index.name == "a_down"


# -- the choice by cost, from statistics given as data (no store needed) ------------------------


def test_a_hot_value_scans_the_table_and_a_rare_one_uses_the_index():
    keys = IndexKeys(_GRID, _GRID.indexes["a_up"])
    hot = keys.encode_values([7])
    figures = IndexStats(
        index="a_up",
        entries=1_000_000,
        prefix_ndv=(1000,),
        null_entries=0,
        mcv=((hot, 500_000),),
        histogram=tuple(keys.encode_values([v]) for v in range(0, 1000, 100)),
        updated_ms=0,
    )
    stats = TableStats(table="grid", rows=1_000_000, indexes={"a_up": figures}, updated_ms=0)
    states = {name: BUILDING for name in _GRID.indexes} | {"a_up": ACTIVE}
    planner = Planner(_GRID, states, stats, False)
    # Half the table through an index costs a fetch per row: more than reading it all.
    assert isinstance(planner.plan("a = 7").source, FullScan)
    rare = planner.plan("a = 8").source
    assert isinstance(rare, IndexScan) and rare.index.name == "a_up"
    assert rare.est_entries == pytest.approx(500_000 / 999)
    assert isinstance(planner.plan("a >= 0").source, FullScan)
    # Without statistics an index is preferred, and the plan says it guessed.
    guessed = Planner(_GRID, states, None, False).plan("a = 7")
    assert isinstance(guessed.source, IndexScan) and any("guess" in n for n in guessed.notes)
