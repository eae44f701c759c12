"""Queries before any statistics refresh, against the same queries after one, in one run.

A skewed table (a 3-value status, a uniform timestamp, a hot city, a NULL-heavy flag, a
composite index with a skewed first column; five indexes) is loaded with automatic
statistics off, so nothing is collected. A generated set of 2-3-part conjunctions is run to
the last row three ways: with no statistics (the planner probes; the probe cache cleared
before every run), the same with the probes cached, and after ``refresh_stats`` (the
baseline), after one discarded pass that warms the store's caches. Each way runs the set
``--repeat`` times and keeps each query's best time, since the machine is shared. Prints
a table, how many plans agree, and a last line ``RESULT …`` with the time ratios (target
<= 1.2).

    python bench/planning_fresh.py [--url sqlite:///tmp/fresh.db] [--rows 20000]
        [--queries 24] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid

from culvert_py.client import Client
from culvert_py.query.executor import QueryExecutor
from culvert_py.query.plan import FullScan, IndexScan
from culvert_py.schema import parse_schema
from culvert_py.store import open_store

COLUMNS = {
    "id": "str",
    "status": "str",
    "ts": "int",
    "city": "str",
    "flag": "int",
    "a": "str",
    "b": "int",
}
INDEXES = {
    "by_status": {"kind": "term", "columns": ["status"]},
    "by_ts": {"kind": "range", "columns": ["ts"]},
    "by_city": {"kind": "term", "columns": ["city"]},
    "by_flag": {"kind": "term", "columns": ["flag"]},
    "by_ab": {"kind": "range", "columns": ["a", "b"]},
}
SPAN = 10_000_000  # timestamps are uniform over [0, SPAN)


def rows(n: int, rnd: random.Random):
    status = ["new"] * 6 + ["paid"] * 3 + ["void"]
    for i in range(n):
        yield {
            "id": f"r{rnd.getrandbits(40):010x}{i}",
            "status": rnd.choice(status),
            "ts": rnd.randrange(SPAN),
            "city": "hot" if rnd.random() < 0.4 else f"c{rnd.randrange(300):03d}",
            "flag": None if rnd.random() < 0.8 else rnd.randrange(50),
            "a": rnd.choice("xxxxxxyyz"),
            "b": rnd.randrange(500),
        }


def queries(n: int, rnd: random.Random) -> list[str]:
    """Conjunctions where a few-value or hot term competes with a selective part."""
    makers = [
        lambda: f"status = '{rnd.choice(['new', 'paid', 'void'])}'",
        lambda: (lambda lo: f"ts >= {lo} AND ts < {lo + rnd.choice([2000, 20_000])}")(
            rnd.randrange(SPAN)
        ),
        lambda: f"city = '{rnd.choice(['hot', 'hot', 'c007', 'c123'])}'",
        lambda: rnd.choice(["flag IS NULL", f"flag = {rnd.randrange(50)}"]),
        lambda: rnd.choice(["a = 'x'", f"a = 'z' AND b = {rnd.randrange(500)}"]),
    ]
    out = []
    for _ in range(n):
        parts = rnd.sample(makers, rnd.choice([2, 3]))
        out.append(" AND ".join(make() for make in parts))
    return out


def run_all(table, where: list[str], repeat: int, clear=None) -> tuple[float, list, float]:
    """Seconds to run every query to its end (each query's best of ``repeat`` runs), the
    plan shapes, and the probes' seconds in those best runs."""
    best = [float("inf")] * len(where)
    probes = [0.0] * len(where)
    shapes: list = []
    for _ in range(repeat):
        if clear is not None:
            clear()
        shapes = []
        for i, w in enumerate(where):
            seconds, shape, probe = run_one(table, w)
            shapes.append(shape)
            if seconds < best[i]:
                best[i], probes[i] = seconds, probe
    return sum(best), shapes, sum(probes)


def run_one(table, w: str) -> tuple[float, str, float]:
    """Seconds to plan and run one query to its end, its plan shape, the probes' seconds."""
    t0 = time.perf_counter()
    plan = table.plan(w)
    probe_seconds = sum(r.seconds for r in plan.probes)
    source = plan.source
    if isinstance(source, IndexScan):
        shape = source.index.name
    else:
        shape = "full" if isinstance(source, FullScan) else type(source).__name__
    for _ in QueryExecutor(table.store, table.definition, table.client.executor).run(plan):
        pass  # the plan just made, as table.query would run it (without planning again)
    return time.perf_counter() - t0, shape, probe_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="store URL (default: a temporary SQLite)")
    parser.add_argument("--rows", type=int, default=20_000, help="rows loaded")
    parser.add_argument("--queries", type=int, default=24, help="queries in the set")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the set per way")
    args = parser.parse_args()
    url = args.url or f"sqlite:///{tempfile.mkdtemp()}/fresh.db"
    store = open_store(url)
    client = Client(store, auto_stats=False)
    name = f"fresh_{uuid.uuid4().hex[:8]}"
    schema = {"row_key": ["id"], "family": "d", "columns": COLUMNS, "indexes": INDEXES}
    client.apply_schema(parse_schema({"tables": {name: schema}}))
    try:
        table = client.table(name)
        t0 = time.perf_counter()
        table.put_many(rows(args.rows, random.Random(3)), bulk=True)
        load = time.perf_counter() - t0
        where = queries(args.queries, random.Random(4))
        assert table.stats() is None
        # One discarded pass first: the store's caches are then as warm for every way.
        run_all(table, where, 1, client.probe_cache.clear)
        cold, probed, probe_cold = run_all(table, where, args.repeat, client.probe_cache.clear)
        warm, _, probe_warm = run_all(table, where, args.repeat)
        t0 = time.perf_counter()
        table.refresh_stats()
        refresh = time.perf_counter() - t0
        base, chosen, _ = run_all(table, where, args.repeat)
    finally:
        client.drop_table(name)
        client.close()
    same = sum(a == b for a, b in zip(probed, chosen, strict=True))
    print(f"store {url.split(':')[0]}, {args.rows:,} rows, {len(where)} queries")
    print(f"{'phase':<28}{'seconds':>10}{'ratio':>8}")
    print(f"{'load (put_many bulk)':<28}{load:>10.2f}")
    print(f"{'no stats, cold probe cache':<28}{cold:>10.3f}{cold / base:>8.2f}")
    print(f"{'no stats, probes cached':<28}{warm:>10.3f}{warm / base:>8.2f}")
    print(f"{'refresh_stats':<28}{refresh:>10.3f}")
    print(f"{'fresh statistics (baseline)':<28}{base:>10.3f}{1.0:>8.2f}")
    print(
        f"plans equal: {same}/{len(where)}; probes took {probe_cold * 1000:.0f} ms cold, "
        f"{probe_warm * 1000:.0f} ms cached"
    )
    for w, a, b in zip(where, probed, chosen, strict=True):
        if a != b:
            print(f"  differs: {w}: probed {a}, statistics {b}")
    print(
        f"RESULT rows={args.rows} queries={len(where)} cold_ratio={cold / base:.2f} "
        f"warm_ratio={warm / base:.2f} probe_share={probe_cold / cold:.3f} "
        f"plans_equal={same}/{len(where)}"
    )


if __name__ == "__main__":
    main()
