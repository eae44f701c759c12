"""Queries before any statistics refresh, against the same queries after one, in one run.

A skewed table (a 3-value status, a uniform timestamp, a hot city, a NULL-heavy flag, a
composite index with a skewed first column; five indexes) is loaded with automatic
statistics off, so nothing is collected. A generated set of 2-3-part conjunctions is run to the
last row four ways (see :func:`run_interleaved`): planned with no statistics and a probe
cache emptied before each pass over the set (``cold_ratio``, the issue's figure: a user's
first queries after a load), the same with no probe cache at all (``cold_query_ratio``),
with the probes cached, and with the statistics ``refresh_stats`` collected (the baseline),
after one discarded pass that warms the store's caches. The ways take turns query by query,
``--repeat`` rounds, and each query keeps its best time per way, since the machine is
shared. Prints a table, how many plans agree, and a last line ``RESULT …`` with the time
ratios (target <= 1.2).

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
from culvert_py.query.planner import Planner
from culvert_py.query.probe import ProbeCache, Prober
from culvert_py.schema import parse_schema
from culvert_py.store import open_store
from culvert_py.store.base import CAP_SERVER_FILTER

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


#: The ways a query is planned: statistics or none, and the probe cache it plans with.
WAYS = ("cold_set", "cold_query", "warm", "fresh")


def run_interleaved(table, where: list[str], repeat: int, stats) -> dict:
    """Each query's best seconds (and its plan shape and probe seconds), each way.

    The ways take turns query by query, so a load spike on this shared machine falls on
    all of them alike. Each way plans with a probe cache of its own: ``cold_set`` with no
    statistics and a cache emptied at the start of each pass over the set (a user's first
    queries after a load: later queries reuse what earlier ones probed), ``cold_query`` with
    no cache at all (every query probes everything it needs), ``warm`` with a cache kept
    across passes, ``fresh`` with the statistics (no probes).
    """
    caches = {"cold_set": ProbeCache(), "cold_query": None, "warm": ProbeCache(), "fresh": None}
    best = {w: [(float("inf"), "", 0.0)] * len(where) for w in WAYS}
    for _ in range(repeat):
        caches["cold_set"].clear()
        for i, w in enumerate(where):
            for way in WAYS:
                took = run_one(table, w, stats if way == "fresh" else None, caches[way])
                if took[0] < best[way][i][0]:
                    best[way][i] = took
    return best


def run_one(table, w: str, stats, cache) -> tuple[float, str, float]:
    """Seconds to plan (with ``stats``, or by probes when ``None``) and run one query to its
    end, its plan shape, and the probes' seconds."""
    t0 = time.perf_counter()
    prober = Prober(table.store, table.client.executor, cache)
    server_filter = CAP_SERVER_FILTER in table.store.capabilities
    plan = Planner(table.definition, table.states, stats, server_filter, prober).plan(w)
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
        t0 = time.perf_counter()
        stats = table.refresh_stats()
        refresh = time.perf_counter() - t0
        # One discarded pass first: the store's caches are then as warm for every way.
        run_interleaved(table, where, 1, stats)
        best = run_interleaved(table, where, args.repeat, stats)
    finally:
        client.drop_table(name)
        client.close()
    total = {w: sum(t for t, _, _ in best[w]) for w in WAYS}
    probes = {w: sum(p for _, _, p in best[w]) for w in WAYS}
    base = total["fresh"]
    probed = [shape for _, shape, _ in best["cold_set"]]
    chosen = [shape for _, shape, _ in best["fresh"]]
    same = sum(a == b for a, b in zip(probed, chosen, strict=True))
    print(f"store {url.split(':')[0]}, {args.rows:,} rows, {len(where)} queries")
    print(f"{'phase':<28}{'seconds':>10}{'ratio':>8}")
    print(f"{'load (put_many bulk)':<28}{load:>10.2f}")
    labels = {
        "cold_set": "no stats, cache new per set",
        "cold_query": "no stats, no probe cache",
        "warm": "no stats, probes cached",
    }
    for way, label in labels.items():
        print(
            f"{label:<28}{total[way]:>10.3f}{total[way] / base:>8.2f}  (probes {probes[way]:.3f} s)"
        )
    print(f"{'refresh_stats':<28}{refresh:>10.3f}")
    print(f"{'fresh statistics (baseline)':<28}{base:>10.3f}{1.0:>8.2f}")
    print(f"plans equal: {same}/{len(where)}")
    for w, a, b in zip(where, probed, chosen, strict=True):
        if a != b:
            print(f"  differs: {w}: probed {a}, statistics {b}")
    print(
        f"RESULT rows={args.rows} queries={len(where)} "
        f"cold_ratio={total['cold_set'] / base:.2f} "
        f"cold_query_ratio={total['cold_query'] / base:.2f} "
        f"warm_ratio={total['warm'] / base:.2f} "
        f"probe_share={probes['cold_set'] / total['cold_set']:.3f} plans_equal={same}/{len(where)}"
    )


if __name__ == "__main__":
    main()
