"""Statistics: every estimate checked against exact counts computed from the rows themselves.

The sketches are tested first on synthetic streams (no store, large inputs); then a table with
known skewed distributions is loaded once per store (SQLite and the real HBase) and its
collected statistics are compared with brute-force counts over the rows that were written.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections import Counter
from types import SimpleNamespace

import pytest

from culvert_py.client import Client
from culvert_py.encoding import encode_value
from culvert_py.errors import CulvertError, SchemaError
from culvert_py.layout import IndexKeys, primary_key
from culvert_py.schema import Schema, parse_schema
from culvert_py.stats import IndexStats, TableStats, collect_stats, load_stats, refresh_stats
from culvert_py.stats.collect import IndexSummary
from culvert_py.stats.sketches import KMV, BottomSample, MisraGries
from culvert_py.store import open_store
from culvert_py.text import tokenize


def enc(value, type_name: str = "str", descending: bool = False) -> bytes:
    return encode_value(value, type_name, descending=descending)


def within(estimate: float, truth: float, tolerance: float) -> bool:
    return abs(estimate - truth) <= tolerance * truth


def within_factor(estimate: float, truth: float, factor: float = 2.0) -> bool:
    return truth / factor <= estimate <= truth * factor


def assert_ndv(estimate: int, truth: int) -> None:
    if truth < 1024:
        assert estimate == truth
    else:
        assert within(estimate, truth, 0.10), (estimate, truth)


# --------------------------------------------------------------------------- sketches


def test_kmv_is_exact_below_k_and_within_10_percent_above():
    rnd = random.Random(1)
    small, large = KMV(), KMV()
    hashes = [rnd.getrandbits(64) for _ in range(1000)]
    for h in hashes + hashes[::-1]:  # every value twice: duplicates count once
        small.add(h)
    assert small.estimate() == 1000
    for _ in range(200_000):
        large.add(rnd.getrandbits(64))
    assert within(large.estimate(), 200_000, 0.10)


def test_kmv_merge_equals_one_sketch_over_the_union():
    rnd = random.Random(2)
    hashes = [rnd.getrandbits(64) for _ in range(30_000)]
    whole, parts = KMV(), [KMV() for _ in range(8)]
    for i, h in enumerate(hashes):
        whole.add(h)
        parts[i % 8].add(h)
        parts[(i + 3) % 8].add(h)  # overlapping parts: one value in several buckets
    merged = KMV()
    for part in parts:
        merged.merge(part)
    assert merged.estimate() == whole.estimate()


def zipf_stream(rnd: random.Random, n: int, values: int, s: float = 1.1) -> list[bytes]:
    weights = [1 / (rank**s) for rank in range(1, values + 1)]
    return [b"v%d" % v for v in rnd.choices(range(values), weights, k=n)]


def test_misra_gries_finds_heavy_hitters_within_its_error_bound():
    rnd = random.Random(3)
    stream = zipf_stream(rnd, 50_000, 20_000)
    truth = Counter(stream)
    parts = [MisraGries() for _ in range(8)]
    for i, item in enumerate(stream):
        parts[i % 8].add(item)
    summary = parts[0]
    for part in parts[1:]:
        summary.merge(part)
    assert summary.error <= len(stream) / 65
    for item, count in truth.most_common(10):
        assert item in summary.seen
        assert count - summary.error <= summary.seen[item] <= count
        assert summary.counts[item] <= summary.seen[item]
    # Weighted updates (one per run, as a sorted bucket is fed) obey the same bound.
    runs = MisraGries()
    for item, count in truth.items():
        runs.add(item, count)
    assert all(truth[i] - runs.error <= runs.seen[i] <= truth[i] for i in runs.seen)
    assert b"v0" in runs.seen


def test_bottom_sample_is_bounded_deterministic_and_mergeable():
    rnd = random.Random(4)
    items = [(rnd.getrandbits(64), b"%d" % i) for i in range(20_000)]
    whole = BottomSample(100)
    parts = [BottomSample(100) for _ in range(4)]
    for i, (priority, value) in enumerate(items):
        whole.add(priority, value)
        parts[i % 4].add(priority, value)
    merged = BottomSample(100)
    for part in parts:
        merged.merge(part)
    assert len(whole.values()) == 100
    assert sorted(merged.values()) == sorted(whole.values())
    smallest = {v for _, v in sorted(items)[:100]}
    assert set(whole.values()) == smallest


SYNTHETIC = parse_schema(
    {
        "tables": {
            "syn": {
                "row_key": ["id"],
                "salt_buckets": 8,
                "columns": {"id": "int", "a": "int", "b": "bool", "s": "str"},
                "indexes": {
                    "by_ab": {"kind": "range", "columns": ["a", "b"]},
                    "by_s_desc": {"kind": "range", "columns": ["s"], "descending": ["s"]},
                },
            }
        }
    }
).table("syn")


def summarise(index: str, rows: list[dict]) -> IndexStats:
    """What collect_stats does, without a store: one sorted stream per bucket, merged."""
    keys = IndexKeys(SYNTHETIC, SYNTHETIC.indexes[index])
    buckets: dict[int, list[bytes]] = {}
    for row in rows:
        for key in keys.entry_keys(row, primary_key(SYNTHETIC, row)):
            buckets.setdefault(key[0], []).append(key)
    total = IndexSummary(keys)
    for entry_keys in buckets.values():
        part = IndexSummary(keys)
        for key in sorted(entry_keys):
            part.add(key)
        total.merge(part)
    return total.result(0)


@pytest.fixture(scope="module")
def synthetic_rows() -> list[dict]:
    """60k rows: ``a`` half a Zipf head (1 is 30 %), half unique; ``b`` True 30 %."""
    rnd = random.Random(5)
    rows = []
    for i in range(60_000):
        if i % 20 == 0:
            a = None
        elif rnd.random() < 0.5:
            a = min(int(rnd.paretovariate(1.2)), 50)
        else:
            a = rnd.randrange(100, 10**9)
        rows.append(
            {"id": i, "a": a, "b": rnd.random() < 0.3, "s": f"w{rnd.randrange(30_000):05d}"}
        )
    return rows


def test_summary_of_a_large_skewed_stream(synthetic_rows):
    stats = summarise("by_ab", synthetic_rows)
    values = [r["a"] for r in synthetic_rows]
    counts = Counter(v for v in values if v is not None)
    assert stats.entries == len(synthetic_rows)
    assert stats.null_entries == values.count(None)
    assert_ndv(stats.prefix_ndv[0], len(counts))
    pairs = {(r["a"], r["b"]) for r in synthetic_rows if r["a"] is not None}
    assert_ndv(stats.prefix_ndv[1], len(pairs))
    mcv = {v: c for v, c in stats.mcv}
    for value, count in counts.most_common(5):
        assert within(mcv[enc(value, "int")], count, 0.05)
    # Equality: a hot value, a unique value, NULL.
    assert within_factor(stats.rows_equal(enc(1, "int")), counts[1])
    unique = next(v for v, c in counts.items() if c == 1)
    assert within_factor(stats.rows_equal(enc(unique, "int")), 1)
    assert stats.rows_equal(enc(None, "int")) == values.count(None)
    # Composite prefixes: a hot value splits two ways on a bool, a unique one stays one row.
    for a, b in [(1, True), (1, False), (2, True), (unique, False)]:
        truth = sum(1 for r in synthetic_rows if r["a"] == a and r["b"] == b) or 1
        estimate = stats.rows_equal(enc(a, "int") + enc(b, "bool"), k=2)
        assert within_factor(estimate, truth), (a, b, estimate, truth)
    # Ranges, inside the hot head and over the unique tail.
    for lo, hi in [(None, 2), (1, 10), (3, 51), (100, 5 * 10**8), (7 * 10**8, None), (None, None)]:
        truth = sum(1 for v in values if v is not None and (lo is None or v >= lo))
        truth -= sum(1 for v in values if v is not None and hi is not None and v >= hi)
        estimate = stats.rows_between(
            None if lo is None else enc(lo, "int"), None if hi is None else enc(hi, "int")
        )
        assert abs(estimate - truth) <= 0.10 * stats.entries, (lo, hi, estimate, truth)


def test_summary_of_a_descending_string_index(synthetic_rows):
    stats = summarise("by_s_desc", synthetic_rows)
    strings = [r["s"] for r in synthetic_rows]
    assert_ndv(stats.prefix_ndv[0], len(set(strings)))
    # Descending bytes: [enc(hi), enc(lo)) holds hi >= v > lo.
    for high, low in [("w20000", "w10000"), ("w29999", "w00000"), ("w05000", "w04000")]:
        truth = sum(1 for s in strings if high >= s > low)
        estimate = stats.rows_between(enc(high, descending=True), enc(low, descending=True))
        assert abs(estimate - truth) <= 0.10 * stats.entries, (high, low, estimate, truth)


def test_rows_between_interpolates_inside_histogram_buckets():
    bounds = tuple(enc(v, "int") for v in range(0, 1001, 100))  # 10 buckets of 100 values
    stats = IndexStats("i", 1000, (1000,), 0, (), bounds, 0)
    assert stats.rows_between(None, None) == 1000
    assert stats.rows_between(enc(0, "int"), enc(1000, "int")) == pytest.approx(1000)
    assert stats.rows_between(enc(250, "int"), enc(300, "int")) == pytest.approx(50)
    assert stats.rows_between(enc(250, "int"), enc(251, "int")) == pytest.approx(1)
    assert stats.rows_between(enc(-5, "int"), enc(0, "int")) == 0
    assert stats.rows_between(enc(2000, "int"), None) == 0
    assert stats.rows_between(enc(300, "int"), enc(200, "int")) == 0


def test_rows_equal_uses_mcvs_nulls_and_the_average_of_the_rest():
    stats = IndexStats(
        "i",
        entries=1000,
        prefix_ndv=(102, 500),
        null_entries=100,
        mcv=((enc("hot"), 400), (enc("warm"), 100)),
        histogram=(),
        updated_ms=0,
        mcv_prefix_ndv=((2,), (100,)),
    )
    assert stats.rows_equal(enc("hot")) == 400
    assert stats.rows_equal(enc(None)) == 100
    assert stats.rows_equal(enc("other")) == pytest.approx(400 / 100)
    assert stats.rows_equal(enc("hot") + enc(1, "int"), k=2) == 200
    assert stats.rows_equal(enc("hot") + b"\x21any scan start", k=2) == 200
    assert stats.rows_equal(enc("warm") + enc(1, "int"), k=2) == 1
    # 398 prefixes under the 100 other values: about 4 each, so about one entry each.
    assert stats.rows_equal(enc("other") + enc(1, "int"), k=2) == pytest.approx(1.005, 0.01)
    with pytest.raises(ValueError, match="k=3"):
        stats.rows_equal(enc("hot"), k=3)
    empty = IndexStats("e", 0, (0, 0), 0, (), (), 0)
    assert empty.rows_equal(enc("x")) == 0
    assert empty.rows_between(None, None) == 0


def test_json_round_trip_keeps_every_field():
    index = IndexStats(
        "by_x", 10, (3, 7), 2, ((b"\x40a\x00\x01", 5),), (b"\x40b", b"\xff"), 17, ((4,),)
    )
    stats = TableStats("t", 9, {"by_x": index}, 18)
    assert TableStats.from_json(stats.to_json()) == stats
    with pytest.raises(CulvertError, match="unreadable statistics"):
        TableStats.from_json('{"version": 99}')
    with pytest.raises(CulvertError, match="unreadable statistics"):
        TableStats.from_json("not json")


# --------------------------------------------------------------------------- on both stores

N_ROWS = 4000
RARE_KINDS = [f"k{i:03d}" for i in range(300)]
VOCABULARY = [f"w{i:04d}" for i in range(1500)]


def make_rows() -> list[dict]:
    """Rows with known distributions: ``kind`` is 30 % alpha, 15 % beta, 5 % gamma, 5 % NULL
    and 6 rows of each of 300 rare values; ``n`` nearly unique; ``score`` 20 % NULL;
    ``body`` has 'hbase' in half the rows, 'index' in a quarter, and 3 of 1500 rare words,
    each of which is in 8 rows."""
    rnd = random.Random(6)
    kinds = [None] * 200 + ["alpha"] * 1200 + ["beta"] * 600 + ["gamma"] * 200
    kinds += [k for k in RARE_KINDS for _ in range(6)]
    rnd.shuffle(kinds)
    rows = []
    for i, kind in enumerate(kinds):
        words = ["hbase"] * (rnd.random() < 0.5) + ["index"] * (rnd.random() < 0.25)
        rows.append(
            {
                "id": f"r{i:05d}",
                "kind": kind,
                "n": rnd.randrange(10**6),
                "score": None if rnd.random() < 0.2 else rnd.randint(0, 200) / 2,
                "body": " ".join(words + [VOCABULARY[(3 * i + j) % 1500] for j in range(3)]),
            }
        )
    return rows


def schema_for(name: str, indexes: set[str] | None = None):
    """The schema of the skewed table under ``name``, with all indexes or only ``indexes``."""
    schema = parse_schema(
        {
            "tables": {
                name: {
                    "family": "d",
                    "row_key": ["id"],
                    "salt_buckets": 8,
                    "columns": {
                        "id": "str",
                        "kind": "str",
                        "n": "int",
                        "score": "float",
                        "body": "str",
                    },
                    "indexes": {
                        "by_kind": {"kind": "term", "columns": ["kind"]},
                        "by_kind_value": {
                            "kind": "term",
                            "columns": ["kind"],
                            "salt": "value",
                            "buckets": 4,
                        },
                        "by_n": {"kind": "range", "columns": ["n"]},
                        "by_kind_n": {"kind": "range", "columns": ["kind", "n"]},
                        "by_score": {
                            "kind": "range",
                            "columns": ["score"],
                            "descending": ["score"],
                        },
                        "words": {"kind": "text", "columns": ["body"]},
                    },
                }
            }
        }
    )
    if indexes is None:
        return schema
    table = schema.table(name)
    kept = {i: d for i, d in table.indexes.items() if i in indexes}
    return Schema({name: dataclasses.replace(table, indexes=kept)})


@pytest.fixture(scope="module", params=["sqlite", pytest.param("hbase", marks=pytest.mark.hbase)])
def loaded(request, tmp_path_factory):
    """The skewed table, loaded once per store kind for the whole module (the ``store``
    fixture is per test, and loading per test would dominate the run), with its statistics."""
    if request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path_factory.mktemp('stats') / 'store.db'}")
    else:
        store = request.getfixturevalue("hbase_store")
    client = Client(store, workers=16, close_store=request.param == "sqlite")
    name = f"stats_{uuid.uuid4().hex[:10]}"
    client.apply_schema(schema_for(name))
    rows = make_rows()
    client.table(name).put_many(rows, bulk=True)
    definition = client.schema().table(name)
    stats = collect_stats(store, definition, client.executor)
    yield SimpleNamespace(client=client, store=store, name=name, rows=rows, stats=stats)
    client.drop_table(name)
    client.close()


def column(rows: list[dict], name: str) -> list:
    return [r[name] for r in rows]


def tokens(rows: list[dict]) -> list[str]:
    return [t for r in rows for t in tokenize(r["body"])]


def test_entries_rows_and_nulls_are_exact(loaded):
    stats, rows = loaded.stats, loaded.rows
    assert stats.rows == N_ROWS
    for name in ["by_kind", "by_kind_value", "by_n", "by_kind_n", "by_score"]:
        assert stats.indexes[name].entries == N_ROWS
    assert stats.indexes["words"].entries == len(tokens(rows))
    assert stats.indexes["by_kind"].null_entries == column(rows, "kind").count(None) == 200
    assert stats.indexes["by_kind_n"].null_entries == 200
    assert stats.indexes["by_score"].null_entries == column(rows, "score").count(None)
    assert stats.indexes["by_n"].null_entries == 0


def test_ndv_is_exact_below_1024_and_within_10_percent_above(loaded):
    stats, rows = loaded.stats.indexes, loaded.rows
    kinds = {k for k in column(rows, "kind") if k is not None}
    assert stats["by_kind"].prefix_ndv == (len(kinds),) == (303,)
    assert stats["by_kind_value"].prefix_ndv == (303,)
    assert_ndv(stats["by_n"].prefix_ndv[0], len(set(column(rows, "n"))))
    assert stats["by_kind_n"].prefix_ndv[0] == 303
    pairs = {(r["kind"], r["n"]) for r in rows if r["kind"] is not None}
    assert_ndv(stats["by_kind_n"].prefix_ndv[1], len(pairs))
    scores = {s for s in column(rows, "score") if s is not None}
    assert_ndv(stats["by_score"].prefix_ndv[0], len(scores))
    assert_ndv(stats["words"].prefix_ndv[0], len(set(tokens(rows))))


def test_mcv_finds_the_heavy_hitters_with_their_counts(loaded):
    for name in ["by_kind", "by_kind_value", "by_kind_n"]:
        mcv = loaded.stats.indexes[name].mcv
        assert [v for v, _ in mcv[:3]] == [enc("alpha"), enc("beta"), enc("gamma")], name
        assert all(within(c, t, 0.05) for (_, c), t in zip(mcv, [1200, 600, 200], strict=False))
        assert not any(v.startswith(enc("k")[:2]) for v, _ in mcv)  # 6 rows: not common
    truth = Counter(tokens(loaded.rows))
    words = dict(loaded.stats.indexes["words"].mcv)
    for word in ["hbase", "index"]:
        assert within(words[enc(word)], truth[word], 0.05)
    fanouts = dict(
        zip(
            [v for v, _ in loaded.stats.indexes["by_kind_n"].mcv],
            loaded.stats.indexes["by_kind_n"].mcv_prefix_ndv,
            strict=True,
        )
    )
    assert within(fanouts[enc("alpha")][0], 1200, 0.25)  # alpha's n are (nearly) unique


def test_rows_equal_within_factor_2_for_common_and_rare_values(loaded):
    rows = loaded.rows
    kinds = Counter(column(rows, "kind"))
    for name in ["by_kind", "by_kind_value", "by_kind_n"]:
        stats = loaded.stats.indexes[name]
        for kind in ["alpha", "beta", "gamma", *RARE_KINDS]:
            assert within_factor(stats.rows_equal(enc(kind)), kinds[kind]), (name, kind)
        assert stats.rows_equal(enc(None)) == 200
    ns = Counter(column(rows, "n"))
    by_n = loaded.stats.indexes["by_n"]
    assert all(within_factor(by_n.rows_equal(enc(n, "int")), c) for n, c in ns.items())
    # Composite: every (kind, n) is about one row, hot kind or not.
    by_kind_n = loaded.stats.indexes["by_kind_n"]
    pairs = Counter((r["kind"], r["n"]) for r in rows if r["kind"] is not None)
    for (kind, n), count in list(pairs.items())[:500]:
        estimate = by_kind_n.rows_equal(enc(kind) + enc(n, "int"), k=2)
        assert within_factor(estimate, count), (kind, n, estimate, count)
    # Uniform-ish values: the average is within a factor 2 for nearly all of them.
    scores = Counter(s for s in column(rows, "score") if s is not None)
    by_score = loaded.stats.indexes["by_score"]
    good = [within_factor(by_score.rows_equal(enc(s, "float", True)), c) for s, c in scores.items()]
    assert sum(good) >= 0.95 * len(good)
    words = Counter(tokens(rows))
    stats = loaded.stats.indexes["words"]
    assert all(within_factor(stats.rows_equal(enc(w)), c) for w, c in words.items())
    assert within_factor(stats.rows_equal(enc("hbase")), words["hbase"], 1.05)


def count_between(values: list, lo, hi) -> int:
    return sum(
        1 for v in values if v is not None and (lo is None or v >= lo) and (hi is None or v < hi)
    )


def test_rows_between_within_10_percent_of_entries(loaded):
    indexes, rows = loaded.stats.indexes, loaded.rows
    checks = []  # (index, lo bytes, hi bytes, exact count)
    ns = column(rows, "n")
    for lo, hi in [(100_000, 300_000), (None, 500_000), (900_000, None), (123_456, 130_000)]:
        checks.append(
            (
                "by_n",
                None if lo is None else enc(lo, "int"),
                None if hi is None else enc(hi, "int"),
                count_between(ns, lo, hi),
            )
        )
    kinds = column(rows, "kind")
    for index in ["by_kind", "by_kind_n", "by_kind_value"]:
        for lo, hi in [("alpha", "beta"), ("b", "k1"), ("k100", "k200"), ("gamma", None)]:
            bounds = (enc(lo), None if hi is None else enc(hi))
            checks.append((index, *bounds, count_between(kinds, lo, hi)))
        checks.append((index, None, None, N_ROWS - 200))  # NULLs are not in any range
    scores = column(rows, "score")
    # Descending: [enc(80), enc(20)) holds the scores 80 >= s > 20.
    for high, low in [(80.0, 20.0), (100.0, 50.0), (10.5, 10.0)]:
        truth = sum(1 for s in scores if s is not None and high >= s > low)
        checks.append(("by_score", enc(high, "float", True), enc(low, "float", True), truth))
    checks.append(("by_score", None, enc(50.0, "float", True), count_between(scores, 50.5, None)))
    words = tokens(rows)
    for lo, hi in [("w0500", "w1000"), ("h", "j"), ("a", "w")]:
        checks.append(("words", enc(lo), enc(hi), count_between(words, lo, hi)))
    for index, lo, hi, truth in checks:
        estimate = indexes[index].rows_between(lo, hi)
        entries = indexes[index].entries
        assert abs(estimate - truth) <= 0.10 * entries, (index, lo, hi, estimate, truth)


def test_collecting_without_an_executor_gives_the_same_counts(loaded):
    definition = loaded.client.schema().table(loaded.name)
    serial = collect_stats(loaded.store, definition)
    assert serial.rows == loaded.stats.rows
    for name, stats in serial.indexes.items():
        parallel = loaded.stats.indexes[name]
        assert (stats.entries, stats.null_entries, stats.prefix_ndv) == (
            parallel.entries,
            parallel.null_entries,
            parallel.prefix_ndv,
        )
        if name != "by_score":  # no heavy hitters there: near-ties may rank either way
            assert stats.mcv[:2] == parallel.mcv[:2]


# --------------------------------------------------------------------------- meta table


@pytest.fixture
def small(db):
    """A fresh table of the same columns with two of the indexes (fewer tables to create on
    HBase), dropped afterwards."""
    name = f"stats_{uuid.uuid4().hex[:10]}"
    db.apply_schema(schema_for(name, {"by_n", "words"}))
    yield db.table(name)
    db.drop_table(name)


def test_refresh_stores_statistics_that_load_reads_back(db, small):
    rows = make_rows()[:300]
    small.put_many(rows)
    assert load_stats(db.meta, small.name) is None
    stats = small.refresh_stats()
    assert stats.rows == 300
    assert stats.indexes["by_n"].entries == 300
    assert load_stats(db.meta, small.name) == stats
    assert load_stats(db.meta, small.name) == stats
    small.put_many(make_rows()[300:400])
    newer = small.refresh_stats()
    assert load_stats(db.meta, small.name) == newer
    assert newer.rows == 400
    with pytest.raises(SchemaError, match="no_such_table"):
        db.table("no_such_table").refresh_stats()
    direct = refresh_stats(db.meta, db.store, small.definition)
    assert direct.rows == 400 and load_stats(db.meta, small.name) == direct


def test_tombstoned_rows_are_not_counted(db, small):
    rows = make_rows()[:100]
    small.put_many(rows)
    small.delete_many([r["id"] for r in rows[:30]])
    stats = small.refresh_stats()
    assert stats.rows == 70
    assert stats.indexes["by_n"].entries == 70
    assert stats.indexes["words"].entries == len(tokens(rows[30:]))


def test_unreadable_stored_statistics_count_as_missing(db, small):
    db.meta.save_stats(small.name, "{broken")
    assert load_stats(db.meta, small.name) is None
    db.meta.save_stats(small.name, replace_version(small.refresh_stats().to_json()))
    assert load_stats(db.meta, small.name) is None


def replace_version(document: str) -> str:
    return document.replace('"version":1', '"version":0')
